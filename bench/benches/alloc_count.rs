//! Heap allocations per aio operation, once warm, counted by a global allocator.
//!
//! Run: `cargo bench -p nanoport-bench --bench alloc_count`. Each line reports the
//! allocations the whole process made (every thread: caller, reactor, workers) divided by
//! the number of operations, after a warm-up of the same operations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nanoport_engine::{sleep_aio, Aio, Cancel, CancelHook, OpToken, Timeout};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System`, which upholds the `GlobalAlloc` contract; the
// counters are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as our caller's: `layout` has a non-zero size.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout` (we forward every alloc).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System` with `layout`; `new_size` is non-zero per the
        // caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct NoOpHook;
impl Cancel for NoOpHook {
    fn cancelled(&self, _: &Aio, _: usize, _: OpToken) {}
}

/// Runs `op` `n` times after `n` warm-up runs; prints allocations and bytes per op.
fn measure(name: &str, n: u64, op: impl FnMut()) {
    measure_per(name, n, 1, op);
}

/// As [`measure`], for an `op` that does `per` operations: prints the figures per one.
fn measure_per(name: &str, n: u64, per: u64, mut op: impl FnMut()) {
    for _ in 0..n {
        op();
    }
    let (a0, b0) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
    for _ in 0..n {
        op();
    }
    let (a1, b1) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
    let ops = n * per;
    println!(
        "{name:<40} {:>8.3} allocs/op {:>9.1} bytes/op   ({ops} ops)",
        (a1 - a0) as f64 / ops as f64,
        (b1 - b0) as f64 / ops as f64
    );
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    const N: u64 = 100_000;
    let waitable = Aio::new_waitable().unwrap();
    measure("provider begin/finish/wait, waitable", N, || {
        let token = waitable.begin(Timeout::Infinite, None).unwrap();
        waitable.finish(token, Ok(()), 1);
        waitable.wait();
    });
    let cb = Aio::new(|aio| {
        black_box(aio.result().is_ok());
    })
    .unwrap();
    measure("provider begin/finish/wait, callback", N, || {
        let token = cb.begin(Timeout::Infinite, None).unwrap();
        cb.finish(token, Ok(()), 1);
        cb.wait();
    });
    let target: Arc<dyn Cancel> = Arc::new(NoOpHook);
    measure("begin(hook)/cancel/wait, waitable", N, || {
        waitable
            .begin(Timeout::Infinite, Some(CancelHook::new(target.clone(), 0)))
            .unwrap();
        waitable.cancel();
        waitable.wait();
    });
    waitable.set_timeout(Duration::from_secs(60));
    measure("begin(hook, 60 s deadline)/finish, waitable", N, || {
        let token = waitable
            .begin(Timeout::Infinite, Some(CancelHook::new(target.clone(), 0)))
            .unwrap();
        waitable.finish(token, Ok(()), 1);
        waitable.wait();
    });
    waitable.set_timeout(Timeout::Default);
    measure("sleep_aio(0)/wait, waitable", N / 4, || {
        sleep_aio(Duration::ZERO, &waitable);
        waitable.wait();
    });
    measure("sleep_aio(0)/wait, callback", N / 4, || {
        sleep_aio(Duration::ZERO, &cb);
        cb.wait();
    });

    // Whole messages over the secure and web transports (every thread counted: the
    // echo thread, the workers, the reactor), next to tcp.
    for t in nanoport_bench::secure::Secure::ALL {
        use nanoport_bench::RoundTrip;
        let mut rt = nanoport_bench::secure::SecRoundTrip::new(t, 64);
        measure(
            &format!("64 B req/rep round trip, {}", t.name()),
            2000,
            || rt.round_trip(),
        );
    }
    // Per message of a push/pull stream (the body copied into a fresh message per send,
    // as the throughput benchmarks do; a sender thread per batch, its start spread over
    // the batch).
    for t in nanoport_bench::secure::Secure::ALL {
        use nanoport_bench::Stream;
        for (size, label, batch) in [(64usize, "64 B", 10_000u64), (65536, "64 KiB", 500)] {
            let mut s = nanoport_bench::secure::SecStream::new(t, size);
            measure_per(
                &format!("{label} push/pull message, {}", t.name()),
                5,
                batch,
                || {
                    s.stream(batch);
                },
            );
        }
    }
}
