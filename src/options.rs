//! Typed option setters and getters on [`Socket`], named after NNG's options.
//!
//! Socket-wide options (timeouts, size limit, reconnect times, TCP flags, name) live in
//! the socket; endpoints copy them when created, as NNG 2.x does. Protocol options
//! (buffers, TTL, resend and survey times, subscriptions) go to the protocol.

use std::os::fd::AsRawFd;
use std::time::Duration;

use std::net::IpAddr;

use nanoport_engine::{Error, Result, Timeout};
use nanoport_protocols::OptValue;

use crate::socket::Dir;
use crate::Socket;

fn as_int(v: OptValue) -> Result<i32> {
    match v {
        OptValue::Int(i) => Ok(i),
        _ => Err(Error::BadType),
    }
}

fn as_duration(v: OptValue) -> Result<Timeout> {
    match v {
        OptValue::Duration(t) => Ok(t),
        _ => Err(Error::BadType),
    }
}

fn as_bool(v: OptValue) -> Result<bool> {
    match v {
        OptValue::Bool(b) => Ok(b),
        _ => Err(Error::BadType),
    }
}

fn as_size(v: OptValue) -> Result<usize> {
    match v {
        OptValue::Size(n) => Ok(n),
        _ => Err(Error::BadType),
    }
}

fn as_str(v: OptValue) -> Result<String> {
    match v {
        OptValue::Str(s) => Ok(s),
        _ => Err(Error::BadType),
    }
}

/// A reconnect time: a finite, non-negative duration (NNG refuses the special values
/// with `Inval`).
pub(crate) fn as_interval(v: OptValue) -> Result<Duration> {
    match as_duration(v)? {
        Timeout::After(d) => Ok(d),
        Timeout::Infinite | Timeout::Default => Err(Error::Inval),
    }
}

/// Option names: NNG's `NNG_OPT_*` strings, and nanoport's own (marked so).
///
/// ```
/// use nanoport::opt;
/// assert_eq!(opt::RECV_TIMEOUT, "recv-timeout");
/// assert_eq!(opt::LOCAL_ADDRESS, "local-address");
/// ```
pub mod opt {
    pub use nanoport_protocols::opt::*;

    /// `NNG_OPT_LOCADDR`, on tcp dialers (`tcp`, `tls+tcp`, `ws`, `wss`): the local IP
    /// address connections start from. NNG's type is `nng_sockaddr`; here a string, the
    /// address (`"127.0.0.2"`, `"::1"`, `"[::1]"`; a port, if written, must be 0, as NNG
    /// requires), `""` to let the kernel choose again.
    pub const LOCAL_ADDRESS: &str = "local-address";
    /// `NNG_OPT_IPC_PERMISSIONS`, int, on `ipc://` listeners before start: the mode of
    /// the socket file (permission bits only, `0o7777` at most). Ignored for
    /// `abstract://`, as in NNG. NNG can only set it; here it reads back too.
    pub const IPC_PERMISSIONS: &str = "ipc:permissions";
    /// Idle time before the first TCP keep-alive probe (`TCP_KEEPIDLE`), duration, 1 s to
    /// 32767 s in whole seconds (a fraction is dropped); zero or `Timeout::Default`: the
    /// system's (Linux: 2 hours). nanoport's own: NNG has only the `tcp-keepalive` flag.
    /// On dialers and listeners; live pipes follow.
    pub const TCP_KEEPALIVE_IDLE: &str = "tcp-keepalive-idle";
    /// Time between TCP keep-alive probes (`TCP_KEEPINTVL`), duration, as
    /// [`TCP_KEEPALIVE_IDLE`] (Linux default 75 s). nanoport's own.
    pub const TCP_KEEPALIVE_INTERVAL: &str = "tcp-keepalive-interval";
    /// Unanswered TCP keep-alive probes before the connection drops (`TCP_KEEPCNT`), int
    /// 1..=127; 0: the system's (Linux: 9). nanoport's own.
    pub const TCP_KEEPALIVE_COUNT: &str = "tcp-keepalive-count";
}

