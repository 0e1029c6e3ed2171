//! [`JobQueue`]: the worker pool's FIFO of jobs, a mutex-guarded queue with a condition
//! variable and a count of the workers waiting on it.
//!
//! Why a file of its own: it is the pool's whole cross-thread protocol, and small enough
//! to model-check. In the engine's test build under `--cfg loom` it is built on loom's
//! `Mutex` and `Condvar`, and `loom_model` below explores every interleaving of two
//! workers and two producers. No job may be stranded while a worker sleeps, and each job
//! must be taken exactly once:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p nanoport-engine --release --lib job_queue
//! ```
//!
//! A push signals only when some worker waits (`idle > 0`): a worker that is running a
//! job looks at the queue again before it waits, under the same lock, so it cannot miss
//! a job pushed meanwhile. Saving the signal matters because on a busy pool nearly every
//! push finds every worker busy.

use std::collections::VecDeque;

// loom is a dev-dependency: only the engine's own test build can use it.
#[cfg(all(loom, test))]
use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(all(loom, test)))]
use std::sync::{Condvar, Mutex, MutexGuard};

/// The jobs waiting for a worker, and how many workers wait for a job.
struct Waiting<T> {
    jobs: VecDeque<T>,
    idle: usize,
}

/// A FIFO of jobs shared by producers and worker threads.
pub(crate) struct JobQueue<T> {
    state: Mutex<Waiting<T>>,
    cv: Condvar,
}

impl<T> JobQueue<T> {
    /// An empty queue with room for `n` jobs before it grows (it keeps its buffer, so a
    /// warm queue allocates nothing per job).
    pub(crate) fn with_capacity(n: usize) -> JobQueue<T> {
        JobQueue {
            state: Mutex::new(Waiting {
                jobs: VecDeque::with_capacity(n),
                idle: 0,
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting<T>> {
        // A job runs outside the lock, so a panic cannot leave the queue half changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job`, and wakes one waiting worker if there is one.
    pub(crate) fn push(&self, job: T) {
        let mut g = self.lock();
        g.jobs.push_back(job);
        let wake = g.idle > 0;
        drop(g);
        if wake {
            self.cv.notify_one();
        }
    }

    /// Takes the oldest job, waiting for one if the queue is empty.
    pub(crate) fn pop_wait(&self) -> T {
        let mut g = self.lock();
        loop {
            if let Some(job) = g.jobs.pop_front() {
                return job;
            }
            g.idle += 1;
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            g.idle -= 1;
        }
    }
}

/// What both the std tests and the loom model run: a worker that takes jobs until it
/// takes a stop (`None`), on std's threads or loom's.
#[cfg(test)]
mod worker {
    #[cfg(loom)]
    use loom::{sync::Arc, thread};
    #[cfg(not(loom))]
    use std::{sync::Arc, thread};

    use super::JobQueue;

    pub(super) fn spawn<T: Send + 'static>(
        q: &Arc<JobQueue<Option<T>>>,
    ) -> thread::JoinHandle<Vec<T>> {
        let q = q.clone();
        thread::spawn(move || {
            let mut got = Vec::new();
            while let Some(j) = q.pop_wait() {
                got.push(j);
            }
            got
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn jobs_come_out_in_the_order_they_went_in() {
        let q = JobQueue::with_capacity(2);
        for i in 0..5 {
            q.push(i);
        }
        let got: Vec<i32> = (0..5).map(|_| q.pop_wait()).collect();
        assert_eq!(got, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn many_producers_and_workers_take_each_job_exactly_once() {
        const PRODUCERS: usize = 4;
        const WORKERS: usize = 3;
        const EACH: usize = 20_000;
        let q = Arc::new(JobQueue::with_capacity(16));
        let workers: Vec<_> = (0..WORKERS).map(|_| worker::spawn(&q)).collect();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    for i in 0..EACH {
                        q.push(Some(p * EACH + i));
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        for _ in 0..WORKERS {
            q.push(None); // one stop per worker, behind every real job
        }
        let mut all: Vec<usize> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..PRODUCERS * EACH).collect::<Vec<_>>());
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Two workers, a producer thread and the main thread pushing: in every interleaving
    /// each job is taken once, and no worker sleeps through a job (loom reports a worker
    /// left waiting forever as a deadlock).
    #[test]
    fn every_job_is_taken_once_and_no_worker_sleeps_through_one() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let q = Arc::new(JobQueue::with_capacity(4));
            let workers: Vec<_> = (0..2).map(|_| worker::spawn(&q)).collect();
            let producer = {
                let q = q.clone();
                thread::spawn(move || {
                    q.push(Some(1));
                    q.push(Some(2));
                })
            };
            q.push(Some(3));
            producer.join().unwrap();
            q.push(None);
            q.push(None);
            let mut all: Vec<u32> = workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect();
            all.sort_unstable();
            assert_eq!(all, [1, 2, 3]);
        });
    }
}
