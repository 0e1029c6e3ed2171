//! NNG 1.x's way to get a polyamorous pair1: a cooked pair1 socket starts monogamous and
//! becomes polyamorous when `pair1:polyamorous` is set to true before its first pipe
//! (afterwards the change is `State`, as in NNG). [`Pair1Modal`] holds whichever state
//! machine is current and forwards every event to it.

use std::time::Instant;

use nanoport_engine::{Error, Message, Now, PipeId, Result};

use crate::core::{opt, Action, CtxId, Discards, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use crate::options::boolean;
use crate::pair1::Pair1;
use crate::pair1_poly::Pair1Poly;

/// A cooked pair1 socket in its current mode.
#[derive(Debug)]
pub(crate) struct Pair1Modal {
    mode: Mode,
    /// A pipe was added: the mode is fixed from now on.
    started: bool,
}

#[derive(Debug)]
enum Mode {
    Mono(Pair1),
    Poly(Pair1Poly),
}

/// Runs `$body` on whichever state machine `$self` holds, bound as `$p`.
macro_rules! current {
    ($self:expr, $p:ident => $body:expr) => {
        match $self {
            Mode::Mono($p) => $body,
            Mode::Poly($p) => $body,
        }
    };
}

impl Pair1Modal {
    /// A cooked pair1 socket, monogamous until told otherwise.
    pub(crate) fn new(info: ProtoInfo) -> Pair1Modal {
        Pair1Modal {
            mode: Mode::Mono(Pair1::new(info)),
            started: false,
        }
    }

    fn is_poly(&self) -> bool {
        matches!(self.mode, Mode::Poly(_))
    }

    /// Switches mode, carrying over the options both modes share.
    fn switch(&mut self, poly: bool) {
        let info = current!(&self.mode, p => p.info());
        let mut next = if poly {
            Mode::Poly(Pair1Poly::new(info))
        } else {
            Mode::Mono(Pair1::new(info))
        };
        for name in [opt::MAX_TTL, opt::RECV_BUF] {
            if let Ok(v) = current!(&self.mode, p => p.get_option(0, name)) {
                // Cannot fail: the value came from the same option of a sibling mode.
                let _ = current!(&mut next, p => p.set_option(0, name, v));
            }
        }
        self.mode = next;
    }
}

impl ProtocolCore for Pair1Modal {
    fn info(&self) -> ProtoInfo {
        current!(&self.mode, p => p.info())
    }

    fn open_ctx(&mut self) -> Result<CtxId> {
        Err(Error::NotSup)
    }

    fn close_ctx(&mut self, _ctx: CtxId) {}

    fn add_pipe(&mut self, pipe: PipeId, now: Now) {
        self.started = true;
        current!(&mut self.mode, p => p.add_pipe(pipe, now))
    }

    fn remove_pipe(&mut self, pipe: PipeId, now: Now) {
        current!(&mut self.mode, p => p.remove_pipe(pipe, now))
    }

    fn pipe_writable(&mut self, pipe: PipeId, now: Now) {
        current!(&mut self.mode, p => p.pipe_writable(pipe, now))
    }

    fn wants_pipe_message(&self, pipe: PipeId) -> bool {
        current!(&self.mode, p => p.wants_pipe_message(pipe))
    }

    fn pipe_message(&mut self, pipe: PipeId, msg: Message, now: Now) {
        current!(&mut self.mode, p => p.pipe_message(pipe, msg, now))
    }

    fn try_send(
        &mut self,
        ctx: CtxId,
        msg: Message,
        now: Now,
    ) -> std::result::Result<(), SendBlock> {
        current!(&mut self.mode, p => p.try_send(ctx, msg, now))
    }

    fn try_recv(&mut self, ctx: CtxId, now: Now) -> Result<Option<Message>> {
        current!(&mut self.mode, p => p.try_recv(ctx, now))
    }

    fn unrecv(&mut self, ctx: CtxId, msg: Message) {
        current!(&mut self.mode, p => p.unrecv(ctx, msg))
    }

    fn timer(&mut self, _now: Now) {}

    fn next_timer(&self) -> Option<Instant> {
        None
    }

    fn recv_ready(&self) -> bool {
        current!(&self.mode, p => p.recv_ready())
    }

    fn send_ready(&self) -> bool {
        current!(&self.mode, p => p.send_ready())
    }

    fn poll_action(&mut self) -> Option<Action> {
        current!(&mut self.mode, p => p.poll_action())
    }

    fn set_option(&mut self, ctx: CtxId, name: &str, value: OptValue) -> Result<()> {
        if name == opt::PAIR1_POLY {
            let poly = boolean(&value)?;
            if poly != self.is_poly() {
                if self.started {
                    return Err(Error::State);
                }
                self.switch(poly);
            }
            return Ok(());
        }
        current!(&mut self.mode, p => p.set_option(ctx, name, value))
    }

    fn discards(&self) -> Discards {
        current!(&self.mode, p => p.discards())
    }

    fn get_option(&self, ctx: CtxId, name: &str) -> Result<OptValue> {
        current!(&self.mode, p => p.get_option(ctx, name))
    }
}

#[cfg(test)]
mod tests {
    use crate::core::{opt, OptValue};
    use crate::protocol::Protocol;
    use crate::testing::{pipe, words, Harness};
    use nanoport_engine::{Error, Message};

    #[test]
    fn option_switches_to_polyamorous_before_the_first_pipe() {
        let mut h = Harness::new(Protocol::Pair1, false);
        assert_eq!(h.get(0, opt::PAIR1_POLY), Ok(OptValue::Bool(false)));
        h.set(0, opt::MAX_TTL, OptValue::Int(3)).unwrap();
        h.set(0, opt::PAIR1_POLY, OptValue::Bool(true)).unwrap();
        assert_eq!(h.get(0, opt::PAIR1_POLY), Ok(OptValue::Bool(true)));
        assert_eq!(
            h.get(0, opt::MAX_TTL),
            Ok(OptValue::Int(3)),
            "shared options carry over"
        );
        h.add(1);
        h.add(2);
        assert!(h.drain().closed.is_empty(), "a second peer is welcome");
        let mut m = Message::from("to two");
        m.set_pipe(Some(pipe(2)));
        h.send_msg(0, m).unwrap();
        assert_eq!(h.sent(), vec![(2, words(&[1], b"to two"))]);
        assert_eq!(
            h.set(0, opt::PAIR1_POLY, OptValue::Bool(false)),
            Err(Error::State)
        );
        assert_eq!(h.set(0, opt::PAIR1_POLY, OptValue::Bool(true)), Ok(()));
    }

    #[test]
    fn monogamous_by_default() {
        let mut h = Harness::new(Protocol::Pair1, false);
        h.add(1);
        h.add(2);
        assert_eq!(h.drain().closed, vec![2]);
        assert_eq!(
            h.set(0, opt::PAIR1_POLY, OptValue::Bool(true)),
            Err(Error::State)
        );
        assert_eq!(
            h.set(0, opt::PAIR1_POLY, OptValue::Int(1)),
            Err(Error::BadType)
        );
    }
}