/// The options every dialer and listener has, by NNG name: what both `Dialer` and
/// `Listener` answer before their own.
pub(crate) enum EndpointOpt {
    RecvSizeMax(usize),
    TcpNoDelay(bool),
    TcpKeepAlive(bool),
    ReconnectMin(Duration),
    ReconnectMax(Duration),
    SendAheadMax(usize),
    TcpKeepAliveIdle(Option<Duration>),
    TcpKeepAliveInterval(Option<Duration>),
    TcpKeepAliveCount(Option<u32>),
    LocalAddress(Option<IpAddr>),
    IpcPermissions(u32),
}

/// A keep-alive time: `None` (the system's) for zero or `Timeout::Default`; otherwise
/// 1 s to 32767 s (Linux's bound on `TCP_KEEPIDLE` and `TCP_KEEPINTVL`).
///
/// # Errors
/// `Inval` out of range or for `Timeout::Infinite`.
pub(crate) fn keepalive_time(d: Option<Duration>) -> Result<Option<Duration>> {
    match d {
        None => Ok(None),
        Some(d) if d.is_zero() => Ok(None),
        Some(d) if (1..=32767).contains(&d.as_secs()) => Ok(Some(Duration::from_secs(d.as_secs()))),
        Some(_) => Err(Error::Inval),
    }
}

/// A keep-alive probe count: `None` (the system's) for 0, else 1..=127.
///
/// # Errors
/// `Inval` out of range.
pub(crate) fn keepalive_count(n: Option<u32>) -> Result<Option<u32>> {
    match n {
        None | Some(0) => Ok(None),
        Some(n @ 1..=127) => Ok(Some(n)),
        Some(_) => Err(Error::Inval),
    }
}

/// An ipc socket file mode: permission bits only (NNG refuses file-type bits).
///
/// # Errors
/// `Inval` for bits beyond `0o7777`.
pub(crate) fn ipc_mode(mode: u32) -> Result<u32> {
    if mode & !0o7777 != 0 {
        return Err(Error::Inval);
    }
    Ok(mode)
}

/// `local-address` as a string: an IP address, bracketed or not, with port 0 or none;
/// `""` for none.
///
/// # Errors
/// `AddrInval` for anything else, or a port other than 0 (as NNG's tcp dialer).
pub(crate) fn parse_local_address(s: &str) -> Result<Option<IpAddr>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Some(ip));
    }
    if let Some(v6) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .map(|a| Some(IpAddr::V6(a)))
            .map_err(|_| Error::AddrInval);
    }
    match s.parse::<std::net::SocketAddr>() {
        Ok(a) if a.port() == 0 => Ok(Some(a.ip())),
        _ => Err(Error::AddrInval),
    }
}

fn keepalive_duration(v: OptValue) -> Result<Option<Duration>> {
    match as_duration(v)? {
        Timeout::After(d) => keepalive_time(Some(d)),
        Timeout::Default => Ok(None),
        Timeout::Infinite => Err(Error::Inval),
    }
}

impl EndpointOpt {
    /// Decodes a set of `name`; `Ok(None)` when the name is not an endpoint option.
    ///
    /// # Errors
    /// `BadType` for a value of the wrong type, `Inval` for a bad value.
    pub(crate) fn decode(name: &str, v: OptValue) -> Result<Option<EndpointOpt>> {
        Ok(Some(match name {
            opt::RECV_SIZE_MAX => EndpointOpt::RecvSizeMax(as_size(v)?),
            opt::TCP_NODELAY => EndpointOpt::TcpNoDelay(as_bool(v)?),
            opt::TCP_KEEPALIVE => EndpointOpt::TcpKeepAlive(as_bool(v)?),
            opt::RECONNECT_TIME_MIN => EndpointOpt::ReconnectMin(as_interval(v)?),
            opt::RECONNECT_TIME_MAX => EndpointOpt::ReconnectMax(as_interval(v)?),
            opt::SEND_AHEAD_MAX => EndpointOpt::SendAheadMax(as_size(v)?),
            opt::TCP_KEEPALIVE_IDLE => EndpointOpt::TcpKeepAliveIdle(keepalive_duration(v)?),
            opt::TCP_KEEPALIVE_INTERVAL => {
                EndpointOpt::TcpKeepAliveInterval(keepalive_duration(v)?)
            }
            opt::TCP_KEEPALIVE_COUNT => {
                let n = u32::try_from(as_int(v)?).map_err(|_| Error::Inval)?;
                EndpointOpt::TcpKeepAliveCount(keepalive_count(Some(n))?)
            }
            opt::LOCAL_ADDRESS => EndpointOpt::LocalAddress(parse_local_address(&as_str(v)?)?),
            opt::IPC_PERMISSIONS => {
                let m = u32::try_from(as_int(v)?).map_err(|_| Error::Inval)?;
                EndpointOpt::IpcPermissions(ipc_mode(m)?)
            }
            _ => return Ok(None),
        }))
    }
}

