//! [`Dialer`] and [`Listener`]: the endpoints that make a socket's pipes.
//!
//! A dialer connects, and after its pipe is lost (or an attempt fails) redials after a
//! random pause in `[0, back_off)`, where `back_off` starts at the reconnect minimum and
//! doubles up to the maximum (no doubling when the maximum is 0), as NNG's dialer does.
//! A listener accepts until closed; an accept that fails for lack of resources pauses
//! 100 ms before the next try rather than spinning (NNG's `listener_accept_cb`).
//! Both are driven by inline aios: no thread of their own.

use nanoport_engine::AioProvider;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use nanoport_engine::{sleep_aio, Aio, Error, OpToken, PipeId, Result, Timeout};
use nanoport_transports::{BoxPipe, EndpointOptions, TransportDialer, TransportListener, Url};

use crate::opt;
use crate::options::EndpointOpt;
use crate::socket::{with_blocking_aio, SockOpts, SocketInner};
use nanoport_protocols::OptValue;

enum Kind {
    Dialer,
    Listener,
}

struct EpState {
    started: bool,
    closed: bool,
    opts: EndpointOptions,
    reconnect_min: Duration,
    reconnect_max: Duration,
    back_off: Duration,
    pipe: Option<PipeId>,
    dialer: Option<Arc<TransportDialer>>,
    listener: Option<Arc<TransportListener>>,
    first: Option<(Aio, OpToken)>,
    /// How this dialer's connection attempts ended (NNG's dialer statistics).
    dials: DialStats,
}

/// How a dialer's attempts ended, by NNG's statistic names.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DialStats {
    pub(crate) connect: u64,
    pub(crate) refused: u64,
    pub(crate) timeout: u64,
    pub(crate) canceled: u64,
    pub(crate) proto: u64,
    pub(crate) auth: u64,
    pub(crate) other: u64,
}

impl DialStats {
    fn count(&mut self, r: &Result<()>) {
        match r {
            Ok(()) => self.connect += 1,
            Err(Error::ConnRefused) => self.refused += 1,
            Err(Error::TimedOut) => self.timeout += 1,
            Err(Error::Canceled | Error::Closed | Error::Stopped) => self.canceled += 1,
            Err(Error::Proto) => self.proto += 1,
            Err(Error::PeerAuth) => self.auth += 1,
            Err(_) => self.other += 1,
        }
    }
}

pub(crate) struct EndpointInner {
    sock: Weak<SocketInner>,
    url: Url,
    kind: Kind,
    st: Mutex<EpState>,
    work: OnceLock<Aio>,
    pause: OnceLock<Aio>,
    me: Weak<EndpointInner>,
}

/// A dialer (`nng_dialer`): connects its socket to one address and keeps it connected.
///
/// # Examples
///
/// ```
/// use nanoport::Socket;
/// let pull = Socket::pull0().unwrap();
/// let d = pull.dial_nonblocking("tcp://127.0.0.1:1").unwrap(); // retries in the background
/// d.close().unwrap();
/// ```
#[derive(Clone)]
pub struct Dialer {
    inner: Arc<EndpointInner>,
}

/// A listener (`nng_listener`): accepts connections to its socket on one address.
///
/// # Examples
///
/// ```
/// use nanoport::Socket;
/// let s = Socket::pull0().unwrap();
/// let l = s.listen("tcp://127.0.0.1:0").unwrap();
/// assert!(l.port().unwrap() > 0);
/// ```
#[derive(Clone)]
pub struct Listener {
    inner: Arc<EndpointInner>,
}

fn random_below(limit: Duration) -> Duration {
    static SEED: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let ms = limit.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    // xorshift64*: enough to spread reconnect storms; not for anything secret.
    let mut x = SEED.load(Ordering::Relaxed)
        ^ (std::time::Instant::now().elapsed().as_nanos() as u64)
        ^ (ms << 17);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    SEED.store(x, Ordering::Relaxed);
    Duration::from_millis(x.wrapping_mul(0x2545_f491_4f6c_dd1d) % ms)
}

impl EndpointInner {
    fn create(sock: &Arc<SocketInner>, url: &str, kind: Kind) -> Result<Arc<EndpointInner>> {
        let url = Url::parse(url)?;
        let (opts, sopts) = sock.endpoint_options();
        let inner = Arc::new_cyclic(|me| EndpointInner {
            sock: Arc::downgrade(sock),
            url,
            kind,
            st: Mutex::new(EpState {
                started: false,
                closed: false,
                opts,
                reconnect_min: sopts.reconnect_min,
                reconnect_max: sopts.reconnect_max,
                back_off: sopts.reconnect_min,
                pipe: None,
                dialer: None,
                listener: None,
                first: None,
                dials: DialStats::default(),
            }),
            work: OnceLock::new(),
            pause: OnceLock::new(),
            me: me.clone(),
        });
        sock.add_endpoint(inner.clone())?;
        Ok(inner)
    }

    /// Whether this endpoint dials (or listens).
    pub(crate) fn is_dialer(&self) -> bool {
        matches!(self.kind, Kind::Dialer)
    }

