//! The 64 B req/rep round trip (blocking send and receive, echo thread in the same
//! process) under each idle strategy, beside libnng and libzmq at their defaults, in
//! alternating blocks; with the CPU each round trip costs (user + system time of the
//! whole process, both ends), the price of spinning.
//!
//! ```text
//! cargo build --release -p nanoport-bench --features libnng,libzmq --example idle_rt
//! target/release/examples/idle_rt [ROUNDS] [BLOCK]        # unpinned
//! taskset -c 1 target/release/examples/idle_rt            # pinned to one CPU
//! ```
//!
//! Defaults: 7 rounds of 2,000 round trips per contender and transport. Prints the median
//! over rounds of µs per round trip and CPU µs per round trip.

use std::time::{Duration, Instant};

use nanoport::engine::{set_idle_strategy, IdleStrategy};
use nanoport_bench::libzmq::ZmqRoundTrip;
use nanoport_bench::nng::NngRoundTrip;
use nanoport_bench::np::NpRoundTrip;
use nanoport_bench::{RoundTrip, Transport};

/// User + system CPU time of this process.
fn cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct we pass; RUSAGE_SELF is always valid.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let t = |tv: libc::timeval| {
        Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
    };
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let block: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let spin = Duration::from_micros(100);
    let names = [
        "nanoport park",
        "nanoport spin 100µs",
        "nanoport busy-spin",
        "libnng",
        "libzmq",
    ];
    println!("64 B req/rep, {rounds} rounds of {block}: µs per round trip / CPU µs per round trip (median)");
    for t in [Transport::Tcp, Transport::Ipc] {
        let mut wall = vec![Vec::new(); names.len()];
        let mut cpus = vec![Vec::new(); names.len()];
        for _ in 0..rounds {
            for (i, _) in names.iter().enumerate() {
                set_idle_strategy(match i {
                    1 => IdleStrategy::SpinThenPark(spin),
                    2 => IdleStrategy::BusySpin,
                    _ => IdleStrategy::Park,
                });
                let mut c: Box<dyn RoundTrip> = match i {
                    0..=2 => Box::new(NpRoundTrip::new(t, 64)),
                    3 => Box::new(NngRoundTrip::new(t, 64)),
                    _ => Box::new(ZmqRoundTrip::new(t, 64)),
                };
                for _ in 0..200 {
                    c.round_trip();
                }
                let (c0, t0) = (cpu(), Instant::now());
                for _ in 0..block {
                    c.round_trip();
                }
                let el = t0.elapsed().as_secs_f64() * 1e6 / f64::from(block);
                let cp = (cpu() - c0).as_secs_f64() * 1e6 / f64::from(block);
                wall[i].push(el);
                cpus[i].push(cp);
                drop(c);
                // Park again so the next contender's setup and teardown do not spin.
                set_idle_strategy(IdleStrategy::Park);
            }
        }
        println!("{t:?}:");
        for (i, n) in names.iter().enumerate() {
            println!(
                "  {n:<22} {:>7.1} µs  {:>7.1} CPU µs",
                median(&mut wall[i]),
                median(&mut cpus[i])
            );
        }
    }
}
