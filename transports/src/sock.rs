//! Listeners and dialers over stream sockets (tcp, ipc, abstract), generic over what a
//! finished connection becomes: an SP pipe (after the handshake) or a raw [`Stream`].
//!
//! Every connection being set up is a [`Nego`]: a chain of `IoOp`s (connect, send our SP
//! header, read the peer's) driven by one inline aio, under the handshake deadline. Many
//! run at once; a peer that never speaks only holds its own entry until the deadline.

use nanoport_engine::AioProvider;
use std::collections::{HashMap, VecDeque};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::Poll;
use std::time::Instant;

use nanoport_engine::{
    engine_scope, Aio, Cancel, CancelHook, Error, IoOp, IoSource, OpToken, Result, Timeout,
};
use socket2::{SockAddr, Socket};

use crate::attempts::{Attempts, Setup};
use crate::conn::{Kind, Meta, ROp, SpPipe, Src, Stream, WOp};
use crate::handshake::encode_header;
use crate::url::{resolve, Addr, Family, Url};
use crate::{sys, BoxPipe, EndpointOptions, ListenerStats};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

static KEYS: AtomicUsize = AtomicUsize::new(1);
pub(crate) fn next_key() -> usize {
    KEYS.fetch_add(1, Ordering::Relaxed)
}

/// What an established connection becomes.
pub(crate) trait Established: Send + Sync + Sized + 'static {
    /// Whether the SP handshake runs first.
    const SP: bool;
    fn build(src: Src, peer: u16, meta: Meta) -> Self;
    fn discard(self);
}

impl Established for BoxPipe {
    const SP: bool = true;
    fn build(src: Src, peer: u16, meta: Meta) -> Self {
        SpPipe::new(src, peer, meta)
    }
    fn discard(self) {
        self.close();
    }
}

impl Established for Stream {
    const SP: bool = false;
    fn build(src: Src, _: u16, meta: Meta) -> Self {
        Stream::new(src, meta)
    }
    fn discard(self) {
        self.close();
    }
}

/// Where a socket endpoint lives.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) kind: Kind,
    /// The addresses to bind or dial; empty for a dialer of a host name, which looks the
    /// name up at each attempt ([`Target::name`]).
    pub(crate) addrs: Vec<SockAddr>,
    /// A dialer's host name (not a literal address), its port and family.
    pub(crate) name: Option<(String, u16, Family)>,
    /// The filesystem path of an `ipc://` endpoint (unlinked by the listener on close).
    path: Option<PathBuf>,
    url: String,
}

/// What a dial attempt connects to: addresses known now, or a name to look up first.
pub(crate) enum Dest {
    Addrs(Vec<SockAddr>),
    Name(String, u16, Family),
}

impl Target {
    /// Where the next dial attempt goes: a host name is looked up again at every attempt
    /// (a peer that moves behind DNS is found); literal addresses and ipc paths are fixed.
    pub(crate) fn dest(&self) -> Dest {
        match &self.name {
            Some((h, p, f)) => Dest::Name(h.clone(), *p, *f),
            None => Dest::Addrs(self.addrs.clone()),
        }
    }
}

pub(crate) fn target(url: &Url, listen: bool) -> Result<Target> {
    let mut name = None;
    let (kind, addrs, path) = match &url.addr {
        Addr::Ipc(p) => (
            Kind::Ipc,
            vec![SockAddr::unix(p).map_err(|_| Error::AddrInval)?],
            Some(p.clone()),
        ),
        Addr::Abstract(n) => {
            let mut b = vec![0u8];
            b.extend_from_slice(n);
            let a =
                SockAddr::unix(std::ffi::OsStr::from_bytes(&b)).map_err(|_| Error::AddrInval)?;
            (Kind::Ipc, vec![a], None)
        }
        Addr::Tcp { host, port, family } => {
            if !listen && host.is_none() {
                return Err(Error::AddrInval);
            }
            if !listen && *port == 0 {
                return Err(Error::AddrInval);
            }
            match host {
                // A dialer looks a name up at each attempt, off the reactor thread.
                Some(h) if !listen && h.parse::<std::net::IpAddr>().is_err() => {
                    if h.len() >= 256 {
                        return Err(Error::AddrInval); // as NNG's resolver
                    }
                    name = Some((h.clone(), *port, *family));
                    (Kind::Tcp, Vec::new(), None)
                }
                _ => {
                    let addrs = resolve(host, *port, *family)?;
                    let mut out: Vec<SockAddr> = addrs.into_iter().map(SockAddr::from).collect();
                    if listen && host.is_none() && *family == Family::Any {
                        out.truncate(2);
                    }
                    (Kind::Tcp, out, None)
                }
            }
        }
        Addr::Inproc(_) => return Err(Error::NotSup),
    };
    Ok(Target {
        kind,
        addrs,
        name,
        path,
        url: url.to_string(),
    })
}

