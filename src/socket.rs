//! [`Socket`]: a protocol state machine driven over live pipes.
//!
//! The socket owns one [`ProtocolCore`] behind a mutex and is its only driver. Events come
//! from three places: user operations (send/recv aios), pipe plumbing (each pipe has an
//! inline receive aio and an inline send aio, so a message read by the reactor reaches the
//! protocol on the reactor thread, without a hop), and the protocol's timer (an inline sleep
//! aio). After each event the socket drains the protocol's actions: writes to pipes, pipe
//! closes, and retries of the user operations waiting on a context.

use nanoport_engine::AioProvider;
use std::collections::VecDeque;
use std::fmt;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use nanoport_engine::{
    engine_scope, in_engine_scope, scope_now, sleep_aio, Aio, Cancel, CancelHook, Error, IdMap,
    Message, Now, OpToken, PipeId, PollFd, Result, SendAttempt, Timeout,
};
use nanoport_protocols::{Action, CtxId, OptValue, ProtoInfo, ProtocolCore, SendBlock};
use nanoport_transports::{BoxPipe, EndpointOptions};

use crate::endpoint::{Dialer, EndpointInner, Listener};
use crate::pipes::{NotifyItem, PipeEvent, PipeNotify, SocketPipe};
use crate::Protocol;
use crate::SendError;

static NEXT_SOCKET_ID: AtomicU32 = AtomicU32::new(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Dir {
    Send = 0,
    Recv = 1,
}

fn hook_key(ctx: CtxId, dir: Dir) -> usize {
    ((ctx as usize) << 1) | dir as usize
}

struct Waiter {
    aio: Aio,
    token: OpToken,
}

pub(crate) struct PipeSlot {
    pub(crate) tp: BoxPipe,
    send_aio: Aio,
    recv_aio: Aio,
    /// The protocol said no to more messages from this pipe for now.
    paused: bool,
    pub(crate) handle: Arc<SocketPipe>,
    /// What went through this pipe (NNG's pipe `tx_msgs`, `rx_bytes`, ...).
    pub(crate) traffic: Traffic,
}

/// Messages and bytes moved, counted under the socket's lock, which every message takes
/// anyway: plain additions, no atomics, nothing per message beyond them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Traffic {
    pub(crate) tx_msgs: u64,
    pub(crate) tx_bytes: u64,
    pub(crate) rx_msgs: u64,
    pub(crate) rx_bytes: u64,
}

impl Traffic {
    fn sent(&mut self, bytes: usize) {
        self.tx_msgs += 1;
        self.tx_bytes += bytes as u64;
    }
    fn received(&mut self, bytes: usize) {
        self.rx_msgs += 1;
        self.rx_bytes += bytes as u64;
    }
}

/// Socket-wide options that are not the protocol's.
#[derive(Debug, Clone)]
pub(crate) struct SockOpts {
    pub(crate) recv_max: usize,
    pub(crate) reconnect_min: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) tcp_nodelay: bool,
    pub(crate) tcp_keepalive: bool,
    pub(crate) send_ahead_max: usize,
    pub(crate) name: String,
    /// `send-buffer` and `recv-buffer` for protocols whose core keeps no such queue:
    /// libnng accepts both on every protocol, so the socket keeps the values.
    pub(crate) spare_bufs: [i32; 2],
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct CtxTimeouts {
    pub(crate) send: Timeout,
    pub(crate) recv: Timeout,
}

pub(crate) struct Core {
    pub(crate) proto: Box<dyn ProtocolCore>,
    pub(crate) closed: bool,
    pub(crate) pipes: IdMap<PipeId, PipeSlot>,
    waiters: IdMap<(CtxId, Dir), VecDeque<Waiter>>,
    pub(crate) ctxs: IdMap<CtxId, CtxTimeouts>,
    pub(crate) opts: SockOpts,
    pub(crate) endpoints: Vec<Arc<EndpointInner>>,
    timer_at: Option<Instant>,
    /// Pipes rejected for speaking the wrong protocol (NNG's "reject" statistic).
    pub(crate) rejected: u64,
    /// Pipes closed because a frame announced more than the receive limit (or set a
    /// reserved length bit).
    pub(crate) frames_too_large: u64,
    /// Pipes closed because a frame was malformed (a bad IPC message type).
    pub(crate) frames_malformed: u64,
    /// What the socket's pipes moved, the gone ones included (NNG's socket `tx_msgs`, ...).
    pub(crate) traffic: Traffic,
    /// Pipes that joined and that left (NNG's `pipes` is the difference).
    pub(crate) pipes_added: u64,
    pub(crate) pipes_removed: u64,
    /// Whether each poll fd (by [`Dir`]) is raised; `None` until the user asks for that fd.
    poll_raised: [Option<bool>; 2],
    /// Some poll fd exists: until then `process` never looks at readiness (one test of
    /// this flag per event is all a socket without poll fds pays).
    polled: bool,
}

impl Core {
    /// Whether a user call on `ctx` in `dir` may complete at once, without an aio: the
    /// socket is open, the context exists, and no earlier call waits ahead of it.
    fn may_go_ahead(&self, ctx: CtxId, dir: Dir) -> bool {
        !self.closed
            && self.ctxs.contains_key(&ctx)
            && self.waiters.get(&(ctx, dir)).is_none_or(|q| q.is_empty())
    }

    /// Whether a non-blocking call in `dir` on the socket's own context would complete at
    /// once: the protocol says so and no waiting call is ahead of it; or the socket is
    /// closed (the call fails with `Closed` at once). What the poll fds show.
    fn ready(&self, dir: Dir) -> bool {
        if self.closed {
            return true;
        }
        let proto_ready = match dir {
            Dir::Send => self.proto.send_ready(),
            Dir::Recv => self.proto.recv_ready(),
        };
        proto_ready && self.waiters.get(&(0, dir)).is_none_or(|q| q.is_empty())
    }
}

pub(crate) struct SocketInner {
    pub(crate) id: u32,
    pub(crate) protocol: Protocol,
    pub(crate) info: ProtoInfo,
    core: Mutex<Core>,
    timer: OnceLock<Aio>,
    pub(crate) notify: Arc<PipeNotify>,
    handles: AtomicUsize,
    me: Weak<SocketInner>,
    /// Some blocking receive has waited by driving its pipe (then sends look for a read
    /// to hold, see `send_blocking`); a socket that only sends never pays for the look.
    driven: AtomicBool,
    /// The send and receive poll fds (by [`Dir`]), made on first request, under the core
    /// lock; they live as long as this, so a `BorrowedFd` from a `Socket` handle stays valid.
    poll_fds: [OnceLock<PollFd>; 2],
}

/// A socket of one protocol (`nng_socket`): sends and receives messages over any number
/// of dialers and listeners.
///
/// A `Socket` is a cheap handle: clones name the same socket, which closes on
/// [`close`](Socket::close) or when its last handle is dropped.
///
/// # Examples
///
/// ```
/// use nanoport::{Protocol, Socket};
/// let rep = Socket::open(Protocol::Rep0).unwrap();
/// rep.listen("inproc://doc-socket").unwrap();
/// let req = Socket::req0().unwrap();
/// req.dial("inproc://doc-socket").unwrap();
/// std::thread::spawn(move || {
///     let q = rep.recv().unwrap();
///     rep.send(q).unwrap(); // echo
/// });
/// req.send("ping").unwrap();
/// assert_eq!(req.recv().unwrap().body(), b"ping");
/// ```
pub struct Socket {
    pub(crate) inner: Arc<SocketInner>,
}

fn lock(m: &Mutex<Core>) -> MutexGuard<'_, Core> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// A spare waitable aio per thread for the blocking calls, so a blocking call costs no
    /// allocation once warm. A nested blocking call (from a pipe callback, say) finds the
    /// slot empty and makes its own.
    static BLOCKING_AIO: std::cell::RefCell<Option<Aio>> = const { std::cell::RefCell::new(None) };
}

