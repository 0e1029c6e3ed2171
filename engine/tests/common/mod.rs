//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nanoport_engine::{Aio, Cancel, CancelHook, OpToken, Result};

thread_local! {
    /// Set while a test thread is inside a call that starts an operation: a callback that
    /// sees it set runs inside that call, which the contract forbids.
    pub static IN_START_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a call that starts an operation) with [`IN_START_CALL`] set.
pub fn starting<R>(f: impl FnOnce() -> R) -> R {
    IN_START_CALL.with(|c| c.set(true));
    let r = f();
    IN_START_CALL.with(|c| c.set(false));
    r
}

/// What one callback run saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub result: Result<()>,
    pub count: usize,
    pub thread: String,
    pub inside_start: bool,
}

/// A callback aio that reports each run on a channel and counts runs.
pub struct Recorder {
    pub aio: Aio,
    pub rx: mpsc::Receiver<Seen>,
    pub runs: Arc<AtomicUsize>,
}

impl Recorder {
    pub fn new() -> Recorder {
        let (tx, rx) = mpsc::channel();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let tx = Mutex::new(tx);
        let aio = Aio::new(move |aio| {
            r.fetch_add(1, Ordering::SeqCst);
            let seen = Seen {
                result: aio.result(),
                count: aio.count(),
                thread: std::thread::current().name().unwrap_or("").to_owned(),
                inside_start: IN_START_CALL.with(|c| c.get()),
            };
            let _ = tx.lock().unwrap().send(seen);
        })
        .unwrap();
        Recorder { aio, rx, runs }
    }

    /// The next callback run (fails the test after 10 s).
    pub fn next(&self) -> Seen {
        self.rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the callback did not run within 10 s")
    }

    /// Asserts that the callback has run exactly `n` times in all and nothing else is
    /// queued: waits for the aio to be idle first.
    pub fn assert_runs(&self, n: usize) {
        self.aio.wait();
        assert_eq!(self.runs.load(Ordering::SeqCst), n, "callback runs");
    }
}

/// A provider's cancel hook that counts how often the engine told it of a cancel.
#[derive(Default)]
pub struct CountingHook {
    pub calls: AtomicUsize,
}

impl Cancel for CountingHook {
    fn cancelled(&self, _aio: &Aio, _key: usize, _token: OpToken) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl CountingHook {
    pub fn new() -> Arc<CountingHook> {
        Arc::new(CountingHook::default())
    }
    pub fn hook(self: &Arc<Self>) -> CancelHook {
        CancelHook::new(self.clone(), 7)
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Polls `cond` (yielding between tries) until it holds; fails the test after 10 s.
pub fn eventually(mut cond: impl FnMut() -> bool, what: &str) {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < until, "not within 10 s: {what}");
        std::thread::yield_now();
    }
}

/// A small deterministic PRNG (xorshift64*), so stress tests need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
