//! [`Aio`]: one asynchronous operation slot with a completion callback (`nng_aio`).
//!
//! # The life of an operation
//!
//! An aio is *idle* until a provider (a socket, a transport, [`sleep_aio`]) calls
//! [`AioProvider::begin`], which makes it *pending* and hands back an [`OpToken`]. Exactly one
//! completion ends the operation: the provider's [`AioProvider::finish`] (or [`finish_recv`],
//! [`finish_send`]), the expiry of its deadline, or a [`cancel`]/[`abort`]/[`stop`]. All of
//! them go through one check under the aio's lock (state pending, token generation
//! current), so whichever comes first wins and every later attempt is told it lost. The
//! winner records the result and queues the callback on the worker pool; an aio without a
//! callback wakes its waiters directly instead.
//!
//! When a cancel or deadline wins, the engine completes the aio itself and then tells the
//! provider through its [`Cancel`] hook so it can forget the operation. Providers never have
//! to finish a cancelled operation, and a provider that finishes late simply loses.
//!
//! Messages change hands only together with a winning completion: [`finish_recv`] stores a
//! received message only if it wins (a loser gets its message back), and [`finish_send`]
//! takes the message off the aio only if it wins. A failed or cancelled send therefore
//! leaves the message on the aio for the user to [`take_msg`], and a message is never both
//! delivered and handed back.
//!
//! [`finish_recv`]: AioProvider::finish_recv
//! [`finish_send`]: AioProvider::finish_send
//! [`cancel`]: Aio::cancel
//! [`abort`]: Aio::abort
//! [`stop`]: Aio::stop
//! [`take_msg`]: Aio::take_msg

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use crate::idle_strategy::{spin_until, SpinBudget};
use crate::pool::{pool, run_guarded, Job};
use crate::reactor::{reactor, Readiness, TimerKey};
use crate::waker::ThreadWaker;
use crate::{Error, Message, Result, Timeout};

type Callback = Box<dyn Fn(&Aio) + Send + Sync + 'static>;

/// A provider's hook, told when the engine has completed one of its operations by cancel,
/// abort, stop or expiry, so it can drop its bookkeeping for that operation.
///
/// The aio is already complete when this runs: the provider must not finish it (a finish
/// would lose anyway) and must not block.
pub trait Cancel: Send + Sync + 'static {
    /// Operation `token` on `aio`, registered with `key`, was completed with an error by
    /// the engine.
    fn cancelled(&self, aio: &Aio, key: usize, token: OpToken);
}

/// What [`AioProvider::begin`] registers so a pending operation can be cancelled and can expire.
#[derive(Clone)]
pub struct CancelHook {
    target: Arc<dyn Cancel>,
    key: usize,
}

impl fmt::Debug for CancelHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHook")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl CancelHook {
    /// A hook calling `target.cancelled(.., key, ..)`.
    pub fn new(target: Arc<dyn Cancel>, key: usize) -> CancelHook {
        CancelHook { target, key }
    }
}

/// Identifies one started operation on one aio; completions carrying an old token lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpToken {
    gen: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No operation, or its callback has been taken by a worker.
    Idle,
    /// Started and not yet completed.
    Pending,
    /// Completed; the callback is queued (or waits for the running one to return).
    Done,
}

#[derive(Debug, Clone, Copy)]
enum Expiry {
    Relative(Timeout),
    At(Instant),
}

struct State {
    phase: Phase,
    gen: u64,
    result: Result<()>,
    count: usize,
    msg: Option<Message>,
    output: Option<Box<dyn Any + Send>>,
    expiry: Expiry,
    stopped: bool,
    hook: Option<CancelHook>,
    timer: Option<TimerKey>,
    running_cb: bool,
    cb_thread: Option<ThreadId>,
    waiters: usize,
    /// Where the pending operation of a direct aio was started ([`Origin`]).
    origin: Origin,
    /// A thread waiting in `poll` for this aio ([`AioProvider::wait_driving`]): woken by its fd.
    poller: Option<Arc<ThreadWaker>>,
}

pub(crate) struct AioCore {
    st: Mutex<State>,
    cv: Condvar,
    cb: Option<Callback>,
    /// Run the callback on the completing thread, at the end of its current engine scope
    /// (see [`AioProvider::new_inline`]).
    inline: bool,
    /// Run the callback on the completing thread unless the operation completed inside
    /// the call that started it (see [`Aio::new_direct`]).
    direct: bool,
    handles: AtomicUsize,
}

/// Where an operation was started: the starting thread and its outermost engine scope (0:
/// outside any). A completion on the same thread in the same scope happens inside the
/// call that started the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Origin {
    thread: u64,
    scope: u64,
}

