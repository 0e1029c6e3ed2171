//! Transport URLs: `inproc://`, `ipc://`, `unix://`, `abstract://`, `tcp://`, `tcp4://`,
//! `tcp6://`, and with their features `tls+tcp://` (`tls+tcp4`, `tls+tcp6`),
//! `ws://host[:port]/path` (`ws4`, `ws6`) and `wss://` (`wss4`, `wss6`).

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use nanoport_engine::{Error, Result};

/// Address family restriction of a `tcp` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Any,
    V4,
    V6,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Addr {
    Inproc(String),
    Ipc(PathBuf),
    Abstract(Vec<u8>),
    Tcp {
        host: Option<String>,
        port: u16,
        family: Family,
    },
}

/// What runs between a tcp connection and the SP messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layer {
    /// Nothing: plain tcp, ipc, inproc.
    Plain,
    /// TLS (`tls+tcp://`).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Tls,
    /// WebSocket on `path`, over TLS for `wss://`.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    Ws { path: String, tls: bool },
}

impl Layer {
    /// Whether TLS runs on the connection.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Layer::Tls | Layer::Ws { tls: true, .. })
    }

    /// The scheme for addresses shown on pipes.
    #[cfg_attr(not(any(feature = "tls", feature = "ws")), allow(dead_code))]
    pub(crate) fn scheme(&self) -> &'static str {
        match self {
            Layer::Plain => "tcp",
            Layer::Tls => "tls+tcp",
            Layer::Ws { tls: false, .. } => "ws",
            Layer::Ws { tls: true, .. } => "wss",
        }
    }
}

/// `host[:port][/path]` of a ws URL: the port defaults to 80 (`ws`) or 443 (`wss`), the
/// path to `/`.
#[cfg_attr(not(feature = "ws"), allow(dead_code))]
fn parse_ws(rest: &str, family: Family, tls: bool) -> Result<(Addr, Layer)> {
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let has_port = match hostport.rfind(']') {
        Some(i) => hostport[i..].contains(':'),
        None => hostport.contains(':'),
    };
    let hp = if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:{}", if tls { 443 } else { 80 })
    };
    if path.contains([' ', '#']) {
        return Err(Error::AddrInval);
    }
    Ok((
        parse_tcp(&hp, family)?,
        Layer::Ws {
            path: path.to_string(),
            tls,
        },
    ))
}

/// A parsed transport URL. [`Display`](fmt::Display) gives back the URL as written.
///
/// ```
/// use nanoport_transports::Url;
/// let u = Url::parse("tcp://[::1]:5555").unwrap();
/// assert_eq!(u.scheme(), "tcp");
/// assert_eq!(u.to_string(), "tcp://[::1]:5555");
/// assert!(Url::parse("tcp://127.0.0.1").is_err()); // a port is required
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    raw: String,
    scheme: String,
    pub(crate) addr: Addr,
    pub(crate) layer: Layer,
}

fn pct_decode(s: &str) -> Result<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(Error::AddrInval)?;
            let hex = std::str::from_utf8(hex).map_err(|_| Error::AddrInval)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| Error::AddrInval)?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn parse_tcp(rest: &str, family: Family) -> Result<Addr> {
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, p) = r.split_once(']').ok_or(Error::AddrInval)?;
        let p = p.strip_prefix(':').ok_or(Error::AddrInval)?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(Error::AddrInval);
        }
        (h, p)
    } else {
        let (h, p) = rest.rsplit_once(':').ok_or(Error::AddrInval)?;
        if h.contains(':') {
            return Err(Error::AddrInval); // IPv6 literals need brackets
        }
        (h, p)
    };
    if port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()) {
        return Err(Error::AddrInval);
    }
    let port: u16 = port.parse().map_err(|_| Error::AddrInval)?;
    if host.contains(['/', '?', '#', '@', ' ']) {
        return Err(Error::AddrInval);
    }
    let host = match host {
        "" | "*" => None,
        h => Some(h.to_string()),
    };
    Ok(Addr::Tcp { host, port, family })
}

