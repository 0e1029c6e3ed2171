//! The contract between a protocol state machine and the socket that drives it.
//!
//! A protocol is pure: no threads, no sockets, no clocks. The socket feeds it events
//! (a pipe came or went, a pipe delivered a message or can take another, the user sends
//! or receives, time passed) and drains the [`Action`]s it queued in answer. Time is
//! passed in as `now`; the protocol says when it next wants [`ProtocolCore::timer`] through
//! [`ProtocolCore::next_timer`].
//!
//! Flow control follows NNG: the socket writes at most one message at a time to each
//! pipe. After `Action::SendToPipe(p, m)`, the protocol sends nothing more to `p` until the
//! socket calls [`ProtocolCore::pipe_writable`]`(p)`; a protocol queues (up to its send
//! buffer) or drops in between, as its NNG counterpart does.
//!
//! Messages from pipes arrive as they were on the wire: the protocol header is still at
//! the front of the body, and [`Message::pipe`] names the pipe. A cooked protocol moves its
//! header out of the body into [`Message::header`] (and strips it before handing the
//! message to the user, as NNG does); a raw one leaves the header on the message for the
//! user. Messages the protocol sends to pipes carry their header in `Message::header`; the
//! transport writes header then body.

use std::time::Instant;

use nanoport_engine::{Error, Message, Now, PipeId, Result, Timeout};

/// A context id. Context 0 is the socket's own context and always exists.
pub type CtxId = u32;

/// Static facts about a protocol, from NNG's protocol table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtoInfo {
    /// Own SP protocol id (req0 is 0x30).
    pub id: u16,
    /// The peer's protocol id (req0's peer is rep0, 0x31).
    pub peer_id: u16,
    /// Own name as NNG spells it ("req").
    pub name: &'static str,
    /// Peer's name ("rep").
    pub peer_name: &'static str,
    /// Whether the user can send on it (sub0 and pull0 cannot).
    pub can_send: bool,
    /// Whether the user can receive on it (pub0 and push0 cannot).
    pub can_recv: bool,
    /// Whether this is the raw variant.
    pub raw: bool,
}

/// What a protocol asks its socket to do.
#[derive(Debug)]
pub enum Action {
    /// Write `msg` to the pipe (which has no message in flight).
    SendToPipe(PipeId, Message),
    /// Close the pipe (peer spoke garbage, or the protocol rejects it).
    ClosePipe(PipeId),
    /// Context `ctx` may now be able to receive: retry its waiting receivers.
    RecvReady(CtxId),
    /// Context `ctx` may now be able to send: retry its waiting senders.
    SendReady(CtxId),
    /// The protocol can take messages from `pipe` again, after
    /// [`ProtocolCore::wants_pipe_message`] said no (backpressure).
    ResumePipe(PipeId),
}

/// Messages from peers that a protocol threw away, by reason. Bad input from the network
/// is answered by dropping the message (or closing the pipe), never by a panic; these
/// counters make each such drop visible, as NNG's statistics do.
///
/// ```
/// use nanoport_protocols::Discards;
/// let d = Discards::default();
/// assert_eq!(d.total(), 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Discards {
    /// A protocol header shorter than the protocol needs, or invalid (a backtrace with no
    /// request id, a pair1 hop count over 255): the message is dropped and the pipe closed.
    pub malformed: u64,
    /// A backtrace or hop count longer than the socket's `ttl-max`: the message is dropped,
    /// the pipe kept.
    pub too_many_hops: u64,
    /// A well-formed reply or response that matches nothing outstanding (late, duplicate,
    /// or for a survey that ended): dropped.
    pub unmatched: u64,
}

impl Discards {
    /// All discarded messages.
    pub fn total(&self) -> u64 {
        self.malformed + self.too_many_hops + self.unmatched
    }
}

/// Why a send did not go through.
#[derive(Debug)]
pub enum SendBlock {
    /// No room now: keep the operation waiting and retry after `Action::SendReady`.
    Full(Message),
    /// The send fails with this error (`NotSup`, `State`, ...); the message goes back to
    /// the user.
    Fail(Error, Message),
}

/// A typed option value. Names and types are NNG's (`"ttl-max"` is an `Int`,
/// `"req:resend-time"` a `Duration`, `"sub:subscribe"` `Bytes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptValue {
    /// `int` options.
    Int(i32),
    /// `bool` options.
    Bool(bool),
    /// `nng_duration` options.
    Duration(Timeout),
    /// `size_t` options.
    Size(usize),
    /// Opaque bytes (subscriptions).
    Bytes(Vec<u8>),
    /// String options (`socket-name`, `url`, `protocol-name`).
    Str(String),
}