thread_local! {
    /// This thread's tag for [`Origin`], drawn once per thread.
    static THREAD_TAG: u64 = {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    };
    /// Counts this thread's outermost engine scopes, so each has its own number.
    static SCOPE_SERIAL: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl Origin {
    /// Here and now: this thread, and its current outermost scope.
    fn here() -> Origin {
        Origin {
            thread: THREAD_TAG.with(|t| *t),
            scope: if in_engine_scope() {
                SCOPE_SERIAL.with(std::cell::Cell::get)
            } else {
                0
            },
        }
    }
}

thread_local! {
    /// Inline completions waiting for the current engine scope to end (no locks held).
    static DEFERRED: std::cell::RefCell<(usize, Vec<Arc<AioCore>>)> = const { std::cell::RefCell::new((0, Vec::new())) };
    /// Operations started in the current scope with a deadline already due (a zero
    /// timeout: "do not wait"): each times out when the scope ends unless its provider
    /// answered synchronously.
    static DUE: std::cell::RefCell<Vec<(Arc<AioCore>, u64)>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Aios completed in the current engine scope whose waiters are still to be woken.
    ///
    /// A scope usually completes an operation while holding the lock of the socket or
    /// pipe it works on. Woken at once, the waiter preempts the completing thread (on
    /// one CPU) or races it (on two), only to block on that same lock: a context switch
    /// there and back. So its wake-up waits until the scope has let go of everything.
    static WAKES: std::cell::RefCell<Vec<Wake>> = const { std::cell::RefCell::new(Vec::new()) };
}

thread_local! {
    /// Work put off to the end of the current engine scope ([`at_scope_end`]).
    static JOBS: std::cell::RefCell<Vec<Arc<dyn ScopeEndJob>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Work an engine scope puts off until it has released its locks (see [`at_scope_end`]).
pub trait ScopeEndJob: Send + Sync + 'static {
    /// Does the work; runs on the thread that deferred it, inside a fresh scope level, so
    /// what it completes is handled like the scope's own completions.
    fn run_at_scope_end(&self);
}

/// Runs `job` when this thread's outermost engine scope ends, after the scope's code has
/// released its locks (or at once, outside any scope).
///
/// A transport defers its inline write this way: a write to a socket wakes the peer's
/// thread, which on one CPU preempts the writer at once; made while the sending socket's
/// lock is held, the woken side can find that lock taken and must switch back.
///
/// # Examples
///
/// ```
/// use nanoport_engine::{at_scope_end, engine_scope, ScopeEndJob};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// struct Flag(AtomicBool);
/// impl ScopeEndJob for Flag {
///     fn run_at_scope_end(&self) { self.0.store(true, Ordering::SeqCst) }
/// }
/// let flag = Arc::new(Flag(AtomicBool::new(false)));
/// engine_scope(|| {
///     at_scope_end(flag.clone());
///     assert!(!flag.0.load(Ordering::SeqCst), "not yet: the scope is still running");
/// });
/// assert!(flag.0.load(Ordering::SeqCst));
/// ```
pub fn at_scope_end(job: Arc<dyn ScopeEndJob>) {
    if in_engine_scope() {
        JOBS.with(|j| j.borrow_mut().push(job));
    } else {
        job.run_at_scope_end();
    }
}

/// Runs this thread's deferred jobs (and the ones they defer), in the order deferred.
fn run_jobs() {
    loop {
        let next = JOBS.with(|j| {
            let mut j = j.borrow_mut();
            (!j.is_empty()).then(|| j.remove(0))
        });
        let Some(job) = next else { return };
        reset_scope_now();
        DEFERRED.with(|d| d.borrow_mut().0 += 1);
        // Leaves the level even if the job panics (it is engine code; see `ScopeExit`).
        let _leave = LevelExit;
        job.run_at_scope_end();
    }
}

/// Leaves a scope level entered by engine code without running the end-of-scope work
/// (the caller does that).
struct LevelExit;

impl Drop for LevelExit {
    fn drop(&mut self) {
        DEFERRED.with(|d| d.borrow_mut().0 -= 1);
    }
}

/// A wake-up owed to a waiter: condvar waiters of an aio, or a thread polling its fd.
enum Wake {
    Cv(Arc<AioCore>),
    Fd(Arc<ThreadWaker>),
}

impl Wake {
    fn deliver(self) {
        match self {
            Wake::Cv(core) => core.cv.notify_all(),
            Wake::Fd(w) => w.wake(),
        }
    }
}

/// Wakes the waiters of the aios this thread completed in its engine scope.
fn wake_deferred() {
    while let Some(w) = WAKES.with(|w| w.borrow_mut().pop()) {
        w.deliver();
    }
}

/// Delivers `w`: now, or when this thread's engine scope ends.
fn wake_later(w: Wake) {
    if in_engine_scope() {
        WAKES.with(|q| q.borrow_mut().push(w));
    } else {
        w.deliver();
    }
}

/// What a completion owes: the aio's condvar waiters, and a polling waiter on another
/// thread. Read under the aio's lock, delivered after it is released.
fn owed_wakes(st: &State) -> (bool, Option<Arc<ThreadWaker>>) {
    let poller = st
        .poller
        .as_ref()
        .filter(|w| !w.is_current_thread())
        .cloned();
    (st.waiters > 0, poller)
}

fn deliver_owed(core: &Arc<AioCore>, (cv, poller): (bool, Option<Arc<ThreadWaker>>)) {
    if cv {
        wake_later(Wake::Cv(core.clone()));
    }
    if let Some(w) = poller {
        wake_later(Wake::Fd(w));
    }
}

thread_local! {
    /// This thread is running a handler for a driving wait (see [`in_driving_wait`]).
    static DRIVING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` marked as a driving wait's handler run.
pub(crate) fn driving<R>(f: impl FnOnce() -> R) -> R {
    struct Unmark(bool);
    impl Drop for Unmark {
        fn drop(&mut self) {
            DRIVING.with(|d| d.set(self.0));
        }
    }
    let _unmark = Unmark(DRIVING.with(|d| d.replace(true)));
    f()
}

/// Whether the calling thread is running an fd's handler for its own blocked operation
/// ([`AioProvider::wait_driving`]) rather than as the reactor. A handler that limits its work
/// to spare the reactor (which serves every fd) may do a full share here.
///
/// # Examples
///
/// ```
/// assert!(!nanoport_engine::in_driving_wait());
/// ```
pub fn in_driving_wait() -> bool {
    DRIVING.with(|d| d.get())
}

thread_local! {
    /// The clock as read once in the current engine scope ([`scope_now`]).
    static SCOPE_NOW: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// The current time, read at most once per engine scope (outside one, read now).
///
/// Why: the socket layer hands the protocol a timestamp with every message it moves, and
/// reading the clock is a measurable share of a message's CPU on a VM (figures in
/// docs/benchmarks.md, "Figures behind design choices"). Within one scope (one user call, one readiness event)
/// the time that passes is far below any protocol timer's resolution.
///
/// # Examples
///
/// ```
/// use nanoport_engine::{engine_scope, scope_now};
/// engine_scope(|| {
///     let a = scope_now();
///     std::thread::sleep(std::time::Duration::from_millis(1));
///     assert_eq!(scope_now(), a, "one reading per scope");
/// });
/// ```
pub fn scope_now() -> Instant {
    if !in_engine_scope() {
        return Instant::now();
    }
    SCOPE_NOW.with(|c| {
        c.get().unwrap_or_else(|| {
            let t = Instant::now();
            c.set(Some(t));
            t
        })
    })
}

/// A moment a protocol step may need to know: a fixed instant, or "now", read from the
/// clock (through [`scope_now`]) only if the step asks for it.
///
/// Why: the socket layer hands the protocol the time with every message it moves, but
/// most protocols (push, pull, pair, pub, sub, bus) never look at it, and a clock read
/// is a measurable share of a message's CPU in a stream. A `Now` costs nothing
/// until [`get`](Now::get).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use nanoport_engine::Now;
///
/// let t = Instant::now();
/// assert_eq!(Now::at(t).get(), t);
/// assert_eq!(Now::from(t).get(), t);
/// let lazy = Now::current(); // no clock read yet
/// assert!(lazy.get() >= t);
/// assert!(Now::at(t + Duration::from_secs(1)).get() > t);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Now(Option<Instant>);

impl Now {
    /// The current time, read when first asked for ([`scope_now`]: once per engine
    /// scope).
    pub fn current() -> Now {
        Now(None)
    }

    /// A fixed instant (protocol tests, timers that know their deadline).
    pub fn at(t: Instant) -> Now {
        Now(Some(t))
    }

    /// The instant: the fixed one, or the clock as [`scope_now`] reads it.
    pub fn get(self) -> Instant {
        self.0.unwrap_or_else(scope_now)
    }
}

impl From<Instant> for Now {
    fn from(t: Instant) -> Now {
        Now::at(t)
    }
}

/// Forgets the scope's clock reading: the next [`scope_now`] reads the clock again.
fn reset_scope_now() {
    SCOPE_NOW.with(|c| c.set(None));
}

/// Runs `f` as an engine scope: callbacks of inline aios completed inside it run on this
/// thread when the outermost scope ends, after `f` has released its locks.
///
/// The reactor wraps each readiness event and timer batch in a scope; a socket wraps each
/// user call that may complete pipe operations.
pub fn engine_scope<R>(f: impl FnOnce() -> R) -> R {
    let outermost = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        d.0 += 1;
        d.0 == 1
    });
    if outermost {
        SCOPE_SERIAL.with(|c| c.set(c.get().wrapping_add(1)));
    }
    // Leaves the scope even when `f` panics: a scope left open would park every later
    // inline completion of this thread forever, and lose the ones already deferred.
    let _leave = ScopeExit;
    f()
}

/// Ends one [`engine_scope`] level; the outermost runs the deferred inline callbacks.
struct ScopeExit;

impl Drop for ScopeExit {
    fn drop(&mut self) {
        let outermost = DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            d.0 -= 1;
            d.0 == 0
        });
        if !outermost {
            return;
        }
        reset_scope_now();
        let unwinding = thread::panicking();
        // Time out what would otherwise wait (see `Aio::begin`), inside a scope level of
        // its own so the completions this causes are collected below.
        DEFERRED.with(|d| d.borrow_mut().0 += 1);
        while let Some((core, gen)) = DUE.with(|d| d.borrow_mut().pop()) {
            core.engine_complete(gen, Err(Error::TimedOut), true);
        }
        DEFERRED.with(|d| d.borrow_mut().0 -= 1);
        loop {
            // Deferred writes first (they may end a peer's wait), even when unwinding:
            // each holds a pipe's writer role, which would otherwise never be let go.
            run_jobs();
            // In completion order (the list is short: one scope's worth).
            let next = DEFERRED.with(|d| {
                let mut d = d.borrow_mut();
                (!d.1.is_empty()).then(|| d.1.remove(0))
            });
            let Some(core) = next else {
                if JOBS.with(|j| j.borrow().is_empty()) {
                    break;
                }
                continue;
            };
            if unwinding {
                // Do not run user code on a thread that is unwinding: the pool runs it.
                pool().submit(Job::Callback(core));
            } else {
                reset_scope_now();
                DEFERRED.with(|d| d.borrow_mut().0 += 1);
                AioCore::run_callbacks(&core);
                DEFERRED.with(|d| d.borrow_mut().0 -= 1);
            }
        }
        reset_scope_now();
        wake_deferred();
    }
}

