//! sub0: receive what matches the subscriptions, per context (NNG's sub0,
//! src/sp/protocol/pubsub0/sub.c).
//!
//! * A message matches a topic when its body starts with the topic's bytes; the empty
//!   topic matches everything. **With no subscriptions nothing is received.**
//! * Every context (the socket's is context 0) has its own topics and its own queue of
//!   `recv-buffer` messages (default 128, range 1..=8192). A message goes to every context
//!   it matches (clones share the body). A full queue drops the oldest message when
//!   `sub:prefnew` is true (the default), else the new one.
//! * Unsubscribing a topic that is not there is `NoEnt`; a successful unsubscribe removes
//!   queued messages that no longer match. Subscribing twice is a no-op.
//! * Raw (xsub): no filtering, no subscriptions, no contexts; everything is delivered.
//! * Sending is `NotSup`.
//!
//! A context's topics are a [`TopicSet`] (a radix tree) where NNG scans a list: matching
//! a message reads at most min(body length, longest topic) bytes and (un)subscribing
//! the topic's bytes, however many topics there are. A scan of 100,000 topics per
//! message, under the socket lock on the reactor thread, stalled every other socket
//! behind a flood of messages.

use std::collections::VecDeque;
use std::time::Instant;

use nanoport_engine::{Error, IdMap, Message, Now, PipeId, Result};

