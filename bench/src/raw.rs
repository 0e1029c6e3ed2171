//! The raw-socket floor: blocking `std` streams, an 8-byte big-endian length before each
//! body, one thread per side. No library, no event loop: what the kernel costs alone for
//! the same bytes on the wire as an SP message (whose TCP/IPC framing is also an 8-byte
//! length; IPC adds one flag byte, which we ignore).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{ipc_path, RoundTrip, Stream, Transport};

/// A connected blocking stream of either kind.
pub trait Conn: Read + Write + Send + 'static {}
impl<T: Read + Write + Send + 'static> Conn for T {}

/// A connected pair of blocking streams over `t` (`Ipc` or `Tcp`; `Inproc` has no raw
/// equivalent and panics). TCP has Nagle off on both ends, as SP transports do.
pub fn pair(t: Transport) -> (Box<dyn Conn>, Box<dyn Conn>) {
    match t {
        Transport::Tcp => {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            let a = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
            let (b, _) = l.accept().expect("accept");
            a.set_nodelay(true).expect("nodelay");
            b.set_nodelay(true).expect("nodelay");
            (Box::new(a), Box::new(b))
        }
        Transport::Ipc => {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = ipc_path(&format!("raw-{}-{n}", std::process::id()));
            let _ = std::fs::remove_file(&p);
            let l = UnixListener::bind(&p).expect("bind");
            let a = UnixStream::connect(&p).expect("connect");
            let (b, _) = l.accept().expect("accept");
            let _ = std::fs::remove_file(&p);
            (Box::new(a), Box::new(b))
        }
        Transport::Inproc => panic!("no raw inproc floor"),
    }
}

/// Builds the frame for `body` into `frame`: the 8-byte length, then a copy of the body.
pub fn build_frame(frame: &mut Vec<u8>, body: &[u8]) {
    frame.clear();
    frame.extend_from_slice(&(body.len() as u64).to_be_bytes());
    frame.extend_from_slice(body);
}

/// Writes one frame (length + body) with a single `write` where the kernel takes it all.
/// `frame` is scratch space reused between calls.
pub fn send_frame(s: &mut dyn Conn, frame: &mut Vec<u8>, body: &[u8]) -> std::io::Result<()> {
    build_frame(frame, body);
    s.write_all(frame)
}

/// Writes `count` frames of `body`, each one `depth` frames after building it: frame `i`
/// is built into slot `i % (depth + 1)` of a ring and written once frame `i + depth` is
/// built. `depth` 0 writes each frame as soon as it is built.
///
/// Why: a messaging socket with a full send buffer of `depth` messages writes each
/// message `depth` messages after its copy was made; at 64 KiB and a depth of 128 that is
/// 8 MiB later, out of L2. This is the raw floor with the same distance, so the cost of
/// the buffering can be told from the cost of the library.
pub fn send_delayed(
    s: &mut dyn Conn,
    body: &[u8],
    count: usize,
    depth: usize,
) -> std::io::Result<()> {
    let mut ring: Vec<Vec<u8>> = (0..=depth)
        .map(|_| Vec::with_capacity(body.len() + 8))
        .collect();
    for i in 0..count {
        build_frame(&mut ring[i % (depth + 1)], body);
        if i >= depth {
            s.write_all(&ring[(i - depth) % (depth + 1)])?;
        }
    }
    for i in count.saturating_sub(depth)..count {
        s.write_all(&ring[i % (depth + 1)])?;
    }
    Ok(())
}

/// Reads one frame into `buf` (resized to the body).
pub fn recv_frame(s: &mut dyn Conn, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 8];
    s.read_exact(&mut len)?;
    buf.resize(u64::from_be_bytes(len) as usize, 0);
    s.read_exact(buf)
}

/// Client side of a raw ping-pong; an echo thread serves the other end until EOF.
pub struct RawRoundTrip {
    client: Option<Box<dyn Conn>>,
    echo: Option<JoinHandle<()>>,
    body: Vec<u8>,
    frame: Vec<u8>,
    buf: Vec<u8>,
}

impl RawRoundTrip {
    /// A connected pair over `t` with an echo thread on one end.
    pub fn new(t: Transport, size: usize) -> Self {
        let (client, mut server) = pair(t);
        let echo = std::thread::spawn(move || {
            let (mut frame, mut buf) = (Vec::new(), Vec::new());
            while recv_frame(&mut *server, &mut buf).is_ok() {
                if send_frame(&mut *server, &mut frame, &buf).is_err() {
                    break;
                }
            }
        });
        RawRoundTrip {
            client: Some(client),
            echo: Some(echo),
            body: vec![7u8; size],
            frame: Vec::with_capacity(size + 8),
            buf: Vec::with_capacity(size),
        }
    }
}

impl RoundTrip for RawRoundTrip {
    fn round_trip(&mut self) {
        let c = self.client.as_mut().expect("open");
        send_frame(&mut **c, &mut self.frame, &self.body).expect("send");
        recv_frame(&mut **c, &mut self.buf).expect("recv");
    }
}

impl Drop for RawRoundTrip {
    fn drop(&mut self) {
        // EOF ends the echo thread.
        self.client = None;
        if let Some(h) = self.echo.take() {
            let _ = h.join();
        }
    }
}

/// Raw one-way streaming: a scoped sender thread per call writes `n` frames.
pub struct RawStream {
    tx: Box<dyn Conn>,
    rx: Box<dyn Conn>,
    size: usize,
    depth: usize,
    buf: Vec<u8>,
}

impl RawStream {
    /// A connected pair over `t`.
    pub fn new(t: Transport, size: usize) -> Self {
        RawStream::with_send_depth(t, size, 0)
    }

    /// A connected pair over `t` whose sender writes each frame `depth` frames after
    /// building it ([`send_delayed`]).
    pub fn with_send_depth(t: Transport, size: usize, depth: usize) -> Self {
        let (tx, rx) = pair(t);
        RawStream {
            tx,
            rx,
            size,
            depth,
            buf: Vec::with_capacity(size),
        }
    }
}

impl Stream for RawStream {
    fn stream(&mut self, n: u64) -> Duration {
        let (size, depth) = (self.size, self.depth);
        let tx = &mut self.tx;
        let (rx, buf) = (&mut self.rx, &mut self.buf);
        let start = Instant::now();
        std::thread::scope(|s| {
            s.spawn(move || {
                let body = vec![7u8; size];
                send_delayed(&mut **tx, &body, n as usize, depth).expect("send");
            });
            for _ in 0..n {
                recv_frame(&mut **rx, buf).expect("recv");
            }
            start.elapsed()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_delayed_writes_exactly_count_frames_whatever_the_depth() {
        for (count, depth) in [(10, 0), (10, 3), (2, 3), (0, 5), (7, 7)] {
            let (mut a, mut b) = pair(Transport::Ipc);
            send_delayed(&mut *a, b"frame", count, depth).unwrap();
            drop(a);
            let mut buf = Vec::new();
            let mut got = 0;
            while recv_frame(&mut *b, &mut buf).is_ok() {
                assert_eq!(buf, b"frame");
                got += 1;
            }
            assert_eq!(got, count, "count {count}, depth {depth}");
        }
    }
}
