//! How long one flooded socket can keep the reactor from everyone else: a second socket's
//! worst wait while the first is flooded by a hostile peer.
//!
//! A raw TCP peer floods a victim socket as fast as the loopback takes it: a pull0 that a
//! thread drains, a sub0 holding 100,000 subscriptions that match none of the messages,
//! and a rep0 whose thread takes each request (parsing its backtrace) and drops it.
//! Meanwhile a rep0 on another port of the same process (two req0 clients, so the
//! reactor reads its pipes) answers one of them every 2 ms; the
//! example prints that round trip's median, p99 and maximum, flood by flood.
//!
//! `cargo run --release -p nanoport-bench --example fairness -- [PINGS]` (default 500).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nanoport::Socket;

/// The SP connection header announcing protocol `proto`.
fn sp_header(proto: u16) -> [u8; 8] {
    let p = proto.to_be_bytes();
    [0, b'S', b'P', 0, p[0], p[1], 0, 0]
}

/// A buffer of back-to-back tcp frames, each `payload` behind its 8-byte length.
fn frames(payload: &[u8], bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 64);
    while out.len() < bytes {
        out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// Connects to `port` as protocol `proto` and writes `batch` over and over until `stop`.
fn flood(port: u16, proto: u16, batch: Vec<u8>, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(&sp_header(proto)).unwrap();
    let mut peer = [0u8; 8];
    s.read_exact(&mut peer).unwrap();
    s.set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while !stop.load(Ordering::Relaxed) {
        match s.write(&batch) {
            Ok(n) => {
                sent.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

/// Round trips of the bystander req0/rep0 pair while `victim` is flooded.
fn measure(name: &str, victim: Socket, victim_proto_peer: u16, payload: Vec<u8>, pings: usize) {
    let port = victim.listen("tcp://127.0.0.1:0").unwrap().port().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let got = Arc::new(AtomicU64::new(0));
    let drain = {
        let (v, stop, got) = (victim.clone(), stop.clone(), got.clone());
        thread::spawn(move || {
            v.set_recv_timeout(Duration::from_millis(100)).unwrap();
            while !stop.load(Ordering::Relaxed) {
                if v.recv().is_ok() {
                    got.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let flooder = {
        let (stop, sent) = (stop.clone(), sent.clone());
        let batch = frames(&payload, 256 * 1024);
        thread::spawn(move || flood(port, victim_proto_peer, batch, stop, sent))
    };

    let rep = Socket::rep0().unwrap();
    let rport = rep.listen("tcp://127.0.0.1:0").unwrap().port().unwrap();
    let echo = {
        let rep = rep.clone();
        thread::spawn(move || {
            while let Ok(m) = rep.recv() {
                if rep.send(m).is_err() {
                    break;
                }
            }
        })
    };
    let req = Socket::req0().unwrap();
    req.set_recv_timeout(Duration::from_secs(30)).unwrap();
    req.dial(&format!("tcp://127.0.0.1:{rport}")).unwrap();
    // A second, idle client gives the rep two pipes, so its receives wait for the reactor
    // to read them (with one stream pipe the receiving thread reads it itself).
    let idle = Socket::req0().unwrap();
    idle.dial(&format!("tcp://127.0.0.1:{rport}")).unwrap();
    // Let the flood get going.
    thread::sleep(Duration::from_millis(200));
    let mut rtts = Vec::with_capacity(pings);
    let t0 = Instant::now();
    for i in 0..pings {
        let t = Instant::now();
        req.send(format!("ping {i}").as_str()).unwrap();
        req.recv().expect("the bystander answers");
        rtts.push(t.elapsed());
        thread::sleep(Duration::from_millis(2));
    }
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    rtts.sort();
    let pct = |p: f64| rtts[((rtts.len() as f64 * p) as usize).min(rtts.len() - 1)];
    println!(
        "{name:<28} bystander rtt p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}   flood {:>7.1} MB/s, victim took {:>9.0} msg/s",
        pct(0.5),
        pct(0.99),
        rtts[rtts.len() - 1],
        sent.load(Ordering::Relaxed) as f64 / secs / 1e6,
        got.load(Ordering::Relaxed) as f64 / secs,
    );
    victim.close().unwrap();
    rep.close().unwrap();
    req.close().unwrap();
    idle.close().unwrap();
    let _ = flooder.join();
    let _ = drain.join();
    let _ = echo.join();
}

fn main() {
    let pings: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500);
    const PUSH0: u16 = 0x50;
    const PUB0: u16 = 0x20;
    const REQ0: u16 = 0x30;

    // No flood: the bystander alone, for reference.
    let idle = Socket::pull0().unwrap();
    measure("no flood (pull0 idle)", idle, 0xffff, vec![0u8; 64], pings);

    measure(
        "pull0 flooded, 64 B",
        Socket::pull0().unwrap(),
        PUSH0,
        vec![1u8; 64],
        pings,
    );

    let sub = Socket::sub0().unwrap();
    for i in 0..100_000u32 {
        sub.subscribe(format!("topic-{i:08}").as_bytes()).unwrap();
    }
    let miss = b"topic-9999999x and then some bytes of body".to_vec();
    measure("sub0 100k subs, no match", sub, PUB0, miss, pings);

    // A request: one backtrace word with the top bit set, then a body.
    let mut request = 0x8000_0001u32.to_be_bytes().to_vec();
    request.extend_from_slice(&[2u8; 60]);
    measure(
        "rep0 flooded with requests",
        Socket::rep0().unwrap(),
        REQ0,
        request,
        pings,
    );
}
