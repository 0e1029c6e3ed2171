//! surveyor0 (cooked): broadcast a survey, collect responses until its deadline
//! (NNG's src/sp/protocol/survey0/survey.c).
//!
//! * A send starts a new survey on its context: the previous one ends (its id is freed,
//!   its queued responses flushed, a waiting receive fails with `Canceled`), a fresh id
//!   (top bit set, random start, sequential) becomes the header, and the survey goes to
//!   every pipe: straight to idle ones, else into a per-pipe queue of 8, skipped when that
//!   is full. Sending never blocks.
//! * The survey ends `surveyor:survey-time` later (default 1 s, per context; zero ends it
//!   at the next timer run, infinite never). At that
//!   moment its responses are flushed and the next `try_recv` on the context returns
//!   `Err(TimedOut)` once (`RecvReady` tells a waiting receiver); after that it is `State`,
//!   as it is with no survey at all.
//! * Responses: fewer than 4 bytes closes the pipe; an unknown or stale id, or a full
//!   queue (128 per context), drops the response. A delivered response keeps its survey id
//!   as the header.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use nanoport_engine::{Error, IdMap, Message, Now, PipeId, Result, Timeout};

use crate::core::{opt, Action, CtxId, Discards, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::options::{duration, max_ttl, DEFAULT_MAX_TTL};
use crate::outbound::{OutboundPipe, WhenFull};
use crate::request_ids::RequestIds;
use crate::wire::take_first_word;

/// NNG's default `surveyor:survey-time`.
pub(crate) const DEFAULT_SURVEY_TIME: Duration = Duration::from_secs(1);

/// Surveys each pipe may have waiting behind the one in flight.
pub(crate) const SURVEY_PIPE_QUEUE: usize = 8;

/// Responses each context holds.
pub(crate) const RESPONSE_QUEUE: usize = 128;

/// A survey in progress.
#[derive(Debug, Clone, Copy)]
struct Survey {
    id: u32,
    expires: Option<Instant>,
}

/// One context's survey state.
#[derive(Debug)]
struct SurveyCtx {
    survey_time: Timeout,
    survey: Option<Survey>,
    responses: VecDeque<Message>,
    recv_waiting: bool,
    /// An error the next `try_recv` reports once (`Canceled`, `TimedOut`).
    recv_error: Option<Error>,
}

impl SurveyCtx {
    fn new(survey_time: Timeout) -> SurveyCtx {
        SurveyCtx {
            survey_time,
            survey: None,
            responses: VecDeque::new(),
            recv_waiting: false,
            recv_error: None,
        }
    }
}

/// The cooked surveyor0 state machine.
#[derive(Debug)]
pub(crate) struct Surveyor0 {
    /// Peer messages thrown away, by reason.
    discards: Discards,
    info: ProtoInfo,
    pipes: IdMap<PipeId, OutboundPipe>,
    ctxs: IdMap<CtxId, SurveyCtx>,
    next_ctx: CtxId,
    ids: RequestIds,
    deadlines: BTreeSet<(Instant, CtxId)>,
    ttl: u8,
    actions: VecDeque<Action>,
}

impl Surveyor0 {
    /// A cooked surveyor with its context 0.
    pub(crate) fn new(info: ProtoInfo) -> Surveyor0 {
        Surveyor0::with_ids(info, RequestIds::new())
    }

    fn with_ids(info: ProtoInfo, ids: RequestIds) -> Surveyor0 {
        Surveyor0 {
            info,
            discards: Discards::default(),
            pipes: IdMap::default(),
            ctxs: IdMap::from_iter([(0, SurveyCtx::new(Timeout::After(DEFAULT_SURVEY_TIME)))]),
            next_ctx: 1,
            ids,
            deadlines: BTreeSet::new(),
            ttl: DEFAULT_MAX_TTL,
            actions: VecDeque::new(),
        }
    }

    /// Ends `ctx`'s survey: frees its id and deadline, flushes its responses.
    fn end_survey(&mut self, ctx_id: CtxId) {
        let Some(ctx) = self.ctxs.get_mut(&ctx_id) else {
            return;
        };
        ctx.responses.clear();
        if let Some(survey) = ctx.survey.take() {
            self.ids.release(survey.id);
            if let Some(at) = survey.expires {
                self.deadlines.remove(&(at, ctx_id));
            }
        }
    }
}

impl ProtocolCore for Surveyor0 {
    fn info(&self) -> ProtoInfo {
        self.info
    }

    fn open_ctx(&mut self) -> Result<CtxId> {
        let time = self
            .ctxs
            .get(&0)
            .map_or(Timeout::After(DEFAULT_SURVEY_TIME), |c| c.survey_time);
        let id = self.next_ctx;
        self.next_ctx = self.next_ctx.checked_add(1).ok_or(Error::NoMem)?;
        self.ctxs.insert(id, SurveyCtx::new(time));
        Ok(id)
    }

    fn close_ctx(&mut self, ctx: CtxId) {
        if ctx != 0 {
            self.end_survey(ctx);
            self.ctxs.remove(&ctx);
        }
    }

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
        if !self.pipes.contains_key(&pipe) {
            return;
        }
        let Ok(id) = take_first_word(&mut msg) else {
            self.discards.malformed += 1;
            self.actions.push_back(Action::ClosePipe(pipe));
            return;
        };
        let Some((ctx_id, ctx)) = self
            .ids
            .owner(id)
            .and_then(|c| self.ctxs.get_mut(&c).map(|ctx| (c, ctx)))
        else {
            self.discards.unmatched += 1;
            return;
        };
        if ctx.survey.is_none_or(|s| s.id != id) {
            self.discards.unmatched += 1;
            return;
        }
        // A full response queue drops, as NNG's does; that is load, not bad input.
        if ctx.responses.len() >= RESPONSE_QUEUE {
            return;
        }
        msg.header_clear();
        // Cannot fail: the header is empty.
        let _ = msg.header_append_u32(id);
        ctx.responses.push_back(msg);
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
        self.end_survey(ctx_id);
        let id = self.ids.allocate(ctx_id);
        let Some(ctx) = self.ctxs.get_mut(&ctx_id) else {
            return Err(SendBlock::Fail(Error::Closed, msg));
        };
        ctx.recv_error = None;
        if ctx.recv_waiting {
            ctx.recv_waiting = false;
            ctx.recv_error = Some(Error::Canceled);
            self.actions.push_back(Action::RecvReady(ctx_id));
        }
        let expires = ctx.survey_time.deadline_from(now.get());
        ctx.survey = Some(Survey { id, expires });
        if let Some(at) = expires {
            self.deadlines.insert((at, ctx_id));
        }
        msg.header_clear();
        // Cannot fail: the header is empty.
        let _ = msg.header_append_u32(id);
        for (pipe, out) in &mut self.pipes {
            if let Some(now) = out.offer(msg.clone(), SURVEY_PIPE_QUEUE, WhenFull::DropNewest) {
                self.actions.push_back(Action::SendToPipe(*pipe, now));
            }
        }
        Ok(())
    }

    fn try_recv(&mut self, ctx_id: CtxId, _now: Now) -> Result<Option<Message>> {
        let ctx = self.ctxs.get_mut(&ctx_id).ok_or(Error::Closed)?;
        if let Some(err) = ctx.recv_error.take() {
            return Err(err);
        }
        if let Some(m) = ctx.responses.pop_front() {
            return Ok(Some(m));
        }
        if ctx.survey.is_some() {
            ctx.recv_waiting = true;
            return Ok(None);
        }
        Err(Error::State)
    }

    fn recv_cancelled(&mut self, ctx_id: CtxId) {
        if let Some(ctx) = self.ctxs.get_mut(&ctx_id) {
            ctx.recv_waiting = false;
        }
    }

    fn unrecv(&mut self, ctx_id: CtxId, msg: Message) {
        if let Some(ctx) = self.ctxs.get_mut(&ctx_id) {
            ctx.responses.push_front(msg);
            self.actions.push_back(Action::RecvReady(ctx_id));
        }
    }

    fn timer(&mut self, now: Now) {
        let now = now.get();
        while let Some(&(at, ctx_id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, ctx_id));
            let due = self
                .ctxs
                .get(&ctx_id)
                .and_then(|c| c.survey)
                .is_some_and(|s| s.expires == Some(at));
            if !due {
                continue;
            }
            self.end_survey(ctx_id);
            if let Some(ctx) = self.ctxs.get_mut(&ctx_id) {
                ctx.recv_waiting = false;
                ctx.recv_error = Some(Error::TimedOut);
                self.actions.push_back(Action::RecvReady(ctx_id));
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    fn recv_ready(&self) -> bool {
        self.ctxs
            .get(&0)
            .is_some_and(|c| c.recv_error.is_some() || !c.responses.is_empty())
    }

    fn send_ready(&self) -> bool {
        // Never blocks: a new survey replaces the last; full pipe queues are skipped.
        true
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn set_option(&mut self, ctx_id: CtxId, name: &str, value: OptValue) -> Result<()> {
        let ctx = self.ctxs.get_mut(&ctx_id).ok_or(Error::Closed)?;
        match name {
            opt::SURVEY_TIME => ctx.survey_time = duration(&value)?,
            opt::MAX_TTL if ctx_id == 0 => self.ttl = max_ttl(&value)?,
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
            opt::SURVEY_TIME => Ok(OptValue::Duration(ctx.survey_time)),
            opt::MAX_TTL if ctx_id == 0 => Ok(OptValue::Int(i32::from(self.ttl))),
            _ => Err(Error::NotSup),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;
    use crate::testing::{first_word, words, Harness};

    const ID: u32 = 0x8000_0100;

    fn harness() -> Harness {
        let proto =
            Surveyor0::with_ids(Protocol::Surveyor0.info(false), RequestIds::starting_at(ID));
        Harness {
            proto: Box::new(proto),
            now: Instant::now(),
        }
    }

    #[test]
    fn broadcast_collect_then_time_out() {
        let mut h = harness();
        h.add(1);
        h.add(2);
        h.send_ok(0, b"who?");
        let mut sent = h.sent();
        sent.sort();
        assert_eq!(
            sent,
            vec![(1, words(&[ID], b"who?")), (2, words(&[ID], b"who?"))]
        );
        assert_eq!(h.recv(0), Ok(None));
        h.deliver(1, &words(&[ID], b"me"));
        let m = h.recv(0).unwrap().unwrap();
        assert_eq!((m.body(), m.header()), (&b"me"[..], &ID.to_be_bytes()[..]));
        assert_eq!(h.recv(0), Ok(None));
        h.drain();
        assert_eq!(h.proto.next_timer(), Some(h.now + Duration::from_secs(1)));
        h.advance(Duration::from_millis(999));
        assert!(h.drain().recv_ready.is_empty());
        h.advance(Duration::from_millis(1));
        assert_eq!(h.drain().recv_ready, vec![0]);
        assert_eq!(h.recv(0), Err(Error::TimedOut));
        assert_eq!(h.recv(0), Err(Error::State));
        h.deliver(2, &words(&[ID], b"too late"));
        assert_eq!(h.recv(0), Err(Error::State));
        assert_eq!(h.proto.next_timer(), None);
    }

    #[test]
    fn zero_survey_time_ends_at_once_and_infinite_never() {
        let mut h = harness();
        h.add(1);
        h.set(
            0,
            opt::SURVEY_TIME,
            OptValue::Duration(Timeout::After(Duration::ZERO)),
        )
        .unwrap();
        h.send_ok(0, b"s");
        h.advance(Duration::ZERO);
        assert_eq!(h.recv(0), Err(Error::TimedOut));
        h.set(0, opt::SURVEY_TIME, OptValue::Duration(Timeout::Infinite))
            .unwrap();
        h.send_ok(0, b"s");
        assert_eq!(h.proto.next_timer(), None);
        h.advance(Duration::from_secs(3600));
        assert_eq!(h.recv(0), Ok(None));
    }

    #[test]
    fn recv_without_survey_is_state() {
        let mut h = harness();
        assert_eq!(h.recv(0), Err(Error::State));
    }

    #[test]
    fn new_survey_cancels_the_old_and_drops_its_responses() {
        let mut h = harness();
        h.add(1);
        h.send_ok(0, b"first");
        h.deliver(1, &words(&[ID], b"queued old"));
        assert_eq!(h.recv_body(0), b"queued old");
        assert_eq!(h.recv(0), Ok(None));
        h.drain();
        h.send_ok(0, b"second");
        let d = h.drain();
        assert_eq!(d.recv_ready, vec![0]);
        assert!(
            d.sent.is_empty(),
            "pipe 1 is still busy with the first survey"
        );
        assert_eq!(h.recv(0), Err(Error::Canceled));
        h.writable(1);
        assert_eq!(h.sent(), vec![(1, words(&[ID + 1], b"second"))]);
        h.deliver(1, &words(&[ID], b"stale"));
        h.deliver(1, &words(&[ID + 1], b"fresh"));
        assert_eq!(h.recv_body(0), b"fresh");
        assert_eq!(h.recv(0), Ok(None));
    }

    #[test]
    fn busy_pipe_queues_eight_then_skips() {
        let mut h = harness();
        h.add(1);
        let c: Vec<CtxId> = (0..12).map(|_| h.proto.open_ctx().unwrap()).collect();
        for &ctx in &c {
            h.send_ok(ctx, b"s");
        }
        assert_eq!(h.sent().len(), 1);
        let mut more = 0;
        loop {
            h.writable(1);
            if h.sent().is_empty() {
                break;
            }
            more += 1;
        }
        assert_eq!(more, 8);
    }

    #[test]
    fn response_queue_holds_128() {
        let mut h = harness();
        h.add(1);
        h.send_ok(0, b"s");
        for _ in 0..200 {
            h.deliver(1, &words(&[ID], b"r"));
        }
        let mut n = 0;
        while let Ok(Some(_)) = h.recv(0) {
            n += 1;
        }
        assert_eq!(n, 128);
    }

    #[test]
    fn short_response_closes_the_pipe() {
        let mut h = harness();
        h.add(1);
        h.drain();
        h.deliver(1, b"abc");
        assert_eq!(h.drain().closed, vec![1]);
        assert_eq!(h.proto.discards().malformed, 1);
    }

    #[test]
    fn responses_to_no_survey_or_an_old_one_are_counted_unmatched() {
        let mut h = harness();
        h.add(1);
        h.deliver(1, &words(&[ID], b"before any survey"));
        h.send_ok(0, b"s");
        h.deliver(1, &words(&[0x8000_4321], b"someone else's id"));
        assert_eq!(h.recv(0), Ok(None));
        assert_eq!(h.proto.discards().unmatched, 2);
        assert_eq!(h.proto.discards().malformed, 0);
    }

    #[test]
    fn contexts_survey_independently() {
        let mut h = harness();
        h.add(1);
        let c = h.proto.open_ctx().unwrap();
        h.set(
            c,
            opt::SURVEY_TIME,
            OptValue::Duration(Timeout::After(Duration::from_secs(5))),
        )
        .unwrap();
        h.send_ok(0, b"a");
        h.writable(1);
        h.send_ok(c, b"b");
        let sent = h.sent();
        let (id0, idc) = (first_word(&sent[0].1), first_word(&sent[1].1));
        h.deliver(1, &words(&[idc], b"for c"));
        h.deliver(1, &words(&[id0], b"for 0"));
        assert_eq!(h.recv_body(0), b"for 0");
        assert_eq!(h.recv_body(c), b"for c");
        h.advance(Duration::from_secs(1));
        assert_eq!(h.recv(0), Err(Error::TimedOut));
        assert_eq!(h.recv(c), Ok(None));
        h.advance(Duration::from_secs(4));
        assert_eq!(h.recv(c), Err(Error::TimedOut));
    }

    #[test]
    fn options() {
        let mut h = harness();
        assert_eq!(
            h.get(0, opt::SURVEY_TIME),
            Ok(OptValue::Duration(Timeout::After(Duration::from_secs(1))))
        );
        assert_eq!(h.get(0, opt::MAX_TTL), Ok(OptValue::Int(8)));
        assert_eq!(
            h.set(0, opt::SURVEY_TIME, OptValue::Int(1)),
            Err(Error::BadType)
        );
        assert_eq!(h.set(0, opt::MAX_TTL, OptValue::Int(0)), Err(Error::Inval));
        assert_eq!(h.get(0, opt::SEND_BUF), Err(Error::NotSup));
    }
}