/// Option names shared by several protocols (NNG's `NNG_OPT_*` strings).
pub mod opt {
    /// `NNG_OPT_MAXTTL`, int 1..=15, default 8.
    pub const MAX_TTL: &str = "ttl-max";
    /// `NNG_OPT_SENDBUF`, int 0..=8192: messages the socket buffers for sending.
    pub const SEND_BUF: &str = "send-buffer";
    /// `NNG_OPT_RECVBUF`, int 0..=8192: messages the socket buffers received.
    pub const RECV_BUF: &str = "recv-buffer";
    /// `NNG_OPT_REQ_RESENDTIME`, duration, default 60 s.
    pub const REQ_RESEND_TIME: &str = "req:resend-time";
    /// `NNG_OPT_REQ_RESENDTICK`, duration, default 1 s.
    pub const REQ_RESEND_TICK: &str = "req:resend-tick";
    /// `NNG_OPT_SURVEYOR_SURVEYTIME`, duration, default 1 s.
    pub const SURVEY_TIME: &str = "surveyor:survey-time";
    /// `NNG_OPT_SUB_SUBSCRIBE`, bytes (write only).
    pub const SUBSCRIBE: &str = "sub:subscribe";
    /// `NNG_OPT_SUB_UNSUBSCRIBE`, bytes (write only).
    pub const UNSUBSCRIBE: &str = "sub:unsubscribe";
    /// `NNG_OPT_SUB_PREFNEW`, bool, default true: a full sub queue drops the oldest.
    pub const SUB_PREFER_NEW: &str = "sub:prefnew";
    /// `NNG_OPT_PAIR1_POLY`, bool (1.x; set before the socket connects).
    pub const PAIR1_POLY: &str = "pair1:polyamorous";
    /// `NNG_OPT_RECVTIMEO`, duration, default infinite.
    pub const RECV_TIMEOUT: &str = "recv-timeout";
    /// `NNG_OPT_SENDTIMEO`, duration, default infinite.
    pub const SEND_TIMEOUT: &str = "send-timeout";
    /// `NNG_OPT_RECVMAXSZ`, size, default 1 GiB; 0 is no limit.
    pub const RECV_SIZE_MAX: &str = "recv-size-max";
    /// `NNG_OPT_RECONNMINT`, duration, default 1 s.
    pub const RECONNECT_TIME_MIN: &str = "reconnect-time-min";
    /// `NNG_OPT_RECONNMAXT`, duration, default 0 (no back-off).
    pub const RECONNECT_TIME_MAX: &str = "reconnect-time-max";
    /// `NNG_OPT_TCP_NODELAY`, bool, default true.
    pub const TCP_NODELAY: &str = "tcp-nodelay";
    /// `NNG_OPT_TCP_KEEPALIVE`, bool, default false.
    pub const TCP_KEEPALIVE: &str = "tcp-keepalive";
    /// `NNG_OPT_SOCKNAME`, string, default the socket's id.
    pub const SOCKET_NAME: &str = "socket-name";
    /// `NNG_OPT_PROTO`, int, read only.
    pub const PROTOCOL: &str = "protocol";
    /// `NNG_OPT_PEER`, int, read only.
    pub const PEER: &str = "peer";
    /// `NNG_OPT_PROTONAME`, string, read only.
    pub const PROTOCOL_NAME: &str = "protocol-name";
    /// `NNG_OPT_PEERNAME`, string, read only.
    pub const PEER_NAME: &str = "peer-name";
    /// `NNG_OPT_RAW`, bool, read only.
    pub const RAW: &str = "raw";
    /// `NNG_OPT_URL`, string, read only (dialers and listeners).
    pub const URL: &str = "url";
    /// Bytes a tcp or ipc pipe may run ahead of its peer's reading, size, default 0 (no
    /// bound); nanoport's own (NNG has none).
    pub const SEND_AHEAD_MAX: &str = "send-ahead-max";
    /// `NNG_OPT_TCP_BOUND_PORT`, int, read only (tcp listeners).
    pub const TCP_BOUND_PORT: &str = "tcp-bound-port";
    /// `NNG_OPT_RECVFD`, int, read only: the socket's receive poll fd (NNG 2.x:
    /// `nng_socket_get_recv_poll_fd`), readable while a message waits to be received.
    pub const RECV_FD: &str = "recv-fd";
    /// `NNG_OPT_SENDFD`, int, read only: the socket's send poll fd (NNG 2.x:
    /// `nng_socket_get_send_poll_fd`), readable while a send would be accepted at once.
    pub const SEND_FD: &str = "send-fd";
}

