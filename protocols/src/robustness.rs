//! Property tests over every protocol, cooked and raw: arbitrary bytes from pipes,
//! arbitrary user calls and pipe churn never panic, never break the one-write-per-pipe
//! contract, and never let a queue grow past its bound.

use std::collections::HashSet;
use std::time::Duration;

use nanoport_engine::{Message, PipeId, MAX_HEADER};

use crate::core::{Action, ProtocolCore};
use crate::protocol::{open, Protocol};
use crate::testing::pipe;

/// xorshift64: deterministic, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Bytes that look like SP headers often enough to reach the deeper paths: words with
/// and without the top bit, hop counts, short tails.
fn peer_bytes(rng: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..rng.below(6) {
        let word = match rng.below(4) {
            0 => 0x8000_0000 | rng.next() as u32,
            1 => rng.below(16) as u32,
            2 => rng.next() as u32,
            _ => 0x8000_0000 | rng.below(4) as u32,
        };
        v.extend_from_slice(&word.to_be_bytes());
    }
    for _ in 0..rng.below(6) {
        v.push(rng.next() as u8);
    }
    v
}

/// Checks the socket-facing contract while it drains actions.
struct Driver {
    proto: Box<dyn ProtocolCore>,
    connected: HashSet<u32>,
    writing: HashSet<u32>,
    now: std::time::Instant,
}

impl Driver {
    fn drain(&mut self) {
        while let Some(a) = self.proto.poll_action() {
            if let Action::SendToPipe(p, m) = a {
                assert!(
                    self.connected.contains(&p.0),
                    "send to unknown pipe {}",
                    p.0
                );
                assert!(
                    self.writing.insert(p.0),
                    "second write in flight on pipe {}",
                    p.0
                );
                assert!(m.header_len() <= nanoport_engine::MAX_HEADER);
            }
        }
    }

    fn step(&mut self, rng: &mut Rng) {
        let p = 1 + rng.below(4) as u32;
        match rng.below(9) {
            0 | 1 => {
                if self.connected.contains(&p) && self.proto.wants_pipe_message(PipeId(p)) {
                    let bytes = peer_bytes(rng);
                    // As a stream delivers them (all in the body), or as inproc does (the
                    // sender's header still in the header), split at any byte.
                    let split = match rng.below(2) {
                        0 => 0,
                        _ => (rng.below(bytes.len() as u64 + 1) as usize).min(MAX_HEADER),
                    };
                    let mut m = Message::from(&bytes[split..]);
                    let _ = m.header_append(&bytes[..split]);
                    m.set_pipe(Some(pipe(p)));
                    self.proto.pipe_message(PipeId(p), m, self.now.into());
                }
            }
            2 => {
                if self.writing.remove(&p) {
                    self.proto.pipe_writable(PipeId(p), self.now.into());
                }
            }
            3 => {
                let mut m = Message::from(peer_bytes(rng));
                if rng.below(2) == 0 {
                    for _ in 0..rng.below(5) {
                        let _ = m.header_append_u32(
                            rng.below(6) as u32 | (rng.next() as u32 & 0x8000_0000),
                        );
                    }
                }
                if rng.below(3) == 0 {
                    m.set_pipe(Some(pipe(p)));
                }
                let _ = self.proto.try_send(0, m, self.now.into());
            }
            4 => {
                let _ = self.proto.try_recv(0, self.now.into());
            }
            5 => {
                self.now += Duration::from_millis(rng.below(3000));
                if self.proto.next_timer().is_some_and(|t| t <= self.now) {
                    self.proto.timer(self.now.into());
                }
            }
            6 => {
                if self.connected.remove(&p) {
                    self.writing.remove(&p);
                    self.proto.remove_pipe(PipeId(p), self.now.into());
                }
            }
            7 => {
                if self.connected.insert(p) {
                    self.proto.add_pipe(PipeId(p), self.now.into());
                }
            }
            _ => self.proto.recv_cancelled(0),
        }
        self.drain();
    }
}

#[test]
fn arbitrary_events_keep_the_contract_and_the_bounds() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut runs = 0;
    for p in Protocol::ALL {
        for raw in [false, true] {
            let Ok(proto) = open(p, raw) else { continue };
            let mut d = Driver {
                proto,
                connected: HashSet::new(),
                writing: HashSet::new(),
                now: std::time::Instant::now(),
            };
            for _ in 0..3000 {
                d.step(&mut rng);
            }
            // Whatever the peers did, what waits for the user is bounded by the largest
            // default queue (sub's and surveyor's 128) plus one per pipe.
            let mut waiting = 0;
            while let Ok(Some(_)) = d.proto.try_recv(0, d.now.into()) {
                waiting += 1;
                d.drain();
                assert!(
                    waiting <= 128 + 4,
                    "{p:?} raw={raw}: receive queue unbounded"
                );
            }
            runs += 1;
        }
    }
    assert_eq!(runs, 23, "every protocol but raw poly ran");
}

#[test]
fn a_stalled_peer_holds_a_bounded_number_of_messages() {
    for p in [
        Protocol::Pub0,
        Protocol::Bus0,
        Protocol::Surveyor0,
        Protocol::Pair1Poly,
    ] {
        let mut d = Driver {
            proto: open(p, false).unwrap(),
            connected: HashSet::new(),
            writing: HashSet::new(),
            now: std::time::Instant::now(),
        };
        d.connected.insert(1);
        d.proto.add_pipe(PipeId(1), d.now.into());
        d.drain();
        for i in 0..10_000u32 {
            let mut m = Message::from(&i.to_be_bytes()[..]);
            m.set_pipe(Some(pipe(1)));
            let _ = d.proto.try_send(0, m, d.now.into());
            d.drain();
        }
        let mut delivered = 0;
        while d.writing.remove(&1) {
            d.proto.pipe_writable(PipeId(1), d.now.into());
            d.drain();
            delivered += 1;
        }
        assert!(
            delivered <= 17,
            "{p:?}: {delivered} messages were queued for a stalled pipe"
        );
        assert!(delivered >= 2, "{p:?}: the queue must hold something");
    }
}