/// Removes `core` from this thread's deferred callbacks; true if it was there.
fn take_deferred(core: &Arc<AioCore>) -> bool {
    DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        match d.1.iter().position(|c| Arc::ptr_eq(c, core)) {
            Some(i) => {
                d.1.remove(i);
                true
            }
            None => false,
        }
    })
}

/// Whether the calling thread is inside an [`engine_scope`] (the reactor's handlers and
/// inline callbacks are): code there must not block on another operation.
pub fn in_engine_scope() -> bool {
    DEFERRED.with(|d| d.borrow().0 > 0)
}

/// An asynchronous I/O handle: one operation at a time, a result, a message slot and an
/// optional callback (`nng_aio`).
///
/// The callback runs exactly once per started operation, on a worker thread, never inside
/// the call that started the operation. Clones are handles to the same slot; dropping the
/// last handle stops the aio, waiting for a running callback (`nng_aio_free`).
///
/// # Panics
///
/// Starting an operation on an aio whose previous operation has not yet completed is a
/// programming error, as in NNG (which asserts): it panics with a message naming the aio,
/// and leaves the running operation untouched. Starting the next operation from inside
/// the callback is allowed: the aio is idle again by the time its callback runs.
///
/// # Examples
///
/// ```
/// use nanoport_engine::{sleep_aio, Aio};
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let (tx, rx) = mpsc::sync_channel(1);
/// let aio = Aio::new(move |aio| tx.send(aio.result()).unwrap()).unwrap();
/// sleep_aio(Duration::from_millis(1), &aio);
/// assert_eq!(rx.recv().unwrap(), Ok(()));
///
/// // Without a callback, wait for the result instead.
/// let aio = Aio::new_waitable().unwrap();
/// aio.set_timeout(Duration::from_millis(1));
/// sleep_aio(Duration::from_secs(60), &aio);
/// aio.wait();
/// assert_eq!(aio.result(), Err(nanoport_engine::Error::TimedOut));
/// ```
pub struct Aio {
    core: Arc<AioCore>,
    /// Whether this handle counts towards "the last user handle" (the views the engine
    /// lends to callbacks and providers do not).
    counted: bool,
}

impl Aio {
    /// A new idle aio whose operations end by running `callback` (`nng_aio_alloc`).
    ///
    /// The callback gets the aio to read the result and start the next operation. It must
    /// not capture a clone of its own aio (that is a reference cycle: the aio would never
    /// be freed).
    ///
    /// # Errors
    /// None today; the `Result` mirrors `nng_aio_alloc`.
    pub fn new(callback: impl Fn(&Aio) + Send + Sync + 'static) -> Result<Aio> {
        Ok(Aio::from_core(Some(Box::new(callback)), false, false))
    }

