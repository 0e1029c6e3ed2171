//! Round-trip latency of nanoport, libnng and the raw floor, taken in alternating blocks so
//! that a noisy host moves all three alike.
//!
//! Criterion measures one contender after the other; on a shared 2-vCPU machine the cost
//! of a cross-CPU wake-up drifts by 2-3x within a minute, so two figures taken a minute
//! apart can give any ratio. Here every round runs one block of each contender back to
//! back, and the figure that matters is the median over rounds of the per-round ratio.
//!
//! ```text
//! cargo build --release -p nanoport-bench --features libnng,libzmq --example rt_interleaved
//! target/release/examples/rt_interleaved [inproc|ipc|tcp] [SIZE] [ROUNDS] [BLOCK]
//! ```
//!
//! Defaults: all three transports, 64 B, 15 rounds of 2,000 round trips per contender.
//! Every round builds fresh contenders (new sockets, new threads). Prints, per transport,
//! the median, minimum and maximum of each contender's block mean, and of the per-round
//! ratios of nanoport to each other contender (libzmq only with the `libzmq` feature).
//! The inproc `raw` is two threads handing the body over through a mutex and a condition
//! variable (`bench/src/handoff.rs`).

use std::time::Instant;

use nanoport_bench::handoff::HandoffRoundTrip;
use nanoport_bench::nng::NngRoundTrip;
use nanoport_bench::np::NpRoundTrip;
use nanoport_bench::raw::RawRoundTrip;
use nanoport_bench::{RoundTrip, Transport};

/// Mean microseconds per round trip over `n` round trips.
fn block(c: &mut dyn RoundTrip, n: u32) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        c.round_trip();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

/// (median, min, max) of a non-empty sample.
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

/// A fresh contender of each kind, in report order.
fn contenders(t: Transport, size: usize) -> Vec<(&'static str, Box<dyn RoundTrip>)> {
    let raw: Box<dyn RoundTrip> = match t {
        Transport::Inproc => Box::new(HandoffRoundTrip::new(size)),
        _ => Box::new(RawRoundTrip::new(t, size)),
    };
    let mut v: Vec<(&'static str, Box<dyn RoundTrip>)> = vec![
        ("nanoport", Box::new(NpRoundTrip::new(t, size))),
        ("libnng", Box::new(NngRoundTrip::new(t, size))),
        ("raw", raw),
    ];
    #[cfg(feature = "libzmq")]
    v.push((
        "libzmq",
        Box::new(nanoport_bench::libzmq::ZmqRoundTrip::new(t, size)),
    ));
    v
}

fn run(t: Transport, size: usize, rounds: usize, n: u32) {
    let mut means: Vec<Vec<f64>> = Vec::new();
    let mut names = Vec::new();
    for round in 0..rounds {
        // Fresh sockets and threads every round: where the kernel first puts a pair of
        // threads decides whether their wake-ups cross CPUs, and it sticks for the pair's
        // life, so one long-lived pair would sample one placement only.
        let mut cs = contenders(t, size);
        names = cs.iter().map(|(name, _)| *name).collect();
        means.resize_with(cs.len(), || Vec::with_capacity(rounds));
        for (_, c) in &mut cs {
            block(c.as_mut(), n / 4); // warm-up: connections, caches
        }
        // Rotate who goes first, so no contender always follows the same one.
        for k in 0..cs.len() {
            let i = (round + k) % cs.len();
            means[i].push(block(cs[i].1.as_mut(), n));
        }
    }
    println!("{} {size} B, {rounds} rounds of {n} round trips:", t.name());
    for (name, m) in names.iter().zip(&means) {
        let (med, lo, hi) = spread(m);
        println!("  {name:9} median {med:7.1} us  (min {lo:.1}, max {hi:.1})");
    }
    for (j, against) in names.iter().enumerate().skip(1) {
        let ratios: Vec<f64> = means[0].iter().zip(&means[j]).map(|(a, b)| a / b).collect();
        let (med, lo, hi) = spread(&ratios);
        println!("  nanoport/{against:6} per round: median {med:.2} (min {lo:.2}, max {hi:.2})");
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "all".into());
    let size = args.next().map_or(64, |s| s.parse().expect("SIZE"));
    let rounds = args.next().map_or(15, |s| s.parse().expect("ROUNDS"));
    let n = args.next().map_or(2000, |s| s.parse().expect("BLOCK"));
    for t in Transport::ALL {
        if which == "all" || which == t.name() {
            run(t, size, rounds, n);
        }
    }
}
