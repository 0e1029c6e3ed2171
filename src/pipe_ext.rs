//! What a [`Pipe`] tells beyond the engine's handle: its socket, dialer or listener, and
//! its addresses as values (`nng_pipe_socket`, `nng_pipe_dialer`, `nng_pipe_listener`,
//! `nng_pipe_get_addr`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use nanoport_engine::{Error, Pipe, Result};
use nanoport_protocols::{opt, OptValue};

use crate::endpoint::EndpointHandle;
use crate::pipes::SocketPipe;
use crate::{Dialer, Listener, Socket};

/// A transport address, as NNG's `nng_sockaddr`: what a pipe's `local-address` and
/// `remote-address` name.
///
/// # Examples
///
/// ```
/// use nanoport::SockAddr;
/// let a: SockAddr = "tcp://127.0.0.1:5555".parse().unwrap();
/// assert_eq!(a, SockAddr::Inet("127.0.0.1:5555".parse().unwrap()));
/// assert_eq!(a.to_string(), "127.0.0.1:5555");
/// let b: SockAddr = "ipc:///tmp/np.sock".parse().unwrap();
/// assert_eq!(b, SockAddr::Ipc("/tmp/np.sock".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SockAddr {
    /// An in-process name (`NNG_AF_INPROC`).
    Inproc(String),
    /// A UNIX-domain socket path (`NNG_AF_IPC`).
    Ipc(PathBuf),
    /// A Linux abstract socket name (`NNG_AF_ABSTRACT`), without the leading NUL.
    Abstract(Vec<u8>),
    /// An IPv4 or IPv6 address and port (`NNG_AF_INET`, `NNG_AF_INET6`): tcp, tls+tcp,
    /// ws and wss.
    Inet(SocketAddr),
}

impl std::str::FromStr for SockAddr {
    type Err = Error;

    /// Reads an address in the URL form pipes report (`tcp://127.0.0.1:5555`,
    /// `ipc:///path`, `abstract://name`, `inproc://name`, `ws://[::1]:80`).
    ///
    /// # Errors
    /// `AddrInval` for text in no such form.
    fn from_str(s: &str) -> Result<SockAddr> {
        let (scheme, rest) = s.split_once("://").ok_or(Error::AddrInval)?;
        match scheme {
            "inproc" => Ok(SockAddr::Inproc(rest.to_owned())),
            "ipc" | "unix" => Ok(SockAddr::Ipc(PathBuf::from(rest))),
            "abstract" => Ok(SockAddr::Abstract(percent_decode(rest)?)),
            "tcp" | "tcp4" | "tcp6" | "tls+tcp" | "tls+tcp4" | "tls+tcp6" | "ws" | "ws4"
            | "ws6" | "wss" | "wss4" | "wss6" => {
                let host_port = rest.split('/').next().unwrap_or(rest);
                host_port
                    .parse()
                    .map(SockAddr::Inet)
                    .map_err(|_| Error::AddrInval)
            }
            _ => Err(Error::AddrInval),
        }
    }
}

/// NNG's abstract socket URLs %-encode bytes that text cannot hold.
fn percent_decode(s: &str) -> Result<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(Error::AddrInval)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| Error::AddrInval)?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockAddr::Inproc(n) => f.write_str(n),
            SockAddr::Ipc(p) => write!(f, "{}", p.display()),
            SockAddr::Abstract(n) => write!(f, "@{}", String::from_utf8_lossy(n)),
            SockAddr::Inet(a) => write!(f, "{a}"),
        }
    }
}

/// The socket-side facts of a [`Pipe`]: its socket, dialer or listener, typed addresses
/// and options by name (NNG's `nng_pipe_socket`, `nng_pipe_dialer`,
/// `nng_pipe_listener`, `nng_pipe_get_*`). Works on the pipes `pipe_notify` callbacks get
/// and on [`Message::pipe`](crate::Message::pipe) alike, while the pipe's socket holds it.
///
/// # Examples
///
/// ```
/// use nanoport::{PipeExt, SockAddr, Socket};
/// let pull = Socket::pull0().unwrap();
/// let l = pull.listen("tcp://127.0.0.1:0").unwrap();
/// let push = Socket::push0().unwrap();
/// push.dial(&format!("tcp://127.0.0.1:{}", l.port().unwrap())).unwrap();
/// push.send("hi").unwrap();
/// let m = pull.recv().unwrap();
/// let pipe = m.pipe().unwrap();
/// assert_eq!(pipe.socket().unwrap().id(), pull.id());
/// assert!(pipe.listener().is_some() && pipe.dialer().is_none());
/// assert!(matches!(pipe.remote_addr().unwrap(), SockAddr::Inet(a) if a.ip().is_loopback()));
/// ```
pub trait PipeExt {
    /// The socket the pipe belongs to (`nng_pipe_socket`).
    ///
    /// # Errors
    /// `Closed` once the pipe has left its socket or the socket is gone.
    fn socket(&self) -> Result<Socket>;

