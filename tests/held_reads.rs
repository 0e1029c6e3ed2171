//! A thread that waited by driving its lone pipe's reads keeps them from the reactor when
//! its receive returns (`Readiness` holds them), so a request/reply loop makes no poller
//! calls at all. These tests pin that down, and that a hold never strands the pipe: when
//! the thread stays away, the hold sweep gives the reads back (a peer that goes away is
//! still noticed), and a receive that no thread drives gets its message.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{eventually, ipc, tcp};
use nanoport::{Message, Socket};
use nanoport_engine::{poller_modifications, Aio};

/// A rep0 socket on `url` echoing every request from a thread until it is closed.
fn echo_server(url: &str) -> (Socket, thread::JoinHandle<()>) {
    let rep = Socket::rep0().unwrap();
    rep.listen(url).unwrap();
    let server = rep.clone();
    let h = thread::spawn(move || {
        while let Ok(m) = server.recv() {
            if server.send(m).is_err() {
                break;
            }
        }
    });
    (rep, h)
}

#[test]
fn a_request_reply_loop_makes_no_poller_calls() {
    for url in [ipc("held"), tcp()] {
        let (rep, server) = echo_server(&url);
        let req = Socket::req0().unwrap();
        req.dial(&url).unwrap();
        for _ in 0..100 {
            req.send("warm-up").unwrap();
            req.recv().unwrap();
        }
        let before = poller_modifications();
        for i in 0..2000u32 {
            req.send(&i.to_be_bytes()[..]).unwrap();
            assert_eq!(req.recv().unwrap().body(), i.to_be_bytes());
        }
        let calls = poller_modifications() - before;
        // Giving the reads back and taking them again around each receive costs four
        // calls per round trip (8,000 here); the other tests of this file, running beside
        // it in the same process, make up to a few hundred.
        assert!(
            calls < 1000,
            "{url}: {calls} poller calls for 2,000 round trips"
        );
        req.close().unwrap();
        rep.close().unwrap();
        server.join().unwrap();
    }
}

#[test]
fn a_thread_that_stays_away_gives_its_reads_back_so_a_lost_peer_is_noticed() {
    let url = ipc("held-away");
    let (rep, server) = echo_server(&url);
    let req = Socket::req0().unwrap();
    req.dial(&url).unwrap();
    // One exchange on a thread of its own, which then stays away from the socket for
    // good (blocked on a channel, which no hold knows about).
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel();
    let client = {
        let req = req.clone();
        thread::spawn(move || {
            req.send("one").unwrap();
            assert_eq!(req.recv().unwrap().body(), b"one");
            ready_tx.send(()).unwrap();
            let _ = done_rx.recv();
        })
    };
    ready_rx.recv().unwrap();
    assert_eq!(req.pipe_count(), 1);
    // The peer goes away. Only a read of the pipe's fd sees it, and the thread that held
    // the reads never comes back: the sweep must give them back to the reactor.
    rep.close().unwrap();
    server.join().unwrap();
    let gone = eventually(Duration::from_secs(10), || {
        (req.pipe_count() == 0).then_some(())
    });
    assert!(gone.is_some(), "the lost peer was never noticed");
    done_tx.send(()).unwrap();
    client.join().unwrap();
}

#[test]
fn a_callback_receive_after_blocking_ones_gets_its_message() {
    let url = tcp();
    let (rep, server) = echo_server(&url);
    let req = Socket::req0().unwrap();
    req.dial(&url).unwrap();
    for _ in 0..3 {
        req.send("blocking").unwrap();
        req.recv().unwrap();
    }
    // Same thread, now a receive through a callback: no thread drives the pipe.
    let (tx, rx) = mpsc::channel();
    let aio = Aio::new(move |a: &Aio| {
        let _ = tx.send(a.result().map(|()| a.take_msg()));
    })
    .unwrap();
    req.send("callback").unwrap();
    req.recv_aio(&aio);
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("no callback");
    let msg: Option<Message> = got.expect("receive failed");
    assert_eq!(msg.expect("no message").body(), b"callback");
    req.close().unwrap();
    rep.close().unwrap();
    server.join().unwrap();
}

#[test]
fn a_nonblocking_poll_after_a_blocking_receive_gets_its_message() {
    let url = ipc("held-poll");
    let a = Socket::pair1().unwrap();
    a.listen(&url).unwrap();
    let b = Socket::pair1().unwrap();
    b.dial(&url).unwrap();
    b.send("first").unwrap();
    assert_eq!(a.recv().unwrap().body(), b"first"); // a blocking receive: reads held
    b.send("second").unwrap();
    let got = eventually(Duration::from_secs(10), || a.try_recv().ok());
    assert_eq!(got.expect("never polled the message").body(), b"second");
    a.close().unwrap();
    b.close().unwrap();
}

#[test]
fn a_server_that_held_one_pipe_serves_a_second_one() {
    let url = ipc("held-two");
    let (rep, server) = echo_server(&url);
    let a = Socket::req0().unwrap();
    a.dial(&url).unwrap();
    for _ in 0..3 {
        a.send("a").unwrap();
        assert_eq!(a.recv().unwrap().body(), b"a");
    }
    // The server's thread holds pipe a's reads between its receives; with a second pipe
    // its receive no longer drives one and waits for either.
    let b = Socket::req0().unwrap();
    b.dial(&url).unwrap();
    let both = eventually(Duration::from_secs(10), || {
        (rep.pipe_count() == 2).then_some(())
    });
    assert!(both.is_some(), "the second pipe never came up");
    for round in 0..20u8 {
        a.send(&[b'a', round][..]).unwrap();
        b.send(&[b'b', round][..]).unwrap();
        assert_eq!(a.recv().unwrap().body(), [b'a', round]);
        assert_eq!(b.recv().unwrap().body(), [b'b', round]);
    }
    a.close().unwrap();
    b.close().unwrap();
    rep.close().unwrap();
    server.join().unwrap();
}
