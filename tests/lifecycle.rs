//! Socket lifecycle: resources come back, and in-flight operations end exactly once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, ipc, tcp};
use nanoport::{Aio, Error, Socket};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// What each open fd is (for the failure message).
fn fd_targets() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| format!("{:?}", std::fs::read_link(e.path()).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sockets_release_every_fd_when_closed() {
    // Warm up the engine (reactor, poller, workers) so its own fds count in the baseline,
    // and this thread's wake-up eventfd, made on its first blocking receive over a
    // stream pipe and kept for the thread's life.
    let warm = Socket::pair0().unwrap();
    let url = tcp();
    warm.listen(&url).unwrap();
    let peer = Socket::pair0().unwrap();
    peer.dial(&url).unwrap();
    peer.send("w").unwrap();
    assert_eq!(warm.recv().unwrap().body(), b"w");
    // Nothing more is coming, so this receive waits (driving the pipe) and times out.
    warm.set_recv_timeout(Duration::from_millis(20)).unwrap();
    assert_eq!(warm.recv().map(|_| ()), Err(Error::TimedOut));
    drop(peer);
    drop(warm);
    // Other tests in this binary run concurrently; keep to this one for a clean count.
    let baseline = open_fds();
    let before = fd_targets();
    for i in 0..100 {
        let url = if i % 2 == 0 { tcp() } else { ipc("fds") };
        let a = Socket::pair0().unwrap();
        a.listen(&url).unwrap();
        let b = Socket::pair0().unwrap();
        b.dial(&url).unwrap();
        b.send("x").unwrap();
        assert_eq!(a.recv().unwrap().body(), b"x");
        a.close().unwrap();
        b.close().unwrap();
    }
    let settled = eventually(Duration::from_secs(10), || {
        (open_fds() <= baseline).then_some(())
    });
    assert!(
        settled.is_some(),
        "fds: baseline {baseline} {before:?}, now {}: {:?}",
        open_fds(),
        fd_targets()
    );
}

#[test]
fn closing_a_socket_ends_10000_pending_receives_once_each() {
    let s = Socket::pull0().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let mut aios = Vec::new();
    for _ in 0..10_000 {
        let (d, c) = (done.clone(), closed.clone());
        let aio = Aio::new(move |a| {
            d.fetch_add(1, Ordering::SeqCst);
            if a.result() == Err(Error::Closed) {
                c.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
        s.recv_aio(&aio);
        aios.push(aio);
    }
    s.close().unwrap();
    for a in &aios {
        a.wait();
    }
    assert_eq!(done.load(Ordering::SeqCst), 10_000);
    assert_eq!(closed.load(Ordering::SeqCst), 10_000);
}

#[test]
fn dropping_the_last_handle_closes_the_socket() {
    let url = tcp();
    let s = Socket::pull0().unwrap();
    let l = s.listen(&url).unwrap();
    let port = l.port().unwrap();
    drop(l);
    drop(s);
    // The port is free again once the listener closed with its socket.
    let rebound = eventually(Duration::from_secs(5), || {
        std::net::TcpListener::bind(("127.0.0.1", port)).ok()
    });
    assert!(
        rebound.is_some(),
        "port {port} still bound after the socket was dropped"
    );
}

/// Every operation on a closed socket says `Closed` (NNG_ECLOSED), setters and getters
/// included; none of them succeeds quietly.
#[test]
fn every_call_on_a_closed_socket_says_closed() {
    let s = Socket::req0().unwrap();
    s.close().unwrap();
    let closed = Err(Error::Closed);
    assert_eq!(s.close(), closed);
    assert_eq!(s.set_recv_timeout(Duration::from_secs(1)), closed);
    assert_eq!(s.set_send_timeout(Duration::from_secs(1)), closed);
    assert_eq!(s.recv_timeout().map(|_| ()), closed);
    assert_eq!(s.send_timeout().map(|_| ()), closed);
    assert_eq!(s.set_recv_max_size(10), closed);
    assert_eq!(s.recv_max_size().map(|_| ()), closed);
    assert_eq!(s.set_reconnect_min_time(Duration::from_secs(1)), closed);
    assert_eq!(s.set_reconnect_max_time(Duration::from_secs(1)), closed);
    assert_eq!(s.reconnect_times().map(|_| ()), closed);
    assert_eq!(s.set_tcp_nodelay(false), closed);
    assert_eq!(s.tcp_nodelay().map(|_| ()), closed);
    assert_eq!(s.set_tcp_keepalive(true), closed);
    assert_eq!(s.tcp_keepalive().map(|_| ()), closed);
    assert_eq!(s.set_name("x"), closed);
    assert_eq!(s.name().map(|_| ()), closed);
    assert_eq!(s.set_resend_time(Duration::from_secs(1)), closed);
    assert_eq!(s.resend_time().map(|_| ()), closed);
    assert_eq!(s.set_send_buffer(4), closed);
    assert_eq!(s.send_buffer().map(|_| ()), closed);
    // A failed send hands the message back.
    let failed = s.send("x").unwrap_err();
    assert_eq!(failed.error(), Error::Closed);
    assert_eq!(failed.into_message().body(), b"x");
    assert_eq!(s.try_send("x").map_err(|e| e.error()), closed);
    assert_eq!(s.recv().map(|_| ()), closed);
    assert_eq!(s.try_recv().map(|_| ()), closed);
    assert_eq!(s.context().map(|_| ()), closed);
    assert_eq!(s.listen(&tcp()).map(|_| ()), closed);
    assert_eq!(s.dial_nonblocking(&tcp()).map(|_| ()), closed);
    assert_eq!(s.dialer(&tcp()).map(|_| ()), closed);
    assert_eq!(s.listener(&tcp()).map(|_| ()), closed);
    let aio = Aio::new_waitable().unwrap();
    s.recv_aio(&aio);
    aio.wait();
    assert_eq!(aio.result(), closed);
    aio.set_msg("x".into());
    s.send_aio(&aio);
    aio.wait();
    assert_eq!(aio.result(), closed);
    assert_eq!(
        aio.take_msg().map(|m| m.body().to_vec()),
        Some(b"x".to_vec())
    );
}

/// A context whose socket closed says `Closed` too.
#[test]
fn every_call_on_a_context_of_a_closed_socket_says_closed() {
    let s = Socket::req0().unwrap();
    let c = s.context().unwrap();
    s.close().unwrap();
    let closed = Err(Error::Closed);
    assert_eq!(c.set_recv_timeout(Duration::from_secs(1)), closed);
    assert_eq!(c.set_send_timeout(Duration::from_secs(1)), closed);
    assert_eq!(c.set_resend_time(Duration::from_secs(1)), closed);
    assert_eq!(c.send("x").map_err(|e| e.error()), closed);
    assert_eq!(c.try_send("x").map_err(|e| e.error()), closed);
    assert_eq!(c.try_recv().map(|_| ()), closed);
    assert_eq!(c.send_timeout().map(|_| ()), closed);
    assert_eq!(c.recv().map(|_| ()), closed);
    assert_eq!(c.close(), closed);
}

/// Closing a socket from inside its own pipe callbacks completes, and a second socket of
/// the process goes on answering meanwhile (the callbacks run on the socket's own event
/// queue, not on the reactor thread, and hold no process-wide lock).
#[test]
fn closing_a_socket_from_its_own_pipe_callback_completes() {
    use nanoport::PipeEvent;
    let other = Socket::rep0().unwrap();
    let other_url = tcp();
    other.listen(&other_url).unwrap();
    let asker = Socket::req0().unwrap();
    asker.set_recv_timeout(Duration::from_secs(10)).unwrap();
    asker.dial(&other_url).unwrap();
    let echo = other.clone();
    let answering = std::thread::spawn(move || {
        while let Ok(m) = echo.recv() {
            if echo.send(m).is_err() {
                break;
            }
        }
    });
    for ev in [PipeEvent::RemPost, PipeEvent::AddPost, PipeEvent::AddPre] {
        let url = tcp();
        let s = Socket::pull0().unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let (me, d) = (s.clone(), done.clone());
        s.pipe_notify(ev, move |_, _| {
            // Close (once) from inside the callback: it must return.
            if d.load(Ordering::SeqCst) == 0 {
                assert_eq!(me.close(), Ok(()));
                d.fetch_add(1, Ordering::SeqCst);
            }
        });
        s.listen(&url).unwrap();
        let peer = Socket::push0().unwrap();
        peer.dial(&url).unwrap();
        if ev == PipeEvent::RemPost {
            peer.close().unwrap();
        }
        assert!(
            eventually(Duration::from_secs(10), || (done.load(Ordering::SeqCst)
                == 1)
                .then_some(()))
            .is_some(),
            "close from {ev:?} did not complete"
        );
        assert_eq!(s.pipe_count(), 0);
        asker.send("still there?").unwrap();
        assert_eq!(asker.recv().unwrap().body(), b"still there?");
    }
    other.close().unwrap();
    answering.join().unwrap();
}

/// Resident memory in KiB.
fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Dropping a context's last handle closes it: 200,000 contexts opened and dropped
/// without `close` hold no memory (before, each kept its state in the socket: ~89 MB).
#[test]
fn dropping_a_context_releases_it() {
    let s = Socket::req0().unwrap();
    for _ in 0..2_000 {
        drop(s.context().unwrap());
    }
    let before = rss_kib();
    for _ in 0..200_000 {
        let c = s.context().unwrap();
        let c2 = c.clone();
        drop(c);
        // The clone still names the open context.
        c2.set_recv_timeout(Duration::from_millis(5)).unwrap();
    }
    // Other tests of this binary run alongside and allocate too: the bound leaves them
    // room and still catches the leak (half of what it was).
    let grown = rss_kib().saturating_sub(before);
    assert!(
        grown < 40 * 1024,
        "200,000 dropped contexts grew RSS by {grown} KiB"
    );
    // The socket still opens and closes contexts.
    let c = s.context().unwrap();
    c.close().unwrap();
    assert_eq!(c.close(), Err(Error::Closed));
}

/// A receive with a zero timeout that finds no reply fails with `TimedOut` and leaves the
/// request out, as NNG's `req0_ctx_recv` fails it before it could cancel anything; a
/// receive that waited and then timed out abandons the request, as NNG's cancel does.
#[test]
fn a_zero_timeout_receive_keeps_req_s_request_and_a_real_timeout_drops_it() {
    use std::time::Duration;
    let url = common::inproc("zero-timeout-req");
    let rep = nanoport::Socket::rep0().unwrap();
    rep.listen(&url).unwrap();
    let req = nanoport::Socket::req0().unwrap();
    req.dial(&url).unwrap();

    req.send("q1").unwrap();
    let q = rep.recv().unwrap();
    let aio = nanoport::Aio::new_waitable().unwrap();
    aio.set_timeout(Duration::ZERO);
    req.recv_aio(&aio);
    aio.wait();
    assert_eq!(aio.result(), Err(nanoport::Error::TimedOut));
    rep.send(q).unwrap();
    assert_eq!(req.recv().unwrap().body(), b"q1", "the request was kept");

    req.send("q2").unwrap();
    let q = rep.recv().unwrap();
    aio.set_timeout(Duration::from_millis(20));
    req.recv_aio(&aio);
    aio.wait();
    assert_eq!(aio.result(), Err(nanoport::Error::TimedOut));
    rep.send(q).unwrap();
    req.set_recv_timeout(Duration::from_millis(100)).unwrap();
    assert_eq!(
        req.recv().err(),
        Some(nanoport::Error::State),
        "a receive that waited and timed out abandoned the request"
    );
}
