//! Host name lookups for dialers, off the reactor and the callback workers.
//!
//! `getaddrinfo` blocks, for seconds when a DNS server is slow, and has no non-blocking
//! form. As NNG's resolver (`posix_resolv_gai.c`), lookups run on a few threads of their
//! own shared by the whole process: at most [`MAX_THREADS`], started as lookups queue up,
//! parked on a condition variable when there is nothing to look up. A dialer submits one
//! lookup per connect attempt and carries on with the answer on the resolver thread (in an
//! engine scope: socket, non-blocking connect, registration; nothing there blocks).
//! A literal IP address is never looked up.
//!
//! A program can put its own lookup in front of the system's with [`set_resolver`] (a
//! service registry, a test's fixed table).

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};

use nanoport_engine::{Error, Result};

use crate::url::Family;

/// Threads that may run lookups at once (NNG's `NNG_RESOLV_CONCURRENCY`).
const MAX_THREADS: usize = 4;

type Job = Box<dyn FnOnce() + Send>;

struct State {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
    threads: usize,
}

struct Pool {
    st: Mutex<State>,
    cv: Condvar,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        st: Mutex::new(State {
            jobs: VecDeque::new(),
            idle: 0,
            threads: 0,
        }),
        cv: Condvar::new(),
    })
}

fn thread_loop(p: &'static Pool) {
    let mut st = lock(&p.st);
    loop {
        if let Some(job) = st.jobs.pop_front() {
            drop(st);
            // A panic (in a dialer's continuation, say) must not take the thread with
            // it: the pool counts its threads and would run out.
            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                eprintln!("nanoport: a name lookup's job panicked (the resolver carries on)");
            }
            st = lock(&p.st);
            continue;
        }
        st.idle += 1;
        st = p.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        st.idle -= 1;
    }
}

/// Queues `job` for a resolver thread, starting one when every thread is busy.
fn submit(job: Job) {
    let p = pool();
    let mut st = lock(&p.st);
    st.jobs.push_back(job);
    if st.jobs.len() > st.idle && st.threads < MAX_THREADS {
        let spawned = std::thread::Builder::new()
            .name("nanoport:resolver".into())
            .spawn(move || thread_loop(p));
        if spawned.is_ok() {
            st.threads += 1;
        } else if st.threads == 0 {
            // No thread to run it, and it must not run here: fail it, off this lock.
            let job = st.jobs.pop_back();
            drop(st);
            drop(job);
            return;
        }
    }
    drop(st);
    p.cv.notify_one();
}

/// A program-supplied name lookup, tried before the system's: `Some` answers for the
/// name, `None` leaves it to the system's resolver. See [`set_resolver`].
pub type ResolveFn = dyn Fn(&str, u16) -> Option<Result<Vec<SocketAddr>>> + Send + Sync;

fn custom() -> &'static RwLock<Option<Arc<ResolveFn>>> {
    static CUSTOM: OnceLock<RwLock<Option<Arc<ResolveFn>>>> = OnceLock::new();
    CUSTOM.get_or_init(|| RwLock::new(None))
}

/// Puts `f` in front of the system's name lookup for every dialer in the process (`None`
/// removes it). Dialers look their host name up again at each connect attempt, so a
/// change reaches the next attempt of running dialers.
///
/// `f` runs on a resolver thread, never on the reactor or a callback worker, and may block.
/// It gets the host as written in the URL and the port; it answers `Some(Ok(addresses))`
/// (tried in order; those of a family the URL excludes, `tcp4://` say, are skipped),
/// `Some(Err(e))` to fail the attempt with `e` (NNG reports a name that does not resolve
/// as `AddrInval`), or `None` to leave the name to the system. Literal IP addresses never
/// reach it. If it panics, that attempt fails with `Internal` and the dialer retries as
/// after any failed attempt.
///
/// ```
/// use std::net::SocketAddr;
/// use std::sync::Arc;
/// nanoport_transports::set_resolver(Some(Arc::new(|host: &str, port: u16| {
///     (host == "primary.example").then(|| Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]))
/// })));
/// nanoport_transports::set_resolver(None);
/// ```
pub fn set_resolver(f: Option<Arc<ResolveFn>>) {
    *custom().write().unwrap_or_else(|e| e.into_inner()) = f;
}

