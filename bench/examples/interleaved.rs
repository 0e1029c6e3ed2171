//! nanoport, libnng, libzmq and the raw floor measured in alternating blocks, so that a
//! noisy host moves them all alike: round trips (`rt`) or push/pull streams (`stream`).
//!
//! Criterion measures one contender after the other; on a shared 2-vCPU machine the cost
//! of a cross-CPU wake-up drifts by 2-3x within a minute, so two figures taken a minute
//! apart can give any ratio. Here every round runs one block of each contender back to
//! back, and the figure that matters is the median over rounds of the per-round ratio.
//!
//! ```text
//! cargo build --release -p nanoport-bench --features libnng,libzmq --example interleaved
//! target/release/examples/interleaved rt|stream|stream-defaults [inproc|ipc|tcp|all] [SIZE] [ROUNDS] [BLOCK]
//! ```
//!
//! `stream` sets every library alike (push's send buffer, libzmq's send high-water mark,
//! as below); `stream-defaults` sets no option on any socket: each library at its own
//! defaults (`Tuning::Defaults`), the figure a new user meets.
//!
//! Defaults: all three transports, 64 B, 15 rounds; a block is 2,000 round trips, or
//! 200,000 streamed messages. Every round builds fresh contenders (new sockets, new
//! threads): where the kernel first puts a pair of threads decides whether their
//! wake-ups cross CPUs, and that sticks for the pair's life. Prints, per transport, the
//! median, minimum and maximum of each contender's block figure (µs per round trip, or
//! messages/s), and of the per-round ratios of nanoport to each other contender (time
//! ratios for `rt`, rate ratios for `stream`; libzmq only with the `libzmq` feature).
//! The contenders are the criterion ones (`benches/vs_libnng.rs`), tuned alike: push's
//! send buffer 128 (`NPBENCH_SENDBUF`); the inproc `raw` is two threads handing the body
//! over through a mutex and a condition variable (`bench/src/handoff.rs`). Streams over ipc
//! and tcp add `rawq`, the raw floor whose sender writes each frame as many frames after
//! building it as push's send buffer is deep (`raw::send_delayed`).

use std::time::Instant;

use nanoport_bench::handoff::{HandoffRoundTrip, HandoffStream};
use nanoport_bench::nng::{NngRoundTrip, NngStream};
use nanoport_bench::np::{push_send_buffer, NpRoundTrip, NpStream};
use nanoport_bench::raw::{RawRoundTrip, RawStream};
use nanoport_bench::{RoundTrip, Stream, Transport, Tuning};

/// One contender's measurement in either mode.
enum Contender {
    Rt(Box<dyn RoundTrip>),
    Stream(Box<dyn Stream>),
}

impl Contender {
    /// µs per round trip, or messages/s, over a block of `n`.
    fn block(&mut self, n: u32) -> f64 {
        match self {
            Contender::Rt(c) => {
                let t = Instant::now();
                for _ in 0..n {
                    c.round_trip();
                }
                t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
            }
            Contender::Stream(c) => f64::from(n) / c.stream(u64::from(n)).as_secs_f64(),
        }
    }
}

/// (median, min, max) of a non-empty sample.
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

