//! pair1 polyamorous: many peers; the message's pipe picks where a send goes
//! (NNG's src/sp/protocol/pair1/pair1_poly.c, nng_pair(7) "Polyamorous Mode").
//!
//! * Send: to `msg.pipe()`, or to the first connected pipe when the message names none
//!   (NNG's pipe id 0). An unknown destination, or one whose queue of 2 is full, drops the
//!   message silently: a slow peer never blocks the others. The hop count on the wire is 1.
//! * Receive: hop-count rules as pair1 (see [`crate::pair1`]); the message keeps the pipe
//!   it arrived on, so the user can answer it.

use std::collections::VecDeque;
use std::time::Instant;

use nanoport_engine::{Error, IdMap, Message, Now, PipeId, Result};

use crate::core::{opt, Action, CtxId, Discards, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::inbound::InboundQueue;
use crate::options::{buffer_size, buffer_value, max_ttl, BUFFER_RANGE, DEFAULT_MAX_TTL};
use crate::outbound::{OutboundPipe, WhenFull};
use crate::pair1::{take_hop_count, HopCheck};

/// Messages each pipe may have waiting behind the one in flight.
pub(crate) const POLY_PIPE_QUEUE: usize = 2;

/// The pair1 polyamorous state machine.
#[derive(Debug)]
pub(crate) struct Pair1Poly {
    /// Peer messages thrown away, by reason.
    discards: Discards,
    info: ProtoInfo,
    pipes: IdMap<PipeId, OutboundPipe>,
    connect_order: Vec<PipeId>,
    inbound: InboundQueue,
    ttl: u8,
    actions: VecDeque<Action>,
}

impl Pair1Poly {
    /// A cooked polyamorous pair1 socket.
    pub(crate) fn new(info: ProtoInfo) -> Pair1Poly {
        Pair1Poly {
            info,
            discards: Discards::default(),
            pipes: IdMap::default(),
            connect_order: Vec::new(),
            inbound: InboundQueue::new(0),
            ttl: DEFAULT_MAX_TTL,
            actions: VecDeque::new(),
        }
    }
}

impl ProtocolCore for Pair1Poly {
    fn info(&self) -> ProtoInfo {
        self.info
    }

    fn open_ctx(&mut self) -> Result<CtxId> {
        Err(Error::NotSup)
    }

    fn close_ctx(&mut self, _ctx: CtxId) {}

    fn add_pipe(&mut self, pipe: PipeId, _now: Now) {
        if self.pipes.insert(pipe, OutboundPipe::new()).is_none() {
            self.connect_order.push(pipe);
        }
    }

    fn remove_pipe(&mut self, pipe: PipeId, _now: Now) {
        if self.pipes.remove(&pipe).is_some() {
            self.connect_order.retain(|p| *p != pipe);
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
        match take_hop_count(&mut msg, self.ttl) {
            HopCheck::Accept => {
                self.inbound.push(pipe, msg);
                self.actions.push_back(Action::RecvReady(0));
            }
            HopCheck::Drop => self.discards.too_many_hops += 1,
            HopCheck::Malformed => {
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
        let named = msg.pipe_ref().map(|p| p.id()).filter(|id| id.0 != 0);
        let Some(dest) = named.or_else(|| self.connect_order.first().copied()) else {
            return Ok(());
        };
        let Some(out) = self.pipes.get_mut(&dest) else {
            return Ok(());
        };
        msg.header_clear();
        // Cannot fail: the header is empty.
        let _ = msg.header_append_u32(1);
        if let Some(now) = out.offer(msg, POLY_PIPE_QUEUE, WhenFull::DropNewest) {
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
        // Never blocks: a full or unknown destination drops the message.
        true
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn set_option(&mut self, _ctx: CtxId, name: &str, value: OptValue) -> Result<()> {
        match name {
            opt::MAX_TTL => self.ttl = max_ttl(&value)?,
            opt::RECV_BUF => {
                for p in self
                    .inbound
                    .set_capacity(buffer_size(&value, BUFFER_RANGE)?)
                {
                    if self.pipes.contains_key(&p) {
                        self.actions.push_back(Action::ResumePipe(p));
                    }
                }
            }
            opt::PAIR1_POLY => match value {
                OptValue::Bool(true) => {}
                OptValue::Bool(false) => return Err(Error::NotSup),
                _ => return Err(Error::BadType),
            },
            _ => return Err(Error::NotSup),
        }
        Ok(())
    }

    fn discards(&self) -> Discards {
        self.discards
    }

    fn get_option(&self, _ctx: CtxId, name: &str) -> Result<OptValue> {
        match name {
            opt::MAX_TTL => Ok(OptValue::Int(i32::from(self.ttl))),
            opt::RECV_BUF => Ok(buffer_value(self.inbound.capacity())),
            opt::PAIR1_POLY => Ok(OptValue::Bool(true)),
            _ => Err(Error::NotSup),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::{opt, OptValue};
    use crate::protocol::Protocol;
    use crate::testing::{pipe, words, Harness};
    use nanoport_engine::{Error, Message};

    fn to(pipe_id: u32, body: &str) -> Message {
        let mut m = Message::from(body);
        m.set_pipe(Some(pipe(pipe_id)));
        m
    }

    #[test]
    fn message_pipe_picks_the_destination() {
        let mut h = Harness::new(Protocol::Pair1Poly, false);
        h.add(1);
        h.add(2);
        h.send_msg(0, to(2, "for two")).unwrap();
        h.send_msg(0, to(1, "for one")).unwrap();
        h.send_msg(0, Message::from("first pipe")).unwrap();
        assert_eq!(
            h.sent(),
            vec![(2, words(&[1], b"for two")), (1, words(&[1], b"for one"))],
            "pipe 1 is busy, so the unaddressed message waits in its queue"
        );
        h.writable(1);
        assert_eq!(h.sent(), vec![(1, words(&[1], b"first pipe"))]);
    }

    #[test]
    fn unknown_or_full_destination_drops_silently() {
        let mut h = Harness::new(Protocol::Pair1Poly, false);
        h.send_msg(0, Message::from("no pipes")).unwrap();
        h.add(1);
        h.send_msg(0, to(9, "unknown")).unwrap();
        assert!(h.sent().is_empty());
        for i in 0..5 {
            h.send_msg(0, to(1, &format!("m{i}"))).unwrap();
        }
        assert_eq!(h.sent().len(), 1, "m0 in flight");
        h.writable(1);
        h.writable(1);
        h.writable(1);
        let rest: Vec<Vec<u8>> = h.sent().into_iter().map(|(_, b)| b).collect();
        assert_eq!(
            rest,
            vec![words(&[1], b"m1"), words(&[1], b"m2")],
            "queue of 2; m3, m4 dropped"
        );
    }

    #[test]
    fn received_messages_carry_their_pipe() {
        let mut h = Harness::new(Protocol::Pair1Poly, false);
        h.add(1);
        h.add(2);
        h.deliver(2, &words(&[1], b"from two"));
        h.deliver(1, &words(&[1], b"from one"));
        let a = h.recv(0).unwrap().unwrap();
        let b = h.recv(0).unwrap().unwrap();
        assert_eq!((a.pipe().unwrap().id().0, a.body()), (2, &b"from two"[..]));
        assert_eq!((b.pipe().unwrap().id().0, b.body()), (1, &b"from one"[..]));
        h.deliver(1, b"xy");
        assert_eq!(h.drain().closed, vec![1]);
    }

    #[test]
    fn options() {
        let mut h = Harness::new(Protocol::Pair1Poly, false);
        assert_eq!(h.get(0, opt::PAIR1_POLY), Ok(OptValue::Bool(true)));
        assert_eq!(h.get(0, opt::MAX_TTL), Ok(OptValue::Int(8)));
        assert_eq!(h.set(0, opt::MAX_TTL, OptValue::Int(15)), Ok(()));
        assert_eq!(h.get(0, opt::SEND_BUF), Err(Error::NotSup));
    }
}
