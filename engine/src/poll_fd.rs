//! [`PollFd`]: a file descriptor that polls readable while a condition holds, for another
//! program's event loop (NNG's `nni_pollable`, behind `nng_socket_get_recv_poll_fd` and
//! `nng_socket_get_send_poll_fd`).
//!
//! An eventfd on Linux (one fd; a write makes it readable, a read makes it quiet again),
//! a non-blocking pipe pair elsewhere (a byte in the pipe is "raised"), as NNG's
//! `nni_plat_pipe_*` uses on each platform. Its owner keeps the raised/cleared state and
//! calls [`raise`](PollFd::raise) and [`clear`](PollFd::clear) only on transitions, under
//! the lock that guards the condition, so the fd never disagrees with the condition once
//! that lock is released.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A pollable fd whose readability the owner switches on and off.
///
/// The fd is only ever polled for readability by its users; they must not read or write
/// it. Closed when the `PollFd` is dropped.
///
/// ```
/// use nanoport_engine::PollFd;
/// use std::os::fd::AsRawFd;
/// let p = PollFd::new().unwrap();
/// let readable = |p: &PollFd| {
///     let mut fds = [libc::pollfd { fd: p.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 }];
///     // SAFETY: one live pollfd, zero timeout.
///     unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) == 1 }
/// };
/// assert!(!readable(&p));
/// p.raise();
/// assert!(readable(&p));
/// p.clear();
/// assert!(!readable(&p));
/// ```
#[derive(Debug)]
pub struct PollFd {
    /// The fd users poll (the eventfd, or the pipe's read end).
    read: OwnedFd,
    /// The pipe's write end; `None` for an eventfd, which is written through `read`.
    write: Option<OwnedFd>,
}

impl PollFd {
    /// A new, quiet (not readable) fd, non-blocking and close-on-exec.
    ///
    /// # Errors
    /// The OS error when no fd can be made (`EMFILE`, `ENFILE`, ...).
    pub fn new() -> io::Result<PollFd> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: a plain syscall with constant flags; on success the fd is ours alone.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a freshly opened fd that nothing else owns.
            let read = unsafe { OwnedFd::from_raw_fd(fd) };
            Ok(PollFd { read, write: None })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let mut fds = [-1; 2];
            // SAFETY: `fds` is a live array of two c_ints for pipe() to fill.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: both fds were just opened by pipe() and nothing else owns them.
            let (read, write) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            for fd in [&read, &write] {
                set_nonblock_cloexec(fd)?;
            }
            Ok(PollFd {
                read,
                write: Some(write),
            })
        }
    }

    /// The fd to poll for readability.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Makes the fd readable (already readable: stays so).
    pub fn raise(&self) {
        match &self.write {
            None => {
                let one: u64 = 1;
                // SAFETY: `read` is our open eventfd; we write 8 bytes from a live u64.
                // EAGAIN (the counter at its maximum) leaves it readable, which is the goal.
                unsafe { libc::write(self.read.as_raw_fd(), (&one as *const u64).cast(), 8) };
            }
            Some(w) => {
                let one = [1u8];
                // SAFETY: `w` is our open, non-blocking pipe write end; one byte from a
                // live buffer. EAGAIN (pipe full) leaves it readable, which is the goal.
                unsafe { libc::write(w.as_raw_fd(), one.as_ptr().cast(), 1) };
            }
        }
    }

    /// Makes the fd quiet again (already quiet: stays so).
    pub fn clear(&self) {
        let mut sink = [0u8; 64];
        loop {
            let (fd, buf, len) = (self.read.as_raw_fd(), sink.as_mut_ptr().cast(), sink.len());
            // SAFETY: reading at most `len` bytes into the live `sink` from our own
            // non-blocking fd (an eventfd read wants 8, the buffer holds 64).
            let n = unsafe { libc::read(fd, buf, len) };
            // An eventfd is emptied by one read; a pipe until it says EAGAIN (n < 0).
            if n <= 0 || self.write.is_none() {
                return;
            }
        }
    }
}

impl AsFd for PollFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

#[cfg(not(target_os = "linux"))]
fn set_nonblock_cloexec(fd: &OwnedFd) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on an fd we own, with integer arguments only.
    let ok = unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        fl >= 0
            && libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) >= 0
            && libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) >= 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(p: &PollFd) -> bool {
        let mut fds = [libc::pollfd {
            fd: p.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one live pollfd for the duration of the call; zero timeout.
        unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) == 1 }
    }

    #[test]
    fn raise_and_clear_are_levels_and_idempotent() {
        let p = PollFd::new().unwrap();
        assert!(!readable(&p));
        p.clear();
        assert!(!readable(&p), "clearing a quiet fd keeps it quiet");
        p.raise();
        p.raise();
        assert!(readable(&p));
        assert!(readable(&p), "polling does not consume the level");
        p.clear();
        assert!(!readable(&p), "one clear undoes any number of raises");
        p.raise();
        assert!(readable(&p));
    }
}
