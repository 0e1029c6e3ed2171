//! Test harness: drives a protocol with events and collects what it asks for, with no
//! threads, sockets or sleeps (time is an `Instant` advanced by hand).

use std::sync::Arc;
use std::time::{Duration, Instant};

use nanoport_engine::{Message, Pipe, PipeId, PipeOps, Result};

use crate::core::{Action, CtxId, OptValue, ProtocolCore, SendBlock};
use crate::protocol::{open, Protocol};

/// A pipe that exists only as an id.
struct TestPipe(PipeId);

impl PipeOps for TestPipe {
    fn id(&self) -> PipeId {
        self.0
    }
    fn close(&self) {}
    fn option(&self, _name: &str) -> Result<String> {
        Err(nanoport_engine::Error::NotSup)
    }
    fn peer_protocol(&self) -> u16 {
        0
    }
}

/// A pipe handle for `id`.
pub(crate) fn pipe(id: u32) -> Pipe {
    Pipe::new(Arc::new(TestPipe(PipeId(id))))
}

/// The bytes a transport would put on the wire for `msg`: header then body.
pub(crate) fn wire(msg: &Message) -> Vec<u8> {
    let mut v = msg.header().to_vec();
    v.extend_from_slice(msg.body());
    v
}

/// Big-endian words followed by a payload.
pub(crate) fn words(ws: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = ws.iter().flat_map(|w| w.to_be_bytes()).collect();
    v.extend_from_slice(payload);
    v
}

/// The first big-endian word of `bytes`.
pub(crate) fn first_word(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The actions a batch of events produced, sorted by kind.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    /// `SendToPipe`: pipe id and wire bytes.
    pub(crate) sent: Vec<(u32, Vec<u8>)>,
    /// `SendToPipe` messages as they were.
    pub(crate) sent_msgs: Vec<(u32, Message)>,
    /// `ClosePipe`.
    pub(crate) closed: Vec<u32>,
    /// `RecvReady`.
    pub(crate) recv_ready: Vec<CtxId>,
    /// `SendReady`.
    pub(crate) send_ready: Vec<CtxId>,
    /// `ResumePipe`.
    pub(crate) resumed: Vec<u32>,
}

/// A protocol under test and the test's clock.
pub(crate) struct Harness {
    pub(crate) proto: Box<dyn ProtocolCore>,
    pub(crate) now: Instant,
}

impl Harness {
    /// Opens `p`.
    pub(crate) fn new(p: Protocol, raw: bool) -> Harness {
        Harness {
            proto: open(p, raw).expect("protocol opens"),
            now: Instant::now(),
        }
    }

    /// Adds pipe `id`.
    pub(crate) fn add(&mut self, id: u32) {
        self.proto.add_pipe(PipeId(id), self.now.into());
    }

    /// Removes pipe `id`.
    pub(crate) fn remove(&mut self, id: u32) {
        self.proto.remove_pipe(PipeId(id), self.now.into());
    }

    /// Pipe `id` finished its write.
    pub(crate) fn writable(&mut self, id: u32) {
        self.proto.pipe_writable(PipeId(id), self.now.into());
    }

    /// Whether the socket would read pipe `id`.
    pub(crate) fn wants(&self, id: u32) -> bool {
        self.proto.wants_pipe_message(PipeId(id))
    }

    /// Pipe `id` delivers `bytes` (header still in the body).
    pub(crate) fn deliver(&mut self, id: u32, bytes: &[u8]) {
        let mut m = Message::from(bytes);
        m.set_pipe(Some(pipe(id)));
        self.proto.pipe_message(PipeId(id), m, self.now.into());
    }

    /// The user sends `body` on `ctx`.
    pub(crate) fn send(&mut self, ctx: CtxId, body: &[u8]) -> std::result::Result<(), SendBlock> {
        self.proto
            .try_send(ctx, Message::from(body), self.now.into())
    }

    /// The user sends `msg` on `ctx`.
    pub(crate) fn send_msg(
        &mut self,
        ctx: CtxId,
        msg: Message,
    ) -> std::result::Result<(), SendBlock> {
        self.proto.try_send(ctx, msg, self.now.into())
    }

    /// The user sends `body` and it must be accepted.
    pub(crate) fn send_ok(&mut self, ctx: CtxId, body: &[u8]) {
        if let Err(e) = self.send(ctx, body) {
            panic!("send on ctx {ctx} refused: {e:?}");
        }
    }

    /// The user receives on `ctx`.
    pub(crate) fn recv(&mut self, ctx: CtxId) -> Result<Option<Message>> {
        self.proto.try_recv(ctx, self.now.into())
    }

    /// The user receives on `ctx` and a message must be there; returns its body.
    pub(crate) fn recv_body(&mut self, ctx: CtxId) -> Vec<u8> {
        match self.recv(ctx) {
            Ok(Some(m)) => m.body().to_vec(),
            other => panic!("expected a message on ctx {ctx}, got {other:?}"),
        }
    }

    /// Sets an option on `ctx`.
    pub(crate) fn set(&mut self, ctx: CtxId, name: &str, v: OptValue) -> Result<()> {
        self.proto.set_option(ctx, name, v)
    }

    /// Reads an option on `ctx`.
    pub(crate) fn get(&self, ctx: CtxId, name: &str) -> Result<OptValue> {
        self.proto.get_option(ctx, name)
    }

    /// Moves the clock on by `d`, running the protocol's timer if it is due.
    pub(crate) fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.proto.next_timer().is_some_and(|t| t <= self.now) {
            self.proto.timer(self.now.into());
        }
    }

    /// Drains the queued actions.
    pub(crate) fn drain(&mut self) -> Drained {
        let mut d = Drained::default();
        while let Some(a) = self.proto.poll_action() {
            match a {
                Action::SendToPipe(p, m) => {
                    d.sent.push((p.0, wire(&m)));
                    d.sent_msgs.push((p.0, m));
                }
                Action::ClosePipe(p) => d.closed.push(p.0),
                Action::RecvReady(c) => d.recv_ready.push(c),
                Action::SendReady(c) => d.send_ready.push(c),
                Action::ResumePipe(p) => d.resumed.push(p.0),
            }
        }
        d
    }

    /// Drains and returns only the sends as (pipe, wire bytes).
    pub(crate) fn sent(&mut self) -> Vec<(u32, Vec<u8>)> {
        self.drain().sent
    }
}

/// Asserts that a send was refused with `SendBlock::Fail(err, _)`.
pub(crate) fn assert_send_fails(
    r: std::result::Result<(), SendBlock>,
    err: nanoport_engine::Error,
) {
    match r {
        Err(SendBlock::Fail(e, _)) => assert_eq!(e, err),
        other => panic!("expected Fail({err:?}), got {other:?}"),
    }
}

/// Asserts that a send was told to wait with `SendBlock::Full`.
pub(crate) fn assert_send_full(r: std::result::Result<(), SendBlock>) {
    assert!(
        matches!(r, Err(SendBlock::Full(_))),
        "expected Full, got {r:?}"
    );
}
