//! # nanoport-transports
//!
//! The transports under nanoport, wire-compatible with NNG: `inproc://`, `ipc://` (and
//! `unix://`), Linux `abstract://`, `tcp://` (`tcp4://`, `tcp6://`), and with the `tls`
//! and `ws` features (on by default) `tls+tcp://`, `ws://` and `wss://`, configured with a
//! [`TlsConfig`] as NNG's `nng_tls_config`.
//!
//! * [`TransportDialer`] / [`TransportListener`] set up connections and run the SP
//!   handshake; each finished connection is a [`BoxPipe`] that sends and receives whole
//!   SP messages.
//! * [`handshake`] and [`frame`] are the pure, I/O-free codecs for the SP connection
//!   header and the message framing.
//! * [`StreamDialer`] / [`StreamListener`] / [`Stream`] are the raw byte streams NNG
//!   exposes as `nng_stream` (tcp and ipc).
//!
//! Every operation is started with an [`Aio`] and completes exactly once; closing an
//! endpoint or a pipe completes what is in flight with `Closed` and releases its fds.

#![warn(missing_docs, missing_debug_implementations)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nanoport_engine::{Aio, Error, Message, Pipe, PipeId, PipeOps, Result};

mod attempts;
mod conn;
pub mod frame;
pub mod handshake;
mod inproc;
#[cfg(any(feature = "tls", feature = "ws"))]
mod layered;
mod resolv;
mod sock;
mod sys;
#[cfg(feature = "tls")]
mod tls;
mod url;
mod wqueue;
#[cfg(feature = "ws")]
pub mod ws;

pub use conn::Stream;
pub use inproc::{INPROC_BUF, INPROC_MSG_OVERHEAD};
pub use resolv::{set_resolver, ResolveFn};
#[cfg(feature = "tls")]
pub use tls::{TlsAuthMode, TlsConfig, TlsMode};
pub use url::Url;

use sock::{SockDialer, SockListener};

/// Options of a dialer or listener, applied to each of its connections.
#[derive(Clone, Debug)]
pub struct EndpointOptions {
    /// Largest message accepted, header included (`NNG_OPT_RECVMAXSZ`); 0 = no limit.
    /// Default 1 GiB, as NNG 2.x. Ignored by inproc, as in NNG.
    pub recv_max: usize,
    /// `TCP_NODELAY` (`tcp-nodelay`), default true.
    pub tcp_nodelay: bool,
    /// `SO_KEEPALIVE` (`tcp-keepalive`), default false.
    pub tcp_keepalive: bool,
    /// Idle time before the first keep-alive probe (`TCP_KEEPIDLE`,
    /// `tcp-keepalive-idle`; nanoport's own: NNG has only the `tcp-keepalive` flag).
    /// `None`, the default, keeps the system's (Linux: 2 hours). Whole seconds; applies
    /// where the platform has it (Linux, the BSDs, macOS).
    pub tcp_keepalive_idle: Option<Duration>,
    /// Time between keep-alive probes (`TCP_KEEPINTVL`, `tcp-keepalive-interval`;
    /// nanoport's own). `None` keeps the system's (Linux: 75 s).
    pub tcp_keepalive_interval: Option<Duration>,
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`,
    /// `tcp-keepalive-count`; nanoport's own). `None` keeps the system's (Linux: 9).
    pub tcp_keepalive_count: Option<u32>,
    /// The local address a tcp dialer's connections start from (`NNG_OPT_LOCADDR`,
    /// `local-address`): bound before connecting, port 0 (the kernel picks one, as NNG
    /// requires). Only addresses of this one's family are dialed. `None`, the default,
    /// lets the kernel choose. Dialers only.
    pub local_addr: Option<std::net::IpAddr>,
    /// Mode of an `ipc://` listener's socket file (`NNG_OPT_IPC_PERMISSIONS`,
    /// `ipc:permissions`), set with `chmod` between bind and listen, as NNG does.
    /// `None`, the default, leaves the mode the umask gives. Ignored for `abstract://`.
    pub ipc_permissions: Option<u32>,
    /// Deadline for the SP handshake of each connection, default 10 s (for tls+tcp, ws
    /// and wss it covers the TLS handshake and the HTTP upgrade too).
    pub handshake_timeout: Duration,
    /// TLS configuration for `tls+tcp://` and `wss://` (`nng_dialer_set_tls`): a server
    /// configuration on a listener (required there), a client one on a dialer (without
    /// one a dialer trusts no CA and so refuses every server, as NNG's default).
    #[cfg(feature = "tls")]
    pub tls: Option<TlsConfig>,
    /// How far, in bytes, a tcp or ipc pipe may run ahead of its peer's reading
    /// (`send-ahead-max`; NNG has no such option, its `send-buffer` counts messages at
    /// the socket). 0, the default, sets no bound beyond the pipe's write queue (128 KiB)
    /// and the kernel's own send buffering, which on Linux reaches megabytes over tcp. A
    /// bound `b` gives the write queue `b / 2` and caps the kernel's sending side at about
    /// `b / 2` more: tcp's unsent bytes (`TCP_NOTSENT_LOWAT`), a unix stream's send buffer
    /// (`SO_SNDBUF`, which also counts what waits in the receiver). Over tcp the peer's
    /// kernel receive buffer comes on top: it is the peer's. Ignored by inproc, whose
    /// queue counts messages.
    pub send_ahead_max: usize,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions {
            recv_max: 1 << 30,
            tcp_nodelay: true,
            tcp_keepalive: false,
            tcp_keepalive_idle: None,
            tcp_keepalive_interval: None,
            tcp_keepalive_count: None,
            local_addr: None,
            ipc_permissions: None,
            handshake_timeout: Duration::from_secs(10),
            #[cfg(feature = "tls")]
            tls: None,
            send_ahead_max: 0,
        }
    }
}

