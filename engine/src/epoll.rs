//! The reactor's readiness source on Linux: epoll, called directly.
//!
//! `polling` 3.11 spends five syscalls on every `wait` (it re-arms a timerfd and its
//! notifier eventfd each time, see docs/benchmarks.md §3), and a reactor wake-up sits on
//! every parked read's path. This backend spends one: `epoll_pwait2` with the deadline as
//! its timeout (nanosecond precision, so no timerfd), and a notifier eventfd registered
//! once, edge-triggered, that is written only when the reactor may be asleep and never
//! read back. Its API is the small subset of `polling::Poller` the reactor uses, so other
//! platforms use `polling` itself (see `poller.rs`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A readiness event: the registration key and what the fd is ready for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) key: usize,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}

impl Event {
    pub(crate) fn none(key: usize) -> Event {
        Event {
            key,
            readable: false,
            writable: false,
        }
    }
    pub(crate) fn readable(key: usize) -> Event {
        Event {
            readable: true,
            ..Event::none(key)
        }
    }
    pub(crate) fn writable(key: usize) -> Event {
        Event {
            writable: true,
            ..Event::none(key)
        }
    }
    pub(crate) fn all(key: usize) -> Event {
        Event {
            readable: true,
            writable: true,
            key,
        }
    }

    /// The epoll mask for this interest, one-shot: an fd reports once per arming.
    fn mask(self) -> u32 {
        let mut m = libc::EPOLLONESHOT as u32;
        if self.readable {
            m |= (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) as u32;
        }
        if self.writable {
            m |= libc::EPOLLOUT as u32;
        }
        m
    }
}

/// A buffer for the events of one `wait`.
pub(crate) struct Events {
    buf: Vec<libc::epoll_event>,
    len: usize,
}

impl Events {
    pub(crate) fn new() -> Events {
        Events {
            buf: vec![libc::epoll_event { events: 0, u64: 0 }; 1024],
            len: 0,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// The readiness events collected, without the notifier's.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.buf[..self.len]
            .iter()
            .filter(|e| e.u64 != NOTIFY_KEY)
            .map(|e| {
                let f = e.events as i32;
                // Hang-up and error wake both directions, so the op sees the error itself.
                let both = f & (libc::EPOLLHUP | libc::EPOLLERR) != 0;
                Event {
                    key: e.u64 as usize,
                    readable: both || f & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) != 0,
                    writable: both || f & libc::EPOLLOUT != 0,
                }
            })
    }
}

/// The notifier's key; registration keys never take it (their generation half is below
/// 2^31, see `reactor.rs`).
const NOTIFY_KEY: u64 = u64::MAX;

/// An owned fd, closed on drop.
struct OwnedRaw(RawFd);

impl Drop for OwnedRaw {
    fn drop(&mut self) {
        // SAFETY: we own this fd (made by epoll_create1/eventfd) and close it once.
        unsafe { libc::close(self.0) };
    }
}

