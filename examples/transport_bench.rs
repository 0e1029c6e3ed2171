//! Round-trip latency (req/rep) and streaming throughput (push/pull) between two
//! nanoport sockets over inproc, ipc and tcp, next to a raw blocking socket doing the same
//! framing in the same run.
//!
//! `cargo run --release --example transport_bench` (add `taskset -c 0` in front of the
//! built binary to pin both threads to one CPU).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nanoport::{Message, Socket};

const SIZES: [usize; 2] = [64, 65536];

fn rounds(size: usize) -> usize {
    if size <= 64 {
        20_000
    } else {
        3_000
    }
}

fn stream_count(size: usize) -> usize {
    if size <= 64 {
        200_000
    } else {
        20_000
    }
}

fn sock_latency(url: &str, size: usize) -> Duration {
    let rep = Socket::rep0().unwrap();
    rep.listen(url).unwrap();
    let req = Socket::req0().unwrap();
    req.dial(url).unwrap();
    let n = rounds(size);
    let server = std::thread::spawn(move || {
        for _ in 0..n + 100 {
            let m = rep.recv().unwrap();
            rep.send(m).unwrap();
        }
    });
    let body = vec![7u8; size];
    for _ in 0..100 {
        req.send(&body[..]).unwrap();
        req.recv().unwrap();
    }
    let t = Instant::now();
    for _ in 0..n {
        req.send(&body[..]).unwrap();
        req.recv().unwrap();
    }
    let d = t.elapsed() / n as u32;
    server.join().unwrap();
    d
}

fn sock_throughput(url: &str, size: usize) -> f64 {
    let pull = Socket::pull0().unwrap();
    pull.listen(url).unwrap();
    let push = Socket::push0().unwrap();
    push.dial(url).unwrap();
    let n = stream_count(size);
    let body = Message::from(vec![7u8; size]);
    let sender = std::thread::spawn(move || {
        for _ in 0..n {
            push.send(body.clone()).unwrap();
        }
        push
    });
    pull.recv().unwrap();
    let t = Instant::now();
    for _ in 1..n {
        pull.recv().unwrap();
    }
    let rate = (n - 1) as f64 / t.elapsed().as_secs_f64();
    drop(sender.join().unwrap());
    rate
}

fn raw_pair(kind: &str) -> (Box<dyn ReadWrite>, Box<dyn ReadWrite>) {
    match kind {
        "tcp" => {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (b, _) = l.accept().unwrap();
            a.set_nodelay(true).unwrap();
            b.set_nodelay(true).unwrap();
            (Box::new(a), Box::new(b))
        }
        _ => {
            let p = std::env::temp_dir().join(format!("np-raw-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&p);
            let l = UnixListener::bind(&p).unwrap();
            let a = UnixStream::connect(&p).unwrap();
            let (b, _) = l.accept().unwrap();
            let _ = std::fs::remove_file(&p);
            (Box::new(a), Box::new(b))
        }
    }
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

fn raw_send(s: &mut dyn ReadWrite, body: &[u8]) {
    let mut frame = Vec::with_capacity(8 + body.len());
    frame.extend_from_slice(&(body.len() as u64).to_be_bytes());
    frame.extend_from_slice(body);
    s.write_all(&frame).unwrap();
}

fn raw_recv(s: &mut dyn ReadWrite, buf: &mut Vec<u8>) {
    let mut len = [0u8; 8];
    s.read_exact(&mut len).unwrap();
    buf.resize(u64::from_be_bytes(len) as usize, 0);
    s.read_exact(buf).unwrap();
}

fn raw_latency(kind: &str, size: usize) -> Duration {
    let (mut a, mut b) = raw_pair(kind);
    let n = rounds(size);
    let server = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for _ in 0..n + 100 {
            raw_recv(&mut *b, &mut buf);
            raw_send(&mut *b, &buf);
        }
    });
    let body = vec![7u8; size];
    let mut buf = Vec::new();
    for _ in 0..100 {
        raw_send(&mut *a, &body);
        raw_recv(&mut *a, &mut buf);
    }
    let t = Instant::now();
    for _ in 0..n {
        raw_send(&mut *a, &body);
        raw_recv(&mut *a, &mut buf);
    }
    let d = t.elapsed() / n as u32;
    server.join().unwrap();
    d
}

fn raw_throughput(kind: &str, size: usize) -> f64 {
    let (mut a, mut b) = raw_pair(kind);
    let n = stream_count(size);
    let sender = std::thread::spawn(move || {
        let body = vec![7u8; size];
        for _ in 0..n {
            raw_send(&mut *a, &body);
        }
    });
    let mut buf = Vec::new();
    raw_recv(&mut *b, &mut buf);
    let t = Instant::now();
    for _ in 1..n {
        raw_recv(&mut *b, &mut buf);
    }
    let rate = (n - 1) as f64 / t.elapsed().as_secs_f64();
    sender.join().unwrap();
    rate
}

fn main() {
    println!("| transport | size | round trip (us) | throughput (msg/s) | throughput (MB/s) |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, size: usize, lat: Duration, rate: f64| {
        println!(
            "| {name} | {size} | {:.1} | {:.0} | {:.1} |",
            lat.as_secs_f64() * 1e6,
            rate,
            rate * size as f64 / 1e6
        );
    };
    for size in SIZES {
        let ipc_path = std::env::temp_dir().join(format!("np-bench-{}.sock", std::process::id()));
        let urls = [
            ("nanoport inproc", "inproc://bench".to_string()),
            ("nanoport ipc", format!("ipc://{}", ipc_path.display())),
            ("nanoport tcp", "tcp://127.0.0.1:0".to_string()),
        ];
        for (name, url) in urls {
            let url = if url.ends_with(":0") { free_tcp() } else { url };
            let lat = sock_latency(&url, size);
            let url2 = if url.starts_with("tcp") {
                free_tcp()
            } else {
                url.replace("bench", "bench2")
            };
            let rate = sock_throughput(&url2, size);
            row(name, size, lat, rate);
        }
        for kind in ["unix", "tcp"] {
            row(
                &format!("raw blocking {kind}"),
                size,
                raw_latency(kind, size),
                raw_throughput(kind, size),
            );
        }
    }
}

fn free_tcp() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port())
}
