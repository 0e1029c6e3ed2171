//! req0 (cooked): send a request, receive its reply, resend when needed
//! (NNG's src/sp/protocol/reqrep0/req.c).
//!
//! * Each context has at most one request out. Its id comes from [`RequestIds`] (top bit
//!   set, random start, sequential) and is the whole header on the wire.
//! * A send goes to the first idle pipe (pipes rejoin the idle list when their write
//!   finishes: round robin among peers that keep up). With no idle pipe `try_send` says
//!   `Full` and the context waits for `SendReady`.
//! * A new send on a context cancels its previous request: the old id is freed (late
//!   replies to it are dropped), and a receive that was waiting for it fails with
//!   `Canceled` (the socket learns through `RecvReady(ctx)` and a `try_recv` that returns
//!   `Err(Canceled)` once).
//! * Resend: `req:resend-time` after the request went out (default 60 s, exact, not
//!   rounded to `req:resend-tick`), and at once when the pipe carrying it goes away. With
//!   resend disabled (zero or infinite), losing that pipe fails the receive with
//!   `ConnReset` (now, or on the next `try_recv`).
//! * Replies: fewer than 4 bytes closes the pipe; an unknown id (a replaced or answered
//!   request: stale or duplicate) drops the reply. A request only gets an id once it is
//!   on the wire, and a reply is taken from any pipe, even while the request waits to be
//!   resent.
//!   The delivered reply keeps its request id as the header.
//! * `try_recv` with no request out is `State`. Cancelling a waiting receive resets the
//!   context (the request is abandoned), as NNG does.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use nanoport_engine::{Error, IdMap, IdSet, Message, Now, PipeId, Result, Timeout};

