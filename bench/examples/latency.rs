//! Round-trip latency distributions: p50, p99, p99.9 and max over at least 100,000 req/rep
//! round trips per contender (nanoport, libnng, libzmq) and transport, one request
//! outstanding, every round trip timed on its own.
//!
//! ```text
//! cargo build --release -p nanoport-bench --features libnng,libzmq --example latency
//! target/release/examples/latency [inproc|ipc|tcp|all] [SIZE] [ROUND_TRIPS] [CHUNKS]
//! taskset -c 1 target/release/examples/latency            # all on one CPU
//! ```
//!
//! Defaults: all three transports, 64 B, 100,000 round trips per contender, taken in 10
//! chunks. The contenders take turns chunk by chunk (who goes first rotates), so a noisy
//! neighbour on a shared machine lands on all of them alike instead of on whichever ran
//! during it. Each contender is built once per transport and warmed up with 10,000 round
//! trips first (connection set up, caches and the allocator's free lists warm). The
//! contenders are those of `benches/vs_libnng.rs`: a req socket in this thread, a rep
//! echo thread, every request a copy of one body (`send(&[u8])`, `nng_send`,
//! `zmq_send`); the echo sends back the message it received.
//!
//! Each round trip is recorded in nanoseconds in an HDR histogram (3 significant
//! digits), so the tail percentiles are exact to 0.1 % however long the tail; a sorted
//! `Vec` of samples would do for one run, but merging chunks and printing percentiles is
//! what the histogram is for.

use std::time::Instant;

use hdrhistogram::Histogram;
use nanoport_bench::nng::NngRoundTrip;
use nanoport_bench::np::NpRoundTrip;
use nanoport_bench::{RoundTrip, Transport};

fn contenders(t: Transport, size: usize) -> Vec<(&'static str, Box<dyn RoundTrip>)> {
    #[allow(unused_mut)] // pushed to with the `libzmq` feature only
    let mut v: Vec<(&'static str, Box<dyn RoundTrip>)> = vec![
        ("nanoport", Box::new(NpRoundTrip::new(t, size))),
        ("libnng", Box::new(NngRoundTrip::new(t, size))),
    ];
    #[cfg(feature = "libzmq")]
    v.push((
        "libzmq",
        Box::new(nanoport_bench::libzmq::ZmqRoundTrip::new(t, size)),
    ));
    v
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn run(t: Transport, size: usize, n: u64, chunks: u64) {
    let mut cs = contenders(t, size);
    let mut hists: Vec<Histogram<u64>> = cs
        .iter()
        .map(|_| Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds"))
        .collect();
    for (_, c) in &mut cs {
        for _ in 0..10_000 {
            c.round_trip();
        }
    }
    let per_chunk = n.div_ceil(chunks);
    for chunk in 0..chunks {
        for k in 0..cs.len() {
            let i = (chunk as usize + k) % cs.len();
            let (c, h) = (&mut cs[i].1, &mut hists[i]);
            for _ in 0..per_chunk {
                let t0 = Instant::now();
                c.round_trip();
                let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                h.saturating_record(ns.max(1));
            }
        }
    }
    println!(
        "{} {size} B, {} round trips each, us:   p50      p99    p99.9      max     mean",
        t.name(),
        per_chunk * chunks
    );
    for ((name, _), h) in cs.iter().zip(&hists) {
        println!(
            "  {name:9} {:>29.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            us(h.value_at_quantile(0.5)),
            us(h.value_at_quantile(0.99)),
            us(h.value_at_quantile(0.999)),
            us(h.max()),
            h.mean() / 1000.0,
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "all".into());
    let size = args.next().map_or(64, |s| s.parse().expect("SIZE"));
    let n = args
        .next()
        .map_or(100_000, |s| s.parse().expect("ROUND_TRIPS"));
    let chunks = args
        .next()
        .map_or(10, |s| s.parse::<u64>().expect("CHUNKS"))
        .max(1);
    for t in Transport::ALL {
        if which == "all" || which == t.name() {
            run(t, size, n, chunks);
        }
    }
}
