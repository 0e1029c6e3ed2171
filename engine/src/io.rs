//! [`IoSource`]: aio-driven operations on one non-blocking fd.
//!
//! An operation is a small state machine ([`IoOp`]) that moves as far as non-blocking
//! syscalls allow each time it is attempted. Operations queue per direction (reads,
//! writes) and run in order. A new operation on an idle direction is attempted at once
//! on the caller's thread; only when the kernel says `WouldBlock` is it parked and
//! interest armed, and the reactor resumes it on readiness. So a write into a socket with
//! buffer space, or a read of data already there, costs no reactor round trip at all.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use crate::aio::{Cancel, CancelHook, OpToken};
use crate::reactor::{Interest, ReadyHandler, Registration};
use crate::{Aio, Error, Result, Timeout};

/// One resumable operation on an I/O object `T`.
pub trait IoOp<T>: Send + 'static {
    /// Makes as much progress as possible without blocking.
    ///
    /// Returns `Ready` once the operation is over: it has called one of the aio's finish
    /// methods with `token` (whether that won or lost). `Pending` means the kernel said
    /// `WouldBlock`; the op is attempted again on readiness.
    fn attempt(&mut self, io: &T, aio: &Aio, token: OpToken) -> Poll<()>;

    /// Whether the op has moved bytes: cancelling it then leaves the stream mid-frame, so
    /// the source fails the operations that follow with `ConnAborted`.
    fn started(&self) -> bool {
        false
    }

    /// Whether the op's next attempt could only ask the kernel (it holds nothing it could
    /// complete with), so parking it until readiness loses nothing. The reactor parks such
    /// reads once its turn's budget of reads started inline is spent (see
    /// [`INLINE_READS_PER_TURN`](crate::reactor::INLINE_READS_PER_TURN)); an op that may
    /// hold buffered data says false, the default, and is always attempted.
    fn needs_io(&self) -> bool {
        false
    }
}

struct Entry<O> {
    aio: Aio,
    token: OpToken,
    op: O,
}

struct Queues<R, W> {
    reads: VecDeque<Entry<R>>,
    writes: VecDeque<Entry<W>>,
    closed: Option<Error>,
}

struct Inner<T, R, W> {
    // Field order matters: the registration is dropped (removed from the poller) before
    // the I/O object closes its fd.
    reg: Result<Registration>,
    q: Mutex<Queues<R, W>>,
    io: T,
}

const READ_KEY: usize = 0;
const WRITE_KEY: usize = 1;

/// A non-blocking I/O object `T` (a socket) registered with the reactor, running read
/// operations `R` and write operations `W` started with aios.
///
/// # Examples
///
/// ```
/// use nanoport_engine::{Aio, AioProvider, IoOp, IoSource, OpToken, Timeout};
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use std::task::Poll;
///
/// /// Reads whatever is there (at least one byte) and reports the count.
/// struct ReadSome(Vec<u8>);
/// impl IoOp<UnixStream> for ReadSome {
///     fn attempt(&mut self, io: &UnixStream, aio: &Aio, token: OpToken) -> Poll<()> {
///         let mut buf = [0u8; 64];
///         match (&*io).read(&mut buf) {
///             Ok(n) => { aio.finish(token, Ok(()), n); Poll::Ready(()) }
///             Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Poll::Pending,
///             Err(e) => { aio.finish(token, Err(e.into()), 0); Poll::Ready(()) }
///         }
///     }
/// }
/// # struct NoWrite;
/// # impl IoOp<UnixStream> for NoWrite {
/// #     fn attempt(&mut self, _: &UnixStream, _: &Aio, _: OpToken) -> Poll<()> { Poll::Ready(()) }
/// # }
///
/// let (a, mut b) = UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// let src: IoSource<UnixStream, ReadSome, NoWrite> = IoSource::new(a).unwrap();
/// let aio = Aio::new_waitable().unwrap();
/// src.start_read(&aio, Timeout::Infinite, ReadSome(Vec::new()));
/// b.write_all(b"hello").unwrap();
/// aio.wait();
/// assert_eq!(aio.count(), 5);
/// ```
pub struct IoSource<T, R, W> {
    inner: Arc<Inner<T, R, W>>,
}

impl<T, R, W> std::fmt::Debug for IoSource<T, R, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoSource").finish_non_exhaustive()
    }
}

impl<T, R, W> Clone for IoSource<T, R, W> {
    fn clone(&self) -> Self {
        IoSource {
            inner: self.inner.clone(),
        }
    }
}

