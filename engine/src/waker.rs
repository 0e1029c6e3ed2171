//! A thread's own wake-up fd, for a thread that waits in `poll` rather than on a condvar
//! (see [`AioProvider::wait_driving`](crate::AioProvider::wait_driving)): whoever completes the aio it
//! waits for writes this eventfd, so the wait ends whether the answer came from the fd the
//! thread polls or from anywhere else (a timer, a cancel, another pipe).

use std::io;

use crate::idle_strategy::{spin_until, SpinBudget};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::thread::{self, ThreadId};

/// An eventfd owned by one thread; shared (`Arc`) so a completer may write it after the
/// thread stopped waiting, and the fd is still open (the write is then a spurious wake).
#[derive(Debug)]
pub(crate) struct ThreadWaker {
    fd: RawFd,
    thread: ThreadId,
}

impl Drop for ThreadWaker {
    fn drop(&mut self) {
        // SAFETY: `fd` came from eventfd() in `new`, is owned by this value, closed once.
        unsafe { libc::close(self.fd) };
    }
}

thread_local! {
    static WAKER: Option<Arc<ThreadWaker>> = ThreadWaker::new().ok().map(Arc::new);
}

impl ThreadWaker {
    fn new() -> io::Result<ThreadWaker> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: a plain syscall with constant flags; the fd is owned by the result.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(ThreadWaker {
                fd,
                thread: thread::current().id(),
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }
    }

    /// This thread's waker (made on first use); `None` if no eventfd could be made, and
    /// then callers wait on the condvar as before.
    pub(crate) fn current() -> Option<Arc<ThreadWaker>> {
        WAKER.try_with(|w| w.clone()).ok().flatten()
    }

    /// Whether this is the calling thread's own waker (a thread never wakes itself: it is
    /// not waiting while it runs).
    pub(crate) fn is_current_thread(&self) -> bool {
        self.thread == thread::current().id()
    }

    /// Makes the owner's next (or current) `poll` return.
    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: `fd` is an open eventfd owned by `self`; we write 8 bytes from a live
        // u64. EAGAIN (the counter at its maximum) means a wake-up is pending anyway.
        unsafe { libc::write(self.fd, (&one as *const u64).cast(), 8) };
    }

    /// Waits until `fd` is readable (`write`: writable), hung up or in error, or this
    /// waker is woken. Returns whether `fd` was ready; a wake-up is consumed.
    /// Interrupted: returns false, the caller re-checks and waits again.
    pub(crate) fn poll_with(&self, fd: RawFd, write: bool) -> bool {
        let mut fds = [
            libc::pollfd {
                fd,
                events: if write { libc::POLLOUT } else { libc::POLLIN },
                revents: 0,
            },
            libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // The idle strategy's spin: poll without sleeping for a while first.
        let mut n = 0;
        if let Some(budget) = SpinBudget::start() {
            spin_until(budget, || {
                // SAFETY: `fds` is a live array of two pollfds for the duration of the call.
                n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 0) };
                n != 0
            });
        }
        if n == 0 {
            // SAFETY: `fds` is a live array of two pollfds for the duration of the call.
            n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        }
        if n <= 0 {
            return false;
        }
        if fds[1].revents != 0 {
            let mut sink = [0u8; 8];
            // SAFETY: reading 8 bytes into a live buffer from our open, non-blocking eventfd.
            unsafe { libc::read(self.fd, sink.as_mut_ptr().cast(), 8) };
        }
        fds[0].revents != 0
    }
}
