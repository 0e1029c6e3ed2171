//! nanoport contenders: req0/rep0 round trips and push0/pull0 streaming, through the
//! blocking socket API (what an application would write), with the same buffer depths as
//! the libnng contenders in `crate::nng` (feature `libnng`).

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nanoport::Socket;

use crate::{remove_ipc_file, RoundTrip, Stream, Transport, Tuning};

/// `send-buffer` of the pushing socket, in messages; the same value is set on libnng's.
/// 128, as NNG's perf tools set on their throughput sockets.
pub const PUSH_SEND_BUFFER: i32 = 128;

/// The push send-buffer depth the throughput benchmarks use on both libraries:
/// [`PUSH_SEND_BUFFER`], or `NPBENCH_SENDBUF` when set (0 is push0's default). With 64 KiB
/// messages 128 queued messages are 8 MiB, four times this machine's L2 cache, so the
/// copy into the kernel reads cold memory; the raw floor queues nothing in user space.
pub fn push_send_buffer() -> i32 {
    std::env::var("NPBENCH_SENDBUF")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PUSH_SEND_BUFFER)
}

/// Listens on a fresh address for `t`; returns the URL a peer should dial.
fn listen(s: &Socket, t: Transport) -> String {
    let url = t.listen_url();
    let l = s.listen(&url).expect("listen");
    t.dial_url(&url, l.port())
}

/// A req0 client and a rep0 echo thread, connected over `t`.
pub struct NpRoundTrip {
    req: Socket,
    rep: Socket,
    url: String,
    echo: Option<JoinHandle<()>>,
    body: Vec<u8>,
}

impl NpRoundTrip {
    /// Connects a pair over `t`; messages carry `size` bytes.
    pub fn new(t: Transport, size: usize) -> Self {
        let rep = Socket::rep0().expect("rep0");
        let url = listen(&rep, t);
        let req = Socket::req0().expect("req0");
        req.dial(&url).expect("dial");
        let server = rep.clone();
        let echo = std::thread::spawn(move || {
            while let Ok(m) = server.recv() {
                if server.send(m).is_err() {
                    break;
                }
            }
        });
        NpRoundTrip {
            req,
            rep,
            url,
            echo: Some(echo),
            body: vec![7u8; size],
        }
    }
}

impl RoundTrip for NpRoundTrip {
    fn round_trip(&mut self) {
        self.req.send(&self.body[..]).expect("send");
        let m = self.req.recv().expect("recv");
        debug_assert_eq!(m.len(), self.body.len(), "echo size");
    }
}

impl Drop for NpRoundTrip {
    fn drop(&mut self) {
        let _ = self.req.close();
        // Closing wakes the echo thread's recv with `Closed`.
        let _ = self.rep.close();
        if let Some(h) = self.echo.take() {
            let _ = h.join();
        }
        remove_ipc_file(&self.url);
    }
}

/// A push0 socket (sender thread per call) and a pull0 socket (the caller), over `t`.
pub struct NpStream {
    push: Socket,
    pull: Socket,
    url: String,
    body: Vec<u8>,
}

impl NpStream {
    /// Connects a pair over `t`, tuned alike ([`Tuning::Alike`]); messages carry `size`
    /// bytes.
    pub fn new(t: Transport, size: usize) -> Self {
        Self::with_tuning(t, size, Tuning::Alike)
    }

    /// Connects a pair over `t` set up as `tuning` says; messages carry `size` bytes.
    pub fn with_tuning(t: Transport, size: usize, tuning: Tuning) -> Self {
        let pull = Socket::pull0().expect("pull0");
        let url = listen(&pull, t);
        let push = Socket::push0().expect("push0");
        if tuning == Tuning::Alike {
            push.set_send_buffer(push_send_buffer())
                .expect("send buffer");
        }
        push.dial(&url).expect("dial");
        NpStream {
            push,
            pull,
            url,
            body: vec![7u8; size],
        }
    }
}

impl Stream for NpStream {
    fn stream(&mut self, n: u64) -> Duration {
        let (push, body, pull) = (&self.push, &self.body, &self.pull);
        let start = Instant::now();
        std::thread::scope(|s| {
            s.spawn(move || {
                for _ in 0..n {
                    // A copy per message, as libnng's nng_send makes.
                    push.send(&body[..]).expect("send");
                }
            });
            for _ in 0..n {
                let m = pull.recv().expect("recv");
                assert_eq!(m.len(), body.len(), "message size");
            }
            start.elapsed()
        })
    }
}

impl Drop for NpStream {
    fn drop(&mut self) {
        let _ = self.push.close();
        let _ = self.pull.close();
        remove_ipc_file(&self.url);
    }
}