    /// This endpoint's statistics (NNG's `dialer` or `listener` scope).
    pub(crate) fn stat(&self) -> crate::stat::Stat {
        use crate::stat::Stat;
        let st = self.lock();
        let mut c = vec![
            Stat::id(
                "socket",
                "socket id",
                self.sock.upgrade().map_or(0, |s| s.id),
            ),
            Stat::string("url", "endpoint url", self.url.to_string()),
            Stat::level("pipes", "open pipes", u64::from(st.pipe.is_some())),
        ];
        match self.kind {
            Kind::Dialer => {
                let d = st.dials;
                c.extend([
                    Stat::counter("connect", "connections established", d.connect),
                    Stat::counter("refused", "connections refused", d.refused),
                    Stat::counter("timeout", "connections timed out", d.timeout),
                    Stat::counter("canceled", "attempts canceled", d.canceled),
                    Stat::counter("proto", "protocol errors", d.proto),
                    Stat::counter("auth", "authentication errors", d.auth),
                    Stat::counter("other", "other errors", d.other),
                ]);
                Stat::scope("dialer", "dialer statistics", c)
            }
            Kind::Listener => {
                let l = st.listener.as_ref().map(|l| l.stats()).unwrap_or_default();
                c.extend([
                    Stat::counter("accept", "connections accepted", l.accepted),
                    Stat::counter("proto", "protocol errors", l.handshake_proto),
                    Stat::counter("timeout", "handshakes timed out", l.handshake_timeout),
                    Stat::counter(
                        "disconnect",
                        "peers gone in the handshake",
                        l.handshake_disconnect,
                    ),
                    Stat::counter("other", "other errors", l.handshake_other),
                ]);
                Stat::scope("listener", "listener statistics", c)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, EpState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn work_aio(&self) -> &Aio {
        self.work.get_or_init(|| {
            let me = self.me.clone();
            Aio::new_inline(move |aio: &Aio| {
                if let Some(ep) = me.upgrade() {
                    match ep.kind {
                        Kind::Dialer => ep.on_dialed(aio),
                        Kind::Listener => ep.on_accepted(aio),
                    }
                }
            })
            .expect("aio")
        })
    }

    fn pause_aio(&self) -> &Aio {
        self.pause.get_or_init(|| {
            let me = self.me.clone();
            Aio::new_inline(move |aio: &Aio| {
                if let Some(ep) = me.upgrade() {
                    if aio.result().is_ok() {
                        match ep.kind {
                            Kind::Dialer => ep.dial_once(),
                            Kind::Listener => ep.accept_once(),
                        }
                    }
                }
            })
            .expect("aio")
        })
    }

    fn proto_id(&self) -> Result<u16> {
        self.sock.upgrade().map(|s| s.info.id).ok_or(Error::Closed)
    }

    fn dial_once(&self) {
        let d = {
            let st = self.lock();
            if st.closed {
                return;
            }
            st.dialer.clone()
        };
        if let Some(d) = d {
            d.dial_aio(self.work_aio());
        }
    }

    fn accept_once(&self) {
        let l = {
            let st = self.lock();
            if st.closed {
                return;
            }
            st.listener.clone()
        };
        if let Some(l) = l {
            l.accept_aio(self.work_aio());
        }
    }

    fn schedule_redial(&self) {
        let delay = {
            let mut st = self.lock();
            if st.closed || !st.started {
                return;
            }
            let delay = random_below(st.back_off);
            if st.reconnect_max > Duration::ZERO {
                st.back_off = (st.back_off * 2).min(st.reconnect_max);
            }
            delay
        };
        log::debug!(
            "NNG-RECONNECT: dialer for {} redials in {:?}",
            self.url,
            delay
        );
        sleep_aio(delay, self.pause_aio());
    }

    /// Hands a connected pipe to the socket, which reports back through
    /// [`pipe_attached`](Self::pipe_attached). `help`: the caller is a user thread that may
    /// run the socket's pipe callbacks itself (a blocking dial).
    fn attach(&self, pipe: BoxPipe, help: bool) {
        match self.sock.upgrade() {
            Some(sock) => sock.add_pipe(pipe, Some(self.me.clone()), help),
            None => {
                pipe.close();
                self.pipe_attached(None);
            }
        }
    }

    /// The socket took the pipe this endpoint made (`Some`), or refused it. A dialer
    /// remembers its pipe, to redial when it closes; a refused pipe, or one that closed
    /// before this was told, means redialing now. Decided under the endpoint's lock, so
    /// that exactly one of this and [`pipe_closed`](Self::pipe_closed) redials.
    pub(crate) fn pipe_attached(&self, id: Option<PipeId>) {
        if !matches!(self.kind, Kind::Dialer) {
            return;
        }
        let redial = {
            let mut st = self.lock();
            match id {
                Some(id) => {
                    st.pipe = Some(id);
                    let gone = !self.sock.upgrade().is_some_and(|s| s.has_pipe(id));
                    if gone {
                        st.pipe = None;
                    }
                    gone
                }
                None => true,
            }
        };
        if redial {
            self.schedule_redial();
        }
    }

    fn on_dialed(&self, aio: &Aio) {
        let result = aio.result();
        let first = {
            let mut st = self.lock();
            st.dials.count(&result);
            st.first.take()
        };
        match result {
            Ok(()) => {
                let Some(pipe) = aio.take_output::<BoxPipe>() else {
                    return;
                };
                {
                    let mut st = self.lock();
                    st.back_off = st.reconnect_min;
                }
                if let Some((a, t)) = first {
                    a.finish(t, Ok(()), 0);
                }
                self.attach(pipe, false);
            }
            Err(e) => {
                if let Some((a, t)) = first {
                    // nng_dialer_start_aio: report the first attempt, no background retry.
                    self.lock().started = false;
                    a.finish(t, Err(e), 0);
                    return;
                }
                if !matches!(e, Error::Closed | Error::Canceled | Error::Stopped) {
                    log::info!("NNG-CONN-FAIL: failed connecting to {}: {e}", self.url);
                    self.schedule_redial();
                }
            }
        }
    }

    fn on_accepted(&self, aio: &Aio) {
        match aio.result() {
            Ok(()) => {
                if let Some(pipe) = aio.take_output::<BoxPipe>() {
                    self.attach(pipe, false);
                }
                self.accept_once();
            }
            Err(Error::Closed | Error::Canceled | Error::Stopped | Error::ConnAborted) => {}
            Err(Error::ConnReset) | Err(Error::TimedOut) | Err(Error::PeerAuth) => {
                self.accept_once()
            }
            Err(e) => {
                log::warn!(
                    "NNG-ACCEPT-FAIL: accepting on {}: {e}; pausing 100 ms",
                    self.url
                );
                // Out of files or memory, say: pause rather than spin, then try again.
                if !self.lock().closed {
                    sleep_aio(Duration::from_millis(100), self.pause_aio());
                }
            }
        }
    }

    /// A pipe this endpoint made has closed: a dialer reconnects.
    pub(crate) fn pipe_closed(&self, id: PipeId) {
        if matches!(self.kind, Kind::Dialer) {
            let mine = {
                let mut st = self.lock();
                if st.pipe == Some(id) {
                    st.pipe = None;
                    true
                } else {
                    false
                }
            };
            if mine {
                self.schedule_redial();
            }
        }
    }

    /// Closes the endpoint; false if it was closed already.
    pub(crate) fn close(&self) -> bool {
        let (d, l, first) = {
            let mut st = self.lock();
            if st.closed {
                return false;
            }
            st.closed = true;
            (st.dialer.take(), st.listener.take(), st.first.take())
        };
        if let Some((a, t)) = first {
            a.finish(t, Err(Error::Closed), 0);
        }
        if let Some(d) = d {
            d.close();
        }
        if let Some(l) = l {
            l.close();
        }
        if let Some(a) = self.work.get() {
            a.cancel();
        }
        if let Some(a) = self.pause.get() {
            a.cancel();
        }
        true
    }

    fn close_and_detach(self: &Arc<Self>) -> Result<()> {
        if !self.close() {
            return Err(Error::Closed);
        }
        if let Some(s) = self.sock.upgrade() {
            s.remove_endpoint(self);
        }
        Ok(())
    }

    /// A blocking start whose first attempt failed: back to not started, so it can be
    /// started again (NNG clears only "started").
    fn unstart(&self, d: &Arc<TransportDialer>) {
        let mut st = self.lock();
        if st.dialer.as_ref().is_some_and(|x| Arc::ptr_eq(x, d)) {
            st.dialer = None;
        }
        st.started = false;
        drop(st);
        d.close();
    }

    /// The endpoint's state for a setting NNG takes only before start (the TLS
    /// configuration: a running endpoint's connections already chose theirs).
    ///
    /// # Errors
    /// `Closed`; `Busy` once started.
    fn check_settable(&self) -> Result<MutexGuard<'_, EpState>> {
        let st = self.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        if st.started {
            return Err(Error::Busy);
        }
        Ok(st)
    }

    /// Changes this endpoint's options, running or not, and hands the connection options
    /// on to the transport (for later connections) and to the live pipes this endpoint
    /// made, as NNG's tcp and ipc endpoints do.
    ///
    /// # Errors
    /// `Closed`.
    fn update(&self, f: impl FnOnce(&mut EpState)) -> Result<()> {
        let (opts, d, l) = {
            let mut st = self.lock();
            if st.closed {
                return Err(Error::Closed);
            }
            f(&mut st);
            (st.opts.clone(), st.dialer.clone(), st.listener.clone())
        };
        if let Some(d) = d {
            d.set_options(&opts);
        }
        if let Some(l) = l {
            l.set_options(&opts);
        }
        if let Some(sock) = self.sock.upgrade() {
            sock.apply_to_pipes(Some(self), &opts);
        }
        Ok(())
    }

    fn set_option(&self, name: &str, value: OptValue) -> Result<()> {
        let is_dialer = matches!(self.kind, Kind::Dialer);
        match EndpointOpt::decode(name, value)? {
            Some(EndpointOpt::RecvSizeMax(n)) => self.update(|st| st.opts.recv_max = n),
            Some(EndpointOpt::TcpNoDelay(b)) => self.update(|st| st.opts.tcp_nodelay = b),
            Some(EndpointOpt::TcpKeepAlive(b)) => self.update(|st| st.opts.tcp_keepalive = b),
            Some(EndpointOpt::SendAheadMax(n)) => self.update(|st| st.opts.send_ahead_max = n),
            Some(EndpointOpt::ReconnectMin(d)) if is_dialer => self.update(|st| {
                st.reconnect_min = d;
                st.back_off = d;
            }),
            Some(EndpointOpt::ReconnectMax(d)) if is_dialer => {
                self.update(|st| st.reconnect_max = d)
            }
            Some(EndpointOpt::TcpKeepAliveIdle(d)) => {
                self.update(|st| st.opts.tcp_keepalive_idle = d)
            }
            Some(EndpointOpt::TcpKeepAliveInterval(d)) => {
                self.update(|st| st.opts.tcp_keepalive_interval = d)
            }
            Some(EndpointOpt::TcpKeepAliveCount(n)) => {
                self.update(|st| st.opts.tcp_keepalive_count = n)
            }
            Some(EndpointOpt::LocalAddress(a)) if is_dialer => self.set_local_address(a),
            Some(EndpointOpt::IpcPermissions(m)) if !is_dialer => self.set_ipc_permissions(m),
            Some(_) => Err(Error::NotSup),
            None if matches!(name, opt::URL | opt::TCP_BOUND_PORT) => Err(Error::ReadOnly),
            None => Err(Error::NotSup),
        }
    }

    fn get_option(&self, name: &str) -> Result<OptValue> {
        let st = self.lock();
        let ms = |d: Duration| OptValue::Duration(Timeout::After(d));
        Ok(match (name, &self.kind) {
            (opt::URL, _) => OptValue::Str(self.url.to_string()),
            (opt::RECV_SIZE_MAX, _) => OptValue::Size(st.opts.recv_max),
            (opt::TCP_NODELAY, _) => OptValue::Bool(st.opts.tcp_nodelay),
            (opt::TCP_KEEPALIVE, _) => OptValue::Bool(st.opts.tcp_keepalive),
            (opt::SEND_AHEAD_MAX, _) => OptValue::Size(st.opts.send_ahead_max),
            (opt::TCP_KEEPALIVE_IDLE, _) => keepalive_value(st.opts.tcp_keepalive_idle),
            (opt::TCP_KEEPALIVE_INTERVAL, _) => keepalive_value(st.opts.tcp_keepalive_interval),
            (opt::TCP_KEEPALIVE_COUNT, _) => {
                OptValue::Int(st.opts.tcp_keepalive_count.map_or(0, |n| n as i32))
            }
            (opt::LOCAL_ADDRESS, Kind::Dialer) if self.is_tcp() => OptValue::Str(
                st.opts
                    .local_addr
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            ),
            (opt::IPC_PERMISSIONS, Kind::Listener) if self.is_ipc() => {
                OptValue::Int(st.opts.ipc_permissions.ok_or(Error::NoEnt)? as i32)
            }
            (opt::RECONNECT_TIME_MIN, Kind::Dialer) => ms(st.reconnect_min),
            (opt::RECONNECT_TIME_MAX, Kind::Dialer) => ms(st.reconnect_max),
            (opt::TCP_BOUND_PORT, Kind::Listener) => {
                let port = st.listener.as_ref().and_then(|l| l.port());
                OptValue::Int(i32::from(port.ok_or(Error::NotSup)?))
            }
            _ => return Err(Error::NotSup),
        })
    }

    /// Whether the URL runs over TCP (`tcp`, `tls+tcp`, `ws`, `wss` and their 4/6 forms).
    fn is_tcp(&self) -> bool {
        let s = self.url.scheme();
        s.starts_with("tcp") || s.starts_with("tls+tcp") || s.starts_with("ws")
    }

    /// Whether the URL is a unix-domain one (`ipc`, `unix`, `abstract`).
    fn is_ipc(&self) -> bool {
        matches!(self.url.scheme(), "ipc" | "unix" | "abstract")
    }

    /// `NNG_OPT_LOCADDR` on a dialer: tcp URLs only, for the next connection on.
    fn set_local_address(&self, a: Option<std::net::IpAddr>) -> Result<()> {
        if !matches!(self.kind, Kind::Dialer) || !self.is_tcp() {
            return Err(Error::NotSup);
        }
        self.update(|st| st.opts.local_addr = a)
    }

    /// `NNG_OPT_IPC_PERMISSIONS` on a listener: ipc URLs only, before start.
    fn set_ipc_permissions(&self, mode: u32) -> Result<()> {
        if !matches!(self.kind, Kind::Listener) || !self.is_ipc() {
            return Err(Error::NotSup);
        }
        let mode = crate::options::ipc_mode(mode)?;
        self.check_settable()?.opts.ipc_permissions = Some(mode);
        Ok(())
    }

    /// Sets keep-alive timing (validated); live pipes follow.
    fn set_keepalive_timing(
        &self,
        idle: Option<Option<Duration>>,
        interval: Option<Option<Duration>>,
        count: Option<Option<u32>>,
    ) -> Result<()> {
        use crate::options::{keepalive_count, keepalive_time};
        let idle = idle.map(keepalive_time).transpose()?;
        let interval = interval.map(keepalive_time).transpose()?;
        let count = count.map(keepalive_count).transpose()?;
        self.update(|st| {
            if let Some(d) = idle {
                st.opts.tcp_keepalive_idle = d;
            }
            if let Some(d) = interval {
                st.opts.tcp_keepalive_interval = d;
            }
            if let Some(n) = count {
                st.opts.tcp_keepalive_count = n;
            }
        })
    }

    /// The socket's options changed (`nni_sock_setopt` hands them to every endpoint).
    pub(crate) fn socket_options_changed(&self, o: &SockOpts) {
        let _ = self.update(|st| {
            st.opts.recv_max = o.recv_max;
            st.opts.tcp_nodelay = o.tcp_nodelay;
            st.opts.tcp_keepalive = o.tcp_keepalive;
            st.opts.send_ahead_max = o.send_ahead_max;
            st.reconnect_min = o.reconnect_min;
            st.reconnect_max = o.reconnect_max;
            st.back_off = st
                .back_off
                .clamp(o.reconnect_min, o.reconnect_min.max(o.reconnect_max));
        });
    }
}

/// A keep-alive time by name: `Timeout::Default` when the system's applies.
fn keepalive_value(d: Option<Duration>) -> OptValue {
    OptValue::Duration(d.map_or(Timeout::Default, Timeout::After))
}

/// The typed keep-alive and address options dialers and listeners share.
macro_rules! tcp_endpoint_options {
    ($t:ident) => {
        impl $t {
            /// Whether the endpoint's tcp connections set `TCP_NODELAY`.
            pub fn tcp_nodelay(&self) -> bool {
                self.inner.lock().opts.tcp_nodelay
            }

            /// Whether the endpoint's tcp connections set keep-alive.
            pub fn tcp_keepalive(&self) -> bool {
                self.inner.lock().opts.tcp_keepalive
            }

            /// Sets the idle time before the first TCP keep-alive probe (`TCP_KEEPIDLE`,
            /// `tcp-keepalive-idle`; nanoport's own, NNG has only the keep-alive flag),
            /// 1 s to 32767 s in whole seconds; `None` (or zero) keeps the system's
            /// (Linux: 2 hours). Probes go out only with
            #[doc = concat!("[`set_tcp_keepalive`](", stringify!($t), "::set_tcp_keepalive)")]
            /// on. Later connections and live pipes follow; ignored where the platform
            /// lacks it (it has it on Linux, the BSDs and macOS).
            ///
            /// ```
            /// use nanoport::Socket;
            /// use std::time::Duration;
            /// let s = Socket::pair0().unwrap();
            /// let d = s.dialer("tcp://127.0.0.1:5555").unwrap();
            /// d.set_tcp_keepalive(true).unwrap();
            /// d.set_tcp_keepalive_idle(Duration::from_secs(30)).unwrap();
            /// assert_eq!(d.tcp_keepalive_idle(), Some(Duration::from_secs(30)));
            /// ```
            ///
            /// # Errors
            /// `Inval` out of range, `Closed`.
            pub fn set_tcp_keepalive_idle(&self, d: impl Into<Option<Duration>>) -> Result<()> {
                self.inner.set_keepalive_timing(Some(d.into()), None, None)
            }

            /// The keep-alive idle time set (`None`: the system's).
            pub fn tcp_keepalive_idle(&self) -> Option<Duration> {
                self.inner.lock().opts.tcp_keepalive_idle
            }

            /// Sets the time between TCP keep-alive probes (`TCP_KEEPINTVL`,
            /// `tcp-keepalive-interval`; nanoport's own), as
            #[doc = concat!("[`set_tcp_keepalive_idle`](", stringify!($t), "::set_tcp_keepalive_idle)")]
            /// (Linux default 75 s).
            ///
            /// # Errors
            /// `Inval` out of range, `Closed`.
            pub fn set_tcp_keepalive_interval(
                &self,
                d: impl Into<Option<Duration>>,
            ) -> Result<()> {
                self.inner.set_keepalive_timing(None, Some(d.into()), None)
            }

            /// The keep-alive interval set (`None`: the system's).
            pub fn tcp_keepalive_interval(&self) -> Option<Duration> {
                self.inner.lock().opts.tcp_keepalive_interval
            }

            /// Sets how many unanswered keep-alive probes drop the connection
            /// (`TCP_KEEPCNT`, `tcp-keepalive-count`; nanoport's own), 1..=127; `None`
            /// (or 0) keeps the system's (Linux: 9).
            ///
            /// # Errors
            /// `Inval` out of range, `Closed`.
            pub fn set_tcp_keepalive_count(&self, n: impl Into<Option<u32>>) -> Result<()> {
                self.inner.set_keepalive_timing(None, None, Some(n.into()))
            }

            /// The keep-alive probe count set (`None`: the system's).
            pub fn tcp_keepalive_count(&self) -> Option<u32> {
                self.inner.lock().opts.tcp_keepalive_count
            }
        }
    };
}

tcp_endpoint_options!(Dialer);
tcp_endpoint_options!(Listener);

impl Dialer {
    pub(crate) fn create(sock: &Arc<SocketInner>, url: &str) -> Result<Dialer> {
        Ok(Dialer {
            inner: EndpointInner::create(sock, url, Kind::Dialer)?,
        })
    }

    /// Starts the dialer (`nng_dialer_start`). Blocking (`nonblocking == false`): waits for
    /// the first attempt and returns its error if it fails; the dialer is then stopped,
    /// not closed, and may be started again, as in NNG.
    /// Non-blocking: returns at once and connects in the background, retrying.
    ///
    /// # Errors
    /// `State` if already started, `Closed`, and for a blocking start the connect error.
    pub fn start(&self, nonblocking: bool) -> Result<()> {
        let ep = &self.inner;
        let d = {
            let mut st = ep.lock();
            if st.closed {
                return Err(Error::Closed);
            }
            if st.started {
                return Err(Error::State);
            }
            let d = Arc::new(TransportDialer::new(
                &ep.url,
                ep.proto_id()?,
                st.opts.clone(),
            )?);
            st.dialer = Some(d.clone());
            st.started = true;
            d
        };
        if nonblocking {
            ep.dial_once();
            return Ok(());
        }
        let result = with_blocking_aio(|aio| {
            aio.set_timeout(Timeout::Infinite);
            d.dial_aio(aio);
            aio.wait();
            aio.result()
                .and_then(|()| aio.take_output::<BoxPipe>().ok_or(Error::Internal))
        });
        match result {
            Ok(pipe) => {
                ep.lock().dials.count(&Ok(()));
                ep.attach(pipe, true);
                Ok(())
            }
            Err(e) => {
                ep.lock().dials.count(&Err(e));
                ep.unstart(&d);
                Err(e)
            }
        }
    }

    /// Starts the dialer in the background and reports the first attempt's result on
    /// `aio` (`nng_dialer_start_aio`). If that attempt fails the dialer stays stopped (no
    /// background retry), as NNG does.
    ///
    /// Every outcome arrives on `aio`, exactly once, never as a return value: the first
    /// attempt's result, `State` if already started, `Closed`.
    pub fn start_aio(&self, aio: &Aio) {
        let ep = &self.inner;
        let Some(token) = aio.begin(Timeout::Infinite, None) else {
            return;
        };
        let started = {
            let mut st = ep.lock();
            if st.closed {
                Err(Error::Closed)
            } else if st.started {
                Err(Error::State)
            } else {
                ep.proto_id()
                    .and_then(|proto| TransportDialer::new(&ep.url, proto, st.opts.clone()))
                    .map(|d| {
                        st.dialer = Some(Arc::new(d));
                        st.started = true;
                        st.first = Some((aio.provider_handle(), token));
                    })
            }
        };
        match started {
            Ok(()) => ep.dial_once(),
            Err(e) => {
                aio.finish(token, Err(e), 0);
            }
        }
    }

    /// Closes the dialer (`nng_dialer_close`); its pipe stays until it closes by itself.
    ///
    /// # Errors
    /// `Closed` if it was closed already.
    pub fn close(&self) -> Result<()> {
        self.inner.close_and_detach()
    }

    /// The URL this dialer connects to.
    pub fn url(&self) -> String {
        self.inner.url.to_string()
    }

    /// Sets the largest message the dialer's pipes accept (`NNG_OPT_RECVMAXSZ`, 0 =
    /// unlimited).
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_recv_max_size(&self, n: usize) -> Result<()> {
        self.inner.update(|st| st.opts.recv_max = n)
    }

    /// Sets the reconnect minimum (`NNG_OPT_RECONNMINT`).
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_reconnect_min_time(&self, d: Duration) -> Result<()> {
        self.inner.update(|st| {
            st.reconnect_min = d;
            st.back_off = d;
        })
    }

    /// Sets the reconnect maximum (`NNG_OPT_RECONNMAXT`, 0: no exponential back-off);
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_reconnect_max_time(&self, d: Duration) -> Result<()> {
        self.inner.update(|st| st.reconnect_max = d)
    }

    /// Sets `TCP_NODELAY` for the dialer's connections (default on).
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_tcp_nodelay(&self, on: bool) -> Result<()> {
        self.inner.update(|st| st.opts.tcp_nodelay = on)
    }

    /// Sets TCP keep-alive for the dialer's connections (default off).
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_tcp_keepalive(&self, on: bool) -> Result<()> {
        self.inner.update(|st| st.opts.tcp_keepalive = on)
    }

    /// Bounds how far, in bytes, the dialer's tcp and ipc pipes may run ahead of the
    /// peer's reading (`send-ahead-max`, default 0: no bound); see
    /// [`Socket::set_send_ahead_max`](crate::Socket::set_send_ahead_max). Live pipes
    /// follow.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_send_ahead_max(&self, bytes: usize) -> Result<()> {
        self.inner.update(|st| st.opts.send_ahead_max = bytes)
    }

    /// The send-ahead bound in bytes (0: none).
    pub fn send_ahead_max(&self) -> usize {
        self.inner.lock().opts.send_ahead_max
    }

    /// The receive size limit.
    pub fn recv_max_size(&self) -> usize {
        self.inner.lock().opts.recv_max
    }

    /// Sets an option by NNG name (`nng_dialer_set`): `recv-size-max`,
    /// `reconnect-time-min`, `reconnect-time-max`, `tcp-nodelay`, `tcp-keepalive`,
    /// `local-address` (a string, see [`opt::LOCAL_ADDRESS`](crate::opt::LOCAL_ADDRESS)),
    /// `send-ahead-max`, and nanoport's `tcp-keepalive-idle`, `tcp-keepalive-interval`,
    /// `tcp-keepalive-count`.
    ///
    /// # Errors
    /// `BadType` for a value of the wrong type, `Inval` for a bad value, `ReadOnly` for
    /// `url`, `NotSup` for an option dialers lack, `Closed`.
    pub fn set_option(&self, name: &str, value: OptValue) -> Result<()> {
        self.inner.set_option(name, value)
    }

    /// Reads an option by NNG name (`nng_dialer_get`): those of
    /// [`set_option`](Dialer::set_option) and `url`.
    ///
    /// # Errors
    /// `NotSup` for an option dialers lack.
    pub fn get_option(&self, name: &str) -> Result<OptValue> {
        self.inner.get_option(name)
    }

    /// Sets the TLS configuration for `tls+tcp://` and `wss://` (`nng_dialer_set_tls`),
    /// a client one ([`TlsConfig::client`](crate::TlsConfig::client)); before start.
    ///
    /// ```
    /// use nanoport::{Socket, TlsConfig, TlsAuthMode};
    /// let req = Socket::req0().unwrap();
    /// let d = req.dialer("tls+tcp://127.0.0.1:5555").unwrap();
    /// d.set_tls(&TlsConfig::client().auth_mode(TlsAuthMode::None)).unwrap();
    /// ```
    ///
    /// # Errors
    /// `Inval` for a server configuration; `Busy` once started; `Closed`.
    #[cfg(feature = "tls")]
    pub fn set_tls(&self, cfg: &crate::TlsConfig) -> Result<()> {
        if cfg.is_server() {
            return Err(Error::Inval);
        }
        self.inner.check_settable()?.opts.tls = Some(cfg.clone());
        Ok(())
    }

    /// The TLS configuration set with [`set_tls`](Dialer::set_tls) or the TLS options.
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<crate::TlsConfig> {
        self.inner.lock().opts.tls.clone()
    }

    /// Sets a string option by its NNG name, before start: `tls-ca-file`,
    /// `tls-cert-key-file`, `tls-server-name`, `tls-auth-mode` (`none`, `optional`,
    /// `required`, or NNG's numbers 0, 1, 2), as NNG's `nng_dialer_set_string`.
    ///
    /// # Errors
    /// `NotSup` for another name; `Inval` for a bad value; the file errors of
    /// [`TlsConfig::ca_file`](crate::TlsConfig::ca_file); `Busy` once started.
    #[cfg(feature = "tls")]
    pub fn set_option_string(&self, name: &str, value: &str) -> Result<()> {
        let mut st = self.inner.check_settable()?;
        let cfg = st.opts.tls.clone().unwrap_or_else(crate::TlsConfig::client);
        st.opts.tls = Some(tls_option(cfg, name, value)?);
        Ok(())
    }

    /// Sets the local address the dialer's connections start from (`NNG_OPT_LOCADDR`,
    /// `local-address`): the socket is bound to it, port chosen by the kernel, before it
    /// connects; `None` lets the kernel choose (the default). Only the peer's addresses of
    /// the same family are dialed. For `tcp`, `tls+tcp`, `ws` and `wss` dialers; takes
    /// effect from the next connection.
    ///
    /// ```
    /// use nanoport::Socket;
    /// use std::net::Ipv4Addr;
    /// let s = Socket::push0().unwrap();
    /// let d = s.dialer("tcp://127.0.0.1:5555").unwrap();
    /// d.set_local_address(std::net::IpAddr::from(Ipv4Addr::new(127, 0, 0, 2))).unwrap();
    /// assert_eq!(d.local_address().unwrap().to_string(), "127.0.0.2");
    /// ```
    ///
    /// # Errors
    /// `NotSup` for a dialer of another transport (ipc, inproc), `Closed`.
    pub fn set_local_address(&self, addr: impl Into<Option<std::net::IpAddr>>) -> Result<()> {
        self.inner.set_local_address(addr.into())
    }

    /// The local address set with [`set_local_address`](Dialer::set_local_address).
    pub fn local_address(&self) -> Option<std::net::IpAddr> {
        self.inner.lock().opts.local_addr
    }

    /// The reconnect minimum and maximum times.
    pub fn reconnect_times(&self) -> (Duration, Duration) {
        let st = self.inner.lock();
        (st.reconnect_min, st.reconnect_max)
    }

    /// The reconnect minimum (`NNG_OPT_RECONNMINT`).
    pub fn reconnect_min_time(&self) -> Duration {
        self.inner.lock().reconnect_min
    }

    /// The reconnect maximum (`NNG_OPT_RECONNMAXT`, 0: no exponential back-off).
    pub fn reconnect_max_time(&self) -> Duration {
        self.inner.lock().reconnect_max
    }

    /// Starts the dialer and waits for its first connection: [`start`](Dialer::start)
    /// with `nonblocking == false`, spelled so the call site says which.
    ///
    /// # Examples
    ///
    /// ```
    /// use nanoport::{Error, Socket};
    /// let req = Socket::req0().unwrap();
    /// let d = req.dialer("inproc://start-blocking-doc").unwrap();
    /// // Nobody listens: a blocking start reports the refusal and leaves the dialer stopped.
    /// assert_eq!(d.start_blocking(), Err(Error::ConnRefused));
    /// ```
    ///
    /// # Errors
    /// As [`start`](Dialer::start).
    pub fn start_blocking(&self) -> Result<()> {
        self.start(false)
    }

    /// Starts the dialer in the background (`NNG_FLAG_NONBLOCK`): returns at once and
    /// keeps connecting, with back-off, until it succeeds or is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use nanoport::Socket;
    /// let req = Socket::req0().unwrap();
    /// let d = req.dialer("inproc://start-nonblocking-doc").unwrap();
    /// d.start_nonblocking().unwrap(); // nobody listens yet; it retries
    /// let rep = Socket::rep0().unwrap();
    /// rep.listen("inproc://start-nonblocking-doc").unwrap();
    /// ```
    ///
    /// # Errors
    /// `State` if already started, `Closed`.
    pub fn start_nonblocking(&self) -> Result<()> {
        self.start(true)
    }
}

/// The dialer or listener behind an endpoint, as its handle type.
pub(crate) enum EndpointHandle {
    Dialer(Dialer),
    Listener(Listener),
}

impl EndpointInner {
    /// A user handle on this endpoint.
    pub(crate) fn handle(self: Arc<Self>) -> EndpointHandle {
        match self.kind {
            Kind::Dialer => EndpointHandle::Dialer(Dialer { inner: self }),
            Kind::Listener => EndpointHandle::Listener(Listener { inner: self }),
        }
    }
}

impl Listener {
    pub(crate) fn create(sock: &Arc<SocketInner>, url: &str) -> Result<Listener> {
        Ok(Listener {
            inner: EndpointInner::create(sock, url, Kind::Listener)?,
        })
    }

