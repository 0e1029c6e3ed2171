//! The reactor: one thread that owns the poller (epoll on Linux, see `epoll.rs`) and the
//! timer queue.
//!
//! * **Registrations.** A non-blocking fd is registered once, in oneshot mode, under a key
//!   that packs its slab index (low 32 bits) with the slot's generation (high bits), so an
//!   event for a slot freed and reused since is recognised as stale and dropped, never
//!   routed to the new occupant. Interest is armed on demand ([`Registration::arm`]) when an
//!   operation meets `WouldBlock`; the reactor re-arms whatever interest an event did not
//!   consume.
//! * **Timers.** Deadlines of pending aios live in an ordered map keyed by
//!   `(deadline, sequence)`; the poll timeout is the nearest deadline, and a completed
//!   operation removes its entry at once, so the map holds only live deadlines.
//! * **Handlers run on the reactor thread**: they are short, non-blocking state-machine
//!   steps (try the syscall, move bytes, complete an aio), and completions go to the worker
//!   pool, so a user callback never runs here.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread;
use std::time::Instant;

use crate::poller::{Event, Events, Poller};
use slab::Slab;

use crate::aio::AioCore;
use crate::idle::{IdleBuffers, Sweep};
use crate::idle_strategy::SpinBudget;
use crate::pool::run_guarded;
use crate::Result;

/// Readiness a handler is told about, or interest a registration arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest {
    /// Readable (or hung up / in error).
    pub read: bool,
    /// Writable (or hung up / in error).
    pub write: bool,
}

impl Interest {
    /// Interest in reading.
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
    /// Interest in writing.
    pub const WRITE: Interest = Interest {
        read: false,
        write: true,
    };
    /// No interest.
    pub const NONE: Interest = Interest {
        read: false,
        write: false,
    };

    fn union(self, o: Interest) -> Interest {
        Interest {
            read: self.read || o.read,
            write: self.write || o.write,
        }
    }
    fn minus(self, o: Interest) -> Interest {
        Interest {
            read: self.read && !o.read,
            write: self.write && !o.write,
        }
    }
    fn intersect(self, o: Interest) -> Interest {
        Interest {
            read: self.read && o.read,
            write: self.write && o.write,
        }
    }
    fn is_none(self) -> bool {
        !self.read && !self.write
    }
}

/// Told by the reactor when a registered fd is ready. Runs on the reactor thread: it must
/// not block, and should complete aios rather than run user code.
pub trait ReadyHandler: Send + Sync + 'static {
    /// The fd is ready for what `ready` says.
    fn on_ready(&self, ready: Interest);
}

struct Slot {
    gen: u32,
    reg: Weak<RegInner>,
}

struct RegInner {
    fd: RawFd,
    key: usize,
    armed: Mutex<Armed>,
    handler: Weak<dyn ReadyHandler>,
    /// Moves each time a thread starts a wait driving the fd's reads (the hold sweep's
    /// activity).
    drives: AtomicU64,
    /// Enlisted in the hold sweep.
    hold_swept: AtomicBool,
    me: Weak<RegInner>,
    /// Tests that step through the hold by hand keep the sweep off their registration.
    #[cfg(test)]
    sweep_exempt: AtomicBool,
}

/// What a registration's fd is armed for, and whether the fd is still registered.
///
/// `live` turns false, under this lock, before `Registration::drop` deletes the fd from
/// the poller; the owner closes the fd only after that. The reactor re-arms an fd only
/// while holding this lock and seeing `live`, so it never touches a closed fd, nor a new
/// fd that reused the number (which would move that fd to this registration's stale key
/// and lose its events).
struct Armed {
    interest: Interest,
    live: bool,
    /// Directions a blocked thread took over ([`Readiness::borrow`]): it polls the fd
    /// itself and runs the handler, so the poller leaves them alone meanwhile.
    borrowed: Interest,
    /// Of `borrowed`, the directions whose borrower is inside a wait or a held send now
    /// (polling, or running the handler). A read borrowed but not driven is *held*: the
    /// thread went back to its own work and will most likely be back for the next message
    /// (see `Readiness`).
    driving: Interest,
    /// Arms that came while their direction was borrowed: an operation is parked on it.
    wanted: Interest,
    /// The thread that last waited by driving reads ([`AioProvider::wait_driving`]).
    driver: Option<std::thread::ThreadId>,
}

impl Armed {
    /// The directions borrowed and not driven now: held by a thread between its waits.
    fn held(&self) -> Interest {
        self.borrowed.minus(self.driving)
    }
}

/// A registered fd. Dropping it removes the fd from the poller; drop it before the fd
/// is closed.
pub struct Registration {
    inner: Arc<RegInner>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("fd", &self.inner.fd)
            .field("key", &self.inner.key)
            .finish()
    }
}