/// A protocol state machine (one per socket). All methods are cheap and never block.
pub trait ProtocolCore: Send + 'static {
    /// The protocol's static facts.
    fn info(&self) -> ProtoInfo;

    /// Opens a new context.
    ///
    /// # Errors
    /// `NotSup` for protocols without contexts and for raw sockets.
    fn open_ctx(&mut self) -> Result<CtxId>;

    /// Closes a context; its pending state is dropped (waiting user operations are failed
    /// with `Closed` by the socket).
    fn close_ctx(&mut self, ctx: CtxId);

    /// A pipe whose peer passed the protocol-id check was added.
    fn add_pipe(&mut self, pipe: PipeId, now: Now);

    /// A pipe is gone; forget it (req resends what was outstanding on it).
    fn remove_pipe(&mut self, pipe: PipeId, now: Now);

    /// The pipe finished writing its message and can take another.
    fn pipe_writable(&mut self, pipe: PipeId, now: Now);

    /// Whether the socket should read the next message from `pipe` now. A protocol that
    /// says no (a pull or pair whose queue is full) emits `Action::ResumePipe(pipe)` once it
    /// has room; until then the socket leaves the bytes in the kernel, so the peer feels
    /// backpressure instead of the protocol buffering without bound.
    fn wants_pipe_message(&self, pipe: PipeId) -> bool {
        let _ = pipe;
        true
    }

    /// A message arrived on `pipe` (header still in the body; `msg.pipe()` is set).
    fn pipe_message(&mut self, pipe: PipeId, msg: Message, now: Now);

    /// The user sends `msg` on context `ctx`.
    ///
    /// # Errors
    /// `SendBlock::Full` to wait for room, `SendBlock::Fail` to fail the send.
    fn try_send(
        &mut self,
        ctx: CtxId,
        msg: Message,
        now: Now,
    ) -> std::result::Result<(), SendBlock>;

    /// The user receives on context `ctx`: `Ok(Some)` delivers, `Ok(None)` waits for
    /// `Action::RecvReady(ctx)`.
    ///
    /// # Errors
    /// `State` (a req with no request out, a surveyor with no survey), `TimedOut` (the
    /// survey ended), `NotSup` (push, pub).
    fn try_recv(&mut self, ctx: CtxId, now: Now) -> Result<Option<Message>>;

    /// The user's waiting receive on `ctx` was cancelled or timed out (req resets the
    /// context then, as NNG does). Default: nothing to do.
    fn recv_cancelled(&mut self, ctx: CtxId) {
        let _ = ctx;
    }

    /// A non-blocking receive on `ctx` (NNG's `NNG_FLAG_NONBLOCK`, a zero timeout) found
    /// nothing: `try_recv` answered `Ok(None)`, but nobody waits. Forget the waiting it
    /// noted, without a cancellation's consequences: NNG's zero-timeout aio fails before
    /// it reaches the protocol's cancel, so a req keeps its request (a poll-driven req
    /// calls `try_recv` before its reply and must still get it). Default:
    /// [`recv_cancelled`](ProtocolCore::recv_cancelled), for protocols where the two are
    /// the same.
    fn recv_not_waiting(&mut self, ctx: CtxId) {
        self.recv_cancelled(ctx);
    }

    /// Gives back a message that `try_recv` returned but the socket could not deliver (its
    /// receiver was cancelled at that instant); it goes back to the front.
    fn unrecv(&mut self, ctx: CtxId, msg: Message);

    /// Time passed; run whatever timers are due.
    fn timer(&mut self, now: Now);

    /// When `timer` should next be called, if ever.
    fn next_timer(&self) -> Option<Instant>;

    /// The next queued action, if any.
    fn poll_action(&mut self) -> Option<Action>;

    /// Whether a receive on the socket's own context (0) would complete at once with
    /// something to report: a message is waiting for it, or (req, surveyor) the outcome
    /// of a request or survey that ended without one (`Canceled`, `ConnReset`,
    /// `TimedOut`). A receive that would fail for a usage error (`State`: no request out)
    /// is not "ready". Protocols that cannot receive say false.
    ///
    /// The socket reads this after every event that may change it, under the lock that
    /// guards the protocol, and raises or clears its receive poll fd on each change (NNG's
    /// `readable` pollable, raised and cleared by each protocol in NNG's sources).
    fn recv_ready(&self) -> bool;

    /// Whether a send on context 0 would be accepted at once (`try_send` would neither
    /// answer `SendBlock::Full` nor fail): a protocol that never blocks (pub, bus,
    /// surveyor, the raw repliers, polyamorous pair1) always says true; push, pair and req
    /// while a peer (or the send buffer) has room; cooked rep and respondent while context 0
    /// holds a request whose reply can go now. Protocols that cannot send say false. Drives
    /// the socket's send poll fd, as [`recv_ready`](ProtocolCore::recv_ready) drives its
    /// receive poll fd.
    fn send_ready(&self) -> bool;

    /// Messages from peers discarded so far, by reason. Default: none counted (protocols
    /// without a header to check).
    fn discards(&self) -> Discards {
        Discards::default()
    }

    /// Sets a protocol option on context `ctx` (0: the socket).
    ///
    /// # Errors
    /// `NotSup` for an option this protocol lacks; `Inval` for a bad value or type;
    /// `State` where NNG says so.
    fn set_option(&mut self, ctx: CtxId, name: &str, value: OptValue) -> Result<()>;

    /// Reads a protocol option.
    ///
    /// # Errors
    /// `NotSup` for an option this protocol lacks (or a write-only one).
    fn get_option(&self, ctx: CtxId, name: &str) -> Result<OptValue>;
}