use crate::core::{opt, Action, CtxId, Discards, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::options::{duration, max_ttl, positive_deadline, DEFAULT_MAX_TTL};
use crate::request_ids::RequestIds;
use crate::wire::take_first_word;

/// NNG's default `req:resend-time`.
pub(crate) const DEFAULT_RESEND_TIME: Duration = Duration::from_secs(60);

/// NNG's default `req:resend-tick`.
pub(crate) const DEFAULT_RESEND_TICK: Duration = Duration::from_secs(1);

/// A request that is out (or waiting to go out again).
#[derive(Debug)]
struct Request {
    id: u32,
    /// The request as it goes on the wire; clones share the body.
    msg: Message,
    /// The pipe carrying it, `None` while it waits for a pipe to resend on.
    pipe: Option<PipeId>,
    /// When it is resent, if resending is on.
    resend_at: Option<Instant>,
}

/// One context's request state.
#[derive(Debug)]
struct ReqCtx {
    resend_time: Timeout,
    request: Option<Request>,
    reply: Option<Message>,
    /// `try_recv` answered "wait": a receive is waiting on this context.
    recv_waiting: bool,
    /// An error the next `try_recv` reports once (`Canceled`, `ConnReset`).
    recv_error: Option<Error>,
    /// `try_send` answered `Full`: a send waits for an idle pipe.
    send_blocked: bool,
    /// The context is in the resend queue (entries are checked when popped).
    in_resend_queue: bool,
}

impl ReqCtx {
    fn new(resend_time: Timeout) -> ReqCtx {
        ReqCtx {
            resend_time,
            request: None,
            reply: None,
            recv_waiting: false,
            recv_error: None,
            send_blocked: false,
            in_resend_queue: false,
        }
    }
}

/// A connected pipe.
#[derive(Debug, Default)]
struct ReqPipe {
    busy: bool,
    /// Contexts whose request this pipe carries.
    carrying: IdSet<CtxId>,
}

/// The req0 state machine.
#[derive(Debug)]
pub(crate) struct Req0 {
    /// Peer messages thrown away, by reason.
    discards: Discards,
    info: ProtoInfo,
    pipes: IdMap<PipeId, ReqPipe>,
    idle_pipes: VecDeque<PipeId>,
    ctxs: IdMap<CtxId, ReqCtx>,
    next_ctx: CtxId,
    ids: RequestIds,
    resend_queue: VecDeque<CtxId>,
    resend_timers: BTreeSet<(Instant, CtxId)>,
    blocked_senders: VecDeque<CtxId>,
    ttl: u8,
    resend_tick: Timeout,
    actions: VecDeque<Action>,
}

impl Req0 {
    /// A cooked req0 socket with its context 0.
    pub(crate) fn new(info: ProtoInfo) -> Req0 {
        Req0::with_ids(info, RequestIds::new())
    }

    fn with_ids(info: ProtoInfo, ids: RequestIds) -> Req0 {
        let resend = Timeout::After(DEFAULT_RESEND_TIME);
        Req0 {
            info,
            discards: Discards::default(),
            pipes: IdMap::default(),
            idle_pipes: VecDeque::new(),
            ctxs: IdMap::from_iter([(0, ReqCtx::new(resend))]),
            next_ctx: 1,
            ids,
            resend_queue: VecDeque::new(),
            resend_timers: BTreeSet::new(),
            blocked_senders: VecDeque::new(),
            ttl: DEFAULT_MAX_TTL,
            resend_tick: Timeout::After(DEFAULT_RESEND_TICK),
            actions: VecDeque::new(),
        }
    }

    /// The next idle pipe, if any.
    fn take_idle_pipe(&mut self) -> Option<PipeId> {
        while let Some(p) = self.idle_pipes.pop_front() {
            if self.pipes.get(&p).is_some_and(|rp| !rp.busy) {
                return Some(p);
            }
        }
        None
    }

    /// Writes `ctx`'s request to the idle `pipe` and arms its resend.
    fn send_request_on(&mut self, pipe: PipeId, ctx_id: CtxId, now: Now) {
        let Some(ctx) = self.ctxs.get_mut(&ctx_id) else {
            return;
        };
        let Some(req) = ctx.request.as_mut() else {
            return;
        };
        let Some(rp) = self.pipes.get_mut(&pipe) else {
            return;
        };
        rp.busy = true;
        rp.carrying.insert(ctx_id);
        req.pipe = Some(pipe);
        if let Some(at) = req.resend_at.take() {
            self.resend_timers.remove(&(at, ctx_id));
        }
        req.resend_at = positive_deadline(ctx.resend_time, now.get());
        if let Some(at) = req.resend_at {
            self.resend_timers.insert((at, ctx_id));
        }
        self.actions
            .push_back(Action::SendToPipe(pipe, req.msg.clone()));
    }

    /// Takes `ctx`'s request off its pipe and sends it again, now or when a pipe is idle.
    fn resend(&mut self, ctx_id: CtxId, now: Now) {
        let Some(req) = self.ctxs.get_mut(&ctx_id).and_then(|c| c.request.as_mut()) else {
            return;
        };
        if let Some(p) = req.pipe.take() {
            if let Some(rp) = self.pipes.get_mut(&p) {
                rp.carrying.remove(&ctx_id);
            }
        }
        if let Some(at) = req.resend_at.take() {
            self.resend_timers.remove(&(at, ctx_id));
        }
        if let Some(pipe) = self.take_idle_pipe() {
            self.send_request_on(pipe, ctx_id, now);
        } else if let Some(ctx) = self.ctxs.get_mut(&ctx_id) {
            if !ctx.in_resend_queue {
                ctx.in_resend_queue = true;
                self.resend_queue.push_back(ctx_id);
            }
        }
    }

    /// Forgets `ctx`'s request: frees its id, its pipe slot and its timer.
    fn drop_request(&mut self, ctx_id: CtxId) {
        let Some(req) = self.ctxs.get_mut(&ctx_id).and_then(|c| c.request.take()) else {
            return;
        };
        self.ids.release(req.id);
        if let Some(p) = req.pipe {
            if let Some(rp) = self.pipes.get_mut(&p) {
                rp.carrying.remove(&ctx_id);
            }
        }
        if let Some(at) = req.resend_at {
            self.resend_timers.remove(&(at, ctx_id));
        }
    }

    /// `pipe` can take a write: a request waiting for resend gets it, else it joins the
    /// idle list and blocked senders retry.
    fn pipe_idle(&mut self, pipe: PipeId, now: Now) {
        let Some(rp) = self.pipes.get_mut(&pipe) else {
            return;
        };
        rp.busy = false;
        while let Some(ctx_id) = self.resend_queue.pop_front() {
            let Some(ctx) = self.ctxs.get_mut(&ctx_id) else {
                continue;
            };
            ctx.in_resend_queue = false;
            if ctx.request.as_ref().is_some_and(|r| r.pipe.is_none()) {
                self.send_request_on(pipe, ctx_id, now);
                return;
            }
        }
        self.idle_pipes.push_back(pipe);
        while let Some(ctx_id) = self.blocked_senders.pop_front() {
            if let Some(ctx) = self.ctxs.get_mut(&ctx_id) {
                ctx.send_blocked = false;
                self.actions.push_back(Action::SendReady(ctx_id));
            }
        }
    }

    /// Ends the request `ctx` waits on with `err` for its receiver.
    fn fail_request(&mut self, ctx_id: CtxId, err: Error) {
        self.drop_request(ctx_id);
        if let Some(ctx) = self.ctxs.get_mut(&ctx_id) {
            ctx.recv_error = Some(err);
            ctx.recv_waiting = false;
            self.actions.push_back(Action::RecvReady(ctx_id));
        }
    }
}

impl ProtocolCore for Req0 {
    fn info(&self) -> ProtoInfo {
        self.info
    }

    fn open_ctx(&mut self) -> Result<CtxId> {
        let resend = self
            .ctxs
            .get(&0)
            .map_or(Timeout::After(DEFAULT_RESEND_TIME), |c| c.resend_time);
        let id = self.next_ctx;
        self.next_ctx = self.next_ctx.checked_add(1).ok_or(Error::NoMem)?;
        self.ctxs.insert(id, ReqCtx::new(resend));
        Ok(id)
    }

    fn close_ctx(&mut self, ctx: CtxId) {
        if ctx != 0 {
            self.drop_request(ctx);
            self.ctxs.remove(&ctx);
        }
    }

    fn add_pipe(&mut self, pipe: PipeId, now: Now) {
        self.pipes.insert(pipe, ReqPipe::default());
        self.pipe_idle(pipe, now);
    }

    fn remove_pipe(&mut self, pipe: PipeId, now: Now) {
        let Some(rp) = self.pipes.remove(&pipe) else {
            return;
        };
        self.idle_pipes.retain(|p| *p != pipe);
        let mut carried: Vec<CtxId> = rp.carrying.into_iter().collect();
        carried.sort_unstable();
        for ctx_id in carried {
            let Some(ctx) = self.ctxs.get_mut(&ctx_id) else {
                continue;
            };
            if let Some(req) = ctx.request.as_mut() {
                req.pipe = None;
            }
            if positive_deadline(ctx.resend_time, now.get()).is_some() {
                self.resend(ctx_id, now);
            } else {
                self.fail_request(ctx_id, Error::ConnReset);
            }
        }
    }

    fn pipe_writable(&mut self, pipe: PipeId, now: Now) {
        self.pipe_idle(pipe, now);
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
        let Some(ctx_id) = self.ids.owner(id) else {
            self.discards.unmatched += 1;
            return;
        };
        let outstanding = self
            .ctxs
            .get(&ctx_id)
            .and_then(|c| c.request.as_ref())
            .is_some_and(|r| r.id == id);
        if !outstanding {
            self.discards.unmatched += 1;
            return;
        }
        self.drop_request(ctx_id);
        let Some(ctx) = self.ctxs.get_mut(&ctx_id) else {
            return;
        };
        msg.header_clear();
        // Cannot fail: the header is empty.
        let _ = msg.header_append_u32(id);
        ctx.reply = Some(msg);
        self.actions.push_back(Action::RecvReady(ctx_id));
    }

    fn try_send(
        &mut self,
        ctx_id: CtxId,
        mut msg: Message,
        now: Now,
    ) -> std::result::Result<(), SendBlock> {
        if !self.ctxs.contains_key(&ctx_id) {
            return Err(SendBlock::Fail(Error::Closed, msg));
        }
        self.drop_request(ctx_id);
        let idle = self.take_idle_pipe();
        let Some(ctx) = self.ctxs.get_mut(&ctx_id) else {
            return Err(SendBlock::Fail(Error::Closed, msg));
        };
        ctx.reply = None;
        ctx.recv_error = None;
        if ctx.recv_waiting {
            ctx.recv_waiting = false;
            ctx.recv_error = Some(Error::Canceled);
            self.actions.push_back(Action::RecvReady(ctx_id));
        }
        let Some(pipe) = idle else {
            if !ctx.send_blocked {
                ctx.send_blocked = true;
                self.blocked_senders.push_back(ctx_id);
            }
            return Err(SendBlock::Full(msg));
        };
        let id = self.ids.allocate(ctx_id);
        msg.header_clear();
        // Cannot fail: the header is empty.
        let _ = msg.header_append_u32(id);
        ctx.request = Some(Request {
            id,
            msg,
            pipe: None,
            resend_at: None,
        });
        self.send_request_on(pipe, ctx_id, now);
        Ok(())
    }

    fn try_recv(&mut self, ctx_id: CtxId, _now: Now) -> Result<Option<Message>> {
        let ctx = self.ctxs.get_mut(&ctx_id).ok_or(Error::Closed)?;
        if let Some(err) = ctx.recv_error.take() {
            return Err(err);
        }
        if let Some(reply) = ctx.reply.take() {
            ctx.recv_waiting = false;
            return Ok(Some(reply));
        }
        if ctx.request.is_some() {
            ctx.recv_waiting = true;
            return Ok(None);
        }
        Err(Error::State)
    }

    fn recv_cancelled(&mut self, ctx_id: CtxId) {
        self.drop_request(ctx_id);
        if let Some(ctx) = self.ctxs.get_mut(&ctx_id) {
            ctx.recv_waiting = false;
            ctx.reply = None;
        }
    }

    fn recv_not_waiting(&mut self, ctx_id: CtxId) {
        // The request stays out; only a later send should not see a waiting receive to
        // cancel.
        if let Some(ctx) = self.ctxs.get_mut(&ctx_id) {
            ctx.recv_waiting = false;
        }
    }

    fn unrecv(&mut self, ctx_id: CtxId, msg: Message) {
        if let Some(ctx) = self.ctxs.get_mut(&ctx_id) {
            ctx.reply = Some(msg);
            self.actions.push_back(Action::RecvReady(ctx_id));
        }
    }

    fn timer(&mut self, now: Now) {
        let now = now.get();
        while let Some(&(at, ctx_id)) = self.resend_timers.first() {
            if at > now {
                break;
            }
            self.resend_timers.remove(&(at, ctx_id));
            let due = self
                .ctxs
                .get(&ctx_id)
                .and_then(|c| c.request.as_ref())
                .is_some_and(|r| r.resend_at == Some(at));
            if due {
                self.resend(ctx_id, Now::at(now));
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.resend_timers.first().map(|(at, _)| *at)
    }

    fn recv_ready(&self) -> bool {
        self.ctxs
            .get(&0)
            .is_some_and(|c| c.recv_error.is_some() || c.reply.is_some())
    }

    fn send_ready(&self) -> bool {
        self.idle_pipes
            .iter()
            .any(|p| self.pipes.get(p).is_some_and(|rp| !rp.busy))
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn set_option(&mut self, ctx_id: CtxId, name: &str, value: OptValue) -> Result<()> {
        let ctx = self.ctxs.get_mut(&ctx_id).ok_or(Error::Closed)?;
        match name {
            opt::REQ_RESEND_TIME => ctx.resend_time = duration(&value)?,
            opt::MAX_TTL if ctx_id == 0 => self.ttl = max_ttl(&value)?,
            opt::REQ_RESEND_TICK if ctx_id == 0 => self.resend_tick = duration(&value)?,
            _ => return Err(Error::NotSup),
        }
        Ok(())
    }

    fn discards(&self) -> Discards {
        self.discards
    }

    fn get_option(&self, ctx_id: CtxId, name: &str) -> Result<OptValue> {
        let ctx = self.ctxs.get(&ctx_id).ok_or(Error::Closed)?;
        match name {
            opt::REQ_RESEND_TIME => Ok(OptValue::Duration(ctx.resend_time)),
            opt::MAX_TTL if ctx_id == 0 => Ok(OptValue::Int(i32::from(self.ttl))),
            opt::REQ_RESEND_TICK if ctx_id == 0 => Ok(OptValue::Duration(self.resend_tick)),
            _ => Err(Error::NotSup),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::Protocol;
    use crate::testing::{assert_send_full, first_word, words, Harness};

    fn harness() -> Harness {
        Harness {
            proto: Box::new(Req0::with_ids(
                Protocol::Req0.info(false),
                RequestIds::starting_at(0x8000_0010),
            )),
            now: Instant::now(),
        }
    }

    #[test]
    fn request_carries_its_id_and_reply_is_delivered() {
        let mut h = harness();
        h.add(1);
        h.send_ok(0, b"hi");
        assert_eq!(h.sent(), vec![(1, words(&[0x8000_0010], b"hi"))]);
        assert_eq!(h.recv(0), Ok(None));
        h.deliver(1, &words(&[0x8000_0010], b"ok"));
        assert_eq!(h.drain().recv_ready, vec![0]);
        let reply = h.recv(0).unwrap().unwrap();
        assert_eq!(reply.body(), b"ok");
        assert_eq!(reply.header(), &0x8000_0010u32.to_be_bytes());
        assert_eq!(
            h.recv(0),
            Err(Error::State),
            "reply consumed; no request out"
        );
    }

    #[test]
    fn random_start_in_the_id_range_then_sequential() {
        let mut h = Harness::new(Protocol::Req0, false);
        h.add(1);
        h.send_ok(0, b"a");
        h.writable(1);
        h.send_ok(0, b"b");
        let sent = h.sent();
        let (a, b) = (first_word(&sent[0].1), first_word(&sent[1].1));
        assert!(a >= 0x8000_0000);
        assert_eq!(b, if a == u32::MAX { 0x8000_0000 } else { a + 1 });
    }

    #[test]
    fn recv_without_request_is_state_error() {
        let mut h = harness();
        assert_eq!(h.recv(0), Err(Error::State));
    }

    #[test]
    fn send_with_no_idle_pipe_is_full_until_one_is() {
        let mut h = harness();
        assert_send_full(h.send(0, b"x"));
        h.add(1);
        assert_eq!(h.drain().send_ready, vec![0]);
        h.send_ok(0, b"x");
        let c = h.proto.open_ctx().unwrap();
        assert_send_full(h.send(c, b"y"));
        h.writable(1);
        assert_eq!(h.drain().send_ready, vec![c]);
        h.send_ok(c, b"y");
    }

    #[test]
    fn resend_after_resend_time() {
        let mut h = harness();
        h.set(
            0,
            opt::REQ_RESEND_TIME,
            OptValue::Duration(Timeout::After(Duration::from_secs(5))),
        )
        .unwrap();
        h.add(1);
        h.send_ok(0, b"q");
        let first = h.sent();
        h.writable(1);
        assert_eq!(h.proto.next_timer(), Some(h.now + Duration::from_secs(5)));
        h.advance(Duration::from_secs(4));
        assert!(h.sent().is_empty());
        h.advance(Duration::from_secs(1));
        assert_eq!(h.sent(), first, "same id, same payload");
        h.deliver(1, &words(&[0x8000_0010], b"r"));
        assert_eq!(h.recv_body(0), b"r");
        assert_eq!(h.proto.next_timer(), None);
    }

    #[test]
    fn default_resend_time_is_60s() {
        let mut h = harness();
        assert_eq!(
            h.get(0, opt::REQ_RESEND_TIME),
            Ok(OptValue::Duration(Timeout::After(Duration::from_secs(60))))
        );
        h.add(1);
        h.send_ok(0, b"q");
        assert_eq!(h.proto.next_timer(), Some(h.now + Duration::from_secs(60)));
    }

    #[test]
    fn resend_at_once_when_the_pipe_is_lost() {
        let mut h = harness();
        h.add(1);
        h.add(2);
        h.send_ok(0, b"q");
        assert_eq!(h.sent(), vec![(1, words(&[0x8000_0010], b"q"))]);
        h.remove(1);
        assert_eq!(h.sent(), vec![(2, words(&[0x8000_0010], b"q"))]);
    }

    #[test]
    fn lost_pipe_with_no_other_resends_when_a_pipe_comes() {
        let mut h = harness();
        h.add(1);
        h.send_ok(0, b"q");
        h.drain();
        h.remove(1);
        assert!(h.sent().is_empty());
        assert_eq!(h.recv(0), Ok(None), "still waiting for the reply");
        h.add(2);
        let d = h.drain();
        assert_eq!(d.sent, vec![(2, words(&[0x8000_0010], b"q"))]);
        assert!(
            d.send_ready.is_empty(),
            "the pipe went to the resend, not to new sends"
        );
    }

    #[test]
    fn reply_is_taken_while_the_request_waits_to_be_resent() {
        let mut h = harness();
        h.set(
            0,
            opt::REQ_RESEND_TIME,
            OptValue::Duration(Timeout::After(Duration::from_secs(1))),
        )
        .unwrap();
        h.add(1);
        h.send_ok(0, b"q");
        h.drain();
        h.advance(Duration::from_secs(1));
        assert!(
            h.sent().is_empty(),
            "pipe 1 is still busy: the resend waits"
        );
        h.deliver(1, &words(&[0x8000_0010], b"r"));
        assert_eq!(h.recv_body(0), b"r");
        h.writable(1);
        assert!(h.sent().is_empty(), "the answered request is not resent");
    }

    #[test]
    fn resend_disabled_pipe_loss_is_connreset() {
        for disabled in [Timeout::Infinite, Timeout::After(Duration::ZERO)] {
            let mut h = harness();
            h.set(0, opt::REQ_RESEND_TIME, OptValue::Duration(disabled))
                .unwrap();
            h.add(1);
            h.send_ok(0, b"q");
            assert_eq!(h.proto.next_timer(), None);
            assert_eq!(h.recv(0), Ok(None));
            h.drain();
            h.remove(1);
            assert_eq!(h.drain().recv_ready, vec![0]);
            assert_eq!(h.recv(0), Err(Error::ConnReset));
            assert_eq!(h.recv(0), Err(Error::State));
        }
    }

    #[test]
    fn new_send_cancels_the_waiting_recv_and_old_reply_is_dropped() {
        let mut h = harness();
        h.add(1);
        h.send_ok(0, b"old");
        assert_eq!(h.recv(0), Ok(None));
        h.writable(1);
        h.drain();
        h.send_ok(0, b"new");
        let d = h.drain();
        assert_eq!(d.recv_ready, vec![0]);
        assert_eq!(d.sent, vec![(1, words(&[0x8000_0011], b"new"))]);
        assert_eq!(
            h.recv(0),
            Err(Error::Canceled),
            "the old waiter learns it was cancelled"
        );
        h.deliver(1, &words(&[0x8000_0010], b"stale"));
        assert!(h.drain().recv_ready.is_empty());
        assert_eq!(h.recv(0), Ok(None));
        h.deliver(1, &words(&[0x8000_0011], b"fresh"));
        assert_eq!(h.recv_body(0), b"fresh");
    }

    #[test]
    fn duplicate_and_unknown_replies_are_dropped() {
        let mut h = harness();
        h.add(1);
        h.send_ok(0, b"q");
        h.deliver(1, &words(&[0x8000_0010], b"first"));
        h.deliver(1, &words(&[0x8000_0010], b"dup"));
        h.deliver(1, &words(&[0x9999_9999], b"unknown"));
        assert_eq!(h.recv_body(0), b"first");
        assert_eq!(h.recv(0), Err(Error::State));
        assert!(h.drain().closed.is_empty());
        let d = h.proto.discards();
        assert_eq!((d.unmatched, d.malformed, d.too_many_hops), (2, 0, 0));
    }

    #[test]
    fn short_reply_closes_the_pipe() {
        let mut h = harness();
        h.add(1);
        h.send_ok(0, b"q");
        h.drain();
        h.deliver(1, &[0x80, 0]);
        assert_eq!(h.drain().closed, vec![1]);
        assert_eq!(h.proto.discards().malformed, 1);
    }

    #[test]
    fn cancelled_recv_resets_the_context() {
        let mut h = harness();
        h.add(1);
        h.send_ok(0, b"q");
        assert_eq!(h.recv(0), Ok(None));
        h.proto.recv_cancelled(0);
        assert_eq!(h.proto.next_timer(), None);
        h.deliver(1, &words(&[0x8000_0010], b"late"));
        assert_eq!(h.recv(0), Err(Error::State));
    }

    #[test]
    fn nonblocking_recv_that_found_nothing_keeps_the_request() {
        let mut h = harness();
        h.add(1);
        h.send_ok(0, b"q");
        assert!(!h.proto.recv_ready());
        assert_eq!(h.recv(0), Ok(None));
        h.proto.recv_not_waiting(0);
        h.deliver(1, &words(&[0x8000_0010], b"a"));
        assert!(h.proto.recv_ready(), "the reply is there");
        assert_eq!(h.recv_body(0), b"a");
        assert!(!h.proto.recv_ready());
    }

    #[test]
    fn readiness_follows_pipes_and_outcomes() {
        let mut h = harness();
        h.set(
            0,
            opt::REQ_RESEND_TIME,
            OptValue::Duration(Timeout::Infinite),
        )
        .unwrap();
        assert!(!h.proto.send_ready(), "no pipe");
        h.add(1);
        assert!(h.proto.send_ready());
        h.send_ok(0, b"q");
        assert!(!h.proto.send_ready(), "the only pipe is writing");
        h.writable(1);
        assert!(h.proto.send_ready());
        assert!(!h.proto.recv_ready());
        h.remove(1);
        assert!(h.proto.recv_ready(), "the lost request's ConnReset waits");
        assert_eq!(h.recv(0), Err(Error::ConnReset));
        assert!(!h.proto.recv_ready());
    }

    #[test]
    fn hundred_contexts_each_get_their_own_reply() {
        let mut h = harness();
        h.add(1);
        let ctxs: Vec<CtxId> = (0..100).map(|_| h.proto.open_ctx().unwrap()).collect();
        let mut ids = std::collections::HashMap::new();
        for &c in &ctxs {
            h.send_ok(c, format!("req{c}").as_bytes());
            let sent = h.sent();
            assert_eq!(sent.len(), 1);
            let id = first_word(&sent[0].1);
            assert_eq!(&sent[0].1[4..], format!("req{c}").as_bytes());
            ids.insert(c, id);
            assert_eq!(h.recv(c), Ok(None));
            h.writable(1);
            h.drain();
        }
        for &c in ctxs.iter().rev() {
            h.deliver(1, &words(&[ids[&c]], format!("rep{c}").as_bytes()));
        }
        assert_eq!(h.drain().recv_ready.len(), 100);
        for &c in &ctxs {
            assert_eq!(h.recv_body(c), format!("rep{c}").as_bytes());
        }
    }

    #[test]
    fn round_robin_over_idle_pipes() {
        let mut h = harness();
        for p in 1..=3 {
            h.add(p);
        }
        let ctxs: Vec<CtxId> = (0..3).map(|_| h.proto.open_ctx().unwrap()).collect();
        for &c in &ctxs {
            h.send_ok(c, b"x");
        }
        let pipes: Vec<u32> = h.sent().into_iter().map(|(p, _)| p).collect();
        assert_eq!(pipes, vec![1, 2, 3]);
    }

    #[test]
    fn options() {
        let mut h = harness();
        assert_eq!(h.get(0, opt::MAX_TTL), Ok(OptValue::Int(8)));
        assert_eq!(
            h.get(0, opt::REQ_RESEND_TICK),
            Ok(OptValue::Duration(Timeout::After(Duration::from_secs(1))))
        );
        assert_eq!(h.set(0, opt::MAX_TTL, OptValue::Int(16)), Err(Error::Inval));
        assert_eq!(
            h.set(0, opt::REQ_RESEND_TIME, OptValue::Int(5)),
            Err(Error::BadType)
        );
        let c = h.proto.open_ctx().unwrap();
        assert_eq!(
            h.set(
                c,
                opt::REQ_RESEND_TICK,
                OptValue::Duration(Timeout::Infinite)
            ),
            Err(Error::NotSup)
        );
        h.set(
            c,
            opt::REQ_RESEND_TIME,
            OptValue::Duration(Timeout::Infinite),
        )
        .unwrap();
        assert_eq!(
            h.get(0, opt::REQ_RESEND_TIME),
            Ok(OptValue::Duration(Timeout::After(Duration::from_secs(60))))
        );
        assert_eq!(h.get(0, opt::SEND_BUF), Err(Error::NotSup));
    }
}
