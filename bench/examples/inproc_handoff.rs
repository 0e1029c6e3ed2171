//! The inproc pipe's hand-off alone, without a socket: a writer thread offers 64 B
//! messages to one end of an inproc pipe (`try_send_now`, else a send aio, as the socket
//! does), a reader takes them from the other (`try_recv_now`, else a receive aio). What
//! the A/B of the pipe's queue (a mutex around a `VecDeque`, or crossbeam's lock-free
//! `ArrayQueue`) changes, with nothing else around it.
//!
//! ```text
//! cargo build --release -p nanoport-bench --example inproc_handoff
//! target/release/examples/inproc_handoff [N] [ROUNDS]
//! ```
//!
//! Prints, per round, messages/s and the process CPU time per message (both threads).

use std::time::Instant;

use nanoport_engine::{Aio, Message};
use nanoport_transports::{BoxPipe, EndpointOptions, TransportDialer, TransportListener, Url};

fn pair() -> (BoxPipe, BoxPipe, TransportListener) {
    let url = Url::parse(&format!("inproc://handoff-{}", std::process::id())).unwrap();
    let l = TransportListener::bind(&url, 0x51, EndpointOptions::default()).unwrap();
    let d = TransportDialer::new(&url, 0x50, EndpointOptions::default()).unwrap();
    let (a, b) = (Aio::new_waitable().unwrap(), Aio::new_waitable().unwrap());
    l.accept_aio(&a);
    d.dial_aio(&b);
    a.wait();
    b.wait();
    let lp = a.take_output::<BoxPipe>().unwrap();
    let dp = b.take_output::<BoxPipe>().unwrap();
    (dp, lp, l)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |s| s.parse().expect("N"));
    let rounds: u32 = args.next().map_or(5, |s| s.parse().expect("ROUNDS"));
    let body = Message::from(&[7u8; 64][..]);
    for _ in 0..rounds {
        let (d, l, _x) = pair();
        let (t0, c0) = (Instant::now(), nanoport_bench::cpu_seconds());
        std::thread::scope(|s| {
            s.spawn(|| {
                let a = Aio::new_waitable().unwrap();
                for _ in 0..n {
                    if let Err(m) = d.try_send_now(body.clone()) {
                        a.set_msg(m);
                        d.send_aio(&a);
                        a.wait();
                        a.result().expect("send");
                    }
                }
            });
            let r = Aio::new_waitable().unwrap();
            for _ in 0..n {
                if l.try_recv_now().is_none() {
                    l.recv_aio(&r);
                    r.wait();
                    r.take_msg().expect("recv");
                }
            }
        });
        let (secs, cpu) = (
            t0.elapsed().as_secs_f64(),
            nanoport_bench::cpu_seconds() - c0,
        );
        println!(
            "{:.0} msg/s, {:.0} ns CPU per message",
            n as f64 / secs,
            cpu * 1e9 / n as f64
        );
    }
}
