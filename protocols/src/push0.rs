//! push0: load-balance messages over pullers (NNG's src/sp/protocol/pipeline0/push.c).
//!
//! * A send goes to the first idle pipe; a pipe rejoins the tail of the idle list when its
//!   write finishes, so peers that keep up are served round robin.
//! * With no idle pipe the message waits in a queue of `send-buffer` messages (default 0);
//!   beyond that `try_send` says `Full`.
//! * Receiving is `NotSup`; anything a puller sends is discarded.

use std::collections::VecDeque;
use std::time::Instant;

use nanoport_engine::{Error, IdSet, Message, Now, PipeId, Result};

use crate::core::{opt, Action, CtxId, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::options::{buffer_size, buffer_value, BUFFER_RANGE};

/// The push0 state machine (cooked and raw behave alike).
#[derive(Debug)]
pub(crate) struct Push0 {
    info: ProtoInfo,
    pipes: IdSet<PipeId>,
    idle_pipes: VecDeque<PipeId>,
    queue: VecDeque<Message>,
    queue_capacity: usize,
    actions: VecDeque<Action>,
}

impl Push0 {
    /// A push0 socket.
    pub(crate) fn new(info: ProtoInfo) -> Push0 {
        Push0 {
            info,
            pipes: IdSet::default(),
            idle_pipes: VecDeque::new(),
            queue: VecDeque::new(),
            queue_capacity: 0,
            actions: VecDeque::new(),
        }
    }

    fn pipe_idle(&mut self, pipe: PipeId) {
        if !self.pipes.contains(&pipe) {
            return;
        }
        match self.queue.pop_front() {
            Some(msg) => self.actions.push_back(Action::SendToPipe(pipe, msg)),
            None => self.idle_pipes.push_back(pipe),
        }
        self.actions.push_back(Action::SendReady(0));
    }
}

impl ProtocolCore for Push0 {
    fn info(&self) -> ProtoInfo {
        self.info
    }

    fn open_ctx(&mut self) -> Result<CtxId> {
        Err(Error::NotSup)
    }

    fn close_ctx(&mut self, _ctx: CtxId) {}

    fn add_pipe(&mut self, pipe: PipeId, _now: Now) {
        if self.pipes.insert(pipe) {
            self.pipe_idle(pipe);
        }
    }

    fn remove_pipe(&mut self, pipe: PipeId, _now: Now) {
        if self.pipes.remove(&pipe) {
            self.idle_pipes.retain(|p| *p != pipe);
        }
    }

    fn pipe_writable(&mut self, pipe: PipeId, _now: Now) {
        self.pipe_idle(pipe);
    }

    fn pipe_message(&mut self, _pipe: PipeId, _msg: Message, _now: Now) {}

    fn try_send(
        &mut self,
        _ctx: CtxId,
        mut msg: Message,
        _now: Now,
    ) -> std::result::Result<(), SendBlock> {
        if !self.info.raw {
            msg.header_clear();
        }
        if let Some(pipe) = self.idle_pipes.pop_front() {
            self.actions.push_back(Action::SendToPipe(pipe, msg));
        } else if self.queue.len() < self.queue_capacity {
            self.queue.push_back(msg);
        } else {
            return Err(SendBlock::Full(msg));
        }
        Ok(())
    }

    fn try_recv(&mut self, _ctx: CtxId, _now: Now) -> Result<Option<Message>> {
        Err(Error::NotSup)
    }

    fn unrecv(&mut self, _ctx: CtxId, _msg: Message) {}

    fn timer(&mut self, _now: Now) {}

    fn next_timer(&self) -> Option<Instant> {
        None
    }

    fn recv_ready(&self) -> bool {
        false
    }

    fn send_ready(&self) -> bool {
        !self.idle_pipes.is_empty() || self.queue.len() < self.queue_capacity
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn set_option(&mut self, _ctx: CtxId, name: &str, value: OptValue) -> Result<()> {
        match name {
            opt::SEND_BUF => {
                self.queue_capacity = buffer_size(&value, BUFFER_RANGE)?;
                self.actions.push_back(Action::SendReady(0));
                Ok(())
            }
            _ => Err(Error::NotSup),
        }
    }

    fn get_option(&self, _ctx: CtxId, name: &str) -> Result<OptValue> {
        match name {
            opt::SEND_BUF => Ok(buffer_value(self.queue_capacity)),
            _ => Err(Error::NotSup),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::{opt, OptValue};
    use crate::protocol::Protocol;
    use crate::testing::{assert_send_full, Harness};
    use nanoport_engine::Error;

    #[test]
    fn round_robin_across_three_pipes_in_connect_order() {
        let mut h = Harness::new(Protocol::Push0, false);
        for p in [1, 2, 3] {
            h.add(p);
        }
        for body in [&b"one"[..], b"two", b"three"] {
            h.send_ok(0, body);
        }
        assert_eq!(
            h.sent(),
            vec![
                (1, b"one".to_vec()),
                (2, b"two".to_vec()),
                (3, b"three".to_vec())
            ]
        );
        assert_send_full(h.send(0, b"four"));
        h.writable(2);
        h.writable(1);
        h.send_ok(0, b"four");
        h.send_ok(0, b"five");
        let pipes: Vec<u32> = h.sent().into_iter().map(|(p, _)| p).collect();
        assert_eq!(pipes, vec![2, 1], "pipes rejoin the tail as they finish");
    }

    #[test]
    fn send_buffer_absorbs_sends_while_no_pipe_is_idle() {
        let mut h = Harness::new(Protocol::Push0, false);
        assert_send_full(h.send(0, b"x"));
        h.set(0, opt::SEND_BUF, OptValue::Int(2)).unwrap();
        h.drain();
        h.send_ok(0, b"a");
        h.send_ok(0, b"b");
        assert_send_full(h.send(0, b"c"));
        h.add(1);
        let d = h.drain();
        assert_eq!(d.sent, vec![(1, b"a".to_vec())]);
        assert_eq!(d.send_ready, vec![0]);
        h.writable(1);
        assert_eq!(h.sent(), vec![(1, b"b".to_vec())]);
    }

    #[test]
    fn removed_pipe_is_not_used() {
        let mut h = Harness::new(Protocol::Push0, false);
        h.add(1);
        h.add(2);
        h.remove(1);
        h.send_ok(0, b"x");
        assert_eq!(h.sent(), vec![(2, b"x".to_vec())]);
    }

    #[test]
    fn recv_not_supported_and_options() {
        let mut h = Harness::new(Protocol::Push0, false);
        assert_eq!(h.recv(0), Err(Error::NotSup));
        h.add(1);
        h.drain();
        h.deliver(1, b"backwards");
        assert!(
            h.drain().closed.is_empty(),
            "push discards and keeps the pipe"
        );
        assert_eq!(h.get(0, opt::SEND_BUF), Ok(OptValue::Int(0)));
        assert_eq!(
            h.set(0, opt::SEND_BUF, OptValue::Int(8193)),
            Err(Error::Inval)
        );
        assert_eq!(h.get(0, opt::RECV_BUF), Err(Error::NotSup));
    }
}