/// A connection that carries SP messages: what a socket's protocol sends and receives on.
pub trait TransportPipe: PipeOps {
    /// Sends the message on `aio` (header then body on the wire); completes `Ok` (the
    /// message taken off the aio) once the pipe has accepted it: tcp and ipc once it is in
    /// the kernel or in the pipe's bounded write buffer (which a close writes out only as
    /// far as the kernel takes it at once), inproc once the peer's receive or the pipe's
    /// bounded queue toward the peer took it ([`INPROC_BUF`]). When
    /// the buffer is full the send waits. On failure the message stays on the aio.
    fn send_aio(&self, aio: &Aio);
    /// Receives one message, tagged with this pipe. What the peer sent is its header
    /// followed by its body: a stream transport delivers all of it in the body (header
    /// empty); inproc hands the sender's message over as it is, header where the sender
    /// put it (no copy of a shared body). Protocols read the SP header through the header
    /// first, then the body. A length over the receive limit or with
    /// a reserved bit set, or a bad IPC type byte, completes with `MsgSize`/`Proto` and
    /// closes the pipe; so does any other receive error.
    fn recv_aio(&self, aio: &Aio);
    /// A [`Pipe`] handle for this connection (cheap).
    fn pipe(&self) -> Pipe;

    /// Accepts `msg` for sending at once, without an aio, if the pipe can take it right
    /// now (room in its write buffer); otherwise hands it back, and the caller uses
    /// [`send_aio`](TransportPipe::send_aio), which waits or reports the error.
    ///
    /// Why: a socket streaming small messages would otherwise pay a whole aio start and
    /// completion (and a callback) per message on top of the transport's own work. The
    /// default takes nothing.
    fn try_send_now(&self, msg: Message) -> std::result::Result<(), Message> {
        Err(msg)
    }

    /// A message already received and buffered, handed over at once without an aio or
    /// any I/O; `None` when none is complete (then use
    /// [`recv_aio`](TransportPipe::recv_aio), which also reports errors). The default
    /// buffers nothing.
    fn try_recv_now(&self) -> Option<Message> {
        None
    }

    /// The read side of the pipe's fd, for a thread that blocks for this pipe's next
    /// message and drives the read itself ([`AioProvider::wait_driving`](nanoport_engine::AioProvider::wait_driving)); `None` for a pipe with
    /// no fd (inproc) or one that is closed. The default has none.
    fn read_readiness(&self) -> Option<nanoport_engine::Readiness> {
        None
    }

    /// The write side of the pipe's fd, for a thread blocked on a full pipe that writes
    /// it out itself ([`AioProvider::wait_driving`](nanoport_engine::AioProvider::wait_driving)); `None` as for
    /// [`read_readiness`](TransportPipe::read_readiness).
    fn write_readiness(&self) -> Option<nanoport_engine::Readiness> {
        None
    }

    /// Applies options changed while the pipe is live, as NNG's tcp and ipc endpoints
    /// update their pipes: the receive limit holds from the next frame on (a frame whose
    /// length was already accepted is finished), and tcp's no-delay and keep-alive are set
    /// on the socket; a changed `send_ahead_max` bounds the next sends and resizes the
    /// kernel buffers. The default (inproc, which has no limit) ignores them.
    fn set_options(&self, opts: &EndpointOptions) {
        let _ = opts;
    }

