//! The raw socket floor across two processes: NNG's perf roles (`local_lat`, `remote_lat`,
//! `local_thr`, `remote_thr`) over plain blocking sockets, with 8-byte length-prefixed
//! frames and no messaging library, printing what `nanoport perf` and `nng_perf` print.
//! `bench/scripts/twoproc.sh` runs it beside them, so a two-process figure has a floor.
//!
//! ```text
//! cargo build --release -p nanoport-bench --example raw_perf
//! B=target/release/examples/raw_perf
//! $B local_thr ipc:///tmp/thr.sock 65536 20000 &  $B remote_thr ipc:///tmp/thr.sock 65536 20000
//! ```
//!
//! Each side makes one copy per message in user space, as the libraries do (the sender
//! builds prefix and body in one reused buffer and writes it with one `write`; the
//! receiver reads the prefix, then the body into one reused buffer). As in perf.c, the
//! throughput sender sends an empty start frame and then COUNT + 1 frames; the receiver
//! times COUNT frames after the start frame and answers with an empty frame when done.
//!
//! `RAW_SEND_DEPTH=N` makes the throughput sender write each frame N frames after it built
//! it, the distance a full N-message send buffer puts between a library's copy and its
//! write (see `send_depth`).

use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nanoport_bench::perf_tool::{perf_main, PerfResult, Roles};
use nanoport_bench::raw::{recv_frame, send_delayed, send_frame, Conn};

/// `ipc:///path` or `tcp://host:port`.
enum Addr {
    Ipc(String),
    Tcp(String),
}

fn parse_url(url: &str) -> PerfResult<Addr> {
    if let Some(p) = url.strip_prefix("ipc://") {
        Ok(Addr::Ipc(p.to_string()))
    } else if let Some(a) = url.strip_prefix("tcp://") {
        Ok(Addr::Tcp(a.to_string()))
    } else {
        Err(format!("unsupported url {url} (ipc:// or tcp://)"))
    }
}

fn accept(url: &str) -> PerfResult<Box<dyn Conn>> {
    match parse_url(url)? {
        Addr::Ipc(p) => {
            let _ = std::fs::remove_file(&p);
            let l = UnixListener::bind(&p).map_err(|e| format!("bind {p}: {e}"))?;
            let (s, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
            let _ = std::fs::remove_file(&p);
            Ok(Box::new(s))
        }
        Addr::Tcp(a) => {
            let l = TcpListener::bind(&a).map_err(|e| format!("bind {a}: {e}"))?;
            let (s, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
            s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
            Ok(Box::new(s))
        }
    }
}

fn connect(url: &str) -> PerfResult<Box<dyn Conn>> {
    match parse_url(url)? {
        Addr::Ipc(p) => Ok(Box::new(
            UnixStream::connect(&p).map_err(|e| format!("connect {p}: {e}"))?,
        )),
        Addr::Tcp(a) => {
            let s = TcpStream::connect(&a).map_err(|e| format!("connect {a}: {e}"))?;
            s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| format!("timeout: {e}"))?;
            Ok(Box::new(s))
        }
    }
}

fn send(s: &mut dyn Conn, frame: &mut Vec<u8>, body: &[u8]) -> PerfResult<()> {
    send_frame(s, frame, body).map_err(|e| format!("write: {e}"))
}

/// Reads one frame into `buf` and returns its length.
fn recv(s: &mut dyn Conn, buf: &mut Vec<u8>) -> PerfResult<usize> {
    recv_frame(s, buf).map_err(|e| format!("read: {e}"))?;
    Ok(buf.len())
}

fn local_lat(url: &str, size: usize, trips: u32) -> PerfResult<()> {
    let mut s = accept(url)?;
    let (mut buf, mut frame) = (Vec::new(), Vec::new());
    for _ in 0..trips {
        let n = recv(&mut *s, &mut buf)?;
        if n != size {
            return Err(format!("wrong message size: {n} != {size}"));
        }
        send(&mut *s, &mut frame, &buf)?;
    }
    Ok(())
}

fn remote_lat(url: &str, size: usize, trips: u32) -> PerfResult<Duration> {
    let mut s = connect(url)?;
    std::thread::sleep(Duration::from_millis(100)); // as perf.c
    let body = vec![0u8; size];
    let (mut buf, mut frame) = (Vec::new(), Vec::new());
    let start = Instant::now();
    for _ in 0..trips {
        send(&mut *s, &mut frame, &body)?;
        recv(&mut *s, &mut buf)?;
    }
    Ok(start.elapsed())
}

fn local_thr(url: &str, size: usize, count: u32) -> PerfResult<Duration> {
    let mut s = accept(url)?;
    let (mut buf, mut frame) = (Vec::new(), Vec::new());
    recv(&mut *s, &mut buf)?; // the start frame
    let start = Instant::now();
    for _ in 0..count {
        let n = recv(&mut *s, &mut buf)?;
        if n != size {
            return Err(format!("wrong message size: {n} != {size}"));
        }
    }
    let total = start.elapsed();
    recv(&mut *s, &mut buf)?; // the extra frame perf.c's sender sends
    send(&mut *s, &mut frame, b"")?;
    Ok(total)
}

/// `RAW_SEND_DEPTH` (default 0): how many frames after building it the throughput sender
/// writes each one (`send_delayed`). The libraries' perf tools give the sending socket a
/// 128-message send buffer (NNG's setting), which stays full when the receiver cannot keep
/// up, as on one shared CPU; `RAW_SEND_DEPTH=128` gives the raw floor the same distance.
fn send_depth() -> PerfResult<usize> {
    match std::env::var("RAW_SEND_DEPTH") {
        Err(_) => Ok(0),
        Ok(v) => v
            .parse()
            .ok()
            .filter(|&d| d <= 8192)
            .ok_or_else(|| format!("RAW_SEND_DEPTH must be 0..=8192, not {v:?}")),
    }
}

fn remote_thr(url: &str, size: usize, count: u32) -> PerfResult<()> {
    let depth = send_depth()?;
    let mut s = connect(url)?;
    let body = vec![0u8; size];
    let (mut buf, mut frame) = (Vec::new(), Vec::new());
    send(&mut *s, &mut frame, b"")?;
    // As perf.c: COUNT + 1 frames.
    send_delayed(&mut *s, &body, count as usize + 1, depth).map_err(|e| format!("write: {e}"))?;
    recv(&mut *s, &mut buf)?;
    Ok(())
}

fn main() -> ExitCode {
    perf_main(
        "raw_perf",
        &Roles {
            local_lat,
            remote_lat,
            local_thr,
            remote_thr,
        },
    )
}
