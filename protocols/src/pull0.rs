//! pull0: fair-queue messages from pushers (NNG's src/sp/protocol/pipeline0/pull.c).
//!
//! Each pipe holds at most one received message; pipes holding one are served in the
//! order they filled, and a pipe is not read again until its message is taken, so a
//! fast pusher cannot starve the others nor grow the queue. Sending is `NotSup`.
//!
//! `recv-buffer` (default 0, range 0..=8192, as NNG 1.x's socket receive queue) adds a
//! buffer of that many messages in front of the per-pipe ones; NNG 2.x has none.

use std::collections::VecDeque;
use std::time::Instant;

use nanoport_engine::{Error, IdSet, Message, Now, PipeId, Result};

use crate::core::{opt, Action, CtxId, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::inbound::InboundQueue;
use crate::options::{buffer_size, buffer_value, BUFFER_RANGE};

/// The pull0 state machine (cooked and raw behave alike).
#[derive(Debug)]
pub(crate) struct Pull0 {
    info: ProtoInfo,
    pipes: IdSet<PipeId>,
    inbound: InboundQueue,
    actions: VecDeque<Action>,
}

impl Pull0 {
    /// A pull0 socket.
    pub(crate) fn new(info: ProtoInfo) -> Pull0 {
        Pull0 {
            info,
            pipes: IdSet::default(),
            inbound: InboundQueue::new(0),
            actions: VecDeque::new(),
        }
    }
}

impl ProtocolCore for Pull0 {
    fn info(&self) -> ProtoInfo {
        self.info
    }

    fn open_ctx(&mut self) -> Result<CtxId> {
        Err(Error::NotSup)
    }

    fn close_ctx(&mut self, _ctx: CtxId) {}

    fn add_pipe(&mut self, pipe: PipeId, _now: Now) {
        self.pipes.insert(pipe);
    }

    fn remove_pipe(&mut self, pipe: PipeId, _now: Now) {
        if self.pipes.remove(&pipe) {
            self.inbound.pipe_gone(pipe);
        }
    }

    fn pipe_writable(&mut self, _pipe: PipeId, _now: Now) {}

    fn wants_pipe_message(&self, pipe: PipeId) -> bool {
        self.inbound.wants(pipe)
    }

    fn pipe_message(&mut self, pipe: PipeId, mut msg: Message, _now: Now) {
        if self.pipes.contains(&pipe) {
            // pull0 reads no header: a header inproc handed over is the body's start.
            msg.pull_up_header();
            self.inbound.push(pipe, msg);
            self.actions.push_back(Action::RecvReady(0));
        }
    }

    fn try_send(
        &mut self,
        _ctx: CtxId,
        msg: Message,
        _now: Now,
    ) -> std::result::Result<(), SendBlock> {
        Err(SendBlock::Fail(Error::NotSup, msg))
    }

    fn try_recv(&mut self, _ctx: CtxId, _now: Now) -> Result<Option<Message>> {
        let Some(taken) = self.inbound.pop() else {
            return Ok(None);
        };
        if let Some(p) = taken.resume.filter(|p| self.pipes.contains(p)) {
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
        false
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn set_option(&mut self, _ctx: CtxId, name: &str, value: OptValue) -> Result<()> {
        match name {
            opt::RECV_BUF => {
                for p in self
                    .inbound
                    .set_capacity(buffer_size(&value, BUFFER_RANGE)?)
                {
                    if self.pipes.contains(&p) {
                        self.actions.push_back(Action::ResumePipe(p));
                    }
                }
                Ok(())
            }
            _ => Err(Error::NotSup),
        }
    }

    fn get_option(&self, _ctx: CtxId, name: &str) -> Result<OptValue> {
        match name {
            opt::RECV_BUF => Ok(buffer_value(self.inbound.capacity())),
            _ => Err(Error::NotSup),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::{opt, OptValue};
    use crate::protocol::Protocol;
    use crate::testing::{assert_send_fails, Harness};
    use nanoport_engine::Error;

    #[test]
    fn fair_queue_across_pipes() {
        let mut h = Harness::new(Protocol::Pull0, false);
        h.add(1);
        h.add(2);
        h.deliver(1, b"1a");
        assert!(!h.wants(1), "a pipe holds one message");
        h.deliver(2, b"2a");
        assert_eq!(h.recv_body(0), b"1a");
        assert_eq!(h.drain().resumed, vec![1]);
        h.deliver(1, b"1b");
        assert_eq!(h.recv_body(0), b"2a");
        assert_eq!(h.recv_body(0), b"1b");
        assert_eq!(h.recv(0), Ok(None));
    }

    #[test]
    fn gone_pipe_is_not_resumed() {
        let mut h = Harness::new(Protocol::Pull0, false);
        h.add(1);
        h.deliver(1, b"x");
        h.remove(1);
        assert_eq!(
            h.recv(0),
            Ok(None),
            "the gone pipe's held message is dropped, as NNG does"
        );
        assert!(h.drain().resumed.is_empty());
    }

    #[test]
    fn recv_buffer_holds_more_before_pausing() {
        let mut h = Harness::new(Protocol::Pull0, false);
        h.add(1);
        h.deliver(1, b"a");
        assert_eq!(h.set(0, opt::RECV_BUF, OptValue::Int(2)), Ok(()));
        assert_eq!(
            h.drain().resumed,
            vec![1],
            "the parked message moved into the buffer"
        );
        h.deliver(1, b"b");
        assert!(h.wants(1));
        h.deliver(1, b"c");
        assert!(!h.wants(1));
        for want in [b"a", b"b", b"c"] {
            assert_eq!(h.recv_body(0), want);
        }
    }

    #[test]
    fn send_not_supported_and_options() {
        let mut h = Harness::new(Protocol::Pull0, false);
        assert_send_fails(h.send(0, b"x"), Error::NotSup);
        assert_eq!(h.get(0, opt::RECV_BUF), Ok(OptValue::Int(0)));
        assert_eq!(
            h.set(0, opt::RECV_BUF, OptValue::Int(8193)),
            Err(Error::Inval)
        );
        assert_eq!(
            h.set(0, opt::SEND_BUF, OptValue::Int(1)),
            Err(Error::NotSup)
        );
    }
}
