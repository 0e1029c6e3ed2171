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
