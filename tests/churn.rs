//! Faults under load: connection churn against one listener, and a stalled subscriber.
//! Each test is alone in this binary's counts of fds and memory (`--test-threads` does
//! not matter: both measure the whole process, so they run one after the other).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nanoport::Socket;

static SERIAL: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident memory in KiB.
fn rss_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn settle(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ok()
}

#[test]
fn ten_thousand_connect_disconnect_cycles_leak_nothing() {
    let _g = SERIAL.lock().unwrap();
    let pull = Socket::pull0().unwrap();
    let l = pull.listen("tcp://127.0.0.1:0").unwrap();
    let port = l.port().unwrap();
    let cycle = || {
        // A full pipe's life: handshake both ways, then the peer goes away.
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(&[0, b'S', b'P', 0, 0, 0x50, 0, 0]).unwrap();
        let mut h = [0u8; 8];
        c.read_exact(&mut h).unwrap();
    };
    for _ in 0..500 {
        cycle();
    }
    assert!(settle(Duration::from_secs(10), || pull.pipe_count() == 0));
    let (fds0, rss0) = (open_fds(), rss_kib());
    for _ in 0..10_000 {
        cycle();
    }
    assert!(
        settle(Duration::from_secs(10), || pull.pipe_count() == 0),
        "pipes left: {}",
        pull.pipe_count()
    );
    assert!(
        settle(Duration::from_secs(10), || open_fds() <= fds0),
        "fds {fds0} -> {}",
        open_fds()
    );
    let rss1 = rss_kib();
    // Allocator noise only: a leak of even 100 bytes a cycle would show as ~1 MiB.
    assert!(
        rss1 < rss0 + 1024,
        "RSS grew from {rss0} KiB to {rss1} KiB over 10,000 cycles"
    );
    // The listener still serves.
    let push = Socket::push0().unwrap();
    push.dial(&format!("tcp://127.0.0.1:{port}")).unwrap();
    push.send("still here").unwrap();
    pull.set_recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(pull.recv().unwrap().body(), b"still here");
}

#[test]
fn a_stalled_subscriber_does_not_grow_the_publisher() {
    let _g = SERIAL.lock().unwrap();
    let publ = Socket::pub0().unwrap();
    let l = publ.listen("tcp://127.0.0.1:0").unwrap();
    let port = l.port().unwrap();
    // A subscriber that connects and never reads.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled
        .write_all(&[0, b'S', b'P', 0, 0, 0x21, 0, 0])
        .unwrap();
    let mut h = [0u8; 8];
    stalled.read_exact(&mut h).unwrap();
    assert!(settle(Duration::from_secs(10), || publ.pipe_count() == 1));
    let body = vec![1u8; 1024];
    for _ in 0..20_000 {
        publ.send(&body[..]).unwrap(); // never blocks
    }
    let rss0 = rss_kib();
    for _ in 0..100_000 {
        publ.send(&body[..]).unwrap();
    }
    let rss1 = rss_kib();
    // 100 MB went to a peer that reads nothing: what stays is the kernel's buffer plus
    // the pipe's queue of 16 messages.
    assert!(rss1 < rss0 + 4096, "RSS grew from {rss0} KiB to {rss1} KiB");
    drop(stalled);
}
