//! The fixed worker pool that runs completion callbacks.
//!
//! One FIFO queue ([`JobQueue`](crate::job_queue::JobQueue): a mutex, a condvar and a
//! count of waiting workers; model-checked with loom) feeds N threads. An aio completion
//! is queued as its `Arc<AioCore>` (no boxing), other work as a boxed `FnOnce`. The queue
//! keeps its buffer, so a warm pool allocates nothing per job, and an idle worker parks at
//! once instead of spinning and yielding (see docs/benchmarks.md). A panicking job is
//! caught, reported on stderr, and the worker carries on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;

use crate::aio::AioCore;
use crate::job_queue::JobQueue;
use crate::{Error, Result};

pub(crate) enum Job {
    Callback(Arc<AioCore>),
    Task(Box<dyn FnOnce() + Send>),
}

pub(crate) struct Pool {
    q: Arc<JobQueue<Job>>,
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
    thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
}

pub(crate) fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        let n = match REQUESTED_THREADS.load(Ordering::SeqCst) {
            0 => default_threads(),
            n => n,
        };
        let q = Arc::new(JobQueue::with_capacity(256));
        for i in 0..n {
            let q = q.clone();
            thread::Builder::new()
                .name(format!("nanoport:worker:{i}"))
                .spawn(move || worker_loop(&q))
                .expect("nanoport: cannot start a worker thread");
        }
        Pool {
            q,
            panics: AtomicUsize::new(0),
        }
    })
}

/// Marks the calling thread as a batch thread (Linux `SCHED_BATCH`): when woken it does not
/// preempt the thread running on its CPU, it waits for that thread to block or use up its
/// slice.
///
/// Why: a sender that queues a burst asks a worker to write it. On one CPU the woken
/// worker would preempt the sender at once and write the two or three messages queued
/// so far, and every batch would cost two context switches; as a batch thread it runs
/// when the sender blocks, and writes everything queued by then. On an idle CPU it runs
/// at once, as before.
fn prefer_not_to_preempt() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SCHED_BATCH at priority 0 needs no privilege; on failure the thread keeps the
        // normal policy, which is correct, only slower in bursts.
        // SAFETY: `param` is a valid sched_param for the call; pid 0 is this thread.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    }
}

fn worker_loop(q: &JobQueue<Job>) {
    prefer_not_to_preempt();
    loop {
        match q.pop_wait() {
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
        // Workers live for the life of the process, so a queued job is always taken.
        self.q.push(job);
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