/// One epoll instance plus its notifier.
pub(crate) struct Poller {
    epfd: OwnedRaw,
    notifier: OwnedRaw,
    /// Set by `notify` when it writes the eventfd; cleared by `wait` when it returns. A
    /// notify while set would only repeat a wake-up already on its way.
    notified: AtomicBool,
    /// Whether `epoll_pwait2` exists (Linux 5.11+); without it, `epoll_wait` with the
    /// timeout rounded up to whole milliseconds.
    has_pwait2: AtomicBool,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: plain syscalls with constant flags; the returned fds are owned below.
        let epfd = OwnedRaw(cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?);
        // SAFETY: as above.
        let notifier = OwnedRaw(cvt(unsafe {
            libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK)
        })?);
        let p = Poller {
            epfd,
            notifier,
            notified: AtomicBool::new(false),
            has_pwait2: AtomicBool::new(true),
        };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: NOTIFY_KEY,
        };
        // SAFETY: both fds are open and owned by `p`; `ev` is a valid epoll_event.
        cvt(unsafe { libc::epoll_ctl(p.epfd.0, libc::EPOLL_CTL_ADD, p.notifier.0, &mut ev) })?;
        Ok(p)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, ev: Option<Event>) -> io::Result<()> {
        let mut e = libc::epoll_event {
            events: ev.map_or(0, Event::mask),
            u64: ev.map_or(0, |e| e.key as u64),
        };
        // SAFETY: `epfd` is open; the caller guarantees `fd` is open (see the reactor's
        // `Armed::live` protocol); `e` is a valid epoll_event for the call.
        cvt(unsafe { libc::epoll_ctl(self.epfd.0, op, fd, &mut e) }).map(drop)
    }

    /// Adds `fd` in one-shot mode with `interest`.
    ///
    /// # Safety
    /// `fd` must stay open until it is [`delete`](Poller::delete)d.
    pub(crate) unsafe fn add_oneshot(&self, fd: RawFd, interest: Event) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, Some(interest))
    }

    /// Re-arms `fd` (one-shot) with `interest`.
    pub(crate) fn modify_oneshot(&self, fd: BorrowedFd<'_>, interest: Event) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd.as_raw_fd(), Some(interest))
    }

    /// Removes `fd`.
    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd.as_raw_fd(), None)
    }

    /// Waits for events until `timeout` (`None`: until an event or a `notify`).
    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let cap = events.buf.len() as libc::c_int;
        let ptr = events.buf.as_mut_ptr();
        let n = if self.has_pwait2.load(Ordering::Relaxed) {
            let ts = timeout.map(|d| libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
            });
            let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
            // SAFETY: `ptr` points to `cap` writable epoll_events owned by `events`;
            // `tsp` is null or points to a timespec that outlives the call; no sigmask.
            let r = unsafe { libc::epoll_pwait2(self.epfd.0, ptr, cap, tsp, std::ptr::null()) };
            if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
                self.has_pwait2.store(false, Ordering::Relaxed);
                return self.wait(events, timeout);
            }
            r
        } else {
            // Round up: waking before the deadline would find nothing due and spin.
            let ms = timeout.map_or(-1, |d| {
                d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int
            });
            // SAFETY: as above, with a millisecond timeout.
            unsafe { libc::epoll_wait(self.epfd.0, ptr, cap, ms) }
        };
        // Whatever woke us, a later notify must write again.
        self.notified.store(false, Ordering::Release);
        events.len = cvt(n)? as usize;
        Ok(())
    }

    /// Wakes the current or next `wait`.
    pub(crate) fn notify(&self) -> io::Result<()> {
        if self.notified.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let one: u64 = 1;
        loop {
            // SAFETY: `notifier` is an open eventfd; we write 8 bytes from a live u64.
            let r = unsafe { libc::write(self.notifier.0, (&one as *const u64).cast(), 8) };
            if r >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => {
                    // The counter is at its maximum after ~2^64 notifies: drain it once.
                    let mut sink = [0u8; 8];
                    // SAFETY: reading 8 bytes into a live buffer from the open eventfd.
                    unsafe { libc::read(self.notifier.0, sink.as_mut_ptr().cast(), 8) };
                }
                _ => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    #[test]
    fn readiness_is_one_shot_and_rearmed_by_modify() {
        let p = Poller::new().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        // SAFETY: `a` outlives its registration (deleted below).
        unsafe { p.add_oneshot(a.as_raw_fd(), Event::readable(7)).unwrap() };
        let mut ev = Events::new();
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        assert_eq!(ev.iter().count(), 0, "nothing to read yet");
        (&b).write_all_bytes(b"x");
        p.wait(&mut ev, Some(Duration::from_secs(5))).unwrap();
        let got: Vec<Event> = ev.iter().collect();
        assert_eq!(got, vec![Event::readable(7)]);
        // One-shot: still readable, but not reported until re-armed.
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        assert_eq!(ev.iter().count(), 0);
        p.modify_oneshot(a.as_fd(), Event::all(7)).unwrap();
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        assert_eq!(ev.iter().collect::<Vec<_>>(), vec![Event::all(7)]);
        p.delete(a.as_fd()).unwrap();
    }

    #[test]
    fn hang_up_wakes_both_directions() {
        let p = Poller::new().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        // SAFETY: `a` outlives its registration.
        unsafe { p.add_oneshot(a.as_raw_fd(), Event::readable(3)).unwrap() };
        drop(b);
        let mut ev = Events::new();
        p.wait(&mut ev, Some(Duration::from_secs(5))).unwrap();
        let got: Vec<Event> = ev.iter().collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].readable && got[0].writable);
        p.delete(a.as_fd()).unwrap();
    }

    #[test]
    fn notify_wakes_a_wait_and_coalesces() {
        let p = std::sync::Arc::new(Poller::new().unwrap());
        for _ in 0..3 {
            p.notify().unwrap(); // coalesced into one wake-up
        }
        let mut ev = Events::new();
        let t = Instant::now();
        p.wait(&mut ev, Some(Duration::from_secs(10))).unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "notify woke the wait"
        );
        assert_eq!(
            ev.iter().count(),
            0,
            "the notifier is not a readiness event"
        );
        // Edge-triggered and coalesced: nothing left pending.
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        assert_eq!(ev.len, 0);
        // A notify from another thread wakes a wait with no timeout.
        let p2 = p.clone();
        let h = std::thread::spawn(move || {
            let mut ev = Events::new();
            p2.wait(&mut ev, None).unwrap();
        });
        p.notify().unwrap();
        h.join().unwrap();
    }

    #[test]
    fn timeouts_are_honoured_not_early() {
        let p = Poller::new().unwrap();
        let mut ev = Events::new();
        let t = Instant::now();
        p.wait(&mut ev, Some(Duration::from_micros(1500))).unwrap();
        assert!(t.elapsed() >= Duration::from_micros(1500));
    }

    trait WriteAll {
        fn write_all_bytes(self, b: &[u8]);
    }
    impl WriteAll for &UnixStream {
        fn write_all_bytes(self, b: &[u8]) {
            use std::io::Write;
            let mut s = self;
            s.write_all(b).unwrap();
        }
    }
}