    /// Binds and starts accepting (`nng_listener_start`).
    ///
    /// # Errors
    /// `AddrInUse`, `AddrInval`, `Perm`, `State` if already started, `Closed`.
    pub fn start(&self) -> Result<()> {
        let ep = &self.inner;
        {
            let mut st = ep.lock();
            if st.closed {
                return Err(Error::Closed);
            }
            if st.started {
                return Err(Error::State);
            }
            let l = TransportListener::bind(&ep.url, ep.proto_id()?, st.opts.clone())?;
            st.listener = Some(Arc::new(l));
            st.started = true;
        }
        ep.accept_once();
        Ok(())
    }

    /// Sets an option by NNG name (`nng_listener_set`): `recv-size-max`,
    /// `tcp-nodelay`, `tcp-keepalive`, `ipc:permissions` (before start), `send-ahead-max`,
    /// and nanoport's `tcp-keepalive-idle`, `tcp-keepalive-interval`,
    /// `tcp-keepalive-count`.
    ///
    /// # Errors
    /// `BadType` for a value of the wrong type, `Inval` for a bad value, `ReadOnly` for
    /// `url` and `tcp-bound-port`, `NotSup` for an option listeners lack, `Closed`.
    pub fn set_option(&self, name: &str, value: OptValue) -> Result<()> {
        self.inner.set_option(name, value)
    }

