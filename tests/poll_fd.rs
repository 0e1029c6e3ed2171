//! The socket poll fds (`Socket::recv_poll_fd`, `Socket::send_poll_fd`; NNG's
//! `nng_socket_get_recv_poll_fd` / `nng_socket_get_send_poll_fd`, `NNG_OPT_RECVFD` /
//! `NNG_OPT_SENDFD`): level semantics, no lost wake-ups under concurrent senders (with
//! `poll(2)` and with edge-triggered epoll), the directions a protocol lacks, and a real
//! libnng peer driving our socket through the fd.
//!
//! Every wait is a `poll` with a bounded timeout: a lost wake-up fails the test with a
//! message saying so instead of hanging it.

mod common;

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use common::{all_urls, inproc, nngcat_or_skip, tcp, NngCat};
use nanoport::{opt, Aio, Error, OptValue, Protocol, Socket};

/// How long any single wait for readiness may take before the test calls it lost.
const WAKE_LIMIT_MS: i32 = 10_000;

/// Whether `fd` polls readable within `timeout_ms` (0: right now).
fn readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut p = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    loop {
        // SAFETY: one live pollfd for the duration of the call.
        let n = unsafe { libc::poll(p.as_mut_ptr(), 1, timeout_ms) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        assert!(n >= 0, "poll failed: {}", std::io::Error::last_os_error());
        assert_eq!(p[0].revents & libc::POLLNVAL, 0, "the poll fd was closed");
        return n == 1;
    }
}

/// Waits (bounded) for `fd` to poll readable, failing with `what` if it never does.
fn wait_readable(fd: RawFd, what: &str) {
    assert!(
        readable(fd, WAKE_LIMIT_MS),
        "{what}: the poll fd never became readable in {WAKE_LIMIT_MS} ms (lost wake-up)"
    );
}

#[test]
fn recv_fd_is_level_triggered() {
    for url in all_urls("pollfd-level") {
        let pull = Socket::pull0().unwrap();
        pull.listen(&url).unwrap();
        let fd = pull.recv_poll_fd().unwrap().as_raw_fd();
        assert_eq!(
            pull.recv_poll_fd().unwrap().as_raw_fd(),
            fd,
            "{url}: one fd per socket"
        );
        assert!(!readable(fd, 0), "{url}: nothing queued, yet readable");

        let push = Socket::push0().unwrap();
        push.dial(&url).unwrap();
        push.send("one").unwrap();
        wait_readable(fd, &url);
        assert!(
            readable(fd, 0) && readable(fd, 0),
            "{url}: polling consumed the level (must stay readable while a message waits)"
        );
        assert_eq!(pull.try_recv().unwrap().body(), b"one", "{url}");
        assert!(
            !readable(fd, 0),
            "{url}: still readable after the last message was taken"
        );
        assert_eq!(pull.try_recv().map(|_| ()), Err(Error::Again), "{url}");

        push.send("two").unwrap();
        wait_readable(fd, &url);
        assert_eq!(pull.try_recv().unwrap().body(), b"two", "{url}");
        assert!(!readable(fd, 0), "{url}");

        // Several queued: readable before each take (a readable fd always has a message),
        // quiet after the last.
        pull.set_option(opt::RECV_BUF, OptValue::Int(8)).unwrap();
        for m in ["a", "b", "c"] {
            push.send(m).unwrap();
        }
        for m in ["a", "b", "c"] {
            wait_readable(fd, &url);
            assert_eq!(pull.try_recv().unwrap().body(), m.as_bytes(), "{url}");
        }
        assert!(!readable(fd, 0), "{url}");
    }
}

#[test]
fn recv_fd_stays_quiet_for_a_waiting_receive() {
    // A receive already waiting (here an aio, queued before the message exists) takes the
    // message first: the fd must not announce a message that try_recv would not find.
    let url = inproc("pollfd-waiter");
    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    let fd = pull.recv_poll_fd().unwrap().as_raw_fd();
    let push = Socket::push0().unwrap();
    push.dial(&url).unwrap();
    let aio = Aio::new_waitable().unwrap();
    pull.recv_aio(&aio);
    push.send("x").unwrap();
    aio.wait();
    assert_eq!(aio.take_msg().unwrap().body(), b"x");
    assert!(
        !readable(fd, 0),
        "the fd is readable but the only message went to the waiting receive"
    );
    push.send("y").unwrap();
    wait_readable(fd, "with nobody waiting");
    assert_eq!(pull.try_recv().unwrap().body(), b"y");
}

