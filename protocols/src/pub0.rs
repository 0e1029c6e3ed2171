//! pub0: broadcast to every subscriber; never blocks (NNG's src/sp/protocol/pubsub0/pub.c).
//!
//! * Each pipe has a queue of `send-buffer` messages (default 16, range 1..=8192) behind
//!   the one in flight; a full queue drops its **oldest** message.
//! * With no pipes a message is discarded; the send still succeeds.
//! * Receiving is `NotSup`; anything a subscriber sends closes its pipe.

use std::collections::VecDeque;
use std::time::Instant;

use nanoport_engine::{Error, IdMap, Message, Now, PipeId, Result};

use crate::core::{opt, Action, CtxId, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::options::{buffer_size, buffer_value, NONEMPTY_BUFFER_RANGE};
use crate::outbound::{OutboundPipe, WhenFull};

/// NNG's default per-subscriber queue depth ("fairly arbitrary").
pub(crate) const DEFAULT_PUB_QUEUE: usize = 16;

/// The pub0 state machine (cooked and raw behave alike).
#[derive(Debug)]
pub(crate) struct Pub0 {
    info: ProtoInfo,
    pipes: IdMap<PipeId, OutboundPipe>,
    queue_depth: usize,
    actions: VecDeque<Action>,
}

impl Pub0 {
    /// A pub0 socket.
    pub(crate) fn new(info: ProtoInfo) -> Pub0 {
        Pub0 {
            info,
            pipes: IdMap::default(),
            queue_depth: DEFAULT_PUB_QUEUE,
            actions: VecDeque::new(),
        }
    }
}

impl ProtocolCore for Pub0 {
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
        self.pipes.remove(&pipe);
    }

    fn pipe_writable(&mut self, pipe: PipeId, _now: Now) {
        if let Some(next) = self.pipes.get_mut(&pipe).and_then(OutboundPipe::writable) {
            self.actions.push_back(Action::SendToPipe(pipe, next));
        }
    }

    fn pipe_message(&mut self, pipe: PipeId, _msg: Message, _now: Now) {
        if self.pipes.contains_key(&pipe) {
            self.actions.push_back(Action::ClosePipe(pipe));
        }
    }

    fn try_send(
        &mut self,
        _ctx: CtxId,
        mut msg: Message,
        _now: Now,
    ) -> std::result::Result<(), SendBlock> {
        if !self.info.raw {
            msg.header_clear();
        }
        for (id, out) in &mut self.pipes {
            if let Some(now) = out.offer(msg.clone(), self.queue_depth, WhenFull::DropOldest) {
                self.actions.push_back(Action::SendToPipe(*id, now));
            }
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
        // Never blocks: a full queue drops its oldest message.
        true
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn set_option(&mut self, _ctx: CtxId, name: &str, value: OptValue) -> Result<()> {
        match name {
            opt::SEND_BUF => {
                self.queue_depth = buffer_size(&value, NONEMPTY_BUFFER_RANGE)?;
                for out in self.pipes.values_mut() {
                    out.truncate_oldest(self.queue_depth);
                }
                Ok(())
            }
            _ => Err(Error::NotSup),
        }
    }

    fn get_option(&self, _ctx: CtxId, name: &str) -> Result<OptValue> {
        match name {
            opt::SEND_BUF => Ok(buffer_value(self.queue_depth)),
            _ => Err(Error::NotSup),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::{opt, OptValue};
    use crate::protocol::Protocol;
    use crate::testing::Harness;
    use nanoport_engine::Error;

    #[test]
    fn broadcasts_to_every_pipe_and_never_blocks() {
        let mut h = Harness::new(Protocol::Pub0, false);
        h.send_ok(0, b"nobody listens");
        assert!(h.sent().is_empty());
        h.add(1);
        h.add(2);
        h.send_ok(0, b"news");
        let mut sent = h.sent();
        sent.sort();
        assert_eq!(sent, vec![(1, b"news".to_vec()), (2, b"news".to_vec())]);
    }

    #[test]
    fn slow_subscriber_loses_the_oldest() {
        let mut h = Harness::new(Protocol::Pub0, false);
        h.set(0, opt::SEND_BUF, OptValue::Int(2)).unwrap();
        h.add(1);
        for i in 0..5u8 {
            h.send_ok(0, &[i]);
        }
        assert_eq!(h.sent(), vec![(1, vec![0])]);
        for _ in 0..3 {
            h.writable(1);
        }
        assert_eq!(h.sent(), vec![(1, vec![3]), (1, vec![4])]);
    }

    #[test]
    fn recv_is_not_supported_and_talking_subscriber_is_closed() {
        let mut h = Harness::new(Protocol::Pub0, false);
        assert_eq!(h.recv(0), Err(Error::NotSup));
        h.add(1);
        h.deliver(1, b"hello?");
        assert_eq!(h.drain().closed, vec![1]);
    }

    #[test]
    fn options() {
        let mut h = Harness::new(Protocol::Pub0, false);
        assert_eq!(h.get(0, opt::SEND_BUF), Ok(OptValue::Int(16)));
        assert_eq!(h.set(0, opt::SEND_BUF, OptValue::Int(0)), Err(Error::Inval));
        assert_eq!(
            h.set(0, opt::SEND_BUF, OptValue::Int(8193)),
            Err(Error::Inval)
        );
        assert_eq!(h.get(0, opt::RECV_BUF), Err(Error::NotSup));
        assert_eq!(h.proto.open_ctx(), Err(Error::NotSup));
    }
}