/// A timer entry's identity, for removal.
#[derive(Debug, Clone)]
pub(crate) struct TimerKey {
    at: Instant,
    seq: u64,
}

impl TimerKey {
    pub(crate) fn deadline(&self) -> Instant {
        self.at
    }
}

struct TimerEntry {
    aio: Arc<AioCore>,
    gen: u64,
    result: Result<()>,
}

struct Timers {
    map: BTreeMap<(Instant, u64), TimerEntry>,
    /// Whether the reactor is inside `wait`, and until when it sleeps (`None`: forever).
    polling: bool,
    wake_at: Option<Instant>,
}

pub(crate) struct Reactor {
    poller: Poller,
    sources: Mutex<Slab<Slot>>,
    next_gen: AtomicU64,
    timers: Mutex<Timers>,
    timer_seq: AtomicU64,
}

static REACTOR: OnceLock<Arc<Reactor>> = OnceLock::new();

pub(crate) fn reactor() -> &'static Reactor {
    REACTOR.get_or_init(|| {
        let r = Arc::new(Reactor {
            poller: Poller::new().expect("nanoport: cannot create the poller (epoll)"),
            sources: Mutex::new(Slab::with_capacity(64)),
            next_gen: AtomicU64::new(1),
            timers: Mutex::new(Timers {
                map: BTreeMap::new(),
                polling: false,
                wake_at: None,
            }),
            timer_seq: AtomicU64::new(0),
        });
        let r2 = r.clone();
        thread::Builder::new()
            .name("nanoport:reactor".into())
            .spawn(move || r2.run())
            .expect("nanoport: cannot start the reactor thread");
        r
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Handlers run under catch_unwind with no reactor lock held, so a poisoned lock means an
    // engine bug mid-update; the data is still a valid map or slab, so keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const INDEX_BITS: u32 = 32;

impl Reactor {
    fn run(&self) {
        let mut events = Events::new();
        let mut due: Vec<TimerEntry> = Vec::new();
        // The idle strategy: after work, poll without sleeping until the spin runs out.
        let mut spin: Option<SpinBudget> = None;
        loop {
            let timeout = {
                let mut t = lock(&self.timers);
                let next = t.map.keys().next().map(|k| k.0);
                t.polling = true;
                t.wake_at = next;
                next.map(|at| at.saturating_duration_since(Instant::now()))
            };
            let timeout = match spin {
                Some(b) if b.left() => Some(std::time::Duration::ZERO),
                _ => timeout,
            };
            events.clear();
            let polled = self.poller.wait(&mut events, timeout);
            if events.iter().next().is_some() {
                spin = SpinBudget::start();
            }
            if let Err(e) = polled {
                if e.kind() != io::ErrorKind::Interrupted {
                    eprintln!("nanoport: poller wait failed: {e}");
                }
            }
            lock(&self.timers).polling = false;
            INLINE_READS_LEFT.with(|c| c.set(Some(INLINE_READS_PER_TURN)));
            crate::aio::engine_scope(|| {
                for ev in events.iter() {
                    self.dispatch(ev);
                }
                self.collect_due(&mut due);
                for entry in due.drain(..) {
                    run_guarded(|| {
                        entry.aio.engine_complete(entry.gen, entry.result, true);
                    });
                }
            });
        }
    }

    fn collect_due(&self, due: &mut Vec<TimerEntry>) {
        let now = Instant::now();
        let mut t = lock(&self.timers);
        while let Some(entry) = t.map.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
    }

    fn dispatch(&self, ev: Event) {
        let index = ev.key & ((1usize << INDEX_BITS) - 1);
        let gen = (ev.key >> INDEX_BITS) as u32;
        let reg = {
            let sources = lock(&self.sources);
            match sources.get(index) {
                Some(slot) if slot.gen == gen => slot.reg.upgrade(),
                _ => None, // stale: the registration is gone, or the slot was reused
            }
        };
        let Some(reg) = reg else { return };
        self.deliver(&reg, ev);
    }

    /// The second half of [`dispatch`](Reactor::dispatch), once the event's registration
    /// has been found: re-arm what the event did not consume, then run the handler.
    fn deliver(&self, reg: &RegInner, ev: Event) {
        let fired = {
            let mut armed = lock(&reg.armed);
            if !armed.live {
                // Deregistered since the event was collected; the fd may be closed, or its
                // number already reused by another registration: leave it alone.
                return;
            }
            let fired = Interest {
                read: ev.readable,
                write: ev.writable,
            }
            .intersect(armed.interest);
            let rest = armed.interest.minus(fired);
            // Oneshot disarmed the fd entirely; put back what is still wanted.
            if !rest.is_none() {
                let _ = self.modify(reg.fd, reg.key, rest);
            }
            armed.interest = rest;
            fired
        };
        if fired.is_none() {
            return;
        }
        if let Some(h) = reg.handler.upgrade() {
            run_guarded(|| h.on_ready(fired));
        }
    }

    fn modify(&self, fd: RawFd, key: usize, i: Interest) -> io::Result<()> {
        MODIFICATIONS.fetch_add(1, Ordering::Relaxed);
        // Callers hold the registration's `armed` lock and saw it `live`; `drop` clears
        // `live` under that lock before deleting the fd, and the owner closes the fd after.
        // SAFETY: so `fd` is open and still this registration's for the whole call.
        let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
        let ev = match (i.read, i.write) {
            (true, true) => Event::all(key),
            (true, false) => Event::readable(key),
            (false, true) => Event::writable(key),
            (false, false) => Event::none(key),
        };
        self.poller.modify_oneshot(bfd, ev)
    }

    pub(crate) fn add_timer(
        &self,
        at: Instant,
        aio: Arc<AioCore>,
        gen: u64,
        result: Result<()>,
    ) -> TimerKey {
        let seq = self.timer_seq.fetch_add(1, Ordering::Relaxed);
        let mut t = lock(&self.timers);
        t.map.insert((at, seq), TimerEntry { aio, gen, result });
        let wake = t.polling && t.wake_at.is_none_or(|w| at < w);
        if wake {
            t.wake_at = Some(at);
        }
        drop(t);
        if wake {
            let _ = self.poller.notify();
        }
        TimerKey { at, seq }
    }

    pub(crate) fn remove_timer(&self, key: &TimerKey) {
        let removed = lock(&self.timers).map.remove(&(key.at, key.seq));
        drop(removed);
    }

    /// Number of armed timers (for tests and leak checks).
    pub(crate) fn timer_count(&self) -> usize {
        lock(&self.timers).map.len()
    }

    pub(crate) fn source_count(&self) -> usize {
        lock(&self.sources).len()
    }
}

impl Registration {
    /// Registers the non-blocking `fd` with the reactor; readiness goes to `handler`.
    ///
    /// The caller keeps the fd open at least as long as the returned registration: drop
    /// the registration first, then close the fd.
    ///
    /// # Errors
    /// The poller's error when the fd cannot be added (a closed fd, say).
    pub fn new(fd: RawFd, handler: Weak<dyn ReadyHandler>) -> Result<Registration> {
        let r = reactor();
        let mut sources = lock(&r.sources);
        let entry = sources.vacant_entry();
        let index = entry.key();
        if index >= (1usize << INDEX_BITS) - 1 {
            return Err(crate::Error::NoMem);
        }
        let gen = (r.next_gen.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff) as u32;
        let key = ((gen as usize) << INDEX_BITS) | index;
        let inner = Arc::new_cyclic(|me| RegInner {
            fd,
            key,
            armed: Mutex::new(Armed {
                interest: Interest::NONE,
                live: true,
                borrowed: Interest::NONE,
                driving: Interest::NONE,
                wanted: Interest::NONE,
                driver: None,
            }),
            handler,
            drives: AtomicU64::new(0),
            hold_swept: AtomicBool::new(false),
            me: me.clone(),
            #[cfg(test)]
            sweep_exempt: AtomicBool::new(false),
        });
        // SAFETY: the caller promises the fd stays open while the registration lives, and
        // `Registration::drop` deletes it from the poller before the slot is freed.
        unsafe { r.poller.add_oneshot(fd, Event::none(key)) }?;
        entry.insert(Slot {
            gen,
            reg: Arc::downgrade(&inner),
        });
        Ok(Registration { inner })
    }

    /// Adds `interest` to what the fd waits for; the handler hears of it once per arming.
    ///
    /// # Errors
    /// The poller's error (the fd was closed under us, say).
    pub fn arm(&self, interest: Interest) -> Result<()> {
        let mut armed = lock(&self.inner.armed);
        // A borrower inside its wait watches its direction: it will run the handler.
        let absorbed = interest.intersect(armed.driving);
        armed.wanted = armed.wanted.union(absorbed);
        // A read held by a thread that went off to its own work is watched by nobody:
        // whoever arms it now needs the reactor, so the hold ends here.
        let held = interest.intersect(armed.held());
        armed.borrowed = armed.borrowed.minus(held);
        armed.wanted = armed.wanted.minus(held);
        let interest = interest.minus(armed.borrowed);
        let want = armed.interest.union(interest);
        if want != armed.interest {
            // `live` holds: `self` is the registration, so it has not been dropped.
            reactor().modify(self.inner.fd, self.inner.key, want)?;
            armed.interest = want;
        }
        Ok(())
    }

    /// The registered fd.
    pub fn fd(&self) -> RawFd {
        self.inner.fd
    }

    /// A handle with which a blocked thread can wait for this fd's read readiness itself,
    /// in place of the reactor (see [`AioProvider::wait_driving`](crate::AioProvider::wait_driving)).
    pub fn read_readiness(&self) -> Readiness {
        Readiness {
            inner: self.inner.clone(),
            dir: Interest::READ,
        }
    }

    /// As [`read_readiness`](Registration::read_readiness), for writability: a sender
    /// blocked on a full pipe writes the pipe out itself when the fd can take more.
    pub fn write_readiness(&self) -> Readiness {
        Readiness {
            inner: self.inner.clone(),
            dir: Interest::WRITE,
        }
    }
}

/// One direction of a registration, for a thread that drives it while it waits.
///
/// Why: when a caller blocks for a message, the reactor would be woken by the data, run
/// the read, complete the caller's aio and wake the caller: two thread wake-ups per
/// message where a blocking `read` has one. A caller that borrows the interest polls the
/// fd itself, so the kernel wakes it directly and it runs the handler on its own thread;
/// the reactor sees no event for that direction meanwhile. The same holds for a sender
/// waiting for room.
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<RegInner>,
    /// `Interest::READ` or `Interest::WRITE`.
    dir: Interest,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("fd", &self.inner.fd)
            .field("dir", &self.dir)
            .finish()
    }
}

