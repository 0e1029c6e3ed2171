//! nanoport over tls+tcp, ws and wss next to its own tcp (`bench/src/secure.rs`):
//!
//! * `sec-reqrep/<transport>/64B`: one req0/rep0 round trip; time per round trip;
//! * `sec-pushpull/<transport>/<64B|64KiB>`: push0 -> pull0 streaming; messages/s.
//!
//! ```text
//! cargo bench -p nanoport-bench --bench secure
//! ```
//!
//! Results: docs/benchmarks.md ("Secure and web transports").

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use nanoport_bench::secure::{SecRoundTrip, SecStream, Secure};
use nanoport_bench::{RoundTrip, Stream};

fn tune(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

fn reqrep(c: &mut Criterion) {
    let mut g = c.benchmark_group("sec-reqrep/64B");
    tune(&mut g);
    for t in Secure::ALL {
        let mut rt = SecRoundTrip::new(t, 64);
        g.bench_function(t.name(), |b| b.iter(|| rt.round_trip()));
    }
    g.finish();
}

fn pushpull(c: &mut Criterion) {
    for (size, label) in [(64usize, "64B"), (65536, "64KiB")] {
        let mut g = c.benchmark_group(format!("sec-pushpull/{label}"));
        tune(&mut g);
        g.throughput(Throughput::Elements(1));
        for t in Secure::ALL {
            let mut s = SecStream::new(t, size);
            g.bench_function(t.name(), |b| b.iter_custom(|n| s.stream(n)));
        }
        g.finish();
    }
}

criterion_group!(benches, reqrep, pushpull);
criterion_main!(benches);