pub(crate) fn with_blocking_aio<R>(f: impl FnOnce(&Aio) -> R) -> R {
    let spare = BLOCKING_AIO.with(|c| c.borrow_mut().take());
    let aio = match spare {
        Some(a) => a,
        None => Aio::new_waitable().expect("a waitable aio cannot fail to allocate"),
    };
    let r = f(&aio);
    BLOCKING_AIO.with(|c| *c.borrow_mut() = Some(aio));
    r
}

impl Socket {
    /// Opens a cooked socket of protocol `p` (`nng_req0_open`, ...).
    ///
    /// # Errors
    /// `NotSup` for a protocol variant that does not exist.
    pub fn open(p: Protocol) -> Result<Socket> {
        Socket::open_with(p, false)
    }

    /// Opens a raw socket of protocol `p` (`nng_req0_open_raw`, ...): headers pass
    /// through to the user and there are no contexts.
    ///
    /// # Errors
    /// `NotSup` for a protocol without a raw form.
    pub fn open_raw(p: Protocol) -> Result<Socket> {
        Socket::open_with(p, true)
    }

    fn open_with(p: Protocol, raw: bool) -> Result<Socket> {
        let proto = nanoport_protocols::open(p, raw)?;
        let info = proto.info();
        let id = NEXT_SOCKET_ID.fetch_add(1, Ordering::Relaxed);
        let inner = Arc::new_cyclic(|me| SocketInner {
            driven: AtomicBool::new(false),
            id,
            protocol: p,
            info,
            core: Mutex::new(Core {
                proto,
                closed: false,
                pipes: IdMap::default(),
                waiters: IdMap::default(),
                ctxs: IdMap::from_iter([(
                    0,
                    CtxTimeouts {
                        send: Timeout::Infinite,
                        recv: Timeout::Infinite,
                    },
                )]),
                opts: SockOpts {
                    recv_max: 1 << 30,
                    reconnect_min: Duration::from_secs(1),
                    reconnect_max: Duration::ZERO,
                    tcp_nodelay: true,
                    tcp_keepalive: false,
                    send_ahead_max: 0,
                    name: id.to_string(),
                    spare_bufs: [0, 1],
                },
                endpoints: Vec::new(),
                timer_at: None,
                rejected: 0,
                frames_too_large: 0,
                frames_malformed: 0,
                traffic: Traffic::default(),
                pipes_added: 0,
                pipes_removed: 0,
                poll_raised: [None, None],
                polled: false,
            }),
            poll_fds: [OnceLock::new(), OnceLock::new()],
            timer: OnceLock::new(),
            notify: Arc::default(),
            handles: AtomicUsize::new(1),
            me: me.clone(),
        });
        crate::stat::register(&inner);
        Ok(Socket { inner })
    }

    /// A cooked req0 socket (`nng_req0_open`).
    ///
    /// # Errors
    /// As [`Socket::open`].
    pub fn req0() -> Result<Socket> {
        Socket::open(Protocol::Req0)
    }
    /// A cooked rep0 socket (`nng_rep0_open`).
    ///
    /// # Errors
    /// As [`Socket::open`].
    pub fn rep0() -> Result<Socket> {
        Socket::open(Protocol::Rep0)
    }
    /// A pair0 socket (`nng_pair0_open`).
    ///
    /// # Errors
    /// As [`Socket::open`].
    pub fn pair0() -> Result<Socket> {
        Socket::open(Protocol::Pair0)
    }
    /// A pair1 socket (`nng_pair1_open`).
    ///
    /// # Errors
    /// As [`Socket::open`].
    pub fn pair1() -> Result<Socket> {
        Socket::open(Protocol::Pair1)
    }
    /// A pub0 socket (`nng_pub0_open`).
    ///
    /// # Errors
    /// As [`Socket::open`].
    pub fn pub0() -> Result<Socket> {
        Socket::open(Protocol::Pub0)
    }
    /// A sub0 socket (`nng_sub0_open`).
    ///
    /// # Errors
    /// As [`Socket::open`].
    pub fn sub0() -> Result<Socket> {
        Socket::open(Protocol::Sub0)
    }
    /// A push0 socket (`nng_push0_open`).
    ///
    /// # Errors
    /// As [`Socket::open`].
    pub fn push0() -> Result<Socket> {
        Socket::open(Protocol::Push0)
    }
    /// A pull0 socket (`nng_pull0_open`).
    ///
    /// # Errors
    /// As [`Socket::open`].
    pub fn pull0() -> Result<Socket> {
        Socket::open(Protocol::Pull0)
    }
    /// A surveyor0 socket (`nng_surveyor0_open`).
    ///
    /// # Errors
    /// As [`Socket::open`].
    pub fn surveyor0() -> Result<Socket> {
        Socket::open(Protocol::Surveyor0)
    }
    /// A respondent0 socket (`nng_respondent0_open`).
    ///
    /// # Errors
    /// As [`Socket::open`].
    pub fn respondent0() -> Result<Socket> {
        Socket::open(Protocol::Respondent0)
    }
    /// A bus0 socket (`nng_bus0_open`).
    ///
    /// # Errors
    /// As [`Socket::open`].
    pub fn bus0() -> Result<Socket> {
        Socket::open(Protocol::Bus0)
    }

    /// The socket's id (`nng_socket_id`), unique in the process.
    pub fn id(&self) -> u32 {
        self.inner.id
    }

    /// The protocol this socket speaks.
    pub fn protocol(&self) -> Protocol {
        self.inner.protocol
    }

    /// Whether the socket is raw.
    pub fn is_raw(&self) -> bool {
        self.inner.info.raw
    }

    /// Static facts about the protocol (ids and names, as NNG's `protocol`/`peer` options).
    pub fn info(&self) -> ProtoInfo {
        self.inner.info
    }

    /// Creates and starts a listener on `url` (`nng_listen`).
    ///
    /// # Errors
    /// `AddrInval` for a bad URL, `NotSup` for an unknown scheme, `AddrInUse`, `Closed`.
    pub fn listen(&self, url: &str) -> Result<Listener> {
        let l = self.listener(url)?;
        l.start()?;
        Ok(l)
    }

    /// Creates a listener without starting it (`nng_listener_create`), so options can be
    /// set first.
    ///
    /// # Errors
    /// `AddrInval`, `NotSup`, `Closed`.
    pub fn listener(&self, url: &str) -> Result<Listener> {
        Listener::create(&self.inner, url)
    }

    /// Creates a dialer and connects, waiting for the first connection (`nng_dial`). If
    /// that attempt fails, the error is returned and the dialer is closed, as NNG does.
    ///
    /// # Errors
    /// `ConnRefused`, `AddrInval`, `NotSup`, `TimedOut`, `Closed`, ...
    pub fn dial(&self, url: &str) -> Result<Dialer> {
        let d = self.dialer(url)?;
        if let Err(e) = d.start(false) {
            // nng_dial closes the dialer it made when the first attempt fails.
            let _ = d.close();
            return Err(e);
        }
        Ok(d)
    }

    /// Creates a dialer and starts connecting in the background
    /// (`nng_dial(.., NNG_FLAG_NONBLOCK)`); it retries with back-off until it connects.
    ///
    /// # Errors
    /// `AddrInval`, `NotSup`, `Closed`.
    pub fn dial_nonblocking(&self, url: &str) -> Result<Dialer> {
        let d = self.dialer(url)?;
        d.start(true)?;
        Ok(d)
    }

    /// Creates a dialer without starting it (`nng_dialer_create`).
    ///
    /// # Errors
    /// `AddrInval`, `NotSup`, `Closed`.
    pub fn dialer(&self, url: &str) -> Result<Dialer> {
        Dialer::create(&self.inner, url)
    }