impl Readiness {
    /// Takes this direction's armed interest from the reactor (or resumes a held read).
    /// False (nothing changes) when no operation is parked on it, another thread drives
    /// it, or the fd was deregistered. A read this thread holds on another fd goes back
    /// to the reactor first: the thread is about to wait here, not there.
    pub(crate) fn borrow(&self) -> bool {
        if self.dir.read {
            if let Some(prev) = take_held(Some(&self.inner)) {
                prev.end_hold();
            }
        }
        if !self.borrow_if(|_| true) {
            return false;
        }
        if self.dir.read {
            // A wait that polls the fd: what the hold sweep counts as the thread still
            // coming back for its reads. A held send does not count, so a thread that
            // only sends after one receive lets the sweep give the reads back.
            self.inner.drives.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// [`borrow`](Readiness::borrow), only if `cond` holds of the registration's state
    /// (checked under the same lock).
    fn borrow_if(&self, cond: impl FnOnce(&Armed) -> bool) -> bool {
        let me = std::thread::current().id();
        let mut armed = lock(&self.inner.armed);
        if !cond(&armed) || !armed.live || !armed.driving.intersect(self.dir).is_none() {
            return false;
        }
        if !armed.held().intersect(self.dir).is_none() {
            // Held since a wait ended (by this thread, or by one that went elsewhere):
            // drive it again with no poller call at all. Only for a parked operation,
            // or the poll would report the same bytes over and over with nobody to read
            // them.
            if armed.wanted.intersect(self.dir).is_none() {
                return false;
            }
        } else {
            if armed.interest.intersect(self.dir).is_none() {
                return false;
            }
            let rest = armed.interest.minus(self.dir);
            // `live` holds under the lock, so the fd is open (see `Armed`).
            if reactor()
                .modify(self.inner.fd, self.inner.key, rest)
                .is_err()
            {
                return false;
            }
            armed.interest = rest;
            armed.borrowed = armed.borrowed.union(self.dir);
            // The arming that parked the operation moves along with the interest.
            armed.wanted = armed.wanted.union(self.dir);
        }
        armed.driving = armed.driving.union(self.dir);
        if self.dir.read {
            // This thread now waits by driving the fd (see `holding_reads`).
            armed.driver = Some(me);
        }
        true
    }

    /// Whether this is the write side (poll for writability).
    pub(crate) fn is_write(&self) -> bool {
        self.dir.write
    }

    /// Runs `f`, a send that starts without waiting, with the read interest taken from
    /// the reactor, and keeps holding it afterwards (see [`end_hold`](Readiness::end_hold)):
    /// the thread's next receive finds the answer with one `poll`. Only on the read side,
    /// and for a thread that last waited by driving this fd (a request/reply loop);
    /// otherwise it just runs `f`.
    ///
    /// Why: the answer to a send may arrive before the sender is back in its receive. On
    /// one CPU it always does, since the send wakes the peer, which preempts the sender
    /// and answers at once. With reads armed, that answer wakes the reactor (two context
    /// switches, and the sender's receive then waits for it); held, the sender's receive
    /// reads it itself.
    ///
    /// `f` must not block: the fd's reads are not watched while it runs.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(rr: &nanoport_engine::Readiness, send: impl FnOnce()) {
    /// rr.holding_reads(send); // `send` starts the operation; wait for it afterwards
    /// # }
    /// ```
    pub fn holding_reads<R>(&self, f: impl FnOnce() -> R) -> R {
        if !self.dir.read {
            return f();
        }
        let me = std::thread::current().id();
        if !self.borrow_if(|armed| armed.driver == Some(me)) {
            return f();
        }
        // Gives the interest back even if `f` panics, or the fd would never be read again.
        struct GiveBack<'a>(&'a Readiness);
        impl Drop for GiveBack<'_> {
            fn drop(&mut self) {
                self.0.give_back(false);
            }
        }
        let _back = GiveBack(self);
        f()
    }

