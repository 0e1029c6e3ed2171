//! A two-second tour of nanoport's engine: start operations, sleep, cancel, time out,
//! chain callbacks, stop, misuse, and a socket read parked on the reactor.
//!
//! ```text
//! cargo run --release --example engine_tour
//! ```

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use nanoport_engine::{
    armed_timers, callback_panics, registered_sources, sleep_aio, Aio, AioProvider, Error, IoOp,
    IoSource, Message, OpToken, Timeout,
};

fn ms(d: Duration) -> String {
    format!("{:7.2} ms", d.as_secs_f64() * 1e3)
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

/// What a reporting callback saw: the result, when (since the start), and on which thread.
type Report = (Result<(), Error>, Duration, String);

/// A callback aio that reports each completion on a channel.
fn reporting_aio(t0: Instant) -> (Aio, mpsc::Receiver<Report>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let aio = Aio::new(move |aio| {
        let _ = tx
            .lock()
            .unwrap()
            .send((aio.result(), t0.elapsed(), thread_name()));
    })
    .expect("aio");
    (aio, rx)
}

/// Reads whatever is there into a message (a transport would run a framing state machine).
struct ReadSome;
impl IoOp<UnixStream> for ReadSome {
    fn attempt(&mut self, io: &UnixStream, aio: &Aio, token: OpToken) -> Poll<()> {
        let mut buf = [0u8; 256];
        match (&*io).read(&mut buf) {
            Ok(n) => {
                let _ = aio.finish_recv(token, Message::from(&buf[..n]));
                Poll::Ready(())
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Poll::Pending,
            Err(e) => {
                aio.finish(token, Err(e.into()), 0);
                Poll::Ready(())
            }
        }
    }
}

fn main() {
    let timers_before = armed_timers();
    let sources_before = registered_sources();
    println!(
        "nanoport engine tour: {} worker threads, one reactor thread\n",
        nanoport_engine::worker_threads()
    );

    // 1. A sleep with a callback: it runs on a worker thread, never in the starting call.
    let t0 = Instant::now();
    let (aio, rx) = reporting_aio(t0);
    sleep_aio(Duration::from_millis(100), &aio);
    let (r, at, th) = rx.recv().unwrap();
    println!(
        "1. sleep_aio(100 ms)                 -> {r:?} after {} on {th}",
        ms(at)
    );

    // 2. The aio's own timeout is shorter than the sleep: TimedOut.
    let t0 = Instant::now();
    let waitable = Aio::new_waitable().unwrap();
    waitable.set_timeout(Duration::from_millis(50));
    sleep_aio(Duration::from_secs(3600), &waitable);
    waitable.wait();
    println!(
        "2. timeout 50 ms, sleep 1 h (wait)   -> {:?} after {}",
        waitable.result(),
        ms(t0.elapsed())
    );

    // 3. Cancel a sleep from another thread.
    let t0 = Instant::now();
    let (aio, rx) = reporting_aio(t0);
    sleep_aio(Duration::from_secs(3600), &aio);
    let a2 = aio.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        a2.cancel();
    });
    let (r, at, _) = rx.recv().unwrap();
    println!(
        "3. sleep 1 h, cancel at 20 ms        -> {r:?} after {}",
        ms(at)
    );

    // 4. Abort with an error of our choosing.
    let t0 = Instant::now();
    let (aio, rx) = reporting_aio(t0);
    sleep_aio(Duration::from_secs(3600), &aio);
    aio.abort(Error::ConnReset);
    let (r, at, _) = rx.recv().unwrap();
    println!(
        "4. abort(ConnReset)                  -> {r:?} after {}",
        ms(at)
    );

    // 5. A zero timeout means "do not wait": nothing to answer at once, so TimedOut
    //    without waiting; the callback still runs on a worker, never in the call.
    let t0 = Instant::now();
    let (aio, rx) = reporting_aio(t0);
    aio.set_timeout(Duration::ZERO);
    sleep_aio(Duration::from_secs(1), &aio);
    let (r, at, th) = rx.recv().unwrap();
    println!(
        "5. zero timeout                      -> {r:?} after {} on {th}",
        ms(at)
    );

    // 6. A callback that starts the next operation on its own aio: a ticker.
    let t0 = Instant::now();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    let ticker = Aio::new(move |aio| {
        if aio.result().is_ok() {
            let n = t.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = tx.lock().unwrap().send((n, t0.elapsed()));
            sleep_aio(Duration::from_millis(50), aio);
        }
    })
    .unwrap();
    sleep_aio(Duration::from_millis(50), &ticker);
    for _ in 0..5 {
        let (n, at) = rx.recv().unwrap();
        println!("6. ticker: tick {n} at {}", ms(at));
    }
    // stop: cancels the pending tick and waits for a running callback; later starts fail.
    ticker.stop();
    println!(
        "6. ticker stopped after {} ticks (busy: {})",
        ticks.load(Ordering::SeqCst),
        ticker.busy()
    );

    // 7. Many sleeps at once, random deadlines: they complete in deadline order.
    let t0 = Instant::now();
    const N: usize = 10_000;
    let order = Arc::new(Mutex::new(Vec::with_capacity(N)));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let aios: Vec<Aio> = (0..N)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let d = Duration::from_micros(seed % 200_000);
            let deadline = Instant::now() + d;
            let o = order.clone();
            let aio = Aio::new(move |_| o.lock().unwrap().push(deadline)).unwrap();
            sleep_aio(d, &aio);
            aio
        })
        .collect();
    println!("7. {N} sleeps armed: armed_timers() = {}", armed_timers());
    for a in &aios {
        a.wait();
    }
    let order = order.lock().unwrap();
    // Two workers run callbacks, so deadlines due together may swap; count the rest.
    let mut latest = order[0];
    let mut late = 0;
    for &d in order.iter() {
        if d + Duration::from_millis(2) < latest {
            late += 1;
        }
        latest = latest.max(d);
    }
    println!(
        "7. all done after {}; completions more than 2 ms out of deadline order: {late}; armed_timers() = {}",
        ms(t0.elapsed()),
        armed_timers()
    );
    drop(aios);

    // 8. A socket read parked on the reactor until the peer writes.
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let src: IoSource<UnixStream, ReadSome, ReadSome> = IoSource::new(a).unwrap();
    let t0 = Instant::now();
    let (aio, rx) = reporting_aio(t0);
    src.start_read(&aio, Timeout::Infinite, ReadSome);
    println!(
        "8. read started: parked (busy: {}), sources registered: {}",
        aio.busy(),
        registered_sources()
    );
    std::thread::sleep(Duration::from_millis(30));
    b.write_all(b"hello from the peer").unwrap();
    let (r, at, th) = rx.recv().unwrap();
    let msg = aio.take_msg().unwrap();
    println!(
        "8. read completed -> {r:?} after {} on {th}: {:?}",
        ms(at),
        String::from_utf8_lossy(msg.body())
    );
    src.start_read(&aio, Timeout::Infinite, ReadSome);
    src.close(Error::Closed);
    let (r, _, _) = rx.recv().unwrap();
    println!("8. close with a read parked      -> {r:?}");
    drop(src);

    // 9. A failed send leaves its message on the aio for its owner.
    let (aio, rx) = reporting_aio(Instant::now());
    aio.set_msg(Message::from("not lost"));
    let _token = aio.begin(
        Timeout::Infinite,
        Some(nanoport_engine::CancelHook::new(Arc::new(NoOp), 0)),
    );
    aio.cancel();
    let (r, _, _) = rx.recv().unwrap();
    println!(
        "9. cancelled send -> {r:?}; take_msg() = {:?}",
        aio.take_msg()
            .map(|m| String::from_utf8_lossy(m.body()).into_owned())
    );

    // 10. Misuse and panics: starting on a busy aio panics with a clear message; a panicking
    // callback is caught, counted, and the workers go on.
    let busy = Aio::new_waitable().unwrap();
    sleep_aio(Duration::from_secs(3600), &busy);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // keep the tour's output tidy
    let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sleep_aio(Duration::ZERO, &busy)
    }));
    let text = p
        .err()
        .and_then(|e| e.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    println!("10. second start on a busy aio panics: {text:?}");
    println!("10. the first operation is intact: busy = {}", busy.busy());
    busy.cancel();
    busy.wait();
    let before = callback_panics();
    let bad = Aio::new(|_| panic!("a deliberate panic in a callback")).unwrap();
    sleep_aio(Duration::ZERO, &bad);
    bad.wait();
    std::panic::set_hook(hook);
    let (aio, rx) = reporting_aio(Instant::now());
    sleep_aio(Duration::ZERO, &aio);
    let (r, _, th) = rx.recv().unwrap();
    println!(
        "10. callback_panics: {before} -> {}; the next callback still runs: {r:?} on {th}",
        callback_panics()
    );

    drop((bad, busy, aio, waitable, ticker));
    println!(
        "\narmed timers: {} (was {timers_before}); registered sources: {} (was {sources_before})",
        armed_timers(),
        registered_sources()
    );
}

struct NoOp;
impl nanoport_engine::Cancel for NoOp {
    fn cancelled(&self, _: &Aio, _: usize, _: OpToken) {}
}
