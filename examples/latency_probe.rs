//! Quick req/rep round-trip probe: `cargo run --release --example latency_probe [URL]`
//! (default: inproc, ipc and tcp in turn). One URL at a time suits `strace -f -c`.
use std::time::Instant;

use nanoport::Socket;

fn main() {
    let urls: Vec<String> = match std::env::args().nth(1) {
        Some(u) => vec![u],
        None => vec![
            "inproc://probe".into(),
            "ipc:///tmp/nanoport-probe.sock".into(),
            "tcp://127.0.0.1:45771".into(),
        ],
    };
    for url in &urls {
        let url = url.as_str();
        let rep = Socket::rep0().unwrap();
        rep.listen(url).unwrap();
        let req = Socket::req0().unwrap();
        req.dial(url).unwrap();
        let n = 20_000;
        let server = std::thread::spawn(move || {
            for _ in 0..n {
                let m = rep.recv().unwrap();
                rep.send(m).unwrap();
            }
        });
        let msg = [0u8; 64];
        for _ in 0..1000 {
            req.send(&msg[..]).unwrap();
            req.recv().unwrap();
        }
        let t = Instant::now();
        for _ in 0..n - 1000 {
            req.send(&msg[..]).unwrap();
            req.recv().unwrap();
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / (n - 1000) as f64;
        println!("{url:40} 64 B req/rep round trip: {us:.1} us");
        server.join().unwrap();
    }
}
