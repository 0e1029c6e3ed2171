//! `IoSource` over a `UnixStream::pair()`: inline completion, parking and resumption on
//! readiness, cancel of a parked operation, close, deadlines, and stale reactor keys.
//!
//! `registered_sources()` is process-wide, so the tests of this file run one at a time
//! (a file-local lock) and each checks that it returns to the count it started from.

mod common;

use nanoport_engine::AioProvider;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use common::{eventually, starting, Recorder};
use nanoport_engine::{registered_sources, Aio, Error, IoOp, IoSource, Message, OpToken, Timeout};

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the tests of this file and checks the source count on the way out.
struct Guard {
    _lock: MutexGuard<'static, ()>,
    baseline: usize,
}

fn serial() -> Guard {
    let lock = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    Guard {
        _lock: lock,
        baseline: registered_sources(),
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !thread::panicking() {
            // The reactor thread may hold the last reference for a moment after a handler.
            eventually(
                || registered_sources() == self.baseline,
                "registered_sources() back to baseline",
            );
        }
    }
}

/// Reads what is there (up to 4 KiB) into a message.
struct ReadSome;

impl IoOp<UnixStream> for ReadSome {
    fn attempt(&mut self, io: &UnixStream, aio: &Aio, token: OpToken) -> Poll<()> {
        let mut buf = [0u8; 4096];
        match (&*io).read(&mut buf) {
            Ok(0) => {
                aio.finish(token, Err(Error::ConnShut), 0);
                Poll::Ready(())
            }
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

/// Writes all of `data`, resuming where it left off.
struct WriteAll {
    data: Vec<u8>,
    off: usize,
}

impl WriteAll {
    fn new(data: Vec<u8>) -> WriteAll {
        WriteAll { data, off: 0 }
    }
}

impl IoOp<UnixStream> for WriteAll {
    fn attempt(&mut self, io: &UnixStream, aio: &Aio, token: OpToken) -> Poll<()> {
        while self.off < self.data.len() {
            match (&*io).write(&self.data[self.off..]) {
                Ok(n) => self.off += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => {
                    aio.finish(token, Err(e.into()), self.off);
                    return Poll::Ready(());
                }
            }
        }
        aio.finish(token, Ok(()), self.off);
        Poll::Ready(())
    }

    fn started(&self) -> bool {
        self.off > 0
    }
}

type Src = IoSource<UnixStream, ReadSome, WriteAll>;

fn pair() -> (Src, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    (IoSource::new(a).unwrap(), b)
}

fn body(aio: &Aio) -> Vec<u8> {
    aio.take_msg()
        .map(|m| m.body().to_vec())
        .unwrap_or_default()
}

#[test]
fn read_of_data_already_there_completes_inline_but_calls_back_on_a_worker() {
    let _g = serial();
    let (src, mut peer) = pair();
    peer.write_all(b"ready").unwrap();

    // Waitable: the operation is over when start_read returns (no reactor round trip).
    let aio = Aio::new_waitable().unwrap();
    src.start_read(&aio, Timeout::Infinite, ReadSome);
    assert!(
        !aio.busy(),
        "data was there: the read must complete inside start_read"
    );
    assert_eq!((aio.result(), aio.count()), (Ok(()), 5));
    assert_eq!(body(&aio), b"ready");

    // Callback aio: completed inline, yet the callback runs later on a worker.
    peer.write_all(b"again").unwrap();
    let r = Recorder::new();
    starting(|| src.start_read(&r.aio, Timeout::Infinite, ReadSome));
    let seen = r.next();
    assert_eq!((seen.result, seen.count), (Ok(()), 5));
    assert!(seen.thread.starts_with("nanoport:worker") && !seen.inside_start);
    assert_eq!(body(&r.aio), b"again");
    r.assert_runs(1);

    // A write into an empty socket buffer completes inline too.
    let w = Aio::new_waitable().unwrap();
    src.start_write(&w, Timeout::Infinite, WriteAll::new(b"out".to_vec()));
    assert!(!w.busy());
    assert_eq!((w.result(), w.count()), (Ok(()), 3));
    let mut got = [0u8; 3];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"out");
    src.close(Error::Closed);
}

#[test]
fn parked_reads_resume_on_readiness_in_order() {
    let _g = serial();
    let (src, mut peer) = pair();
    let r1 = Recorder::new();
    let r2 = Recorder::new();
    src.start_read(&r1.aio, Timeout::Infinite, ReadSome);
    src.start_read(&r2.aio, Timeout::Infinite, ReadSome);
    assert!(r1.aio.busy() && r2.aio.busy(), "no data: both reads park");
    peer.write_all(b"first").unwrap();
    let seen = r1.next();
    assert_eq!((seen.result, seen.count), (Ok(()), 5));
    assert!(seen.thread.starts_with("nanoport:worker"));
    assert_eq!(body(&r1.aio), b"first");
    assert!(r2.aio.busy(), "the second read waits for more data");
    peer.write_all(b"second").unwrap();
    assert_eq!(r2.next().result, Ok(()));
    assert_eq!(body(&r2.aio), b"second");
    r1.assert_runs(1);
    r2.assert_runs(1);
    src.close(Error::Closed);
}

#[test]
fn ping_pong_many_round_trips() {
    let _g = serial();
    let (src, peer) = pair();
    let echo = thread::spawn(move || {
        let mut peer = peer;
        let mut buf = [0u8; 8];
        for _ in 0..500 {
            peer.read_exact(&mut buf).unwrap();
            peer.write_all(&buf).unwrap();
        }
    });
    let aio = Aio::new_waitable().unwrap();
    for i in 0u64..500 {
        src.start_write(
            &aio,
            Timeout::Infinite,
            WriteAll::new(i.to_be_bytes().to_vec()),
        );
        aio.wait();
        assert_eq!(aio.result(), Ok(()));
        let mut got = Vec::new();
        while got.len() < 8 {
            src.start_read(&aio, Timeout::Infinite, ReadSome);
            aio.wait();
            assert_eq!(aio.result(), Ok(()));
            got.extend(body(&aio));
        }
        assert_eq!(got, i.to_be_bytes());
    }
    echo.join().unwrap();
    src.close(Error::Closed);
}

#[test]
fn cancel_of_a_parked_read_consumes_nothing() {
    let _g = serial();
    let (src, mut peer) = pair();
    let r = Recorder::new();
    src.start_read(&r.aio, Timeout::Infinite, ReadSome);
    assert!(r.aio.busy());
    r.aio.cancel();
    assert_eq!(r.next().result, Err(Error::Canceled));
    assert!(r.aio.take_msg().is_none());
    peer.write_all(b"kept").unwrap();
    // The data went to nobody: the next read gets it.
    src.start_read(&r.aio, Timeout::Infinite, ReadSome);
    assert_eq!(r.next().result, Ok(()));
    assert_eq!(body(&r.aio), b"kept");
    r.assert_runs(2);
    assert!(!src.is_closed());
    src.close(Error::Closed);
}

#[test]
fn cancel_of_the_first_parked_read_lets_the_second_run() {
    let _g = serial();
    let (src, mut peer) = pair();
    let r1 = Recorder::new();
    let r2 = Recorder::new();
    src.start_read(&r1.aio, Timeout::Infinite, ReadSome);
    src.start_read(&r2.aio, Timeout::Infinite, ReadSome);
    r1.aio.cancel();
    assert_eq!(r1.next().result, Err(Error::Canceled));
    peer.write_all(b"to two").unwrap();
    assert_eq!(r2.next().result, Ok(()));
    assert_eq!(body(&r2.aio), b"to two");
    r1.assert_runs(1);
    r2.assert_runs(1);
    src.close(Error::Closed);
}

#[test]
fn deadline_of_a_parked_read() {
    let _g = serial();
    let (src, mut peer) = pair();
    let r = Recorder::new();
    r.aio.set_timeout(Duration::from_millis(10));
    src.start_read(&r.aio, Timeout::Infinite, ReadSome);
    assert_eq!(r.next().result, Err(Error::TimedOut));
    // The socket's default applies when the aio says Default.
    r.aio.set_timeout(Timeout::Default);
    src.start_read(&r.aio, Timeout::After(Duration::from_millis(5)), ReadSome);
    assert_eq!(r.next().result, Err(Error::TimedOut));
    r.aio.set_timeout(Timeout::Infinite);
    peer.write_all(b"late").unwrap();
    src.start_read(&r.aio, Timeout::After(Duration::ZERO), ReadSome);
    assert_eq!(
        r.next().result,
        Ok(()),
        "an infinite aio timeout overrides the default"
    );
    assert_eq!(body(&r.aio), b"late");
    r.assert_runs(3);
    src.close(Error::Closed);
}

/// Fills the peer's receive buffer through `src` until a write parks; returns its aio.
fn park_a_write(src: &Src) -> Recorder {
    let big = vec![7u8; 4 << 20];
    let r = Recorder::new();
    src.start_write(&r.aio, Timeout::Infinite, WriteAll::new(big));
    assert!(r.aio.busy(), "a 4 MiB write into a unix socket must park");
    r
}

#[test]
fn close_fails_every_queued_operation_with_closed_exactly_once() {
    let _g = serial();
    let (src, _peer) = pair();
    let reads: Vec<Recorder> = (0..3).map(|_| Recorder::new()).collect();
    for r in &reads {
        src.start_read(&r.aio, Timeout::Infinite, ReadSome);
    }
    let w1 = park_a_write(&src);
    let w2 = Recorder::new();
    src.start_write(
        &w2.aio,
        Timeout::Infinite,
        WriteAll::new(b"queued".to_vec()),
    );
    src.close(Error::Closed);
    src.close(Error::ConnReset); // a second close changes nothing
    assert!(src.is_closed());
    for r in reads.iter().chain([&w1, &w2]) {
        assert_eq!(r.next().result, Err(Error::Closed));
        r.assert_runs(1);
    }
    // A partly written message is left to its owner; a later operation fails at once, with
    // the callback on a worker.
    let late = Recorder::new();
    starting(|| src.start_read(&late.aio, Timeout::Infinite, ReadSome));
    let seen = late.next();
    assert_eq!(seen.result, Err(Error::Closed));
    assert!(!seen.inside_start);
    late.assert_runs(1);
    drop(src);
}

#[test]
fn cancelling_a_half_written_message_aborts_the_stream() {
    let _g = serial();
    let (src, _peer) = pair();
    let w1 = park_a_write(&src);
    let w2 = Recorder::new();
    let r = Recorder::new();
    src.start_write(&w2.aio, Timeout::Infinite, WriteAll::new(b"next".to_vec()));
    src.start_read(&r.aio, Timeout::Infinite, ReadSome);
    w1.aio.cancel();
    assert_eq!(w1.next().result, Err(Error::Canceled));
    // The stream is mid-frame: what follows cannot be sent, and the source is closed.
    assert_eq!(w2.next().result, Err(Error::ConnAborted));
    assert_eq!(r.next().result, Err(Error::ConnAborted));
    assert!(src.is_closed());
    for x in [&w1, &w2, &r] {
        x.assert_runs(1);
    }
}

#[test]
fn close_racing_cancel_and_data_completes_each_read_once() {
    let _g = serial();
    const ROUNDS: usize = 300;
    let mut tally = [0usize; 3];
    for round in 0..ROUNDS {
        let (src, mut peer) = pair();
        let r = Recorder::new();
        src.start_read(&r.aio, Timeout::Infinite, ReadSome);
        let barrier = Arc::new(std::sync::Barrier::new(3));
        let (b1, b2) = (barrier.clone(), barrier.clone());
        let s2 = src.clone();
        let a2 = r.aio.clone();
        let t1 = thread::spawn(move || {
            b1.wait();
            s2.close(Error::Closed);
        });
        let t2 = thread::spawn(move || {
            b2.wait();
            a2.cancel();
        });
        barrier.wait();
        peer.write_all(b"x").unwrap();
        t1.join().unwrap();
        t2.join().unwrap();
        let seen = r.next();
        match seen.result {
            Ok(()) => {
                assert_eq!(body(&r.aio), b"x");
                tally[0] += 1
            }
            Err(Error::Closed) => tally[1] += 1,
            Err(Error::Canceled) => tally[2] += 1,
            other => panic!("round {round}: {other:?}"),
        }
        r.assert_runs(1);
    }
    eprintln!(
        "data={} closed={} canceled={}",
        tally[0], tally[1], tally[2]
    );
    assert!(tally[1] > 0 && tally[2] > 0, "one-sided race: {tally:?}");
}

#[test]
fn register_drop_register_while_events_fly_never_misroutes() {
    // Sources come and go while their peers keep writing, so fds (and slab slots) are
    // reused with readiness events for the old owners still in flight. Every read must
    // complete exactly once, with its own pair's bytes or an error, and none may hang.
    let _g = serial();
    const ROUNDS: usize = 400;
    const LIVE: usize = 8;
    let misrouted = Arc::new(AtomicUsize::new(0));
    let completed = Arc::new(AtomicUsize::new(0));
    let mut live: Vec<(Src, UnixStream, u8, Recorder)> = Vec::new();
    let mut writers = Vec::new();
    for round in 0..ROUNDS {
        let tag = (round % 251) as u8 + 1;
        let (src, peer) = pair();
        let r = Recorder::new();
        src.start_read(&r.aio, Timeout::Infinite, ReadSome);
        // The peer writes its tag from another thread, racing with what follows.
        let mut w = peer.try_clone().unwrap();
        writers.push(thread::spawn(move || {
            let _ = w.write_all(&[tag; 16]);
        }));
        live.push((src, peer, tag, r));
        if live.len() > LIVE {
            // Retire the oldest source while its events may still be in flight: half the
            // time after its read completed, half the time while it is (maybe) parked.
            let (src, peer, tag, r) = live.remove(round % LIVE);
            if round % 2 == 0 {
                let seen = r.next();
                assert_eq!(seen.result, Ok(()));
                let b = body(&r.aio);
                if b.iter().any(|&x| x != tag) {
                    misrouted.fetch_add(1, Ordering::SeqCst);
                }
            } else {
                src.close(Error::Closed);
                let seen = r.next();
                if seen.result.is_ok() && body(&r.aio).iter().any(|&x| x != tag) {
                    misrouted.fetch_add(1, Ordering::SeqCst);
                }
            }
            r.assert_runs(1);
            completed.fetch_add(1, Ordering::SeqCst);
            src.close(Error::Closed);
            drop(src); // deregisters, then closes the fd: the number is free for reuse
            drop(peer);
        }
        if writers.len() > 32 {
            for w in writers.drain(..) {
                w.join().unwrap();
            }
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    for (src, _peer, tag, r) in live.drain(..) {
        let seen = r.next();
        assert_eq!(
            seen.result,
            Ok(()),
            "a live source's read must complete: no lost wake-up"
        );
        assert!(body(&r.aio).iter().all(|&x| x == tag));
        r.assert_runs(1);
        src.close(Error::Closed);
    }
    assert_eq!(
        misrouted.load(Ordering::SeqCst),
        0,
        "a read got another source's bytes"
    );
    assert_eq!(completed.load(Ordering::SeqCst), ROUNDS - LIVE);
}

#[test]
fn sources_armed_for_both_directions_come_and_go_while_peers_drain_and_write() {
    // Each source parks a big write and a read, so its fd is armed for both directions;
    // the peer drains (a writable event: the reactor re-arms the read interest) and then
    // writes a tag. Meanwhile older sources are closed and dropped mid-traffic, so fd
    // numbers are reused while the reactor handles events of their previous owners. A
    // re-arm aimed at a reused fd would steal the new source's registration and hang it.
    let _g = serial();
    const ROUNDS: usize = 200;
    const LIVE: usize = 4;
    const BIG: usize = 1 << 20;
    let mut live = Vec::new();
    let mut peers = Vec::new();
    for round in 0..ROUNDS {
        let tag = (round % 250) as u8 + 1;
        let (src, peer) = pair();
        let w = Recorder::new();
        let r = Recorder::new();
        src.start_write(&w.aio, Timeout::Infinite, WriteAll::new(vec![0u8; BIG]));
        src.start_read(&r.aio, Timeout::Infinite, ReadSome);
        peers.push(thread::spawn(move || {
            let mut peer = peer;
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0;
            while got < BIG {
                match peer.read(&mut buf) {
                    Ok(0) | Err(_) => return, // the source was retired mid-way
                    Ok(n) => got += n,
                }
            }
            let _ = peer.write_all(&[tag]);
            // Keep the peer open until the source side goes away.
            let _ = peer.read(&mut buf);
        }));
        live.push((src, tag, w, r));
        if live.len() > LIVE {
            let (src, tag, w, r) = live.remove(round % LIVE);
            if round % 3 == 0 {
                // Let this one finish: both operations must complete.
                assert_eq!(w.next().result, Ok(()), "round {round}: write");
                assert_eq!(
                    r.next().result,
                    Ok(()),
                    "round {round}: read (lost wake-up?)"
                );
                assert_eq!(body(&r.aio), vec![tag]);
            } else {
                src.close(Error::Closed);
                let (rw, rr) = (w.next().result, r.next().result);
                assert!(
                    rw == Ok(()) || rw == Err(Error::Closed),
                    "round {round}: {rw:?}"
                );
                match rr {
                    Ok(()) => assert_eq!(body(&r.aio), vec![tag]),
                    Err(e) => assert_eq!(e, Error::Closed),
                }
            }
            w.assert_runs(1);
            r.assert_runs(1);
            src.close(Error::Closed);
            drop(src);
        }
    }
    for (src, tag, w, r) in live {
        assert_eq!(w.next().result, Ok(()));
        assert_eq!(
            r.next().result,
            Ok(()),
            "a live source's read must complete"
        );
        assert_eq!(body(&r.aio), vec![tag]);
        src.close(Error::Closed);
    }
    for p in peers {
        p.join().unwrap();
    }
}

#[test]
fn dropping_the_source_with_a_parked_read_keeps_it_cancellable() {
    // The parked operation keeps the source alive (its cancel hook holds it); cancelling it
    // lets the source go, and the registration with it.
    let _g = serial();
    let (src, _peer) = pair();
    let r = Recorder::new();
    src.start_read(&r.aio, Timeout::Infinite, ReadSome);
    drop(src);
    assert!(r.aio.busy());
    r.aio.cancel();
    assert_eq!(r.next().result, Err(Error::Canceled));
    r.assert_runs(1);
}

/// A read op for `a_cancelled_read_behind_a_busy_one_never_consumes_data`: the first one
/// parks, then on readiness waits for the test's go-ahead before finishing without reading.
enum GatedRead {
    Gate {
        attempts: usize,
        go: std::sync::mpsc::Receiver<()>,
    },
    Plain(ReadSome),
}

impl IoOp<UnixStream> for GatedRead {
    fn attempt(&mut self, io: &UnixStream, aio: &Aio, token: OpToken) -> Poll<()> {
        match self {
            GatedRead::Plain(r) => r.attempt(io, aio, token),
            GatedRead::Gate { attempts, go } => {
                *attempts += 1;
                if *attempts == 1 {
                    return Poll::Pending; // park: nothing to read yet
                }
                // Readiness: hold the queue (we run under its lock) until told to go on.
                go.recv_timeout(Duration::from_secs(10)).unwrap();
                aio.finish(token, Ok(()), 0);
                Poll::Ready(())
            }
        }
    }
}

#[test]
fn a_cancelled_read_behind_a_busy_one_never_consumes_data() {
    // Read A is at the front, read B queued behind it. B is cancelled: the engine completes
    // B at once, then tells the source (which must wait for the queue lock, held while A
    // runs). When A finishes, the source must not attempt B: B can no longer complete, so
    // bytes it read would be lost to the stream.
    let _g = serial();
    let panics = nanoport_engine::callback_panics();
    let (a, mut peer) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let src: IoSource<UnixStream, GatedRead, WriteAll> = IoSource::new(a).unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel();
    let ra = Recorder::new();
    let rb = Recorder::new();
    src.start_read(
        &ra.aio,
        Timeout::Infinite,
        GatedRead::Gate {
            attempts: 0,
            go: go_rx,
        },
    );
    src.start_read(&rb.aio, Timeout::Infinite, GatedRead::Plain(ReadSome));
    assert!(ra.aio.busy() && rb.aio.busy());
    peer.write_all(b"precious").unwrap(); // the reactor drives A, which waits at its gate
    let b2 = rb.aio.clone();
    let canceller = thread::spawn(move || b2.cancel()); // blocks in B's hook until A is done
    eventually(
        || !rb.aio.busy(),
        "B completes (cancelled) although its hook waits",
    );
    assert_eq!(rb.next().result, Err(Error::Canceled));
    go_tx.send(()).unwrap();
    assert_eq!(ra.next().result, Ok(()));
    canceller.join().unwrap();
    // The bytes are still in the socket for the next read.
    let rc = Recorder::new();
    rc.aio.set_timeout(Duration::from_secs(5));
    src.start_read(&rc.aio, Timeout::Infinite, GatedRead::Plain(ReadSome));
    assert_eq!(
        rc.next().result,
        Ok(()),
        "the cancelled read swallowed the data"
    );
    assert_eq!(body(&rc.aio), b"precious");
    assert!(rb.aio.take_msg().is_none());
    assert_eq!(
        nanoport_engine::callback_panics(),
        panics,
        "a gate timed out in a handler"
    );
    src.close(Error::Closed);
}

/// Write-side twin of [`GatedRead`]: parks once, then on readiness waits for the go-ahead
/// and finishes without writing.
enum GatedWrite {
    Gate {
        queued: Arc<std::sync::atomic::AtomicBool>,
        go: std::sync::mpsc::Receiver<()>,
    },
    Plain(WriteAll),
}

impl IoOp<UnixStream> for GatedWrite {
    fn attempt(&mut self, io: &UnixStream, aio: &Aio, token: OpToken) -> Poll<()> {
        match self {
            GatedWrite::Plain(w) => w.attempt(io, aio, token),
            GatedWrite::Gate { queued, go } => {
                if !queued.load(Ordering::SeqCst) {
                    // Park (again) until the test has queued the op behind us; the fd is
                    // writable, so the reactor comes straight back.
                    return Poll::Pending;
                }
                go.recv_timeout(Duration::from_secs(10)).unwrap();
                aio.finish(token, Ok(()), 0);
                Poll::Ready(())
            }
        }
    }

    fn started(&self) -> bool {
        matches!(self, GatedWrite::Plain(w) if w.started())
    }
}

#[test]
fn a_cancelled_write_behind_a_busy_one_never_sends() {
    // As for reads: a write cancelled while queued must not reach the wire afterwards, or
    // its owner (told Canceled, message handed back) would send it twice.
    let _g = serial();
    let panics = nanoport_engine::callback_panics();
    let (a, mut peer) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let src: IoSource<UnixStream, ReadSome, GatedWrite> = IoSource::new(a).unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel();
    let wa = Recorder::new();
    let wb = Recorder::new();
    let b2 = wb.aio.clone();
    let queued = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A parks until B is queued behind it.
    src.start_write(
        &wa.aio,
        Timeout::Infinite,
        GatedWrite::Gate {
            queued: queued.clone(),
            go: go_rx,
        },
    );
    src.start_write(
        &wb.aio,
        Timeout::Infinite,
        GatedWrite::Plain(WriteAll::new(b"dup".to_vec())),
    );
    queued.store(true, Ordering::SeqCst);
    // The reactor now drives A on writability; A waits at its gate holding the queue.
    let canceller = thread::spawn(move || b2.cancel());
    eventually(
        || !wb.aio.busy(),
        "B completes (cancelled) although its hook waits",
    );
    assert_eq!(wb.next().result, Err(Error::Canceled));
    go_tx.send(()).unwrap();
    assert_eq!(wa.next().result, Ok(()));
    canceller.join().unwrap();
    // Nothing reached the peer.
    let w = Aio::new_waitable().unwrap();
    src.start_write(
        &w,
        Timeout::Infinite,
        GatedWrite::Plain(WriteAll::new(b"end".to_vec())),
    );
    w.wait();
    assert_eq!(w.result(), Ok(()));
    let mut got = [0u8; 3];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"end", "the cancelled write was sent anyway");
    assert_eq!(
        nanoport_engine::callback_panics(),
        panics,
        "a gate timed out in a handler"
    );
    src.close(Error::Closed);
}

#[test]
fn a_refused_arming_fails_what_waits_instead_of_hanging() {
    use std::os::fd::AsRawFd;
    let _g = serial();
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let num = a.as_raw_fd();
    let src: Src = IoSource::new(a).unwrap();
    // The fd number now names another socket that the poller never saw (dup2 closes the
    // registered one atomically), so arming it is refused (ENOENT).
    let (c, _d) = UnixStream::pair().unwrap();
    c.set_nonblocking(true).unwrap();
    // SAFETY: both are open fds owned by this test; dup2 makes `num` refer to `c`'s
    // socket, which the source then owns; `c` keeps its own fd.
    let r = unsafe { libc::dup2(c.as_raw_fd(), num) };
    assert_eq!(r, num);
    let rec = Recorder::new();
    src.start_read(&rec.aio, Timeout::Infinite, ReadSome);
    let seen = rec.next();
    assert!(
        seen.result.is_err(),
        "the read fails with the poller's error"
    );
    assert!(
        src.is_closed(),
        "and the source is closed for later operations"
    );
    rec.assert_runs(1);
}
