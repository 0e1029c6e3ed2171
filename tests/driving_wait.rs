//! A blocking receive on a socket with one stream pipe is waited out by the caller itself:
//! it polls the pipe's fd and runs the read on its own thread (`Aio::wait_driving`), so
//! the reactor is not woken per message. These tests pin down that such a wait still
//! ends for every other reason a wait ends: a timeout, a close, a message that another
//! thread read, and a peer that goes away.
//!
//! To know the receiver is really polling (and not still on its way there), a test
//! reads the thread's current system call from `/proc/thread-self/syscall` (Linux).

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{eventually, ipc, tcp};
use nanoport::{Error, Socket};

/// `/proc/self/task/TID/syscall` of the calling thread, for another thread to watch.
fn my_syscall_file() -> String {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    format!("/proc/{}/syscall", link.display())
}

/// Waits until the thread whose syscall file is `path` sits in `poll(fds, 2, -1)`: the
/// driving wait (x86_64 syscall 7; elsewhere, skip the check and give it a moment).
fn until_driving(path: &str) {
    until_one_drives(&[path]);
}

/// As [`until_driving`], for whichever of several threads gets to drive the fd.
fn until_one_drives(paths: &[&str]) {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        thread::sleep(Duration::from_millis(50));
        return;
    }
    let polling = |path: &&str| {
        let s = std::fs::read_to_string(path).unwrap_or_default();
        let f: Vec<&str> = s.split_whitespace().collect();
        f.first() == Some(&"7") && f.get(2) == Some(&"0x2")
    };
    let seen = eventually(Duration::from_secs(10), || {
        paths.iter().any(polling).then_some(())
    });
    assert!(seen.is_some(), "no thread reached its driving poll");
}

/// A connected pair0 pair over `url`, the pipe up on both sides.
fn connected(url: &str) -> (Socket, Socket) {
    let a = Socket::pair0().unwrap();
    a.listen(url).unwrap();
    let b = Socket::pair0().unwrap();
    b.dial(url).unwrap();
    b.send("hello").unwrap();
    assert_eq!(a.recv().unwrap().body(), b"hello");
    (a, b)
}

