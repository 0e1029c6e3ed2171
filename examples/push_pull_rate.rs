//! Streams N messages of one size from a push0 socket to a pull0 socket over one url and
//! prints the rate at the puller. Small and single-purpose, so `strace -f -c` over it
//! counts the syscalls of a push/pull stream and nothing else.
//!
//! ```sh
//! cargo build --release --example push_pull_rate
//! target/release/examples/push_pull_rate [tcp|ipc|inproc|URL] [count] [size] [clone|copy] [sendbuf] [send-ahead-max]
//! strace -f -c -o /tmp/x.txt target/release/examples/push_pull_rate tcp 200000 64
//! ```

use std::time::Instant;

use nanoport::{Message, Socket};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("tcp", String::as_str);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let size: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64);
    // `clone` (the default) sends one shared message again and again; `copy` sends a byte
    // slice, so each send copies into a fresh message, as libnng's `nng_send` does.
    let copy = args.get(4).is_some_and(|s| s == "copy");
    // The push socket's send buffer depth in messages (default: the socket's own, 0).
    let sendbuf: Option<i32> = args.get(5).and_then(|s| s.parse().ok());
    // The push socket's send-ahead bound in bytes (default: the socket's own, none).
    let ahead: Option<usize> = args.get(6).and_then(|s| s.parse().ok());
    let url = match which {
        "tcp" => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port())
        }
        "ipc" => format!(
            "ipc://{}",
            std::env::temp_dir()
                .join(format!("np-rate-{}.sock", std::process::id()))
                .display()
        ),
        "inproc" => "inproc://rate".to_string(),
        other => other.to_string(),
    };
    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    let push = Socket::push0().unwrap();
    if let Some(n) = sendbuf {
        push.set_send_buffer(n).unwrap();
    }
    if let Some(b) = ahead {
        push.set_send_ahead_max(b).unwrap();
    }
    push.dial(&url).unwrap();
    let bytes = vec![7u8; size];
    let body = Message::from(bytes.clone());
    let sender = std::thread::spawn(move || {
        for _ in 0..n {
            if copy {
                push.send(&bytes[..]).unwrap();
            } else {
                push.send(body.clone()).unwrap();
            }
        }
        push
    });
    let first = pull.recv().unwrap();
    assert_eq!(first.len(), size);
    let t = Instant::now();
    for _ in 1..n {
        let m = pull.recv().unwrap();
        debug_assert_eq!(m.len(), size);
    }
    let secs = t.elapsed().as_secs_f64();
    let rate = (n - 1) as f64 / secs;
    drop(sender.join().unwrap());
    println!(
        "{which} size {size}: {n} msgs in {secs:.3} s: {rate:.0} msg/s, {:.1} MB/s",
        rate * size as f64 / 1e6
    );
}
