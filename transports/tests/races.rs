//! Cancellation racing completion: every message is delivered exactly once or handed back
//! to its sender, never both, never lost, and what is delivered keeps its order.

mod common;
use common::*;

use std::collections::HashSet;

use nanoport_engine::Message;
use nanoport_transports::EndpointOptions;

/// A message carrying `i` in its first 4 bytes, `size` bytes long (at least 4).
fn numbered(i: u32, size: usize) -> Message {
    let mut b = vec![0u8; size.max(4)];
    b[..4].copy_from_slice(&i.to_be_bytes());
    Message::from(&b[..])
}

fn number(m: &Message) -> u32 {
    u32::from_be_bytes(m.body()[..4].try_into().unwrap())
}

/// `size` decides how much the pipe holds: inproc accepts small sends into its queue at
/// once, so only sends of more than half its bound ever wait and can lose to a cancel.
fn race(url: &str, size: usize) -> HashSet<u32> {
    let (d, l, _x) = connect(url, EndpointOptions::default());
    const N: u32 = 2000;
    let mut returned = HashSet::new();
    let mut received = HashSet::new();
    let mut last: Option<u32> = None;
    let s = waitable();
    let r = waitable();
    for i in 0..N {
        s.set_msg(numbered(i, size));
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
            returned.insert(number(&m));
        } else {
            assert!(!s.has_msg());
        }
        r.wait();
        if r.result().is_ok() {
            // Possibly a message an earlier round's send left held in the pipe.
            let m = r.take_msg().unwrap();
            let v = number(&m);
            assert!(last.is_none_or(|l| v > l), "round {i}: {v} after {last:?}");
            last = Some(v);
            assert!(received.insert(v));
        }
    }
    // What accepted sends left held is still there, in order.
    while let Some(m) = l.try_recv_now() {
        let v = number(&m);
        assert!(last.is_none_or(|l| v > l), "held {v} after {last:?}");
        last = Some(v);
        assert!(received.insert(v));
    }
    assert!(returned.is_disjoint(&received));
    assert_eq!(returned.len() + received.len(), N as usize);
    assert!(!received.is_empty());
    returned
}

#[test]
fn inproc_cancel_races_with_room_in_the_pipe() {
    // Small messages: every send is accepted at once (handed over or held), so only a
    // cancel from another thread, racing the send's start, can beat one (rounds i % 7 == 0).
    let returned = race(&format!("inproc://{}", unique("race")), 4);
    let waited: Vec<_> = returned.iter().filter(|i| *i % 7 != 0).collect();
    assert!(
        waited.is_empty(),
        "sends with room in the pipe waited: {waited:?}"
    );
}

#[test]
fn inproc_cancel_races_with_a_full_pipe() {
    // Each message fills the pipe's queue, so a send behind a held one waits for the
    // receive, and cancels race both sides.
    let size = nanoport_transports::INPROC_BUF * 3 / 4;
    let returned = race(&format!("inproc://{}", unique("race-full")), size);
    assert!(!returned.is_empty(), "no send lost a race to its cancel");
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