    /// An aio whose callback runs on the thread that completes the operation, with no hop
    /// to a worker: the reactor thread when a peer's message or a timer completes it, or
    /// the thread whose call completed it (a send on another socket, a blocking receive
    /// that read the message itself). Beyond NNG, whose callbacks always go through its
    /// task queue; on a 2-CPU machine that hop (a cross-CPU wake-up) can cost more than a
    /// whole pinned round trip.
    ///
    /// The promise of [`new`](Aio::new) stays: the callback never runs inside the call
    /// that started the operation. An operation that completes within that call (a
    /// receive that finds a message queued, say) has its callback run by a worker, as
    /// with `new`.
    ///
    /// The rules, because the callback may run on the reactor thread, which serves every
    /// socket: it must be short and must never block: no blocking `send`/`recv`, no
    /// [`wait`](Aio::wait), no lock another thread holds for long, no sleeping. Starting
    /// the next operation (`recv_aio`, `send_aio`, `try_send`) is what it is for. A
    /// callback that blocks stalls every socket's I/O until it returns; debug builds
    /// panic when it waits on an aio (caught and counted in
    /// [`callback_panics`](crate::callback_panics)), and report on stderr a callback that
    /// ran longer than 10 ms.
    ///
    /// # Errors
    /// None today; the `Result` mirrors `nng_aio_alloc`.
    ///
    /// # Examples
    ///
    /// ```
    /// use nanoport_engine::{sleep_aio, Aio};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let (tx, rx) = mpsc::sync_channel(1);
    /// let aio = Aio::new_direct(move |aio| {
    ///     // On the reactor thread, which fired the timer: short, non-blocking work only.
    ///     let name = std::thread::current().name().map(str::to_owned);
    ///     tx.send((aio.result(), name)).unwrap();
    /// })
    /// .unwrap();
    /// sleep_aio(Duration::from_millis(1), &aio);
    /// let (result, thread) = rx.recv().unwrap();
    /// assert_eq!(result, Ok(()));
    /// assert_eq!(thread.as_deref(), Some("nanoport:reactor"));
    /// ```
    pub fn new_direct(callback: impl Fn(&Aio) + Send + Sync + 'static) -> Result<Aio> {
        Ok(Aio::from_core(Some(Box::new(callback)), false, true))
    }

    /// An aio for engine plumbing (a pipe's reads, say): its callback runs on the thread
    /// that completes the operation, at the end of that thread's current
    /// [`engine_scope`], instead of hopping to the worker pool. Outside any scope it falls
    /// back to the pool. The callback must be short and must not block.
    ///
    /// # Errors
    /// None today.
    pub(crate) fn new_inline(callback: impl Fn(&Aio) + Send + Sync + 'static) -> Result<Aio> {
        Ok(Aio::from_core(Some(Box::new(callback)), true, false))
    }

    /// A new idle aio with no callback: wait for it with [`wait`](Aio::wait)
    /// (`nng_aio_alloc(&aio, NULL, NULL)`). Its completion wakes the waiter directly, with
    /// no hop through the worker pool.
    ///
    /// # Errors
    /// None today; the `Result` mirrors `nng_aio_alloc`.
    pub fn new_waitable() -> Result<Aio> {
        Ok(Aio::from_core(None, false, false))
    }

    fn from_core(cb: Option<Callback>, inline: bool, direct: bool) -> Aio {
        let core = Arc::new(AioCore {
            st: Mutex::new(State {
                phase: Phase::Idle,
                gen: 0,
                result: Ok(()),
                count: 0,
                msg: None,
                output: None,
                expiry: Expiry::Relative(Timeout::Default),
                stopped: false,
                hook: None,
                timer: None,
                running_cb: false,
                cb_thread: None,
                waiters: 0,
                poller: None,
                origin: Origin::default(),
            }),
            cv: Condvar::new(),
            cb,
            inline,
            direct,
            handles: AtomicUsize::new(1),
        });
        Aio {
            core,
            counted: true,
        }
    }

    /// A handle that does not keep the aio alive from the user's point of view.
    pub(crate) fn view(core: &Arc<AioCore>) -> Aio {
        Aio {
            core: core.clone(),
            counted: false,
        }
    }

    /// An engine-internal handle to the same aio: holding it does not keep the user's aio
    /// from being stopped when the user drops their last handle. Providers keep these in
    /// their queues.
    pub(crate) fn provider_handle(&self) -> Aio {
        Aio::view(&self.core)
    }

    /// Whether two handles name the same aio.
    pub fn ptr_eq(a: &Aio, b: &Aio) -> bool {
        Arc::ptr_eq(&a.core, &b.core)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.core.lock()
    }

    /// Puts a message on the aio, for a send (`nng_aio_set_msg`).
    pub fn set_msg(&self, msg: Message) {
        self.lock().msg = Some(msg);
    }

    /// Takes the message off the aio: a received one, or an unsent one after a failed send
    /// (`nng_aio_get_msg`).
    pub fn take_msg(&self) -> Option<Message> {
        self.lock().msg.take()
    }

    /// Whether a message is on the aio.
    pub fn has_msg(&self) -> bool {
        self.lock().msg.is_some()
    }

    /// The result of the last completed operation (`nng_aio_result`).
    pub fn result(&self) -> Result<()> {
        self.lock().result
    }

    /// The byte count of the last completed operation (`nng_aio_count`).
    pub fn count(&self) -> usize {
        self.lock().count
    }

    /// Takes a provider's extra output (a new stream from an accept, say), if it has one of
    /// type `T`.
    pub fn take_output<T: Any + Send>(&self) -> Option<T> {
        let mut st = self.lock();
        match st.output.take()?.downcast::<T>() {
            Ok(b) => Some(*b),
            Err(other) => {
                st.output = Some(other);
                None
            }
        }
    }

    /// Sets a relative timeout for the operations started after this call
    /// (`nng_aio_set_timeout`). `Timeout::Default` takes the socket's own timeout.
    pub fn set_timeout(&self, t: impl Into<Timeout>) {
        self.lock().expiry = Expiry::Relative(t.into());
    }

    /// Sets an absolute deadline for the operations started after this call
    /// (`nng_aio_set_expire`).
    pub fn set_expire(&self, at: Instant) {
        self.lock().expiry = Expiry::At(at);
    }

    /// Whether an operation is pending or its callback has yet to finish (`nng_aio_busy`).
    pub fn busy(&self) -> bool {
        let st = self.lock();
        st.phase != Phase::Idle || st.running_cb
    }