#[test]
fn send_fd_follows_room_to_send() {
    let url = inproc("pollfd-send");
    let push = Socket::push0().unwrap();
    let fd = push.send_poll_fd().unwrap().as_raw_fd();
    assert!(!readable(fd, 0), "push with no peer: a send would block");
    assert_eq!(push.try_send("x").map_err(|e| e.error()), Err(Error::Again));

    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    let d = push.dial(&url).unwrap();
    wait_readable(fd, "push with a peer that has room");
    push.try_send("y").unwrap();
    wait_readable(fd, "push after its write finished");
    assert_eq!(pull.recv().unwrap().body(), b"y");

    // The peer goes: no room anywhere again.
    d.close().unwrap();
    pull.close().unwrap();
    let mut quiet = false;
    for _ in 0..500 {
        if !readable(fd, 0) {
            quiet = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(quiet, "push still writable 5 s after its only peer left");
    assert_eq!(push.try_send("z").map_err(|e| e.error()), Err(Error::Again));

    // A send buffer is room too.
    push.set_option(opt::SEND_BUF, OptValue::Int(1)).unwrap();
    assert!(readable(fd, 0), "an empty send buffer takes a message");
    push.try_send("buffered").unwrap();
    assert!(!readable(fd, 0), "the buffer of one is full");
}

#[test]
fn req_and_rep_fds_follow_the_exchange() {
    for url in all_urls("pollfd-reqrep") {
        let rep = Socket::rep0().unwrap();
        rep.listen(&url).unwrap();
        let req = Socket::req0().unwrap();
        req.dial(&url).unwrap();
        let rep_in = rep.recv_poll_fd().unwrap().as_raw_fd();
        let rep_out = rep.send_poll_fd().unwrap().as_raw_fd();
        let req_in = req.recv_poll_fd().unwrap().as_raw_fd();
        let req_out = req.send_poll_fd().unwrap().as_raw_fd();
        assert!(
            !readable(rep_out, 0),
            "{url}: rep with no request cannot reply"
        );
        assert!(
            !readable(req_in, 0),
            "{url}: req with no request has no reply"
        );
        wait_readable(req_out, &format!("{url}: req with a peer"));

        req.try_send("ping").unwrap();
        wait_readable(rep_in, &format!("{url}: rep's request"));
        assert!(
            !readable(rep_out, 0),
            "{url}: rep has not taken the request"
        );
        assert_eq!(rep.try_recv().unwrap().body(), b"ping");
        assert!(!readable(rep_in, 0), "{url}");
        assert!(
            readable(rep_out, 0),
            "{url}: rep holds a request it can answer"
        );
        rep.try_send("pong").unwrap();
        assert!(!readable(rep_out, 0), "{url}: one reply per request");

        wait_readable(req_in, &format!("{url}: req's reply"));
        assert_eq!(req.try_recv().unwrap().body(), b"pong");
        assert!(!readable(req_in, 0), "{url}");
    }
}

#[test]
fn req_fd_reports_a_request_lost_with_its_pipe() {
    // With resend off, losing the pipe ends the request with ConnReset: the fd turns
    // readable so a poll-driven program learns of it, and try_recv reports it once.
    let url = tcp();
    let rep = Socket::rep0().unwrap();
    rep.listen(&url).unwrap();
    let req = Socket::req0().unwrap();
    req.set_option(
        opt::REQ_RESEND_TIME,
        OptValue::Duration(nanoport::Timeout::Infinite),
    )
    .unwrap();
    req.dial(&url).unwrap();
    let fd = req.recv_poll_fd().unwrap().as_raw_fd();
    req.send("doomed").unwrap();
    assert_eq!(rep.recv().unwrap().body(), b"doomed");
    assert!(!readable(fd, 0));
    rep.close().unwrap();
    wait_readable(fd, "req after its pipe dropped");
    assert_eq!(req.try_recv().map(|_| ()), Err(Error::ConnReset));
    assert!(!readable(fd, 0), "the outcome is reported once");
    assert_eq!(req.try_recv().map(|_| ()), Err(Error::State));
}

#[test]
fn no_lost_wakeups_under_concurrent_senders() {
    const SENDERS: usize = 4;
    const EACH: usize = 2_000;
    for url in all_urls("pollfd-flood") {
        let pull = Socket::pull0().unwrap();
        pull.listen(&url).unwrap();
        let fd = pull.recv_poll_fd().unwrap().as_raw_fd();
        let threads: Vec<_> = (0..SENDERS)
            .map(|k| {
                let url = url.clone();
                std::thread::spawn(move || {
                    let push = Socket::push0().unwrap();
                    push.dial(&url).unwrap();
                    for i in 0..EACH {
                        push.send(format!("{k}:{i}").as_str()).unwrap();
                    }
                    // Stay connected until everything is taken (closing may drop what
                    // is still in flight, which is push's right but not what we test).
                    push
                })
            })
            .collect();
        let mut next = [0usize; SENDERS];
        let mut got = 0;
        while got < SENDERS * EACH {
            assert!(
                readable(fd, WAKE_LIMIT_MS),
                "{url}: lost wake-up: {got} of {} received, the fd quiet for {WAKE_LIMIT_MS} ms",
                SENDERS * EACH
            );
            // Readable means a message is there: the first try_recv must succeed.
            let mut first = true;
            loop {
                match pull.try_recv() {
                    Ok(m) => {
                        let s = std::str::from_utf8(m.body()).unwrap();
                        let (k, i) = s.split_once(':').unwrap();
                        let (k, i): (usize, usize) = (k.parse().unwrap(), i.parse().unwrap());
                        assert_eq!(i, next[k], "{url}: sender {k} out of order");
                        next[k] += 1;
                        got += 1;
                        first = false;
                    }
                    Err(Error::Again) => {
                        assert!(!first, "{url}: the fd was readable with nothing to receive");
                        break;
                    }
                    Err(e) => panic!("{url}: try_recv: {e}"),
                }
            }
        }
        assert!(
            !readable(fd, 0),
            "{url}: readable after everything was taken"
        );
        for t in threads {
            drop(t.join().unwrap());
        }
    }
}

/// The same flood through edge-triggered epoll, as `mio` registers fds: each event is
/// drained to `Again`, and a message that arrives after the drain must make a new edge.
#[cfg(target_os = "linux")]
#[test]
fn no_lost_wakeups_with_edge_triggered_epoll() {
    const SENDERS: usize = 3;
    const EACH: usize = 2_000;
    let url = tcp();
    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    let fd = pull.recv_poll_fd().unwrap().as_raw_fd();
    // SAFETY: plain syscall; the fd is closed below.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0);
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: 7,
    };
    // SAFETY: `ep` and `fd` are open; `ev` is a live event for the call.
    let added = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    assert_eq!(added, 0, "epoll_ctl: {}", std::io::Error::last_os_error());
    let threads: Vec<_> = (0..SENDERS)
        .map(|k| {
            let url = url.clone();
            std::thread::spawn(move || {
                let push = Socket::push0().unwrap();
                push.dial(&url).unwrap();
                for i in 0..EACH {
                    push.send(format!("{k}:{i}").as_str()).unwrap();
                }
                push
            })
        })
        .collect();
    let mut got = 0;
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
    while got < SENDERS * EACH {
        // SAFETY: `events` is a live array of 4 for the call.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 4, WAKE_LIMIT_MS) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        assert!(
            n > 0,
            "lost edge: {got} of {} received, no event for {WAKE_LIMIT_MS} ms",
            SENDERS * EACH
        );
        while let Ok(_m) = pull.try_recv() {
            got += 1;
        }
    }
    // SAFETY: `ep` is ours and closed once.
    unsafe { libc::close(ep) };
    for t in threads {
        drop(t.join().unwrap());
    }
}

