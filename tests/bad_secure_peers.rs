//! Hostile peers on tls+tcp and ws listeners, speaking raw bytes: each bad connection is
//! closed (with an HTTP error status where NNG answers one) and the listener keeps
//! serving a well-behaved peer.
#![cfg(all(feature = "tls", feature = "ws"))]

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::eventually;
use nanoport::{Socket, TlsConfig};

const LIMIT: Duration = Duration::from_secs(10);
const PATH: &str = "/bad";

/// Reads until the peer closes; true if it closed (EOF or reset) within the limit.
fn closed_by_peer(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// A rep socket on `url` (receive limit 1000 bytes) with a good req peer dialed to it.
struct Served {
    rep: Socket,
    req: Socket,
    listener: nanoport::Listener,
    addr: String,
}

impl Served {
    fn new(url: &str, tls: Option<(&pki::Pki, Duration)>) -> Served {
        let rep = Socket::rep0().unwrap();
        rep.set_recv_max_size(1000).unwrap();
        let l = rep.listener(url).unwrap();
        if let Some((p, hs)) = tls {
            l.set_tls(
                &TlsConfig::server()
                    .cert_key_pem(&p.server.cert, &p.server.key)
                    .unwrap(),
            )
            .unwrap();
            l.set_handshake_timeout(hs).unwrap();
        }
        l.start().unwrap();
        let port = l.port().unwrap();
        let req = Socket::req0().unwrap();
        let good = url.replacen(":0", &format!(":{port}"), 1);
        let d = req.dialer(&good).unwrap();
        if let Some((p, _)) = tls {
            d.set_tls(&TlsConfig::client().ca_pem(&p.ca).unwrap())
                .unwrap();
        }
        d.start(false).unwrap();
        for s in [&rep, &req] {
            s.set_recv_timeout(LIMIT).unwrap();
        }
        Served {
            rep,
            req,
            listener: l,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// One round trip for the good peer.
    fn still_served(&self, what: &str) {
        self.req.send(what).unwrap();
        let q = self
            .rep
            .recv()
            .unwrap_or_else(|e| panic!("after {what}: {e}"));
        assert_eq!(q.body(), what.as_bytes());
        self.rep.send(q).unwrap();
        assert_eq!(self.req.recv().unwrap().body(), what.as_bytes());
    }

    fn raw(&self) -> TcpStream {
        TcpStream::connect(&self.addr).unwrap()
    }
}

fn upgrade_request(path: &str, protocol: Option<&str>) -> String {
    let mut r = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(p) = protocol {
        r.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    r + "\r\n"
}

/// Sends `request`, returns the status line of the answer and whether the server then
/// closed the connection.
fn http_status(s: &Served, request: &[u8]) -> (String, bool) {
    let mut c = s.raw();
    c.write_all(request).unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text.lines().next().unwrap_or("").to_string();
    let upgraded = status.contains(" 101 ");
    (status, upgraded || closed_by_peer(&mut c))
}

#[test]
fn ws_requests_that_are_not_good_upgrades_get_http_errors() {
    let s = Served::new(&format!("ws://127.0.0.1:0{PATH}"), None);
    let cases: Vec<(String, &str)> = vec![
        ("GET /bad HTTP/1.1\r\nHost: x\r\n\r\n".into(), "400"),
        (
            "POST /bad HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".into(),
            "405",
        ),
        (upgrade_request(PATH, None), "400"),
        (upgrade_request(PATH, Some("pub.sp.nanomsg.org")), "400"),
        (
            upgrade_request("/elsewhere", Some("rep.sp.nanomsg.org")),
            "404",
        ),
        ("\x16\x03\x01 this is not http\r\n\r\n".into(), "400"),
    ];
    for (req, want) in cases {
        let (status, closed) = http_status(&s, req.as_bytes());
        assert!(
            status.starts_with(&format!("HTTP/1.1 {want} ")),
            "{req:?}: {status}"
        );
        assert!(closed, "{req:?} left open");
        s.still_served(&format!("after {want}"));
    }
    // The right protocol is upgraded.
    let (status, _) = http_status(
        &s,
        upgrade_request(PATH, Some("rep.sp.nanomsg.org")).as_bytes(),
    );
    assert!(status.starts_with("HTTP/1.1 101 "), "{status}");
    s.still_served("after a good upgrade");
}

/// An upgraded raw client of the rep listener.
fn upgraded(s: &Served) -> TcpStream {
    let mut c = s.raw();
    c.write_all(upgrade_request(PATH, Some("rep.sp.nanomsg.org")).as_bytes())
        .unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut b).unwrap();
        got.push(b[0]);
    }
    assert!(got.starts_with(b"HTTP/1.1 101 "));
    c
}

fn frame(op: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut v = Vec::new();
    nanoport_transports::ws::encode_frame(&mut v, op, payload, masked.then_some([1, 2, 3, 4]));
    v
}

#[test]
fn bad_ws_frames_close_only_their_connection() {
    let s = Served::new(&format!("ws://127.0.0.1:0{PATH}"), None);
    let mut huge_len = vec![0x82, 0xff];
    huge_len.extend_from_slice(&(1u64 << 63).to_be_bytes());
    huge_len.extend_from_slice(&[1, 2, 3, 4]);
    let mut over_limit = vec![0x82, 0xfe];
    over_limit.extend_from_slice(&2000u16.to_be_bytes());
    over_limit.extend_from_slice(&[1, 2, 3, 4]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unmasked client frame", frame(0x2, b"\0\0\0\x80hi", false)),
        ("text frame", frame(0x1, b"text", true)),
        ("control frame over 125 bytes", frame(0x9, &[7; 126], true)),
        ("frame over the receive limit (header only)", over_limit),
        ("2^63 frame length", huge_len),
        ("reserved opcode", frame(0x3, b"", true)),
        ("continuation with no message", frame(0x0, b"x", true)),
    ];
    for (what, bytes) in cases {
        let mut c = upgraded(&s);
        c.write_all(&bytes).unwrap();
        assert!(closed_by_peer(&mut c), "{what}: left open");
        s.still_served(what);
    }
}

#[test]
fn ping_is_answered_with_pong_and_close_with_close() {
    let s = Served::new(&format!("ws://127.0.0.1:0{PATH}"), None);
    let mut c = upgraded(&s);
    c.write_all(&frame(0x9, b"are you there", true)).unwrap();
    let mut pong = vec![0u8; 2 + 13];
    c.read_exact(&mut pong).unwrap();
    assert_eq!(pong, frame(0xA, b"are you there", false));
    // A request in two fragments, with a ping between them, is one message.
    let mut m = Vec::new();
    nanoport_transports::ws::encode_frame_parts(
        &mut m,
        0x2,
        false,
        &[b"\x80\0\0\x07he"],
        Some([9; 4]),
    );
    m.extend(frame(0x9, b"", true));
    nanoport_transports::ws::encode_frame_parts(&mut m, 0x0, true, &[b"llo"], Some([5; 4]));
    c.write_all(&m).unwrap();
    let q = s.rep.recv().unwrap();
    assert_eq!(q.body(), b"hello"); // the request id went to the header
    c.write_all(&frame(0x8, &1000u16.to_be_bytes(), true))
        .unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert!(
        got.ends_with(&frame(0x8, &1000u16.to_be_bytes(), false)),
        "{got:?}"
    );
    s.still_served("after close");
}

#[test]
fn tls_listener_drops_plain_bytes_and_hanging_handshakes() {
    let p = pki::Pki::new();
    for url in [
        "tls+tcp://127.0.0.1:0".to_string(),
        format!("wss://127.0.0.1:0{PATH}"),
    ] {
        let s = Served::new(&url, Some((&p, Duration::from_millis(300))));
        // Plain TCP bytes (an SP header, an HTTP request) instead of a ClientHello.
        for bytes in [&b"\0SP\0\x00\x30\0\0"[..], b"GET / HTTP/1.1\r\n\r\n"] {
            let mut c = s.raw();
            c.write_all(bytes).unwrap();
            assert!(closed_by_peer(&mut c), "{url}: plain bytes left open");
            s.still_served("after plain bytes");
        }
        // The start of a ClientHello, then nothing: dropped at the handshake deadline.
        let before = s.listener.stats().handshake_timeout;
        let mut c = s.raw();
        c.write_all(&[
            0x16, 0x03, 0x01, 0x00, 0xf0, 0x01, 0x00, 0x00, 0xec, 0x03, 0x03,
        ])
        .unwrap();
        assert!(closed_by_peer(&mut c), "{url}: hanging handshake left open");
        assert!(
            eventually(LIMIT, || (s.listener.stats().handshake_timeout > before)
                .then_some(()))
            .is_some(),
            "{url}: {:?}",
            s.listener.stats()
        );
        s.still_served("after a hanging handshake");
        assert!(
            s.listener.stats().handshake_proto >= 2,
            "{:?}",
            s.listener.stats()
        );
    }
}

#[test]
fn a_message_over_the_limit_closes_its_pipe() {
    // A peer that sends more than the receiver's limit loses its pipe (over tls+tcp the
    // announced length, over wss the frame header, refuses it before the body is
    // buffered); the dialer connects again and smaller messages flow.
    let p = pki::Pki::new();
    for url in [
        "tls+tcp://127.0.0.1:0".to_string(),
        format!("wss://127.0.0.1:0{PATH}"),
    ] {
        let s = Served::new(&url, Some((&p, LIMIT)));
        let removed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let r2 = removed.clone();
        s.rep
            .pipe_notify(nanoport::PipeEvent::RemPost, move |_, _| {
                r2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        s.req.send(vec![0u8; 5000]).unwrap();
        assert!(
            eventually(LIMIT, || (removed
                .load(std::sync::atomic::Ordering::SeqCst)
                > 0)
            .then_some(()))
            .is_some(),
            "{url}: the pipe stayed"
        );
        // A new request replaces the refused one (which req would otherwise resend).
        assert!(
            eventually(LIMIT, || {
                s.req.send("small").ok()?;
                let q = s.rep.recv().ok()?;
                (q.body() == b"small").then_some(())?;
                s.rep.send(q).ok()?;
                s.req.recv().ok()
            })
            .is_some(),
            "{url}: not served again"
        );
    }
}

#[test]
fn a_peer_that_pings_without_reading_its_pongs_is_dropped() {
    // Pongs the peer never reads pile up once the kernel's buffers are full; past a
    // bound (1 MiB unsent) the next ping closes the connection rather than growing it.
    let s = Served::new(&format!("ws://127.0.0.1:0{PATH}"), None);
    let mut c = upgraded(&s);
    let ping = frame(0x9, &[0x55; 125], true);
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    c.set_write_timeout(Some(LIMIT)).unwrap();
    let mut closed = false;
    // 64 MiB of pings at most: far past the kernel's buffers plus the bound.
    for _ in 0..512 {
        if c.write_all(&burst).is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed || closed_by_peer(&mut c), "still open");
    s.still_served("after a ping flood");
}
