//! Heap allocations per aio operation, once warm, counted by a global allocator.
//!
//! Run: `cargo bench -p nanoport-bench --bench alloc_count`. Each line reports the
//! allocations the whole process made (every thread: caller, reactor, workers) divided by
//! the number of operations, after a warm-up of the same operations.
//!
//! Whole messages: 64 B push/pull (per message) and req/rep (per round trip) over inproc,
//! ipc and tcp, sockets at their defaults, two ways of sending: `clone` sends clones of one
//! `Message` the application made once (the body is shared, copy-on-write), `slice` sends
//! `&[u8]`, a new message per send. The echo side of req/rep sends back what it received.
//! `cargo bench -p nanoport-bench --bench alloc_count -- messages` runs these only.

use nanoport_engine::AioProvider;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nanoport::Socket;
use nanoport_bench::Transport;
use nanoport_engine::{sleep_aio, Aio, Cancel, CancelHook, Message, OpToken, Timeout};

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
fn measure(name: &str, n: u64, mut op: impl FnMut()) {
    for _ in 0..n {
        op();
    }
    let (a0, b0) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
    for _ in 0..n {
        op();
    }
    let (a1, b1) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
    println!(
        "{name:<40} {:>8.3} allocs/op {:>9.1} bytes/op   ({n} ops)",
        (a1 - a0) as f64 / n as f64,
        (b1 - b0) as f64 / n as f64
    );
}

/// Push/pull: a sender thread sends `2 * n` messages made by `make`; this thread receives
/// them and counts the allocations of the second `n` (every thread's).
fn measure_stream(name: &str, t: Transport, n: u64, make: impl Fn() -> Message + Sync) {
    let pull = Socket::pull0().unwrap();
    let url = t.listen_url();
    let l = pull.listen(&url).unwrap();
    let durl = t.dial_url(&url, l.port());
    let push = Socket::push0().unwrap();
    push.dial(&durl).unwrap();
    let (a0, a1, b0, b1) = std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..2 * n {
                push.send(make()).unwrap();
            }
        });
        for _ in 0..n {
            black_box(pull.recv().unwrap());
        }
        let (a0, b0) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
        for _ in 0..n {
            black_box(pull.recv().unwrap());
        }
        let (a1, b1) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
        (a0, a1, b0, b1)
    });
    println!(
        "{name:<40} {:>8.3} allocs/op {:>9.1} bytes/op   ({n} ops)",
        (a1 - a0) as f64 / n as f64,
        (b1 - b0) as f64 / n as f64
    );
    let _ = push.close();
    let _ = pull.close();
    nanoport_bench::remove_ipc_file(&url);
}

/// Req/rep round trips, requests made by `make`, an echo thread sending back what it got.
fn measure_rt(name: &str, t: Transport, n: u64, make: impl Fn() -> Message) {
    let rep = Socket::rep0().unwrap();
    let url = t.listen_url();
    let l = rep.listen(&url).unwrap();
    let durl = t.dial_url(&url, l.port());
    let req = Socket::req0().unwrap();
    req.dial(&durl).unwrap();
    let server = rep.clone();
    let echo = std::thread::spawn(move || {
        while let Ok(m) = server.recv() {
            if server.send(m).is_err() {
                break;
            }
        }
    });
    measure(name, n, || {
        req.send(make()).unwrap();
        black_box(req.recv().unwrap());
    });
    let _ = req.close();
    let _ = rep.close();
    let _ = echo.join();
    nanoport_bench::remove_ipc_file(&url);
}

/// The whole-message figures (see the module documentation).
fn messages() {
    let body = [7u8; 64];
    let reused = Message::from(&body[..]);
    for t in Transport::ALL {
        let tn = t.name();
        measure_stream(&format!("64 B push/pull, {tn}, clone"), t, 200_000, || {
            reused.clone()
        });
        measure_stream(&format!("64 B push/pull, {tn}, slice"), t, 200_000, || {
            Message::from(&body[..])
        });
        measure_rt(
            &format!("64 B req/rep round trip, {tn}, clone"),
            t,
            20_000,
            || reused.clone(),
        );
        measure_rt(
            &format!("64 B req/rep round trip, {tn}, slice"),
            t,
            20_000,
            || Message::from(&body[..]),
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a further argument `messages` runs those only.
    if std::env::args().skip(1).any(|a| a == "messages") {
        messages();
        return;
    }
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
    messages();
}
