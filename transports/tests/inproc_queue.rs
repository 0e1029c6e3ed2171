//! The inproc pipe's queue: sends are accepted while it holds less than `INPROC_BUF`
//! bytes, then wait for the reader; a close keeps what was sent readable by the peer.

mod common;
use common::*;

use nanoport_engine::{Error, Message};
use nanoport_transports::{EndpointOptions, INPROC_BUF, INPROC_MSG_OVERHEAD};

fn pair() -> (
    nanoport_transports::BoxPipe,
    nanoport_transports::BoxPipe,
    nanoport_transports::TransportListener,
) {
    connect(
        &format!("inproc://{}", unique("queue")),
        EndpointOptions::default(),
    )
}

fn body(tag: u8, size: usize) -> Message {
    Message::from(&vec![tag; size][..])
}

#[test]
fn sends_complete_before_any_receive_while_the_queue_has_room() {
    let (d, l, _x) = pair();
    // 100 small sends with nobody receiving: each is accepted at once, half through the
    // fast path (a rendezvous pipe refuses it), half through an aio.
    for i in 0..50u8 {
        assert!(
            d.try_send_now(body(i, 64)).is_ok(),
            "accepted into the queue"
        );
    }
    for i in 50..100u8 {
        send(&d, body(i, 64)).expect("accepted into the queue");
    }
    for i in 0..100u8 {
        assert_eq!(recv(&l).unwrap().body(), &[i; 64][..], "in order");
    }
    assert!(l.try_recv_now().is_none(), "nothing left");
}

#[test]
fn a_send_waits_once_the_queue_is_full_and_a_receive_lets_it_in() {
    let (d, l, _x) = pair();
    // Two messages that together (each with its overhead) just fit, then one that does not.
    let half = INPROC_BUF / 2 - INPROC_MSG_OVERHEAD;
    send(&d, body(1, half)).unwrap();
    send(&d, body(2, half)).unwrap(); // exactly at the bound: still taken
    let third = waitable();
    third.set_msg(body(3, 10));
    d.send_aio(&third);
    assert!(third.busy(), "a send past the bound waits");
    assert_eq!(recv(&l).unwrap().body()[0], 1);
    third.wait();
    assert_eq!(third.result(), Ok(()), "the receive made room");
    assert_eq!(recv(&l).unwrap().body()[0], 2);
    assert_eq!(recv(&l).unwrap().body(), &[3; 10][..]);
}

#[test]
fn tiny_messages_count_their_overhead_against_the_bound() {
    // 12-byte messages: by payload alone the queue would take about 10,900 of them.
    let (d, l, _x) = pair();
    let fits = INPROC_BUF / (12 + INPROC_MSG_OVERHEAD);
    for i in 0..fits {
        assert!(d.try_send_now(body(i as u8, 12)).is_ok(), "#{i} fits");
    }
    assert!(d.try_send_now(body(0, 12)).is_err(), "one more does not");
    assert!(fits < 2000, "{fits} tiny messages held");
    for _ in 0..fits {
        assert!(l.try_recv_now().is_some());
    }
}

#[test]
fn one_message_larger_than_the_bound_is_taken_when_the_queue_is_empty() {
    let (d, l, _x) = pair();
    send(&d, body(9, INPROC_BUF * 2)).expect("an empty queue takes any one message");
    let next = waitable();
    next.set_msg(body(8, 1));
    d.send_aio(&next);
    assert!(next.busy(), "but nothing after it");
    assert_eq!(recv(&l).unwrap().len(), INPROC_BUF * 2);
    next.wait();
    assert_eq!(next.result(), Ok(()));
    assert_eq!(recv(&l).unwrap().body(), &[8][..]);
}

#[test]
fn what_was_sent_before_the_sender_closed_is_still_received_then_closed() {
    let (d, l, _x) = pair();
    for i in 0..10u8 {
        send(&d, body(i, 32)).unwrap();
    }
    d.close();
    for i in 0..10u8 {
        assert_eq!(recv(&l).unwrap().body(), &[i; 32][..]);
    }
    assert_eq!(recv(&l).err(), Some(Error::Closed));
    assert_eq!(send(&l, body(0, 1)), Err(Error::Closed), "no way back");
}

#[test]
fn closing_the_reader_drops_what_it_had_not_taken_and_fails_a_waiting_send() {
    let (d, l, _x) = pair();
    send(&d, body(1, INPROC_BUF)).unwrap();
    let waiting = waitable();
    waiting.set_msg(body(2, 1));
    d.send_aio(&waiting);
    assert!(waiting.busy());
    l.close();
    waiting.wait();
    assert_eq!(waiting.result(), Err(Error::Closed));
    assert!(waiting.has_msg(), "a failed send keeps its message");
    assert_eq!(
        recv(&l).err(),
        Some(Error::Closed),
        "the closed side reads nothing"
    );
    assert_eq!(send(&d, body(3, 1)), Err(Error::Closed));
}