    /// Sends a message, waiting up to the send timeout for the protocol to accept it
    /// (`nng_sendmsg`). Accepted means queued or handed to a pipe, not delivered.
    ///
    /// # Errors
    /// A [`SendError`] holding the unsent message and why: `TimedOut`, `Closed`, `NotSup`
    /// (sub, pull), `State` (rep without a request), ...
    pub fn send(&self, msg: impl Into<Message>) -> std::result::Result<(), SendError> {
        self.inner.send_blocking(0, msg.into(), false)
    }

    /// Receives a message, waiting up to the receive timeout (`nng_recvmsg`).
    ///
    /// # Errors
    /// `TimedOut`, `Closed`, `NotSup` (pub, push), `State` (req without a request), ...
    pub fn recv(&self) -> Result<Message> {
        self.inner.recv_blocking(0, false)
    }

    /// Sends without waiting (`NNG_FLAG_NONBLOCK`).
    ///
    /// # Errors
    /// A [`SendError`] with `Again` when the message cannot be accepted at once;
    /// otherwise as [`send`](Socket::send). The message comes back either way.
    pub fn try_send(&self, msg: impl Into<Message>) -> std::result::Result<(), SendError> {
        self.inner.send_blocking(0, msg.into(), true)
    }

    /// Receives without waiting (`NNG_FLAG_NONBLOCK`).
    ///
    /// # Errors
    /// `Again` when no message is ready; otherwise as [`recv`](Socket::recv).
    pub fn try_recv(&self) -> Result<Message> {
        self.inner.recv_blocking(0, true)
    }

    /// A file descriptor that polls readable exactly while a receive on the socket would
    /// complete at once (`nng_socket_get_recv_poll_fd`, NNG 1.x's `NNG_OPT_RECVFD`, also
    /// readable here as the option [`opt::RECV_FD`](crate::opt::RECV_FD)), so another
    /// program's event loop (epoll, `mio`, `poll`) can wait for nanoport's messages
    /// next to its own fds, and call [`try_recv`](Socket::try_recv) when it fires.
    ///
    /// * **Level-triggered**, as NNG documents: readable while a message waits for the
    ///   socket's own context (or, on req and surveyor, while the outcome of a request or
    ///   survey that ended without a reply waits to be reported), quiet once `try_recv`
    ///   has taken the last one, readable again when the next arrives. Works with
    ///   edge-triggered pollers too (`mio`, `EPOLLET`): each quiet-to-readable change is a
    ///   new write to the fd; drain with `try_recv` until [`Error::Again`] on each event.
    /// * **No lost wake-ups**: the socket checks readiness and sets the fd under the same
    ///   lock that guards the protocol, after every event that can change it (a message
    ///   from a pipe, a receive, a send, a pipe coming or going, a timer).
    /// * Poll it for readability only; never read or write it. A receive through
    ///   [`recv`](Socket::recv) or [`recv_aio`](Socket::recv_aio) waiting at the same time
    ///   takes messages first (the fd stays quiet for them).
    /// * Made on the first call (an eventfd on Linux, a pipe pair elsewhere; later calls
    ///   return the same fd) and closed when the socket's last handle is dropped, not at
    ///   [`close`](Socket::close) as in NNG: a closed socket's fds turn readable and stay
    ///   open while a handle lives, so a registered fd never dangles, and `try_recv` then
    ///   says `Closed`. Until the first call the socket only tests a flag once per event.
    /// * Contexts have none, as in NNG ("not compatible with contexts"): the fd follows the
    ///   socket's own context only.
    ///
    /// # Examples
    ///
    /// ```
    /// use nanoport::{Error, Socket};
    /// use std::os::fd::AsRawFd;
    ///
    /// let pull = Socket::pull0().unwrap();
    /// pull.listen("inproc://doc-recv-poll-fd").unwrap();
    /// let fd = pull.recv_poll_fd().unwrap().as_raw_fd();
    /// let readable = |timeout_ms| {
    ///     let mut p = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
    ///     // SAFETY: one live pollfd for the duration of the call.
    ///     unsafe { libc::poll(p.as_mut_ptr(), 1, timeout_ms) == 1 }
    /// };
    /// assert!(!readable(0));
    ///
    /// let push = Socket::push0().unwrap();
    /// push.dial("inproc://doc-recv-poll-fd").unwrap();
    /// push.send("job").unwrap();
    /// assert!(readable(5_000)); // an event loop would wait here, with its other fds
    /// assert_eq!(pull.try_recv().unwrap().body(), b"job");
    /// assert_eq!(pull.try_recv().unwrap_err(), Error::Again);
    /// assert!(!readable(0));
    /// ```
    ///
    /// # Errors
    /// `NotSup` on protocols that cannot receive (push, pub), as NNG; `Closed`; the OS
    /// error when no fd can be made (`NoFiles`, ...).
    pub fn recv_poll_fd(&self) -> Result<BorrowedFd<'_>> {
        self.inner.poll_fd(Dir::Recv)
    }

    /// A file descriptor that polls readable exactly while a send on the socket would be
    /// accepted at once (`nng_socket_get_send_poll_fd`, NNG 1.x's `NNG_OPT_SENDFD`, the
    /// option [`opt::SEND_FD`](crate::opt::SEND_FD)): [`try_send`](Socket::try_send)
    /// then succeeds. For push, pair and req that is while a peer (or the send buffer) has
    /// room; for cooked rep and respondent while the socket's context holds a request whose
    /// reply can go now; protocols whose sends never block (pub, bus, surveyor, the raw
    /// repliers, polyamorous pair1) are always writable. Same rules as
    /// [`recv_poll_fd`](Socket::recv_poll_fd): level-triggered, set under the protocol's
    /// lock, made on first call, poll for readability only, none on contexts.
    ///
    /// ```
    /// use nanoport::Socket;
    /// use std::os::fd::AsRawFd;
    ///
    /// let push = Socket::push0().unwrap();
    /// let fd = push.send_poll_fd().unwrap().as_raw_fd();
    /// let writable = |timeout_ms| {
    ///     let mut p = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
    ///     // SAFETY: one live pollfd for the duration of the call.
    ///     unsafe { libc::poll(p.as_mut_ptr(), 1, timeout_ms) == 1 }
    /// };
    /// assert!(!writable(0), "no peer: a send would block");
    /// let pull = Socket::pull0().unwrap();
    /// pull.listen("inproc://doc-send-poll-fd").unwrap();
    /// push.dial("inproc://doc-send-poll-fd").unwrap();
    /// assert!(writable(5_000));
    /// push.try_send("now").unwrap();
    /// ```
    ///
    /// # Errors
    /// `NotSup` on protocols that cannot send (pull, sub), as NNG; `Closed`; the OS error
    /// when no fd can be made.
    pub fn send_poll_fd(&self) -> Result<BorrowedFd<'_>> {
        self.inner.poll_fd(Dir::Send)
    }

    /// Starts an asynchronous send of the message on `aio` (`nng_send_aio`). On failure
    /// the message stays on the aio.
    pub fn send_aio(&self, aio: &Aio) {
        self.inner.send_aio(0, aio)
    }

    /// Starts an asynchronous receive (`nng_recv_aio`); the message arrives on the aio.
    pub fn recv_aio(&self, aio: &Aio) {
        self.inner.recv_aio_callback(0, aio)
    }

    /// Opens a context (`nng_ctx_open`): an independent protocol state on this socket
    /// (req, rep, surveyor, respondent and sub have them).
    ///
    /// # Errors
    /// `NotSup` for other protocols and raw sockets; `Closed`.
    pub fn context(&self) -> Result<crate::Context> {
        crate::Context::open(&self.inner)
    }

    /// Closes the socket (`nng_close`): pending operations complete with `Closed`, pipes,
    /// dialers and listeners close.
    ///
    /// # Errors
    /// `Closed` if it was already closed.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    /// Registers `cb` for pipe event `ev` (`nng_pipe_notify`); one callback per event,
    /// replacing any earlier one. Callbacks run on engine threads and may close the pipe
    /// (from `AddPre`, that rejects it).
    pub fn pipe_notify(
        &self,
        ev: PipeEvent,
        cb: impl Fn(nanoport_engine::Pipe, PipeEvent) + Send + Sync + 'static,
    ) {
        self.inner.notify.set(ev, Arc::new(cb));
    }

    /// Number of pipes currently attached.
    pub fn pipe_count(&self) -> usize {
        lock(&self.inner.core).pipes.len()
    }

    pub(crate) fn from_inner(inner: &Arc<SocketInner>) -> Socket {
        inner.handles.fetch_add(1, Ordering::Relaxed);
        Socket {
            inner: inner.clone(),
        }
    }
}