use crate::core::{opt, Action, CtxId, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::options::{boolean, buffer_size, buffer_value, bytes, NONEMPTY_BUFFER_RANGE};
use crate::topics::TopicSet;

/// NNG's default receive queue per sub context.
pub(crate) const DEFAULT_SUB_QUEUE: usize = 128;

/// One context's subscriptions and received messages.
#[derive(Debug)]
struct SubCtx {
    topics: TopicSet,
    queue: VecDeque<Message>,
    capacity: usize,
    prefer_new: bool,
}

impl SubCtx {
    fn new(capacity: usize, prefer_new: bool) -> SubCtx {
        SubCtx {
            topics: TopicSet::new(),
            queue: VecDeque::new(),
            capacity,
            prefer_new,
        }
    }

    /// Queues `msg` by the context's overflow rule; returns whether it was kept.
    fn offer(&mut self, msg: Message) -> bool {
        if self.queue.len() >= self.capacity {
            if !self.prefer_new {
                return false;
            }
            while self.queue.len() >= self.capacity.max(1) {
                self.queue.pop_front();
            }
        }
        self.queue.push_back(msg);
        true
    }

    fn shrink_to_capacity(&mut self) {
        while self.queue.len() > self.capacity {
            self.queue.pop_front();
        }
    }
}

/// The sub0 state machine (cooked, or raw xsub).
#[derive(Debug)]
pub(crate) struct Sub0 {
    info: ProtoInfo,
    ctxs: IdMap<CtxId, SubCtx>,
    next_ctx: CtxId,
    actions: VecDeque<Action>,
}

impl Sub0 {
    /// A sub0 socket with its context 0.
    pub(crate) fn new(info: ProtoInfo) -> Sub0 {
        let ctxs = IdMap::from_iter([(0, SubCtx::new(DEFAULT_SUB_QUEUE, true))]);
        Sub0 {
            info,
            ctxs,
            next_ctx: 1,
            actions: VecDeque::new(),
        }
    }

    fn ctx_mut(&mut self, ctx: CtxId) -> Result<&mut SubCtx> {
        self.ctxs.get_mut(&ctx).ok_or(Error::Closed)
    }
}

impl ProtocolCore for Sub0 {
    fn info(&self) -> ProtoInfo {
        self.info
    }

    fn open_ctx(&mut self) -> Result<CtxId> {
        if self.info.raw {
            return Err(Error::NotSup);
        }
        let (capacity, prefer_new) = self
            .ctxs
            .get(&0)
            .map_or((DEFAULT_SUB_QUEUE, true), |c| (c.capacity, c.prefer_new));
        let id = self.next_ctx;
        self.next_ctx = self.next_ctx.checked_add(1).ok_or(Error::NoMem)?;
        self.ctxs.insert(id, SubCtx::new(capacity, prefer_new));
        Ok(id)
    }

    fn close_ctx(&mut self, ctx: CtxId) {
        if ctx != 0 {
            self.ctxs.remove(&ctx);
        }
    }

    fn add_pipe(&mut self, _pipe: PipeId, _now: Now) {}

    fn remove_pipe(&mut self, _pipe: PipeId, _now: Now) {}

    fn pipe_writable(&mut self, _pipe: PipeId, _now: Now) {}

    fn pipe_message(&mut self, _pipe: PipeId, mut msg: Message, _now: Now) {
        // sub0 reads no header: a header inproc handed over is the body's start.
        msg.pull_up_header();
        let raw = self.info.raw;
        for (id, ctx) in &mut self.ctxs {
            if (raw || ctx.topics.matches(msg.body())) && ctx.offer(msg.clone()) {
                self.actions.push_back(Action::RecvReady(*id));
            }
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

    fn try_recv(&mut self, ctx: CtxId, _now: Now) -> Result<Option<Message>> {
        Ok(self.ctx_mut(ctx)?.queue.pop_front())
    }

    fn unrecv(&mut self, ctx: CtxId, msg: Message) {
        if let Some(c) = self.ctxs.get_mut(&ctx) {
            c.queue.push_front(msg);
            self.actions.push_back(Action::RecvReady(ctx));
        }
    }

    fn timer(&mut self, _now: Now) {}

    fn next_timer(&self) -> Option<Instant> {
        None
    }

    fn recv_ready(&self) -> bool {
        self.ctxs.get(&0).is_some_and(|c| !c.queue.is_empty())
    }

    fn send_ready(&self) -> bool {
        false
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn set_option(&mut self, ctx: CtxId, name: &str, value: OptValue) -> Result<()> {
        let raw = self.info.raw;
        let c = self.ctx_mut(ctx)?;
        match name {
            opt::RECV_BUF => {
                c.capacity = buffer_size(&value, NONEMPTY_BUFFER_RANGE)?;
                c.shrink_to_capacity();
            }
            opt::SUBSCRIBE | opt::UNSUBSCRIBE | opt::SUB_PREFER_NEW if raw => {
                return Err(Error::NotSup)
            }
            opt::SUB_PREFER_NEW => c.prefer_new = boolean(&value)?,
            opt::SUBSCRIBE => {
                // Already subscribed is success, as in NNG.
                c.topics.insert(bytes(&value)?);
            }
            opt::UNSUBSCRIBE => {
                if !c.topics.remove(bytes(&value)?) {
                    return Err(Error::NoEnt);
                }
                // Queued messages are matched again against what is left, each at the
                // cost of a delivery's match: bounded by recv-buffer, not by the topics.
                let SubCtx { topics, queue, .. } = c;
                queue.retain(|m| topics.matches(m.body()));
            }
            _ => return Err(Error::NotSup),
        }
        Ok(())
    }

    fn get_option(&self, ctx: CtxId, name: &str) -> Result<OptValue> {
        let c = self.ctxs.get(&ctx).ok_or(Error::Closed)?;
        match name {
            opt::RECV_BUF => Ok(buffer_value(c.capacity)),
            opt::SUB_PREFER_NEW if !self.info.raw => Ok(OptValue::Bool(c.prefer_new)),
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

    fn subscribe(h: &mut Harness, ctx: u32, topic: &[u8]) {
        h.set(ctx, opt::SUBSCRIBE, OptValue::Bytes(topic.to_vec()))
            .unwrap();
    }

    #[test]
    fn nothing_is_received_without_subscriptions() {
        let mut h = Harness::new(Protocol::Sub0, false);
        h.add(1);
        h.deliver(1, b"anything");
        assert_eq!(h.recv(0), Ok(None));
        assert!(h.drain().recv_ready.is_empty());
    }

    #[test]
    fn prefix_filtering() {
        let mut h = Harness::new(Protocol::Sub0, false);
        subscribe(&mut h, 0, b"weather.");
        for body in [
            &b"weather.rain"[..],
            b"sports.ball",
            b"weather",
            b"weather.",
        ] {
            h.deliver(1, body);
        }
        assert_eq!(h.recv_body(0), b"weather.rain");
        assert_eq!(h.recv_body(0), b"weather.");
        assert_eq!(h.recv(0), Ok(None));
        subscribe(&mut h, 0, b"");
        h.deliver(1, b"x");
        assert_eq!(h.recv_body(0), b"x");
    }

    #[test]
    fn unsubscribe_unknown_is_noent_and_known_purges_queue() {
        let mut h = Harness::new(Protocol::Sub0, false);
        assert_eq!(
            h.set(0, opt::UNSUBSCRIBE, OptValue::Bytes(b"a".to_vec())),
            Err(Error::NoEnt)
        );
        subscribe(&mut h, 0, b"a");
        subscribe(&mut h, 0, b"a");
        subscribe(&mut h, 0, b"b");
        h.deliver(1, b"a1");
        h.deliver(1, b"b1");
        h.set(0, opt::UNSUBSCRIBE, OptValue::Bytes(b"a".to_vec()))
            .unwrap();
        assert_eq!(
            h.set(0, opt::UNSUBSCRIBE, OptValue::Bytes(b"a".to_vec())),
            Err(Error::NoEnt),
            "the duplicate subscribe was a no-op"
        );
        assert_eq!(h.recv_body(0), b"b1");
        assert_eq!(h.recv(0), Ok(None));
    }

    /// Behaviour at the size a scan made slow; only answers are asserted, not time.
    #[test]
    fn a_hundred_thousand_subscriptions() {
        let topic = |i: u32| format!("t{i}.").into_bytes();
        let mut h = Harness::new(Protocol::Sub0, false);
        for i in 0..100_000 {
            subscribe(&mut h, 0, &topic(i));
        }
        subscribe(&mut h, 0, &topic(7));
        h.deliver(1, b"t99999.x");
        h.deliver(1, b"t100000.x");
        h.deliver(1, b"t7.");
        h.deliver(1, b"t7");
        assert_eq!(h.recv_body(0), b"t99999.x");
        assert_eq!(h.recv_body(0), b"t7.");
        assert_eq!(h.recv(0), Ok(None));
        h.deliver(1, b"t5.queued");
        h.deliver(1, b"t6.queued");
        for i in (0..100_000).filter(|i| *i != 6) {
            h.set(0, opt::UNSUBSCRIBE, OptValue::Bytes(topic(i)))
                .unwrap();
        }
        assert_eq!(
            h.set(0, opt::UNSUBSCRIBE, OptValue::Bytes(topic(5))),
            Err(Error::NoEnt)
        );
        assert_eq!(h.recv_body(0), b"t6.queued", "t5's message was purged");
        assert_eq!(h.recv(0), Ok(None));
        h.deliver(1, b"t5.late");
        h.deliver(1, b"t6.late");
        assert_eq!(h.recv_body(0), b"t6.late");
        h.set(0, opt::UNSUBSCRIBE, OptValue::Bytes(topic(6)))
            .unwrap();
        h.deliver(1, b"t6.after");
        assert_eq!(h.recv(0), Ok(None));
    }

    #[test]
    fn contexts_have_their_own_topics_and_queues() {
        let mut h = Harness::new(Protocol::Sub0, false);
        let c1 = h.proto.open_ctx().unwrap();
        let c2 = h.proto.open_ctx().unwrap();
        subscribe(&mut h, c1, b"x");
        subscribe(&mut h, c2, b"x");
        subscribe(&mut h, c2, b"y");
        h.deliver(1, b"x!");
        h.deliver(1, b"y!");
        let mut ready = h.drain().recv_ready;
        ready.sort();
        assert_eq!(ready, vec![c1, c2, c2]);
        assert_eq!(h.recv_body(c1), b"x!");
        assert_eq!(h.recv(c1), Ok(None));
        assert_eq!(h.recv_body(c2), b"x!");
        assert_eq!(h.recv_body(c2), b"y!");
        assert_eq!(h.recv(0), Ok(None));
        h.proto.close_ctx(c1);
        assert_eq!(h.recv(c1), Err(Error::Closed));
    }

    #[test]
    fn full_queue_drops_oldest_or_newest_by_prefnew() {
        let mut h = Harness::new(Protocol::Sub0, false);
        subscribe(&mut h, 0, b"");
        h.set(0, opt::RECV_BUF, OptValue::Int(2)).unwrap();
        for b in [b"1", b"2", b"3"] {
            h.deliver(1, b);
        }
        assert_eq!(
            (h.recv_body(0), h.recv_body(0)),
            (b"2".to_vec(), b"3".to_vec())
        );
        h.set(0, opt::SUB_PREFER_NEW, OptValue::Bool(false))
            .unwrap();
        for b in [b"4", b"5", b"6"] {
            h.deliver(1, b);
        }
        assert_eq!(
            (h.recv_body(0), h.recv_body(0)),
            (b"4".to_vec(), b"5".to_vec())
        );
        assert_eq!(h.recv(0), Ok(None));
    }

    #[test]
    fn default_queue_is_bounded_at_128() {
        let mut h = Harness::new(Protocol::Sub0, false);
        subscribe(&mut h, 0, b"");
        for i in 0..1000u32 {
            h.deliver(1, &i.to_be_bytes());
        }
        let mut n = 0;
        while let Ok(Some(_)) = h.recv(0) {
            n += 1;
        }
        assert_eq!(n, 128);
    }

    #[test]
    fn raw_delivers_everything_without_subscriptions() {
        let mut h = Harness::new(Protocol::Sub0, true);
        h.deliver(1, b"all");
        assert_eq!(h.recv_body(0), b"all");
        assert_eq!(
            h.set(0, opt::SUBSCRIBE, OptValue::Bytes(vec![])),
            Err(Error::NotSup)
        );
    }

    #[test]
    fn send_not_supported_and_options() {
        let mut h = Harness::new(Protocol::Sub0, false);
        assert_send_fails(h.send(0, b"x"), Error::NotSup);
        assert_eq!(h.get(0, opt::RECV_BUF), Ok(OptValue::Int(128)));
        assert_eq!(h.get(0, opt::SUB_PREFER_NEW), Ok(OptValue::Bool(true)));
        assert_eq!(h.set(0, opt::RECV_BUF, OptValue::Int(0)), Err(Error::Inval));
        assert_eq!(
            h.set(0, opt::SUBSCRIBE, OptValue::Int(1)),
            Err(Error::BadType)
        );
        assert_eq!(h.get(0, opt::SUBSCRIBE), Err(Error::NotSup));
        assert_eq!(h.get(0, opt::SEND_BUF), Err(Error::NotSup));
    }
}