#[test]
fn directions_a_protocol_lacks_are_not_supported() {
    for p in [Protocol::Push0, Protocol::Pub0] {
        let s = Socket::open(p).unwrap();
        assert_eq!(s.recv_poll_fd().map(|_| ()), Err(Error::NotSup), "{p:?}");
        assert_eq!(s.get_option(opt::RECV_FD), Err(Error::NotSup), "{p:?}");
        assert!(s.send_poll_fd().is_ok(), "{p:?}");
    }
    for p in [Protocol::Pull0, Protocol::Sub0] {
        let s = Socket::open(p).unwrap();
        assert_eq!(s.send_poll_fd().map(|_| ()), Err(Error::NotSup), "{p:?}");
        assert_eq!(s.get_option(opt::SEND_FD), Err(Error::NotSup), "{p:?}");
        assert!(s.recv_poll_fd().is_ok(), "{p:?}");
    }
}

#[test]
fn fds_by_option_name_and_on_contexts() {
    let s = Socket::rep0().unwrap();
    let recv = s.recv_poll_fd().unwrap().as_raw_fd();
    let send = s.send_poll_fd().unwrap().as_raw_fd();
    assert_ne!(recv, send);
    assert_eq!(s.get_option(opt::RECV_FD), Ok(OptValue::Int(recv)));
    assert_eq!(s.get_option(opt::SEND_FD), Ok(OptValue::Int(send)));
    assert_eq!(
        s.set_option(opt::RECV_FD, OptValue::Int(0)),
        Err(Error::ReadOnly)
    );
    assert_eq!(
        s.set_option(opt::SEND_FD, OptValue::Int(0)),
        Err(Error::ReadOnly)
    );
    // NNG: the poll fds are not compatible with contexts.
    let c = s.context().unwrap();
    assert_eq!(c.get_option(opt::RECV_FD), Err(Error::NotSup));
    assert_eq!(c.get_option(opt::SEND_FD), Err(Error::NotSup));
}

