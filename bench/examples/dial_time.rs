//! What looking the host name up at every dial attempt costs: the time of a blocking
//! dial (connect and SP handshake) to a literal address, to `localhost` (a resolver
//! thread hop and `getaddrinfo`), and to a name the program answers itself
//! (`nanoport::set_resolver`: the hop alone), each against the same listener.
//!
//! Each dial opens a fresh push0, dials, and closes the socket; the three kinds take turns
//! dial by dial, so a noisy host hurts them alike. Prints the median and p99 per kind.
//!
//! `cargo run --release -p nanoport-bench --example dial_time -- [DIALS]` (default 2000).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nanoport::Socket;

fn main() {
    let dials: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    nanoport::set_resolver(Some(Arc::new(|host: &str, port: u16| {
        (host == "answered.nanoport.test")
            .then(|| Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]))
    })));
    let pull = Socket::pull0().expect("pull0");
    let port = pull
        .listen("tcp://127.0.0.1:0")
        .expect("listen")
        .port()
        .expect("port");
    let kinds = [
        ("literal 127.0.0.1", format!("tcp://127.0.0.1:{port}")),
        ("localhost (getaddrinfo)", format!("tcp://localhost:{port}")),
        (
            "set_resolver name",
            format!("tcp://answered.nanoport.test:{port}"),
        ),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(dials); kinds.len()];
    for _ in 0..dials {
        for (i, (_, url)) in kinds.iter().enumerate() {
            let push = Socket::push0().expect("push0");
            let t = Instant::now();
            push.dial(url).expect("dial");
            times[i].push(t.elapsed());
            push.close().expect("close");
        }
    }
    println!("{dials} blocking dials each (connect + SP handshake), tcp loopback:");
    for ((name, _), t) in kinds.iter().zip(times.iter_mut()) {
        t.sort_unstable();
        let at = |q: f64| t[((t.len() as f64 - 1.0) * q) as usize];
        println!(
            "  {name:<26} median {:>7.1} us   p99 {:>7.1} us",
            at(0.5).as_secs_f64() * 1e6,
            at(0.99).as_secs_f64() * 1e6
        );
    }
}