    /// Reads an option by NNG name (`nng_listener_get`): those of
    /// [`set_option`](Listener::set_option), `url` and `tcp-bound-port`.
    ///
    /// # Errors
    /// `NotSup` for an option listeners lack.
    pub fn get_option(&self, name: &str) -> Result<OptValue> {
        self.inner.get_option(name)
    }

    /// Closes the listener (`nng_listener_close`); pipes it accepted stay open.
    ///
    /// # Errors
    /// `Closed` if it was closed already.
    pub fn close(&self) -> Result<()> {
        self.inner.close_and_detach()
    }

    /// The bound TCP port, once started (useful with `tcp://127.0.0.1:0`).
    pub fn port(&self) -> Option<u16> {
        self.inner.lock().listener.as_ref().and_then(|l| l.port())
    }

    /// How the connections accepted so far ended their SP handshakes: each failed one
    /// (garbage header, deadline passed, hang-up) was dropped and counted here, as in
    /// NNG's listener statistics. All zero before start and for inproc.
    ///
    /// ```
    /// use nanoport::Socket;
    /// let rep = Socket::rep0().unwrap();
    /// let l = rep.listener("tcp://127.0.0.1:0").unwrap();
    /// l.start().unwrap();
    /// assert_eq!(l.stats().handshake_failures(), 0);
    /// ```
    pub fn stats(&self) -> nanoport_transports::ListenerStats {
        self.inner
            .lock()
            .listener
            .as_ref()
            .map(|l| l.stats())
            .unwrap_or_default()
    }

