//! `recv_ready` / `send_ready` against what `try_recv` / `try_send` then do, for every
//! protocol, cooked and raw, along a pseudo-random walk of pipe events, deliveries,
//! sends, receives and time: a socket's poll fds show these answers, so a readable fd
//! must mean a call that completes, and a quiet one a call that would wait.

use std::time::Duration;

use nanoport_engine::{Error, Message};

use crate::core::{opt, OptValue, SendBlock};
use crate::protocol::Protocol;
use crate::testing::{words, Harness};

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n)) as u32
    }
}

/// Every protocol variant that opens.
fn variants() -> Vec<(Protocol, bool)> {
    let all = [
        Protocol::Pair0,
        Protocol::Pair1,
        Protocol::Pair1Poly,
        Protocol::Pub0,
        Protocol::Sub0,
        Protocol::Req0,
        Protocol::Rep0,
        Protocol::Respondent0,
        Protocol::Push0,
        Protocol::Pull0,
        Protocol::Surveyor0,
        Protocol::Bus0,
    ];
    all.iter()
        .flat_map(|p| [(*p, false), (*p, true)])
        .filter(|(p, raw)| crate::protocol::open(*p, *raw).is_ok())
        .collect()
}

/// A message from a peer that this protocol accepts (a reply echoes a request the
/// protocol sent, so its id matches).
fn from_peer(p: Protocol, raw: bool, rng: &mut Rng, echo: Option<&[u8]>) -> Vec<u8> {
    match p {
        Protocol::Pair1 | Protocol::Pair1Poly => words(&[1], b"m"),
        Protocol::Req0 | Protocol::Surveyor0 if !raw => match echo {
            Some(wire) => wire.to_vec(),
            None => words(&[0x8000_0000 | rng.next(100)], b"stray"),
        },
        Protocol::Req0 | Protocol::Surveyor0 => words(&[0x8000_0001], b"m"),
        Protocol::Rep0 | Protocol::Respondent0 => words(&[0x8000_0000 | rng.next(100)], b"m"),
        _ => b"m".to_vec(),
    }
}

/// A message the user may send (raw repliers route on the first header word).
fn to_send(p: Protocol, raw: bool, pipe: u32) -> Message {
    let mut m = Message::from(&b"s"[..]);
    match (p, raw) {
        (Protocol::Rep0 | Protocol::Respondent0, true) => {
            let _ = m.header_append_u32(pipe);
            let _ = m.header_append_u32(0x8000_0001);
        }
        (Protocol::Pair1, true) => {
            let _ = m.header_append_u32(0);
        }
        (Protocol::Req0, true) => {
            let _ = m.header_append_u32(0x8000_0001);
        }
        _ => {}
    }
    m
}

#[test]
fn readiness_predicts_what_the_next_call_does() {
    for (p, raw) in variants() {
        for seed in 1..=20u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut h = Harness::new(p, raw);
            let info = h.proto.info();
            if p == Protocol::Sub0 && !raw {
                h.set(0, opt::SUBSCRIBE, OptValue::Bytes(Vec::new()))
                    .unwrap();
            }
            let mut pipes: Vec<u32> = Vec::new();
            let mut next_pipe = 1;
            let mut busy: Vec<u32> = Vec::new();
            let mut last_sent: Option<(u32, Vec<u8>)> = None;
            for step in 0..300 {
                let what = format!("{p:?} raw={raw} seed={seed} step={step}");
                match rng.next(10) {
                    0 if pipes.len() < 3 => {
                        h.add(next_pipe);
                        pipes.push(next_pipe);
                        next_pipe += 1;
                    }
                    1 if !pipes.is_empty() => {
                        let i = rng.next(pipes.len() as u32) as usize;
                        let gone = pipes.remove(i);
                        busy.retain(|b| *b != gone);
                        h.remove(gone);
                    }
                    2 if !busy.is_empty() => {
                        let pipe = busy.remove(0);
                        h.writable(pipe);
                    }
                    3 | 4 if !pipes.is_empty() => {
                        let pipe = pipes[rng.next(pipes.len() as u32) as usize];
                        if h.wants(pipe) {
                            let echo = last_sent
                                .as_ref()
                                .filter(|(to, _)| *to == pipe)
                                .map(|(_, w)| w.as_slice());
                            let bytes = from_peer(p, raw, &mut rng, echo);
                            h.deliver(pipe, &bytes);
                        }
                    }
                    5 if info.can_recv => {
                        let ready = h.proto.recv_ready();
                        match h.recv(0) {
                            Ok(Some(_)) => assert!(ready, "{what}: a message, readiness said no"),
                            Err(e) if e != Error::State => {
                                assert!(ready, "{what}: outcome {e:?}, readiness said no")
                            }
                            Ok(None) => {
                                assert!(!ready, "{what}: readiness said yes, recv waits");
                                h.proto.recv_not_waiting(0);
                            }
                            Err(_) => assert!(!ready, "{what}: readiness said yes, recv State"),
                        }
                    }
                    6 | 7 if info.can_send => {
                        let ready = h.proto.send_ready();
                        let pipe = pipes.first().copied().unwrap_or(0);
                        match h.send_msg(0, to_send(p, raw, pipe)) {
                            Ok(()) => assert!(ready, "{what}: send went, readiness said no"),
                            Err(SendBlock::Full(_)) => {
                                assert!(!ready, "{what}: readiness said yes, send is Full")
                            }
                            Err(SendBlock::Fail(e, _)) => {
                                assert!(!ready, "{what}: readiness said yes, send fails {e:?}")
                            }
                        }
                    }
                    8 => {
                        // Buffers change what "room" means (errors: the protocol has none).
                        let name = if rng.next(2) == 0 {
                            opt::SEND_BUF
                        } else {
                            opt::RECV_BUF
                        };
                        let _ = h.set(0, name, OptValue::Int(rng.next(3) as i32));
                    }
                    _ => h.advance(Duration::from_millis(u64::from(rng.next(1500)))),
                }
                for (pipe, wire) in h.sent() {
                    if !busy.contains(&pipe) {
                        busy.push(pipe);
                    }
                    if matches!(p, Protocol::Req0 | Protocol::Surveyor0) && !raw {
                        last_sent = Some((pipe, wire));
                    }
                }
            }
        }
    }
}
