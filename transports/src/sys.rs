//! The few socket calls the transports make, each wrapped once.

use std::io::{self, IoSlice, Read};
use std::net::Shutdown;
use std::time::Duration;

use socket2::{SockAddr, Socket};

/// `sendmsg` with `MSG_NOSIGNAL`: a peer that went away gives `EPIPE`, never `SIGPIPE`.
pub(crate) fn send_vectored(s: &Socket, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    s.send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL)
}

/// A non-blocking `recv` into `buf`.
pub(crate) fn recv(s: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    (&*s).read(buf)
}

/// `accept4` (close-on-exec), then non-blocking mode for the new socket.
pub(crate) fn accept(s: &Socket) -> io::Result<Socket> {
    let (c, _) = s.accept()?;
    c.set_nonblocking(true)?;
    Ok(c)
}

/// Shuts both directions down: the peer sees the close now, even while handles remain.
pub(crate) fn shutdown(s: &Socket) {
    let _ = s.shutdown(Shutdown::Both);
}

/// A new non-blocking, close-on-exec stream socket for `addr`'s family.
pub(crate) fn stream_socket(addr: &SockAddr) -> io::Result<Socket> {
    let s = Socket::new(addr.domain(), socket2::Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Whether a connect started on a non-blocking socket has finished: `Ok(true)` connected,
/// `Ok(false)` still in progress, `Err` failed.
pub(crate) fn connect_done(s: &Socket) -> io::Result<bool> {
    if let Some(e) = s.take_error()? {
        return Err(e);
    }
    match s.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The peer's credentials of a unix-domain socket (`SO_PEERCRED`): pid, uid, gid.
#[cfg(target_os = "linux")]
pub(crate) fn peer_cred(s: &Socket) -> io::Result<(i32, u32, u32)> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes and `len` holds the size of `cred`, as
    // getsockopt(SO_PEERCRED) requires; the fd is owned by `s` and open for the call.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.pid, cred.uid, cred.gid))
}

/// Not available on this platform.
#[cfg(not(target_os = "linux"))]
pub(crate) fn peer_cred(_: &Socket) -> io::Result<(i32, u32, u32)> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Sets a tcp socket's options from `opts`: `TCP_NODELAY`, `SO_KEEPALIVE` and, where
/// the platform has them, the keep-alive timing (`TCP_KEEPIDLE`, `TCP_KEEPINTVL`,
/// `TCP_KEEPCNT`); timing left unset keeps the system's. Best effort: a socket the peer
/// already reset may refuse, and its pipe learns of that from its next read or write.
pub(crate) fn tune_tcp(s: &Socket, opts: &crate::EndpointOptions) {
    let _ = s.set_tcp_nodelay(opts.tcp_nodelay);
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd"
    ))]
    {
        let mut ka = socket2::TcpKeepalive::new();
        let mut any = false;
        if let Some(d) = opts.tcp_keepalive_idle {
            ka = ka.with_time(d);
            any = true;
        }
        if let Some(d) = opts.tcp_keepalive_interval {
            ka = ka.with_interval(d);
            any = true;
        }
        if let Some(n) = opts.tcp_keepalive_count {
            ka = ka.with_retries(n);
            any = true;
        }
        if any {
            // This turns SO_KEEPALIVE on; the flag below sets it as asked.
            let _ = s.set_tcp_keepalive(&ka);
        }
    }
    let _ = s.set_keepalive(opts.tcp_keepalive);
}

/// A tcp socket's keep-alive timing as the kernel has it (`getsockopt`): idle time,
/// interval, probe count.
pub(crate) fn tcp_keepalive_timing(s: &Socket) -> io::Result<(Duration, Duration, u32)> {
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd"
    ))]
    {
        Ok((
            s.tcp_keepalive_time()?,
            s.tcp_keepalive_interval()?,
            s.tcp_keepalive_retries()?,
        ))
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd"
    )))]
    {
        let _ = s;
        Err(io::ErrorKind::Unsupported.into())
    }
}