    /// The dialer that made the pipe (`nng_pipe_dialer`); `None` for an accepted pipe,
    /// or once the pipe has left its socket.
    fn dialer(&self) -> Option<Dialer>;

    /// The listener that accepted the pipe (`nng_pipe_listener`); `None` for a dialed
    /// pipe, or once the pipe has left its socket.
    fn listener(&self) -> Option<Listener>;

    /// The pipe's own address (`NNG_OPT_LOCADDR` on a pipe).
    ///
    /// # Errors
    /// `NotSup` where the transport reports none, `Closed`.
    fn local_addr(&self) -> Result<SockAddr>;

    /// The peer's address (`NNG_OPT_REMADDR`).
    ///
    /// # Errors
    /// `NotSup` where the transport reports none, `Closed`.
    fn remote_addr(&self) -> Result<SockAddr>;

    /// A pipe option by its NNG name, with NNG's type (`nng_pipe_get`): `local-address`
    /// and `remote-address` and `ws:request-uri` and `tls-peer-cn` as `Str`,
    /// `tcp-nodelay`, `tcp-keepalive` and `tls-verified` as `Bool`, `recv-size-max` as
    /// `Size`, `peer` as `Int`, `ipc:peer-pid`/`-uid`/`-gid` as `Int`.
    ///
    /// # Errors
    /// `NotSup` for an option this pipe's transport lacks, `Closed`.
    fn get_option(&self, name: &str) -> Result<OptValue>;
}

fn registered(p: &Pipe) -> Option<std::sync::Arc<SocketPipe>> {
    SocketPipe::find(p.id())
}

fn endpoint(p: &Pipe) -> Option<EndpointHandle> {
    registered(p)?.owner().map(|ep| ep.handle())
}

fn addr(p: &Pipe, name: &str) -> Result<SockAddr> {
    let text = p.option(name)?;
    if text.is_empty() {
        return Err(Error::NotSup);
    }
    text.parse()
}

impl PipeExt for Pipe {
    fn socket(&self) -> Result<Socket> {
        let inner = registered(self)
            .and_then(|h| h.socket())
            .ok_or(Error::Closed)?;
        let s = Socket::from_inner(&inner);
        // A closed socket still answers with `Closed` on every call; say so now.
        s.name().map(|_| s)
    }

    fn dialer(&self) -> Option<Dialer> {
        match endpoint(self)? {
            EndpointHandle::Dialer(d) => Some(d),
            EndpointHandle::Listener(_) => None,
        }
    }

    fn listener(&self) -> Option<Listener> {
        match endpoint(self)? {
            EndpointHandle::Listener(l) => Some(l),
            EndpointHandle::Dialer(_) => None,
        }
    }

    fn local_addr(&self) -> Result<SockAddr> {
        addr(self, "local-address")
    }

    fn remote_addr(&self) -> Result<SockAddr> {
        addr(self, "remote-address")
    }

    fn get_option(&self, name: &str) -> Result<OptValue> {
        if name == opt::PEER {
            return Ok(OptValue::Int(i32::from(self.peer_protocol())));
        }
        let text = match registered(self) {
            Some(h) => h.transport().option(name)?,
            None => self.option(name)?,
        };
        let parse_int = || text.parse().map(OptValue::Int).map_err(|_| Error::Internal);
        match name {
            opt::TCP_NODELAY | opt::TCP_KEEPALIVE | "tls-verified" => {
                Ok(OptValue::Bool(text == "true"))
            }
            opt::RECV_SIZE_MAX => text
                .parse()
                .map(OptValue::Size)
                .map_err(|_| Error::Internal),
            "ipc:peer-pid" | "ipc:peer-uid" | "ipc:peer-gid" => parse_int(),
            _ => Ok(OptValue::Str(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_from_every_form_pipes_report() {
        let v4: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:443".parse().unwrap();
        assert_eq!("tcp://10.0.0.1:80".parse(), Ok(SockAddr::Inet(v4)));
        assert_eq!("tls+tcp://[::1]:443".parse(), Ok(SockAddr::Inet(v6)));
        assert_eq!("wss://[::1]:443/path".parse(), Ok(SockAddr::Inet(v6)));
        assert_eq!("ws://10.0.0.1:80".parse(), Ok(SockAddr::Inet(v4)));
        assert_eq!(
            "abstract://a%00b".parse(),
            Ok(SockAddr::Abstract(b"a\0b".to_vec()))
        );
        assert_eq!("inproc://x".parse(), Ok(SockAddr::Inproc("x".into())));
        assert_eq!("ipc:///a/b".parse(), Ok(SockAddr::Ipc("/a/b".into())));
    }

    #[test]
    fn bad_address_text_is_addr_invalid() {
        for bad in [
            "",
            "tcp:/x",
            "tcp://host-name:80",
            "abstract://%zz",
            "abstract://%4",
            "zz://a",
        ] {
            assert_eq!(bad.parse::<SockAddr>(), Err(Error::AddrInval), "{bad}");
        }
    }
}