/// Looks `host` up now, blocking: the program's resolver, then the system's
/// (`getaddrinfo`). Addresses of other families than `family` are dropped, duplicates
/// too; none left is `AddrInval`, as NNG reports a name that does not resolve.
fn lookup_now(host: &str, port: u16, family: Family) -> Result<Vec<SocketAddr>> {
    let f = custom().read().unwrap_or_else(|e| e.into_inner()).clone();
    // A program's resolver that panics fails this lookup only.
    let answer = match f {
        Some(f) => catch_unwind(AssertUnwindSafe(|| f(host, port))).map_err(|_| Error::Internal)?,
        None => None,
    };
    let found = match answer {
        Some(r) => r?,
        None => (host, port)
            .to_socket_addrs()
            .map_err(|_| Error::AddrInval)?
            .collect(),
    };
    let mut out: Vec<SocketAddr> = Vec::with_capacity(found.len());
    for a in found {
        let ok = match family {
            Family::Any => true,
            Family::V4 => a.is_ipv4(),
            Family::V6 => a.is_ipv6(),
        };
        if ok && !out.contains(&a) {
            out.push(a);
        }
    }
    if out.is_empty() {
        return Err(Error::AddrInval);
    }
    Ok(out)
}

/// Looks `host` up on a resolver thread and calls `done` there with the addresses (or the
/// error). If no resolver thread can be started, `done` is dropped uncalled: callers treat
/// a dropped continuation as a failed lookup (see [`Continuation`]).
pub(crate) fn lookup(
    host: String,
    port: u16,
    family: Family,
    done: impl FnOnce(Result<Vec<SocketAddr>>) + Send + 'static,
) {
    let mut done = Continuation(Some(Box::new(done)));
    submit(Box::new(move || {
        let r = lookup_now(&host, port, family);
        done.call(r);
    }));
}

type Done = Box<dyn FnOnce(Result<Vec<SocketAddr>>) + Send>;

/// Calls its function exactly once: with the answer, or with `NoMem` if the lookup was
/// dropped without running (no resolver thread could be started).
struct Continuation(Option<Done>);

impl Continuation {
    fn call(&mut self, r: Result<Vec<SocketAddr>>) {
        if let Some(f) = self.0.take() {
            f(r);
        }
    }
}

impl Drop for Continuation {
    fn drop(&mut self) {
        self.call(Err(Error::NoMem));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn literal_free_names_resolve_on_a_resolver_thread() {
        let (tx, rx) = mpsc::channel();
        lookup("localhost".into(), 7, Family::Any, move |r| {
            let name = std::thread::current().name().map(str::to_owned);
            let _ = tx.send((r, name));
        });
        let (r, name) = rx.recv().unwrap();
        let addrs = r.unwrap();
        assert!(addrs.iter().all(|a| a.port() == 7 && a.ip().is_loopback()));
        assert_eq!(name.as_deref(), Some("nanoport:resolver"));
    }

    #[test]
    fn unknown_names_and_excluded_families_are_addr_inval() {
        let (tx, rx) = mpsc::channel();
        lookup("no-such-host.invalid".into(), 7, Family::Any, move |r| {
            let _ = tx.send(r);
        });
        assert_eq!(rx.recv().unwrap(), Err(Error::AddrInval));
        assert_eq!(
            lookup_now("127.0.0.1", 1, Family::V6),
            Err(Error::AddrInval)
        );
    }

    #[test]
    fn a_panicking_program_resolver_fails_that_lookup_only() {
        // The only test here that installs a resolver; it answers one name of its own.
        set_resolver(Some(Arc::new(|host: &str, _| {
            if host == "panics.nanoport.test" {
                panic!("a broken resolver");
            }
            None
        })));
        for _ in 0..(MAX_THREADS + 2) {
            let (tx, rx) = mpsc::channel();
            lookup("panics.nanoport.test".into(), 7, Family::Any, move |r| {
                let _ = tx.send(r);
            });
            assert_eq!(rx.recv().unwrap(), Err(Error::Internal));
        }
        let (tx, rx) = mpsc::channel();
        lookup("localhost".into(), 7, Family::Any, move |r| {
            let _ = tx.send(r.is_ok());
        });
        assert!(rx.recv().unwrap());
    }

    #[test]
    fn many_lookups_at_once_all_answer() {
        let (tx, rx) = mpsc::channel();
        for i in 0..20u16 {
            let tx = tx.clone();
            lookup("localhost".into(), i + 1, Family::Any, move |r| {
                let _ = tx.send(r.map(|a| a[0].port()));
            });
        }
        let mut ports: Vec<u16> = (0..20).map(|_| rx.recv().unwrap().unwrap()).collect();
        ports.sort_unstable();
        assert_eq!(ports, (1..=20).collect::<Vec<_>>());
        assert!(lock(&pool().st).threads <= MAX_THREADS);
    }
}
