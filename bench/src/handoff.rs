//! The in-process floor: two threads hand a message over through a mutex and a condition
//! variable, with no library in between.
//!
//! This is what the inproc transport competes with: one futex wake per hop, and a copy of
//! the body per send, as `Socket::send(&[u8])` and `nng_send` make. Like the raw-socket
//! floor it never spins, so on two CPUs it pays the same cross-CPU wake-up a library pays
//! when the kernel puts the two threads on different CPUs.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{RoundTrip, Stream};

/// A bounded queue of bodies between threads; `None` in the queue means "closed".
struct Handoff {
    queue: Mutex<VecDeque<Option<Vec<u8>>>>,
    cap: usize,
    /// Signalled when the queue gains an entry.
    filled: Condvar,
    /// Signalled when the queue loses an entry.
    drained: Condvar,
}

impl Handoff {
    fn new(cap: usize) -> Arc<Self> {
        Arc::new(Handoff {
            queue: Mutex::new(VecDeque::with_capacity(cap)),
            cap: cap.max(1),
            filled: Condvar::new(),
            drained: Condvar::new(),
        })
    }

    fn put(&self, body: Option<Vec<u8>>) {
        let mut q = self.queue.lock().expect("handoff lock");
        while q.len() >= self.cap {
            q = self.drained.wait(q).expect("handoff lock");
        }
        q.push_back(body);
        drop(q);
        self.filled.notify_one();
    }

    fn take(&self) -> Option<Vec<u8>> {
        let mut q = self.queue.lock().expect("handoff lock");
        loop {
            if let Some(body) = q.pop_front() {
                drop(q);
                self.drained.notify_one();
                return body;
            }
            q = self.filled.wait(q).expect("handoff lock");
        }
    }
}

/// Client side of an in-process ping-pong; an echo thread serves the other end.
pub struct HandoffRoundTrip {
    to_echo: Arc<Handoff>,
    from_echo: Arc<Handoff>,
    echo: Option<JoinHandle<()>>,
    body: Vec<u8>,
}

impl HandoffRoundTrip {
    /// Starts the echo thread; messages carry `size` bytes.
    pub fn new(size: usize) -> Self {
        let (to_echo, from_echo) = (Handoff::new(1), Handoff::new(1));
        let (rx, tx) = (to_echo.clone(), from_echo.clone());
        let echo = std::thread::spawn(move || {
            while let Some(body) = rx.take() {
                tx.put(Some(body));
            }
        });
        HandoffRoundTrip {
            to_echo,
            from_echo,
            echo: Some(echo),
            body: vec![7u8; size],
        }
    }
}

impl RoundTrip for HandoffRoundTrip {
    fn round_trip(&mut self) {
        self.to_echo.put(Some(self.body.clone()));
        let back = self.from_echo.take().expect("echo thread ended");
        debug_assert_eq!(back.len(), self.body.len(), "echo size");
    }
}

impl Drop for HandoffRoundTrip {
    fn drop(&mut self) {
        self.to_echo.put(None);
        if let Some(h) = self.echo.take() {
            let _ = h.join();
        }
    }
}

/// In-process one-way streaming through a queue of `depth` bodies (the push send buffer
/// the library contenders get), a scoped sender thread per call.
pub struct HandoffStream {
    size: usize,
    depth: usize,
}

impl HandoffStream {
    /// Bodies of `size` bytes through a queue of at most `depth` of them.
    pub fn new(size: usize, depth: usize) -> Self {
        HandoffStream { size, depth }
    }
}

impl Stream for HandoffStream {
    fn stream(&mut self, n: u64) -> Duration {
        let q = Handoff::new(self.depth);
        let size = self.size;
        let start = Instant::now();
        std::thread::scope(|s| {
            let tx = &q;
            s.spawn(move || {
                let body = vec![7u8; size];
                for _ in 0..n {
                    tx.put(Some(body.clone()));
                }
            });
            for _ in 0..n {
                let got = q.take().expect("sender does not close");
                debug_assert_eq!(got.len(), size, "body size");
            }
        });
        start.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_returns_the_body_and_drop_ends_the_echo_thread() {
        let mut rt = HandoffRoundTrip::new(100);
        for _ in 0..50 {
            rt.round_trip();
        }
        let back = {
            rt.to_echo.put(Some(vec![1, 2, 3]));
            rt.from_echo.take()
        };
        assert_eq!(back, Some(vec![1, 2, 3]));
        drop(rt); // joins the echo thread: a hang here fails the test by timeout
    }

    #[test]
    fn stream_delivers_every_body_through_a_shallow_queue() {
        let mut s = HandoffStream::new(10, 2);
        let _ = s.stream(1000); // every `take` must find a body: 1,000 sent, 1,000 taken
        let q = Handoff::new(2);
        q.put(Some(vec![1]));
        q.put(Some(vec![2]));
        assert_eq!(q.take(), Some(vec![1]));
        assert_eq!(q.take(), Some(vec![2]));
    }
}
