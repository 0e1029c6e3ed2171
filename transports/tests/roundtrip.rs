//! Pipe-level round trips over every transport.

mod common;
use common::*;

use std::time::Duration;

use nanoport_engine::Message;
use nanoport_transports::{BoxPipe, EndpointOptions};

fn payload(i: usize, size: usize) -> Vec<u8> {
    (0..size).map(|k| (i.wrapping_mul(31) + k) as u8).collect()
}

/// `n` messages one way with sizes cycling 0, 1, 1 KiB (and 1 MiB every 500th), then back.
fn exchange(a: &BoxPipe, b: &BoxPipe, n: usize) {
    let sizes = |i: usize| {
        if i % 500 == 499 {
            1 << 20
        } else {
            [0, 1, 1024][i % 3]
        }
    };
    std::thread::scope(|s| {
        let rx = s.spawn(|| {
            for i in 0..n {
                let m = recv(b).expect("recv");
                assert_eq!(m.body(), &payload(i, sizes(i))[..], "message {i}");
                assert_eq!(m.pipe().map(|p| p.id()), Some(b.id()));
            }
        });
        for i in 0..n {
            send(a, Message::from(payload(i, sizes(i)))).expect("send");
        }
        rx.join().unwrap();
    });
    // And back, with an SP header that must arrive in front of the body: in the body over
    // a stream, still in the header over inproc (the receiving protocol reads both).
    std::thread::scope(|s| {
        let rx = s.spawn(|| {
            for i in 0..100 {
                let m = recv(a).expect("recv back");
                let mut want = vec![0x80, 0, 0, i as u8];
                want.extend(payload(i, 10));
                assert_eq!([m.header(), m.body()].concat(), want);
            }
        });
        for i in 0..100 {
            let mut m = Message::from(payload(i, 10));
            m.header_append(&[0x80, 0, 0, i as u8]).unwrap();
            send(b, m).expect("send back");
        }
        rx.join().unwrap();
    });
}

fn concurrent_senders(a: &BoxPipe, b: &BoxPipe) {
    const PER: usize = 500;
    std::thread::scope(|s| {
        for t in 0..4u8 {
            s.spawn(move || {
                for i in 0..PER {
                    let mut body = vec![t; 2000];
                    body[..4].copy_from_slice(&(i as u32).to_be_bytes());
                    send(a, Message::from(body)).expect("send");
                }
            });
        }
        let mut next = [0u32; 4];
        for _ in 0..4 * PER {
            let m = recv(b).expect("recv");
            let body = m.body();
            assert_eq!(body.len(), 2000);
            let t = body[4] as usize;
            assert!(
                body[4..].iter().all(|&x| x as usize == t),
                "frames interleaved"
            );
            let i = u32::from_be_bytes(body[..4].try_into().unwrap());
            assert_eq!(i, next[t], "per-sender order");
            next[t] += 1;
        }
    });
}

fn full(url: &str) {
    let (d, l, _listener) = connect(url, EndpointOptions::default());
    assert_eq!(d.peer_protocol(), PULL);
    assert_eq!(l.peer_protocol(), PUSH);
    exchange(&d, &l, 3000);
    concurrent_senders(&d, &l);
    d.close();
    assert!(recv(&l).is_err());
}

#[test]
fn inproc_round_trip() {
    full(&format!("inproc://{}", unique("rt")));
}

#[test]
fn ipc_round_trip() {
    full(&ipc_path("rt"));
}

#[test]
fn abstract_round_trip() {
    full(&format!("abstract://{}", unique("rt")));
}

#[test]
fn tcp4_round_trip() {
    full("tcp://127.0.0.1:0");
}

#[test]
fn tcp6_round_trip() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback");
        return;
    }
    full("tcp6://[::1]:0");
}

#[test]
fn pipe_options() {
    let (d, l, _x) = connect("tcp://127.0.0.1:0", EndpointOptions::default());
    assert_eq!(d.option("tcp-nodelay").unwrap(), "true");
    assert_eq!(d.option("tcp-keepalive").unwrap(), "false");
    assert!(d
        .option("remote-address")
        .unwrap()
        .starts_with("tcp://127.0.0.1:"));
    assert_eq!(
        d.option("remote-address").unwrap(),
        l.option("local-address").unwrap()
    );
    assert_eq!(
        d.option("ipc:peer-pid"),
        Err(nanoport_engine::Error::NotSup)
    );
    let (d, _l, _x) = connect(&ipc_path("opt"), EndpointOptions::default());
    assert_eq!(
        d.option("ipc:peer-pid").unwrap(),
        std::process::id().to_string()
    );
    assert_eq!(d.option("tcp-nodelay"), Err(nanoport_engine::Error::NotSup));
    let name = unique("opt");
    let (d, _l, _x) = connect(&format!("inproc://{name}"), EndpointOptions::default());
    assert_eq!(
        d.option("remote-address").unwrap(),
        format!("inproc://{name}")
    );
}

#[test]
fn a_pipe_that_goes_quiet_gives_its_buffers_back() {
    // A burst grows the receiver's read buffer and leaves the sender spare staging
    // buffers; after one to two seconds of silence the idle sweep frees both, and the
    // pipe still works afterwards.
    for url in ["tcp://127.0.0.1:0".to_string(), ipc_path("idle")] {
        let (a, b, _l) = connect(&url, EndpointOptions::default());
        let n = 5000;
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..n {
                    send(&a, Message::from(payload(i, 64))).expect("send");
                }
            });
            for i in 0..n {
                assert_eq!(recv(&b).unwrap().body(), &payload(i, 64)[..]);
            }
        });
        assert!(
            b.buffered_bytes() > 0 || a.buffered_bytes() > 0,
            "{url}: the burst left no buffer to give back"
        );
        assert!(
            eventually(Duration::from_secs(10), || a.buffered_bytes() == 0
                && b.buffered_bytes() == 0),
            "{url}: still held after 10 s: sender {} B, receiver {} B",
            a.buffered_bytes(),
            b.buffered_bytes()
        );
        send(&a, Message::from(&b"after"[..])).unwrap();
        assert_eq!(recv(&b).unwrap().body(), b"after");
    }
}
