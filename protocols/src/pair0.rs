//! pair0 (and the one-peer link under pair1): one peer at a time, both directions,
//! faithful with backpressure (NNG's src/sp/protocol/pair0/pair.c, nng_pair(7)).
//!
//! * A second pipe while one is connected is closed (NNG rejects it with `NNG_EBUSY`).
//! * Sends go straight to the idle peer; otherwise they wait in a queue of `send-buffer`
//!   messages (default 0); beyond that `try_send` says `Full`, also with no peer at all.
//! * Received messages wait in a queue of `recv-buffer` messages (default 0) plus the one
//!   the pipe holds; the peer is not read while that is full.
//! * Queued sends and received messages survive the peer's departure, for the next peer.

use std::collections::VecDeque;
use std::time::Instant;

use nanoport_engine::{Error, Message, Now, PipeId, Result};

use crate::core::{opt, Action, CtxId, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::inbound::InboundQueue;
use crate::options::{buffer_size, buffer_value, BUFFER_RANGE};

/// The pair0 state machine; also the link pair1 builds on.
#[derive(Debug)]
pub(crate) struct Pair0 {
    info: ProtoInfo,
    clears_header: bool,
    peer: Option<PipeId>,
    peer_busy: bool,
    send_queue: VecDeque<Message>,
    send_capacity: usize,
    inbound: InboundQueue,
    actions: VecDeque<Action>,
}

impl Pair0 {
    /// Queues a message from the peer as it is: its header, if any, is the caller's
    /// business (pair1 has put its hop count there).
    pub(crate) fn deliver(&mut self, pipe: PipeId, msg: Message) {
        if self.peer != Some(pipe) {
            return;
        }
        self.inbound.push(pipe, msg);
        self.actions.push_back(Action::RecvReady(0));
    }

    /// A pair0 socket: cooked sends clear any header the user left.
    pub(crate) fn new(info: ProtoInfo) -> Pair0 {
        let mut link = Pair0::link(info);
        link.clears_header = !info.raw;
        link
    }

    /// A one-peer link that sends headers as given (pair1 sets them).
    pub(crate) fn link(info: ProtoInfo) -> Pair0 {
        Pair0 {
            info,
            clears_header: false,
            peer: None,
            peer_busy: false,
            send_queue: VecDeque::new(),
            send_capacity: 0,
            inbound: InboundQueue::new(0),
            actions: VecDeque::new(),
        }
    }

    /// Whether `pipe` is the connected peer.
    pub(crate) fn is_peer(&self, pipe: PipeId) -> bool {
        self.peer == Some(pipe)
    }

    /// Asks the socket to close `pipe` (its peer spoke garbage).
    pub(crate) fn close_pipe(&mut self, pipe: PipeId) {
        self.actions.push_back(Action::ClosePipe(pipe));
    }

    fn write_to_peer(&mut self, peer: PipeId, msg: Message) {
        self.peer_busy = true;
        self.actions.push_back(Action::SendToPipe(peer, msg));
    }

    /// The peer is idle: give it the next queued message, and let senders retry.
    fn peer_idle(&mut self, peer: PipeId) {
        self.peer_busy = false;
        if let Some(msg) = self.send_queue.pop_front() {
            self.write_to_peer(peer, msg);
        }
        self.actions.push_back(Action::SendReady(0));
    }
}

impl ProtocolCore for Pair0 {
    fn info(&self) -> ProtoInfo {
        self.info
    }

    fn open_ctx(&mut self) -> Result<CtxId> {
        Err(Error::NotSup)
    }

    fn close_ctx(&mut self, _ctx: CtxId) {}

    fn add_pipe(&mut self, pipe: PipeId, _now: Now) {
        if self.peer.is_some() {
            self.actions.push_back(Action::ClosePipe(pipe));
            return;
        }
        self.peer = Some(pipe);
        self.peer_idle(pipe);
    }

    fn remove_pipe(&mut self, pipe: PipeId, _now: Now) {
        if self.peer == Some(pipe) {
            self.peer = None;
            self.peer_busy = false;
            self.inbound.pipe_gone(pipe);
        }
    }

    fn pipe_writable(&mut self, pipe: PipeId, _now: Now) {
        if self.peer == Some(pipe) {
            self.peer_idle(pipe);
        }
    }

    /// A rejected pipe is still read (its messages are dropped), so the socket notices
    /// when it finishes closing.
    fn wants_pipe_message(&self, pipe: PipeId) -> bool {
        self.peer != Some(pipe) || self.inbound.wants(pipe)
    }

    fn pipe_message(&mut self, pipe: PipeId, mut msg: Message, _now: Now) {
        // pair0 reads no header: a header inproc handed over is the body's start.
        msg.pull_up_header();
        self.deliver(pipe, msg);
    }

    fn try_send(
        &mut self,
        _ctx: CtxId,
        mut msg: Message,
        _now: Now,
    ) -> std::result::Result<(), SendBlock> {
        if self.clears_header {
            msg.header_clear();
        }
        match self.peer {
            Some(peer) if !self.peer_busy && self.send_queue.is_empty() => {
                self.write_to_peer(peer, msg)
            }
            _ if self.send_queue.len() < self.send_capacity => self.send_queue.push_back(msg),
            _ => return Err(SendBlock::Full(msg)),
        }
        Ok(())
    }

    fn try_recv(&mut self, _ctx: CtxId, _now: Now) -> Result<Option<Message>> {
        let Some(taken) = self.inbound.pop() else {
            return Ok(None);
        };
        if let Some(p) = taken.resume.filter(|p| Some(*p) == self.peer) {
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
        match self.peer {
            Some(_) if !self.peer_busy && self.send_queue.is_empty() => true,
            _ => self.send_queue.len() < self.send_capacity,
        }
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn set_option(&mut self, _ctx: CtxId, name: &str, value: OptValue) -> Result<()> {
        match name {
            opt::SEND_BUF => {
                self.send_capacity = buffer_size(&value, BUFFER_RANGE)?;
                self.actions.push_back(Action::SendReady(0));
            }
            opt::RECV_BUF => {
                let resumed = self
                    .inbound
                    .set_capacity(buffer_size(&value, BUFFER_RANGE)?);
                for p in resumed.into_iter().filter(|p| Some(*p) == self.peer) {
                    self.actions.push_back(Action::ResumePipe(p));
                }
            }
            _ => return Err(Error::NotSup),
        }
        Ok(())
    }

    fn get_option(&self, _ctx: CtxId, name: &str) -> Result<OptValue> {
        match name {
            opt::SEND_BUF => Ok(buffer_value(self.send_capacity)),
            opt::RECV_BUF => Ok(buffer_value(self.inbound.capacity())),
            _ => Err(Error::NotSup),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::opt;
    use crate::core::OptValue;
    use crate::protocol::Protocol;
    use crate::testing::{assert_send_full, Harness};
    use nanoport_engine::{Error, Message};

    #[test]
    fn second_pipe_is_closed_and_first_keeps_working() {
        let mut h = Harness::new(Protocol::Pair0, false);
        h.add(1);
        h.add(2);
        let d = h.drain();
        assert_eq!(d.closed, vec![2]);
        assert!(h.wants(2), "read on, so the socket sees the close");
        h.deliver(2, b"intruder");
        h.deliver(1, b"peer");
        assert_eq!(h.recv_body(0), b"peer");
        assert_eq!(h.recv(0), Ok(None));
        h.remove(2);
        h.send_ok(0, b"to peer");
        assert_eq!(h.sent(), vec![(1, b"to peer".to_vec())]);
    }

    #[test]
    fn unbuffered_send_blocks_without_peer_and_while_peer_busy() {
        let mut h = Harness::new(Protocol::Pair0, false);
        assert_send_full(h.send(0, b"nobody"));
        h.add(1);
        assert_eq!(h.drain().send_ready, vec![0]);
        h.send_ok(0, b"one");
        assert_send_full(h.send(0, b"two"));
        assert_eq!(h.sent(), vec![(1, b"one".to_vec())]);
        h.writable(1);
        assert_eq!(h.drain().send_ready, vec![0]);
        h.send_ok(0, b"two");
        assert_eq!(h.sent(), vec![(1, b"two".to_vec())]);
    }

    #[test]
    fn send_buffer_queues_in_order_and_survives_reconnect() {
        let mut h = Harness::new(Protocol::Pair0, false);
        h.set(0, opt::SEND_BUF, OptValue::Int(2)).unwrap();
        h.send_ok(0, b"a");
        h.send_ok(0, b"b");
        assert_send_full(h.send(0, b"c"));
        h.add(1);
        assert_eq!(h.sent(), vec![(1, b"a".to_vec())]);
        h.send_ok(0, b"c");
        h.writable(1);
        h.writable(1);
        assert_eq!(h.sent(), vec![(1, b"b".to_vec()), (1, b"c".to_vec())]);
    }

    #[test]
    fn receive_backpressure_pauses_the_peer_until_the_user_takes_one() {
        let mut h = Harness::new(Protocol::Pair0, false);
        h.add(1);
        assert!(h.wants(1));
        h.deliver(1, b"x");
        assert!(!h.wants(1), "recv-buffer 0: the pipe holds one message");
        assert_eq!(h.drain().recv_ready, vec![0]);
        assert_eq!(h.recv_body(0), b"x");
        assert_eq!(h.drain().resumed, vec![1]);
        assert!(h.wants(1));
    }

    #[test]
    fn cooked_send_clears_the_header() {
        let mut h = Harness::new(Protocol::Pair0, false);
        h.add(1);
        let mut m = Message::from("body");
        m.header_append_u32(7).unwrap();
        h.send_msg(0, m).unwrap();
        assert_eq!(h.sent(), vec![(1, b"body".to_vec())]);
    }

    #[test]
    fn options_defaults_ranges_and_unsupported() {
        let mut h = Harness::new(Protocol::Pair0, false);
        assert_eq!(h.get(0, opt::SEND_BUF), Ok(OptValue::Int(0)));
        assert_eq!(h.get(0, opt::RECV_BUF), Ok(OptValue::Int(0)));
        assert_eq!(
            h.set(0, opt::RECV_BUF, OptValue::Int(8193)),
            Err(Error::Inval)
        );
        assert_eq!(
            h.set(0, opt::SEND_BUF, OptValue::Int(-1)),
            Err(Error::Inval)
        );
        assert_eq!(h.set(0, opt::RECV_BUF, OptValue::Int(8192)), Ok(()));
        assert_eq!(h.get(0, opt::MAX_TTL), Err(Error::NotSup));
        assert_eq!(h.proto.open_ctx(), Err(Error::NotSup));
    }
}
