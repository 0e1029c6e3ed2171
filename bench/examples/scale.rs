//! Scale: many TCP pipes on one socket, and many aios in flight.
//!
//! ```text
//! cargo build --release -p nanoport-bench --example scale          # nanoport only
//! cargo build --release -p nanoport-bench --example scale --features libnng   # + libnng
//! $CARGO_TARGET_DIR/release/examples/scale      # everything below, each run in its own process
//! $CARGO_TARGET_DIR/release/examples/scale nanoport pipes 10000
//! $CARGO_TARGET_DIR/release/examples/scale libnng sleep 100000
//! ```
//!
//! Arguments: `LIBRARY MEASUREMENT N`, LIBRARY `nanoport` or `libnng` (the latter with
//! `--features libnng`); with no arguments every measurement runs for each library.
//!
//! * `pipes N`: a rep0 socket listens on tcp loopback; a second process (this binary,
//!   `LIB dialers N URL`) opens one req0 socket and starts N non-blocking dialers to it,
//!   so the listening socket ends up with N pipes. Two processes keep each under the
//!   20,000-descriptor hard limit of this machine (which cannot be raised here). Reports
//!   the time until the listener has all N pipes, VmRSS growth per pipe on each side, and
//!   req/rep round-trip latency (64 B, from a separate req0 socket in the listening
//!   process to the same rep0 socket) before and while the N pipes are connected.
//!   libnng counts its pipes with nng_pipe_notify.
//! * `sleep N`: N callback aios each started with `sleep_aio(1 s)` (`nng_sleep_aio`).
//!   Reports the time to start them, VmRSS growth per aio, and how long after the last
//!   deadline the last callback ran.
//! * `recv N`: N `recv_aio`s (`nng_socket_recv`) pending on one pull0 socket, which a
//!   push0 socket then feeds N 8-byte messages over inproc. Reports the start time,
//!   VmRSS growth per aio, and the time from the first send to the last callback.
//!
//! The fd limit is raised in-process (the hard limit too, where allowed); if it cannot cover
//! N descriptors the run says so and stops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nanoport::{sleep_aio, Aio, Message, PipeEvent, Socket};
use nanoport_bench::{raise_nofile, rss_kib};

/// How long to wait for all pipes or completions before giving up and reporting.
const PATIENCE: Duration = Duration::from_secs(120);

/// A count that a thread can wait on until it reaches a target.
#[derive(Default)]
struct Counter {
    n: Mutex<usize>,
    cv: Condvar,
}

impl Counter {
    fn add(&self, d: isize) {
        let mut n = self.n.lock().unwrap();
        *n = n.checked_add_signed(d).expect("counter underflow");
        self.cv.notify_all();
    }

    /// Blocks until the count is at least `target` or `PATIENCE` runs out; returns the count.
    fn wait_for(&self, target: usize) -> usize {
        let deadline = Instant::now() + PATIENCE;
        let mut n = self.n.lock().unwrap();
        while *n < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            n = self.cv.wait_timeout(n, left).unwrap().0;
        }
        *n
    }
}

