//! Hostile peers on a real tcp connection, speaking raw bytes: each bad message is
//! dropped (or its connection closed), counted in `Socket::stats`, and the socket keeps
//! serving a well-behaved peer afterwards.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{eventually, tcp};
use nanoport::{Error, Socket};

const LIMIT: Duration = Duration::from_secs(10);

/// A raw tcp peer that has done the SP handshake as protocol `proto`.
fn raw_peer(url: &str, proto: u16) -> TcpStream {
    let mut s = TcpStream::connect(url.trim_start_matches("tcp://")).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let [hi, lo] = proto.to_be_bytes();
    s.write_all(&[0, b'S', b'P', 0, hi, lo, 0, 0]).unwrap();
    let mut theirs = [0u8; 8];
    s.read_exact(&mut theirs).unwrap();
    assert_eq!(&theirs[..4], b"\0SP\0");
    s
}

fn send_frame(s: &mut TcpStream, payload: &[u8]) {
    let mut f = (payload.len() as u64).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    s.write_all(&f).unwrap();
}

fn words(ws: &[u32], tail: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = ws.iter().flat_map(|w| w.to_be_bytes()).collect();
    v.extend_from_slice(tail);
    v
}

/// Reads until the peer closes; true if it closed (EOF or reset) within the limit.
fn closed_by_peer(mut s: impl Read) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    assert!(
        eventually(LIMIT, || f().then_some(())).is_some(),
        "never: {what}"
    );
}

#[test]
fn rep_drops_and_counts_short_and_overlong_backtraces() {
    let url = tcp();
    let rep = Socket::rep0().unwrap();
    rep.listen(&url).unwrap();
    rep.set_recv_timeout(LIMIT).unwrap();

    // A header shorter than a request id: the pipe is closed.
    let mut bad = raw_peer(&url, 0x30);
    send_frame(&mut bad, &[0x80, 0]);
    assert!(
        closed_by_peer(&mut bad),
        "a malformed request closes its pipe"
    );
    wait_for("malformed counted", || rep.stats().malformed == 1);

    // A backtrace longer than ttl-max (8): dropped, the pipe kept, then a good request on
    // the same connection is answered.
    let mut far = raw_peer(&url, 0x30);
    let mut nine: Vec<u32> = (1..=8).collect();
    nine.push(0x8000_0001);
    send_frame(&mut far, &words(&nine, b"too far"));
    send_frame(&mut far, &words(&[0x8000_0002], b"near"));
    let m = rep.recv().unwrap();
    assert_eq!(m.body(), b"near");
    assert_eq!(rep.stats().too_many_hops, 1);
    rep.send(m).unwrap();
    let mut reply = [0u8; 8 + 4 + 4];
    far.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[8..], &words(&[0x8000_0002], b"near")[..]);

    // A well-behaved nanoport peer is still served.
    let req = Socket::req0().unwrap();
    req.set_recv_timeout(LIMIT).unwrap();
    req.dial(&url).unwrap();
    req.send("hello").unwrap();
    let m = rep.recv().unwrap();
    rep.send(m).unwrap();
    assert_eq!(req.recv().unwrap().body(), b"hello");
    let s = rep.stats();
    assert_eq!((s.malformed, s.too_many_hops, s.unmatched), (1, 1, 0));
}

#[test]
fn req_counts_unmatched_replies_and_refuses_a_req_peer() {
    let url = tcp();
    let req = Socket::req0().unwrap();
    req.listen(&url).unwrap();
    req.set_recv_timeout(LIMIT).unwrap();

    // Same protocol on both ends: refused and counted.
    let mut twin = raw_peer(&url, 0x30);
    assert!(closed_by_peer(&mut twin), "a req0 peer is refused");
    wait_for("rejection counted", || req.stats().pipes_rejected == 1);

    // A rep peer that answers with an id nobody asked for, then the right one.
    let mut rep = raw_peer(&url, 0x31);
    wait_for("pipe added", || req.pipe_count() == 1);
    req.send("question").unwrap();
    let mut frame = [0u8; 8 + 4 + 8];
    rep.read_exact(&mut frame).unwrap();
    let id = u32::from_be_bytes(frame[8..12].try_into().unwrap());
    assert_ne!(id & 0x8000_0000, 0, "request ids have the top bit set");
    send_frame(&mut rep, &words(&[id ^ 0x1], b"stranger"));
    send_frame(&mut rep, &words(&[id], b"answer"));
    assert_eq!(req.recv().unwrap().body(), b"answer");
    // A duplicate of the answer comes too late.
    send_frame(&mut rep, &words(&[id], b"again"));
    wait_for("two unmatched", || req.stats().unmatched == 2);
    assert_eq!(req.recv().unwrap_err(), Error::State);
    assert_eq!(req.stats().malformed, 0);
}

#[test]
fn listener_counts_failed_handshakes_and_keeps_serving() {
    let rep = Socket::rep0().unwrap();
    let l = rep.listener("tcp://127.0.0.1:0").unwrap();
    l.start().unwrap();
    let url = format!("tcp://127.0.0.1:{}", l.port().unwrap());
    // Not SP at all: the connection is dropped at its first 8 bytes.
    let mut http = TcpStream::connect(url.trim_start_matches("tcp://")).unwrap();
    http.set_read_timeout(Some(LIMIT)).unwrap();
    http.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(closed_by_peer(&mut http));
    // Hangs up after half a header.
    let mut half = TcpStream::connect(url.trim_start_matches("tcp://")).unwrap();
    half.write_all(b"\0SP\0").unwrap();
    drop(half);
    wait_for("both failures counted", || {
        let s = l.stats();
        s.handshake_proto == 1 && s.handshake_disconnect == 1
    });
    let _good = raw_peer(&url, 0x30);
    wait_for("a good peer accepted", || l.stats().accepted == 1);
    assert_eq!(l.stats().handshake_failures(), 2);
}

#[test]
fn frames_over_the_limit_close_the_pipe_and_are_counted() {
    let url = tcp();
    let pull = Socket::pull0().unwrap();
    pull.set_recv_max_size(100).unwrap();
    pull.listen(&url).unwrap();
    pull.set_recv_timeout(LIMIT).unwrap();
    for len in [101u64, 1 << 63] {
        let mut big = raw_peer(&url, 0x50);
        big.write_all(&len.to_be_bytes()).unwrap();
        assert!(
            closed_by_peer(&mut big),
            "a {len}-byte announcement closes the pipe"
        );
    }
    wait_for("two oversized frames counted", || {
        pull.stats().frames_too_large == 2
    });
    // Exactly the limit is fine.
    let mut ok = raw_peer(&url, 0x50);
    send_frame(&mut ok, &[7u8; 100]);
    assert_eq!(pull.recv().unwrap().body(), &[7u8; 100][..]);
    assert_eq!(pull.stats().frames_malformed, 0);
}

#[test]
fn an_ipc_frame_of_the_wrong_type_closes_the_pipe_and_is_counted() {
    use std::os::unix::net::UnixStream;
    let url = common::ipc("bad-type");
    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    let mut s = UnixStream::connect(url.trim_start_matches("ipc://")).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(&[0, b'S', b'P', 0, 0, 0x50, 0, 0]).unwrap();
    let mut theirs = [0u8; 8];
    s.read_exact(&mut theirs).unwrap();
    // Type 2 where IPC frames carry 1.
    s.write_all(&[2, 0, 0, 0, 0, 0, 0, 0, 1, b'x']).unwrap();
    assert!(closed_by_peer(&mut s), "the pipe was closed");
    wait_for("malformed frame counted", || {
        pull.stats().frames_malformed == 1
    });
}