#[test]
fn a_waiting_receive_gets_the_message_directly() {
    let (d, l, _x) = pair();
    let r = waitable();
    l.recv_aio(&r);
    assert!(r.busy());
    // The fast path hands it straight to the waiting receive: nothing is held.
    assert!(d.try_send_now(body(5, 16)).is_ok());
    r.wait();
    assert_eq!(r.take_msg().unwrap().body(), &[5; 16][..]);
    assert!(l.try_recv_now().is_none());
}

#[test]
fn a_waiting_send_is_let_in_once_the_queue_is_half_empty_not_before() {
    // Letting it in as soon as one message fits would make a stream pay an aio per
    // message; the queue first drains to half (INPROC_BUF / 2).
    let (d, l, _x) = pair();
    let size = INPROC_BUF / 3 - INPROC_MSG_OVERHEAD;
    for i in 0..3u8 {
        send(&d, body(i, size)).unwrap();
    }
    let waiting = waitable();
    waiting.set_msg(body(3, size));
    d.send_aio(&waiting);
    assert!(waiting.busy(), "a fourth does not fit");
    assert_eq!(recv(&l).unwrap().body()[0], 0);
    assert!(
        waiting.busy(),
        "two thirds still held: it fits, but is not let in yet"
    );
    assert_eq!(recv(&l).unwrap().body()[0], 1);
    waiting.wait();
    assert_eq!(waiting.result(), Ok(()), "one third held: let in");
    assert_eq!(recv(&l).unwrap().body()[0], 2);
    assert_eq!(recv(&l).unwrap().body()[0], 3);
}

/// A message carrying `i` in its first 4 bytes, `size` bytes long (at least 4).
fn numbered(i: u32, size: usize) -> Message {
    let mut b = vec![0u8; size.max(4)];
    b[..4].copy_from_slice(&i.to_be_bytes());
    Message::from(&b[..])
}

fn number(m: &Message) -> u32 {
    u32::from_be_bytes(m.body()[..4].try_into().unwrap())
}

#[test]
fn hundreds_of_held_messages_and_a_waiting_send_come_out_in_order() {
    // 64-byte messages: the bound takes several hundred (more than a small fixed ring
    // would hold); then one send waits, and is let in behind them.
    let (d, l, _x) = pair();
    let fits = INPROC_BUF / (64 + INPROC_MSG_OVERHEAD);
    assert!(fits > 300, "{fits} held");
    for i in 0..fits as u32 {
        assert!(d.try_send_now(numbered(i, 64)).is_ok(), "#{i} fits");
    }
    assert!(
        d.try_send_now(numbered(0, 64)).is_err(),
        "one more does not"
    );
    let waiting = waitable();
    waiting.set_msg(numbered(fits as u32, 64));
    d.send_aio(&waiting);
    assert!(waiting.busy(), "a send past the bound waits");
    // Alternate the aio and the direct take.
    for i in 0..=fits as u32 {
        let m = if i % 2 == 0 {
            recv(&l).unwrap()
        } else {
            l.try_recv_now().expect("held")
        };
        assert_eq!(number(&m), i, "in order");
    }
    waiting.wait();
    assert_eq!(waiting.result(), Ok(()));
    assert!(l.try_recv_now().is_none(), "nothing left");
}

#[test]
fn a_stream_between_two_threads_arrives_complete_and_in_order() {
    // The writer and the reader race on the queue and on each other's waits: every
    // message arrives once, in order, whichever path it took.
    let (d, l, _x) = pair();
    const N: u32 = 200_000;
    std::thread::scope(|s| {
        s.spawn(|| {
            let a = waitable();
            for i in 0..N {
                // As the socket does: the direct offer first, the aio when it is refused.
                if let Err(m) = d.try_send_now(numbered(i, 64)) {
                    a.set_msg(m);
                    d.send_aio(&a);
                    a.wait();
                    assert_eq!(a.result(), Ok(()), "#{i} sent");
                }
            }
        });
        let r = waitable();
        for i in 0..N {
            let m = match l.try_recv_now() {
                Some(m) => m,
                None => {
                    l.recv_aio(&r);
                    r.wait();
                    r.take_msg().expect("received")
                }
            };
            assert_eq!(number(&m), i, "in order, none lost");
        }
    });
    assert!(l.try_recv_now().is_none(), "nothing extra");
}

#[test]
fn closing_the_reader_while_the_writer_streams_ends_both_cleanly() {
    // Sends that race with the reader's close (taken at once or waiting): the
    // writer's next waiting send fails with `Closed` (a lost wake-up would hang here), and
    // the closed side reads nothing, not even a message pushed as it closed.
    for round in 0..50u32 {
        let (d, l, _x) = pair();
        std::thread::scope(|s| {
            s.spawn(|| {
                let a = waitable();
                for i in 0.. {
                    match d.try_send_now(numbered(i, 16)) {
                        Ok(()) => continue,
                        Err(m) => {
                            a.set_msg(m);
                            d.send_aio(&a);
                            a.wait();
                            if a.result() == Err(Error::Closed) {
                                return;
                            }
                        }
                    }
                }
            });
            for _ in 0..round * 10 {
                let _ = recv(&l);
            }
            l.close();
        });
        assert_eq!(recv(&l).err(), Some(Error::Closed));
        assert!(l.try_recv_now().is_none(), "the closed side holds nothing");
    }
}
