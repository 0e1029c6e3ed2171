//! The raw replier: xrep (rep0 raw) and xrespond (respondent0 raw), for devices
//! (NNG's src/sp/protocol/reqrep0/xrep.c).
//!
//! * Receive: the receiving pipe's id goes into the header first, then the backtrace words
//!   as the cooked replier moves them (`ttl-max` words at most; garbage closes the pipe).
//!   The user or device sees `[pipe id][backtrace...]` as the header.
//! * Send: the first header word names the destination pipe and is removed; the rest of
//!   the header goes on the wire. A short header, an unknown pipe or a full pipe queue
//!   (64 for xrep, 2 for xrespond) drops the message silently; the send never blocks.

use std::collections::VecDeque;
use std::time::Instant;

use nanoport_engine::{Error, IdMap, Message, Now, PipeId, Result};

use crate::backtrace::{move_backtrace_to_header, BacktraceVerdict};
use crate::core::{opt, Action, CtxId, Discards, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::inbound::InboundQueue;
use crate::options::{max_ttl, DEFAULT_MAX_TTL};
use crate::outbound::{OutboundPipe, WhenFull};
use crate::wire::WireFront;

/// xrep's per-pipe send queue.
pub(crate) const XREP_PIPE_QUEUE: usize = 64;

/// xrespond's per-pipe send queue.
pub(crate) const XRESPOND_PIPE_QUEUE: usize = 2;

/// The raw rep0 / respondent0 state machine.
#[derive(Debug)]
pub(crate) struct RawReplier {
    /// Peer messages thrown away, by reason.
    discards: Discards,
    info: ProtoInfo,
    pipes: IdMap<PipeId, OutboundPipe>,
    pipe_queue: usize,
    inbound: InboundQueue,
    ttl: u8,
    actions: VecDeque<Action>,
}

impl RawReplier {
    /// A raw replier whose pipes queue `pipe_queue` replies each.
    pub(crate) fn new(info: ProtoInfo, pipe_queue: usize) -> RawReplier {
        RawReplier {
            info,
            discards: Discards::default(),
            pipes: IdMap::default(),
            pipe_queue,
            inbound: InboundQueue::new(1),
            ttl: DEFAULT_MAX_TTL,
            actions: VecDeque::new(),
        }
    }
}

impl ProtocolCore for RawReplier {
    fn info(&self) -> ProtoInfo {
        self.info
    }

    fn open_ctx(&mut self) -> Result<CtxId> {
        Err(Error::NotSup)
    }

    fn close_ctx(&mut self, _ctx: CtxId) {}

    fn add_pipe(&mut self, pipe: PipeId, _now: Now) {
        self.pipes.insert(pipe, OutboundPipe::new());
    }

    fn remove_pipe(&mut self, pipe: PipeId, _now: Now) {
        if self.pipes.remove(&pipe).is_some() {
            self.inbound.pipe_gone(pipe);
        }
    }

    fn pipe_writable(&mut self, pipe: PipeId, _now: Now) {
        if let Some(next) = self.pipes.get_mut(&pipe).and_then(OutboundPipe::writable) {
            self.actions.push_back(Action::SendToPipe(pipe, next));
        }
    }

    fn wants_pipe_message(&self, pipe: PipeId) -> bool {
        self.inbound.wants(pipe)
    }

    fn pipe_message(&mut self, pipe: PipeId, mut msg: Message, _now: Now) {
        if !self.pipes.contains_key(&pipe) {
            return;
        }
        let wire = WireFront::take(&mut msg);
        // Cannot fail: the header is empty.
        let _ = msg.header_append_u32(pipe.0);
        match move_backtrace_to_header(&mut msg, wire, self.ttl) {
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
        mut msg: Message,
        _now: Now,
    ) -> std::result::Result<(), SendBlock> {
        let Ok(dest) = msg.header_trim_u32() else {
            return Ok(());
        };
        let dest = PipeId(dest);
        if let Some(now) = self
            .pipes
            .get_mut(&dest)
            .and_then(|out| out.offer(msg, self.pipe_queue, WhenFull::DropNewest))
        {
            self.actions.push_back(Action::SendToPipe(dest, now));
        }
        Ok(())
    }

    fn try_recv(&mut self, _ctx: CtxId, _now: Now) -> Result<Option<Message>> {
        let Some(taken) = self.inbound.pop() else {
            return Ok(None);
        };
        if let Some(p) = taken.resume.filter(|p| self.pipes.contains_key(p)) {
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
        // Never blocks: an unknown or full destination drops the message.
        true
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
    use crate::protocol::Protocol;
    use crate::testing::{words, Harness};
    use nanoport_engine::{Error, Message};

    #[test]
    fn receive_prepends_the_pipe_id_and_send_routes_by_it() {
        let mut h = Harness::new(Protocol::Rep0, true);
        h.add(5);
        h.add(6);
        h.deliver(6, &words(&[3, 0x8000_0001], b"q"));
        let m = h.recv(0).unwrap().unwrap();
        assert_eq!(m.header(), &words(&[6, 3, 0x8000_0001], b"")[..]);
        assert_eq!(m.body(), b"q");
        let mut reply = Message::from("r");
        reply.header_append(m.header()).unwrap();
        h.send_msg(0, reply).unwrap();
        assert_eq!(h.sent(), vec![(6, words(&[3, 0x8000_0001], b"r"))]);
    }

    #[test]
    fn unroutable_replies_are_dropped_silently() {
        let mut h = Harness::new(Protocol::Rep0, true);
        h.add(5);
        h.send_ok(0, b"no header");
        let mut unknown = Message::from("x");
        unknown.header_append_u32(99).unwrap();
        h.send_msg(0, unknown).unwrap();
        assert!(h.sent().is_empty());
        for i in 0..70u32 {
            let mut m = Message::from(&i.to_be_bytes()[..]);
            m.header_append_u32(5).unwrap();
            h.send_msg(0, m).unwrap();
        }
        assert_eq!(h.sent().len(), 1);
        let mut n = 0;
        loop {
            h.writable(5);
            if h.sent().is_empty() {
                break;
            }
            n += 1;
        }
        assert_eq!(n, 64, "xrep queues 64 per pipe");
    }

    #[test]
    fn ttl_and_garbage() {
        let mut h = Harness::new(Protocol::Rep0, true);
        h.add(1);
        let mut nine: Vec<u32> = (1..=8).collect();
        nine.push(0x8000_0001);
        h.deliver(1, &words(&nine, b""));
        assert_eq!(h.recv(0), Ok(None));
        h.deliver(1, &words(&nine[1..], b""));
        assert_eq!(
            h.recv(0).unwrap().unwrap().header().len(),
            36,
            "pipe id + 8 words"
        );
        h.drain();
        h.deliver(1, b"\x00\x00");
        assert_eq!(h.drain().closed, vec![1]);
        let d = h.proto.discards();
        assert_eq!((d.too_many_hops, d.malformed), (1, 1));
        assert_eq!(h.proto.open_ctx(), Err(Error::NotSup));
    }
}
