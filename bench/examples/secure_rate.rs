//! Quick numbers for nanoport (and, with the `libnng-system` feature, Debian's libnng
//! 1.5.2) over tcp, tls+tcp, ws and wss, without criterion: the median of `ROUNDS` runs
//! of a 64 B req/rep round trip (µs) and of 64 B and 64 KiB push/pull streams
//! (messages/s).
//!
//! ```text
//! cargo run --release -p nanoport-bench --example secure_rate [ROUNDS] [TRANSPORT]
//! cargo run --release -p nanoport-bench --features libnng-system --example secure_rate 5
//! NP_ONLY=push64 ...   # one measurement (rtt, push64, push64k), for profiling
//! ```

use std::time::Instant;

use nanoport_bench::secure::{SecRoundTrip, SecStream, Secure};
use nanoport_bench::{RoundTrip, Stream};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

type MkRt = fn(Secure, usize) -> Box<dyn RoundTrip>;
type MkStream = fn(Secure, usize) -> Box<dyn Stream>;

fn contenders() -> Vec<(&'static str, MkRt, MkStream)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, MkRt, MkStream)> = vec![(
        "nanoport",
        |t, n| Box::new(SecRoundTrip::new(t, n)),
        |t, n| Box::new(SecStream::new(t, n)),
    )];
    #[cfg(feature = "libnng-system")]
    v.push((
        "libnng",
        |t, n| Box::new(nanoport_bench::nng15::NngSecRoundTrip::new(t, n)),
        |t, n| Box::new(nanoport_bench::nng15::NngSecStream::new(t, n)),
    ));
    v
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let only = std::env::args().nth(2);
    let only_m = std::env::var("NP_ONLY").ok();
    let want = |m: &str| only_m.as_deref().is_none_or(|o| o == m);
    println!("transport  library   rtt64B_us  push64B_msg_s  push64KiB_msg_s");
    for t in Secure::ALL {
        if only.as_deref().is_some_and(|o| o != t.name()) {
            continue;
        }
        for (lib, mk_rt, mk_stream) in contenders() {
            let mut lat = vec![0.0];
            if want("rtt") {
                let mut rt = mk_rt(t, 64);
                lat.clear();
                for _ in 0..rounds {
                    let n = 2000;
                    let start = Instant::now();
                    for _ in 0..n {
                        rt.round_trip();
                    }
                    lat.push(start.elapsed().as_secs_f64() * 1e6 / n as f64);
                }
            }
            let mut rates = Vec::new();
            for (size, n, m) in [(64usize, 100_000u64, "push64"), (65536, 3_000, "push64k")] {
                let mut r = vec![0.0];
                if want(m) {
                    let mut s = mk_stream(t, size);
                    r.clear();
                    for _ in 0..rounds {
                        let d = s.stream(n);
                        r.push(n as f64 / d.as_secs_f64());
                    }
                }
                rates.push(median(r));
            }
            println!(
                "{:<9}  {:<8}  {:>9.1}  {:>13.0}  {:>15.0}",
                t.name(),
                lib,
                median(lat),
                rates[0],
                rates[1]
            );
        }
    }
}
