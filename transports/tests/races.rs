//! Cancellation racing completion: every message is delivered exactly once or handed back
//! to its sender, never both, never lost.

mod common;
use common::*;

use std::collections::HashSet;

use nanoport_engine::Message;
use nanoport_transports::EndpointOptions;

fn race(url: &str) {
    let (d, l, _x) = connect(url, EndpointOptions::default());
    const N: u32 = 2000;
    let mut returned = HashSet::new();
    let mut received = HashSet::new();
    let s = waitable();
    let r = waitable();
    for i in 0..N {
        s.set_msg(Message::from(&i.to_be_bytes()[..]));
        // Either side may arrive first; sometimes the first gives up before the second
        // arrives, sometimes one is cancelled from another thread while they meet.
        let first_cancels = i % 5 == 0;
        std::thread::scope(|sc| {
            if i % 7 == 0 {
                sc.spawn(|| s.cancel());
            }
            if i % 4 < 2 {
                l.recv_aio(&r);
                if first_cancels {
                    r.cancel();
                }
                d.send_aio(&s);
            } else {
                d.send_aio(&s);
                if first_cancels {
                    s.cancel();
                }
                l.recv_aio(&r);
            }
        });
        // Whatever did not meet its partner gives up now (no-op for completed ones).
        s.cancel();
        s.wait();
        // A receive left without a sender is cancelled (no-op if it already completed).
        r.cancel();
        if s.result().is_err() {
            let m = s.take_msg().expect("failed send keeps its message");
            returned.insert(u32::from_be_bytes(m.body().try_into().unwrap()));
        } else {
            assert!(!s.has_msg());
        }
        r.wait();
        if r.result().is_ok() {
            let m = r.take_msg().unwrap();
            assert!(received.insert(u32::from_be_bytes(m.body().try_into().unwrap())));
        }
        // Rendezvous: a completed send was taken by the receive of this round.
        assert_eq!(s.result().is_ok(), r.result().is_ok(), "round {i}");
    }
    assert!(returned.is_disjoint(&received));
    assert_eq!(returned.len() + received.len(), N as usize);
    assert!(!returned.is_empty() && !received.is_empty());
}

#[test]
fn inproc_cancel_races() {
    race(&format!("inproc://{}", unique("race")));
}

#[test]
fn tcp_cancel_races_before_bytes_move() {
    // On a stream, a cancelled receive that had not started leaves the stream intact.
    let (d, l, _x) = connect("tcp://127.0.0.1:0", EndpointOptions::default());
    let r = waitable();
    for i in 0..200u32 {
        l.recv_aio(&r);
        r.cancel();
        r.wait();
        assert_eq!(r.result(), Err(nanoport_engine::Error::Canceled));
        send(&d, Message::from(&i.to_be_bytes()[..])).unwrap();
        assert_eq!(recv(&l).unwrap().body(), &i.to_be_bytes());
    }
}
