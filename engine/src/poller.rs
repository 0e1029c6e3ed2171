//! The reactor's readiness source: epoll called directly on Linux (`epoll.rs`), the
//! `polling` crate elsewhere, behind one small API.

#[cfg(all(target_os = "linux", not(feature = "portable-poller")))]
pub(crate) use crate::epoll::{Event, Events, Poller};

#[cfg(any(not(target_os = "linux"), feature = "portable-poller"))]
pub(crate) use portable::{Event, Events, Poller};

#[cfg(any(not(target_os = "linux"), feature = "portable-poller"))]
mod portable {
    use std::io;
    use std::os::fd::{BorrowedFd, RawFd};
    use std::time::Duration;

    use polling::PollMode;

    pub(crate) use polling::{Event, Events};

    /// `polling::Poller` in one-shot mode.
    pub(crate) struct Poller(polling::Poller);

    impl Poller {
        pub(crate) fn new() -> io::Result<Poller> {
            polling::Poller::new().map(Poller)
        }

        /// # Safety
        /// `fd` must stay open until it is deleted.
        pub(crate) unsafe fn add_oneshot(&self, fd: RawFd, interest: Event) -> io::Result<()> {
            // SAFETY: the caller's contract is polling's.
            unsafe { self.0.add_with_mode(fd, interest, PollMode::Oneshot) }
        }

        pub(crate) fn modify_oneshot(&self, fd: BorrowedFd<'_>, i: Event) -> io::Result<()> {
            self.0.modify_with_mode(fd, i, PollMode::Oneshot)
        }

        pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
            self.0.delete(fd)
        }

        pub(crate) fn wait(&self, ev: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
            self.0.wait(ev, timeout).map(drop)
        }

        pub(crate) fn notify(&self) -> io::Result<()> {
            self.0.notify()
        }
    }
}