    /// The fd to poll while borrowed. It may be closed once the borrow is given back (or
    /// the registration dropped); polling a stale number only wakes spuriously.
    pub(crate) fn fd(&self) -> RawFd {
        self.inner.fd
    }

    /// Ends a borrow. `ready`: the fd polled ready, so the borrower runs the handler here,
    /// as the reactor would have (the readiness is consumed, as one-shot). Otherwise the
    /// interest goes back to the reactor.
    pub(crate) fn give_back(&self, ready: bool) {
        {
            let mut armed = lock(&self.inner.armed);
            if armed.driving.intersect(self.dir).is_none() {
                return;
            }
            if !armed.live {
                armed.borrowed = armed.borrowed.minus(self.dir);
                armed.driving = armed.driving.minus(self.dir);
                return;
            }
            if ready {
                // Consumed, as a one-shot event: the handler arms again (absorbed while
                // this thread drives) if its operation still waits.
                armed.wanted = armed.wanted.minus(self.dir);
            }
            if self.dir.write {
                // A writer lets go at once: the write side is borrowed only for a blocked
                // send, and its handler may arm writes for the reactor.
                armed.borrowed = armed.borrowed.minus(self.dir);
                armed.driving = armed.driving.minus(self.dir);
                let wanted = !armed.wanted.intersect(self.dir).is_none();
                armed.wanted = armed.wanted.minus(self.dir);
                if !ready && wanted {
                    let want = armed.interest.union(self.dir);
                    if reactor()
                        .modify(self.inner.fd, self.inner.key, want)
                        .is_ok()
                    {
                        armed.interest = want;
                    }
                }
            }
        }
        if ready {
            if let Some(h) = self.inner.handler.upgrade() {
                crate::aio::engine_scope(|| {
                    crate::aio::driving(|| run_guarded(|| h.on_ready(self.dir)));
                });
            }
        }
        if self.dir.read {
            self.hold();
        }
    }