    /// Blocks until the aio is idle: no operation pending and no callback running
    /// (`nng_aio_wait`). Called from inside the aio's own callback it waits only for an
    /// operation that callback started, never for the callback itself.
    pub fn wait(&self) {
        let me = thread::current().id();
        // The idle strategy's spin, once per wait, right before the first sleep.
        let mut spin = SpinBudget::start();
        let mut st = self.lock();
        loop {
            let inside_own_callback = st.running_cb && st.cb_thread == Some(me);
            let done = if inside_own_callback {
                // The callback we are in cannot end while we wait here, and an operation it
                // started gets its own callback only after this one returns: wait for
                // that operation to complete, no further.
                st.phase != Phase::Pending
            } else {
                st.phase == Phase::Idle && !st.running_cb
            };
            if done {
                return;
            }
            if (self.core.inline || self.core.direct) && st.phase == Phase::Done && !st.running_cb {
                // Its callback may be deferred to the end of this very thread's engine
                // scope: waiting would deadlock, so run it here.
                drop(st);
                let ran = take_deferred(&self.core);
                if ran {
                    AioCore::run_callbacks(&self.core);
                }
                st = self.lock();
                if ran {
                    continue;
                }
                // Deferred on another thread, or queued on the pool: wait for it below.
                let still_done = st.phase == Phase::Done && !st.running_cb;
                if !still_done {
                    continue;
                }
            }
            if WAKES.with(|w| !w.borrow().is_empty()) || JOBS.with(|j| !j.borrow().is_empty()) {
                // About to block inside a scope: the writes and wake-ups this thread owes
                // others go out first, or two threads could each wait for the other's.
                drop(st);
                run_jobs();
                wake_deferred();
                st = self.lock();
                continue;
            }
            if let Some(held) = crate::reactor::take_this_threads_hold() {
                // Nobody would read the fd this thread holds while it sleeps here.
                drop(st);
                held.end_hold();
                st = self.lock();
                continue;
            }
            // The rule that keeps one socket's trouble its own: code inside an engine scope
            // (the reactor's handlers, an inline callback, a socket call's inner part)
            // never sleeps on another operation, because what it waits for may be deferred
            // to the end of another thread's scope that is waiting the same way.
            debug_assert!(
                !in_engine_scope(),
                "nanoport: Aio::wait would block inside an engine scope (on the reactor \
                 thread, in an inline callback, or inside a socket call); hand the wait to \
                 the worker pool instead"
            );
            if let Some(budget) = spin.take().filter(|_| !in_engine_scope()) {
                drop(st);
                spin_until(budget, || {
                    let st = self.lock();
                    st.phase == Phase::Idle && !st.running_cb
                });
                st = self.lock();
                continue;
            }
            st.waiters += 1;
            st = self.core.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            st.waiters -= 1;
        }
    }

    /// Like [`wait`](Aio::wait), but while it waits the calling thread drives `source`
    /// itself: it takes the fd's interest (read or write) from the reactor, polls the fd,
    /// and runs its handler when it is ready, so the operation that this aio waits for
    /// can complete on this very thread with no other thread woken.
    ///
    /// Meant for a blocking receive whose answer will most likely come through `source`
    /// (a socket with one pipe). It is only a way of waiting: when the answer comes from
    /// elsewhere (a timer, a cancel, another pipe), the completer wakes this thread
    /// through its own eventfd. It falls back to [`wait`](Aio::wait) for an aio with a
    /// callback, when no operation is parked on that side of the fd, or when another thread
    /// drives it.
    ///
    /// # Examples
    ///
    /// A blocking receive on a socket does this when the socket has one pipe:
    ///
    /// ```no_run
    /// # use nanoport_engine::AioProvider;
    /// # fn f(aio: &nanoport_engine::Aio, rr: &nanoport_engine::Readiness) {
    /// aio.wait_driving(rr); // returns once the receive has completed, as `wait` does
    /// # }
    /// ```
    pub(crate) fn wait_driving(&self, source: &Readiness) {
        let Some(me) = ThreadWaker::current() else {
            return self.wait();
        };
        if self.core.cb.is_some() {
            return self.wait();
        }
        // Writes and wake-ups this thread owes go out before it blocks (see `wait`).
        run_jobs();
        wake_deferred();
        loop {
            {
                let mut st = self.lock();
                if st.phase == Phase::Idle {
                    st.poller = None;
                    return;
                }
                st.poller = Some(me.clone());
            }
            if !source.borrow() {
                self.lock().poller = None;
                return self.wait();
            }
            let ready = me.poll_with(source.fd(), source.is_write());
            source.give_back(ready);
        }
    }

    /// Cancels the pending operation: it completes with `Canceled` (`nng_aio_cancel`).
    /// Does nothing when nothing is pending or the operation cannot be cancelled.
    pub fn cancel(&self) {
        self.abort(Error::Canceled)
    }

    /// Completes the pending operation with `err` (`nng_aio_abort`). Does not wait.
    pub fn abort(&self, err: Error) {
        let gen = self.lock().gen;
        self.core.engine_complete(gen, Err(err), true);
    }

    /// Stops the aio for good (`nng_aio_stop`): the pending operation is cancelled, every
    /// later operation completes at once with `Stopped` (NNG 2.x's `NNG_ESTOPPED`), and the call waits until no
    /// callback is running.
    ///
    /// From inside the aio's own callback, `stop` marks the aio stopped and cancels, but does
    /// not wait for the callback it is called from (that would deadlock); it returns and the
    /// callback goes on to its end.
    pub fn stop(&self) {
        self.release();
        self.wait();
    }

    /// Stops the aio for good without waiting: the pending operation is cancelled and every
    /// later start fails with `Stopped`, but a callback that is queued or running is left
    /// to finish on its own. What dropping the last handle of an inline aio does.
    fn release(&self) {
        let gen = {
            let mut st = self.lock();
            st.stopped = true;
            st.gen
        };
        self.core.engine_complete(gen, Err(Error::Canceled), true);
    }

    // ----- provider side -------------------------------------------------------------------

    /// Starts an operation (the provider side of `nng_aio_start`).
    ///
    /// `default_timeout` replaces a `Timeout::Default` set on the aio (a socket passes its
    /// send or receive timeout). With `cancel` the operation can be cancelled and its
    /// deadline is armed; without it, it can neither be cancelled nor expire, as in NNG.
    ///
    /// Returns `None` when the operation completed at once because the aio was stopped
    /// (`Stopped`); the callback has then been queued and the provider must do nothing
    /// more. A zero timeout or past deadline does not complete it here: the provider may
    /// still answer at once, and the operation times out only if it has to wait. Otherwise the provider must
    /// eventually finish the operation with the token, or lose to a cancel.
    ///
    /// # Panics
    /// When the aio already has an operation pending (see the type's docs).
    pub(crate) fn begin(
        &self,
        default_timeout: Timeout,
        cancel: Option<CancelHook>,
    ) -> Option<OpToken> {
        let mut st = self.lock();
        if st.phase != Phase::Idle {
            drop(st);
            panic!(
                "nanoport: an operation was started on aio {:p} while its previous operation \
                 is still in flight (wait for its callback first)",
                Arc::as_ptr(&self.core)
            );
        }
        st.gen = st.gen.wrapping_add(1);
        st.result = Ok(());
        st.count = 0;
        st.output = None;
        st.phase = Phase::Pending;
        if self.core.direct {
            st.origin = Origin::here();
        }
        let gen = st.gen;
        if st.stopped {
            // NNG 2.x's NNG_ESTOPPED: code that resubmits until the aio says "stopped"
            // ends here rather than spinning on `Canceled`.
            drop(st);
            self.core.engine_complete(gen, Err(Error::Stopped), false);
            return None;
        }
        // A zero timeout or a deadline already past does NOT fail the operation here: as in
        // NNG, it means "do not wait". The provider still answers whatever it can answer at
        // once (a queued message, or an error such as `State`); only an operation still
        // pending when the caller's engine scope ends times out. Outside a scope the due
        // timer goes to the reactor, which fires it promptly.
        let deadline = match st.expiry {
            Expiry::Relative(t) => match t.or(default_timeout) {
                Timeout::After(d) => Timeout::After(d).deadline_from(Instant::now()),
                _ => None,
            },
            Expiry::At(at) => Some(at),
        };
        if let (Some(at), Some(_)) = (deadline, cancel.as_ref()) {
            if at <= Instant::now() && in_engine_scope() {
                DUE.with(|d| d.borrow_mut().push((self.core.clone(), gen)));
            } else {
                st.timer =
                    Some(reactor().add_timer(at, self.core.clone(), gen, Err(Error::TimedOut)));
            }
        }
        st.hook = cancel;
        Some(OpToken { gen })
    }

