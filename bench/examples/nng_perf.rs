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
use nng_sys::{NNG_OPT_RECVBUF, NNG_OPT_RECVTIMEO, NNG_OPT_SENDBUF};

type PerfResult<T> = Result<T, String>;

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

/// NNG perf's `parse_int`: a decimal integer in `0..=1_000_000_000`.
fn parse_int(arg: &str, what: &str) -> PerfResult<u32> {
    match arg.parse::<i64>() {
        Ok(v) if (0..=1_000_000_000).contains(&v) => Ok(v as u32),
        _ => Err(format!("Invalid {what}")),
    }
}

fn run(args: &[String]) -> PerfResult<String> {
    let [mode, url, size, count] = args else {
        return Err(
            "Usage: nng_perf local_lat|remote_lat|local_thr|remote_thr URL SIZE COUNT".into(),
        );
    };
    let size = parse_int(size, "message size")? as usize;
    let lat = mode.ends_with("_lat");
    let count = parse_int(count, if lat { "round trips" } else { "count" })?;
    match mode.as_str() {
        "local_lat" => local_lat(url, size, count).map(|()| String::new()),
        "remote_lat" => remote_lat(url, size, count).map(|t| {
            format!(
                "total time: {:.3} [s]\nmessage size: {} [B]\nround trip count: {}\naverage latency: {:.3} [us]\n",
                t.as_secs_f64(),
                size,
                count,
                t.as_secs_f64() * 1e6 / (2.0 * f64::from(count.max(1)))
            )
        }),
        "local_thr" => local_thr(url, size, count).map(|t| {
            let msgs = f64::from(count) / t.as_secs_f64().max(f64::MIN_POSITIVE);
            format!(
                "total time: {:.3} [s]\nmessage size: {} [B]\nmessage count: {}\nthroughput: {:.0} [msg/s]\nthroughput: {:.3} [Mb/s]\n",
                t.as_secs_f64(),
                size,
                count,
                msgs,
                msgs * 8.0 * size as f64 / (1024.0 * 1024.0)
            )
        }),
        "remote_thr" => remote_thr(url, size, count).map(|()| String::new()),
        other => Err(format!("unknown mode {other}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("nng_perf: {err}");
            ExitCode::from(2)
        }
    }
}