/// Runs `recv` on `s` in a thread; returns where its syscall shows and its result.
fn blocked_recv(
    s: &Socket,
) -> (
    String,
    mpsc::Receiver<nanoport::Result<Vec<u8>>>,
    thread::JoinHandle<()>,
) {
    let (path_tx, path_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    let s = s.clone();
    let h = thread::spawn(move || {
        path_tx.send(my_syscall_file()).unwrap();
        tx.send(s.recv().map(|m| m.body().to_vec())).unwrap();
    });
    (path_rx.recv().unwrap(), rx, h)
}

/// Starts a callback receive on `a` (which only the reactor can serve once no thread
/// drives the pipe), sends `body` from `b`, and returns what the callback got.
fn callback_receives(a: &Socket, b: &Socket, body: &str) -> Vec<u8> {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let aio = nanoport::Aio::new(move |aio| {
        let body = aio.take_msg().map(|m| m.body().to_vec());
        tx.lock().unwrap().send(body).unwrap();
    })
    .unwrap();
    aio.set_timeout(LIMIT);
    a.recv_aio(&aio);
    b.send(body).unwrap();
    rx.recv_timeout(LIMIT)
        .expect("the callback never ran")
        .expect("the callback got no message")
}

const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn a_message_ends_the_driving_wait() {
    for url in [tcp(), ipc("drive-msg")] {
        let (a, b) = connected(&url);
        let (path, rx, h) = blocked_recv(&a);
        until_driving(&path);
        b.send("world").unwrap();
        assert_eq!(rx.recv_timeout(LIMIT).unwrap().unwrap(), b"world", "{url}");
        h.join().unwrap();
        // The pipe is still read afterwards, by the reactor or a driver alike.
        b.send("again").unwrap();
        assert_eq!(a.recv().unwrap().body(), b"again", "{url}");
    }
}

#[test]
fn the_receive_timeout_ends_the_driving_wait() {
    for url in [tcp(), ipc("drive-timeout")] {
        let (a, b) = connected(&url);
        a.set_recv_timeout(Duration::from_millis(100)).unwrap();
        assert_eq!(a.recv().map(|_| ()), Err(Error::TimedOut), "{url}");
        // The read interest went back: a later message still arrives.
        b.send("late").unwrap();
        a.set_recv_timeout(LIMIT).unwrap();
        assert_eq!(a.recv().unwrap().body(), b"late", "{url}");
    }
}

#[test]
fn closing_the_socket_ends_the_driving_wait() {
    for url in [tcp(), ipc("drive-close")] {
        let (a, _b) = connected(&url);
        let (path, rx, h) = blocked_recv(&a);
        until_driving(&path);
        a.close().unwrap();
        assert_eq!(rx.recv_timeout(LIMIT).unwrap(), Err(Error::Closed), "{url}");
        h.join().unwrap();
    }
}

#[test]
fn a_peer_that_goes_away_is_noticed_by_the_driver() {
    // The driver's poll sees the hang-up, runs the read, and the pipe is removed; the
    // receive then waits on (no pipe) until its timeout, and a new peer is served.
    for url in [tcp(), ipc("drive-hup")] {
        let (a, b) = connected(&url);
        a.set_recv_timeout(Duration::from_millis(500)).unwrap();
        let (path, rx, h) = blocked_recv(&a);
        until_driving(&path);
        drop(b);
        assert_eq!(
            rx.recv_timeout(LIMIT).unwrap(),
            Err(Error::TimedOut),
            "{url}"
        );
        h.join().unwrap();
        let c = Socket::pair0().unwrap();
        c.dial(&url).unwrap();
        c.send("next").unwrap();
        a.set_recv_timeout(LIMIT).unwrap();
        assert_eq!(a.recv().unwrap().body(), b"next", "{url}");
    }
}

#[test]
fn two_threads_blocked_on_one_pipe_both_get_their_message() {
    // One drives the fd, the other waits on its condvar; a message the driver reads for
    // the other (first in the socket's queue) must wake it, and the driver keeps going.
    for url in [tcp(), ipc("drive-two")] {
        let a = Socket::pull0().unwrap();
        a.listen(&url).unwrap();
        let b = Socket::push0().unwrap();
        b.dial(&url).unwrap();
        b.send("0").unwrap();
        assert_eq!(a.recv().unwrap().body(), b"0");
        let (p1, rx1, h1) = blocked_recv(&a);
        let (p2, rx2, h2) = blocked_recv(&a);
        until_one_drives(&[&p1, &p2]);
        b.send("1").unwrap();
        b.send("2").unwrap();
        let mut got = vec![
            rx1.recv_timeout(LIMIT).unwrap().unwrap(),
            rx2.recv_timeout(LIMIT).unwrap().unwrap(),
        ];
        got.sort();
        assert_eq!(got, vec![b"1".to_vec(), b"2".to_vec()], "{url}");
        h1.join().unwrap();
        h2.join().unwrap();
    }
}

#[test]
fn a_cancelled_driving_wait_gives_the_fd_back_to_the_reactor() {
    // After a driver leaves (here by timeout), messages must reach a callback receive,
    // which only the reactor can serve.
    for url in [tcp(), ipc("drive-back")] {
        let (a, b) = connected(&url);
        a.set_recv_timeout(Duration::from_millis(50)).unwrap();
        assert_eq!(a.recv().map(|_| ()), Err(Error::TimedOut));
        assert_eq!(callback_receives(&a, &b, "cb"), b"cb", "{url}");
    }
}

#[test]
fn a_send_between_driven_receives_hands_the_reads_back() {
    // A thread that drives its receives holds the pipe's reads while it sends, then
    // reads what came meanwhile; either way the reactor must get the reads back, so a
    // callback receive started afterwards still hears the next message.
    for url in [tcp(), ipc("drive-hold")] {
        let (a, b) = connected(&url); // `a` drove the receive in `connected`
        b.send("early").unwrap();
        a.send("ping").unwrap(); // holds reads; "early" may be read at its end
        assert_eq!(a.recv().unwrap().body(), b"early", "{url}");
        assert_eq!(b.recv().unwrap().body(), b"ping", "{url}");
        a.send("ping2").unwrap();
        assert_eq!(b.recv().unwrap().body(), b"ping2", "{url}");
        assert_eq!(callback_receives(&a, &b, "pong"), b"pong", "{url}");
    }
}

#[test]
fn driving_and_callback_receives_interleaved_lose_and_repeat_nothing() {
    // The read interest passes back and forth between the reactor and driving threads
    // many times a second while a stream arrives: every message must still come out
    // exactly once and in order, whichever kind of receive takes it.
    const N: u32 = 3000;
    for url in [tcp(), ipc("drive-mix")] {
        let (a, b) = connected(&url);
        let sender = thread::spawn(move || {
            for i in 0..N {
                b.send(&i.to_le_bytes()[..]).unwrap();
                if i % 7 == 0 {
                    thread::yield_now();
                }
            }
            b
        });
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let cb = nanoport::Aio::new(move |aio| {
            let r = aio
                .result()
                .map(|_| aio.take_msg().unwrap().body().to_vec());
            tx.lock().unwrap().send(r).unwrap();
        })
        .unwrap();
        let mut next = 0u32;
        let mut round = 0u32;
        while next < N {
            round += 1;
            let got = match round % 3 {
                0 => {
                    a.set_recv_timeout(Duration::from_millis(1)).unwrap();
                    a.recv().map(|m| m.body().to_vec())
                }
                1 => {
                    cb.set_timeout(Duration::from_millis(1));
                    a.recv_aio(&cb);
                    rx.recv_timeout(LIMIT).expect("callback never ran")
                }
                _ => a.try_recv().map(|m| m.body().to_vec()),
            };
            match got {
                Ok(body) => {
                    let v = u32::from_le_bytes(body[..4].try_into().unwrap());
                    assert_eq!(v, next, "{url}: out of order or repeated");
                    next += 1;
                }
                Err(Error::TimedOut) | Err(Error::Again) => {}
                Err(e) => panic!("{url}: {e}"),
            }
            assert!(round < 50 * N, "{url}: stuck at {next}");
        }
        sender.join().unwrap();
    }
}

#[test]
fn closing_races_a_receive_on_its_way_to_driving() {
    // No pause between starting the receive and the close: the close lands before,
    // during and after the borrow. The receive must end with `Closed` every time.
    let url = tcp();
    for _ in 0..100 {
        let (a, _b) = connected(&url);
        let a2 = a.clone();
        let h = thread::spawn(move || a2.recv().map(|_| ()));
        a.close().unwrap();
        assert_eq!(h.join().unwrap(), Err(Error::Closed));
    }
}

/// A push socket dialed to a pull socket over `url`, the pipe up on both sides.
fn push_pull(url: &str) -> (Socket, Socket) {
    let pull = Socket::pull0().unwrap();
    pull.listen(url).unwrap();
    let push = Socket::push0().unwrap();
    push.dial(url).unwrap();
    push.send("up").unwrap();
    assert_eq!(pull.recv().unwrap().body(), b"up");
    (push, pull)
}

/// Sends 64 KiB messages numbered from 0 on `push` in a thread until `n` are sent or
/// one fails; returns where its syscall shows and the thread (which yields the count
/// sent and the error that stopped it, if any).
fn blocked_sender(push: &Socket, n: u32) -> (String, thread::JoinHandle<(u32, Option<Error>)>) {
    let (path_tx, path_rx) = mpsc::channel();
    let push = push.clone();
    let h = thread::spawn(move || {
        path_tx.send(my_syscall_file()).unwrap();
        for i in 0..n {
            let mut body = vec![0u8; 65536];
            body[..4].copy_from_slice(&i.to_le_bytes());
            if let Err(e) = push.send(body) {
                return (i, Some(e.error()));
            }
        }
        (n, None)
    });
    (path_rx.recv().unwrap(), h)
}

#[test]
fn a_send_blocked_on_a_full_pipe_writes_it_out_itself() {
    // Nobody reads until the sender sits in its driving poll (the kernel buffers and the
    // pipe's write queue are full by then); then everything arrives, in order.
    for url in [tcp(), ipc("drive-send")] {
        let (push, pull) = push_pull(&url);
        let n = 200;
        let (path, h) = blocked_sender(&push, n);
        until_driving(&path);
        for i in 0..n {
            let m = pull.recv().unwrap();
            assert_eq!(m.len(), 65536, "{url}");
            assert_eq!(
                u32::from_le_bytes(m.body()[..4].try_into().unwrap()),
                i,
                "{url}"
            );
        }
        assert_eq!(h.join().unwrap(), (n, None), "{url}");
    }
}

#[test]
fn the_send_timeout_and_a_close_end_a_driving_send() {
    for url in [tcp(), ipc("drive-send-end")] {
        let (push, _pull) = push_pull(&url);
        push.set_send_timeout(Duration::from_millis(100)).unwrap();
        let (_path, h) = blocked_sender(&push, 10_000);
        let (sent, err) = h.join().unwrap();
        assert!(
            sent < 10_000,
            "{url}: a peer that never reads took everything"
        );
        assert_eq!(err, Some(Error::TimedOut), "{url}");

        push.set_send_timeout(nanoport::Timeout::Infinite).unwrap();
        let (path, h) = blocked_sender(&push, 10_000);
        until_driving(&path);
        push.close().unwrap();
        assert_eq!(h.join().unwrap().1, Some(Error::Closed), "{url}");
    }
}