    /// Starts a sleep-like operation that completes with `Ok(())` at `until` unless the
    /// aio's own deadline comes first (then `TimedOut`) or it is cancelled.
    pub(crate) fn begin_sleep(&self, dur: Duration) {
        let Some(token) = self.begin(Timeout::Infinite, Some(NoBookkeeping::hook())) else {
            return;
        };
        let until = Instant::now() + dur;
        let mut st = self.lock();
        if st.phase != Phase::Pending || st.gen != token.gen {
            return;
        }
        // The aio's own deadline, if any, is already armed to fire TimedOut.
        let earlier_timeout = st.timer.as_ref().is_some_and(|k| k.deadline() <= until);
        if !earlier_timeout {
            let old = st.timer.take();
            st.timer = Some(reactor().add_timer(until, self.core.clone(), token.gen, Ok(())));
            drop(st);
            if let Some(old) = old {
                reactor().remove_timer(&old);
            }
        }
    }

    /// Completes operation `token` with `result` and byte `count`. Returns `false` when the
    /// operation had already completed (a cancel or deadline won); nothing changes then.
    pub(crate) fn finish(&self, token: OpToken, result: Result<()>, count: usize) -> bool {
        let mut st = self.lock();
        if st.phase != Phase::Pending || st.gen != token.gen {
            return false;
        }
        st.result = result;
        st.count = count;
        self.core.complete_locked(st);
        true
    }

    /// Completes receive operation `token` successfully with `msg`. If the operation had
    /// already completed, the message is handed back as `Err(msg)` and nothing changes.
    pub(crate) fn finish_recv(
        &self,
        token: OpToken,
        msg: Message,
    ) -> std::result::Result<(), Message> {
        let mut st = self.lock();
        if st.phase != Phase::Pending || st.gen != token.gen {
            return Err(msg);
        }
        st.count = msg.len() + msg.header_len();
        st.msg = Some(msg);
        st.result = Ok(());
        self.core.complete_locked(st);
        Ok(())
    }

    /// Completes send operation `token` successfully, taking the message off the aio.
    /// Returns `None` if the operation had already completed (the message, if any, stays
    /// on the aio for its owner) or if the aio holds no message (then the operation
    /// completes with `Inval`, as NNG does for a send without a message).
    pub(crate) fn finish_send(&self, token: OpToken) -> Option<Message> {
        let mut st = self.lock();
        if st.phase != Phase::Pending || st.gen != token.gen {
            return None;
        }
        match st.msg.take() {
            Some(m) => {
                st.count = m.len() + m.header_len();
                st.result = Ok(());
                self.core.complete_locked(st);
                Some(m)
            }
            None => {
                st.result = Err(Error::Inval);
                self.core.complete_locked(st);
                None
            }
        }
    }

    /// Offers the message of pending send `token` to `f`, atomically with respect to
    /// cancellation: `f` gets the message and either accepts it (`Ok`: the operation
    /// completes successfully), gives it back to wait for room (`Err((msg, None))`: the
    /// operation stays pending, the message back on the aio), or gives it back with an
    /// error (`Err((msg, Some(e)))`: the operation fails, the message stays on the aio for
    /// the user).
    ///
    /// `f` runs under the aio's lock: it must be quick and must not touch this aio.
    pub(crate) fn attempt_send(
        &self,
        token: OpToken,
        f: impl FnOnce(Message) -> std::result::Result<(), (Message, Option<Error>)>,
    ) -> SendAttempt {
        let mut st = self.lock();
        if st.phase != Phase::Pending || st.gen != token.gen {
            return SendAttempt::Lost;
        }
        let Some(msg) = st.msg.take() else {
            st.result = Err(Error::Inval);
            self.core.complete_locked(st);
            return SendAttempt::Done;
        };
        let count = msg.len() + msg.header_len();
        match f(msg) {
            Ok(()) => {
                st.result = Ok(());
                st.count = count;
                self.core.complete_locked(st);
                SendAttempt::Done
            }
            Err((msg, None)) => {
                st.msg = Some(msg);
                SendAttempt::Pending
            }
            Err((msg, Some(e))) => {
                st.msg = Some(msg);
                st.result = Err(e);
                self.core.complete_locked(st);
                SendAttempt::Done
            }
        }
    }

    /// Completes operation `token` successfully with a provider output (see
    /// [`take_output`](Aio::take_output)). Hands the output back if the operation had
    /// already completed.
    pub(crate) fn finish_output<T: Any + Send>(
        &self,
        token: OpToken,
        out: T,
    ) -> std::result::Result<(), T> {
        let mut st = self.lock();
        if st.phase != Phase::Pending || st.gen != token.gen {
            return Err(out);
        }
        st.output = Some(Box::new(out));
        st.result = Ok(());
        self.core.complete_locked(st);
        Ok(())
    }

    /// Runs `f` on the message of pending operation `token` without taking it (a provider
    /// inspecting a send before committing to it). `None` if the operation is no longer
    /// pending.
    pub(crate) fn with_msg<R>(
        &self,
        token: OpToken,
        f: impl FnOnce(Option<&mut Message>) -> R,
    ) -> Option<R> {
        let mut st = self.lock();
        if st.phase != Phase::Pending || st.gen != token.gen {
            return None;
        }
        Some(f(st.msg.as_mut()))
    }

    /// Whether operation `token` is still pending.
    pub(crate) fn is_pending(&self, token: OpToken) -> bool {
        let st = self.lock();
        st.phase == Phase::Pending && st.gen == token.gen
    }