    /// Bytes of buffer memory the pipe holds right now (its read buffer, spare and
    /// queued write buffers), for monitoring. A stream pipe that stays quiet for one to
    /// two seconds gives its buffers back. The default holds none.
    fn buffered_bytes(&self) -> usize {
        0
    }
}

/// A connection as the socket layer holds it.
pub type BoxPipe = Arc<dyn TransportPipe>;

/// A new pipe id, NNG style: a random start in `1..=0x7fff_ffff`, then sequential; the
/// top bit is always clear and 0 is never used.
pub fn next_pipe_id() -> PipeId {
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        AtomicU32::new((h.finish() as u32 % 0x7fff_ffff) + 1)
    });
    loop {
        let v = next.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff;
        if v != 0 {
            return PipeId(v);
        }
    }
}

enum DialerKind {
    Inproc(inproc::Dialer),
    Sock(SockDialer<BoxPipe>),
    #[cfg(any(feature = "tls", feature = "ws"))]
    Layered(layered::LayerDialer),
}

/// Dials one URL, one connection attempt per [`dial_aio`](TransportDialer::dial_aio).
pub struct TransportDialer {
    kind: DialerKind,
}

impl std::fmt::Debug for TransportDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportDialer").finish_non_exhaustive()
    }
}

impl TransportDialer {
    /// A dialer for `url`, announcing protocol `local_proto` in its handshakes. A host
    /// name is not looked up here but at each attempt (see
    /// [`dial_aio`](TransportDialer::dial_aio)).
    ///
    /// # Errors
    /// `AddrInval` for an address that cannot be dialed (no host, port 0, a literal
    /// address of the wrong family), `NotSup` for a scheme without a transport.
    pub fn new(url: &Url, local_proto: u16, opts: EndpointOptions) -> Result<Self> {
        let kind = match &url.addr {
            url::Addr::Inproc(name) => DialerKind::Inproc(inproc::Dialer::new(name, local_proto)),
            #[cfg(any(feature = "tls", feature = "ws"))]
            _ if url.layer != url::Layer::Plain => {
                DialerKind::Layered(layered::LayerDialer::new(url, local_proto, opts)?)
            }
            _ => DialerKind::Sock(SockDialer::new(url, local_proto, opts)?),
        };
        Ok(TransportDialer { kind })
    }

    /// One connection attempt: completes with output [`BoxPipe`]
    /// (`aio.take_output::<BoxPipe>()`) after the SP handshake, or with the error
    /// (`ConnRefused`, `TimedOut`, `Proto` for a bad handshake, `ConnShut`, ...).
    ///
    /// A tcp host name (also under tls+tcp, ws, wss) is looked up afresh for every
    /// attempt, on a resolver thread (never the reactor or a callback worker; see
    /// [`set_resolver`]), so a peer that moves behind DNS is found again; a name that does
    /// not resolve fails the attempt with `AddrInval`, as in NNG. Each address found is
    /// tried in turn, IPv6 and IPv4 in the resolver's order, until one connects; with none
    /// left the attempt fails with the first one's error. (NNG tries only the first.) A
    /// literal address is dialed at once.
    pub fn dial_aio(&self, aio: &Aio) {
        match &self.kind {
            DialerKind::Inproc(d) => d.dial_aio(aio),
            DialerKind::Sock(d) => d.dial_aio(aio),
            #[cfg(any(feature = "tls", feature = "ws"))]
            DialerKind::Layered(d) => d.dial_aio(aio),
        }
    }

    /// Replaces the options that connections dialed from now on get (see
    /// [`TransportListener::set_options`]).
    pub fn set_options(&self, opts: &EndpointOptions) {
        match &self.kind {
            DialerKind::Inproc(_) => {}
            DialerKind::Sock(d) => d.set_options(opts),
            #[cfg(any(feature = "tls", feature = "ws"))]
            DialerKind::Layered(d) => d.set_options(opts),
        }
    }

    /// Closes the dialer: attempts in flight complete with `Closed`, later ones fail.
    pub fn close(&self) {
        match &self.kind {
            DialerKind::Inproc(d) => d.close(),
            DialerKind::Sock(d) => d.close(),
            #[cfg(any(feature = "tls", feature = "ws"))]
            DialerKind::Layered(d) => d.close(),
        }
    }
}

