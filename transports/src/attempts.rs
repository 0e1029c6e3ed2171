//! The dial attempts a dialer has in flight, shared by the tcp/ipc dialer (`sock.rs`) and
//! the tls+tcp/ws/wss dialer (`layered.rs`): each attempt's aio, the addresses its lookup
//! gave that are still to try, the connection being set up on the current one, and the
//! first error, which the attempt reports once every address has failed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use nanoport_engine::{Aio, AioProvider, Error, OpToken, Result};
use socket2::SockAddr;

/// A connection being set up for an attempt (the dialer's negotiation).
pub(crate) trait Setup: Send + Sync {
    /// Gives up: closes the connection, reports nothing.
    fn abort(&self);
    /// Still connecting (the socket's connect has not completed): a failure here moves
    /// the attempt on to its next address.
    fn connecting(&self) -> bool;
}

struct Attempt<N> {
    aio: Aio,
    token: OpToken,
    left: VecDeque<SockAddr>,
    setup: Option<Arc<N>>,
    err: Option<Error>,
}

struct State<N> {
    pending: HashMap<usize, Attempt<N>>,
    closed: bool,
}

/// A dialer's attempts in flight, by key.
pub(crate) struct Attempts<N> {
    st: Mutex<State<N>>,
}

impl<N: Setup> Attempts<N> {
    pub(crate) fn new() -> Self {
        Attempts {
            st: Mutex::new(State {
                pending: HashMap::new(),
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<N>> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers attempt `key` for operation `token` of `aio`. Once the dialer is closed
    /// the operation fails with `Closed` instead, and this returns false.
    pub(crate) fn begin(&self, key: usize, aio: &Aio, token: OpToken) -> bool {
        let mut st = self.lock();
        if st.closed {
            drop(st);
            aio.finish(token, Err(Error::Closed), 0);
            return false;
        }
        st.pending.insert(
            key,
            Attempt {
                aio: aio.provider_handle(),
                token,
                left: VecDeque::new(),
                setup: None,
                err: None,
            },
        );
        true
    }

    /// The lookup for attempt `key` answered: true when it has addresses to try (call
    /// [`next_addr`](Attempts::next_addr)); an error fails the attempt.
    pub(crate) fn resolved(&self, key: usize, r: Result<VecDeque<SockAddr>>) -> bool {
        match r {
            Ok(addrs) => {
                if let Some(a) = self.lock().pending.get_mut(&key) {
                    a.left = addrs;
                }
                true
            }
            Err(e) => {
                self.fail(key, e);
                false
            }
        }
    }

    /// The next address for attempt `key`. With none left the attempt fails with its
    /// first error (`ConnRefused` if it had none); `None` then, and for an attempt gone.
    pub(crate) fn next_addr(&self, key: usize) -> Option<SockAddr> {
        let mut st = self.lock();
        let a = st.pending.get_mut(&key)?;
        if let Some(addr) = a.left.pop_front() {
            return Some(addr);
        }
        let e = a.err.unwrap_or(Error::ConnRefused);
        drop(st);
        self.fail(key, e);
        None
    }

    /// An address of attempt `key` failed with `e` (kept if it is the first error).
    pub(crate) fn note_error(&self, key: usize, e: Error) {
        if let Some(a) = self.lock().pending.get_mut(&key) {
            a.err.get_or_insert(e);
            a.setup = None;
        }
    }

    /// Records the connection being set up for attempt `key`; false if the attempt is
    /// gone (cancelled, closed), and then the caller aborts `setup`.
    pub(crate) fn set_setup(&self, key: usize, setup: &Arc<N>) -> bool {
        match self.lock().pending.get_mut(&key) {
            Some(a) => {
                a.setup = Some(setup.clone());
                true
            }
            None => false,
        }
    }

    /// The connection setup of attempt `key` ended with `res`: true when that was a
    /// failed connect that should move on to the next address (the error is noted).
    /// Once connected, the handshake's outcome is the attempt's.
    pub(crate) fn connect_failed<T>(&self, key: usize, res: &Result<T>) -> bool {
        let mut st = self.lock();
        let Some(a) = st.pending.get_mut(&key) else {
            return false;
        };
        let connecting = a.setup.as_ref().is_some_and(|n| n.connecting());
        match res {
            Err(e) if connecting && !matches!(e, Error::Closed | Error::Canceled) => {
                a.err.get_or_insert(*e);
                a.setup = None;
                true
            }
            _ => false,
        }
    }

    /// Ends attempt `key`, handing back its aio and token to complete; `None` if it is
    /// gone.
    pub(crate) fn take(&self, key: usize) -> Option<(Aio, OpToken)> {
        self.lock().pending.remove(&key).map(|a| (a.aio, a.token))
    }

    /// Fails attempt `key` with `e`.
    pub(crate) fn fail(&self, key: usize, e: Error) {
        if let Some((aio, token)) = self.take(key) {
            aio.finish(token, Err(e), 0);
        }
    }

    /// Attempt `key` was cancelled: forget it and abort its connection setup.
    pub(crate) fn cancel(&self, key: usize) {
        let a = self.lock().pending.remove(&key);
        if let Some(n) = a.and_then(|a| a.setup) {
            n.abort();
        }
    }

    /// The dialer closes: every attempt fails with `Closed`, later ones at once.
    pub(crate) fn close(&self) {
        let pending: Vec<_> = {
            let mut st = self.lock();
            st.closed = true;
            st.pending.drain().map(|(_, v)| v).collect()
        };
        for a in pending {
            if let Some(n) = a.setup {
                n.abort();
            }
            a.aio.finish(a.token, Err(Error::Closed), 0);
        }
    }
}
