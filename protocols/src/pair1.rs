//! pair1 (monogamous): pair0's one-peer link plus a hop-count header (NNG's
//! src/sp/protocol/pair1/pair.c).
//!
//! * Cooked send: the header becomes the single word 1 (NNG sets 0 and increments on send).
//! * Raw send: the header must be exactly one word below 0xff, else the send fails with
//!   `Proto`; it goes out incremented by one.
//! * Receive: fewer than 4 bytes or a hop count above 0xff closes the pipe; a count above
//!   `ttl-max` drops the message; otherwise the count moves into the header, where the
//!   user sees it (cooked and raw alike, as NNG does).

use std::time::Instant;

use nanoport_engine::{Error, Message, Now, PipeId, Result};

use crate::core::{opt, Action, CtxId, Discards, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::options::{max_ttl, DEFAULT_MAX_TTL};
use crate::pair0::Pair0;
use crate::wire::take_first_word;

/// The largest hop count the header may carry.
pub(crate) const MAX_HOPS: u32 = 0xff;

/// What a hop-count header on a received message means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HopCheck {
    /// Deliver it; the count is now the header.
    Accept,
    /// Too many hops: drop the message, keep the pipe.
    Drop,
    /// Malformed: close the pipe.
    Malformed,
}

/// Moves a received message's hop count into its header and judges it against `ttl`.
pub(crate) fn take_hop_count(msg: &mut Message, ttl: u8) -> HopCheck {
    let Ok(hops) = take_first_word(msg) else {
        return HopCheck::Malformed;
    };
    if hops > MAX_HOPS {
        return HopCheck::Malformed;
    }
    if hops > u32::from(ttl) {
        return HopCheck::Drop;
    }
    msg.header_clear();
    // Cannot fail: the header is empty.
    let _ = msg.header_append_u32(hops);
    HopCheck::Accept
}

/// The pair1 state machine (monogamous).
#[derive(Debug)]
pub(crate) struct Pair1 {
    /// Peer messages thrown away, by reason.
    discards: Discards,
    link: Pair0,
    ttl: u8,
}

impl Pair1 {
    /// A pair1 socket, cooked or raw per `info`.
    pub(crate) fn new(info: ProtoInfo) -> Pair1 {
        Pair1 {
            link: Pair0::link(info),
            discards: Discards::default(),
            ttl: DEFAULT_MAX_TTL,
        }
    }

    fn raw(&self) -> bool {
        self.link.info().raw
    }
}

/// Reads a raw pair1 header: exactly one word, below 0xff.
fn raw_hop_count(msg: &Message) -> Option<u32> {
    let h = msg.header();
    let hops = u32::from_be_bytes(h.try_into().ok()?);
    (hops < MAX_HOPS).then_some(hops)
}

fn set_hop_count(msg: &mut Message, hops: u32) {
    msg.header_clear();
    // Cannot fail: the header is empty.
    let _ = msg.header_append_u32(hops);
}

impl ProtocolCore for Pair1 {
    fn info(&self) -> ProtoInfo {
        self.link.info()
    }

    fn open_ctx(&mut self) -> Result<CtxId> {
        Err(Error::NotSup)
    }

    fn close_ctx(&mut self, _ctx: CtxId) {}

    fn add_pipe(&mut self, pipe: PipeId, now: Now) {
        self.link.add_pipe(pipe, now);
    }

    fn remove_pipe(&mut self, pipe: PipeId, now: Now) {
        self.link.remove_pipe(pipe, now);
    }

    fn pipe_writable(&mut self, pipe: PipeId, now: Now) {
        self.link.pipe_writable(pipe, now);
    }

    fn wants_pipe_message(&self, pipe: PipeId) -> bool {
        self.link.wants_pipe_message(pipe)
    }

    fn pipe_message(&mut self, pipe: PipeId, mut msg: Message, _now: Now) {
        if !self.link.is_peer(pipe) {
            return;
        }
        match take_hop_count(&mut msg, self.ttl) {
            HopCheck::Accept => self.link.deliver(pipe, msg),
            HopCheck::Drop => self.discards.too_many_hops += 1,
            HopCheck::Malformed => {
                self.discards.malformed += 1;
                self.link.close_pipe(pipe);
            }
        }
    }

    fn try_send(
        &mut self,
        ctx: CtxId,
        mut msg: Message,
        now: Now,
    ) -> std::result::Result<(), SendBlock> {
        if !self.raw() {
            set_hop_count(&mut msg, 1);
            return self.link.try_send(ctx, msg, now);
        }
        let Some(hops) = raw_hop_count(&msg) else {
            return Err(SendBlock::Fail(Error::Proto, msg));
        };
        set_hop_count(&mut msg, hops + 1);
        self.link
            .try_send(ctx, msg, now)
            .map_err(|block| match block {
                SendBlock::Full(mut m) => {
                    set_hop_count(&mut m, hops);
                    SendBlock::Full(m)
                }
                fail => fail,
            })
    }

    fn try_recv(&mut self, ctx: CtxId, now: Now) -> Result<Option<Message>> {
        self.link.try_recv(ctx, now)
    }

    fn unrecv(&mut self, ctx: CtxId, msg: Message) {
        self.link.unrecv(ctx, msg);
    }

