//! The send-ahead bound (`send-ahead-max`): how far a pipe may run ahead of its peer's
//! reading. It reaches live pipes and later ones like the other socket-wide options, and
//! it bounds what a peer that stops reading can take: the messages a send accepted that
//! the peer never read.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{eventually, ipc, tcp};
use nanoport::{Error, Socket};

const LIMIT: Duration = Duration::from_secs(10);

type Pipes = std::sync::mpsc::Receiver<nanoport::engine::Pipe>;

/// A live push -> pull pipe over `url`; returns the sockets, the pipe as the push sees it,
/// the pull's, and the push's later pipes as they attach.
fn connected(
    url: &str,
) -> (
    Socket,
    Socket,
    nanoport::engine::Pipe,
    nanoport::engine::Pipe,
    Pipes,
) {
    let pull = Socket::pull0().unwrap();
    pull.set_recv_timeout(LIMIT).unwrap();
    pull.listen(url).unwrap();
    let push = Socket::push0().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    push.pipe_notify(nanoport::PipeEvent::AddPost, move |p, _| {
        let _ = tx.lock().unwrap().send(p);
    });
    push.set_send_timeout(LIMIT).unwrap();
    push.dial(url).unwrap();
    push.send("warm").unwrap();
    let pull_pipe = pull
        .recv()
        .unwrap()
        .pipe()
        .expect("a received message knows its pipe");
    let push_pipe = rx.recv_timeout(LIMIT).expect("the push's pipe event");
    (pull, push, push_pipe, pull_pipe, rx)
}

#[test]
fn the_bound_reaches_live_pipes_and_later_connections() {
    for url in [tcp(), ipc("ahead")] {
        let (pull, push, pipe, pull_pipe, later) = connected(&url);
        assert_eq!(
            pipe.option("send-ahead-max").unwrap(),
            "0",
            "{url}: off by default"
        );
        push.set_send_ahead_max(32 * 1024).unwrap();
        assert_eq!(push.send_ahead_max().unwrap(), 32 * 1024);
        assert_eq!(
            pipe.option("send-ahead-max").unwrap(),
            "32768",
            "{url}: live pipe"
        );
        assert_eq!(
            pull_pipe.option("send-ahead-max").unwrap(),
            "0",
            "{url}: another socket's pipe is not touched"
        );
        // Messages still flow, and lifting the bound reaches the pipe too.
        push.send("after").unwrap();
        assert_eq!(pull.recv().unwrap().body(), b"after");
        push.set_send_ahead_max(0).unwrap();
        assert_eq!(pipe.option("send-ahead-max").unwrap(), "0", "{url}: lifted");
        // A dialer made later inherits the socket's bound; its own setter applies to its
        // own pipes only.
        push.set_send_ahead_max(50_000).unwrap();
        assert_eq!(pipe.option("send-ahead-max").unwrap(), "50000", "{url}");
        let d = push.dialer(&url).unwrap();
        assert_eq!(d.send_ahead_max(), 50_000, "{url}: a later dialer inherits");
        d.set_send_ahead_max(60_000).unwrap();
        d.start(false).unwrap();
        let second = later.recv_timeout(LIMIT).expect("the second pipe");
        assert_eq!(second.option("send-ahead-max").unwrap(), "60000", "{url}");
        assert_eq!(pipe.option("send-ahead-max").unwrap(), "50000", "{url}");
        let _ = (pull.close(), push.close());
    }
}

/// A raw peer that finishes the SP handshake as a pull0 and then never reads.
fn deaf_pull(path: &str) -> UnixStream {
    let mut s = UnixStream::connect(path).unwrap();
    s.write_all(&[0, b'S', b'P', 0, 0, 0x51, 0, 0]).unwrap();
    let mut hdr = [0u8; 8];
    s.read_exact(&mut hdr).unwrap();
    assert_eq!(&hdr[..6], &[0, b'S', b'P', 0, 0, 0x50]);
    s
}

/// Sends 1 KiB messages until one waits longer than `wait`; returns the bytes accepted.
fn accepted_until_blocked(push: &Socket, wait: Duration) -> usize {
    push.set_send_timeout(wait).unwrap();
    let msg = vec![0u8; 1024];
    let mut n = 0;
    loop {
        match push.send(&msg[..]).map_err(|e| e.error()) {
            Ok(()) => n += msg.len(),
            Err(Error::TimedOut) => return n,
            Err(e) => panic!("send: {e}"),
        }
        assert!(n < 64 << 20, "sends never blocked");
    }
}

/// Over ipc the whole path is the sender's: its write queue, and its kernel send buffer,
/// against which a unix stream counts the bytes waiting in the receiver. With a bound,
/// what a peer that stopped reading can take is a few times the bound at most (the
/// kernel's bookkeeping and its minimum buffer size); without, more than the write queue
/// alone holds (128 KiB). Exact counts depend on timing (how soon the writer moves bytes
/// into the kernel), the bounds checked do not: a send that times out early only makes
/// the count smaller, and the queue admits its 128 KiB without any writer.
#[test]
fn a_peer_that_stops_reading_takes_at_most_about_the_bound() {
    const BOUND: usize = 16 * 1024;
    let url = ipc("ahead-deaf");
    let path = url.strip_prefix("ipc://").unwrap().to_owned();
    let push = Socket::push0().unwrap();
    push.set_send_buffer(0).unwrap();
    push.set_send_ahead_max(BOUND).unwrap();
    push.listen(&url).unwrap();
    let _peer = deaf_pull(&path);
    eventually(LIMIT, || (push.pipe_count() == 1).then_some(())).expect("peer attached");
    let bounded = accepted_until_blocked(&push, Duration::from_millis(300));
    assert!(bounded > 0, "nothing accepted at all");
    assert!(
        bounded <= 2 * BOUND,
        "{bounded} bytes accepted toward a peer that reads nothing, bound {BOUND}"
    );
    // Lifting the bound on the live pipe lets the write queue take its full 128 KiB.
    push.set_send_ahead_max(0).unwrap();
    let more = accepted_until_blocked(&push, Duration::from_millis(300));
    eprintln!("accepted {bounded} bytes with the bound, {more} more without");
    assert!(
        bounded + more >= 128 * 1024,
        "unbounded, only {} bytes were accepted",
        bounded + more
    );
    push.close().unwrap();
}