impl Clone for Socket {
    fn clone(&self) -> Socket {
        Socket::from_inner(&self.inner)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.inner.close();
        }
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.inner.id)
            .field("protocol", &self.inner.protocol)
            .finish()
    }
}

impl PartialEq for Socket {
    fn eq(&self, o: &Socket) -> bool {
        Arc::ptr_eq(&self.inner, &o.inner)
    }
}
impl Eq for Socket {}

impl SocketInner {
    /// This socket's statistics tree (NNG's `socket` scope); `None` once closed.
    pub(crate) fn stat(&self) -> Option<crate::stat::Stat> {
        use crate::stat::Stat;
        let core = self.lock();
        if core.closed {
            return None;
        }
        let d = core.proto.discards();
        let t = core.traffic;
        let dialers = core.endpoints.iter().filter(|e| e.is_dialer()).count() as u64;
        let listeners = core.endpoints.len() as u64 - dialers;
        let mut c = vec![
            Stat::id("id", "socket id", self.id),
            Stat::string("name", "socket name", core.opts.name.clone()),
            Stat::string("protocol", "protocol name", self.info.name.to_owned()),
            Stat::level("dialers", "open dialers", dialers),
            Stat::level("listeners", "open listeners", listeners),
            Stat::level("pipes", "open pipes", core.pipes.len() as u64),
            Stat::counter("pipes_added", "pipes that joined", core.pipes_added),
            Stat::counter("pipes_removed", "pipes that left", core.pipes_removed),
            Stat::counter("reject", "pipes rejected", core.rejected),
            Stat::counter("tx_msgs", "messages sent", t.tx_msgs),
            Stat::counter("rx_msgs", "messages received", t.rx_msgs),
            Stat::counter("tx_bytes", "bytes sent", t.tx_bytes),
            Stat::counter("rx_bytes", "bytes received", t.rx_bytes),
            Stat::counter("malformed", "malformed messages dropped", d.malformed),
            Stat::counter(
                "too_many_hops",
                "messages over ttl-max dropped",
                d.too_many_hops,
            ),
            Stat::counter("unmatched", "replies matching nothing dropped", d.unmatched),
            Stat::counter(
                "frames_too_large",
                "pipes closed for an oversized frame",
                core.frames_too_large,
            ),
            Stat::counter(
                "frames_malformed",
                "pipes closed for a malformed frame",
                core.frames_malformed,
            ),
        ];
        let endpoints = core.endpoints.clone();
        let mut pipes: Vec<_> = core
            .pipes
            .iter()
            .map(|(id, slot)| {
                let t = slot.traffic;
                Stat::scope(
                    "pipe",
                    "pipe statistics",
                    vec![
                        Stat::id("id", "pipe id", id.0),
                        Stat::id("socket", "socket id", self.id),
                        Stat::string(
                            "remote",
                            "peer address",
                            slot.tp.option("remote-address").unwrap_or_default(),
                        ),
                        Stat::counter("tx_msgs", "messages sent", t.tx_msgs),
                        Stat::counter("rx_msgs", "messages received", t.rx_msgs),
                        Stat::counter("tx_bytes", "bytes sent", t.tx_bytes),
                        Stat::counter("rx_bytes", "bytes received", t.rx_bytes),
                    ],
                )
            })
            .collect();
        drop(core);
        // Endpoint locks are taken after the socket's is released, never under it.
        c.extend(endpoints.iter().map(|e| e.stat()));
        c.append(&mut pipes);
        Some(Stat::scope("socket", "socket statistics", c))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        lock(&self.core)
    }

    fn arc(&self) -> Arc<SocketInner> {
        self.me.upgrade().expect("socket alive while in use")
    }

