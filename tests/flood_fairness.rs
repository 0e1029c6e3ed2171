//! One flooded socket cannot starve the others: while a hostile peer floods a socket as
//! fast as loopback takes it, a second socket of the same process keeps answering.
//!
//! The bound on each answer (10 s) detects a stall, it is not a timing goal. The reactor
//! does each socket's inbound work in bounded slices: per-message work is O(message)
//! (sub0's topics are a prefix tree), and a turn starts at most
//! `INLINE_READS_PER_TURN` reads inline before the poller is asked again. The wait a
//! bystander sees under flood is measured by `bench/examples/fairness.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use nanoport::{Error, Socket};

const STALL: Duration = Duration::from_secs(10);

/// Connects to `port` as protocol `proto` and writes tcp frames of `payload` until `stop`.
fn flood(port: u16, proto: u16, payload: Vec<u8>, stop: Arc<AtomicBool>) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let p = proto.to_be_bytes();
    if s.write_all(&[0, b'S', b'P', 0, p[0], p[1], 0, 0]).is_err() {
        return;
    }
    let mut peer = [0u8; 8];
    if s.read_exact(&mut peer).is_err() {
        return;
    }
    let mut batch = Vec::new();
    while batch.len() < 128 * 1024 {
        batch.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        batch.extend_from_slice(&payload);
    }
    s.set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while !stop.load(Ordering::Relaxed) {
        match s.write(&batch) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Floods `victim` (drained by a thread of its own when `drain`) with frames of
/// `payload` from a peer speaking `peer_proto`, and checks that a req0/rep0 pair on
/// another port of this process answers every ping meanwhile.
fn bystander_keeps_answering(name: &str, victim: Socket, peer_proto: u16, payload: Vec<u8>) {
    let port = victim.listen("tcp://127.0.0.1:0").unwrap().port().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let drainer = {
        let (v, stop) = (victim.clone(), stop.clone());
        thread::spawn(move || {
            v.set_recv_timeout(Duration::from_millis(50)).unwrap();
            while !stop.load(Ordering::Relaxed) {
                match v.recv() {
                    Ok(_) | Err(Error::TimedOut) | Err(Error::NotSup) => {}
                    Err(_) => return,
                }
            }
        })
    };
    let flooders: Vec<_> = (0..2)
        .map(|_| {
            let (stop, payload) = (stop.clone(), payload.clone());
            thread::spawn(move || flood(port, peer_proto, payload, stop))
        })
        .collect();

    let rep = Socket::rep0().unwrap();
    let rport = rep.listen("tcp://127.0.0.1:0").unwrap().port().unwrap();
    let echo = {
        let rep = rep.clone();
        thread::spawn(move || {
            while let Ok(m) = rep.recv() {
                if rep.send(m).is_err() {
                    break;
                }
            }
        })
    };
    let req = Socket::req0().unwrap();
    req.set_recv_timeout(STALL).unwrap();
    req.set_send_timeout(STALL).unwrap();
    req.dial(&format!("tcp://127.0.0.1:{rport}")).unwrap();
    // A second client gives the rep socket two pipes, so its receives wait for the
    // reactor to read (a socket with one stream pipe reads it on its own thread, which
    // would not depend on the reactor at all).
    let idle = Socket::req0().unwrap();
    idle.dial(&format!("tcp://127.0.0.1:{rport}")).unwrap();
    thread::sleep(Duration::from_millis(100)); // let the flood build up
    for i in 0..20 {
        let ping = format!("ping {i}");
        req.send(ping.as_str()).unwrap();
        let got = req.recv();
        if got.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        assert_eq!(
            got.map(|m| m.body().to_vec()),
            Ok(ping.into_bytes()),
            "{name}: the bystander socket stalled while another socket was flooded"
        );
        thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    victim.close().unwrap();
    rep.close().unwrap();
    for f in flooders {
        f.join().unwrap();
    }
    drainer.join().unwrap();
    echo.join().unwrap();
}

#[test]
fn a_flooded_sub0_with_many_subscriptions_does_not_stall_other_sockets() {
    let sub = Socket::sub0().unwrap();
    // Matching used to scan every subscription per message (about 0.6 ms each at
    // 100,000): a read batch of flood then held the reactor for seconds.
    for i in 0..100_000u32 {
        sub.subscribe(format!("topic-{i:06}").as_bytes()).unwrap();
    }
    bystander_keeps_answering("sub0", sub, 0x20, b"topic-99999x no match".to_vec());
}

#[test]
fn a_flooded_pull0_does_not_stall_other_sockets() {
    bystander_keeps_answering("pull0", Socket::pull0().unwrap(), 0x50, vec![5u8; 48]);
}

#[test]
fn a_rep0_flooded_with_requests_does_not_stall_other_sockets() {
    let mut request = 0x8000_0001u32.to_be_bytes().to_vec();
    request.extend_from_slice(&[2u8; 44]);
    bystander_keeps_answering("rep0", Socket::rep0().unwrap(), 0x30, request);
}