impl Url {
    /// Parses a transport URL.
    ///
    /// # Errors
    /// `AddrInval` for a malformed URL, `NotSup` for an unknown scheme.
    pub fn parse(s: &str) -> Result<Url> {
        let (scheme, rest) = s.split_once("://").ok_or(Error::AddrInval)?;
        #[cfg_attr(not(any(feature = "tls", feature = "ws")), allow(unused_mut))]
        let mut layer = Layer::Plain;
        let addr = match scheme {
            "inproc" => Addr::Inproc(rest.to_string()),
            "ipc" | "unix" => {
                if rest.is_empty() || rest.contains('\0') {
                    return Err(Error::AddrInval);
                }
                Addr::Ipc(PathBuf::from(rest))
            }
            "abstract" => {
                if !cfg!(target_os = "linux") {
                    return Err(Error::NotSup);
                }
                let name = pct_decode(rest)?;
                // Empty (auto-bind) is not supported; names must fit sun_path after the NUL.
                if name.is_empty() || name.len() >= 107 {
                    return Err(Error::AddrInval);
                }
                Addr::Abstract(name)
            }
            "tcp" => parse_tcp(rest, Family::Any)?,
            "tcp4" => parse_tcp(rest, Family::V4)?,
            "tcp6" => parse_tcp(rest, Family::V6)?,
            #[cfg(feature = "tls")]
            "tls+tcp" | "tls+tcp4" | "tls+tcp6" => {
                layer = Layer::Tls;
                let family = match scheme {
                    "tls+tcp4" => Family::V4,
                    "tls+tcp6" => Family::V6,
                    _ => Family::Any,
                };
                parse_tcp(rest, family)?
            }
            #[cfg(feature = "ws")]
            "ws" | "ws4" | "ws6" | "wss" | "wss4" | "wss6" => {
                let tls = scheme.starts_with("wss");
                if tls && !cfg!(feature = "tls") {
                    return Err(Error::NotSup);
                }
                let family = match scheme.trim_start_matches("wss").trim_start_matches("ws") {
                    "4" => Family::V4,
                    "6" => Family::V6,
                    _ => Family::Any,
                };
                let (a, l) = parse_ws(rest, family, tls)?;
                layer = l;
                a
            }
            "" => return Err(Error::AddrInval),
            _ => return Err(Error::NotSup),
        };
        Ok(Url {
            raw: s.to_string(),
            scheme: scheme.to_string(),
            addr,
            layer,
        })
    }

    /// The scheme, without `://`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn family_ok(a: &SocketAddr, family: Family) -> bool {
    match family {
        Family::Any => true,
        Family::V4 => a.is_ipv4(),
        Family::V6 => a.is_ipv6(),
    }
}

