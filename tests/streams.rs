//! Byte streams keep NNG's (and asio's) promises: a completion never runs inside the call
//! that started it, a partial send says how many bytes went, end of stream is `ConnShut`.

mod common;

use std::cell::Cell;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use nanoport::stream::{Stream, StreamDialer, StreamListener};
use nanoport::{Aio, Error, Message};

thread_local! {
    /// Set on a thread while it is inside a call that starts an operation.
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `start` marked as "inside the initiating call".
fn initiate(start: impl FnOnce()) {
    IN_CALL.with(|c| c.set(true));
    start();
    IN_CALL.with(|c| c.set(false));
}

/// What a probe's callback reports: the result, and whether it ran inside an initiating
/// call on its thread.
type Report = mpsc::Receiver<(Result<(), Error>, bool)>;

/// An aio whose callback reports (result, whether it ran inside an initiating call on
/// its thread).
fn probe() -> (Aio, Report) {
    let (tx, rx) = mpsc::channel();
    let aio = Aio::new(move |a: &Aio| {
        let _ = tx.send((a.result(), IN_CALL.with(Cell::get)));
    })
    .unwrap();
    (aio, rx)
}

fn outcome(rx: &Report) -> Result<(), Error> {
    let (r, inside) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the operation completed");
    assert!(!inside, "a completion ran inside the call that started it");
    r
}

fn pair() -> (Stream, Stream) {
    let l = StreamListener::listen("tcp://127.0.0.1:0").unwrap();
    let d = StreamDialer::open(&format!("tcp://127.0.0.1:{}", l.port().unwrap())).unwrap();
    let (a, ra) = probe();
    let (b, rb) = probe();
    initiate(|| l.accept_aio(&a));
    initiate(|| d.dial_aio(&b));
    outcome(&ra).unwrap();
    outcome(&rb).unwrap();
    (a.take_output().unwrap(), b.take_output().unwrap())
}

#[test]
fn no_completion_runs_inside_the_call_that_started_it() {
    let (server, client) = pair();

    // Success paths.
    let (s, rs) = probe();
    s.set_msg(Message::from("abc"));
    initiate(|| client.send_aio(&s));
    outcome(&rs).unwrap();
    let (r, rr) = probe();
    initiate(|| server.recv_aio(&r, 16));
    outcome(&rr).unwrap();
    assert!(r.count() > 0);

    // Failures known at once: still through a worker, never inline.
    client.close();
    let (s, rs) = probe();
    s.set_msg(Message::from("x"));
    initiate(|| client.send_aio(&s));
    assert_eq!(outcome(&rs), Err(Error::Closed));
    assert!(
        s.take_msg().is_some(),
        "a failed send leaves the message on the aio"
    );
    let (r, rr) = probe();
    initiate(|| client.recv_aio(&r, 16));
    assert_eq!(outcome(&rr), Err(Error::Closed));

    let l = StreamListener::listen("tcp://127.0.0.1:0").unwrap();
    l.close();
    let (a, ra) = probe();
    initiate(|| l.accept_aio(&a));
    assert_eq!(outcome(&ra), Err(Error::Closed));

    let d = StreamDialer::open("tcp://127.0.0.1:1").unwrap();
    d.close();
    let (b, rb) = probe();
    initiate(|| d.dial_aio(&b));
    assert_eq!(outcome(&rb), Err(Error::Closed));
}

#[test]
fn a_partial_send_reports_the_bytes_that_went_and_the_rest_follows() {
    let (server, client) = pair();
    // Bigger than the loopback socket buffers can hold while nobody reads.
    let body: Vec<u8> = (0..24 << 20).map(|i: u32| (i % 251) as u8).collect();
    let total = body.len();
    let send = Aio::new_waitable().unwrap();
    send.set_msg(Message::from(body.clone()));
    client.send_aio(&send);
    send.wait();
    send.result().unwrap();
    let first = send.count();
    assert!(
        first > 0 && first < total,
        "the first send took {first} of {total} bytes: not partial"
    );

    // Read everything on another thread while the rest is sent, by count.
    let reader = std::thread::spawn(move || {
        let aio = Aio::new_waitable().unwrap();
        let mut got = Vec::with_capacity(total);
        while got.len() < total {
            server.recv_aio(&aio, 1 << 20);
            aio.wait();
            aio.result().unwrap();
            got.extend_from_slice(aio.take_msg().unwrap().body());
        }
        got
    });
    let mut sent = first;
    while sent < total {
        send.set_msg(Message::from(&body[sent..]));
        client.send_aio(&send);
        send.wait();
        send.result().unwrap();
        assert!(send.count() > 0);
        sent += send.count();
    }
    assert_eq!(sent, total);
    let got = reader.join().unwrap();
    assert!(
        got == body,
        "the bytes received are the bytes sent, once each"
    );
}

#[test]
fn a_plain_tcp_peer_talks_to_a_stream_and_its_close_is_conn_shut() {
    let l = StreamListener::listen("tcp://127.0.0.1:0").unwrap();
    let port = l.port().unwrap();
    let peer = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"from std").unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        buf
    });
    let accept = Aio::new_waitable().unwrap();
    l.accept_aio(&accept);
    accept.wait();
    let s: Stream = accept.take_output().unwrap();
    let aio = Aio::new_waitable().unwrap();
    let mut got = Vec::new();
    while got.len() < 8 {
        s.recv_aio(&aio, 64);
        aio.wait();
        got.extend_from_slice(aio.take_msg().unwrap().body());
    }
    assert_eq!(got, b"from std");
    aio.set_msg(Message::from("pong"));
    s.send_aio(&aio);
    aio.wait();
    assert_eq!(aio.count(), 4);
    assert_eq!(&peer.join().unwrap(), b"pong");
    // The peer has closed: the next receive says so.
    s.recv_aio(&aio, 64);
    aio.wait();
    assert_eq!(aio.result(), Err(Error::ConnShut));
}

#[test]
fn stream_urls_that_are_not_plain_sockets_are_refused() {
    for url in ["inproc://x", "ws://127.0.0.1:1/x", "tls+tcp://127.0.0.1:1"] {
        assert_eq!(StreamDialer::open(url).err(), Some(Error::NotSup), "{url}");
    }
    assert_eq!(
        StreamListener::listen("tcp://")
            .err()
            .map(|e| e == Error::AddrInval || e == Error::NotSup),
        Some(true)
    );
}
