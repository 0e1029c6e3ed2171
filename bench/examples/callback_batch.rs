//! CPU per completed callback operation when many are in flight at once.
//!
//! A lone callback operation pays a cross-thread wake-up (about 9 µs of CPU here, see
//! docs/benchmarks.md §3) because the contract puts the callback on a worker, never in
//! the call that started it. When many operations complete together, a woken worker
//! drains every queued callback before it sleeps again, so the wake-up is shared. This
//! measures that amortised cost: `BATCH` callback aios are started and finished, then
//! their callbacks awaited, `ROUNDS` times.
//!
//! ```text
//! cargo run --release -p nanoport-bench --example callback_batch -- [BATCH] [ROUNDS]
//! ```

use nanoport_engine::AioProvider;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use nanoport_bench::cpu_seconds;
use nanoport_engine::{Aio, Timeout};

/// Counts callbacks run; the driver waits until a round's worth have run.
struct Done {
    count: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Done {
    fn wait_for(&self, n: usize) {
        let mut g = self.lock.lock().unwrap();
        while self.count.load(Ordering::Acquire) < n {
            g = self.cv.wait(g).unwrap();
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let done = Arc::new(Done {
        count: AtomicUsize::new(0),
        lock: Mutex::new(()),
        cv: Condvar::new(),
    });
    let aios: Vec<Aio> = (0..batch)
        .map(|_| {
            let d = done.clone();
            Aio::new(move |_| {
                d.count.fetch_add(1, Ordering::AcqRel);
                // Take the lock so the driver cannot miss the notification between its
                // check and its wait.
                drop(d.lock.lock().unwrap());
                d.cv.notify_one();
            })
            .unwrap()
        })
        .collect();
    let run = |rounds: usize, base: usize| {
        for r in 0..rounds {
            for aio in &aios {
                let token = aio.begin(Timeout::Infinite, None).unwrap();
                aio.finish(token, Ok(()), 0);
            }
            done.wait_for(base + (r + 1) * batch);
        }
    };
    run(rounds / 10 + 1, 0); // warm-up
    let base = done.count.load(Ordering::Acquire);
    let (t0, c0) = (Instant::now(), cpu_seconds());
    run(rounds, base);
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    let ops = (batch * rounds) as f64;
    println!(
        "{batch} callback aios in flight x {rounds} rounds: {:.3} us wall, {:.3} us CPU per operation",
        wall * 1e6 / ops,
        cpu * 1e6 / ops
    );
    for aio in &aios {
        aio.wait();
    }
}
