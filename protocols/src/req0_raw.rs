//! req0 raw (xreq): requests pass through with the user's header; no ids, no resend,
//! no contexts (NNG's src/sp/protocol/reqrep0/xreq.c).
//!
//! * Send: the header (the backtrace a device built) goes out as is, to the first idle
//!   pipe; with none idle `try_send` says `Full`.
//! * Receive: backtrace words move into the header up to and including the one with the
//!   top bit set; running out first is garbage and closes the pipe; more words than a
//!   header holds drops the message. Replies wait in a queue of one plus one per pipe.

use std::collections::VecDeque;
use std::time::Instant;

use nanoport_engine::{Error, IdMap, Message, Now, PipeId, Result, MAX_HEADER};

use crate::backtrace::{move_backtrace_to_header, BacktraceVerdict};
use crate::core::{opt, Action, CtxId, Discards, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::inbound::InboundQueue;
use crate::options::{max_ttl, DEFAULT_MAX_TTL};
use crate::wire::WireFront;

/// The raw req0 state machine.
#[derive(Debug)]
pub(crate) struct Req0Raw {
    /// Peer messages thrown away, by reason.
    discards: Discards,
    info: ProtoInfo,
    /// Connected pipes and whether a write is in flight on each.
    busy: IdMap<PipeId, bool>,
    idle_pipes: VecDeque<PipeId>,
    inbound: InboundQueue,
    ttl: u8,
    actions: VecDeque<Action>,
}

impl Req0Raw {
    /// A raw req0 socket.
    pub(crate) fn new(info: ProtoInfo) -> Req0Raw {
        Req0Raw {
            info,
            discards: Discards::default(),
            busy: IdMap::default(),
            idle_pipes: VecDeque::new(),
            inbound: InboundQueue::new(1),
            ttl: DEFAULT_MAX_TTL,
            actions: VecDeque::new(),
        }
    }

    fn pipe_idle(&mut self, pipe: PipeId) {
        if let Some(busy) = self.busy.get_mut(&pipe) {
            *busy = false;
            self.idle_pipes.push_back(pipe);
            self.actions.push_back(Action::SendReady(0));
        }
    }
}

impl ProtocolCore for Req0Raw {
    fn info(&self) -> ProtoInfo {
        self.info
    }

    fn open_ctx(&mut self) -> Result<CtxId> {
        Err(Error::NotSup)
    }

    fn close_ctx(&mut self, _ctx: CtxId) {}

    fn add_pipe(&mut self, pipe: PipeId, _now: Now) {
        self.busy.insert(pipe, true);
        self.pipe_idle(pipe);
    }

    fn remove_pipe(&mut self, pipe: PipeId, _now: Now) {
        if self.busy.remove(&pipe).is_some() {
            self.idle_pipes.retain(|p| *p != pipe);
            self.inbound.pipe_gone(pipe);
        }
    }

    fn pipe_writable(&mut self, pipe: PipeId, _now: Now) {
        self.pipe_idle(pipe);
    }

    fn wants_pipe_message(&self, pipe: PipeId) -> bool {
        self.inbound.wants(pipe)
    }

    fn pipe_message(&mut self, pipe: PipeId, mut msg: Message, _now: Now) {
        if !self.busy.contains_key(&pipe) {
            return;
        }
        let wire = WireFront::take(&mut msg);
        match move_backtrace_to_header(&mut msg, wire, (MAX_HEADER / 4) as u8) {
            BacktraceVerdict::Complete => {
                self.inbound.push(pipe, msg);
                self.actions.push_back(Action::RecvReady(0));
            }
            BacktraceVerdict::TooManyHops => self.discards.too_many_hops += 1,
            BacktraceVerdict::Garbage => {
                self.discards.malformed += 1;
                self.actions.push_back(Action::ClosePipe(pipe));
            }
        }
    }

    fn try_send(
        &mut self,
        _ctx: CtxId,
        msg: Message,
        _now: Now,
    ) -> std::result::Result<(), SendBlock> {
        while let Some(pipe) = self.idle_pipes.pop_front() {
            if let Some(busy) = self.busy.get_mut(&pipe) {
                *busy = true;
                self.actions.push_back(Action::SendToPipe(pipe, msg));
                return Ok(());
            }
        }
        Err(SendBlock::Full(msg))
    }

    fn try_recv(&mut self, _ctx: CtxId, _now: Now) -> Result<Option<Message>> {
        let Some(taken) = self.inbound.pop() else {
            return Ok(None);
        };
        if let Some(p) = taken.resume.filter(|p| self.busy.contains_key(p)) {
            self.actions.push_back(Action::ResumePipe(p));
        }
        Ok(Some(taken.msg))
    }

    fn unrecv(&mut self, _ctx: CtxId, msg: Message) {
        let from = msg.pipe_ref().map_or(PipeId(0), |p| p.id());
        self.inbound.unpop(from, msg);
        self.actions.push_back(Action::RecvReady(0));
    }

    fn timer(&mut self, _now: Now) {}

    fn next_timer(&self) -> Option<Instant> {
        None
    }

    fn recv_ready(&self) -> bool {
        !self.inbound.is_empty()
    }

    fn send_ready(&self) -> bool {
        self.idle_pipes.iter().any(|p| self.busy.contains_key(p))
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn set_option(&mut self, _ctx: CtxId, name: &str, value: OptValue) -> Result<()> {
        match name {
            opt::MAX_TTL => {
                self.ttl = max_ttl(&value)?;
                Ok(())
            }
            _ => Err(Error::NotSup),
        }
    }

    fn discards(&self) -> Discards {
        self.discards
    }

    fn get_option(&self, _ctx: CtxId, name: &str) -> Result<OptValue> {
        match name {
            opt::MAX_TTL => Ok(OptValue::Int(i32::from(self.ttl))),
            _ => Err(Error::NotSup),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::{opt, OptValue};
    use crate::protocol::Protocol;
    use crate::testing::{assert_send_full, words, Harness};
    use nanoport_engine::{Error, Message};

    #[test]
    fn sends_the_users_header_unchanged() {
        let mut h = Harness::new(Protocol::Req0, true);
        let mut m = Message::from("q");
        m.header_append_u32(7).unwrap();
        m.header_append_u32(0x8000_0001).unwrap();
        assert_send_full(h.send_msg(0, m.clone()));
        h.add(1);
        assert_eq!(h.drain().send_ready, vec![0]);
        h.send_msg(0, m).unwrap();
        assert_eq!(h.sent(), vec![(1, words(&[7, 0x8000_0001], b"q"))]);
    }

    #[test]
    fn receive_moves_words_through_the_id_into_the_header() {
        let mut h = Harness::new(Protocol::Req0, true);
        h.add(1);
        h.deliver(1, &words(&[5, 0x8000_0009], b"r"));
        let m = h.recv(0).unwrap().unwrap();
        assert_eq!(m.header(), &words(&[5, 0x8000_0009], b"")[..]);
        assert_eq!(m.body(), b"r");
        h.deliver(1, &words(&[5, 6], b""));
        assert_eq!(h.drain().closed, vec![1]);
    }

    #[test]
    fn options_and_no_contexts() {
        let mut h = Harness::new(Protocol::Req0, true);
        assert_eq!(h.get(0, opt::MAX_TTL), Ok(OptValue::Int(8)));
        assert_eq!(h.get(0, opt::REQ_RESEND_TIME), Err(Error::NotSup));
        assert_eq!(h.proto.open_ctx(), Err(Error::NotSup));
    }
}
