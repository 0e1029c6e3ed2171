//! The fixed worker pool that runs completion callbacks.
//!
//! One MPMC crossbeam channel feeds N threads. An aio completion is queued as its
//! `Arc<AioCore>` (no boxing), other work as a boxed `FnOnce`. A panicking job is caught,
//! reported on stderr, and the worker carries on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::aio::AioCore;
use crate::{Error, Result};

pub(crate) enum Job {
    Callback(Arc<AioCore>),
    Task(Box<dyn FnOnce() + Send>),
}

pub(crate) struct Pool {
    tx: Sender<Job>,
    panics: AtomicUsize,
}

static POOL: OnceLock<Pool> = OnceLock::new();
static REQUESTED_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many worker threads run callbacks. Must be called before the engine is first
/// used; the default is the number of CPUs, at least 2.
///
/// # Errors
/// `State` once the pool has started; `Inval` for zero.
///
/// # Examples
///
/// ```
/// // Early in main, before any socket or aio exists:
/// let _ = nanoport_engine::set_worker_threads(4);
/// ```
pub fn set_worker_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::Inval);
    }
    if POOL.get().is_some() {
        return Err(Error::State);
    }
    REQUESTED_THREADS.store(n, Ordering::SeqCst);
    if POOL.get().is_some() {
        return Err(Error::State);
    }
    Ok(())
}

/// The number of worker threads the pool runs (starting it if needed).
pub fn worker_threads() -> usize {
    pool();
    match REQUESTED_THREADS.load(Ordering::SeqCst) {
        0 => default_threads(),
        n => n,
    }
}

/// How many callbacks or tasks have panicked since the process started.
pub fn callback_panics() -> usize {
    pool().panics.load(Ordering::Relaxed)
}

fn default_threads() -> usize {
    thread::available_parallelism().map_or(2, |n| n.get()).max(2)
}

pub(crate) fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        let n = match REQUESTED_THREADS.load(Ordering::SeqCst) {
            0 => default_threads(),
            n => n,
        };
        let (tx, rx) = unbounded::<Job>();
        for i in 0..n {
            let rx: Receiver<Job> = rx.clone();
            thread::Builder::new()
                .name(format!("nanoport:worker:{i}"))
                .spawn(move || worker_loop(rx))
                .expect("nanoport: cannot start a worker thread");
        }
        Pool { tx, panics: AtomicUsize::new(0) }
    })
}

fn worker_loop(rx: Receiver<Job>) {
    while let Ok(job) = rx.recv() {
        match job {
            Job::Callback(core) => AioCore::run_callbacks(&core),
            Job::Task(f) => run_guarded(f),
        }
    }
}

/// Runs `f`, catching and counting a panic so the calling worker survives.
pub(crate) fn run_guarded(f: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        pool().panics.fetch_add(1, Ordering::Relaxed);
        let what = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic".into());
        eprintln!("nanoport: a callback panicked (the worker carries on): {what}");
    }
}

impl Pool {
    pub(crate) fn submit(&self, job: Job) {
        // The receivers live in detached threads for the life of the process, so the
        // channel never disconnects.
        let _ = self.tx.send(job);
    }
}

/// Runs `f` on the worker pool, never on the calling thread.
///
/// # Examples
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel();
/// nanoport_engine::spawn(move || tx.send(std::thread::current().name().map(str::to_owned)).unwrap());
/// assert!(rx.recv().unwrap().unwrap().starts_with("nanoport:worker"));
/// ```
pub fn spawn(f: impl FnOnce() + Send + 'static) {
    pool().submit(Job::Task(Box::new(f)));
}