enum ListenerKind {
    Inproc(Arc<inproc::Listener>),
    Sock(SockListener<BoxPipe>),
    #[cfg(any(feature = "tls", feature = "ws"))]
    Layered(layered::LayerListener),
}

/// Listens on one URL and hands out connections that finished their SP handshake.
pub struct TransportListener {
    kind: ListenerKind,
}

/// How the connections a listener accepted ended their SP handshakes, as NNG's listener
/// statistics count them. A connection that fails its handshake is dropped and counted
/// here; the listener goes on serving others.
///
/// ```
/// use nanoport_transports::ListenerStats;
/// assert_eq!(ListenerStats::default().handshake_failures(), 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStats {
    /// Handshakes completed: pipes handed to the socket.
    pub accepted: u64,
    /// Peers that sent a bad SP header (garbage, a wrong version or reserved byte).
    pub handshake_proto: u64,
    /// Peers that did not finish the handshake before its deadline.
    pub handshake_timeout: u64,
    /// Peers that hung up mid-handshake.
    pub handshake_disconnect: u64,
    /// Any other failure (an I/O error).
    pub handshake_other: u64,
}

impl ListenerStats {
    /// Every failed handshake.
    pub fn handshake_failures(&self) -> u64 {
        self.handshake_proto
            + self.handshake_timeout
            + self.handshake_disconnect
            + self.handshake_other
    }
}

impl std::fmt::Debug for TransportListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportListener")
            .field("port", &self.port())
            .finish_non_exhaustive()
    }
}

impl TransportListener {
    /// Binds and listens now.
    ///
    /// # Errors
    /// `AddrInUse`, `AddrInval`, `Perm`, ... from the bind; `NotSup` for a scheme without
    /// a transport.
    pub fn bind(url: &Url, local_proto: u16, opts: EndpointOptions) -> Result<Self> {
        let kind = match &url.addr {
            url::Addr::Inproc(name) => {
                ListenerKind::Inproc(inproc::Listener::bind(name, local_proto)?)
            }
            #[cfg(any(feature = "tls", feature = "ws"))]
            _ if url.layer != url::Layer::Plain => {
                ListenerKind::Layered(layered::LayerListener::bind(url, local_proto, opts)?)
            }
            _ => ListenerKind::Sock(SockListener::bind(url, local_proto, opts)?),
        };
        Ok(TransportListener { kind })
    }

    /// Completes with the next connection that finished its SP handshake (output
    /// [`BoxPipe`]). Handshakes run concurrently; bad ones only drop their connection. A
    /// failed `accept(2)` (`NoFiles`, `NoMem`, ...) fails this call with the error.
    pub fn accept_aio(&self, aio: &Aio) {
        match &self.kind {
            ListenerKind::Inproc(l) => l.accept_aio(aio),
            ListenerKind::Sock(l) => l.accept_aio(aio),
            #[cfg(any(feature = "tls", feature = "ws"))]
            ListenerKind::Layered(l) => l.accept_aio(aio),
        }
    }

    /// The bound TCP port (useful after binding port 0).
    pub fn port(&self) -> Option<u16> {
        match &self.kind {
            ListenerKind::Inproc(_) => None,
            ListenerKind::Sock(l) => l.port(),
            #[cfg(any(feature = "tls", feature = "ws"))]
            ListenerKind::Layered(l) => l.port(),
        }
    }

    /// How the connections accepted so far ended their handshakes (all zero for inproc).
    pub fn stats(&self) -> ListenerStats {
        match &self.kind {
            // inproc has no handshake to fail; its connections are not counted.
            ListenerKind::Inproc(_) => ListenerStats::default(),
            ListenerKind::Sock(l) => l.stats(),
            #[cfg(any(feature = "tls", feature = "ws"))]
            ListenerKind::Layered(l) => l.stats(),
        }
    }

    /// Connections still in their handshake (0 for inproc).
    pub fn handshaking(&self) -> usize {
        match &self.kind {
            ListenerKind::Inproc(_) => 0,
            ListenerKind::Sock(l) => l.handshaking(),
            #[cfg(any(feature = "tls", feature = "ws"))]
            ListenerKind::Layered(l) => l.handshaking(),
        }
    }

    /// Replaces the options that connections accepted from now on get (NNG applies an
    /// option set on a running listener to later connections; the socket layer updates
    /// live pipes with [`TransportPipe::set_options`]). inproc has none.
    pub fn set_options(&self, opts: &EndpointOptions) {
        match &self.kind {
            ListenerKind::Inproc(_) => {}
            ListenerKind::Sock(l) => l.set_options(opts),
            #[cfg(any(feature = "tls", feature = "ws"))]
            ListenerKind::Layered(l) => l.set_options(opts),
        }
    }