/// Options no one may set (NNG: `NNG_EREADONLY`).
fn read_only(name: &str) -> bool {
    matches!(
        name,
        opt::PROTOCOL
            | opt::PEER
            | opt::PROTOCOL_NAME
            | opt::PEER_NAME
            | opt::RAW
            | opt::URL
            | opt::TCP_BOUND_PORT
            | opt::RECV_FD
            | opt::SEND_FD
    )
}

impl Socket {
    /// Sets an option by its NNG name (`nng_socket_set`): the socket's own
    /// (`recv-timeout`, `send-timeout`, `recv-size-max`, `reconnect-time-min`,
    /// `reconnect-time-max`, `tcp-nodelay`, `tcp-keepalive`, `socket-name`) and the
    /// protocol's (`send-buffer`, `ttl-max`, `sub:subscribe`, ...), with NNG's types.
    ///
    /// # Examples
    ///
    /// ```
    /// use nanoport::{opt, Error, OptValue, Socket, Timeout};
    /// use std::time::Duration;
    /// let s = Socket::req0().unwrap();
    /// let t = OptValue::Duration(Timeout::After(Duration::from_millis(250)));
    /// s.set_option(opt::RECV_TIMEOUT, t.clone()).unwrap();
    /// assert_eq!(s.get_option(opt::RECV_TIMEOUT).unwrap(), t);
    /// assert_eq!(s.set_option(opt::RECV_TIMEOUT, OptValue::Int(5)), Err(Error::BadType));
    /// ```
    ///
    /// # Errors
    /// `BadType` for a value of the wrong type, `Inval` for a bad value, `ReadOnly`
    /// (`protocol`, `peer`, `raw`, ...), `NotSup` for an option the socket lacks,
    /// `Closed`.
    pub fn set_option(&self, name: &str, value: OptValue) -> Result<()> {
        if read_only(name) {
            return Err(Error::ReadOnly);
        }
        match name {
            opt::RECV_TIMEOUT => self.set_recv_timeout(as_duration(value)?),
            opt::SEND_TIMEOUT => self.set_send_timeout(as_duration(value)?),
            opt::SOCKET_NAME => self.set_name(&as_str(value)?),
            _ => match EndpointOpt::decode(name, value.clone())? {
                Some(EndpointOpt::RecvSizeMax(n)) => self.set_recv_max_size(n),
                Some(EndpointOpt::TcpNoDelay(b)) => self.set_tcp_nodelay(b),
                Some(EndpointOpt::TcpKeepAlive(b)) => self.set_tcp_keepalive(b),
                Some(EndpointOpt::ReconnectMin(d)) => self.set_reconnect_min_time(d),
                Some(EndpointOpt::ReconnectMax(d)) => self.set_reconnect_max_time(d),
                Some(EndpointOpt::SendAheadMax(n)) => self.set_send_ahead_max(n),
                // Per endpoint only: set them on the dialer or listener.
                Some(_) => Err(Error::NotSup),
                None => match self.inner.set_proto_option(0, name, value.clone()) {
                    Err(Error::NotSup) if spare_buf(name).is_some() => {
                        let n = as_int(value)?;
                        if !(0..=8192).contains(&n) {
                            return Err(Error::Inval);
                        }
                        let i = spare_buf(name).unwrap_or(0);
                        self.inner.set_local_opts(|o| o.spare_bufs[i] = n)
                    }
                    r => r,
                },
            },
        }
    }

