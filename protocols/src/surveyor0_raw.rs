//! surveyor0 raw (xsurvey): surveys pass through with the user's header, broadcast to
//! every pipe with a per-pipe queue of 16 (full: skipped); responses have their one id
//! word moved into the header (fewer than 4 bytes closes the pipe). No ids, no deadline,
//! no contexts.

use std::collections::VecDeque;
use std::time::Instant;

use nanoport_engine::{Error, IdMap, Message, Now, PipeId, Result};

use crate::core::{opt, Action, CtxId, Discards, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::inbound::InboundQueue;
use crate::options::{max_ttl, DEFAULT_MAX_TTL};
use crate::outbound::{OutboundPipe, WhenFull};
use crate::wire::take_first_word;

/// xsurvey's per-pipe send queue.
pub(crate) const XSURVEY_PIPE_QUEUE: usize = 16;

/// The raw surveyor0 state machine.
#[derive(Debug)]
pub(crate) struct Surveyor0Raw {
    /// Peer messages thrown away, by reason.
    discards: Discards,
    info: ProtoInfo,
    pipes: IdMap<PipeId, OutboundPipe>,
    inbound: InboundQueue,
    ttl: u8,
    actions: VecDeque<Action>,
}

impl Surveyor0Raw {
    /// A raw surveyor.
    pub(crate) fn new(info: ProtoInfo) -> Surveyor0Raw {
        Surveyor0Raw {
            info,
            discards: Discards::default(),
            pipes: IdMap::default(),
            inbound: InboundQueue::new(1),
            ttl: DEFAULT_MAX_TTL,
            actions: VecDeque::new(),
        }
    }
}

impl ProtocolCore for Surveyor0Raw {
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
        let Ok(id) = take_first_word(&mut msg) else {
            self.discards.malformed += 1;
            self.actions.push_back(Action::ClosePipe(pipe));
            return;
        };
        msg.header_clear();
        // Cannot fail: the header is empty.
        let _ = msg.header_append_u32(id);
        self.inbound.push(pipe, msg);
        self.actions.push_back(Action::RecvReady(0));
    }

    fn try_send(
        &mut self,
        _ctx: CtxId,
        msg: Message,
        _now: Now,
    ) -> std::result::Result<(), SendBlock> {
        for (pipe, out) in &mut self.pipes {
            if let Some(now) = out.offer(msg.clone(), XSURVEY_PIPE_QUEUE, WhenFull::DropNewest) {
                self.actions.push_back(Action::SendToPipe(*pipe, now));
            }
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
        // Never blocks: a full pipe queue skips that pipe.
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
    use nanoport_engine::Message;

    #[test]
    fn passes_headers_through_both_ways() {
        let mut h = Harness::new(Protocol::Surveyor0, true);
        h.add(1);
        let mut m = Message::from("s");
        m.header_append_u32(0x8000_0042).unwrap();
        h.send_msg(0, m).unwrap();
        assert_eq!(h.sent(), vec![(1, words(&[0x8000_0042], b"s"))]);
        h.deliver(1, &words(&[0x8000_0042], b"r"));
        let r = h.recv(0).unwrap().unwrap();
        assert_eq!(
            (r.header(), r.body()),
            (&0x8000_0042u32.to_be_bytes()[..], &b"r"[..])
        );
        assert_eq!(h.proto.next_timer(), None);
        h.deliver(1, b"ab");
        assert_eq!(h.drain().closed, vec![1]);
    }
}