    /// Closes the listener: pending accepts complete with `Closed`, connections being set
    /// up or not yet accepted are dropped, fds are released, an ipc path is unlinked.
    pub fn close(&self) {
        match &self.kind {
            ListenerKind::Inproc(l) => l.close(),
            ListenerKind::Sock(l) => l.close(),
            #[cfg(any(feature = "tls", feature = "ws"))]
            ListenerKind::Layered(l) => l.close(),
        }
    }
}

impl Drop for TransportListener {
    fn drop(&mut self) {
        self.close();
    }
}

fn stream_url(url: &Url) -> Result<()> {
    match url.addr {
        url::Addr::Inproc(_) => Err(Error::NotSup),
        _ if url.layer != url::Layer::Plain => Err(Error::NotSup),
        _ => Ok(()),
    }
}

/// Dials byte streams (`nng_stream_dialer`) over tcp or ipc.
pub struct StreamDialer {
    inner: SockDialer<Stream>,
}

impl std::fmt::Debug for StreamDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamDialer").finish_non_exhaustive()
    }
}

impl StreamDialer {
    /// A stream dialer for `url` (tcp, ipc, abstract).
    ///
    /// # Errors
    /// `AddrInval` for a bad address, `NotSup` for inproc or an unknown scheme.
    pub fn new(url: &Url, opts: EndpointOptions) -> Result<Self> {
        stream_url(url)?;
        Ok(StreamDialer {
            inner: SockDialer::new(url, 0, opts)?,
        })
    }

    /// A stream dialer for the URL text `url` with default options
    /// (`nng_stream_dialer_alloc`).
    ///
    /// # Errors
    /// `AddrInval` for a bad URL, `NotSup` for inproc, tls+tcp, ws, wss or an unknown
    /// scheme.
    pub fn open(url: &str) -> Result<Self> {
        StreamDialer::new(&Url::parse(url)?, EndpointOptions::default())
    }

    /// Connects: completes with output [`Stream`] (`aio.take_output::<Stream>()`).
    pub fn dial_aio(&self, aio: &Aio) {
        self.inner.dial_aio(aio)
    }

    /// Closes the dialer; connects in flight complete with `Closed`.
    pub fn close(&self) {
        self.inner.close()
    }
}

/// Accepts byte streams (`nng_stream_listener`) over tcp or ipc.
pub struct StreamListener {
    inner: SockListener<Stream>,
}

impl std::fmt::Debug for StreamListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamListener")
            .field("port", &self.port())
            .finish_non_exhaustive()
    }
}

impl StreamListener {
    /// Binds and listens on `url` now.
    ///
    /// # Errors
    /// As [`TransportListener::bind`]; `NotSup` for inproc.
    pub fn bind(url: &Url, opts: EndpointOptions) -> Result<Self> {
        stream_url(url)?;
        Ok(StreamListener {
            inner: SockListener::bind(url, 0, opts)?,
        })
    }

    /// Binds and listens on the URL text `url` with default options
    /// (`nng_stream_listener_alloc` and `nng_stream_listener_listen`).
    ///
    /// # Errors
    /// `AddrInval` for a bad URL, `AddrInUse`, `NotSup` for inproc, tls+tcp, ws, wss or
    /// an unknown scheme.
    pub fn listen(url: &str) -> Result<Self> {
        StreamListener::bind(&Url::parse(url)?, EndpointOptions::default())
    }

    /// Completes with the next connection (output [`Stream`]).
    pub fn accept_aio(&self, aio: &Aio) {
        self.inner.accept_aio(aio)
    }

    /// The bound TCP port.
    pub fn port(&self) -> Option<u16> {
        self.inner.port()
    }

    /// Closes the listener; pending accepts complete with `Closed`.
    pub fn close(&self) {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_ids_are_nonzero_with_msb_clear_and_sequential() {
        let a = next_pipe_id().0;
        let b = next_pipe_id().0;
        assert!(a != 0 && a & 0x8000_0000 == 0);
        assert!(b != 0 && b & 0x8000_0000 == 0);
        assert!(b == a + 1 || (a == 0x7fff_ffff && b == 1));
    }

    #[test]
    fn defaults_match_nng_2() {
        let o = EndpointOptions::default();
        assert_eq!(o.recv_max, 1 << 30);
        assert!(o.tcp_nodelay && !o.tcp_keepalive);
        assert_eq!(o.handshake_timeout, Duration::from_secs(10));
    }
}
