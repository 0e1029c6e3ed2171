//! The idle sweep: gives back memory that a burst left behind once things go quiet.
//!
//! A stream pipe's read buffer grows to 64 KiB under a burst, its write queue keeps a few
//! 16 KiB staging buffers, and the message buffer cache ([`crate::buffers`]) keeps a few
//! large message bodies; nothing in the data path shrinks them, since a busy connection
//! needs them again at once. Without a clock a quiet holder cannot be told from a busy
//! one, so a holder of such memory enlists here, and once a second ([`SWEEP_EVERY`]) a
//! worker looks at each: one whose activity count did not move since the previous look
//! frees what it holds and leaves the list. Memory is thus released after one to two
//! seconds of silence; the sweep's timer runs only while something is enlisted.
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
//! use std::sync::{Arc, Mutex};
//! use nanoport_engine::idle::{watch_once, IdleBuffers};
//!
//! struct Scratch {
//!     uses: AtomicU64,
//!     buf: Mutex<Vec<u8>>,
//!     watched: AtomicBool,
//! }
//! impl IdleBuffers for Scratch {
//!     fn activity(&self) -> u64 { self.uses.load(Ordering::Relaxed) }
//!     fn release_idle(&self) -> bool { *self.buf.lock().unwrap() = Vec::new(); false }
//!     fn unwatched(&self) { self.watched.store(false, Ordering::Release) }
//! }
//!
//! let s = Arc::new(Scratch {
//!     uses: AtomicU64::new(0),
//!     buf: Mutex::new(vec![0; 1 << 16]),
//!     watched: AtomicBool::new(false),
//! });
//! watch_once(&s, &s.watched); // freed one to two seconds after `uses` stops moving
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use crate::{sleep_aio, Aio};

/// How often enlisted connections are looked at.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What the sweep needs of a holder of idle memory (a connection, a cache).
pub trait IdleBuffers: Send + Sync + 'static {
    /// A count that moves whenever the holder uses its memory (a connection reads or
    /// writes).
    fn activity(&self) -> u64;
    /// Frees the buffers it can; returns whether memory is still held (a partial frame,
    /// queued frames), so the sweep should keep watching.
    fn release_idle(&self) -> bool;
    /// The sweep no longer watches it (it may enlist again).
    fn unwatched(&self);
}

struct Entry {
    who: Weak<dyn IdleBuffers>,
    /// Activity at the previous look (`None`: not looked at yet).
    seen: Option<u64>,
}

struct List {
    entries: Vec<Entry>,
    /// The sweep's timer is running.
    armed: bool,
}

struct Sweeper {
    list: Mutex<List>,
    aio: Aio,
}

/// A sweep: holders enlist, and every `period` a worker looks at each; one whose activity
/// did not move since the previous look is asked to let go. The idle sweep of buffers is
/// one (once a second); the reactor runs another, faster one for fds whose reads a
/// thread holds between its receives.
pub struct Sweep {
    period: Duration,
    state: OnceLock<Sweeper>,
}

impl std::fmt::Debug for Sweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweep")
            .field("period", &self.period)
            .finish()
    }
}

/// The idle sweep of buffers.
static IDLE: Sweep = Sweep::new(SWEEP_EVERY);

fn lock(m: &Mutex<List>) -> MutexGuard<'_, List> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sweep {
    /// A sweep looking every `period`; its timer runs only while something is enlisted.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use nanoport_engine::idle::Sweep;
    /// static FAST: Sweep = Sweep::new(Duration::from_millis(10));
    /// ```
    pub const fn new(period: Duration) -> Sweep {
        Sweep {
            period,
            state: OnceLock::new(),
        }
    }

    fn sweeper(&'static self) -> &'static Sweeper {
        self.state.get_or_init(|| Sweeper {
            list: Mutex::new(List {
                entries: Vec::new(),
                armed: false,
            }),
            aio: Aio::new(move |_| self.tick()).expect("nanoport: cannot make a sweep's aio"),
        })
    }

    /// Enlists `who` (the caller makes sure it is not enlisted twice;
    /// [`watch_once`](Sweep::watch_once) does).
    pub fn watch(&'static self, who: Weak<dyn IdleBuffers>) {
        let s = self.sweeper();
        let mut l = lock(&s.list);
        l.entries.push(Entry { who, seen: None });
        if !l.armed {
            l.armed = true;
            drop(l);
            sleep_aio(self.period, &s.aio);
        }
    }

    /// Enlists `who` if `flag` says it is not enlisted yet (`flag` is the owner's
    /// "watched" bit, cleared again by [`IdleBuffers::unwatched`]).
    pub fn watch_once<T: IdleBuffers>(&'static self, who: &Arc<T>, flag: &AtomicBool) {
        if flag.load(Ordering::Relaxed) || flag.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<T> = Arc::downgrade(who);
        self.watch(weak);
    }

    /// One look at every enlisted holder (on a worker, as the sweep aio's callback).
    fn tick(&'static self) {
        let s = self.sweeper();
        let entries = std::mem::take(&mut lock(&s.list).entries);
        let mut kept = Vec::with_capacity(entries.len());
        for mut e in entries {
            let Some(who) = e.who.upgrade() else { continue };
            let now = who.activity();
            if e.seen == Some(now) && !who.release_idle() {
                who.unwatched();
                continue;
            }
            e.seen = Some(now);
            kept.push(e);
        }
        let mut l = lock(&s.list);
        l.entries.append(&mut kept);
        if l.entries.is_empty() {
            l.armed = false;
        } else {
            drop(l);
            sleep_aio(self.period, &s.aio);
        }
    }
}

/// Enlists `who` in the idle sweep (the caller makes sure it is not enlisted twice;
/// [`watch_once`] does).
pub fn watch(who: Weak<dyn IdleBuffers>) {
    IDLE.watch(who);
}

/// Enlists `who` in the idle sweep if `flag` says it is not enlisted yet (`flag` is the
/// owner's "watched" bit, cleared again by [`IdleBuffers::unwatched`]).
pub fn watch_once<T: IdleBuffers>(who: &Arc<T>, flag: &AtomicBool) {
    IDLE.watch_once(who, flag);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

    struct Fake {
        activity: AtomicU64,
        released: AtomicUsize,
        watched: AtomicBool,
    }

    impl IdleBuffers for Fake {
        fn activity(&self) -> u64 {
            self.activity.load(Ordering::SeqCst)
        }
        fn release_idle(&self) -> bool {
            self.released.fetch_add(1, Ordering::SeqCst);
            false
        }
        fn unwatched(&self) {
            self.watched.store(false, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_quiet_connection_is_released_and_a_busy_one_is_not() {
        let fake = || {
            Arc::new(Fake {
                activity: AtomicU64::new(0),
                released: AtomicUsize::new(0),
                watched: AtomicBool::new(false),
            })
        };
        let (quiet, busy) = (fake(), fake());
        watch_once(&quiet, &quiet.watched);
        watch_once(&quiet, &quiet.watched); // enlisted once only
        watch_once(&busy, &busy.watched);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while quiet.released.load(Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < deadline, "never released");
            busy.activity.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(quiet.released.load(Ordering::SeqCst), 1);
        assert!(
            !quiet.watched.load(Ordering::SeqCst),
            "unwatched after release"
        );
        assert_eq!(busy.released.load(Ordering::SeqCst), 0, "busy: kept");
        assert!(busy.watched.load(Ordering::SeqCst));
        drop(busy); // a dropped connection simply leaves the list
    }
}
