//! One push/pull stream contender alone, for profilers (`perf record`, callgrind): the
//! process runs nothing else, so every sample is that library's.
//!
//! ```text
//! cargo build --release -p nanoport-bench --features libzmq --example stream_one
//! perf record -g target/release/examples/stream_one nanoport tcp defaults 2000000
//! target/release/examples/stream_one libzmq|nanoport inproc|ipc|tcp defaults|alike [N] [SIZE]
//! ```
//!
//! Prints the rate of one block of `N` messages (default 1,000,000, 64 B) after a
//! warm-up of `N / 10`.

use nanoport_bench::np::NpStream;
use nanoport_bench::{Stream, Transport, Tuning};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let t = match arg(1) {
        "inproc" => Transport::Inproc,
        "ipc" => Transport::Ipc,
        _ => Transport::Tcp,
    };
    let tuning = if arg(2) == "alike" {
        Tuning::Alike
    } else {
        Tuning::Defaults
    };
    let n: u64 = arg(3).parse().unwrap_or(1_000_000);
    let size: usize = arg(4).parse().unwrap_or(64);
    let mut c: Box<dyn Stream> = match arg(0) {
        #[cfg(feature = "libzmq")]
        "libzmq" => Box::new(nanoport_bench::libzmq::ZmqStream::with_tuning(
            t, size, tuning,
        )),
        _ => Box::new(NpStream::with_tuning(t, size, tuning)),
    };
    c.stream((n / 10).max(1));
    let d = c.stream(n);
    println!(
        "{} {} {} {size} B: {:.0} msg/s",
        arg(0),
        t.name(),
        tuning.name(),
        n as f64 / d.as_secs_f64()
    );
}