    /// The URL this listener was created with.
    pub fn url(&self) -> String {
        self.inner.url.to_string()
    }

    /// Sets the largest message its pipes accept (0 = unlimited).
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_recv_max_size(&self, n: usize) -> Result<()> {
        self.inner.update(|st| st.opts.recv_max = n)
    }

    /// Sets `TCP_NODELAY` for accepted connections.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_tcp_nodelay(&self, on: bool) -> Result<()> {
        self.inner.update(|st| st.opts.tcp_nodelay = on)
    }

    /// Sets TCP keep-alive for accepted connections.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_tcp_keepalive(&self, on: bool) -> Result<()> {
        self.inner.update(|st| st.opts.tcp_keepalive = on)
    }

    /// Sets how long each accepted connection may take over its handshakes (TLS, the
    /// HTTP upgrade, the SP header) before it is dropped and counted as
    /// `handshake_timeout` in [`stats`](Listener::stats); before start. NNG fixes this
    /// at 10 s, the default here too.
    ///
    /// # Errors
    /// `Busy` once started, `Closed`.
    pub fn set_handshake_timeout(&self, d: Duration) -> Result<()> {
        self.inner.check_settable()?.opts.handshake_timeout = d;
        Ok(())
    }

    /// How long each accepted connection may take over its handshakes (default 10 s).
    pub fn handshake_timeout(&self) -> Duration {
        self.inner.lock().opts.handshake_timeout
    }

    /// Sets the TLS configuration for `tls+tcp://` and `wss://`
    /// (`nng_listener_set_tls`), a server one with its certificate
    /// ([`TlsConfig::server`](crate::TlsConfig::server)); before start. A tls+tcp or wss
    /// listener without one fails to start with `Inval`.
    ///
    /// # Errors
    /// `Inval` for a client configuration; `Busy` once started; `Closed`.
    #[cfg(feature = "tls")]
    pub fn set_tls(&self, cfg: &crate::TlsConfig) -> Result<()> {
        if !cfg.is_server() {
            return Err(Error::Inval);
        }
        self.inner.check_settable()?.opts.tls = Some(cfg.clone());
        Ok(())
    }

    /// The TLS configuration set with [`set_tls`](Listener::set_tls) or the TLS options.
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<crate::TlsConfig> {
        self.inner.lock().opts.tls.clone()
    }

    /// Sets a string option by its NNG name, before start: `tls-ca-file`,
    /// `tls-cert-key-file`, `tls-server-name`, `tls-auth-mode`, as
    /// [`Dialer::set_option_string`].
    ///
    /// # Errors
    /// As [`Dialer::set_option_string`].
    #[cfg(feature = "tls")]
    pub fn set_option_string(&self, name: &str, value: &str) -> Result<()> {
        let mut st = self.inner.check_settable()?;
        let cfg = st.opts.tls.clone().unwrap_or_else(crate::TlsConfig::server);
        st.opts.tls = Some(tls_option(cfg, name, value)?);
        Ok(())
    }

    /// Sets the mode of an `ipc://` listener's socket file (`NNG_OPT_IPC_PERMISSIONS`,
    /// `ipc:permissions`), permission bits only (`0o7777` at most); before start. The
    /// file gets it between bind and listen, so no one connects under the umask's mode
    /// first. Accepted and ignored for `abstract://`, as in NNG.
    ///
    /// ```
    /// use nanoport::Socket;
    /// let s = Socket::pull0().unwrap();
    /// let l = s.listener("ipc:///tmp/nanoport-doc-perms.sock").unwrap();
    /// l.set_ipc_permissions(0o600).unwrap();
    /// assert_eq!(l.ipc_permissions(), Some(0o600));
    /// ```
    ///
    /// # Errors
    /// `Inval` for other bits, `NotSup` for a listener of another transport, `Busy` once
    /// started, `Closed`.
    pub fn set_ipc_permissions(&self, mode: u32) -> Result<()> {
        self.inner.set_ipc_permissions(mode)
    }

    /// The socket file mode set with
    /// [`set_ipc_permissions`](Listener::set_ipc_permissions).
    pub fn ipc_permissions(&self) -> Option<u32> {
        self.inner.lock().opts.ipc_permissions
    }

    /// Bounds how far, in bytes, accepted tcp and ipc pipes may run ahead of the peer's
    /// reading (`send-ahead-max`, default 0: no bound); see
    /// [`Socket::set_send_ahead_max`](crate::Socket::set_send_ahead_max). Live pipes
    /// follow.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_send_ahead_max(&self, bytes: usize) -> Result<()> {
        self.inner.update(|st| st.opts.send_ahead_max = bytes)
    }

    /// The send-ahead bound in bytes (0: none).
    pub fn send_ahead_max(&self) -> usize {
        self.inner.lock().opts.send_ahead_max
    }

    /// The receive size limit.
    pub fn recv_max_size(&self) -> usize {
        self.inner.lock().opts.recv_max
    }
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialer")
            .field("url", &self.inner.url.to_string())
            .finish()
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("url", &self.inner.url.to_string())
            .finish()
    }
}

/// Applies NNG's TLS string options to a configuration.
#[cfg(feature = "tls")]
fn tls_option(cfg: crate::TlsConfig, name: &str, value: &str) -> Result<crate::TlsConfig> {
    use crate::TlsAuthMode;
    match name {
        "tls-ca-file" => cfg.ca_file(value),
        "tls-cert-key-file" => cfg.cert_key_file(value),
        "tls-server-name" => Ok(cfg.server_name(value)),
        "tls-auth-mode" | "tls-authmode" => {
            let mode = match value {
                "none" | "0" => TlsAuthMode::None,
                "optional" | "1" => TlsAuthMode::Optional,
                "required" | "2" => TlsAuthMode::Required,
                _ => return Err(Error::Inval),
            };
            Ok(cfg.auth_mode(mode))
        }
        _ => Err(Error::NotSup),
    }
}
