//! bus0: broadcast to directly connected peers, never to oneself (NNG's
//! src/sp/protocol/bus0/bus.c, and its nng_bus(7) page).
//!
//! * Send goes to every pipe; each has a queue of `send-buffer` messages (default 16,
//!   range 1..=8192) behind the one in flight, and a full queue drops the new message for
//!   that pipe. Sending never blocks. A cooked send clears the header.
//! * Raw: a received message gets the id of the pipe it came in on as its header; a raw
//!   send takes that word off and skips that pipe, so a device never echoes a message
//!   back where it came from.
//! * Receive queue: `recv-buffer` messages (default 16, range 1..=8192); when full, new
//!   messages are dropped.

use std::collections::VecDeque;
use std::time::Instant;

use nanoport_engine::{Error, IdMap, Message, Now, PipeId, Result};

use crate::core::{opt, Action, CtxId, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::options::{buffer_size, buffer_value, NONEMPTY_BUFFER_RANGE};
use crate::outbound::{OutboundPipe, WhenFull};

/// NNG's default bus queue depths, both directions.
pub(crate) const DEFAULT_BUS_QUEUE: usize = 16;

/// The bus0 state machine, cooked or raw.
#[derive(Debug)]
pub(crate) struct Bus0 {
    info: ProtoInfo,
    pipes: IdMap<PipeId, OutboundPipe>,
    pipe_queue: usize,
    received: VecDeque<Message>,
    recv_capacity: usize,
    actions: VecDeque<Action>,
}

impl Bus0 {
    /// A bus0 socket.
    pub(crate) fn new(info: ProtoInfo) -> Bus0 {
        Bus0 {
            info,
            pipes: IdMap::default(),
            pipe_queue: DEFAULT_BUS_QUEUE,
            received: VecDeque::new(),
            recv_capacity: DEFAULT_BUS_QUEUE,
            actions: VecDeque::new(),
        }
    }
}

impl ProtocolCore for Bus0 {
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

    fn pipe_message(&mut self, pipe: PipeId, mut msg: Message, _now: Now) {
        if !self.pipes.contains_key(&pipe) || self.received.len() >= self.recv_capacity {
            return;
        }
        // bus0 reads no header: a header inproc handed over is the body's start.
        msg.pull_up_header();
        if self.info.raw {
            // Cannot fail: the header is empty.
            let _ = msg.header_append_u32(pipe.0);
        }
        self.received.push_back(msg);
        self.actions.push_back(Action::RecvReady(0));
    }

    fn try_send(
        &mut self,
        _ctx: CtxId,
        mut msg: Message,
        _now: Now,
    ) -> std::result::Result<(), SendBlock> {
        let skip = if self.info.raw {
            msg.header_trim_u32().ok().map(PipeId)
        } else {
            None
        };
        msg.header_clear();
        for (pipe, out) in &mut self.pipes {
            if Some(*pipe) == skip {
                continue;
            }
            if let Some(now) = out.offer(msg.clone(), self.pipe_queue, WhenFull::DropNewest) {
                self.actions.push_back(Action::SendToPipe(*pipe, now));
            }
        }
        Ok(())
    }

    fn try_recv(&mut self, _ctx: CtxId, _now: Now) -> Result<Option<Message>> {
        Ok(self.received.pop_front())
    }

    fn unrecv(&mut self, _ctx: CtxId, msg: Message) {
        self.received.push_front(msg);
        self.actions.push_back(Action::RecvReady(0));
    }

    fn timer(&mut self, _now: Now) {}

    fn next_timer(&self) -> Option<Instant> {
        None
    }

    fn recv_ready(&self) -> bool {
        !self.received.is_empty()
    }

    fn send_ready(&self) -> bool {
        // Never blocks: a full pipe queue drops the new message.
        true
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn set_option(&mut self, _ctx: CtxId, name: &str, value: OptValue) -> Result<()> {
        match name {
            opt::SEND_BUF => {
                self.pipe_queue = buffer_size(&value, NONEMPTY_BUFFER_RANGE)?;
                for out in self.pipes.values_mut() {
                    out.truncate_oldest(self.pipe_queue);
                }
            }
            opt::RECV_BUF => {
                self.recv_capacity = buffer_size(&value, NONEMPTY_BUFFER_RANGE)?;
                self.received.truncate(self.recv_capacity);
            }
            _ => return Err(Error::NotSup),
        }
        Ok(())
    }

    fn get_option(&self, _ctx: CtxId, name: &str) -> Result<OptValue> {
        match name {
            opt::SEND_BUF => Ok(buffer_value(self.pipe_queue)),
            opt::RECV_BUF => Ok(buffer_value(self.recv_capacity)),
            _ => Err(Error::NotSup),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::{opt, OptValue};
    use crate::protocol::Protocol;
    use crate::testing::{words, Harness};
    use nanoport_engine::Error;

    #[test]
    fn send_reaches_every_peer_and_never_echoes() {
        let mut h = Harness::new(Protocol::Bus0, false);
        h.add(1);
        h.add(2);
        h.send_ok(0, b"hello");
        let mut sent = h.sent();
        sent.sort();
        assert_eq!(sent, vec![(1, b"hello".to_vec()), (2, b"hello".to_vec())]);
        assert_eq!(h.recv(0), Ok(None), "own message is not received back");
        h.deliver(1, b"from one");
        let m = h.recv(0).unwrap().unwrap();
        assert_eq!((m.body(), m.header()), (&b"from one"[..], &b""[..]));
        assert!(h.sent().is_empty(), "cooked bus does not relay");
    }

    #[test]
    fn raw_tags_with_receiving_pipe_and_skips_it_on_send() {
        let mut h = Harness::new(Protocol::Bus0, true);
        for p in [1, 2, 3] {
            h.add(p);
        }
        h.deliver(2, b"relay me");
        let m = h.recv(0).unwrap().unwrap();
        assert_eq!(m.header(), &words(&[2], b"")[..]);
        h.send_msg(0, m).unwrap();
        let mut sent = h.sent();
        sent.sort();
        assert_eq!(
            sent,
            vec![(1, b"relay me".to_vec()), (3, b"relay me".to_vec())]
        );
    }

    #[test]
    fn full_queues_drop_new_messages() {
        let mut h = Harness::new(Protocol::Bus0, false);
        h.add(1);
        h.set(0, opt::SEND_BUF, OptValue::Int(1)).unwrap();
        for b in [b"1", b"2", b"3"] {
            h.send_ok(0, b);
        }
        h.writable(1);
        h.writable(1);
        let sent: Vec<Vec<u8>> = h.sent().into_iter().map(|(_, b)| b).collect();
        assert_eq!(sent, vec![b"1".to_vec(), b"2".to_vec()]);
        for i in 0..20u8 {
            h.deliver(1, &[i]);
        }
        let mut got = Vec::new();
        while let Ok(Some(m)) = h.recv(0) {
            got.push(m.body()[0]);
        }
        assert_eq!(got, (0..16).collect::<Vec<u8>>());
    }

    #[test]
    fn options() {
        let mut h = Harness::new(Protocol::Bus0, false);
        assert_eq!(h.get(0, opt::SEND_BUF), Ok(OptValue::Int(16)));
        assert_eq!(h.get(0, opt::RECV_BUF), Ok(OptValue::Int(16)));
        assert_eq!(h.set(0, opt::SEND_BUF, OptValue::Int(0)), Err(Error::Inval));
        assert_eq!(
            h.set(0, opt::RECV_BUF, OptValue::Int(8193)),
            Err(Error::Inval)
        );
        assert_eq!(h.get(0, opt::MAX_TTL), Err(Error::NotSup));
        assert_eq!(h.proto.open_ctx(), Err(Error::NotSup));
    }
}