    /// Ends this thread's drive of the reads but keeps them from the reactor: the thread
    /// is most likely back for the next message before it arrives, and then resumes with
    /// no poller call. Something else needing the reads watched ends the hold at once
    /// (an arm, a blocking wait of this thread, a drive of another fd); otherwise the
    /// hold sweep ends it once the thread has stayed away for 10–20 ms.
    fn hold(&self) {
        {
            let mut armed = lock(&self.inner.armed);
            armed.driving = armed.driving.minus(Interest::READ);
        }
        if let Some(prev) = take_held(Some(&self.inner)) {
            prev.end_hold();
        }
        if HELD_READS
            .try_with(|h| *h.borrow_mut() = Some(self.clone()))
            .is_err()
        {
            // The thread is exiting: nobody will come back for these reads.
            self.end_hold();
            return;
        }
        HOLD_SWEEP.watch_once(&self.inner, &self.inner.hold_swept);
    }

    /// Gives a read this or another thread holds between its receives back to the
    /// reactor; nothing if it is not held, or a thread drives it right now.
    ///
    /// A thread that waited by driving an fd's reads keeps them from the reactor when its
    /// wait ends, so its next receive needs no poller call. Whatever else comes to need the
    /// reads watched ends the hold: an arming of reads, that thread blocking in a wait
    /// that does not drive the fd, or its driving another fd; after that the hold sweep
    /// ends any hold left alone for 10–20 ms. A receive that completes through a callback
    /// calls this, so it need not wait for the sweep.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(rr: &nanoport_engine::Readiness) {
    /// rr.end_hold(); // the reactor watches the reads again
    /// # }
    /// ```
    pub fn end_hold(&self) {
        self.inner.end_hold();
    }
}

