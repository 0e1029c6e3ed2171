//! Rough numbers (run with `--ignored --nocapture`, ideally `--release`).

mod common;
use common::*;

use std::time::Instant;

use nanoport_engine::Message;
use nanoport_transports::EndpointOptions;

#[test]
#[ignore]
fn latency_and_throughput() {
    for url in [
        "inproc://perf".to_string(),
        ipc_path("perf"),
        "tcp://127.0.0.1:0".to_string(),
    ] {
        let (d, l, _x) = connect(&url, EndpointOptions::default());
        const N: usize = 10_000;
        let t = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..N {
                    let m = recv(&l).unwrap();
                    send(&l, m).unwrap();
                }
            });
            for _ in 0..N {
                send(&d, Message::from(&[0u8; 64][..])).unwrap();
                recv(&d).unwrap();
            }
        });
        let rtt = t.elapsed() / N as u32;
        const M: usize = 500;
        let big = Message::from(vec![7u8; 1 << 20]);
        let t = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..M {
                    recv(&l).unwrap();
                }
            });
            for _ in 0..M {
                send(&d, big.clone()).unwrap();
            }
        });
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "{url}: 64 B round trip {rtt:?}; 1 MiB x {M}: {:.0} MiB/s",
            M as f64 / secs
        );
    }
}
