//! sub0 with many subscriptions: the cost of matching a message, and of (un)subscribing.
//!
//! * `sub_match/{near_miss,hit}/N`: one message into a sub0 state machine holding N
//!   (10, 1,000, 100,000) subscriptions `quote.NNNNNN.`, through `pipe_message` alone (no
//!   socket, no transport: the part that runs under the socket lock on the reactor thread).
//!   `near_miss` is `quote.000007!`: it matches nothing but shares all but its last byte
//!   with a topic, the longest walk a prefix tree takes, and the flood that cost a scan all
//!   N comparisons. `hit` matches the last topic subscribed and is received back, so the
//!   queue stays empty.
//! * `sub_100k/{subscribe,unsubscribe}`: 100,000 `Socket::subscribe` calls on a fresh sub0
//!   socket, and (timed apart, after subscribing untimed) the 100,000 `unsubscribe`s, each
//!   through the socket's lock as a user makes them. One iteration per sample.
//!
//! Run: `cargo bench -p nanoport-bench --bench sub_topics`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use nanoport::{Protocol, Socket};
use nanoport_engine::{Message, Now, PipeId};
use nanoport_protocols::{open, opt, OptValue, ProtocolCore};

const SIZES: [u32; 3] = [10, 1_000, 100_000];
const MANY: u32 = 100_000;

fn topic(i: u32) -> Vec<u8> {
    format!("quote.{i:06}.").into_bytes()
}

fn sub_with(n: u32) -> Box<dyn ProtocolCore> {
    let mut sub = open(Protocol::Sub0, false).expect("sub0 opens");
    for i in 0..n {
        sub.set_option(0, opt::SUBSCRIBE, OptValue::Bytes(topic(i)))
            .expect("subscribes");
    }
    sub
}

fn sub_match(c: &mut Criterion) {
    let mut g = c.benchmark_group("sub_match");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let now = Now::current();
    let pipe = PipeId(1);
    for n in SIZES {
        let mut sub = sub_with(n);
        let miss = Message::from(&b"quote.000007!price=101.5"[..]);
        g.bench_with_input(BenchmarkId::new("near_miss", n), &n, |b, _| {
            b.iter(|| sub.pipe_message(pipe, black_box(miss.clone()), now))
        });
        assert_eq!(sub.try_recv(0, now), Ok(None), "the near miss was dropped");

        let mut hit = Message::from(&topic(n - 1)[..]);
        hit.append(b"price=101.5");
        g.bench_with_input(BenchmarkId::new("hit", n), &n, |b, _| {
            b.iter(|| {
                sub.pipe_message(pipe, black_box(hit.clone()), now);
                let got = sub.try_recv(0, now).expect("open context");
                while sub.poll_action().is_some() {}
                black_box(got.expect("the hit was queued"))
            })
        });
    }
    g.finish();
}

fn sub_100k(c: &mut Criterion) {
    let mut g = c.benchmark_group("sub_100k");
    // Seconds per iteration as a scan: flat sampling runs 10 iterations, not linear's 55.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(1));
    let topics: Vec<Vec<u8>> = (0..MANY).map(topic).collect();
    let subscribed = || {
        let s = Socket::open(Protocol::Sub0).expect("sub0 opens");
        let t = Instant::now();
        for tp in &topics {
            s.subscribe(tp).expect("subscribes");
        }
        (s, t.elapsed())
    };
    g.bench_function("subscribe", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| subscribed().1).sum())
    });
    g.bench_function("unsubscribe", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (s, _) = subscribed();
                    let t = Instant::now();
                    for tp in &topics {
                        s.unsubscribe(tp).expect("was subscribed");
                    }
                    t.elapsed()
                })
                .sum()
        })
    });
    g.finish();
}

criterion_group!(benches, sub_match, sub_100k);
criterion_main!(benches);