    /// Reads an option by its NNG name (`nng_socket_get`); the names of
    /// [`set_option`](Socket::set_option), plus the read-only `protocol`, `peer`,
    /// `protocol-name`, `peer-name` and `raw`, and NNG 1.x's `recv-fd` and `send-fd`
    /// (the raw fds of [`recv_poll_fd`](Socket::recv_poll_fd) and
    /// [`send_poll_fd`](Socket::send_poll_fd), valid while the socket has a handle).
    ///
    /// # Errors
    /// `NotSup` for an option the socket lacks (and for write-only ones such as
    /// `sub:subscribe`), `Closed`.
    pub fn get_option(&self, name: &str) -> Result<OptValue> {
        let info = self.inner.info;
        let ms = |d: Duration| OptValue::Duration(Timeout::After(d));
        Ok(match name {
            opt::RECV_TIMEOUT => OptValue::Duration(self.recv_timeout()?),
            opt::SEND_TIMEOUT => OptValue::Duration(self.send_timeout()?),
            opt::SOCKET_NAME => OptValue::Str(self.name()?),
            opt::RECV_SIZE_MAX => OptValue::Size(self.recv_max_size()?),
            opt::TCP_NODELAY => OptValue::Bool(self.tcp_nodelay()?),
            opt::TCP_KEEPALIVE => OptValue::Bool(self.tcp_keepalive()?),
            opt::SEND_AHEAD_MAX => OptValue::Size(self.send_ahead_max()?),
            opt::RECONNECT_TIME_MIN => ms(self.reconnect_times()?.0),
            opt::RECONNECT_TIME_MAX => ms(self.reconnect_times()?.1),
            opt::PROTOCOL => OptValue::Int(i32::from(info.id)),
            opt::PEER => OptValue::Int(i32::from(info.peer_id)),
            opt::PROTOCOL_NAME => OptValue::Str(info.name.to_owned()),
            opt::PEER_NAME => OptValue::Str(info.peer_name.to_owned()),
            opt::RAW => OptValue::Bool(info.raw),
            opt::RECV_FD => OptValue::Int(self.recv_poll_fd()?.as_raw_fd()),
            opt::SEND_FD => OptValue::Int(self.send_poll_fd()?.as_raw_fd()),
            _ => match (self.inner.get_proto_option(0, name), spare_buf(name)) {
                (Err(Error::NotSup), Some(i)) => {
                    OptValue::Int(self.inner.sock_opt(|o| o.spare_bufs[i])?)
                }
                (r, _) => return r,
            },
        })
    }
}

/// Which of the socket's spare buffer depths `name` is, for a protocol whose core has
/// no queue of that kind. libnng (1.5) answers `send-buffer` and `recv-buffer` on every
/// socket, whether or not the protocol uses them, so code written for it sets them
/// freely; the socket keeps such values (range-checked as NNG does) and reads them back.
fn spare_buf(name: &str) -> Option<usize> {
    match name {
        opt::SEND_BUF => Some(0),
        opt::RECV_BUF => Some(1),
        _ => None,
    }
}

