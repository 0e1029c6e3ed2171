//! Bad input on raw sockets to a TransportListener: each case drops only its own
//! connection, the listener keeps serving, and fds return to baseline.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nanoport_engine::{Error, Message};
use nanoport_transports::handshake::encode_header;
use nanoport_transports::{EndpointOptions, TransportDialer, TransportListener, Url};

fn short_opts() -> EndpointOptions {
    EndpointOptions {
        handshake_timeout: Duration::from_millis(200),
        recv_max: 1000,
        ..Default::default()
    }
}

fn tcp_listener() -> (TransportListener, u16) {
    let l = TransportListener::bind(
        &Url::parse("tcp://127.0.0.1:0").unwrap(),
        PULL,
        short_opts(),
    )
    .unwrap();
    let p = l.port().unwrap();
    (l, p)
}

/// A good peer still gets through.
fn good_peer_works(l: &TransportListener, port: u16) {
    let d = TransportDialer::new(
        &Url::parse(&format!("tcp://127.0.0.1:{port}")).unwrap(),
        PUSH,
        short_opts(),
    )
    .unwrap();
    let a = waitable();
    l.accept_aio(&a);
    let p = dial(&d).expect("good dial");
    a.wait();
    let lp = a
        .take_output::<nanoport_transports::BoxPipe>()
        .expect("good accept");
    send(&p, Message::from("ok")).unwrap();
    assert_eq!(recv(&lp).unwrap().body(), b"ok");
}

/// Sends `bytes` raw, then reads until the listener drops us (EOF or reset).
fn expect_dropped(port: u16, bytes: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 64];
    let mut got = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        assert!(got <= 8, "listener sent more than its header");
    }
}

#[test]
fn bad_handshakes_drop_only_their_connection() {
    let (l, port) = tcp_listener();
    // Keep an accept outstanding the whole time, as the socket layer does.
    let a = waitable();
    l.accept_aio(&a);
    let cases: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![0xff; 8],
        vec![0, b'S', b'P', 1, 0, 0x50, 0, 0], // version byte
        vec![0, b'S', b'P', 0, 0, 0x50, 0, 1], // reserved byte
        vec![1, b'S', b'P', 0, 0, 0x50, 0, 0],
    ];
    for c in &cases {
        expect_dropped(port, c);
    }
    // Every prefix of a good header, then close.
    let h = encode_header(PUSH);
    for cut in 0..8 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(&h[..cut]).unwrap();
    }
    assert!(
        !a.busy() || a.result().is_ok(),
        "accept failed on bad input"
    );
    a.cancel();
    a.wait();
    good_peer_works(&l, port);
    // Every failure was counted by cause: 5 bad headers, 8 hang-ups mid-header.
    assert!(
        eventually(Duration::from_secs(5), || {
            let s = l.stats();
            s.handshake_proto == 5 && s.handshake_disconnect == 8
        }),
        "{:?}",
        l.stats()
    );
    let s = l.stats();
    assert_eq!((s.handshake_timeout, s.handshake_other), (0, 0));
    assert!(s.accepted >= 1);
}

#[test]
fn slow_loris_is_dropped_at_the_deadline_and_does_not_block_others() {
    let (l, port) = tcp_listener();
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.write_all(&encode_header(PUSH)[..7]).unwrap();
    // Others connect right away while the idle one stalls.
    good_peer_works(&l, port);
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let mut n = 0;
    let started = std::time::Instant::now();
    loop {
        match idle.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    assert_eq!(n, 8, "our header came first");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(3), "dropped after {waited:?}");
    assert!(eventually(Duration::from_secs(2), || l.handshaking() == 0));
    assert_eq!(l.stats().handshake_timeout, 1);
}

/// A raw client that did a valid handshake; returns the listener's pipe.
fn raw_client(l: &TransportListener, port: u16) -> (TcpStream, nanoport_transports::BoxPipe) {
    let a = waitable();
    l.accept_aio(&a);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&encode_header(PUSH)).unwrap();
    let mut h = [0u8; 8];
    s.read_exact(&mut h).unwrap();
    assert_eq!(h, encode_header(PULL));
    a.wait();
    (
        s,
        a.take_output::<nanoport_transports::BoxPipe>()
            .expect("accepted"),
    )
}

#[test]
fn bad_frames_fail_the_receive_and_drop_the_pipe() {
    let (l, port) = tcp_listener();
    for (len, err) in [
        (1u64 << 63, Error::MsgSize),
        (u64::MAX, Error::MsgSize),
        (1 << 60, Error::MsgSize),
        (1001, Error::MsgSize),
    ] {
        let (mut s, p) = raw_client(&l, port);
        s.write_all(&len.to_be_bytes()).unwrap();
        assert_eq!(recv(&p).err(), Some(err), "length {len:#x}");
        // The connection is dropped: the raw peer sees EOF/reset.
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 1];
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
    }
    // Exactly the limit is fine.
    let (mut s, p) = raw_client(&l, port);
    s.write_all(&1000u64.to_be_bytes()).unwrap();
    s.write_all(&[5u8; 1000]).unwrap();
    assert_eq!(recv(&p).unwrap().len(), 1000);
    // A peer that stops mid-frame: the receive stays pending until the peer goes away.
    let (mut s, p) = raw_client(&l, port);
    s.write_all(&500u64.to_be_bytes()).unwrap();
    s.write_all(&[1u8; 10]).unwrap();
    let a = waitable();
    p.recv_aio(&a);
    assert!(a.busy());
    drop(s);
    a.wait();
    assert_eq!(a.result(), Err(Error::ConnShut));
    good_peer_works(&l, port);
}

#[test]
fn bad_ipc_type_byte_is_proto() {
    let url = ipc_path("bad");
    let l = TransportListener::bind(&Url::parse(&url).unwrap(), PULL, short_opts()).unwrap();
    let a = waitable();
    l.accept_aio(&a);
    let mut s = UnixStream::connect(url.strip_prefix("ipc://").unwrap()).unwrap();
    s.write_all(&encode_header(PUSH)).unwrap();
    let mut h = [0u8; 8];
    s.read_exact(&mut h).unwrap();
    a.wait();
    let p = a.take_output::<nanoport_transports::BoxPipe>().unwrap();
    s.write_all(&[2, 0, 0, 0, 0, 0, 0, 0, 1, 9]).unwrap();
    assert_eq!(recv(&p).err(), Some(Error::Proto));
}