/// Round-trip latency statistics over `trips` timed exchanges: (mean, p50, p99) in µs.
fn latency_stats(mut one: impl FnMut(), trips: usize) -> (f64, f64, f64) {
    for _ in 0..200 {
        one();
    }
    let mut v: Vec<f64> = (0..trips)
        .map(|_| {
            let t = Instant::now();
            one();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (mean, v[v.len() / 2], v[v.len() * 99 / 100])
}

fn fd_budget(n: usize) -> bool {
    let want = (n + 1024) as u64;
    match raise_nofile(want) {
        Ok(got) if got >= want => {
            println!("  RLIMIT_NOFILE soft limit now {got} (asked for {want})");
            true
        }
        Ok(got) => {
            println!(
                "  fd limit {got} < {want} needed for {n} pipes: cannot raise it further (hard limit); skipping"
            );
            false
        }
        Err(e) => {
            println!("  cannot raise the fd limit: {e}; skipping");
            false
        }
    }
}

/// The dialing side of `pipes`, in a child process (`scale LIB dialers N URL`), so each
/// process needs only N descriptors and stays under the fd limit.
struct DialerChild {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl DialerChild {
    /// Starts the child and returns once it is about to start its N dialers.
    fn spawn(lib: &str, n: usize, url: &str) -> DialerChild {
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([lib, "dialers", &n.to_string(), url])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the dialing process");
        let out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut c = DialerChild { child, out };
        c.line("dialing");
        c
    }

    /// The child's next line that starts with `prefix` (other lines are skipped).
    fn line(&mut self, prefix: &str) -> String {
        use std::io::BufRead;
        loop {
            let mut l = String::new();
            let n = self.out.read_line(&mut l).expect("read child");
            assert!(n > 0, "the dialing process exited before saying {prefix:?}");
            if l.starts_with(prefix) {
                return l.trim_end().to_string();
            }
        }
    }

    /// Closing its stdin tells the child to close its socket and exit.
    fn finish(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The child's side: N dialers on one req0 socket; prints "dialing", then once all N are
/// connected "connected MS RSS0_KIB RSS1_KIB GOT"; then waits for stdin to close.
fn np_dialers(n: usize, url: &str) {
    if !fd_budget(n) {
        std::process::exit(1);
    }
    let many = Socket::req0().unwrap();
    let dialed = Arc::new(Counter::default());
    let c = dialed.clone();
    many.pipe_notify(PipeEvent::AddPost, move |_, _| c.add(1));
    let rss0 = rss_kib();
    let mut dialers = Vec::with_capacity(n);
    announce_dialing();
    let t0 = Instant::now();
    for _ in 0..n {
        dialers.push(many.dial_nonblocking(url).unwrap());
    }
    let got = dialed.wait_for(n);
    report_connected(t0, rss0, got);
    let _ = many.close();
    drop(dialers);
}

fn announce_dialing() {
    use std::io::Write;
    println!("dialing");
    std::io::stdout().flush().unwrap();
}

/// Prints the child's report, then blocks until the parent closes our stdin.
fn report_connected(t0: Instant, rss0: u64, got: usize) {
    use std::io::{Read, Write};
    println!(
        "connected {:.1} {rss0} {} {got}",
        t0.elapsed().as_secs_f64() * 1e3,
        rss_kib()
    );
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// Prints the parent's and the child's view of connecting N pipes.
fn print_connect(n: usize, got_l: usize, connected: Duration, rss: (u64, u64), child: &str) {
    let f: Vec<&str> = child.split_whitespace().collect();
    let num = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    println!(
        "  all {n} connected after {:.1} ms at the listener ({got_l}/{n}); the dialing process saw {}/{n} after {:.1} ms",
        connected.as_secs_f64() * 1e3,
        num(4),
        num(1)
    );
    let l = (rss.1.saturating_sub(rss.0)) as f64 / n as f64;
    let d = (num(3) - num(2)) / n as f64;
    println!(
        "  VmRSS per pipe: listener side {l:.2} KiB ({} -> {} KiB), dialer side {d:.2} KiB ({} -> {} KiB), both ends {:.2} KiB",
        rss.0,
        rss.1,
        num(2),
        num(3),
        l + d
    );
}

/// The part of the pipes measurement both libraries share, once a listening socket that
/// counts its pipes in `listened` echoes on `url`: round-trip latency with one pipe
/// (`one` is one round trip), then `n` more pipes dialed from a child process (connect
/// time and memory), then the latency again. Returns the child, still connected.
fn measure_pipes(
    lib: &str,
    n: usize,
    url: &str,
    listened: &Counter,
    mut one: impl FnMut(),
) -> DialerChild {
    let (m0, p50_0, p99_0) = latency_stats(&mut one, 2000);
    println!(
        "  req/rep 64 B with 1 pipe:        mean {m0:.1} us, p50 {p50_0:.1} us, p99 {p99_0:.1} us"
    );
    let base = listened.wait_for(1);
    let rss0 = rss_kib();
    let mut child = DialerChild::spawn(lib, n, url);
    let t0 = Instant::now();
    let got_l = listened.wait_for(base + n) - base;
    let connected = t0.elapsed();
    let rss1 = rss_kib();
    let report = child.line("connected");
    print_connect(n, got_l, connected, (rss0, rss1), &report);
    let (m1, p50_1, p99_1) = latency_stats(&mut one, 2000);
    println!(
        "  req/rep 64 B with {n} more pipes: mean {m1:.1} us, p50 {p50_1:.1} us, p99 {p99_1:.1} us"
    );
    child
}

fn np_pipes(n: usize) {
    println!("nanoport: {n} tcp pipes on one socket (dialers in a second process)");
    if !fd_budget(n) {
        return;
    }
    let rep = Socket::rep0().unwrap();
    let listened = Arc::new(Counter::default());
    let c = listened.clone();
    rep.pipe_notify(PipeEvent::AddPost, move |_, _| c.add(1));
    let l = rep.listen("tcp://127.0.0.1:0").unwrap();
    let url = format!("tcp://127.0.0.1:{}", l.port().unwrap());

    // Echo server for the latency probe; it also serves the idle pipes (which never send).
    let server = rep.clone();
    let echo = std::thread::spawn(move || {
        while let Ok(m) = server.recv() {
            if server.send(m).is_err() {
                break;
            }
        }
    });
    let probe = Socket::req0().unwrap();
    probe.dial(&url).unwrap();
    let body = [7u8; 64];
    let one = || {
        probe.send(&body[..]).unwrap();
        probe.recv().unwrap();
    };
    let child = measure_pipes("nanoport", n, &url, &listened, one);

    let t = Instant::now();
    child.finish();
    let _ = probe.close();
    let _ = rep.close();
    let _ = echo.join();
    println!(
        "  dialing process gone and sockets closed after {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
}

/// `sleep_aio(1 s)` on N callback aios.
fn np_sleep_aios(n: usize) {
    println!("nanoport: {n} sleep aios in flight");
    let left = Arc::new(AtomicUsize::new(n));
    let done = Arc::new(Counter::default());
    let last_done: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let rss0 = rss_kib();
    let t0 = Instant::now();
    let mut aios = Vec::with_capacity(n);
    for _ in 0..n {
        let (left, done, last_done) = (left.clone(), done.clone(), last_done.clone());
        let aio = Aio::new(move |a: &Aio| {
            assert!(a.result().is_ok());
            if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                *last_done.lock().unwrap() = Some(Instant::now());
                done.add(1);
            }
        })
        .unwrap();
        sleep_aio(Duration::from_secs(1), &aio);
        aios.push(aio);
    }
    let started = t0.elapsed();
    let rss1 = rss_kib();
    done.wait_for(1);
    let finished = last_done.lock().unwrap().unwrap_or_else(Instant::now);
    // The last sleep was started at t0 + started, so its deadline is 1 s after that.
    let late = finished.saturating_duration_since(t0 + started + Duration::from_secs(1));
    println!(
        "  sleep_aio(1 s) x {n}: started in {:.1} ms ({:.2} us each); VmRSS {rss0} -> {rss1} KiB ({:.0} B per aio); \
         all {} callbacks done {:.1} ms after the last deadline (first deadline to last callback: {:.1} ms)",
        started.as_secs_f64() * 1e3,
        started.as_secs_f64() * 1e6 / n as f64,
        (rss1.saturating_sub(rss0)) as f64 * 1024.0 / n as f64,
        n - left.load(Ordering::Acquire),
        late.as_secs_f64() * 1e3,
        finished
            .saturating_duration_since(t0 + Duration::from_secs(1))
            .as_secs_f64()
            * 1e3
    );
    drop(aios);
}

/// N `recv_aio` pending on one pull0 socket, then N messages over inproc.
fn np_recv_aios(n: usize) {
    println!("nanoport: {n} recv aios in flight");
    let pull = Socket::pull0().unwrap();
    pull.listen("inproc://scale-aios").unwrap();
    let push = Socket::push0().unwrap();
    push.dial("inproc://scale-aios").unwrap();
    let left = Arc::new(AtomicUsize::new(n));
    let done = Arc::new(Counter::default());
    let rss0 = rss_kib();
    let t0 = Instant::now();
    let mut aios = Vec::with_capacity(n);
    for _ in 0..n {
        let (left, done) = (left.clone(), done.clone());
        let aio = Aio::new(move |a: &Aio| {
            assert!(a.result().is_ok(), "recv: {:?}", a.result());
            if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                done.add(1);
            }
        })
        .unwrap();
        pull.recv_aio(&aio);
        aios.push(aio);
    }
    let started = t0.elapsed();
    let rss1 = rss_kib();
    let t1 = Instant::now();
    let sender = std::thread::spawn(move || {
        for _ in 0..n {
            push.send(Message::from(&[1u8; 8][..])).unwrap();
        }
        push
    });
    let got = done.wait_for(1);
    let drained = t1.elapsed();
    report_aios(
        "recv_aio",
        n,
        started,
        (rss0, rss1),
        if got > 0 {
            n
        } else {
            n - left.load(Ordering::Acquire)
        },
        drained,
    );
    let push = sender.join().unwrap();
    let _ = push.close();
    let _ = pull.close();
    drop(aios);
}

#[cfg(feature = "libnng")]
mod libnng_scale {
    //! The `pipes` measurement on libnng: pipes are counted with `nng_pipe_notify`.

    use super::{announce_dialing, fd_budget, measure_pipes, report_connected, Counter};
    use nanoport_bench::nng::{self, NngSocket, Proto};
    use nanoport_bench::rss_kib;
    use nng_sys as sys;
    use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// `nng_pipe_notify` callback: `arg` is the `Counter` registered with it.
    ///
    /// # Safety
    /// `arg` must point to a `Counter` that outlives every call (see `count_pipes`).
    unsafe extern "C" fn on_add(_: sys::nng_pipe, _: sys::nng_pipe_ev, arg: *mut std::ffi::c_void) {
        // SAFETY: `arg` is the address of a `Counter` that `pipes` leaks (`&'static`), so
        // it is valid for as long as libnng may call this.
        let c = unsafe { &*(arg as *const Counter) };
        c.add(1);
    }

    fn count_pipes(s: &NngSocket) -> &'static Counter {
        let c: &'static Counter = Box::leak(Box::default());
        let arg = c as *const Counter as *mut std::ffi::c_void;
        let (sock, ev) = (s.raw(), sys::NNG_PIPE_EV_ADD_POST);
        // SAFETY: the socket id is open, `on_add` matches nng_pipe_cb, and `arg` points to
        // a leaked (never freed) Counter.
        let rv = unsafe { sys::nng_pipe_notify(sock, ev, Some(on_add), arg) };
        assert_eq!(rv.0, 0, "nng_pipe_notify");
        c
    }

    /// Shared by every aio of one libnng aio measurement (leaked: libnng may call back
    /// until the aios are freed).
    struct AioRun {
        left: AtomicUsize,
        done: Counter,
        last: Mutex<Option<Instant>>,
    }

    /// Per-aio callback argument: the run and the aio itself (to take received messages).
    struct Slot {
        run: &'static AioRun,
        aio: AtomicPtr<sys::nng_aio>,
    }

    /// nng_aio callback for both measurements: frees a received message, if any, and
    /// counts the completion.
    ///
    /// # Safety
    /// `arg` must point to a live `Slot` whose `aio` is the aio completing.
    unsafe extern "C" fn on_done(arg: *mut std::ffi::c_void) {
        // SAFETY: per the contract above, `arg` is a live Slot (kept until after
        // nng_aio_free of its aio).
        let slot = unsafe { &*(arg as *const Slot) };
        let aio = slot.aio.load(Ordering::Acquire);
        // SAFETY: `aio` is the live aio whose callback this is; nng_aio_get_msg returns
        // the received message (ours to free) or null.
        unsafe {
            assert_eq!(sys::nng_aio_result(aio).0, 0, "aio failed");
            let m = sys::nng_aio_get_msg(aio);
            if !m.is_null() {
                sys::nng_aio_set_msg(aio, std::ptr::null_mut());
                sys::nng_msg_free(m);
            }
        }
        if slot.run.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            *slot.run.last.lock().unwrap() = Some(Instant::now());
            slot.run.done.add(1);
        }
    }

    /// Allocates `n` callback aios and starts each with `start`; returns the aios, their
    /// slots, the run state and the time it took. The slots live in one boxed slice that
    /// is not resized, so the addresses handed to libnng stay valid until `free_aios`.
    fn start_aios(
        n: usize,
        start: impl Fn(*mut sys::nng_aio),
    ) -> (
        Vec<*mut sys::nng_aio>,
        Box<[Slot]>,
        &'static AioRun,
        std::time::Duration,
    ) {
        let run: &'static AioRun = Box::leak(Box::new(AioRun {
            left: AtomicUsize::new(n),
            done: Counter::default(),
            last: Mutex::new(None),
        }));
        let t0 = Instant::now();
        let slots: Box<[Slot]> = (0..n)
            .map(|_| Slot {
                run,
                aio: AtomicPtr::new(std::ptr::null_mut()),
            })
            .collect();
        let mut aios = Vec::with_capacity(n);
        for slot in slots.iter() {
            let mut aio: *mut sys::nng_aio = std::ptr::null_mut();
            let arg = slot as *const Slot as *mut std::ffi::c_void;
            // SAFETY: `aio` is a valid out-parameter; `on_done` matches the callback type
            // and `arg` points into `slots`, which outlives the aio (freed after it).
            let rv = unsafe { sys::nng_aio_alloc(&mut aio, Some(on_done), arg) };
            assert_eq!(rv.0, 0, "nng_aio_alloc");
            slot.aio.store(aio, Ordering::Release);
            start(aio);
            aios.push(aio);
        }
        (aios, slots, run, t0.elapsed())
    }

    fn free_aios(aios: Vec<*mut sys::nng_aio>, slots: Box<[Slot]>) {
        for a in aios {
            // SAFETY: each aio was allocated by nng_aio_alloc and is freed once here;
            // nng_aio_free waits for a running callback.
            unsafe { sys::nng_aio_free(a) };
        }
        drop(slots);
    }

    pub fn sleep_aios(n: usize) {
        println!("libnng {}: {n} sleep aios in flight", nng::version());
        let rss0 = rss_kib();
        let (aios, slots, run, started) = start_aios(n, |aio| {
            // SAFETY: `aio` was just allocated and is idle.
            unsafe { sys::nng_sleep_aio(1000, aio) }
        });
        let t_last_start = Instant::now();
        let rss1 = rss_kib();
        run.done.wait_for(1);
        let finished = run.last.lock().unwrap().unwrap_or_else(Instant::now);
        let late = finished.saturating_duration_since(t_last_start + Duration::from_secs(1));
        println!(
            "  nng_sleep_aio(1 s) x {n}: started in {:.1} ms ({:.2} us each); VmRSS {rss0} -> {rss1} KiB ({:.0} B per aio); \
             all {} callbacks done {:.1} ms after the last deadline",
            started.as_secs_f64() * 1e3,
            started.as_secs_f64() * 1e6 / n as f64,
            (rss1.saturating_sub(rss0)) as f64 * 1024.0 / n as f64,
            n - run.left.load(Ordering::Acquire),
            late.as_secs_f64() * 1e3,
        );
        free_aios(aios, slots);
    }

    pub fn recv_aios(n: usize) {
        println!("libnng {}: {n} recv aios in flight", nng::version());
        let pull = NngSocket::open(Proto::Pull0).unwrap();
        pull.listen("inproc://scale-aios").unwrap();
        let push = NngSocket::open(Proto::Push0).unwrap();
        push.dial("inproc://scale-aios").unwrap();
        let rss0 = rss_kib();
        let (aios, slots, run, started) = start_aios(n, |aio| {
            // SAFETY: `aio` was just allocated and is idle; the socket is open.
            unsafe { sys::nng_socket_recv(pull.raw(), aio) }
        });
        let rss1 = rss_kib();
        let t1 = Instant::now();
        let sender = std::thread::spawn(move || {
            for _ in 0..n {
                push.send(&[1u8; 8]).unwrap();
            }
        });
        run.done.wait_for(1);
        let drained = t1.elapsed();
        crate::report_aios(
            "nng_socket_recv",
            n,
            started,
            (rss0, rss1),
            n - run.left.load(Ordering::Acquire),
            drained,
        );
        let _ = sender.join();
        push.close();
        pull.close();
        free_aios(aios, slots);
    }

    pub fn dialers(n: usize, url: &str) {
        if !fd_budget(n) {
            std::process::exit(1);
        }
        let many = NngSocket::open(Proto::Req0).unwrap();
        let dialed = count_pipes(&many);
        let rss0 = rss_kib();
        announce_dialing();
        let t0 = Instant::now();
        for _ in 0..n {
            many.dial_nonblocking(url).unwrap();
        }
        let got = dialed.wait_for(n);
        report_connected(t0, rss0, got);
        many.close();
    }

    pub fn pipes(n: usize) {
        println!(
            "libnng {}: {n} tcp pipes on one socket (dialers in a second process)",
            nng::version()
        );
        if !fd_budget(n) {
            return;
        }
        let rep = NngSocket::open(Proto::Rep0).unwrap();
        let listened = count_pipes(&rep);
        let port = rep.listen("tcp://127.0.0.1:0").unwrap().unwrap();
        let url = format!("tcp://127.0.0.1:{port}");
        let echo = std::thread::spawn(move || {
            while let Ok(m) = rep.recv() {
                if rep.send_msg(m).is_err() {
                    break;
                }
            }
        });
        let probe = NngSocket::open(Proto::Req0).unwrap();
        probe.dial(&url).unwrap();
        let body = [7u8; 64];
        let one = || {
            probe.send(&body).unwrap();
            probe.recv().unwrap();
        };
        let child = measure_pipes("libnng", n, &url, listened, one);
        let t = Instant::now();
        child.finish();
        probe.close();
        rep.close();
        let _ = echo.join();
        println!(
            "  dialing process gone and sockets closed after {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
}

fn run(lib: &str, what: &str, n: usize) {
    match (lib, what) {
        ("nanoport", "pipes") => np_pipes(n),
        ("nanoport", "sleep") => np_sleep_aios(n),
        ("nanoport", "recv") => np_recv_aios(n),
        #[cfg(feature = "libnng")]
        ("libnng", "pipes") => libnng_scale::pipes(n),
        #[cfg(feature = "libnng")]
        ("libnng", "sleep") => libnng_scale::sleep_aios(n),
        #[cfg(feature = "libnng")]
        ("libnng", "recv") => libnng_scale::recv_aios(n),
        _ => {
            eprintln!("usage: scale [nanoport|libnng pipes|sleep|recv N] (libnng needs --features libnng)");
            std::process::exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [lib, what, n, url] = args.as_slice() {
        let n: usize = n.parse().expect("N");
        match (lib.as_str(), what.as_str()) {
            ("nanoport", "dialers") => np_dialers(n, url),
            #[cfg(feature = "libnng")]
            ("libnng", "dialers") => libnng_scale::dialers(n, url),
            _ => run("", "", 0),
        }
        return;
    }
    if let [lib, what, n] = args.as_slice() {
        println!(
            "nproc {}, pid {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::process::id()
        );
        run(lib, what, n.parse().expect("N"));
        return;
    }
    if !args.is_empty() {
        run("", "", 0);
    }
    // Each measurement in a fresh process, so that one's VmRSS growth is not hidden by
    // memory an earlier one freed (the allocator keeps and reuses it).
    let libs: &[&str] = if cfg!(feature = "libnng") {
        &["nanoport", "libnng"]
    } else {
        &["nanoport"]
    };
    let me = std::env::current_exe().expect("current_exe");
    for (what, n) in [
        ("pipes", "1000"),
        ("pipes", "10000"),
        ("sleep", "100000"),
        ("recv", "100000"),
    ] {
        for lib in libs {
            let st = std::process::Command::new(&me)
                .args([lib, what, n])
                .status();
            if !st.as_ref().is_ok_and(|s| s.success()) {
                eprintln!("scale {lib} {what} {n} failed: {st:?}");
            }
        }
    }
}

/// Prints one library's "many receives in flight" line (the same for both libraries).
fn report_aios(
    what: &str,
    n: usize,
    started: Duration,
    (rss0, rss1): (u64, u64),
    completed: usize,
    drained: Duration,
) {
    println!(
        "  {what} x {n} on one pull0: started in {:.1} ms ({:.2} us each); VmRSS {rss0} -> {rss1} KiB ({:.0} B per aio); \
         {completed} of {n} completed {:.1} ms after the first send ({:.0} msg/s)",
        started.as_secs_f64() * 1e3,
        started.as_secs_f64() * 1e6 / n as f64,
        (rss1.saturating_sub(rss0)) as f64 * 1024.0 / n as f64,
        drained.as_secs_f64() * 1e3,
        n as f64 / drained.as_secs_f64()
    );
}