impl Socket {
    /// Sets the receive timeout (`NNG_OPT_RECVTIMEO`, default infinite). Contexts opened
    /// later inherit it.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_recv_timeout(&self, t: impl Into<Timeout>) -> Result<()> {
        self.inner.set_ctx_timeout(0, Dir::Recv, t.into())
    }

    /// The receive timeout.
    ///
    /// # Errors
    /// `Closed`.
    pub fn recv_timeout(&self) -> Result<Timeout> {
        Ok(self.inner.ctx_timeouts(0)?.recv)
    }

    /// Sets the send timeout (`NNG_OPT_SENDTIMEO`, default infinite).
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_send_timeout(&self, t: impl Into<Timeout>) -> Result<()> {
        self.inner.set_ctx_timeout(0, Dir::Send, t.into())
    }

    /// The send timeout.
    ///
    /// # Errors
    /// `Closed`.
    pub fn send_timeout(&self) -> Result<Timeout> {
        Ok(self.inner.ctx_timeouts(0)?.send)
    }

    /// Sets the largest message accepted from peers (`NNG_OPT_RECVMAXSZ`; default 1 GiB as
    /// NNG 2.x; 0 = unlimited). As in NNG, it reaches the socket's existing dialers and
    /// listeners and their live pipes (from each pipe's next frame on), and later ones.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_recv_max_size(&self, n: usize) -> Result<()> {
        self.inner.set_sock_opts(|o| o.recv_max = n)
    }

    /// The receive size limit.
    ///
    /// # Errors
    /// `Closed`.
    pub fn recv_max_size(&self) -> Result<usize> {
        self.inner.sock_opt(|o| o.recv_max)
    }

    /// Sets the reconnect minimum time (`NNG_OPT_RECONNMINT`, default 1 s), for existing
    /// dialers and later ones.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_reconnect_min_time(&self, d: Duration) -> Result<()> {
        self.inner.set_sock_opts(|o| o.reconnect_min = d)
    }

    /// Sets the reconnect maximum time (`NNG_OPT_RECONNMAXT`, default 0: no exponential
    /// back-off), for existing dialers and later ones.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_reconnect_max_time(&self, d: Duration) -> Result<()> {
        self.inner.set_sock_opts(|o| o.reconnect_max = d)
    }

    /// The reconnect minimum and maximum times.
    ///
    /// # Errors
    /// `Closed`.
    pub fn reconnect_times(&self) -> Result<(Duration, Duration)> {
        self.inner.sock_opt(|o| (o.reconnect_min, o.reconnect_max))
    }

    /// Sets `TCP_NODELAY` (`NNG_OPT_TCP_NODELAY`, default on) on existing tcp pipes and
    /// on the connections of existing and later endpoints.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_tcp_nodelay(&self, on: bool) -> Result<()> {
        self.inner.set_sock_opts(|o| o.tcp_nodelay = on)
    }

    /// Whether tcp connections set `TCP_NODELAY`.
    ///
    /// # Errors
    /// `Closed`.
    pub fn tcp_nodelay(&self) -> Result<bool> {
        self.inner.sock_opt(|o| o.tcp_nodelay)
    }

    /// Sets TCP keep-alive (`NNG_OPT_TCP_KEEPALIVE`, default off), as
    /// [`set_tcp_nodelay`](Socket::set_tcp_nodelay) does.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_tcp_keepalive(&self, on: bool) -> Result<()> {
        self.inner.set_sock_opts(|o| o.tcp_keepalive = on)
    }

    /// Whether tcp connections set keep-alive.
    ///
    /// # Errors
    /// `Closed`.
    pub fn tcp_keepalive(&self) -> Result<bool> {
        self.inner.sock_opt(|o| o.tcp_keepalive)
    }

    /// Bounds how far, in bytes, each tcp or ipc pipe may run ahead of its peer's reading
    /// (`send-ahead-max`; NNG has no equivalent). It bounds what a peer that dies, or
    /// hangs, can take with it: messages a send accepted that the peer never read.
    ///
    /// 0, the default, keeps each pipe's 128 KiB write queue and the kernel's own send
    /// buffering, which over tcp grows to megabytes: a push0 streaming 16-byte messages
    /// loses tens of thousands to a peer killed mid-stream. A bound `b` gives each pipe's
    /// write queue `b / 2` and caps the kernel's sending side at about `b / 2` more (tcp:
    /// unsent bytes, `TCP_NOTSENT_LOWAT`; ipc: the send buffer, `SO_SNDBUF`, which for a
    /// unix stream also counts what waits at the receiver). Over tcp the receiving
    /// kernel's buffer comes on top, sized by the peer's system (Linux grows it with the
    /// rate the peer reads: about 100 KB for a stream of small messages, megabytes for
    /// 4 KiB ones). A message is accepted while the queue holds less than its share, so
    /// one large message may exceed it. Small bounds cost throughput (docs/engine.md has
    /// the figures); inproc ignores the option. As the other socket-wide options, it
    /// reaches existing dialers and listeners and their live pipes, and later ones.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_send_ahead_max(&self, bytes: usize) -> Result<()> {
        self.inner.set_sock_opts(|o| o.send_ahead_max = bytes)
    }

    /// The send-ahead bound in bytes (0: none).
    ///
    /// # Errors
    /// `Closed`.
    pub fn send_ahead_max(&self) -> Result<usize> {
        self.inner.sock_opt(|o| o.send_ahead_max)
    }

    /// Sets the socket's name (`NNG_OPT_SOCKNAME`, default its id).
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_name(&self, name: &str) -> Result<()> {
        // The name concerns no endpoint or pipe: nothing to hand on.
        self.inner.set_local_opts(|o| o.name = name.to_owned())
    }

    /// The socket's name.
    ///
    /// # Errors
    /// `Closed`.
    pub fn name(&self) -> Result<String> {
        self.inner.sock_opt(|o| o.name.clone())
    }

    /// Sets the send buffer depth in messages (`NNG_OPT_SENDBUF`, 0..=8192). Every
    /// protocol takes it, as libnng's do; one that keeps no send queue (req0, sub0, ...)
    /// only stores it.
    ///
    /// # Errors
    /// `Inval` out of range, `Closed`.
    pub fn set_send_buffer(&self, n: i32) -> Result<()> {
        self.set_option(opt::SEND_BUF, OptValue::Int(n))
    }

    /// The send buffer depth.
    ///
    /// # Errors
    /// `Closed`.
    pub fn send_buffer(&self) -> Result<i32> {
        as_int(self.get_option(opt::SEND_BUF)?)
    }

    /// Sets the receive buffer depth in messages (`NNG_OPT_RECVBUF`, 0..=8192). Every
    /// protocol takes it, as libnng's do; one that keeps no receive queue (push0, req0,
    /// ...) only stores it.
    ///
    /// # Errors
    /// `Inval` out of range, `Closed`.
    pub fn set_recv_buffer(&self, n: i32) -> Result<()> {
        self.set_option(opt::RECV_BUF, OptValue::Int(n))
    }

    /// The receive buffer depth.
    ///
    /// # Errors
    /// `Closed`.
    pub fn recv_buffer(&self) -> Result<i32> {
        as_int(self.get_option(opt::RECV_BUF)?)
    }

    /// Sets the maximum hop count (`NNG_OPT_MAXTTL`, 1..=15, default 8).
    ///
    /// # Errors
    /// `Inval` out of range, `NotSup` on protocols without one.
    pub fn set_max_ttl(&self, ttl: i32) -> Result<()> {
        self.set_option(opt::MAX_TTL, OptValue::Int(ttl))
    }

    /// The maximum hop count.
    ///
    /// # Errors
    /// `NotSup` on protocols without one.
    pub fn max_ttl(&self) -> Result<i32> {
        as_int(self.get_option(opt::MAX_TTL)?)
    }

    /// Sets the req resend time (`NNG_OPT_REQ_RESENDTIME`, default 60 s; infinite or zero
    /// disables resending).
    ///
    /// # Errors
    /// `NotSup` on protocols other than req0.
    pub fn set_resend_time(&self, t: impl Into<Timeout>) -> Result<()> {
        self.set_option(opt::REQ_RESEND_TIME, OptValue::Duration(t.into()))
    }

    /// The req resend time.
    ///
    /// # Errors
    /// `NotSup` on protocols other than req0.
    pub fn resend_time(&self) -> Result<Timeout> {
        as_duration(self.get_option(opt::REQ_RESEND_TIME)?)
    }

    /// Sets the survey time (`NNG_OPT_SURVEYOR_SURVEYTIME`, default 1 s).
    ///
    /// # Errors
    /// `NotSup` on protocols other than surveyor0.
    pub fn set_survey_time(&self, t: impl Into<Timeout>) -> Result<()> {
        self.set_option(opt::SURVEY_TIME, OptValue::Duration(t.into()))
    }

    /// The survey time.
    ///
    /// # Errors
    /// `NotSup` on protocols other than surveyor0.
    pub fn survey_time(&self) -> Result<Timeout> {
        as_duration(self.get_option(opt::SURVEY_TIME)?)
    }

    /// Subscribes a sub0 socket to messages starting with `prefix` (the empty prefix
    /// takes everything).
    ///
    /// # Errors
    /// `NotSup` on other protocols.
    pub fn subscribe(&self, prefix: &[u8]) -> Result<()> {
        self.set_option(opt::SUBSCRIBE, OptValue::Bytes(prefix.to_vec()))
    }

    /// Removes a subscription.
    ///
    /// # Errors
    /// `NoEnt` if it was not subscribed; `NotSup` on other protocols.
    pub fn unsubscribe(&self, prefix: &[u8]) -> Result<()> {
        self.set_option(opt::UNSUBSCRIBE, OptValue::Bytes(prefix.to_vec()))
    }
}
