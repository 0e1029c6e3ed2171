//! nanoport next to libnng and the raw-socket floor, in the same run.
//!
//! For each transport (inproc, ipc, tcp) and size (64 B, 1 KiB, 64 KiB) there are two
//! criterion groups, so the report shows the contenders of one measurement together:
//!
//! * `reqrep/<transport>/<size>`: one req0/rep0 round trip with one request outstanding
//!   (a rep0 echo thread on the other side). Time per round trip.
//! * `pushpull/<transport>/<size>`: push0 -> pull0 streaming, one sender thread, counted
//!   at the receiver, every library tuned alike (below). Criterion reports messages/s
//!   (`Throughput::Elements`).
//! * `pushpull-defaults/<transport>/<size>`: the same with no option set on any socket,
//!   each library at its own defaults (`Tuning::Defaults`: nanoport's and libnng's push
//!   send buffer 0, libzmq's high-water marks 1,000). The inproc floor's queue is then a
//!   rendezvous, and there is no `rawq`.
//!
//! Contenders in each group:
//! * `nanoport`;
//! * `libnng` (NNG 2.0.0, only with the `libnng` feature);
//! * `libzmq` (the system's libzmq 4.3, only with the `libzmq` feature);
//! * `raw`, the floor: over ipc and tcp, blocking std Unix/TCP streams with an 8-byte
//!   length prefix; over inproc, two threads handing the body over through a mutex and a
//!   condition variable (`bench/src/handoff.rs`, with a queue as deep as push's send
//!   buffer);
//! * `rawq` (push/pull over ipc and tcp): the raw floor whose sender writes each frame as
//!   many frames after building it as push's send buffer is deep, the distance a full
//!   send buffer puts between a message's copy and its write (`raw::send_delayed`). At
//!   64 KiB that is 8 MiB, out of cache; docs/benchmarks.md judges the 64 KiB target
//!   against this floor.
//!
//! Tuned alike: push's send buffer (libzmq: send high-water mark) is 128 messages; pull and
//! req/rep keep their defaults; every send copies the body (`send(&[u8])`, `nng_send`,
//! `zmq_send`). Threads: nanoport 2 workers + 1 reactor; libnng set to 2 task + 1 expire +
//! 1 poller thread (see bench/src/nng.rs); libzmq its default single I/O thread.
//!
//! Without the feature this bench still runs (nanoport against the raw floor), so the
//! default workspace build needs no C toolchain:
//!
//! ```text
//! cargo bench -p nanoport-bench --bench vs_libnng                     # nanoport + raw
//! cargo bench -p nanoport-bench --bench vs_libnng --features libnng   # + libnng (cmake)
//! cargo bench -p nanoport-bench --bench vs_libnng --features libnng,libzmq  # + libzmq
//! taskset -c 0 cargo bench -p nanoport-bench --bench vs_libnng --features libnng -- reqrep
//! ```
//!
//! Results: docs/benchmarks.md ("Where things stand", then the dated runs).

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use nanoport_bench::handoff::{HandoffRoundTrip, HandoffStream};
use nanoport_bench::np::{push_send_buffer, NpRoundTrip, NpStream};
use nanoport_bench::raw::{RawRoundTrip, RawStream};
use nanoport_bench::{RoundTrip, Stream, Transport, Tuning};

const SIZES: [usize; 3] = [64, 1024, 65536];

fn size_label(size: usize) -> String {
    if size >= 1024 {
        format!("{}KiB", size / 1024)
    } else {
        format!("{size}B")
    }
}

/// Short runs: the whole file should finish in a few minutes on 2 CPUs.
fn tune(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

fn bench_round_trip(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, mut c: impl RoundTrip) {
    g.bench_function(name, |b| b.iter(|| c.round_trip()));
}

fn bench_stream(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, mut c: impl Stream) {
    g.bench_function(name, |b| b.iter_custom(|iters| c.stream(iters)));
}

fn reqrep(c: &mut Criterion) {
    for t in Transport::ALL {
        for size in SIZES {
            let mut g = c.benchmark_group(format!("reqrep/{}/{}", t.name(), size_label(size)));
            tune(&mut g);
            bench_round_trip(&mut g, "nanoport", NpRoundTrip::new(t, size));
            #[cfg(feature = "libnng")]
            bench_round_trip(
                &mut g,
                "libnng",
                nanoport_bench::nng::NngRoundTrip::new(t, size),
            );
            #[cfg(feature = "libzmq")]
            bench_round_trip(
                &mut g,
                "libzmq",
                nanoport_bench::libzmq::ZmqRoundTrip::new(t, size),
            );
            if t == Transport::Inproc {
                bench_round_trip(&mut g, "raw", HandoffRoundTrip::new(size));
            } else {
                bench_round_trip(&mut g, "raw", RawRoundTrip::new(t, size));
            }
            g.finish();
        }
    }
}

fn pushpull(c: &mut Criterion) {
    for tuning in Tuning::BOTH {
        for t in Transport::ALL {
            for size in SIZES {
                let prefix = match tuning {
                    Tuning::Alike => "pushpull",
                    Tuning::Defaults => "pushpull-defaults",
                };
                let mut g =
                    c.benchmark_group(format!("{prefix}/{}/{}", t.name(), size_label(size)));
                tune(&mut g);
                g.throughput(Throughput::Elements(1));
                bench_stream(&mut g, "nanoport", NpStream::with_tuning(t, size, tuning));
                #[cfg(feature = "libnng")]
                bench_stream(
                    &mut g,
                    "libnng",
                    nanoport_bench::nng::NngStream::with_tuning(t, size, tuning),
                );
                #[cfg(feature = "libzmq")]
                bench_stream(
                    &mut g,
                    "libzmq",
                    nanoport_bench::libzmq::ZmqStream::with_tuning(t, size, tuning),
                );
                let depth = match tuning {
                    Tuning::Alike => usize::try_from(push_send_buffer()).unwrap_or(0),
                    Tuning::Defaults => 0,
                };
                if t == Transport::Inproc {
                    bench_stream(&mut g, "raw", HandoffStream::new(size, depth));
                } else {
                    bench_stream(&mut g, "raw", RawStream::new(t, size));
                    if depth > 0 {
                        // The floor tuned alike: as far behind its copy as a full send
                        // buffer.
                        bench_stream(&mut g, "rawq", RawStream::with_send_depth(t, size, depth));
                    }
                }
                g.finish();
            }
        }
    }
}

criterion_group!(benches, reqrep, pushpull);
criterion_main!(benches);