/// A fresh contender of each kind, in report order.
fn contenders(stream: Option<Tuning>, t: Transport, size: usize) -> Vec<(&'static str, Contender)> {
    let inproc = t == Transport::Inproc;
    let mut v: Vec<(&'static str, Contender)> = if let Some(tuning) = stream {
        let depth = match tuning {
            Tuning::Alike => usize::try_from(push_send_buffer()).unwrap_or(0),
            Tuning::Defaults => 0,
        };
        vec![
            (
                "nanoport",
                Contender::Stream(Box::new(NpStream::with_tuning(t, size, tuning))),
            ),
            (
                "libnng",
                Contender::Stream(Box::new(NngStream::with_tuning(t, size, tuning))),
            ),
            (
                "raw",
                Contender::Stream(if inproc {
                    Box::new(HandoffStream::new(size, depth))
                } else {
                    Box::new(RawStream::new(t, size))
                }),
            ),
        ]
        .into_iter()
        .chain((!inproc && depth > 0).then(|| {
            // The raw floor writing each frame as far behind its copy as a full send
            // buffer of the libraries' does (`raw::send_delayed`).
            (
                "rawq",
                Contender::Stream(Box::new(RawStream::with_send_depth(t, size, depth))),
            )
        }))
        .collect()
    } else {
        vec![
            (
                "nanoport",
                Contender::Rt(Box::new(NpRoundTrip::new(t, size))),
            ),
            (
                "libnng",
                Contender::Rt(Box::new(NngRoundTrip::new(t, size))),
            ),
            (
                "raw",
                Contender::Rt(if inproc {
                    Box::new(HandoffRoundTrip::new(size))
                } else {
                    Box::new(RawRoundTrip::new(t, size))
                }),
            ),
        ]
    };
    #[cfg(feature = "libzmq")]
    {
        use nanoport_bench::libzmq::{ZmqRoundTrip, ZmqStream};
        v.push((
            "libzmq",
            if let Some(tuning) = stream {
                Contender::Stream(Box::new(ZmqStream::with_tuning(t, size, tuning)))
            } else {
                Contender::Rt(Box::new(ZmqRoundTrip::new(t, size)))
            },
        ));
    }
    v
}

fn run(stream: Option<Tuning>, t: Transport, size: usize, rounds: usize, n: u32) {
    let mut figures: Vec<Vec<f64>> = Vec::new();
    let mut names = Vec::new();
    for round in 0..rounds {
        let mut cs = contenders(stream, t, size);
        names = cs.iter().map(|(name, _)| *name).collect();
        figures.resize_with(cs.len(), || Vec::with_capacity(rounds));
        for (_, c) in &mut cs {
            c.block((n / 4).max(1)); // warm-up: connections, caches
        }
        // Rotate who goes first, so no contender always follows the same one.
        for k in 0..cs.len() {
            let i = (round + k) % cs.len();
            figures[i].push(cs[i].1.block(n));
        }
    }
    let (what, unit) = if let Some(tuning) = stream {
        (
            match tuning {
                Tuning::Alike => "messages streamed (tuned alike)",
                Tuning::Defaults => "messages streamed (each library's defaults)",
            },
            "msg/s",
        )
    } else {
        ("round trips", "us")
    };
    println!("{} {size} B, {rounds} rounds of {n} {what}:", t.name());
    for (name, f) in names.iter().zip(&figures) {
        let (med, lo, hi) = spread(f);
        println!("  {name:9} median {med:10.1} {unit}  (min {lo:.1}, max {hi:.1})");
    }
    for (j, against) in names.iter().enumerate().skip(1) {
        let ratios: Vec<f64> = figures[0]
            .iter()
            .zip(&figures[j])
            .map(|(a, b)| a / b)
            .collect();
        let (med, lo, hi) = spread(&ratios);
        println!("  nanoport/{against:6} per round: median {med:.2} (min {lo:.2}, max {hi:.2})");
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let stream = match args.next().as_deref() {
        Some("rt") => None,
        Some("stream") => Some(Tuning::Alike),
        Some("stream-defaults") => Some(Tuning::Defaults),
        _ => {
            eprintln!(
                "usage: interleaved rt|stream|stream-defaults [inproc|ipc|tcp|all] [SIZE] [ROUNDS] [BLOCK]"
            );
            std::process::exit(2);
        }
    };
    let which = args.next().unwrap_or_else(|| "all".into());
    let size = args.next().map_or(64, |s| s.parse().expect("SIZE"));
    let rounds = args.next().map_or(15, |s| s.parse().expect("ROUNDS"));
    let n = args
        .next()
        .map_or(if stream.is_some() { 200_000 } else { 2000 }, |s| {
            s.parse().expect("BLOCK")
        });
    for t in Transport::ALL {
        if which == "all" || which == t.name() {
            run(stream, t, size, rounds, n);
        }
    }
}