    /// The timeout the next operation will use, before normalisation.
    pub fn timeout(&self) -> Timeout {
        match self.lock().expiry {
            Expiry::Relative(t) => t,
            Expiry::At(at) => Timeout::After(at.saturating_duration_since(Instant::now())),
        }
    }
}

/// The provider side of an [`Aio`]: what a transport, a protocol layer or an engine
/// extension calls to start and finish operations (NNG's `nni_aio_start`,
/// `nni_aio_finish` and friends, which NNG also keeps out of its public header).
///
/// Applications never need it: they make aios, start operations on sockets and read
/// results. It lives in the engine so that transports outside this crate can be written;
/// bring it into scope with `use nanoport_engine::AioProvider`.
///
/// # Examples
///
/// A provider that completes every operation with one byte counted:
///
/// ```
/// use nanoport_engine::{Aio, AioProvider, Timeout};
///
/// fn one_byte(aio: &Aio) {
///     if let Some(token) = aio.begin(Timeout::Infinite, None) {
///         aio.finish(token, Ok(()), 1);
///     }
/// }
///
/// let aio = Aio::new_waitable().unwrap();
/// one_byte(&aio);
/// aio.wait();
/// assert_eq!(aio.count(), 1);
/// ```
pub trait AioProvider: Sized {
    /// An aio for engine plumbing (a pipe's reads, say): its callback runs on the thread
    /// that completes the operation, at the end of that thread's current
    /// [`engine_scope`], instead of hopping to the worker pool; outside any scope it falls
    /// back to the pool. The callback must be short and must not block.
    ///
    /// # Errors
    /// None today.
    fn new_inline(callback: impl Fn(&Aio) + Send + Sync + 'static) -> Result<Self>;

    /// An engine-internal handle to the same aio: holding it does not keep the user's aio
    /// from being stopped when the user drops their last handle. Providers keep these in
    /// their queues.
    fn provider_handle(&self) -> Self;

    /// Waits for the pending operation while this thread polls `source` itself, so the
    /// operation may complete on this thread with no wake-up hop (see
    /// [`Readiness`]).
    fn wait_driving(&self, source: &Readiness);

    /// Starts an operation (the provider side of `nng_aio_start`).
    ///
    /// `default_timeout` replaces a `Timeout::Default` set on the aio (a socket passes its
    /// send or receive timeout). With `cancel` the operation can be cancelled and its
    /// deadline is armed; without it, it can neither be cancelled nor expire, as in NNG.
    ///
    /// Returns `None` when the operation completed at once because the aio was stopped
    /// (`Stopped`); the callback has then been queued and the provider must do nothing
    /// more. A zero timeout or past deadline does not complete it here: the provider may
    /// still answer at once, and the operation times out only if it has to wait.
    /// Otherwise the provider must eventually finish the operation with the token, or
    /// lose to a cancel.
    ///
    /// # Panics
    /// When the aio already has an operation pending.
    fn begin(&self, default_timeout: Timeout, cancel: Option<CancelHook>) -> Option<OpToken>;

    /// Completes operation `token` with `result` and byte `count`. Returns `false` when the
    /// operation had already completed (a cancel or deadline won); nothing changes then.
    fn finish(&self, token: OpToken, result: Result<()>, count: usize) -> bool;

    /// Completes receive operation `token` successfully with `msg`. If the operation had
    /// already completed, the message is handed back as `Err(msg)` and nothing changes.
    fn finish_recv(&self, token: OpToken, msg: Message) -> std::result::Result<(), Message>;

    /// Completes send operation `token` successfully, taking the message off the aio.
    /// Returns `None` if the operation had already completed (the message, if any, stays
    /// on the aio for its owner) or if the aio holds no message (then the operation
    /// completes with `Inval`, as NNG does for a send without a message).
    fn finish_send(&self, token: OpToken) -> Option<Message>;

    /// Offers the message of pending send `token` to `f`, atomically with respect to
    /// cancellation: `f` accepts it (`Ok`: the operation completes successfully), gives
    /// it back to wait for room (`Err((msg, None))`: still pending), or gives it back with
    /// an error (`Err((msg, Some(e)))`: the operation fails, the message stays on the aio).
    ///
    /// `f` runs under the aio's lock: it must be quick and must not touch this aio.
    fn attempt_send(
        &self,
        token: OpToken,
        f: impl FnOnce(Message) -> std::result::Result<(), (Message, Option<Error>)>,
    ) -> SendAttempt;

    /// Completes operation `token` successfully with a provider output (see
    /// [`Aio::take_output`]). Hands the output back if the operation had already
    /// completed.
    fn finish_output<T: Any + Send>(&self, token: OpToken, out: T) -> std::result::Result<(), T>;

    /// Runs `f` on the message of pending operation `token` without taking it. `None` if
    /// the operation is no longer pending.
    fn with_msg<R>(&self, token: OpToken, f: impl FnOnce(Option<&mut Message>) -> R) -> Option<R>;

    /// Whether operation `token` is still pending.
    fn is_pending(&self, token: OpToken) -> bool;
}

impl AioProvider for Aio {
    fn new_inline(callback: impl Fn(&Aio) + Send + Sync + 'static) -> Result<Aio> {
        Aio::new_inline(callback)
    }
    fn provider_handle(&self) -> Aio {
        Aio::provider_handle(self)
    }
    fn wait_driving(&self, source: &Readiness) {
        Aio::wait_driving(self, source)
    }
    fn begin(&self, default_timeout: Timeout, cancel: Option<CancelHook>) -> Option<OpToken> {
        Aio::begin(self, default_timeout, cancel)
    }
    fn finish(&self, token: OpToken, result: Result<()>, count: usize) -> bool {
        Aio::finish(self, token, result, count)
    }
    fn finish_recv(&self, token: OpToken, msg: Message) -> std::result::Result<(), Message> {
        Aio::finish_recv(self, token, msg)
    }
    fn finish_send(&self, token: OpToken) -> Option<Message> {
        Aio::finish_send(self, token)
    }
    fn attempt_send(
        &self,
        token: OpToken,
        f: impl FnOnce(Message) -> std::result::Result<(), (Message, Option<Error>)>,
    ) -> SendAttempt {
        Aio::attempt_send(self, token, f)
    }
    fn finish_output<T: Any + Send>(&self, token: OpToken, out: T) -> std::result::Result<(), T> {
        Aio::finish_output(self, token, out)
    }
    fn with_msg<R>(&self, token: OpToken, f: impl FnOnce(Option<&mut Message>) -> R) -> Option<R> {
        Aio::with_msg(self, token, f)
    }
    fn is_pending(&self, token: OpToken) -> bool {
        Aio::is_pending(self, token)
    }
}

/// What [`AioProvider::attempt_send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendAttempt {
    /// The operation completed (accepted, or failed with the message left on the aio).
    Done,
    /// The message went back on the aio and the operation is still pending.
    Pending,
    /// The operation had already completed (a cancel or deadline won); nothing changed.
    Lost,
}

