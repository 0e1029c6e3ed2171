//! Shared pieces of the benchmarks in `benches/` and `examples/`.
//!
//! * [`Transport`]: fresh addresses per measurement, so repeated runs (and other people's
//!   tests on the same machine) never collide on a path or port.
//! * [`raw`]: the floor: blocking `std` sockets with the same 8-byte length framing, so
//!   the cost of the kernel alone can be read next to a messaging library.
//! * [`handoff`]: the in-process floor: two threads handing a body over through a mutex
//!   and a condition variable, what the inproc transport competes with.
//! * [`np`]: nanoport contenders; `nng` (feature `libnng`): the same shapes on libnng;
//!   `libzmq` (feature `libzmq`): on libzmq.
//! * [`perf_tool`]: the command line of the two-process perf tools (NNG perf's roles).
//! * [`rss_kib`], [`raise_nofile`]: the process measurements the scale example needs.
//!
//! Every contender implements [`RoundTrip`] (one request outstanding) and [`Stream`]
//! (one sender thread, counted at the receiver), so the criterion groups in
//! `benches/vs_libnng.rs` treat them alike.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub mod handoff;
#[cfg(feature = "libzmq")]
pub mod libzmq;
#[cfg(feature = "libnng")]
pub mod nng;
#[cfg(feature = "libnng-system")]
pub mod nng15;
pub mod np;
#[cfg(all(test, feature = "libnng"))]
mod option_table;
pub mod perf_tool;
pub mod raw;
pub mod secure;

/// One request/reply exchange with a single request outstanding.
pub trait RoundTrip {
    /// Sends one message of the configured size and waits for the echo.
    fn round_trip(&mut self);
}

/// One-way streaming: a sender thread pushes messages, the caller receives them.
pub trait Stream {
    /// Sends and receives `n` messages; returns the time from the start of sending to the
    /// receipt of the last one.
    fn stream(&mut self, n: u64) -> Duration;
}

/// How a push/pull contender is set up.
///
/// Every push/pull comparison is given both ways, so that neither hides the other: a
/// library tuned alike can look better or worse than what a user gets without touching
/// an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tuning {
    /// No option set on either socket: each library as a new user meets it (nanoport's
    /// push0 send buffer 0, libnng's 0, libzmq's send and receive high-water marks 1,000).
    Defaults,
    /// Tuned alike: the pushing socket's send buffer (libzmq: send high-water mark) is
    /// [`np::push_send_buffer`] messages on every library.
    Alike,
}

impl Tuning {
    /// Both, in report order.
    pub const BOTH: [Tuning; 2] = [Tuning::Defaults, Tuning::Alike];

    /// Short name used in benchmark ids and reports.
    pub fn name(self) -> &'static str {
        match self {
            Tuning::Defaults => "defaults",
            Tuning::Alike => "alike",
        }
    }
}

/// The three transports every library here speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// In-process (no kernel socket at all).
    Inproc,
    /// Unix-domain stream socket.
    Ipc,
    /// TCP over loopback.
    Tcp,
}

impl Transport {
    /// All three, in report order.
    pub const ALL: [Transport; 3] = [Transport::Inproc, Transport::Ipc, Transport::Tcp];

    /// Short name used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Inproc => "inproc",
            Transport::Ipc => "ipc",
            Transport::Tcp => "tcp",
        }
    }

    /// A fresh URL to listen on. TCP uses port 0: the caller asks the listener for the
    /// bound port and builds the dial URL with [`Transport::dial_url`].
    pub fn listen_url(self) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        match self {
            Transport::Inproc => format!("inproc://npbench-{pid}-{n}"),
            Transport::Ipc => format!("ipc://{}", ipc_path(&format!("{pid}-{n}")).display()),
            Transport::Tcp => "tcp://127.0.0.1:0".to_string(),
        }
    }

    /// The URL to dial, given the listen URL and (for TCP) the bound port.
    pub fn dial_url(self, listen_url: &str, port: Option<u16>) -> String {
        match (self, port) {
            (Transport::Tcp, Some(p)) => format!("tcp://127.0.0.1:{p}"),
            _ => listen_url.to_string(),
        }
    }
}

/// A path for a Unix socket in the temp dir, unique per `tag`.
pub fn ipc_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("npbench-{tag}.sock"))
}

/// Removes the socket file behind an `ipc://` URL (no-op for other URLs).
pub fn remove_ipc_file(url: &str) {
    if let Some(p) = url.strip_prefix("ipc://") {
        let _ = std::fs::remove_file(p);
    }
}

/// Process CPU time (user + system, all threads) from /proc/self/stat, in seconds; 0 if
/// unknown. Ticks are taken as 1/100 s (`USER_HZ` on Linux).
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the parenthesised command name, utime and stime are fields 14 and 15, i.e.
    // indexes 11 and 12 (the state is index 0).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The process's resident set size in KiB (`VmRSS` in /proc/self/status), 0 if unknown.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Raises `RLIMIT_NOFILE` to at least `want` if it can: the soft limit up to the hard one,
/// and the hard limit too when the process may (root, or `CAP_SYS_RESOURCE`). Returns the
/// soft limit now in force, which may still be below `want`.
///
/// # Errors
/// The `getrlimit` error, as text.
pub fn raise_nofile(want: u64) -> Result<u64, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    let both = libc::rlimit {
        rlim_cur: want,
        rlim_max: want.max(lim.rlim_max),
    };
    // SAFETY: `both` is a valid rlimit; setrlimit only reads it.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &both) } == 0 {
        return Ok(want);
    }
    // Not allowed to raise the hard limit: go as far as it allows.
    let soft = libc::rlimit {
        rlim_cur: want.min(lim.rlim_max),
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) } == 0 {
        Ok(soft.rlim_cur)
    } else {
        Ok(lim.rlim_cur)
    }
}