impl RegInner {
    fn end_hold(&self) {
        let mut armed = lock(&self.armed);
        if !armed.live || armed.held().intersect(Interest::READ).is_none() {
            return;
        }
        armed.borrowed = armed.borrowed.minus(Interest::READ);
        if armed.wanted.read {
            armed.wanted = armed.wanted.minus(Interest::READ);
            let want = armed.interest.union(Interest::READ);
            // `live` holds under the lock, so the fd is open (see `Armed`).
            if reactor().modify(self.fd, self.key, want).is_ok() {
                armed.interest = want;
            }
        }
    }
}

/// How often the hold sweep looks at held reads: a thread away from its receives for
/// one to two periods gives them back to the reactor.
pub const HOLD_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

static HOLD_SWEEP: Sweep = Sweep::new(HOLD_SWEEP_EVERY);

/// How many reads the reactor lets handlers start and attempt at once in one turn (one
/// poller wait and the work it hands out), beyond the reads that readiness itself drives.
/// A stream pipe's read takes up to 64 KiB, and the protocol's work per message is
/// O(message), so one turn handles at most this many reads plus one per ready source
/// before the poller is asked again and every ready source gets its turn: a flooded
/// socket delays the others' readiness by about 1 MiB of message processing at most.
pub const INLINE_READS_PER_TURN: u32 = 16;