fn tcp_text(a: std::io::Result<SockAddr>) -> String {
    match a.ok().and_then(|a| a.as_socket()) {
        Some(s) => format!("tcp://{s}"),
        None => String::new(),
    }
}

fn meta_for(t: &Target, s: &Socket, opts: &EndpointOptions) -> Meta {
    let (local, remote) = match t.kind {
        Kind::Tcp => (tcp_text(s.local_addr()), tcp_text(s.peer_addr())),
        Kind::Ipc => (t.url.clone(), t.url.clone()),
    };
    Meta {
        kind: t.kind,
        recv_max: opts.recv_max,
        send_ahead_max: opts.send_ahead_max,
        local,
        remote,
    }
}

fn tune(t: &Target, s: &Socket, opts: &EndpointOptions) {
    if t.kind == Kind::Tcp {
        sys::tune_tcp(s, opts);
    }
}

// ----- negotiation ---------------------------------------------------------------------------

/// Told when a connection being set up is ready (or failed).
trait Owner: Send + Sync + 'static {
    fn done(&self, key: usize, res: Result<(Src, u16)>);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Connect,
    SendHdr,
    RecvHdr,
}

struct Nego {
    key: usize,
    src: Src,
    step: Mutex<Step>,
    aio: Mutex<Option<Aio>>,
    local_proto: u16,
    opts: EndpointOptions,
    sp: bool,
    owner: Weak<dyn Owner>,
}

impl Nego {
    fn new(
        key: usize,
        src: Src,
        step: Step,
        local_proto: u16,
        opts: &EndpointOptions,
        sp: bool,
        owner: Weak<dyn Owner>,
    ) -> Result<Arc<Nego>> {
        let n = Arc::new(Nego {
            key,
            src,
            step: Mutex::new(step),
            aio: Mutex::new(None),
            local_proto,
            opts: opts.clone(),
            sp,
            owner,
        });
        let weak = Arc::downgrade(&n);
        let aio = Aio::new_inline(move |a| {
            if let Some(n) = weak.upgrade() {
                n.on_step(a);
            }
        })?;
        *lock(&n.aio) = Some(aio);
        Ok(n)
    }

    fn run(&self, step: Step, aio: &Aio) {
        *lock(&self.step) = step;
        match step {
            Step::Connect => self.src.start_write(aio, Timeout::Infinite, WOp::Connect),
            Step::SendHdr => {
                aio.set_expire(Instant::now() + self.opts.handshake_timeout);
                let op = WOp::Hdr {
                    buf: encode_header(self.local_proto),
                    sent: 0,
                };
                self.src.start_write(aio, Timeout::Infinite, op);
            }
            Step::RecvHdr => self.src.start_read(
                aio,
                Timeout::Infinite,
                ROp::Hdr {
                    buf: [0; 8],
                    have: 0,
                },
            ),
        }
    }

    /// Starts the chain at its first step.
    fn start(&self) {
        let aio = lock(&self.aio).clone();
        let step = *lock(&self.step);
        if let Some(aio) = aio {
            self.run(step, &aio);
        }
    }

