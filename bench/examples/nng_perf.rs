//! libnng's perf tools (`src/tools/perf/perf.c` in NNG 2.0.0), on the vendored NNG 2.0.0,
//! with the same roles, pair1 sockets, synchronisation messages and output as
//! `nanoport perf`, so two-process numbers can be taken in all four combinations
//! (nanoport or libnng on either side):
//!
//! ```text
//! cargo build --release -p nanoport-bench --features libnng --example nng_perf
//! B=$CARGO_TARGET_DIR/release/examples/nng_perf
//! $B local_lat ipc:///tmp/lat.sock 64 20000 &  target/release/nanoport perf remote_lat ipc:///tmp/lat.sock 64 20000
//! ```
//!
//! Modes: `local_lat|remote_lat|local_thr|remote_thr URL SIZE COUNT`. As in perf.c, the
//! listening side of a latency run and of a throughput run pause briefly before closing so
//! the last message leaves the socket (NNG has no linger), and `remote_lat` pauses 100 ms
//! after dialing before timing.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use nanoport_bench::nng::{NngMsg, NngSocket, Proto};
use nanoport_bench::perf_tool::{perf_main, PerfResult, Roles};
use nng_sys::{NNG_OPT_RECVBUF, NNG_OPT_RECVTIMEO, NNG_OPT_SENDBUF};

fn e(what: &'static str) -> impl Fn(nanoport_bench::nng::NngError) -> String {
    move |err| format!("{what}: {err}")
}

fn pair1() -> PerfResult<NngSocket> {
    NngSocket::open(Proto::Pair1).map_err(e("nng_socket"))
}

fn local_lat(url: &str, size: usize, trips: u32) -> PerfResult<()> {
    let s = pair1()?;
    s.listen(url).map_err(e("nng_listen"))?;
    for _ in 0..trips {
        let m = s.recv().map_err(e("nng_recvmsg"))?;
        if m.len() != size {
            return Err(format!("wrong message size: {} != {}", m.len(), size));
        }
        s.send_msg(m).map_err(e("nng_sendmsg"))?;
    }
    // As perf.c: "wait a bit for things to drain... linger should do this".
    std::thread::sleep(Duration::from_millis(100));
    s.close();
    Ok(())
}

fn remote_lat(url: &str, size: usize, trips: u32) -> PerfResult<Duration> {
    let s = pair1()?;
    s.dial(url).map_err(e("nng_dial"))?;
    std::thread::sleep(Duration::from_millis(100)); // as perf.c
    let mut msg = NngMsg::alloc(size).map_err(e("nng_msg_alloc"))?;
    let start = Instant::now();
    for _ in 0..trips {
        s.send_msg(msg).map_err(e("nng_sendmsg"))?;
        msg = s.recv().map_err(e("nng_recvmsg"))?;
    }
    let total = start.elapsed();
    drop(msg);
    s.close();
    Ok(total)
}

fn local_thr(url: &str, size: usize, count: u32) -> PerfResult<Duration> {
    let s = pair1()?;
    s.set_int(NNG_OPT_RECVBUF, 128)
        .map_err(e("nng_socket_set(nng_opt_recvbuf)"))?;
    s.listen(url).map_err(e("nng_listen"))?;
    drop(s.recv().map_err(e("nng_recvmsg"))?);
    let start = Instant::now();
    for _ in 0..count {
        let m = s.recv().map_err(e("nng_recvmsg"))?;
        if m.len() != size {
            return Err(format!("wrong message size: {} != {}", m.len(), size));
        }
    }
    let total = start.elapsed();
    let _ = s.send(b"");
    std::thread::sleep(Duration::from_millis(200)); // as perf.c
    s.close();
    Ok(total)
}

fn remote_thr(url: &str, size: usize, count: u32) -> PerfResult<()> {
    let s = pair1()?;
    s.set_int(NNG_OPT_SENDBUF, 128)
        .map_err(e("nng_socket_set(nng_opt_sendbuf)"))?;
    s.set_ms(NNG_OPT_RECVTIMEO, 5000)
        .map_err(e("nng_socket_set(nng_opt_recvtimeo)"))?;
    s.dial(url).map_err(e("nng_dial"))?;
    s.send_msg(NngMsg::alloc(0).map_err(e("nng_msg_alloc"))?)
        .map_err(e("nng_sendmsg"))?;
    // perf.c sends count + 1 messages after the empty start message.
    for _ in 0..=count {
        let m = NngMsg::alloc(size).map_err(e("nng_msg_alloc"))?;
        s.send_msg(m).map_err(e("nng_sendmsg"))?;
    }
    let _ = s.recv();
    s.close();
    Ok(())
}

fn main() -> ExitCode {
    perf_main(
        "nng_perf",
        &Roles {
            local_lat,
            remote_lat,
            local_thr,
            remote_thr,
        },
    )
}
