//! Batched reads and writes on stream pipes (docs/engine.md): long streams arrive in order and
//! intact whatever the batching does, large and small messages mix, and closing a pipe
//! with sends queued and parked completes each operation exactly once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nanoport::{Message, Socket};
use nanoport_engine::{Aio, Error};
use nanoport_transports::{BoxPipe, EndpointOptions, TransportDialer, TransportListener, Url};

fn push_pull(url: &str) -> (Socket, Socket) {
    let pull = Socket::pull0().unwrap();
    pull.listen(url).unwrap();
    let push = Socket::push0().unwrap();
    push.dial(url).unwrap();
    (push, pull)
}

/// `n` messages of 64 bytes, each carrying its sequence number and a pattern from it.
fn stream_small(url: &str, n: u64) {
    let (push, pull) = push_pull(url);
    let sender = std::thread::spawn(move || {
        let mut body = [0u8; 64];
        for i in 0..n {
            body[..8].copy_from_slice(&i.to_be_bytes());
            body[8..].fill(i as u8 ^ 0x5a);
            push.send(&body[..]).unwrap();
        }
        push
    });
    let mut want = [0u8; 64];
    for i in 0..n {
        let m = pull.recv().unwrap();
        want[..8].copy_from_slice(&i.to_be_bytes());
        want[8..].fill(i as u8 ^ 0x5a);
        assert!(m.body() == want, "message {i} of {n} over {url}");
    }
    drop(sender.join().unwrap());
}

#[test]
fn a_million_small_messages_over_tcp_in_order() {
    stream_small(&common::tcp(), 1_000_000);
}

#[test]
fn a_million_small_messages_over_ipc_in_order() {
    stream_small(&common::ipc("batch-small"), 1_000_000);
}

fn size(i: usize) -> usize {
    [0, 1, 1024, 1 << 20][i % 4]
}

/// 10,000 messages cycling through 0, 1, 1 KiB and 1 MiB.
fn stream_mixed(url: &str) {
    const N: usize = 10_000;
    let (push, pull) = push_pull(url);
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            let mut body = vec![i as u8; size(i)];
            if body.len() >= 8 {
                body[..8].copy_from_slice(&(i as u64).to_be_bytes());
            }
            push.send(body).unwrap();
        }
        push
    });
    let patterns: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b; 1 << 20]).collect();
    for i in 0..N {
        let m = pull.recv().unwrap();
        let b = m.body();
        assert_eq!(b.len(), size(i), "message {i} over {url}");
        if b.len() >= 8 {
            assert_eq!(&b[..8], &(i as u64).to_be_bytes(), "message {i}");
            assert!(b[8..] == patterns[i % 256][8..b.len()], "message {i} body");
        } else {
            assert!(b == &patterns[i % 256][..b.len()], "message {i} body");
        }
    }
    drop(sender.join().unwrap());
}

#[test]
fn mixed_sizes_over_tcp_in_order() {
    stream_mixed(&common::tcp());
}

#[test]
fn mixed_sizes_over_ipc_in_order() {
    stream_mixed(&common::ipc("batch-mixed"));
}

/// Messages accepted just before a close still reach a peer that keeps reading: the
/// close writes out what the pipe accepted, as far as the kernel takes it at once. (What
/// it cannot take is dropped, as NNG's close gives no linger either; see
/// `a_reading_peer_gets_a_prefix_of_the_sends_then_the_end`.)
#[test]
fn close_right_after_a_burst_delivers_the_burst() {
    for url in [common::tcp(), common::ipc("batch-close")] {
        let (push, pull) = push_pull(&url);
        let reader = std::thread::spawn(move || {
            for i in 0..100u32 {
                assert_eq!(pull.recv().unwrap().body(), i.to_be_bytes());
            }
        });
        for i in 0..100u32 {
            push.send(&i.to_be_bytes()[..]).unwrap();
        }
        push.close().unwrap();
        reader.join().unwrap();
    }
}

fn pipes(url: &str) -> (BoxPipe, BoxPipe, TransportListener) {
    let u = Url::parse(url).unwrap();
    let l = TransportListener::bind(&u, 0x51, EndpointOptions::default()).unwrap();
    let durl = match l.port() {
        Some(p) => format!("tcp://127.0.0.1:{p}"),
        None => url.to_string(),
    };
    let d = TransportDialer::new(
        &Url::parse(&durl).unwrap(),
        0x50,
        EndpointOptions::default(),
    )
    .unwrap();
    let acc = Aio::new_waitable().unwrap();
    l.accept_aio(&acc);
    let dial = Aio::new_waitable().unwrap();
    d.dial_aio(&dial);
    dial.wait();
    acc.wait();
    let dp = dial.take_output::<BoxPipe>().expect("dialed");
    let lp = acc.take_output::<BoxPipe>().expect("accepted");
    (dp, lp, l)
}