    /// The poll fd for `dir`, made (and set to the current readiness) on first use, under
    /// the core lock, so no change of readiness can slip between the check and the fd.
    pub(crate) fn poll_fd(&self, dir: Dir) -> Result<BorrowedFd<'_>> {
        let allowed = match dir {
            Dir::Send => self.info.can_send,
            Dir::Recv => self.info.can_recv,
        };
        if !allowed {
            return Err(Error::NotSup);
        }
        let slot = &self.poll_fds[dir as usize];
        if let Some(fd) = slot.get() {
            return Ok(fd.as_fd());
        }
        let mut core = self.lock();
        if core.closed {
            return Err(Error::Closed);
        }
        if core.poll_raised[dir as usize].is_none() {
            let fd = PollFd::new().map_err(Error::from)?;
            let ready = core.ready(dir);
            if ready {
                fd.raise();
            }
            // Cannot be set already: it is only set here, under this lock.
            let _ = slot.set(fd);
            core.poll_raised[dir as usize] = Some(ready);
            core.polled = true;
        }
        drop(core);
        slot.get().map(PollFd::as_fd).ok_or(Error::Internal)
    }

    /// Brings the poll fds the user asked for up to date with the protocol: raised or
    /// cleared only where readiness changed. Called with the core lock held, at the end
    /// of every event (`process`) and at close, only once some fd exists (`Core::polled`).
    #[inline(never)]
    fn update_poll(&self, core: &mut Core) {
        for dir in [Dir::Send, Dir::Recv] {
            let Some(raised) = core.poll_raised[dir as usize] else {
                continue;
            };
            let ready = core.ready(dir);
            if ready == raised {
                continue;
            }
            if let Some(fd) = self.poll_fds[dir as usize].get() {
                if ready {
                    fd.raise();
                } else {
                    fd.clear();
                }
            }
            core.poll_raised[dir as usize] = Some(ready);
        }
    }

    pub(crate) fn ctx_timeouts(&self, ctx: CtxId) -> Result<CtxTimeouts> {
        let core = self.lock();
        if core.closed {
            return Err(Error::Closed);
        }
        core.ctxs.get(&ctx).copied().ok_or(Error::Closed)
    }

    pub(crate) fn send_blocking(
        &self,
        ctx: CtxId,
        msg: Message,
        nonblock: bool,
    ) -> std::result::Result<(), SendError> {
        let held = if self.driven.load(Ordering::Relaxed) {
            self.lone_pipe_readiness(Dir::Recv)
        } else {
            None
        };
        let first = match &held {
            Some(rr) => rr.holding_reads(|| self.send_now(ctx, msg)),
            None => self.send_now(ctx, msg),
        };
        let msg = match first {
            SendNow::Sent => return Ok(()),
            SendNow::Failed(e, msg) => return Err(SendError::new(e, msg)),
            SendNow::Wait(msg) => msg,
        };
        with_blocking_aio(|aio| {
            aio.set_timeout(if nonblock {
                Timeout::After(Duration::ZERO)
            } else {
                Timeout::Default
            });
            aio.set_msg(msg);
            match held {
                Some(rr) => rr.holding_reads(|| self.send_aio(ctx, aio)),
                None => self.send_aio(ctx, aio),
            }
            // Blocked on a full pipe: write it out from here as room comes.
            match aio
                .busy()
                .then(|| self.lone_pipe_readiness(Dir::Send))
                .flatten()
            {
                Some(w) => aio.wait_driving(&w),
                None => aio.wait(),
            }
            match aio.result() {
                Ok(()) => Ok(()),
                Err(e) => {
                    let e = if nonblock && e == Error::TimedOut {
                        Error::Again
                    } else {
                        e
                    };
                    // A failed send leaves its message on the aio (the engine's
                    // contract); an empty one stands in only if that were ever broken.
                    Err(SendError::new(e, aio.take_msg().unwrap_or_default()))
                }
            }
        })
    }

    pub(crate) fn recv_blocking(&self, ctx: CtxId, nonblock: bool) -> Result<Message> {
        let err = match self.recv_queued(ctx, nonblock) {
            Some(Ok(m)) => return Ok(m),
            Some(Err(e)) => Some(e),
            None => None,
        };
        if nonblock && self.driven.load(Ordering::Relaxed) {
            // A thread polling without waiting drives nothing: a read held since its last
            // blocking receive goes back to the reactor, which fills the queue meanwhile.
            if let Some(rr) = self.lone_pipe_readiness(Dir::Recv) {
                rr.end_hold();
            }
        }
        if let Some(e) = err {
            return Err(e);
        }
        with_blocking_aio(|aio| {
            aio.set_timeout(if nonblock {
                Timeout::After(Duration::ZERO)
            } else {
                Timeout::Default
            });
            self.recv_aio(ctx, aio);
            match aio
                .busy()
                .then(|| self.lone_pipe_readiness(Dir::Recv))
                .flatten()
            {
                Some(rr) => {
                    self.driven.store(true, Ordering::Relaxed);
                    aio.wait_driving(&rr)
                }
                None => aio.wait(),
            }
            match aio.result() {
                Ok(()) => aio.take_msg().ok_or(Error::Internal),
                Err(e) => Err(if nonblock && e == Error::TimedOut {
                    Error::Again
                } else {
                    e
                }),
            }
        })
    }

    /// A blocking or non-blocking send's fast path: when the protocol takes the message at
    /// once, with nobody queued ahead on `ctx`, it is sent under one lock of the core,
    /// without starting an aio; a protocol's refusal is the send's error, as it would be
    /// on the aio. `Wait`: it must wait (or the socket is closed, or the context gone),
    /// for the full path to decide.
    ///
    /// Why: the aio's start, completion and hand-over were a sixth of a streaming
    /// sender's time.
    fn send_now(&self, ctx: CtxId, msg: Message) -> SendNow {
        if !self.info.can_send {
            return SendNow::Wait(msg);
        }
        engine_scope(|| {
            let mut core = self.lock();
            if !core.may_go_ahead(ctx, Dir::Send) {
                return SendNow::Wait(msg);
            }
            // A refusal queues nothing to act on now: `Fail` changes nothing, and what a
            // `Full` changed (req: a waiting receive cancelled) is acted on, poll fds
            // included, by the full path that follows at once (`start_user_op`).
            let out = match core.proto.try_send(ctx, msg, Now::current()) {
                Ok(()) => SendNow::Sent,
                Err(SendBlock::Full(m)) => return SendNow::Wait(m),
                Err(SendBlock::Fail(e, m)) => return SendNow::Failed(e, m),
            };
            self.process(&mut core);
            out
        })
    }

    /// A blocking or non-blocking receive's fast path: a message the protocol already
    /// holds for `ctx`, with nobody queued ahead for it, is handed over under one lock of
    /// the core, without starting an aio (no deadline, no cancel hook, no completion);
    /// so is the protocol's error, which the aio would have reported the same way (some
    /// are reported once: req's `ConnReset`, a surveyor's `TimedOut`). When the protocol
    /// says wait, a non-blocking receive ends here with `Again`, as NNG's zero-timeout
    /// aio ends before it reaches the protocol: nothing waited, so nothing is cancelled
    /// (a req keeps its request, see `ProtocolCore::recv_not_waiting`). `None`: a
    /// blocking receive must wait (or the socket is closed, the context gone, a receive
    /// queued ahead), for the full path to decide.
    ///
    /// Why: a receiver that falls behind a stream finds a message waiting on nearly every
    /// call, and the aio's start, completion and hand-over were a fifth of its time; an
    /// event loop calls `try_recv` on every readiness event and until `Again`.
    fn recv_queued(&self, ctx: CtxId, nonblock: bool) -> Option<Result<Message>> {
        if !self.info.can_recv {
            return None;
        }
        engine_scope(|| {
            let mut core = self.lock();
            if !core.may_go_ahead(ctx, Dir::Recv) {
                return None;
            }
            let got = match core.proto.try_recv(ctx, Now::current()) {
                Ok(Some(m)) => Some(Ok(m)),
                Ok(None) if nonblock => {
                    core.proto.recv_not_waiting(ctx);
                    Some(Err(Error::Again))
                }
                // The full path follows at once and acts on what the protocol noted.
                Ok(None) => return None,
                Err(e) => Some(Err(e)),
            };
            // Taking a message (or a reported outcome) may let a paused pipe read again,
            // or the protocol act; and the poll fds follow what was taken.
            self.process(&mut core);
            got
        })
    }

    /// On a socket with exactly one pipe, one side of that pipe's fd: a blocked receive
    /// reads its answer itself and a send blocked on a full pipe writes it out itself
    /// ([`AioProvider::wait_driving`]), and a send of a thread that drives its receives holds the
    /// reads meanwhile ([`Readiness::holding_reads`]). With several pipes the answer (or
    /// the room) may come from any of them, and the caller waits for whichever thread
    /// sees it.
    fn lone_pipe_readiness(&self, dir: Dir) -> Option<nanoport_engine::Readiness> {
        let core = self.lock();
        if core.pipes.len() != 1 {
            return None;
        }
        let tp = &core.pipes.values().next()?.tp;
        match dir {
            Dir::Recv => tp.read_readiness(),
            Dir::Send => tp.write_readiness(),
        }
    }

    pub(crate) fn send_aio(&self, ctx: CtxId, aio: &Aio) {
        self.start_user_op(ctx, Dir::Send, aio, |core, token| {
            attempt_send(core, ctx, aio, token) != SendAttempt::Pending
        })
    }

    /// A receive through a callback (`Socket::recv_aio`, `Context::recv_aio`): no thread
    /// waits to drive the pipe, so a read that a thread holds between its own blocking
    /// receives goes back to the reactor now rather than at the hold sweep.
    pub(crate) fn recv_aio_callback(&self, ctx: CtxId, aio: &Aio) {
        self.recv_aio(ctx, aio);
        if self.driven.load(Ordering::Relaxed) && aio.busy() {
            if let Some(rr) = self.lone_pipe_readiness(Dir::Recv) {
                rr.end_hold();
            }
        }
    }

    pub(crate) fn recv_aio(&self, ctx: CtxId, aio: &Aio) {
        self.start_user_op(ctx, Dir::Recv, aio, |core, token| {
            match core.proto.try_recv(ctx, Now::current()) {
                Ok(Some(m)) => {
                    if let Err(m) = aio.finish_recv(token, m) {
                        core.proto.unrecv(ctx, m);
                    }
                    true
                }
                Ok(None) => false,
                Err(e) => {
                    aio.finish(token, Err(e), 0);
                    true
                }
            }
        })
    }

    /// Starts a user send or receive on context `ctx`: one lock of the core, one try at
    /// once (`try_now` returns whether it completed the operation), else a place in the
    /// context's FIFO of waiters until the protocol says it may go ahead.
    fn start_user_op(
        &self,
        ctx: CtxId,
        dir: Dir,
        aio: &Aio,
        try_now: impl FnOnce(&mut Core, OpToken) -> bool,
    ) {
        engine_scope(|| {
            let mut core = self.lock();
            let timeout = core
                .ctxs
                .get(&ctx)
                .map_or(Timeout::Infinite, |t| match dir {
                    Dir::Send => t.send,
                    Dir::Recv => t.recv,
                });
            let hook = CancelHook::new(self.arc(), hook_key(ctx, dir));
            let Some(token) = aio.begin(timeout, Some(hook)) else {
                return;
            };
            let allowed = match dir {
                Dir::Send => self.info.can_send,
                Dir::Recv => self.info.can_recv,
            };
            let err = if core.closed || !core.ctxs.contains_key(&ctx) {
                Some(Error::Closed)
            } else if !allowed {
                Some(Error::NotSup)
            } else {
                None
            };
            if let Some(e) = err {
                drop(core);
                aio.finish(token, Err(e), 0);
                return;
            }
            let queue_empty = core.waiters.get(&(ctx, dir)).is_none_or(|q| q.is_empty());
            let done = queue_empty && try_now(&mut core, token);
            if !done && aio.is_pending(token) {
                core.waiters
                    .entry((ctx, dir))
                    .or_default()
                    .push_back(Waiter {
                        aio: aio.provider_handle(),
                        token,
                    });
            }
            self.process(&mut core);
        })
    }

    /// Drains the protocol's actions and re-arms its timer ([`drain_actions`]), then
    /// brings the poll fds up to date: the end of every event. A socket without poll fds
    /// pays one test of a flag here, once per event (not per message of a batch).
    ///
    /// [`drain_actions`]: SocketInner::drain_actions
    pub(crate) fn process(&self, core: &mut Core) {
        self.drain_actions(core);
        if core.polled {
            self.update_poll(core);
        }
    }

    /// Drains the protocol's actions, then re-arms its timer.
    ///
    /// A message for a pipe is first offered to the transport synchronously
    /// (`try_send_now`): a stream pipe with room in its write buffer takes it at once, and
    /// the protocol hears "writable" right here, so a stream of small messages costs no
    /// aio start, completion and callback per message. Otherwise it goes on the pipe's
    /// send aio as before, which waits for room or reports the error.
    fn drain_actions(&self, core: &mut Core) {
        while let Some(action) = core.proto.poll_action() {
            match action {
                Action::SendToPipe(p, msg) => match core.pipes.get_mut(&p) {
                    Some(slot) => {
                        let n = msg.len() + msg.header_len();
                        slot.traffic.sent(n);
                        core.traffic.sent(n);
                        match slot.tp.try_send_now(msg) {
                            Ok(()) => core.proto.pipe_writable(p, Now::current()),
                            Err(msg) => {
                                slot.send_aio.set_msg(msg);
                                slot.tp.send_aio(&slot.send_aio);
                            }
                        }
                    }
                    None => drop(msg),
                },
                Action::ClosePipe(p) => {
                    if let Some(slot) = core.pipes.get_mut(&p) {
                        slot.tp.close();
                        // The pipe is removed when its pending read fails; a pipe paused by
                        // backpressure has none, so give it one to fail.
                        if slot.paused {
                            slot.paused = false;
                            slot.tp.recv_aio(&slot.recv_aio);
                        }
                    }
                }
                Action::RecvReady(ctx) => retry_recv(core, ctx),
                Action::SendReady(ctx) => retry_send(core, ctx),
                Action::ResumePipe(p) => {
                    if let Some(slot) = core.pipes.get_mut(&p) {
                        if slot.paused {
                            slot.paused = false;
                            self.feed_from_pipe(core, p);
                        }
                    }
                }
            }
        }
        self.rearm_timer(core);
    }

    /// After a message from pipe `id` reached the protocol: runs the protocol's actions,
    /// then gives it the next message the pipe already has buffered, with no aio and no
    /// I/O (`try_recv_now`), for as long as it wants them; then starts the pipe's
    /// receive, or marks the pipe paused. The pipe's receive aio must be idle. The poll
    /// fds are the caller's (`process`, or `on_pipe_recv` after the batch).
    ///
    /// Why: a stream pipe reads many frames per `recv`; passing each through a receive
    /// aio and its callback would cost more than the read itself. Each message is still
    /// followed by `process`, as when each came through the aio.
    fn feed_from_pipe(&self, core: &mut Core, id: PipeId) {
        loop {
            self.drain_actions(core);
            let Some(slot) = core.pipes.get_mut(&id) else {
                return;
            };
            if !core.proto.wants_pipe_message(id) {
                slot.paused = true;
                return;
            }
            match slot.tp.try_recv_now() {
                Some(msg) => {
                    let n = msg.len() + msg.header_len();
                    slot.traffic.received(n);
                    core.traffic.received(n);
                    core.proto.pipe_message(id, msg, Now::current())
                }
                None => {
                    slot.tp.recv_aio(&slot.recv_aio);
                    return;
                }
            }
        }
    }

    fn rearm_timer(&self, core: &mut Core) {
        if core.closed {
            return;
        }
        let want = core.proto.next_timer();
        match (core.timer_at, want) {
            (None, Some(w)) => {
                core.timer_at = Some(w);
                let aio = self.timer.get_or_init(|| {
                    let weak = self.me.clone();
                    Aio::new_inline(move |_aio: &Aio| {
                        if let Some(s) = weak.upgrade() {
                            s.on_timer();
                        }
                    })
                    .expect("aio")
                });
                sleep_aio(w.saturating_duration_since(Instant::now()), aio);
            }
            (Some(at), Some(w)) if w < at => {
                if let Some(aio) = self.timer.get() {
                    aio.cancel();
                }
            }
            _ => {}
        }
    }

    fn on_timer(&self) {
        let mut core = self.lock();
        core.timer_at = None;
        if core.closed {
            return;
        }
        let now = scope_now();
        if core.proto.next_timer().is_some_and(|t| t <= now) {
            core.proto.timer(Now::at(now));
        }
        self.process(&mut core);
    }

    /// A transport pipe finished its handshake: vet it and attach it, then tell `owner`
    /// (the endpoint that made it) whether it joined ([`EndpointInner::pipe_attached`]).
    ///
    /// Without pipe callbacks the pipe joins here, on the calling thread. With them, the
    /// attach runs in order on the socket's pipe-event queue (`AddPre`, the protocol takes
    /// the pipe, `AddPost`), so user callbacks never run on the reactor thread; `help`
    /// lets a user thread that may block (a blocking dial) run the queue itself, so the
    /// pipe has joined when it returns, as `nng_dial` promises.
    pub(crate) fn add_pipe(&self, tp: BoxPipe, owner: Option<Weak<EndpointInner>>, help: bool) {
        if tp.peer_protocol() != self.info.peer_id {
            // NNG-PEER-MISMATCH: the protocol refuses a peer it cannot talk to.
            log::warn!(
                "NNG-PEER-MISMATCH: socket<{}> {}: peer protocol {:#x} is not {} ({:#x}), rejected ({})",
                self.id,
                self.info.name,
                tp.peer_protocol(),
                self.info.peer_name,
                self.info.peer_id,
                tp.option("remote-address").unwrap_or_default(),
            );
            self.lock().rejected += 1;
            tp.close();
            tell_owner(&owner, None);
            return;
        }
        let handle = SocketPipe::register(tp.clone(), owner.clone(), &self.arc());
        if !self.notify.is_active() {
            let id = engine_scope(|| self.join(tp, handle));
            tell_owner(&owner, id);
            return;
        }
        let me = self.arc();
        let attach = move || {
            let user_pipe = nanoport_engine::Pipe::new(handle.clone());
            me.notify.call(&user_pipe, PipeEvent::AddPre);
            if handle.is_closed() {
                // Rejected from AddPre: neither AddPost nor RemPost, as in NNG 1.11 (a
                // pipe the application refused never joined the socket).
                tp.close();
                tell_owner(&owner, None);
                return;
            }
            let id = engine_scope(|| me.join(tp, handle));
            if id.is_some() {
                me.notify.call(&user_pipe, PipeEvent::AddPost);
            }
            tell_owner(&owner, id);
        };
        self.notify.post(
            NotifyItem::Task(Box::new(attach)),
            help && !in_engine_scope(),
        );
    }

    /// Gives a vetted pipe to the protocol and starts its reads; `None` when the socket
    /// closed first (the pipe is closed then).
    fn join(&self, tp: BoxPipe, handle: Arc<SocketPipe>) -> Option<PipeId> {
        let id = tp.id();
        let weak = self.me.clone();
        let recv_aio = Aio::new_inline(move |aio: &Aio| {
            if let Some(s) = weak.upgrade() {
                s.on_pipe_recv(id, aio);
            }
        })
        .expect("aio");
        let weak = self.me.clone();
        let send_aio = Aio::new_inline(move |aio: &Aio| {
            if let Some(s) = weak.upgrade() {
                s.on_pipe_sent(id, aio);
            }
        })
        .expect("aio");
        let mut core = self.lock();
        if core.closed {
            drop(core);
            tp.close();
            return None;
        }
        core.pipes.insert(
            id,
            PipeSlot {
                tp: tp.clone(),
                send_aio,
                recv_aio,
                paused: false,
                handle,
                traffic: Traffic::default(),
            },
        );
        core.pipes_added += 1;
        core.proto.add_pipe(id, Now::current());
        let wants = core.proto.wants_pipe_message(id);
        if let Some(slot) = core.pipes.get_mut(&id) {
            if wants {
                slot.tp.recv_aio(&slot.recv_aio);
            } else {
                slot.paused = true;
            }
        }
        self.process(&mut core);
        drop(core);
        log::debug!(
            "NNG-PIPEADD: socket<{}> {}: pipe {} added ({})",
            self.id,
            self.info.name,
            id.0,
            tp.option("remote-address").unwrap_or_default(),
        );
        Some(id)
    }

    /// Whether pipe `id` is attached.
    pub(crate) fn has_pipe(&self, id: PipeId) -> bool {
        self.lock().pipes.contains_key(&id)
    }

    fn on_pipe_recv(&self, id: PipeId, aio: &Aio) {
        match aio.result() {
            Ok(()) => {
                let Some(msg) = aio.take_msg() else { return };
                let mut core = self.lock();
                let n = msg.len() + msg.header_len();
                if core.closed {
                    return;
                }
                let Some(slot) = core.pipes.get_mut(&id) else {
                    return;
                };
                slot.traffic.received(n);
                core.traffic.received(n);
                core.proto.pipe_message(id, msg, Now::current());
                self.feed_from_pipe(&mut core, id);
                if core.polled {
                    self.update_poll(&mut core);
                }
            }
            Err(e) => {
                // The transport already dropped the connection; count why.
                match e {
                    Error::MsgSize => {
                        log::warn!(
                            "NNG-RECVMAX: socket<{}>: pipe {} closed: a message over the receive limit",
                            self.id,
                            id.0
                        );
                        self.lock().frames_too_large += 1
                    }
                    Error::Proto => {
                        log::warn!(
                            "NNG-PROTO: socket<{}>: pipe {} closed: malformed frame",
                            self.id,
                            id.0
                        );
                        self.lock().frames_malformed += 1
                    }
                    _ => {}
                }
                self.remove_pipe(id)
            }
        }
    }

    fn on_pipe_sent(&self, id: PipeId, aio: &Aio) {
        match aio.result() {
            Ok(()) => {
                let mut core = self.lock();
                if core.closed || !core.pipes.contains_key(&id) {
                    return;
                }
                core.proto.pipe_writable(id, Now::current());
                self.process(&mut core);
            }
            Err(_) => {
                drop(aio.take_msg());
                self.remove_pipe(id);
            }
        }
    }

    pub(crate) fn remove_pipe(&self, id: PipeId) {
        let slot = {
            let mut core = self.lock();
            let Some(slot) = core.pipes.remove(&id) else {
                return;
            };
            core.pipes_removed += 1;
            if !core.closed {
                core.proto.remove_pipe(id, Now::current());
                self.process(&mut core);
            }
            slot
        };
        slot.tp.close();
        log::debug!(
            "NNG-PIPEREM: socket<{}> {}: pipe {} removed ({})",
            self.id,
            self.info.name,
            id.0,
            slot.tp.option("remote-address").unwrap_or_default(),
        );
        self.post_rem_post(&slot);
        if let Some(owner) = slot.handle.owner() {
            owner.pipe_closed(id);
        }
        // Dropping the slot drops the pipe's inline aios, which never wait (see `Aio`'s
        // drop): this may run at the end of an engine scope, where waiting for a callback
        // deferred to another thread's scope could close a cycle.
        drop(slot);
    }

    /// Queues the `RemPost` event of a removed pipe, when callbacks are in use.
    fn post_rem_post(&self, slot: &PipeSlot) {
        if self.notify.is_active() {
            let user_pipe = nanoport_engine::Pipe::new(slot.handle.clone());
            self.notify
                .post(NotifyItem::Event(user_pipe, PipeEvent::RemPost), false);
        }
    }

    pub(crate) fn close(&self) -> Result<()> {
        let (waiters, pipes, endpoints) = {
            let mut core = self.lock();
            if core.closed {
                return Err(Error::Closed);
            }
            core.closed = true;
            // The poll fds turn readable: a call now fails with `Closed` at once.
            if core.polled {
                self.update_poll(&mut core);
            }
            let waiters: Vec<Waiter> = core.waiters.drain().flat_map(|(_, q)| q).collect();
            let pipes: Vec<PipeSlot> = core.pipes.drain().map(|(_, s)| s).collect();
            let endpoints = std::mem::take(&mut core.endpoints);
            (waiters, pipes, endpoints)
        };
        for w in waiters {
            w.aio.finish(w.token, Err(Error::Closed), 0);
        }
        for ep in endpoints {
            ep.close();
        }
        for slot in &pipes {
            slot.tp.close();
        }
        if let Some(t) = self.timer.get() {
            t.cancel();
        }
        for slot in &pipes {
            self.post_rem_post(slot);
        }
        Ok(())
    }

    pub(crate) fn endpoint_options(&self) -> (EndpointOptions, SockOpts) {
        let core = self.lock();
        let o = &core.opts;
        let eo = EndpointOptions {
            recv_max: o.recv_max,
            tcp_nodelay: o.tcp_nodelay,
            tcp_keepalive: o.tcp_keepalive,
            send_ahead_max: o.send_ahead_max,
            ..EndpointOptions::default()
        };
        (eo, o.clone())
    }

    pub(crate) fn add_endpoint(&self, ep: Arc<EndpointInner>) -> Result<()> {
        let mut core = self.lock();
        if core.closed {
            return Err(Error::Closed);
        }
        core.endpoints.push(ep);
        Ok(())
    }

    pub(crate) fn remove_endpoint(&self, ep: &Arc<EndpointInner>) {
        self.lock().endpoints.retain(|e| !Arc::ptr_eq(e, ep));
    }

    pub(crate) fn open_ctx(&self) -> Result<CtxId> {
        let mut core = self.lock();
        if core.closed {
            return Err(Error::Closed);
        }
        let id = core.proto.open_ctx()?;
        let inherit = core.ctxs.get(&0).copied().unwrap_or(CtxTimeouts {
            send: Timeout::Infinite,
            recv: Timeout::Infinite,
        });
        core.ctxs.insert(id, inherit);
        Ok(id)
    }

    pub(crate) fn close_ctx(&self, ctx: CtxId) -> Result<()> {
        engine_scope(|| self.close_ctx_scoped(ctx))
    }

    fn close_ctx_scoped(&self, ctx: CtxId) -> Result<()> {
        let waiters = {
            let mut core = self.lock();
            if core.closed || core.ctxs.remove(&ctx).is_none() {
                return Err(Error::Closed);
            }
            core.proto.close_ctx(ctx);
            let mut w: Vec<Waiter> = Vec::new();
            for dir in [Dir::Send, Dir::Recv] {
                if let Some(q) = core.waiters.remove(&(ctx, dir)) {
                    w.extend(q);
                }
            }
            self.process(&mut core);
            w
        };
        for w in waiters {
            w.aio.finish(w.token, Err(Error::Closed), 0);
        }
        Ok(())
    }

    pub(crate) fn set_ctx_timeout(&self, ctx: CtxId, dir: Dir, t: Timeout) -> Result<()> {
        let mut core = self.lock();
        if core.closed {
            return Err(Error::Closed);
        }
        let c = core.ctxs.get_mut(&ctx).ok_or(Error::Closed)?;
        match dir {
            Dir::Send => c.send = t,
            Dir::Recv => c.recv = t,
        }
        Ok(())
    }

    pub(crate) fn set_proto_option(&self, ctx: CtxId, name: &str, v: OptValue) -> Result<()> {
        engine_scope(|| {
            let mut core = self.lock();
            if core.closed {
                return Err(Error::Closed);
            }
            let r = core.proto.set_option(ctx, name, v);
            self.process(&mut core);
            r
        })
    }

    pub(crate) fn get_proto_option(&self, ctx: CtxId, name: &str) -> Result<OptValue> {
        let core = self.lock();
        if core.closed {
            return Err(Error::Closed);
        }
        core.proto.get_option(ctx, name)
    }

    /// Reads a socket-wide option.
    ///
    /// # Errors
    /// `Closed`.
    pub(crate) fn sock_opt<R>(&self, f: impl FnOnce(&SockOpts) -> R) -> Result<R> {
        let core = self.lock();
        if core.closed {
            return Err(Error::Closed);
        }
        Ok(f(&core.opts))
    }

    /// Changes socket options that no endpoint or pipe uses (`socket-name`, the spare
    /// buffer depths), so nothing is handed on.
    ///
    /// # Errors
    /// `Closed`.
    pub(crate) fn set_local_opts(&self, f: impl FnOnce(&mut SockOpts)) -> Result<()> {
        let mut core = self.lock();
        if core.closed {
            return Err(Error::Closed);
        }
        f(&mut core.opts);
        Ok(())
    }

    /// Changes socket-wide options and hands them on, as NNG's `nni_sock_setopt` does: to
    /// every dialer and listener (for what they make from now on, and the reconnect
    /// times) and through them to their live pipes; pipes whose endpoint is gone get them
    /// directly.
    ///
    /// # Errors
    /// `Closed`.
    pub(crate) fn set_sock_opts(&self, f: impl FnOnce(&mut SockOpts)) -> Result<()> {
        let (opts, endpoints) = {
            let mut core = self.lock();
            if core.closed {
                return Err(Error::Closed);
            }
            f(&mut core.opts);
            (core.opts.clone(), core.endpoints.clone())
        };
        for ep in &endpoints {
            ep.socket_options_changed(&opts);
        }
        let (eo, _) = self.endpoint_options();
        self.apply_to_pipes(None, &eo);
        Ok(())
    }

    /// Gives live pipes changed connection options: those `owner` made, or (`None`) those
    /// whose endpoint is gone or that no endpoint made. Applied outside the socket's lock.
    pub(crate) fn apply_to_pipes(&self, owner: Option<&EndpointInner>, opts: &EndpointOptions) {
        let pipes: Vec<BoxPipe> = {
            let core = self.lock();
            core.pipes
                .values()
                .filter(|slot| match (owner, slot.handle.owner()) {
                    (Some(want), Some(has)) => std::ptr::eq(want, Arc::as_ptr(&has)),
                    (Some(_), None) => false,
                    (None, has) => has.is_none(),
                })
                .map(|slot| slot.tp.clone())
                .collect()
        };
        for tp in pipes {
            tp.set_options(opts);
        }
    }
}