#[test]
fn a_closed_socket_polls_readable_and_says_closed() {
    let s = Socket::pull0().unwrap();
    let fd = s.recv_poll_fd().unwrap().as_raw_fd();
    assert!(!readable(fd, 0));
    s.close().unwrap();
    assert!(
        readable(fd, 0),
        "a receive on a closed socket does not block"
    );
    assert_eq!(s.try_recv().map(|_| ()), Err(Error::Closed));

    let fresh = Socket::pull0().unwrap();
    fresh.close().unwrap();
    assert_eq!(fresh.recv_poll_fd().map(|_| ()), Err(Error::Closed));
}

#[test]
fn nngcat_push_drives_our_pull_through_the_fd() {
    if !nngcat_or_skip("nngcat_push_drives_our_pull_through_the_fd") {
        return;
    }
    for url in [tcp(), common::ipc("pollfd-interop")] {
        let pull = Socket::pull0().unwrap();
        pull.listen(&url).unwrap();
        let fd = pull.recv_poll_fd().unwrap().as_raw_fd();
        assert!(!readable(fd, 0));
        let cat = NngCat::spawn(&[
            "--push0", "--dial", &url, "--data", "from-nng", "--count", "3",
        ]);
        let mut got = 0;
        while got < 3 {
            wait_readable(fd, &format!("{url}: libnng push"));
            while let Ok(m) = pull.try_recv() {
                assert_eq!(m.body(), b"from-nng", "{url}");
                got += 1;
            }
        }
        assert!(!readable(fd, 0), "{url}");
        let (ok, _, err) = cat.finish(Duration::from_secs(10));
        assert!(ok, "{url}: nngcat failed: {err}");
    }
}

#[test]
fn req_try_recv_before_the_reply_keeps_the_request() {
    // A poll-driven req calls try_recv before its reply is in: as in NNG (a zero-timeout
    // receive never reaches the protocol's cancel) that is `Again` and the request stays
    // out, and a later send cancels no receive (no `Canceled` to report).
    let url = inproc("pollfd-early");
    let rep = Socket::rep0().unwrap();
    rep.listen(&url).unwrap();
    let req = Socket::req0().unwrap();
    req.dial(&url).unwrap();
    let fd = req.recv_poll_fd().unwrap().as_raw_fd();
    req.send("q1").unwrap();
    assert_eq!(req.try_recv().map(|_| ()), Err(Error::Again));
    assert!(!readable(fd, 0));
    assert_eq!(rep.recv().unwrap().body(), b"q1");
    rep.send("a1").unwrap();
    wait_readable(fd, "req's reply after an early try_recv");
    assert_eq!(req.try_recv().unwrap().body(), b"a1");

    req.send("q2").unwrap();
    assert_eq!(req.try_recv().map(|_| ()), Err(Error::Again));
    req.send("q3").unwrap(); // replaces q2; nobody was waiting for it
    assert!(!readable(fd, 0), "no Canceled to report: nobody waited");
    assert_eq!(rep.recv().unwrap().body(), b"q2");
    rep.send("a2").unwrap(); // late: dropped by req
    assert_eq!(rep.recv().unwrap().body(), b"q3");
    rep.send("a3").unwrap();
    wait_readable(fd, "req's reply to its newest request");
    assert_eq!(req.try_recv().unwrap().body(), b"a3");
}