impl<T, R, W> IoSource<T, R, W>
where
    T: std::os::fd::AsRawFd + Send + Sync + 'static,
    R: IoOp<T>,
    W: IoOp<T>,
{
    /// Registers `io`, which must already be in non-blocking mode.
    ///
    /// # Errors
    /// The poller's error if the fd cannot be registered.
    pub fn new(io: T) -> Result<Self> {
        let fd = io.as_raw_fd();
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner<T, R, W>>| {
            let handler: std::sync::Weak<dyn ReadyHandler> = weak.clone();
            Inner {
                reg: Registration::new(fd, handler),
                q: Mutex::new(Queues {
                    reads: VecDeque::new(),
                    writes: VecDeque::new(),
                    closed: None,
                }),
                io,
            }
        });
        if let Err(e) = &inner.reg {
            return Err(*e);
        }
        Ok(IoSource { inner })
    }

    /// The I/O object.
    pub fn io(&self) -> &T {
        &self.inner.io
    }

    /// Starts read operation `op` on `aio` (queued behind earlier reads).
    pub fn start_read(&self, aio: &Aio, timeout: Timeout, op: R) {
        self.start(aio, timeout, READ_KEY, Op::Read(op));
    }

    /// Starts write operation `op` on `aio` (queued behind earlier writes).
    pub fn start_write(&self, aio: &Aio, timeout: Timeout, op: W) {
        self.start(aio, timeout, WRITE_KEY, Op::Write(op));
    }

    fn start(&self, aio: &Aio, timeout: Timeout, key: usize, op: Op<R, W>) {
        // A scope, so a zero timeout means "try once, do not wait" (see `Aio::begin`).
        crate::aio::engine_scope(|| self.start_scoped(aio, timeout, key, op))
    }

    fn start_scoped(&self, aio: &Aio, timeout: Timeout, key: usize, op: Op<R, W>) {
        let hook = CancelHook::new(self.inner.clone(), key);
        let Some(token) = aio.begin(timeout, Some(hook)) else {
            return;
        };
        let mut q = self.inner.lock();
        if let Some(err) = q.closed {
            drop(q);
            aio.finish(token, Err(err), 0);
            return;
        }
        let aio = aio.provider_handle();
        match op {
            Op::Read(op) => {
                // On the reactor thread a pipe that is read again and again at once (a
                // flood) would never let the poller serve anyone else: past the turn's
                // budget, a read that needs the kernel waits for readiness instead, and
                // the poller reports it again behind the other ready sources.
                // The budget (a thread-local) first: only a reactor thread past its budget
                // asks the op, which may lock the pipe's reader.
                let park = !crate::reactor::take_inline_read() && op.needs_io();
                q.reads.push_back(Entry { aio, token, op });
                if q.reads.len() == 1 {
                    if park {
                        self.inner.arm(&mut q, Interest::READ);
                    } else {
                        self.inner.drive_reads(&mut q);
                    }
                }
            }
            Op::Write(op) => {
                q.writes.push_back(Entry { aio, token, op });
                if q.writes.len() == 1 {
                    self.inner.drive_writes(&mut q);
                }
            }
        }
    }

    /// Closes the source: every queued operation completes with `err` (normally
    /// `Closed`), later ones fail at once, and the fd leaves the poller when the last
    /// handle is dropped.
    pub fn close(&self, err: Error) {
        let (reads, writes) = {
            let mut q = self.inner.lock();
            if q.closed.is_none() {
                q.closed = Some(err);
            }
            (std::mem::take(&mut q.reads), std::mem::take(&mut q.writes))
        };
        for e in reads {
            e.aio.finish(e.token, Err(err), 0);
        }
        for e in writes {
            e.aio.finish(e.token, Err(err), 0);
        }
    }

    /// The read side of the registration, for a caller that waits by driving reads
    /// itself ([`AioProvider::wait_driving`](crate::AioProvider::wait_driving)); `None` if the fd could not be registered.
    pub fn read_readiness(&self) -> Option<crate::Readiness> {
        self.inner
            .reg
            .as_ref()
            .ok()
            .map(Registration::read_readiness)
    }

    /// The write side, likewise ([`Registration::write_readiness`]).
    pub fn write_readiness(&self) -> Option<crate::Readiness> {
        self.inner
            .reg
            .as_ref()
            .ok()
            .map(Registration::write_readiness)
    }

    /// Whether [`close`](IoSource::close) was called or a stream error closed it.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed.is_some()
    }
}