    fn timer(&mut self, _now: Now) {}

    fn next_timer(&self) -> Option<Instant> {
        None
    }

    fn recv_ready(&self) -> bool {
        self.link.recv_ready()
    }

    fn send_ready(&self) -> bool {
        self.link.send_ready()
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.link.poll_action()
    }

    fn set_option(&mut self, ctx: CtxId, name: &str, value: OptValue) -> Result<()> {
        match name {
            opt::MAX_TTL => {
                self.ttl = max_ttl(&value)?;
                Ok(())
            }
            opt::PAIR1_POLY => match value {
                OptValue::Bool(false) => Ok(()),
                OptValue::Bool(true) => Err(Error::NotSup),
                _ => Err(Error::BadType),
            },
            _ => self.link.set_option(ctx, name, value),
        }
    }

    fn discards(&self) -> Discards {
        self.discards
    }

    fn get_option(&self, ctx: CtxId, name: &str) -> Result<OptValue> {
        match name {
            opt::MAX_TTL => Ok(OptValue::Int(i32::from(self.ttl))),
            opt::PAIR1_POLY => Ok(OptValue::Bool(false)),
            _ => self.link.get_option(ctx, name),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::{opt, OptValue};
    use crate::protocol::Protocol;
    use crate::testing::{assert_send_fails, assert_send_full, words, Harness};
    use nanoport_engine::{Error, Message};

    #[test]
    fn cooked_send_puts_hop_count_one_on_the_wire() {
        let mut h = Harness::new(Protocol::Pair1, false);
        h.add(1);
        h.send_ok(0, b"hi");
        assert_eq!(h.sent(), vec![(1, vec![0, 0, 0, 1, b'h', b'i'])]);
    }

    #[test]
    fn receive_exposes_hop_count_as_header() {
        let mut h = Harness::new(Protocol::Pair1, false);
        h.add(1);
        h.deliver(1, &words(&[3], b"data"));
        let m = h.recv(0).unwrap().unwrap();
        assert_eq!(m.header(), &[0, 0, 0, 3]);
        assert_eq!(m.body(), b"data");
        assert_eq!(m.pipe().map(|p| p.id().0), Some(1));
    }

    #[test]
    fn malformed_headers_close_the_pipe() {
        for bad in [&b"abc"[..], &words(&[0x100], b"x")[..]] {
            let mut h = Harness::new(Protocol::Pair1, false);
            h.add(1);
            h.drain();
            h.deliver(1, bad);
            assert_eq!(h.drain().closed, vec![1], "{bad:?}");
            assert_eq!(h.recv(0), Ok(None));
            assert_eq!(h.proto.discards().malformed, 1, "{bad:?}");
        }
    }

    #[test]
    fn hop_count_over_ttl_is_dropped_but_pipe_kept() {
        let mut h = Harness::new(Protocol::Pair1, false);
        h.add(1);
        h.drain();
        h.deliver(1, &words(&[9], b"far"));
        h.deliver(1, &words(&[8], b"near"));
        let d = h.drain();
        assert!(d.closed.is_empty());
        assert_eq!(h.recv_body(0), b"near");
        h.set(0, opt::MAX_TTL, OptValue::Int(2)).unwrap();
        h.deliver(1, &words(&[3], b"x"));
        assert_eq!(h.recv(0), Ok(None));
        let d = h.proto.discards();
        assert_eq!((d.too_many_hops, d.malformed), (2, 0));
    }

    #[test]
    fn raw_send_checks_and_increments_the_header() {
        let mut h = Harness::new(Protocol::Pair1, true);
        assert_send_fails(h.send(0, b"no header"), Error::Proto);
        let mut too_far = Message::from("x");
        too_far.header_append_u32(0xff).unwrap();
        assert_send_fails(h.send_msg(0, too_far), Error::Proto);
        let mut m = Message::from("x");
        m.header_append_u32(4).unwrap();
        assert_send_full(h.send_msg(0, m.clone()));
        h.add(1);
        h.send_msg(0, m).unwrap();
        assert_eq!(h.sent(), vec![(1, words(&[5], b"x"))]);
    }

    #[test]
    fn raw_full_send_returns_the_header_unchanged() {
        let mut h = Harness::new(Protocol::Pair1, true);
        let mut m = Message::from("x");
        m.header_append_u32(4).unwrap();
        match h.send_msg(0, m) {
            Err(crate::core::SendBlock::Full(back)) => assert_eq!(back.header(), &[0, 0, 0, 4]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options() {
        let mut h = Harness::new(Protocol::Pair1, false);
        assert_eq!(h.get(0, opt::MAX_TTL), Ok(OptValue::Int(8)));
        assert_eq!(h.set(0, opt::MAX_TTL, OptValue::Int(16)), Err(Error::Inval));
        assert_eq!(h.set(0, opt::MAX_TTL, OptValue::Int(0)), Err(Error::Inval));
        assert_eq!(h.get(0, opt::PAIR1_POLY), Ok(OptValue::Bool(false)));
        assert_eq!(h.get(0, opt::SEND_BUF), Ok(OptValue::Int(0)));
        assert_eq!(h.get(0, opt::SUBSCRIBE), Err(Error::NotSup));
    }
}
