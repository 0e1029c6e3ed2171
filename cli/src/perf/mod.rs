//! `nanoport perf`: NNG's perf tools (`src/tools/perf/perf.c`), with the same roles,
//! protocol (pair1), synchronisation messages and printed figures, so either side can run
//! against NNG's `local_lat`/`remote_lat`/`local_thr`/`remote_thr`; and, with no
//! arguments, a built-in tour in one process.

pub mod report;
pub mod tour;

use std::thread::sleep;
use std::time::{Duration, Instant};

use nanoport::{Message, Socket};

/// A fatal perf error: NNG's perf prints it and exits 2.
pub type PerfResult<T> = Result<T, String>;

fn pair1() -> PerfResult<Socket> {
    Socket::pair1().map_err(|e| format!("nng_socket: {e}"))
}

/// `local_lat`: listens, echoes `trips` messages of `size` bytes back.
pub fn local_lat(url: &str, size: usize, trips: u32) -> PerfResult<()> {
    let s = pair1()?;
    let _l = s.listen(url).map_err(|e| format!("nng_listen: {e}"))?;
    for _ in 0..trips {
        let m = s.recv().map_err(|e| format!("nng_recvmsg: {e}"))?;
        if m.len() != size {
            return Err(format!("wrong message size: {} != {}", m.len(), size));
        }
        s.send(m).map_err(|e| format!("nng_sendmsg: {e}"))?;
    }
    // Let the last reply drain.
    sleep(Duration::from_millis(100));
    let _ = s.close();
    Ok(())
}

/// `remote_lat`: dials, times `trips` round trips; returns the total time.
pub fn remote_lat(url: &str, size: usize, trips: u32) -> PerfResult<Duration> {
    let s = pair1()?;
    let _d = s.dial(url).map_err(|e| format!("nng_dial: {e}"))?;
    sleep(Duration::from_millis(100));
    let mut msg = Message::from(vec![0u8; size]);
    let start = Instant::now();
    for _ in 0..trips {
        s.send(msg).map_err(|e| format!("nng_sendmsg: {e}"))?;
        msg = s.recv().map_err(|e| format!("nng_recvmsg: {e}"))?;
    }
    let total = start.elapsed();
    let _ = s.close();
    Ok(total)
}

/// `local_thr`: listens, waits for the empty start message, times the receipt of `count`
/// messages of `size` bytes, then sends an empty message back; returns the time.
pub fn local_thr(url: &str, size: usize, count: u32) -> PerfResult<Duration> {
    let s = pair1()?;
    s.set_recv_buffer(128)
        .map_err(|e| format!("nng_socket_set(nng_opt_recvbuf): {e}"))?;
    let _l = s.listen(url).map_err(|e| format!("nng_listen: {e}"))?;
    s.recv().map_err(|e| format!("nng_recvmsg: {e}"))?;
    let start = Instant::now();
    for _ in 0..count {
        let m = s.recv().map_err(|e| format!("nng_recvmsg: {e}"))?;
        if m.len() != size {
            return Err(format!("wrong message size: {} != {}", m.len(), size));
        }
    }
    let total = start.elapsed();
    let _ = s.send(Message::new());
    sleep(Duration::from_millis(200));
    let _ = s.close();
    Ok(total)
}

/// `remote_thr`: dials, sends an empty start message and `count + 1` messages of `size`
/// bytes (as NNG's does), then waits up to 5 s for the empty completion message.
pub fn remote_thr(url: &str, size: usize, count: u32) -> PerfResult<()> {
    let s = pair1()?;
    s.set_send_buffer(128)
        .map_err(|e| format!("nng_socket_set(nng_opt_sendbuf): {e}"))?;
    s.set_recv_timeout(Duration::from_millis(5000))
        .map_err(|e| format!("nng_socket_set(nng_opt_recvtimeo): {e}"))?;
    let _d = s.dial(url).map_err(|e| format!("nng_dial: {e}"))?;
    s.send(Message::new())
        .map_err(|e| format!("nng_sendmsg: {e}"))?;
    let body = vec![0u8; size];
    for _ in 0..=count {
        s.send(Message::from(&body[..]))
            .map_err(|e| format!("nng_sendmsg: {e}"))?;
    }
    let _ = s.recv();
    let _ = s.close();
    Ok(())
}