/// What [`SocketInner::send_now`] did with a message.
enum SendNow {
    /// The protocol took it.
    Sent,
    /// The protocol refused it for good; the message goes back to the caller.
    Failed(Error, Message),
    /// It has to wait, or the full path must decide; here it is back.
    Wait(Message),
}

/// Tells the endpoint that made a pipe whether it joined its socket.
fn tell_owner(owner: &Option<Weak<EndpointInner>>, id: Option<PipeId>) {
    if let Some(ep) = owner.as_ref().and_then(Weak::upgrade) {
        ep.pipe_attached(id);
    }
}

fn attempt_send(core: &mut Core, ctx: CtxId, aio: &Aio, token: OpToken) -> SendAttempt {
    let now = Now::current();
    let proto = &mut core.proto;
    aio.attempt_send(token, |m| match proto.try_send(ctx, m, now) {
        Ok(()) => Ok(()),
        Err(SendBlock::Full(m)) => Err((m, None)),
        Err(SendBlock::Fail(e, m)) => Err((m, Some(e))),
    })
}

fn retry_send(core: &mut Core, ctx: CtxId) {
    loop {
        let Some(w) = core
            .waiters
            .get_mut(&(ctx, Dir::Send))
            .and_then(|q| q.pop_front())
        else {
            return;
        };
        match attempt_send(core, ctx, &w.aio, w.token) {
            SendAttempt::Pending => {
                if let Some(q) = core.waiters.get_mut(&(ctx, Dir::Send)) {
                    q.push_front(w);
                }
                return;
            }
            SendAttempt::Done | SendAttempt::Lost => {}
        }
    }
}