/// A hook for operations that have no bookkeeping to drop (sleeps).
struct NoBookkeeping;

impl NoBookkeeping {
    /// One shared hook, so a sleep allocates nothing.
    fn hook() -> CancelHook {
        static SHARED: std::sync::OnceLock<Arc<dyn Cancel>> = std::sync::OnceLock::new();
        CancelHook::new(SHARED.get_or_init(|| Arc::new(NoBookkeeping)).clone(), 0)
    }
}

impl Cancel for NoBookkeeping {
    fn cancelled(&self, _: &Aio, _: usize, _: OpToken) {}
}

impl AioCore {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking callback never holds this lock (callbacks run unlocked), so poison
        // can only come from a panic inside the engine itself; the state is still
        // consistent at every unlock point, so carry on.
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completes the pending operation of generation `gen` with `result` on the engine's
    /// behalf (cancel, abort, stop, expiry, or a start that failed at once). When
    /// `tell_provider` is set and this wins, the provider's hook is told afterwards.
    pub(crate) fn engine_complete(
        self: &Arc<AioCore>,
        gen: u64,
        result: Result<()>,
        tell_provider: bool,
    ) -> bool {
        let mut st = self.lock();
        if st.phase != Phase::Pending || st.gen != gen {
            return false;
        }
        if tell_provider && st.hook.is_none() {
            // Not cancellable: the provider will finish it.
            return false;
        }
        let hook = if tell_provider { st.hook.clone() } else { None };
        st.result = result;
        st.count = 0;
        self.complete_locked(st);
        if let Some(h) = hook {
            h.target.cancelled(&Aio::view(self), h.key, OpToken { gen });
        }
        true
    }

    /// Marks the pending operation done, with result and count already stored, releases the
    /// lock, and hands the callback to the pool (or wakes waiters for a callback-less aio).
    fn complete_locked(self: &Arc<AioCore>, mut st: MutexGuard<'_, State>) {
        let timer = st.timer.take();
        let hook = st.hook.take();
        let mut dispatch = false;
        if self.cb.is_some() {
            st.phase = Phase::Done;
            // If the previous callback is still running, its worker runs this one next,
            // so callbacks of one aio never overlap.
            dispatch = !st.running_cb;
        } else {
            st.phase = Phase::Idle;
        }
        // Wake waiters after unlocking: woken while the lock is still held, a waiter would
        // only block again on the mutex (two more futex calls and a context switch).
        let owed = owed_wakes(&st);
        // A direct callback runs here unless this completion is part of the call that
        // started the operation (same thread, same outermost scope).
        let here = dispatch && self.direct && in_engine_scope() && st.origin != Origin::here();
        drop(st);
        deliver_owed(self, owed);
        drop(hook);
        if let Some(t) = timer {
            reactor().remove_timer(&t);
        }
        if dispatch {
            if (self.inline || here) && in_engine_scope() {
                DEFERRED.with(|d| d.borrow_mut().1.push(self.clone()));
            } else {
                pool().submit(Job::Callback(self.clone()));
            }
        }
    }

    /// Runs on a worker: the callback of the completed operation, then of any operation the
    /// callback started that completed while it ran.
    pub(crate) fn run_callbacks(self: &Arc<AioCore>) {
        let view = Aio::view(self);
        loop {
            {
                let mut st = self.lock();
                if st.phase != Phase::Done {
                    return;
                }
                st.phase = Phase::Idle;
                st.running_cb = true;
                st.cb_thread = Some(thread::current().id());
            }
            if let Some(cb) = &self.cb {
                if cfg!(debug_assertions) && self.direct && in_engine_scope() {
                    // A direct callback holds up the thread that completed it (maybe the
                    // reactor, which serves every socket): say so when one runs long.
                    let began = Instant::now();
                    run_guarded(|| cb(&view));
                    let took = began.elapsed();
                    if took > Duration::from_millis(10) {
                        eprintln!(
                            "nanoport: a direct aio callback ran {took:?} on {:?}; direct \
                             callbacks must be short and never block (Aio::new_direct)",
                            thread::current().name().unwrap_or("a thread")
                        );
                    }
                } else {
                    run_guarded(|| cb(&view));
                }
            }
            let mut st = self.lock();
            st.running_cb = false;
            st.cb_thread = None;
            if st.phase == Phase::Done {
                continue;
            }
            let owed = owed_wakes(&st);
            drop(st);
            deliver_owed(self, owed);
            return;
        }
    }
}

impl Clone for Aio {
    /// Another handle to the same aio.
    fn clone(&self) -> Aio {
        self.core.handles.fetch_add(1, Ordering::Relaxed);
        Aio {
            core: self.core.clone(),
            counted: true,
        }
    }
}

impl Drop for Aio {
    /// Dropping the last user handle stops the aio and waits for its callback
    /// (`nng_aio_free`). From inside the aio's own callback it does not wait for itself.
    ///
    /// An inline aio (engine plumbing) is stopped without waiting: its callback may be
    /// deferred to the end of another thread's engine scope, and that thread may be
    /// dropping an aio of ours the same way, so a wait here could close a cycle (two
    /// threads each tearing down a pipe whose last callback the other holds). The callback
    /// still runs once, later, on whatever it captured; plumbing callbacks capture weak
    /// references and find their pipe gone.
    fn drop(&mut self) {
        if self.counted && self.core.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            if self.core.inline {
                self.release();
            } else {
                self.stop();
            }
        }
    }
}

impl fmt::Debug for Aio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("Aio")
            .field("phase", &st.phase)
            .field("result", &st.result)
            .field("count", &st.count)
            .field("stopped", &st.stopped)
            .finish()
    }
}

/// Completes `aio` with `Ok(())` after `dur` (`nng_sleep_aio`), or with `TimedOut` if the
/// aio's own timeout is shorter, or with `Canceled` if cancelled first.
///
/// # Examples
///
/// ```
/// use nanoport_engine::{sleep_aio, Aio, Error};
/// use std::time::Duration;
/// let aio = Aio::new_waitable().unwrap();
/// sleep_aio(Duration::from_secs(3600), &aio);
/// aio.cancel();
/// aio.wait();
/// assert_eq!(aio.result(), Err(Error::Canceled));
/// ```
pub fn sleep_aio(dur: Duration, aio: &Aio) {
    aio.begin_sleep(dur);
}
