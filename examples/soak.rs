//! Soak test: req/rep and push/pull at full speed over tcp (or ipc, inproc) with many pipes, for a set
//! time, checking that every message arrives exactly once where the protocol promises
//! delivery, and printing resident memory over time.
//!
//! `cargo run --release --example soak -- [SECONDS] [tcp|ipc|inproc]` (default 60 s over
//! tcp).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nanoport::{Message, Socket};

const REQ_CLIENTS: usize = 8;
const PUSHERS: usize = 8;

fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A fresh address on `transport` (`tcp`, `ipc` or `inproc`).
fn free_url(transport: &str, tag: &str) -> String {
    match transport {
        "inproc" => format!("inproc://soak-{tag}"),
        "ipc" => format!("ipc:///tmp/nanoport-soak-{}-{tag}.sock", std::process::id()),
        _ => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port())
        }
    }
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let transport = std::env::args().nth(2).unwrap_or_else(|| "tcp".into());
    let stop = Arc::new(AtomicBool::new(false));
    let round_trips = Arc::new(AtomicU64::new(0));
    let pushed = Arc::new(AtomicU64::new(0));

    // req/rep: one rep socket with 4 contexts, 8 req sockets each on its own pipe. Each
    // request carries (client, sequence); the reply must echo exactly that.
    let rep_url = free_url(&transport, "rep");
    let rep = Socket::rep0().unwrap();
    rep.listen(&rep_url).unwrap();
    let mut threads = Vec::new();
    for _ in 0..4 {
        let ctx = rep.context().unwrap();
        threads.push(std::thread::spawn(move || {
            while let Ok(m) = ctx.recv() {
                if ctx.send(m).is_err() {
                    break;
                }
            }
        }));
    }
    let mut clients = Vec::new();
    for c in 0..REQ_CLIENTS as u32 {
        let req = Socket::req0().unwrap();
        req.set_recv_timeout(Duration::from_secs(30)).unwrap();
        req.dial(&rep_url).unwrap();
        let (stop, rt) = (stop.clone(), round_trips.clone());
        clients.push(std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut m = Message::new();
                m.append_u32(c);
                m.append_u64(seq);
                req.send(m).expect("request");
                let mut r = req.recv().expect("reply (lost?)");
                assert_eq!(r.trim_u32().unwrap(), c, "reply for another client");
                assert_eq!(
                    r.trim_u64().unwrap(),
                    seq,
                    "reply out of order or duplicated"
                );
                seq += 1;
                rt.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // push/pull: 8 pushers into one pull; every (pusher, sequence) must arrive exactly once.
    let pull_url = free_url(&transport, "pull");
    let pull = Socket::pull0().unwrap();
    pull.listen(&pull_url).unwrap();
    pull.set_recv_timeout(Duration::from_secs(5)).unwrap();
    let mut pushers = Vec::new();
    for p in 0..PUSHERS as u32 {
        let push = Socket::push0().unwrap();
        push.dial(&pull_url).unwrap();
        let (stop, n) = (stop.clone(), pushed.clone());
        pushers.push(std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut m = Message::new();
                m.append_u32(p);
                m.append_u64(seq);
                push.send(m).expect("push");
                seq += 1;
                n.fetch_add(1, Ordering::Relaxed);
            }
            seq
        }));
    }
    let receiver = std::thread::spawn(move || {
        let mut next = [0u64; PUSHERS];
        let mut seen = HashSet::new();
        let mut count = 0u64;
        while let Ok(mut m) = pull.recv() {
            let p = m.trim_u32().unwrap() as usize;
            let s = m.trim_u64().unwrap();
            assert!(seen.insert((p, s)), "duplicate push message {p}/{s}");
            assert_eq!(
                s, next[p],
                "push message {p}/{s} out of order (expected {})",
                next[p]
            );
            next[p] += 1;
            seen.remove(&(p, s));
            count += 1;
        }
        (count, next)
    });

    let start = Instant::now();
    let rss0 = rss_kib();
    println!("soak: {secs} s, {REQ_CLIENTS} req pipes, {PUSHERS} push pipes, {transport}; RSS at start {rss0} KiB");
    let mut last = (0, 0);
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(10).min(Duration::from_secs(secs)));
        let (rt, pu) = (
            round_trips.load(Ordering::Relaxed),
            pushed.load(Ordering::Relaxed),
        );
        println!(
            "t={:>4}s  req/rep {:>8}/s  push/pull {:>8}/s  RSS {} KiB",
            start.elapsed().as_secs(),
            (rt - last.0) / 10,
            (pu - last.1) / 10,
            rss_kib()
        );
        last = (rt, pu);
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("a req client failed");
    }
    let sent: Vec<u64> = pushers
        .into_iter()
        .map(|t| t.join().expect("a pusher failed"))
        .collect();
    let (received, next) = receiver.join().expect("the receiver failed");
    let total: u64 = sent.iter().sum();
    assert_eq!(
        next.to_vec(),
        sent,
        "per-pusher counts differ: something was lost"
    );
    assert_eq!(received, total);
    rep.close().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    println!(
        "soak OK: {} req/rep round trips, {} push/pull messages, each exactly once and in order; RSS {} -> {} KiB",
        round_trips.load(Ordering::Relaxed),
        total,
        rss0,
        rss_kib()
    );
}
