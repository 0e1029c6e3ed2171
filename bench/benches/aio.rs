//! The cost of one aio operation, start to observed completion.
//!
//! * `provider_round_trip/waitable`: `begin` -> `finish` -> `wait` on a callback-less aio.
//!   No thread hop: the engine's bookkeeping alone (locks, state machine).
//! * `provider_round_trip/callback`: the same on an aio with an (empty) callback: the
//!   completion hops to a worker, which runs the callback and wakes the waiter.
//! * `sleep_zero/*`: `sleep_aio(0)`: a timer through the reactor thread (notify, wake,
//!   expire), then as above.
//! * `cancel/waitable`: `begin` with a cancel hook, `cancel`, `wait`.
//!
//! Run: `cargo bench -p nanoport-bench --bench aio`. Results: docs/benchmarks.md.

use nanoport_engine::AioProvider;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use nanoport_engine::{sleep_aio, Aio, Cancel, CancelHook, OpToken, Timeout};

struct NoOpHook;
impl Cancel for NoOpHook {
    fn cancelled(&self, _: &Aio, _: usize, _: OpToken) {}
}

fn provider_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("provider_round_trip");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));

    let aio = Aio::new_waitable().unwrap();
    g.bench_function("waitable", |b| {
        b.iter(|| {
            let token = aio.begin(Timeout::Infinite, None).unwrap();
            aio.finish(token, Ok(()), black_box(1));
            aio.wait();
        })
    });

    let aio = Aio::new(|aio| {
        black_box(aio.result().is_ok());
    })
    .unwrap();
    g.bench_function("callback", |b| {
        b.iter(|| {
            let token = aio.begin(Timeout::Infinite, None).unwrap();
            aio.finish(token, Ok(()), black_box(1));
            aio.wait();
        })
    });
    g.finish();
}

fn sleep_zero(c: &mut Criterion) {
    let mut g = c.benchmark_group("sleep_zero");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let aio = Aio::new_waitable().unwrap();
    g.bench_function("waitable", |b| {
        b.iter(|| {
            sleep_aio(Duration::ZERO, &aio);
            aio.wait();
        })
    });
    let aio = Aio::new(|aio| {
        black_box(aio.result().is_ok());
    })
    .unwrap();
    g.bench_function("callback", |b| {
        b.iter(|| {
            sleep_aio(Duration::ZERO, &aio);
            aio.wait();
        })
    });
    g.finish();
}

fn cancel(c: &mut Criterion) {
    let mut g = c.benchmark_group("cancel");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let aio = Aio::new_waitable().unwrap();
    let target: Arc<dyn Cancel> = Arc::new(NoOpHook);
    g.bench_function("waitable", |b| {
        b.iter(|| {
            aio.begin(Timeout::Infinite, Some(CancelHook::new(target.clone(), 0)))
                .unwrap();
            aio.cancel();
            aio.wait();
        })
    });
    g.finish();
}

criterion_group!(benches, provider_round_trip, sleep_zero, cancel);
criterion_main!(benches);