enum Op<R, W> {
    Read(R),
    Write(W),
}

impl<T, R, W> Inner<T, R, W>
where
    T: Send + Sync + 'static,
    R: IoOp<T>,
    W: IoOp<T>,
{
    fn lock(&self) -> MutexGuard<'_, Queues<R, W>> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the poller for readiness in `i`. If it refuses (the fd was closed under us,
    /// or the kernel is out of memory), nothing would ever wake what waits: the source
    /// closes with that error and every queued operation fails with it.
    fn arm(&self, q: &mut Queues<R, W>, i: Interest) {
        if let Ok(reg) = &self.reg {
            if let Err(e) = reg.arm(i) {
                fail_all(q, e);
            }
        }
    }

    /// Runs queued reads in order until one would block (then arms) or none is left.
    fn drive_reads(&self, q: &mut Queues<R, W>) {
        while let Some(front) = q.reads.front_mut() {
            if !front.aio.is_pending(front.token) {
                // Already completed by a cancel or deadline whose hook has not reached us
                // yet: never attempt it, since bytes it moved could not be delivered.
                if q.reads.pop_front().is_some_and(|e| e.op.started()) {
                    break_stream(q);
                }
                continue;
            }
            match front.op.attempt(&self.io, &front.aio, front.token) {
                Poll::Ready(()) => {
                    q.reads.pop_front();
                }
                Poll::Pending => {
                    self.arm(q, Interest::READ);
                    return;
                }
            }
        }
    }

    fn drive_writes(&self, q: &mut Queues<R, W>) {
        while let Some(front) = q.writes.front_mut() {
            if !front.aio.is_pending(front.token) {
                // As in `drive_reads`: a cancelled write must not send (part of) its
                // message after its owner was told it failed.
                if q.writes.pop_front().is_some_and(|e| e.op.started()) {
                    break_stream(q);
                }
                continue;
            }
            match front.op.attempt(&self.io, &front.aio, front.token) {
                Poll::Ready(()) => {
                    q.writes.pop_front();
                }
                Poll::Pending => {
                    self.arm(q, Interest::WRITE);
                    return;
                }
            }
        }
    }
}

impl<T, R, W> ReadyHandler for Inner<T, R, W>
where
    T: Send + Sync + 'static,
    R: IoOp<T>,
    W: IoOp<T>,
{
    fn on_ready(&self, ready: Interest) {
        let mut q = self.lock();
        if ready.read {
            self.drive_reads(&mut q);
        }
        if ready.write {
            self.drive_writes(&mut q);
        }
    }
}

impl<T, R, W> Cancel for Inner<T, R, W>
where
    T: Send + Sync + 'static,
    R: IoOp<T>,
    W: IoOp<T>,
{
    fn cancelled(&self, aio: &Aio, key: usize, token: OpToken) {
        let mut q = self.lock();
        let broke = if key == READ_KEY {
            remove_entry(&mut q.reads, aio, token)
        } else {
            remove_entry(&mut q.writes, aio, token)
        };
        if broke {
            break_stream(&mut q);
            return;
        }
        // The next queued op may now run.
        if key == READ_KEY {
            self.drive_reads(&mut q);
        } else {
            self.drive_writes(&mut q);
        }
    }
}

/// A cancelled operation had moved part of a frame, which no other operation can resume:
/// close the source and fail every queued operation with `ConnAborted`.
fn break_stream<R, W>(q: &mut Queues<R, W>) {
    fail_all(q, Error::ConnAborted);
}

/// Closes the source with `err` (unless it is closed already) and fails every queued
/// operation with it.
fn fail_all<R, W>(q: &mut Queues<R, W>, err: Error) {
    if q.closed.is_some() {
        return;
    }
    q.closed = Some(err);
    let rest: Vec<(Aio, OpToken)> = q
        .reads
        .drain(..)
        .map(|e| (e.aio, e.token))
        .chain(q.writes.drain(..).map(|e| (e.aio, e.token)))
        .collect();
    for (a, t) in rest {
        a.finish(t, Err(err), 0);
    }
}

/// Removes the entry for (`aio`, `token`); returns whether it had already moved bytes.
fn remove_entry<O: IoOp<T>, T>(queue: &mut VecDeque<Entry<O>>, aio: &Aio, token: OpToken) -> bool {
    match queue
        .iter()
        .position(|e| e.token == token && Aio::ptr_eq(&e.aio, aio))
    {
        Some(i) => queue.remove(i).is_some_and(|e| i == 0 && e.op.started()),
        None => false,
    }
}