/// Resolves a tcp address (blocking name lookup for host names; literals are immediate).
/// With no host: the wildcard address for `listen`, loopback is not assumed for dialing.
/// Used where blocking is the caller's to choose: a listener binding on the user's thread,
/// and literal addresses. Dialers look host names up at each attempt on a resolver thread
/// (`resolv.rs`).
pub(crate) fn resolve(host: &Option<String>, port: u16, family: Family) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = match host {
        None => match family {
            Family::V4 => vec![SocketAddr::new(IpAddr::from([0u8; 4]), port)],
            Family::V6 => vec![SocketAddr::new(IpAddr::from([0u16; 8]), port)],
            Family::Any => {
                vec![
                    SocketAddr::new(IpAddr::from([0u16; 8]), port),
                    SocketAddr::new(IpAddr::from([0u8; 4]), port),
                ]
            }
        },
        Some(h) => {
            if let Ok(ip) = h.parse::<IpAddr>() {
                vec![SocketAddr::new(ip, port)]
            } else {
                (h.as_str(), port)
                    .to_socket_addrs()
                    .map_err(|_| Error::AddrInval)?
                    .collect()
            }
        }
    };
    let addrs: Vec<SocketAddr> = addrs.into_iter().filter(|a| family_ok(a, family)).collect();
    if addrs.is_empty() {
        return Err(Error::AddrInval);
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls() {
        let u = Url::parse("inproc://a b/c").unwrap();
        assert_eq!(u.addr, Addr::Inproc("a b/c".into()));
        assert_eq!(
            Url::parse("ipc:///tmp/x.sock").unwrap().addr,
            Addr::Ipc("/tmp/x.sock".into())
        );
        assert_eq!(
            Url::parse("ipc://rel.sock").unwrap().addr,
            Addr::Ipc("rel.sock".into())
        );
        assert_eq!(Url::parse("unix:///tmp/y").unwrap().scheme(), "unix");
        assert_eq!(
            Url::parse("abstract://a%00b").unwrap().addr,
            Addr::Abstract(b"a\0b".to_vec())
        );
        assert_eq!(
            Url::parse("tcp://127.0.0.1:80").unwrap().addr,
            Addr::Tcp {
                host: Some("127.0.0.1".into()),
                port: 80,
                family: Family::Any
            }
        );
        assert_eq!(
            Url::parse("tcp6://[::1]:0").unwrap().addr,
            Addr::Tcp {
                host: Some("::1".into()),
                port: 0,
                family: Family::V6
            }
        );
        assert_eq!(
            Url::parse("tcp://*:5").unwrap().addr,
            Addr::Tcp {
                host: None,
                port: 5,
                family: Family::Any
            }
        );
        assert_eq!(
            Url::parse("tcp4://:5").unwrap().addr,
            Addr::Tcp {
                host: None,
                port: 5,
                family: Family::V4
            }
        );
        assert_eq!(
            Url::parse("tcp://localhost:65535").unwrap().to_string(),
            "tcp://localhost:65535"
        );
    }

    #[test]
    fn bad_urls() {
        for s in [
            "tcp://127.0.0.1",
            "tcp://127.0.0.1:",
            "tcp://127.0.0.1:65536",
            "tcp://127.0.0.1:-1",
            "tcp://::1:80",
            "tcp://[::1:80",
            "tcp://[nothost]:80",
            "tcp://h/x:80",
            "ipc://",
            "abstract://",
            "abstract://%zz",
            "abstract://%0",
            "nothing",
            "://x",
        ] {
            assert_eq!(Url::parse(s), Err(Error::AddrInval), "{s}");
        }
        assert_eq!(Url::parse("zmq://x"), Err(Error::NotSup));
        #[cfg(not(feature = "ws"))]
        assert_eq!(Url::parse("ws://x:80/"), Err(Error::NotSup));
        let long = format!("abstract://{}", "x".repeat(128));
        assert_eq!(Url::parse(&long), Err(Error::AddrInval));
    }

    #[cfg(all(feature = "ws", feature = "tls"))]
    #[test]
    fn secure_and_web_urls() {
        let u = Url::parse("ws://127.0.0.1:0/x").unwrap();
        assert_eq!(
            u.layer,
            Layer::Ws {
                path: "/x".into(),
                tls: false
            }
        );
        let u = Url::parse("wss://[::1]").unwrap();
        assert!(u.layer.is_tls());
        assert!(matches!(u.addr, Addr::Tcp { port: 443, .. }));
        assert!(matches!(
            Url::parse("ws://h").unwrap().addr,
            Addr::Tcp { port: 80, .. }
        ));
        assert_eq!(Url::parse("tls+tcp://h:5").unwrap().layer, Layer::Tls);
        assert_eq!(Url::parse("tls+tcp://h"), Err(Error::AddrInval));
        assert_eq!(Url::parse("ws://h:x/"), Err(Error::AddrInval));
    }

    #[test]
    fn resolution_filters_family() {
        assert!(resolve(&Some("127.0.0.1".into()), 1, Family::V6).is_err());
        assert_eq!(
            resolve(&Some("::1".into()), 1, Family::Any).unwrap()[0].port(),
            1
        );
        assert!(resolve(&None, 1, Family::V4).unwrap()[0].is_ipv4());
    }
}