    fn on_step(&self, aio: &Aio) {
        let step = *lock(&self.step);
        if let Err(e) = aio.result() {
            // A connection lost mid-handshake reads as ConnShut, as in NNG.
            let e = if step != Step::Connect && e == Error::Closed {
                Error::ConnShut
            } else {
                e
            };
            return self.finish(Err(e));
        }
        match step {
            Step::Connect if self.sp => self.run(Step::SendHdr, aio),
            Step::Connect => self.finish(Ok(0)),
            Step::SendHdr => self.run(Step::RecvHdr, aio),
            Step::RecvHdr => match aio.take_output::<u16>() {
                Some(peer) => self.finish(Ok(peer)),
                None => self.finish(Err(Error::Proto)),
            },
        }
    }

    fn finish(&self, res: Result<u16>) {
        if let Some(o) = self.owner.upgrade() {
            o.done(self.key, res.map(|p| (self.src.clone(), p)));
        }
    }

    /// Gives up: the pending step completes with `Closed` and the owner hears of it.
    fn abort(&self) {
        self.src.close(Error::Closed);
        sys::shutdown(self.src.io());
    }
}

// ----- listener ------------------------------------------------------------------------------

/// Accepts one connection; completes with output `Socket`.
pub(crate) struct AcceptOp;
impl IoOp<Socket> for AcceptOp {
    fn attempt(&mut self, io: &Socket, aio: &Aio, token: OpToken) -> Poll<()> {
        loop {
            match sys::accept(io) {
                Ok(s) => {
                    let _ = aio.finish_output(token, s);
                    return Poll::Ready(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => {
                    aio.finish(token, Err(e.into()), 0);
                    return Poll::Ready(());
                }
            }
        }
    }
}

/// A listening socket never writes.
pub(crate) struct NoWrite;
impl IoOp<Socket> for NoWrite {
    fn attempt(&mut self, _: &Socket, aio: &Aio, token: OpToken) -> Poll<()> {
        aio.finish(token, Err(Error::NotSup), 0);
        Poll::Ready(())
    }
}

pub(crate) type LSrc = IoSource<Socket, AcceptOp, NoWrite>;

struct LState<C> {
    negos: HashMap<usize, Arc<Nego>>,
    ready: VecDeque<C>,
    waiters: VecDeque<(usize, Aio, OpToken)>,
    accepting: bool,
    closed: bool,
}

struct LInner<C> {
    st: Mutex<LState<C>>,
    lsrc: Mutex<Option<LSrc>>,
    accept: Aio,
    me: Weak<LInner<C>>,
    target: Target,
    local_proto: u16,
    /// Read at each new connection, so a change reaches the connections made after it.
    opts: Mutex<EndpointOptions>,
    port: Option<u16>,
    /// Outcomes of the connections this listener accepted (NNG's listener statistics).
    stats: StatCounters,
}

/// The counters behind [`ListenerStats`], bumped as handshakes end.
#[derive(Default)]
struct StatCounters {
    accepted: AtomicU64,
    proto: AtomicU64,
    timeout: AtomicU64,
    disconnect: AtomicU64,
    other: AtomicU64,
}

impl StatCounters {
    fn record(&self, res: &Result<(Src, u16)>) {
        let c = match res {
            Ok(_) => &self.accepted,
            Err(Error::Proto) => &self.proto,
            Err(Error::TimedOut) => &self.timeout,
            Err(Error::ConnShut | Error::ConnReset | Error::ConnAborted) => &self.disconnect,
            Err(_) => &self.other,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ListenerStats {
        ListenerStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            handshake_proto: self.proto.load(Ordering::Relaxed),
            handshake_timeout: self.timeout.load(Ordering::Relaxed),
            handshake_disconnect: self.disconnect.load(Ordering::Relaxed),
            handshake_other: self.other.load(Ordering::Relaxed),
        }
    }
}

/// A listening socket endpoint producing `C`s.
pub(crate) struct SockListener<C: Established> {
    inner: Arc<LInner<C>>,
}

#[cfg(any(feature = "tls", feature = "ws"))]
pub(crate) fn bind_one(t: &Target, a: &SockAddr, v6only: Option<bool>) -> Result<Socket> {
    bind_with_mode(t, a, v6only, None)
}

/// [`bind_one`], and for an ipc path `chmod` to `mode` between bind and listen (NNG's
/// `ipc:permissions`), so no one connects under the umask's mode first.
fn bind_with_mode(
    t: &Target,
    a: &SockAddr,
    v6only: Option<bool>,
    mode: Option<u32>,
) -> Result<Socket> {
    let s = Socket::new(a.domain(), socket2::Type::STREAM, None)?;
    if t.kind == Kind::Tcp {
        s.set_reuse_address(true)?;
        if let Some(v) = v6only {
            if a.is_ipv6() {
                s.set_only_v6(v)?;
            }
        }
    }
    s.bind(a)?;
    if let (Some(mode), Some(path)) = (mode, &t.path) {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
            let _ = std::fs::remove_file(path);
            return Err(e.into());
        }
    }
    // A burst of connects beyond the backlog has its SYNs dropped and retried by the
    // kernel a second later; the kernel caps this at net.core.somaxconn.
    s.listen(4096)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// An existing ipc path: in use (a listener answers) -> AddrInUse; stale -> unlinked.
fn clear_stale(path: &std::path::Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(Error::AddrInUse),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            let _ = std::fs::remove_file(path);
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

impl<C: Established> SockListener<C> {
    pub(crate) fn bind(url: &Url, local_proto: u16, opts: EndpointOptions) -> Result<Self> {
        let t = target(url, true)?;
        if let Some(p) = &t.path {
            clear_stale(p)?;
        }
        let v6only = match &url.addr {
            Addr::Tcp {
                family: Family::V6, ..
            } => Some(true),
            Addr::Tcp {
                host: None,
                family: Family::Any,
                ..
            } => Some(false),
            _ => None,
        };
        let mut last = Error::AddrInval;
        let mut sock = None;
        for a in &t.addrs {
            match bind_with_mode(&t, a, v6only, opts.ipc_permissions) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let sock = sock.ok_or(last)?;
        let port = if t.kind == Kind::Tcp {
            sock.local_addr()?.as_socket().map(|a| a.port())
        } else {
            None
        };
        let lsrc = LSrc::new(sock)?;
        let slot: Arc<OnceLock<Weak<LInner<C>>>> = Arc::new(OnceLock::new());
        let slot2 = slot.clone();
        let accept = Aio::new_inline(move |a| {
            if let Some(l) = slot2.get().and_then(|w| w.upgrade()) {
                l.on_accept(a);
            }
        })?;
        let inner = Arc::new_cyclic(|me: &Weak<LInner<C>>| {
            let _ = slot.set(me.clone());
            LInner {
                st: Mutex::new(LState {
                    negos: HashMap::new(),
                    ready: VecDeque::new(),
                    waiters: VecDeque::new(),
                    accepting: false,
                    closed: false,
                }),
                lsrc: Mutex::new(Some(lsrc)),
                accept,
                me: me.clone(),
                target: t,
                local_proto,
                opts: Mutex::new(opts),
                port,
                stats: StatCounters::default(),
            }
        });
        Ok(SockListener { inner })
    }

    pub(crate) fn accept_aio(&self, aio: &Aio) {
        engine_scope(|| self.inner.accept_aio(aio));
    }

    pub(crate) fn port(&self) -> Option<u16> {
        self.inner.port
    }

    /// Options for the connections made from now on (those already made are the
    /// socket layer's to update).
    pub(crate) fn set_options(&self, opts: &EndpointOptions) {
        *lock(&self.inner.opts) = opts.clone();
    }

    pub(crate) fn close(&self) {
        engine_scope(|| self.inner.close());
    }

    /// Connections mid-handshake right now (for tests and stats).
    pub(crate) fn handshaking(&self) -> usize {
        lock(&self.inner.st).negos.len()
    }

    /// How the connections accepted so far ended their handshakes.
    pub(crate) fn stats(&self) -> ListenerStats {
        self.inner.stats.snapshot()
    }
}

impl<C: Established> Drop for SockListener<C> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<C: Established> LInner<C> {
    fn opts(&self) -> EndpointOptions {
        lock(&self.opts).clone()
    }

    fn accept_aio(self: &Arc<Self>, aio: &Aio) {
        let key = next_key();
        let Some(token) = aio.begin(Timeout::Infinite, Some(CancelHook::new(self.clone(), key)))
        else {
            return;
        };
        let mut st = lock(&self.st);
        if st.closed {
            drop(st);
            aio.finish(token, Err(Error::Closed), 0);
            return;
        }
        if let Some(c) = st.ready.pop_front() {
            if let Err(c) = aio.finish_output(token, c) {
                st.ready.push_front(c);
            }
            return;
        }
        st.waiters.push_back((key, aio.provider_handle(), token));
        let start = !st.accepting;
        st.accepting = true;
        drop(st);
        if start {
            self.start_accept();
        }
    }

    fn start_accept(&self) {
        let src = lock(&self.lsrc).clone();
        match src {
            Some(s) => s.start_read(&self.accept, Timeout::Infinite, AcceptOp),
            None => lock(&self.st).accepting = false,
        }
    }

    fn on_accept(&self, aio: &Aio) {
        match aio.result() {
            Ok(()) => {
                if let Some(s) = aio.take_output::<Socket>() {
                    self.setup(s);
                }
            }
            Err(Error::Closed | Error::Canceled | Error::Stopped) => {
                lock(&self.st).accepting = false;
                return;
            }
            // The peer gave up before we accepted: try the next one.
            Err(
                Error::ConnAborted
                | Error::ConnReset
                | Error::Proto
                | Error::Interrupted
                | Error::Again,
            ) => {}
            Err(e) => {
                // Out of fds or memory: fail the waiting accepts; the socket layer pauses
                // and asks again.
                let waiters: Vec<_> = {
                    let mut st = lock(&self.st);
                    st.accepting = false;
                    st.waiters.drain(..).collect()
                };
                for (_, a, t) in waiters {
                    a.finish(t, Err(e), 0);
                }
                return;
            }
        }
        let more = {
            let mut st = lock(&self.st);
            st.accepting = !st.closed && !st.waiters.is_empty();
            st.accepting
        };
        if more {
            self.start_accept();
        }
    }

    fn setup(&self, s: Socket) {
        tune(&self.target, &s, &self.opts());
        let meta = meta_for(&self.target, &s, &self.opts());
        let Ok(src) = Src::new(s) else { return };
        if !C::SP {
            return self.deliver(C::build(src, 0, meta));
        }
        let key = next_key();
        let owner: Weak<dyn Owner> = self.me.clone();
        let Ok(n) = Nego::new(
            key,
            src,
            Step::SendHdr,
            self.local_proto,
            &self.opts(),
            true,
            owner,
        ) else {
            return;
        };
        {
            let mut st = lock(&self.st);
            if st.closed {
                return;
            }
            st.negos.insert(key, n.clone());
        }
        n.start();
    }

    fn deliver(&self, mut c: C) {
        let mut st = lock(&self.st);
        if st.closed {
            drop(st);
            return c.discard();
        }
        while let Some((_, a, t)) = st.waiters.pop_front() {
            match a.finish_output(t, c) {
                Ok(()) => return,
                Err(back) => c = back,
            }
        }
        st.ready.push_back(c);
    }

    fn close(&self) {
        let (negos, ready, waiters) = {
            let mut st = lock(&self.st);
            if st.closed {
                return;
            }
            st.closed = true;
            (
                std::mem::take(&mut st.negos),
                std::mem::take(&mut st.ready),
                std::mem::take(&mut st.waiters),
            )
        };
        let lsrc = lock(&self.lsrc).take();
        if let Some(s) = lsrc {
            s.close(Error::Closed);
        }
        for (_, n) in negos {
            n.abort();
        }
        for c in ready {
            c.discard();
        }
        for (_, a, t) in waiters {
            a.finish(t, Err(Error::Closed), 0);
        }
        if let Some(p) = &self.target.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl<C: Established> Owner for LInner<C> {
    fn done(&self, key: usize, res: Result<(Src, u16)>) {
        let known = lock(&self.st).negos.remove(&key).is_some();
        if known {
            self.stats.record(&res);
        }
        if let (true, Ok((src, peer))) = (known, res) {
            let meta = meta_for(&self.target, src.io(), &self.opts());
            self.deliver(C::build(src, peer, meta));
        }
        // Failed handshakes just drop that connection: its fd goes with the Nego.
    }
}

impl<C: Established> Cancel for LInner<C> {
    fn cancelled(&self, _: &Aio, key: usize, _: OpToken) {
        lock(&self.st).waiters.retain(|w| w.0 != key);
    }
}

// ----- dialer --------------------------------------------------------------------------------

/// A non-blocking connect to `addr` from `opts.local_addr` (if set): the socket, and
/// whether it connected at once (unix sockets, sometimes loopback).
pub(crate) fn connect_one(
    kind: Kind,
    addr: &SockAddr,
    opts: &EndpointOptions,
) -> Result<(Socket, bool)> {
    let s = sys::stream_socket(addr)?;
    if kind == Kind::Tcp {
        sys::tune_tcp(&s, opts);
        if let Some(ip) = opts.local_addr {
            s.bind(&SockAddr::from(std::net::SocketAddr::new(ip, 0)))?;
        }
    }
    match s.connect(addr) {
        Ok(()) => Ok((s, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((s, false)),
        Err(e) => Err(connect_error(kind, e)),
    }
}

/// The addresses of a lookup a dialer may use: those of the local address's family when
/// one is set (a v4 source cannot reach a v6 peer). None left: `AddrInval`, as NNG's
/// dialer reports a source of the wrong family.
pub(crate) fn usable(
    addrs: Vec<std::net::SocketAddr>,
    opts: &EndpointOptions,
) -> Result<VecDeque<SockAddr>> {
    let out: VecDeque<SockAddr> = addrs
        .into_iter()
        .filter(|a| opts.local_addr.is_none_or(|l| l.is_ipv4() == a.is_ipv4()))
        .map(SockAddr::from)
        .collect();
    if out.is_empty() {
        return Err(Error::AddrInval);
    }
    Ok(out)
}

struct DInner<C> {
    attempts: Attempts<Nego>,
    me: Weak<DInner<C>>,
    target: Target,
    local_proto: u16,
    /// Read at each new connection, so a change reaches the connections made after it.
    opts: Mutex<EndpointOptions>,
    _c: std::marker::PhantomData<fn() -> C>,
}

/// A socket endpoint that dials, producing `C`s.
pub(crate) struct SockDialer<C: Established> {
    inner: Arc<DInner<C>>,
}

impl<C: Established> SockDialer<C> {
    pub(crate) fn new(url: &Url, local_proto: u16, opts: EndpointOptions) -> Result<Self> {
        let target = target(url, false)?;
        let inner = Arc::new_cyclic(|me| DInner {
            attempts: Attempts::new(),
            me: me.clone(),
            target,
            local_proto,
            opts: Mutex::new(opts),
            _c: std::marker::PhantomData,
        });
        Ok(SockDialer { inner })
    }

    pub(crate) fn dial_aio(&self, aio: &Aio) {
        engine_scope(|| self.inner.dial_aio(aio));
    }

    /// Options for the connections made from now on (those already made are the
    /// socket layer's to update).
    pub(crate) fn set_options(&self, opts: &EndpointOptions) {
        *lock(&self.inner.opts) = opts.clone();
    }

    pub(crate) fn close(&self) {
        engine_scope(|| self.inner.close());
    }
}

impl<C: Established> Drop for SockDialer<C> {
    fn drop(&mut self) {
        self.close();
    }
}

fn connect_error(kind: Kind, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        // No such socket file: nobody listens there.
        Some(libc::ENOENT) if kind == Kind::Ipc => Error::ConnRefused,
        _ => e.into(),
    }
}

impl<C: Established> DInner<C> {
    fn opts(&self) -> EndpointOptions {
        lock(&self.opts).clone()
    }

    /// One attempt: look the name up (on a resolver thread) unless the address is
    /// literal, then connect to each address in turn until one answers.
    fn dial_aio(self: &Arc<Self>, aio: &Aio) {
        let key = next_key();
        let Some(token) = aio.begin(Timeout::Infinite, Some(CancelHook::new(self.clone(), key)))
        else {
            return;
        };
        if !self.attempts.begin(key, aio, token) {
            return;
        }
        match self.target.dest() {
            Dest::Addrs(a) if self.target.kind == Kind::Tcp => {
                let ips = a.iter().filter_map(SockAddr::as_socket).collect();
                self.resolved(key, usable(ips, &self.opts()));
            }
            Dest::Addrs(a) => self.resolved(key, Ok(a.into())),
            Dest::Name(host, port, family) => {
                let me = self.me.clone();
                let opts = self.opts();
                crate::resolv::lookup(host, port, family, move |r| {
                    if let Some(d) = me.upgrade() {
                        engine_scope(|| d.resolved(key, r.and_then(|a| usable(a, &opts))));
                    }
                });
            }
        }
    }

    /// The lookup for attempt `key` answered: connect, or fail the attempt.
    fn resolved(&self, key: usize, r: Result<VecDeque<SockAddr>>) {
        if self.attempts.resolved(key, r) {
            self.try_next(key);
        }
    }

    /// Connects attempt `key` to its next address; with none left, fails it with the
    /// first address's error.
    fn try_next(&self, key: usize) {
        while let Some(addr) = self.attempts.next_addr(key) {
            let opts = self.opts();
            let started = connect_one(self.target.kind, &addr, &opts).and_then(|(s, now)| {
                Ok((
                    Src::new(s)?,
                    if now { Step::SendHdr } else { Step::Connect },
                ))
            });
            let (src, step) = match started {
                Ok(x) => x,
                Err(e) => {
                    self.attempts.note_error(key, e);
                    continue;
                }
            };
            if step == Step::SendHdr && !C::SP {
                let meta = meta_for(&self.target, src.io(), &opts);
                match self.attempts.take(key) {
                    Some((aio, token)) => {
                        if let Err(c) = aio.finish_output(token, C::build(src, 0, meta)) {
                            c.discard();
                        }
                    }
                    None => C::build(src, 0, meta).discard(),
                }
                return;
            }
            let owner: Weak<dyn Owner> = self.me.clone();
            let n = match Nego::new(key, src, step, self.local_proto, &opts, C::SP, owner) {
                Ok(n) => n,
                Err(e) => return self.attempts.fail(key, e),
            };
            if !self.attempts.set_setup(key, &n) {
                return n.abort();
            }
            return n.start();
        }
    }

    fn close(&self) {
        self.attempts.close();
    }
}

impl<C: Established> Owner for DInner<C> {
    fn done(&self, key: usize, res: Result<(Src, u16)>) {
        // A connect refused (or unreachable) moves on to the next address.
        if self.attempts.connect_failed(key, &res) {
            return self.try_next(key);
        }
        let Some((aio, token)) = self.attempts.take(key) else {
            return;
        };
        match res {
            Ok((src, peer)) => {
                let meta = meta_for(&self.target, src.io(), &self.opts());
                if let Err(c) = aio.finish_output(token, C::build(src, peer, meta)) {
                    c.discard();
                }
            }
            Err(e) => {
                aio.finish(token, Err(e), 0);
            }
        }
    }
}

impl<C: Established> Cancel for DInner<C> {
    fn cancelled(&self, _: &Aio, key: usize, _: OpToken) {
        self.attempts.cancel(key);
    }
}

impl Setup for Nego {
    fn abort(&self) {
        Nego::abort(self)
    }
    fn connecting(&self) -> bool {
        *lock(&self.step) == Step::Connect
    }
}