fn retry_recv(core: &mut Core, ctx: CtxId) {
    let now = Now::current();
    loop {
        let Some(q) = core.waiters.get_mut(&(ctx, Dir::Recv)) else {
            return;
        };
        let Some(w) = q.front() else { return };
        if !w.aio.is_pending(w.token) {
            q.pop_front();
            continue;
        }
        match core.proto.try_recv(ctx, now) {
            Ok(Some(m)) => {
                let Some(w) = core
                    .waiters
                    .get_mut(&(ctx, Dir::Recv))
                    .and_then(|q| q.pop_front())
                else {
                    return;
                };
                if let Err(m) = w.aio.finish_recv(w.token, m) {
                    core.proto.unrecv(ctx, m);
                }
            }
            Ok(None) => return,
            Err(e) => {
                let Some(w) = core
                    .waiters
                    .get_mut(&(ctx, Dir::Recv))
                    .and_then(|q| q.pop_front())
                else {
                    return;
                };
                w.aio.finish(w.token, Err(e), 0);
            }
        }
    }
}

impl Cancel for SocketInner {
    fn cancelled(&self, aio: &Aio, key: usize, token: OpToken) {
        engine_scope(|| {
            let ctx = (key >> 1) as CtxId;
            let dir = if key & 1 == 0 { Dir::Send } else { Dir::Recv };
            let mut core = self.lock();
            if let Some(q) = core.waiters.get_mut(&(ctx, dir)) {
                if let Some(i) = q
                    .iter()
                    .position(|w| w.token == token && Aio::ptr_eq(&w.aio, aio))
                {
                    q.remove(i);
                    if dir == Dir::Recv && !core.closed {
                        core.proto.recv_cancelled(ctx);
                    }
                }
            }
            if !core.closed {
                self.process(&mut core);
            }
        })
    }
}
