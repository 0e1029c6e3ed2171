//! Shared helpers for the integration tests: addresses, and real NNG peers (nngcat).
#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh inproc URL.
pub fn inproc(tag: &str) -> String {
    format!(
        "inproc://{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh ipc URL in the temp dir.
pub fn ipc(tag: &str) -> String {
    let p = std::env::temp_dir().join(format!(
        "np-{tag}-{}-{}.sock",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&p);
    format!("ipc://{}", p.display())
}

/// A TCP URL on a port that was free a moment ago, never the same one twice in this
/// process, and below the kernel's ephemeral range (32768 and up by default): a port
/// picked by binding port 0 comes from that range, where any outgoing connection on the
/// machine may take it before the test listens on it.
pub fn tcp() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = (std::process::id() as usize).wrapping_mul(7919) % 22_000;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + (base + n) % 22_000;
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return format!("tcp://127.0.0.1:{port}");
        }
    }
}

/// All three wire-level transports plus inproc, for tests that run over each.
pub fn all_urls(tag: &str) -> Vec<String> {
    vec![inproc(tag), ipc(tag), tcp()]
}

/// Whether nngcat is on this machine. Without it, interop tests skip loudly, unless
/// `NANOPORT_REQUIRE_INTEROP=1` (CI), where they fail.
pub fn nngcat_or_skip(test: &str) -> bool {
    let found = Command::new("nngcat")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if found {
        return true;
    }
    if std::env::var("NANOPORT_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!(
            "{test}: nngcat not found but NANOPORT_REQUIRE_INTEROP=1 (apt-get install nng-utils)"
        );
    }
    eprintln!("SKIPPED {test}: nngcat not found (apt-get install nng-utils); interop NOT tested");
    false
}

/// An nngcat child process, killed (by its PID) when dropped.
pub struct NngCat {
    child: Option<Child>,
    /// The ipc paths it listens on: a killed nngcat cannot unlink them, so the drop does.
    listened: Vec<String>,
}

/// The file paths of the `ipc://` URLs that follow `--listen` in nngcat's `args`.
fn ipc_listen_paths(args: &[&str]) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == "--listen")
        .filter_map(|w| w[1].strip_prefix("ipc://"))
        .map(str::to_string)
        .collect()
}

impl NngCat {
    pub fn spawn(args: &[&str]) -> NngCat {
        let child = Command::new("nngcat")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nngcat");
        NngCat {
            child: Some(child),
            listened: ipc_listen_paths(args),
        }
    }

    /// nngcat as a req0 client that dials `url`, sends `data` once, prints the reply
    /// (`-Q`) and exits.
    ///
    /// nngcat 1.5.2 sets its receive timeout to `interval - elapsed`: without
    /// `--interval` that is -1 - elapsed ms, which NNG rejects ("Cannot set recv timeout:
    /// Invalid argument") once a millisecond has passed, so a plain `--count 1` req fails
    /// at random. With `--interval 2` it waits up to 2 s for the reply.
    pub fn req_once(url: &str, data: &str) -> NngCat {
        NngCat::spawn(&[
            "--req0",
            "--dial",
            url,
            "--data",
            data,
            "--interval",
            "2",
            "--count",
            "1",
            "-Q",
        ])
    }

    /// Waits (bounded) for the first line nngcat prints, and returns it (without its
    /// newline). Takes the process's stdout: use it on a process whose later output does
    /// not matter.
    pub fn first_line(&mut self, limit: Duration) -> Option<String> {
        use std::io::BufRead;
        let out = self.child.as_mut()?.stdout.take()?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(limit).ok()?;
        (!line.is_empty()).then(|| line.trim_end_matches('\n').to_string())
    }

    /// Sends `data` on `sock` every 50 ms until nngcat exits, then [`finish`]es it (for
    /// fire-and-forget protocols, where a message sent before the peer's pipe is up is
    /// legitimately dropped).
    ///
    /// [`finish`]: NngCat::finish
    pub fn finish_while_sending(
        self,
        sock: &nanoport::Socket,
        data: &str,
        limit: Duration,
    ) -> (bool, String, String) {
        let sock = sock.clone();
        let data = data.to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let t = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let _ = sock.try_send(data.as_str());
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let r = self.finish(limit);
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        r
    }

    /// Waits (bounded) for the process to exit and returns (exit ok, stdout, stderr).
    pub fn finish(mut self, limit: Duration) -> (bool, String, String) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + limit;
        let status = loop {
            match child.try_wait().unwrap() {
                Some(s) => break Some(s),
                None if Instant::now() >= deadline => break None,
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status.is_some_and(|s| s.success()), out, err)
    }
}

impl Drop for NngCat {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for p in &self.listened {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Retries `f` until it returns Some or `limit` passes (for "eventually" conditions that
/// depend on another process connecting).
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A ws URL on a fresh port (as [`tcp`]), with `path`.
pub fn ws(path: &str) -> String {
    tcp().replacen("tcp://", "ws://", 1) + path
}

/// A wss URL on a fresh port, with `path`.
pub fn wss(path: &str) -> String {
    tcp().replacen("tcp://", "wss://", 1) + path
}

/// A tls+tcp URL on a fresh port.
pub fn tls_tcp() -> String {
    tcp().replacen("tcp://", "tls+tcp://", 1)
}