/// A peer that never reads: sends fill the kernel and the pipe's buffer, later ones
/// park. Closing the pipe completes every send and the pending receive exactly once:
/// accepted sends with `Ok`, parked ones with `Closed` and their message still on the aio.
fn close_while_queued(url: &str) {
    const SENDS: usize = 64;
    let (tx, _rx, _l) = pipes(url);
    let calls: Arc<Vec<AtomicUsize>> = Arc::new((0..=SENDS).map(|_| AtomicUsize::new(0)).collect());
    let done = Arc::new(AtomicUsize::new(0));
    let aios: Vec<Aio> = (0..=SENDS)
        .map(|k| {
            let (calls, done) = (calls.clone(), done.clone());
            Aio::new(move |_| {
                calls[k].fetch_add(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    // A receive on the sending pipe: nothing ever comes, so only the close ends it.
    tx.recv_aio(&aios[SENDS]);
    for (k, a) in aios[..SENDS].iter().enumerate() {
        a.set_msg(Message::from(vec![k as u8; 1 << 20]));
        tx.send_aio(a);
    }
    // 64 MiB cannot all fit in the kernel's buffers: some sends are parked now.
    assert!(
        done.load(Ordering::SeqCst) < SENDS,
        "every send completed although the peer reads nothing"
    );
    tx.close();
    for a in &aios {
        a.wait();
    }
    assert_eq!(done.load(Ordering::SeqCst), SENDS + 1);
    for (k, a) in aios[..SENDS].iter().enumerate() {
        assert_eq!(
            calls[k].load(Ordering::SeqCst),
            1,
            "send {k} completed once"
        );
        match a.result() {
            Ok(()) => assert!(!a.has_msg(), "send {k}: accepted, message taken"),
            Err(e) => {
                assert_eq!(e, Error::Closed, "send {k}");
                let m = a.take_msg().expect("a failed send keeps its message");
                assert_eq!(m.len(), 1 << 20);
                assert!(m.body().iter().all(|&b| b == k as u8));
            }
        }
    }
    assert_eq!(aios[SENDS].result(), Err(Error::Closed));
    assert_eq!(calls[SENDS].load(Ordering::SeqCst), 1);
    // Later operations fail at once.
    let a = Aio::new_waitable().unwrap();
    a.set_msg(Message::from(&b"late"[..]));
    tx.send_aio(&a);
    a.wait();
    assert_eq!(a.result(), Err(Error::Closed));
    assert!(a.has_msg());
    assert_eq!(done.load(Ordering::SeqCst), SENDS + 1);
}

#[test]
fn close_while_queued_over_tcp_completes_each_op_once() {
    close_while_queued("tcp://127.0.0.1:0");
}

#[test]
fn close_while_queued_over_ipc_completes_each_op_once() {
    close_while_queued(&common::ipc("batch-cwq"));
}

/// The peer reads what was accepted before the close, in order and intact, then sees
/// the end of the stream.
#[test]
fn a_reading_peer_gets_a_prefix_of_the_sends_then_the_end() {
    let (tx, rx, _l) = pipes("tcp://127.0.0.1:0");
    let aios: Vec<Aio> = (0..32).map(|_| Aio::new_waitable().unwrap()).collect();
    for (k, a) in aios.iter().enumerate() {
        a.set_msg(Message::from(vec![k as u8; 256 * 1024]));
        tx.send_aio(a);
    }
    tx.close();
    let accepted = aios
        .iter()
        .map(|a| {
            a.wait();
            a.result().is_ok()
        })
        .take_while(|ok| *ok)
        .count();
    let mut got = 0;
    loop {
        let r = Aio::new_waitable().unwrap();
        rx.recv_aio(&r);
        r.wait();
        if r.result().is_err() {
            break;
        }
        let m = r.take_msg().unwrap();
        assert_eq!(m.len(), 256 * 1024);
        assert!(m.body().iter().all(|&b| b == got as u8), "message {got}");
        got += 1;
    }
    assert!(got <= accepted, "got {got} of {accepted} accepted");
}
