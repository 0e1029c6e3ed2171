//! 64 B req/rep round trips driven entirely by aio callbacks, both ends, with the
//! callbacks on workers (`Aio::new`, NNG's way) and on the completing thread
//! (`Aio::new_direct`), in alternating rounds.
//!
//! `cargo run --release -p nanoport-bench --example direct_rt -- [rounds] [trips]`
//! (defaults 5 and 20,000); prefix `taskset -c 1` to pin to one CPU.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use nanoport::{Aio, Message, Result, Socket};

fn make(direct: bool, cb: impl Fn(&Aio) + Send + Sync + 'static) -> Result<Aio> {
    if direct {
        Aio::new_direct(cb)
    } else {
        Aio::new(cb)
    }
}

/// Runs `trips` round trips over `url`; returns the mean round trip.
fn run(url: &str, direct: bool, trips: u64) -> Duration {
    let rep = Socket::rep0().unwrap();
    rep.listen(url).unwrap();
    let req = Socket::req0().unwrap();
    req.dial(url).unwrap();

    // rep: receive, send back, receive again.
    let r = rep.clone();
    let rep_aio = make(direct, move |a: &Aio| {
        if a.result().is_err() {
            return;
        }
        match a.take_msg() {
            Some(m) => {
                a.set_msg(m);
                r.send_aio(a);
            }
            None => r.recv_aio(a),
        }
    })
    .unwrap();
    rep.recv_aio(&rep_aio);

    // req: send, receive the reply, count, send again until done.
    let left = Arc::new(AtomicU64::new(trips));
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    let q = req.clone();
    let l = left.clone();
    let req_aio = make(direct, move |a: &Aio| {
        if a.result().is_err() {
            let _ = done_tx.try_send(());
            return;
        }
        match a.take_msg() {
            Some(reply) => {
                if l.fetch_sub(1, Ordering::Relaxed) == 1 {
                    let _ = done_tx.try_send(());
                    return;
                }
                a.set_msg(reply);
                q.send_aio(a);
            }
            None => q.recv_aio(a),
        }
    })
    .unwrap();
    let start = Instant::now();
    req_aio.set_msg(Message::from(vec![7u8; 64]));
    req.send_aio(&req_aio);
    done_rx.recv().unwrap();
    let took = start.elapsed();
    req_aio.stop();
    rep_aio.stop();
    took / trips as u32
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let trips: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let mut port = 23_000 + (std::process::id() % 1000) as u16 * 4;
    println!("64 B req/rep round trip, callbacks on both ends, mean of {trips} per round");
    for transport in ["tcp", "ipc"] {
        let mut worker = Vec::new();
        let mut direct = Vec::new();
        for _ in 0..rounds {
            for d in [false, true] {
                port += 1;
                let url = match transport {
                    "tcp" => format!("tcp://127.0.0.1:{port}"),
                    _ => format!("ipc:///tmp/np-direct-rt-{}-{port}.sock", std::process::id()),
                };
                let rt = run(&url, d, trips);
                if d { &mut direct } else { &mut worker }.push(rt.as_secs_f64() * 1e6);
                if let Some(p) = url.strip_prefix("ipc://") {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        println!(
            "{transport}: Aio::new {:.1} µs, Aio::new_direct {:.1} µs (median of {rounds} rounds)",
            med(&mut worker),
            med(&mut direct)
        );
    }
}