thread_local! {
    /// On the reactor thread during a turn: the reads still allowed to start inline (see
    /// [`INLINE_READS_PER_TURN`]); `None` on other threads, which are not limited (a
    /// thread that drives its own reads spends its own time).
    static INLINE_READS_LEFT: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Takes one inline read from this turn's budget; false once it is spent (only ever on
/// the reactor thread).
pub(crate) fn take_inline_read() -> bool {
    INLINE_READS_LEFT.with(|c| match c.get() {
        None => true,
        Some(0) => false,
        Some(n) => {
            c.set(Some(n - 1));
            true
        }
    })
}

thread_local! {
    /// The read this thread holds between its receives, if any (at most one).
    static HELD_READS: RefCell<Option<Readiness>> = const { RefCell::new(None) };
}

/// Takes the read this thread holds, if any, unless it is `keep`'s own (the thread is
/// back on that fd). The caller gives it back with [`Readiness::end_hold`], outside any
/// lock. `try_with`: an aio dropped by another thread-local's destructor may wait after
/// this one is gone; there is then nothing held.
fn take_held(keep: Option<&Arc<RegInner>>) -> Option<Readiness> {
    HELD_READS
        .try_with(|h| {
            let mut h = h.borrow_mut();
            match (h.as_ref(), keep) {
                (Some(held), Some(k)) if Arc::ptr_eq(&held.inner, k) => None,
                _ => h.take(),
            }
        })
        .ok()
        .flatten()
}

/// The read this thread holds, taken from it: called before the thread blocks in a wait
/// that does not drive it, since nobody would read the fd meanwhile.
pub(crate) fn take_this_threads_hold() -> Option<Readiness> {
    take_held(None)
}

impl IdleBuffers for RegInner {
    fn activity(&self) -> u64 {
        self.drives.load(Ordering::Relaxed)
    }

    fn release_idle(&self) -> bool {
        #[cfg(test)]
        if self.sweep_exempt.load(Ordering::Relaxed) {
            return true;
        }
        // A thread driving now lets go by itself when its wait ends, and enlists again.
        self.end_hold();
        false
    }

    fn unwatched(&self) {
        self.hold_swept.store(false, Ordering::Release);
        // A hold that began after the sweep's look but before this reset found the flag
        // still set; enlist it now, or it would stay held until the next drive.
        let held = {
            let armed = lock(&self.armed);
            armed.live && !armed.held().intersect(Interest::READ).is_none()
        };
        if held {
            if let Some(me) = self.me.upgrade() {
                HOLD_SWEEP.watch_once(&me, &self.hold_swept);
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let r = reactor();
        // From here on the reactor no longer re-arms this fd (see `Armed`).
        lock(&self.inner.armed).live = false;
        // SAFETY: the fd is still open: the owner drops the registration before closing it.
        let bfd = unsafe { BorrowedFd::borrow_raw(self.inner.fd) };
        let _ = r.poller.delete(bfd);
        let index = self.inner.key & ((1usize << INDEX_BITS) - 1);
        let mut sources = lock(&r.sources);
        if sources
            .get(index)
            .is_some_and(|s| s.gen == (self.inner.key >> INDEX_BITS) as u32)
        {
            sources.remove(index);
        }
    }
}

static MODIFICATIONS: AtomicU64 = AtomicU64::new(0);

/// How many times the reactor has changed an fd's armed interest in the poller so far
/// (one `epoll_ctl` each), over the whole process: a diagnostic, as
/// [`armed_timers`] is.
///
/// # Examples
///
/// ```
/// let before = nanoport_engine::poller_modifications();
/// assert!(nanoport_engine::poller_modifications() >= before);
/// ```
pub fn poller_modifications() -> u64 {
    MODIFICATIONS.load(Ordering::Relaxed)
}

/// How many timers are armed right now: a deadline of a pending aio each.
pub fn armed_timers() -> usize {
    reactor().timer_count()
}

/// How many fds are registered with the reactor right now.
pub fn registered_sources() -> usize {
    reactor().source_count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::time::Duration;

    struct Tell(Mutex<mpsc::Sender<Interest>>);
    impl ReadyHandler for Tell {
        fn on_ready(&self, ready: Interest) {
            let _ = self.0.lock().unwrap().send(ready);
        }
    }

    fn handler() -> (Arc<dyn ReadyHandler>, mpsc::Receiver<Interest>) {
        let (tx, rx) = mpsc::channel();
        (Arc::new(Tell(Mutex::new(tx))), rx)
    }

    #[test]
    fn readiness_reaches_the_handler_once_per_arming() {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let (h, rx) = handler();
        let reg = Registration::new(a.as_raw_fd(), Arc::downgrade(&h)).unwrap();
        reg.arm(Interest::READ).unwrap();
        b.write_all(b"x").unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            Interest::READ
        );
        // Oneshot: no second event until re-armed, although the byte is still there.
        assert!(rx.recv_timeout(Duration::from_millis(20)).is_err());
        reg.arm(Interest::READ).unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            Interest::READ
        );
    }

    fn end_this_threads_hold_for_test() {
        if let Some(r) = take_this_threads_hold() {
            r.end_hold();
        }
    }

    fn state(reg: &Registration) -> (Interest, Interest, Interest) {
        let a = lock(&reg.inner.armed);
        (a.interest, a.held(), a.wanted)
    }

    #[test]
    fn a_held_read_resumes_without_the_poller_and_goes_back_when_armed_or_ended() {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let (h, rx) = handler();
        let reg = Registration::new(a.as_raw_fd(), Arc::downgrade(&h)).unwrap();
        // Stepped through by hand: the sweep must not end a hold between two steps.
        reg.inner.sweep_exempt.store(true, Ordering::Relaxed);
        let rr = reg.read_readiness();
        assert!(!rr.borrow(), "nothing parked: nothing to borrow");
        reg.arm(Interest::READ).unwrap();
        assert!(rr.borrow());
        assert!(!rr.borrow(), "one driver at a time");
        rr.give_back(false); // the wait ended some other way: the read is held
        assert_eq!(
            state(&reg),
            (Interest::NONE, Interest::READ, Interest::READ)
        );
        // Resumed straight from the hold, with the operation still parked.
        assert!(rr.borrow());
        assert_eq!(state(&reg).1, Interest::NONE, "driven, not held");
        rr.give_back(false);

        // Someone arms the read while it is held: the reactor takes it back and tells
        // the handler when the byte comes.
        reg.arm(Interest::READ).unwrap();
        assert_eq!(
            state(&reg),
            (Interest::READ, Interest::NONE, Interest::NONE)
        );
        b.write_all(b"x").unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            Interest::READ
        );
        // Read it, or the reactor could fire again at the next arming and take it first.
        std::io::Read::read(&mut &a, &mut [0u8; 1]).unwrap();

        // Held again, then ended: the same.
        reg.arm(Interest::READ).unwrap();
        assert!(rr.borrow());
        rr.give_back(false);
        b.write_all(b"y").unwrap();
        rr.end_hold();
        assert_eq!(state(&reg).1, Interest::NONE);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            Interest::READ,
            "a byte that came while held is reported once the reactor watches again"
        );
        std::io::Read::read(&mut &a, &mut [0u8; 1]).unwrap();

        // A ready poll consumes the arming, as a one-shot event; with no operation
        // parked again, a held read cannot be borrowed (its poll would spin).
        reg.arm(Interest::READ).unwrap();
        assert!(rr.borrow());
        rr.give_back(true); // runs the handler, which arms nothing
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            Interest::READ
        );
        assert_eq!(
            state(&reg),
            (Interest::NONE, Interest::READ, Interest::NONE)
        );
        assert!(!rr.borrow());
        end_this_threads_hold_for_test();
        assert_eq!(
            state(&reg),
            (Interest::NONE, Interest::NONE, Interest::NONE)
        );
    }

    #[test]
    fn only_driving_waits_count_as_coming_back_for_the_reads() {
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let (h, _rx) = handler();
        let reg = Registration::new(a.as_raw_fd(), Arc::downgrade(&h)).unwrap();
        reg.inner.sweep_exempt.store(true, Ordering::Relaxed);
        reg.arm(Interest::READ).unwrap();
        let rr = reg.read_readiness();
        let drives = || reg.inner.drives.load(Ordering::Relaxed);
        assert!(rr.borrow());
        rr.give_back(false);
        assert_eq!(drives(), 1);
        // Held sends by the same thread keep the reads held but are not waits for them:
        // a thread that only sends lets the sweep give the reads back.
        for _ in 0..3 {
            rr.holding_reads(|| ());
        }
        assert_eq!(drives(), 1);
        assert_eq!(state(&reg).1, Interest::READ, "still held");
        assert!(rr.borrow());
        rr.give_back(false);
        assert_eq!(drives(), 2);
        end_this_threads_hold_for_test();
    }

    #[test]
    fn driving_another_fd_ends_this_threads_hold_first() {
        let pairs = [UnixStream::pair().unwrap(), UnixStream::pair().unwrap()];
        let (h, _rx) = handler();
        let regs: Vec<Registration> = pairs
            .iter()
            .map(|(a, _)| {
                a.set_nonblocking(true).unwrap();
                let reg = Registration::new(a.as_raw_fd(), Arc::downgrade(&h)).unwrap();
                reg.inner.sweep_exempt.store(true, Ordering::Relaxed);
                reg.arm(Interest::READ).unwrap();
                reg
            })
            .collect();
        let (r1, r2) = (regs[0].read_readiness(), regs[1].read_readiness());
        assert!(r1.borrow());
        r1.give_back(false);
        assert_eq!(state(&regs[0]).1, Interest::READ, "held");
        assert!(r2.borrow());
        assert_eq!(
            state(&regs[0]),
            (Interest::READ, Interest::NONE, Interest::NONE),
            "back with the reactor before this thread waits on the other fd"
        );
        r2.give_back(false);
        assert_eq!(state(&regs[1]).1, Interest::READ);
        end_this_threads_hold_for_test();
        assert_eq!(state(&regs[1]).0, Interest::READ);
    }

    #[test]
    fn a_held_read_left_alone_goes_back_through_the_hold_sweep() {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let (h, rx) = handler();
        let reg = Registration::new(a.as_raw_fd(), Arc::downgrade(&h)).unwrap();
        reg.arm(Interest::READ).unwrap();
        let rr = reg.read_readiness();
        let holder = std::thread::spawn(move || {
            assert!(rr.borrow());
            rr.give_back(false); // held, and this thread ends
        });
        holder.join().unwrap();
        b.write_all(b"x").unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            Interest::READ,
            "the hold was never given back"
        );
        assert_eq!(state(&reg).1, Interest::NONE);
    }

    #[test]
    fn a_late_event_of_a_dropped_registration_leaves_the_fd_number_s_new_owner_alone() {
        // The reactor found registration 1 for an event (it holds its `RegInner`), then
        // registration 1 is dropped and its fd number handed to a new socket with its own
        // registration before the reactor gets to re-arm. Re-arming then would move the
        // new registration onto the old key, whose events are dropped as stale.
        let (a, _a_peer) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let (h1, _rx1) = handler();
        let reg1 = Registration::new(a.as_raw_fd(), Arc::downgrade(&h1)).unwrap();
        reg1.arm(Interest {
            read: true,
            write: true,
        })
        .unwrap();
        let found = reg1.inner.clone(); // what `dispatch` holds after its lookup
        drop(reg1);

        // The same fd number now names another socket (dup2 closes `a`'s file atomically,
        // so no other thread can grab the number in between).
        let (c, mut c_peer) = UnixStream::pair().unwrap();
        c.set_nonblocking(true).unwrap();
        let num = a.into_raw_fd();
        // SAFETY: both are open fds we own; dup2 makes `num` refer to `c`'s socket.
        let r = unsafe { libc::dup2(c.as_raw_fd(), num) };
        assert_eq!(r, num);
        // SAFETY: `num` is open and owned by nobody else since `into_raw_fd`.
        let reused = unsafe { OwnedFd::from_raw_fd(num) };
        let (h2, rx2) = handler();
        let reg2 = Registration::new(reused.as_raw_fd(), Arc::downgrade(&h2)).unwrap();
        reg2.arm(Interest::READ).unwrap();

        // The reactor now finishes handling the writable event it found for registration 1.
        reactor().deliver(&found, Event::writable(found.key));

        c_peer.write_all(b"x").unwrap();
        assert_eq!(
            rx2.recv_timeout(Duration::from_secs(5)),
            Ok(Interest::READ),
            "the new registration lost its readiness to a stale re-arm"
        );
        drop(reg2);
        drop(reused);
    }
}
