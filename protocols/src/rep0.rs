//! The cooked replier: rep0, and respondent0 which behaves the same way
//! (NNG's src/sp/protocol/reqrep0/rep.c and survey0/respond.c).
//!
//! * Receive: the backtrace moves from the body into the header, one word per hop up to
//!   and including the id (top bit set). More than `ttl-max` words drops the message; a
//!   body that runs out first is garbage and closes the pipe. Each pipe holds at most one
//!   received request and pipes are served in arrival order (fair queue). The context
//!   keeps the backtrace and the pipe; the user gets the payload with the header cleared.
//! * Send: `State` without a request; otherwise the reply carries the saved backtrace back
//!   to the pipe the request came from. If that pipe is gone the reply is discarded and
//!   the send succeeds; if it is busy the send waits (`Full`) for that pipe. One reply
//!   per request; receiving again abandons an unanswered request.
//! * Contexts: each has its own request; waiting receivers are woken one per request in
//!   the order they started waiting.

use std::collections::VecDeque;
use std::time::Instant;

use nanoport_engine::{Error, IdMap, Message, Now, PipeId, Result};

use crate::backtrace::{move_backtrace_to_header, Backtrace, BacktraceVerdict};
use crate::core::{opt, Action, CtxId, Discards, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::inbound::InboundQueue;
use crate::options::{max_ttl, DEFAULT_MAX_TTL};
use crate::wire::WireFront;

/// A connected pipe's write state.
#[derive(Debug, Default)]
struct ReplierPipe {
    busy: bool,
    /// Contexts whose reply waits for this pipe to finish its write.
    waiting_senders: VecDeque<CtxId>,
}

/// One context's request state.
#[derive(Debug, Default)]
struct ReplierCtx {
    /// The request being answered: where it came from and its backtrace.
    request: Option<(PipeId, Backtrace)>,
    recv_waiting: bool,
    send_waiting: bool,
}

/// The cooked rep0 / respondent0 state machine.
#[derive(Debug)]
pub(crate) struct Replier {
    /// Peer messages thrown away, by reason.
    discards: Discards,
    info: ProtoInfo,
    pipes: IdMap<PipeId, ReplierPipe>,
    inbound: InboundQueue,
    ctxs: IdMap<CtxId, ReplierCtx>,
    next_ctx: CtxId,
    recv_waiters: VecDeque<CtxId>,
    ttl: u8,
    actions: VecDeque<Action>,
}

impl Replier {
    /// A cooked replier with its context 0; `info` says whether it is rep or respondent.
    pub(crate) fn new(info: ProtoInfo) -> Replier {
        Replier {
            info,
            discards: Discards::default(),
            pipes: IdMap::default(),
            inbound: InboundQueue::new(0),
            ctxs: IdMap::from_iter([(0, ReplierCtx::default())]),
            next_ctx: 1,
            recv_waiters: VecDeque::new(),
            ttl: DEFAULT_MAX_TTL,
            actions: VecDeque::new(),
        }
    }

    /// Tells the longest-waiting receiver that a request is there.
    fn wake_one_receiver(&mut self) {
        while let Some(ctx_id) = self.recv_waiters.pop_front() {
            if let Some(ctx) = self.ctxs.get_mut(&ctx_id).filter(|c| c.recv_waiting) {
                ctx.recv_waiting = false;
                self.actions.push_back(Action::RecvReady(ctx_id));
                return;
            }
        }
    }

    /// Lets every sender waiting on `pipe` retry (it is idle or gone).
    fn release_senders(&mut self, waiting: VecDeque<CtxId>) {
        for ctx_id in waiting {
            if let Some(ctx) = self.ctxs.get_mut(&ctx_id) {
                ctx.send_waiting = false;
                self.actions.push_back(Action::SendReady(ctx_id));
            }
        }
    }
}

impl ProtocolCore for Replier {
    fn info(&self) -> ProtoInfo {
        self.info
    }

    fn open_ctx(&mut self) -> Result<CtxId> {
        let id = self.next_ctx;
        self.next_ctx = self.next_ctx.checked_add(1).ok_or(Error::NoMem)?;
        self.ctxs.insert(id, ReplierCtx::default());
        Ok(id)
    }

    fn close_ctx(&mut self, ctx: CtxId) {
        if ctx != 0 {
            self.ctxs.remove(&ctx);
            self.recv_waiters.retain(|c| *c != ctx);
        }
    }

    fn add_pipe(&mut self, pipe: PipeId, _now: Now) {
        self.pipes.insert(pipe, ReplierPipe::default());
    }

    fn remove_pipe(&mut self, pipe: PipeId, _now: Now) {
        if let Some(rp) = self.pipes.remove(&pipe) {
            self.inbound.pipe_gone(pipe);
            self.release_senders(rp.waiting_senders);
        }
    }

    fn pipe_writable(&mut self, pipe: PipeId, _now: Now) {
        if let Some(rp) = self.pipes.get_mut(&pipe) {
            rp.busy = false;
            let waiting = std::mem::take(&mut rp.waiting_senders);
            self.release_senders(waiting);
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
        match move_backtrace_to_header(&mut msg, wire, self.ttl) {
            BacktraceVerdict::Complete => {
                self.inbound.push(pipe, msg);
                self.wake_one_receiver();
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
        ctx_id: CtxId,
        mut msg: Message,
        _now: Now,
    ) -> std::result::Result<(), SendBlock> {
        let Some(ctx) = self.ctxs.get_mut(&ctx_id) else {
            return Err(SendBlock::Fail(Error::Closed, msg));
        };
        let Some((pipe, backtrace)) = ctx.request else {
            return Err(SendBlock::Fail(Error::State, msg));
        };
        let Some(rp) = self.pipes.get_mut(&pipe) else {
            ctx.request = None;
            return Ok(());
        };
        if rp.busy {
            if !ctx.send_waiting {
                ctx.send_waiting = true;
                rp.waiting_senders.push_back(ctx_id);
            }
            return Err(SendBlock::Full(msg));
        }
        ctx.request = None;
        backtrace.apply(&mut msg);
        rp.busy = true;
        self.actions.push_back(Action::SendToPipe(pipe, msg));
        Ok(())
    }

    fn try_recv(&mut self, ctx_id: CtxId, _now: Now) -> Result<Option<Message>> {
        if !self.ctxs.contains_key(&ctx_id) {
            return Err(Error::Closed);
        }
        let taken = self.inbound.pop();
        let Some(ctx) = self.ctxs.get_mut(&ctx_id) else {
            return Err(Error::Closed);
        };
        let Some(mut taken) = taken else {
            if !ctx.recv_waiting {
                ctx.recv_waiting = true;
                self.recv_waiters.push_back(ctx_id);
            }
            return Ok(None);
        };
        ctx.recv_waiting = false;
        ctx.request = Some((taken.pipe, Backtrace::from_header(&taken.msg)));
        taken.msg.header_clear();
        if let Some(p) = taken.resume.filter(|p| self.pipes.contains_key(p)) {
            self.actions.push_back(Action::ResumePipe(p));
        }
        if !self.inbound.is_empty() {
            self.wake_one_receiver();
        }
        Ok(Some(taken.msg))
    }

    fn recv_cancelled(&mut self, ctx_id: CtxId) {
        if let Some(ctx) = self.ctxs.get_mut(&ctx_id) {
            ctx.recv_waiting = false;
        }
        self.recv_waiters.retain(|c| *c != ctx_id);
        if !self.inbound.is_empty() {
            self.wake_one_receiver();
        }
    }

    fn unrecv(&mut self, ctx_id: CtxId, mut msg: Message) {
        let Some((pipe, backtrace)) = self.ctxs.get_mut(&ctx_id).and_then(|c| c.request.take())
        else {
            return;
        };
        backtrace.apply(&mut msg);
        self.inbound.unpop(pipe, msg);
        self.actions.push_back(Action::RecvReady(ctx_id));
        self.wake_one_receiver();
    }

    fn timer(&mut self, _now: Now) {}

    fn next_timer(&self) -> Option<Instant> {
        None
    }

    fn recv_ready(&self) -> bool {
        !self.inbound.is_empty()
    }

    fn send_ready(&self) -> bool {
        let Some((pipe, _)) = self.ctxs.get(&0).and_then(|c| c.request.as_ref()) else {
            return false;
        };
        // A gone pipe takes the reply too: it is discarded and the send succeeds.
        self.pipes.get(pipe).is_none_or(|rp| !rp.busy)
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn set_option(&mut self, ctx: CtxId, name: &str, value: OptValue) -> Result<()> {
        match name {
            opt::MAX_TTL if ctx == 0 => {
                self.ttl = max_ttl(&value)?;
                Ok(())
            }
            _ => Err(Error::NotSup),
        }
    }

    fn discards(&self) -> Discards {
        self.discards
    }

    fn get_option(&self, ctx: CtxId, name: &str) -> Result<OptValue> {
        match name {
            opt::MAX_TTL if ctx == 0 => Ok(OptValue::Int(i32::from(self.ttl))),
            _ => Err(Error::NotSup),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::{opt, CtxId, OptValue, ProtocolCore};
    use crate::protocol::Protocol;
    use crate::testing::{assert_send_fails, assert_send_full, words, Harness};
    use nanoport_engine::Error;

    #[test]
    fn reply_carries_the_backtrace_to_the_originating_pipe() {
        let mut h = Harness::new(Protocol::Rep0, false);
        h.add(1);
        h.add(2);
        h.deliver(2, &words(&[42, 0x8000_0001], b"ping"));
        let m = h.recv(0).unwrap().unwrap();
        assert_eq!(m.body(), b"ping");
        assert!(m.header().is_empty());
        assert_eq!(m.pipe().unwrap().id().0, 2);
        h.drain();
        h.send_ok(0, b"pong");
        assert_eq!(h.sent(), vec![(2, words(&[42, 0x8000_0001], b"pong"))]);
        assert_send_fails(h.send(0, b"again"), Error::State);
    }

    #[test]
    fn send_without_request_is_state_error() {
        let mut h = Harness::new(Protocol::Rep0, false);
        assert_send_fails(h.send(0, b"x"), Error::State);
    }

    #[test]
    fn reply_to_a_gone_pipe_is_discarded_as_success() {
        let mut h = Harness::new(Protocol::Rep0, false);
        h.add(1);
        h.deliver(1, &words(&[0x8000_0001], b"q"));
        h.recv_body(0);
        h.remove(1);
        h.send_ok(0, b"lost");
        assert!(h.sent().is_empty());
        assert_send_fails(h.send(0, b"x"), Error::State);
    }

    #[test]
    fn reply_waits_for_a_busy_pipe() {
        let mut h = Harness::new(Protocol::Rep0, false);
        let c = h.proto.open_ctx().unwrap();
        h.add(1);
        h.deliver(1, &words(&[0x8000_0001], b"a"));
        h.recv_body(0);
        h.deliver(1, &words(&[0x8000_0002], b"b"));
        h.recv_body(c);
        h.send_ok(0, b"ra");
        assert_send_full(h.send(c, b"rb"));
        h.drain();
        h.writable(1);
        assert_eq!(h.drain().send_ready, vec![c]);
        h.send_ok(c, b"rb");
        assert_eq!(h.sent(), vec![(1, words(&[0x8000_0002], b"rb"))]);
    }

    #[test]
    fn too_many_hops_dropped_and_garbage_closes() {
        let mut h = Harness::new(Protocol::Rep0, false);
        h.add(1);
        let mut nine: Vec<u32> = (1..=8).collect();
        nine.push(0x8000_0001);
        h.deliver(1, &words(&nine, b"far"));
        assert_eq!(h.recv(0), Ok(None));
        assert!(h.drain().closed.is_empty());
        let eight: Vec<u32> = nine[1..].to_vec();
        h.deliver(1, &words(&eight, b"near"));
        assert_eq!(h.recv_body(0), b"near");
        for garbage in [&b"abc"[..], &words(&[1, 2], b"x")[..]] {
            h.drain();
            h.deliver(1, garbage);
            assert_eq!(h.drain().closed, vec![1]);
        }
        h.set(0, opt::MAX_TTL, OptValue::Int(1)).unwrap();
        h.deliver(1, &words(&[1, 0x8000_0001], b"two hops"));
        h.deliver(1, &words(&[1, 2], b"dropped before running out"));
        assert_eq!(h.recv(0), Ok(None));
        assert!(h.drain().closed.is_empty());
        let d = h.proto.discards();
        assert_eq!((d.too_many_hops, d.malformed, d.unmatched), (3, 2, 0));
    }

    #[test]
    fn fair_queue_one_request_per_pipe() {
        let mut h = Harness::new(Protocol::Rep0, false);
        h.add(1);
        h.add(2);
        h.deliver(1, &words(&[0x8000_0001], b"1a"));
        assert!(!h.wants(1));
        h.deliver(2, &words(&[0x8000_0002], b"2a"));
        assert_eq!(h.recv_body(0), b"1a");
        assert_eq!(h.drain().resumed, vec![1]);
        h.deliver(1, &words(&[0x8000_0003], b"1b"));
        assert_eq!(h.recv_body(0), b"2a");
        assert_eq!(h.recv_body(0), b"1b");
    }

    #[test]
    fn contexts_answer_their_own_requests() {
        let mut h = Harness::new(Protocol::Rep0, false);
        h.add(1);
        let ctxs: Vec<CtxId> = (0..3).map(|_| h.proto.open_ctx().unwrap()).collect();
        for &c in &ctxs {
            assert_eq!(h.recv(c), Ok(None));
        }
        for (i, &c) in ctxs.iter().enumerate() {
            h.deliver(1, &words(&[0x8000_0000 + i as u32], b"q"));
            assert_eq!(h.drain().recv_ready, vec![c], "waiters are woken in order");
            h.recv_body(c);
        }
        for (i, &c) in ctxs.iter().enumerate().rev() {
            h.send_ok(c, b"r");
            assert_eq!(h.sent(), vec![(1, words(&[0x8000_0000 + i as u32], b"r"))]);
            h.writable(1);
        }
    }

    #[test]
    fn cancelled_receivers_do_not_pile_up() {
        let mut rep = super::Replier::new(Protocol::Rep0.info(false));
        let now = std::time::Instant::now();
        for _ in 0..1000 {
            assert_eq!(rep.try_recv(0, now.into()), Ok(None));
            rep.recv_cancelled(0);
        }
        assert_eq!(rep.try_recv(0, now.into()), Ok(None));
        assert_eq!(rep.recv_waiters.len(), 1);
    }

    #[test]
    fn cancelled_receiver_hands_the_request_to_the_next() {
        let mut h = Harness::new(Protocol::Rep0, false);
        let c = h.proto.open_ctx().unwrap();
        h.add(1);
        assert_eq!(h.recv(0), Ok(None));
        assert_eq!(h.recv(c), Ok(None));
        h.deliver(1, &words(&[0x8000_0001], b"q"));
        assert_eq!(h.drain().recv_ready, vec![0]);
        h.proto.recv_cancelled(0);
        assert_eq!(h.drain().recv_ready, vec![c]);
        assert_eq!(h.recv_body(c), b"q");
    }

    #[test]
    fn unrecv_puts_the_request_back() {
        let mut h = Harness::new(Protocol::Rep0, false);
        h.add(1);
        h.deliver(1, &words(&[7, 0x8000_0001], b"q"));
        let m = h.recv(0).unwrap().unwrap();
        h.proto.unrecv(0, m);
        assert_send_fails(h.send(0, b"r"), Error::State);
        assert_eq!(h.recv_body(0), b"q");
        h.send_ok(0, b"r");
        assert_eq!(h.sent(), vec![(1, words(&[7, 0x8000_0001], b"r"))]);
    }

    #[test]
    fn options() {
        let mut h = Harness::new(Protocol::Rep0, false);
        assert_eq!(h.get(0, opt::MAX_TTL), Ok(OptValue::Int(8)));
        assert_eq!(h.set(0, opt::MAX_TTL, OptValue::Int(15)), Ok(()));
        assert_eq!(h.set(0, opt::MAX_TTL, OptValue::Int(16)), Err(Error::Inval));
        assert_eq!(
            h.set(0, opt::MAX_TTL, OptValue::Bool(true)),
            Err(Error::BadType)
        );
        assert_eq!(h.get(0, opt::REQ_RESEND_TIME), Err(Error::NotSup));
    }
}
