//! The `nanoport` command line.
//!
//! * `nanoport cat ...`: nngcat's flags and behaviour (see `nanoport cat --help`).
//! * `nanoport perf local_lat|remote_lat|local_thr|remote_thr URL SIZE COUNT`: NNG's perf
//!   tools; `nanoport perf` alone runs a built-in tour.

#![forbid(unsafe_code)]

mod cat;
mod perf;

use std::ffi::OsString;
use std::io::Write;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "nanoport",
    version,
    about = "Scalability Protocols from the command line (nngcat and NNG's perf tools)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send and receive messages: nngcat's flags and behaviour (`nanoport cat --help`)
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Cat {
        /// nngcat's arguments
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<OsString>,
    },
    /// Measure latency and throughput as NNG's perf tools; with no arguments, a built-in tour
    Perf(PerfArgs),
}

#[derive(Args)]
struct PerfArgs {
    /// The role, as NNG's perf tool of that name (uses pair1 sockets)
    #[arg(value_enum, requires_all = ["url", "size", "count"])]
    mode: Option<Mode>,
    /// Address to listen on (local_*) or dial (remote_*)
    url: Option<String>,
    /// Message size in bytes
    size: Option<String>,
    /// Round trips (latency) or messages (throughput)
    count: Option<String>,
    /// Make every tour measurement tiny (for tests)
    #[arg(long, hide = true)]
    quick: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// Listen and echo COUNT messages (NNG's local_lat)
    #[value(name = "local_lat", alias = "latency_server")]
    LocalLat,
    /// Dial and time COUNT round trips (NNG's remote_lat)
    #[value(name = "remote_lat", alias = "latency_client")]
    RemoteLat,
    /// Listen and time the receipt of COUNT messages (NNG's local_thr)
    #[value(name = "local_thr", alias = "throughput_server")]
    LocalThr,
    /// Dial and send COUNT messages (NNG's remote_thr)
    #[value(name = "remote_thr", alias = "throughput_client")]
    RemoteThr,
}

#[cfg(unix)]
fn to_bytes(s: OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStringExt;
    s.into_vec()
}

#[cfg(not(unix))]
fn to_bytes(s: OsString) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

fn perf_main(a: PerfArgs) -> i32 {
    let Some(mode) = a.mode else {
        return perf::tour::run(a.quick || std::env::var_os("NANOPORT_PERF_QUICK").is_some());
    };
    // clap enforces that all three are present with a mode.
    let (url, size, count) = (
        a.url.unwrap_or_default(),
        a.size.unwrap_or_default(),
        a.count.unwrap_or_default(),
    );
    let what = if matches!(mode, Mode::LocalLat | Mode::RemoteLat) {
        "round-trips"
    } else {
        "count"
    };
    let parsed = perf::report::parse_int(&size, "message size")
        .and_then(|s| perf::report::parse_int(&count, what).map(|c| (s as usize, c)));
    let result = parsed.and_then(|(size, count)| match mode {
        Mode::LocalLat => perf::local_lat(&url, size, count).map(|()| String::new()),
        Mode::RemoteLat => perf::remote_lat(&url, size, count)
            .map(|t| perf::report::latency_report(t, size, count)),
        Mode::LocalThr => perf::local_thr(&url, size, count)
            .map(|t| perf::report::throughput_report(t, size, count)),
        Mode::RemoteThr => perf::remote_thr(&url, size, count).map(|()| String::new()),
    });
    match result {
        Ok(out) => {
            print!("{out}");
            let _ = std::io::stdout().flush();
            0
        }
        Err(e) => {
            eprintln!("nanoport perf: {e}");
            2
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Cat { args } => {
            let argv: Vec<Vec<u8>> = args.into_iter().map(to_bytes).collect();
            cat::main(&argv)
        }
        Cmd::Perf(a) => perf_main(a),
    };
    let _ = std::io::stdout().flush();
    // Exit at once, as nngcat does: no lingering on open sockets.
    std::process::exit(code);
}
