//! nanoport over tls+tcp, ws and wss, next to its own tcp: req0/rep0 round trips and
//! push0/pull0 streams through the blocking API, as [`crate::np`] measures tcp. The
//! certificate is generated once per process (rcgen, ECDSA P-256); the client verifies it.

use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nanoport::{Socket, TlsConfig};

use crate::np::push_send_buffer;
use crate::{RoundTrip, Stream};

/// The transports compared here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secure {
    /// Plain tcp, the baseline.
    Tcp,
    /// `tls+tcp://`.
    TlsTcp,
    /// `ws://`.
    Ws,
    /// `wss://`.
    Wss,
}

impl Secure {
    /// All four, in report order.
    pub const ALL: [Secure; 4] = [Secure::Tcp, Secure::TlsTcp, Secure::Ws, Secure::Wss];

    /// Short name for benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Secure::Tcp => "tcp",
            Secure::TlsTcp => "tls+tcp",
            Secure::Ws => "ws",
            Secure::Wss => "wss",
        }
    }

    pub(crate) fn url(self, port: u16) -> String {
        match self {
            Secure::Tcp => format!("tcp://127.0.0.1:{port}"),
            Secure::TlsTcp => format!("tls+tcp://127.0.0.1:{port}"),
            Secure::Ws => format!("ws://127.0.0.1:{port}/bench"),
            Secure::Wss => format!("wss://127.0.0.1:{port}/bench"),
        }
    }

    pub(crate) fn tls(self) -> bool {
        matches!(self, Secure::TlsTcp | Secure::Wss)
    }
}

/// (certificate PEM, key PEM) for "localhost" and 127.0.0.1, self-signed.
pub(crate) fn cert() -> &'static (String, String) {
    static C: OnceLock<(String, String)> = OnceLock::new();
    C.get_or_init(|| {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("certificate");
        (ck.cert.pem(), ck.key_pair.serialize_pem())
    })
}

/// `listener` listens on `t` (port 0), `dialer` dials it; both configured for TLS where
/// the transport needs it.
pub fn connect(t: Secure, listener: &Socket, dialer: &Socket) {
    let (c, k) = cert();
    let l = listener.listener(&t.url(0)).expect("listener");
    if t.tls() {
        l.set_tls(&TlsConfig::server().cert_key_pem(c, k).expect("cert"))
            .expect("set tls");
    }
    l.start().expect("listen");
    let url = t.url(l.port().expect("port"));
    let d = dialer.dialer(&url).expect("dialer");
    if t.tls() {
        d.set_tls(&TlsConfig::client().ca_pem(c).expect("ca"))
            .expect("set tls");
    }
    d.start(false).expect("dial");
}

/// A req0 client and a rep0 echo thread over `t`.
pub struct SecRoundTrip {
    req: Socket,
    rep: Socket,
    echo: Option<JoinHandle<()>>,
    body: Vec<u8>,
}

impl SecRoundTrip {
    /// Connects a pair over `t`; messages carry `size` bytes.
    pub fn new(t: Secure, size: usize) -> Self {
        let rep = Socket::rep0().expect("rep0");
        let req = Socket::req0().expect("req0");
        connect(t, &rep, &req);
        let server = rep.clone();
        let echo = std::thread::spawn(move || {
            while let Ok(m) = server.recv() {
                if server.send(m).is_err() {
                    break;
                }
            }
        });
        SecRoundTrip {
            req,
            rep,
            echo: Some(echo),
            body: vec![7u8; size],
        }
    }
}

impl RoundTrip for SecRoundTrip {
    fn round_trip(&mut self) {
        self.req.send(&self.body[..]).expect("send");
        let m = self.req.recv().expect("recv");
        debug_assert_eq!(m.len(), self.body.len());
    }
}

impl Drop for SecRoundTrip {
    fn drop(&mut self) {
        let _ = self.req.close();
        let _ = self.rep.close();
        if let Some(h) = self.echo.take() {
            let _ = h.join();
        }
    }
}

/// push0 (a sender thread per call) to pull0 (the caller) over `t`.
pub struct SecStream {
    push: Socket,
    pull: Socket,
    body: Vec<u8>,
}

impl SecStream {
    /// Connects a pair over `t`; messages carry `size` bytes.
    pub fn new(t: Secure, size: usize) -> Self {
        let pull = Socket::pull0().expect("pull0");
        let push = Socket::push0().expect("push0");
        push.set_send_buffer(push_send_buffer()).expect("sendbuf");
        connect(t, &pull, &push);
        SecStream {
            push,
            pull,
            body: vec![7u8; size],
        }
    }
}

impl Stream for SecStream {
    fn stream(&mut self, n: u64) -> Duration {
        let (push, body, pull) = (&self.push, &self.body, &self.pull);
        let start = Instant::now();
        std::thread::scope(|s| {
            s.spawn(move || {
                for _ in 0..n {
                    push.send(&body[..]).expect("send");
                }
            });
            for _ in 0..n {
                let m = pull.recv().expect("recv");
                assert_eq!(m.len(), body.len());
            }
            start.elapsed()
        })
    }
}

impl Drop for SecStream {
    fn drop(&mut self) {
        let _ = self.push.close();
        let _ = self.pull.close();
    }
}
