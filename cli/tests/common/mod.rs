//! Helpers for the command-line tests: child processes killed on drop, free ports, servers
//! that announce when they listen, and finding the real `nngcat`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn nanoport() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nanoport"))
}

/// The real nngcat, if installed. If it is not, says so on stderr (the test is then
/// skipped) unless `NANOPORT_REQUIRE_INTEROP=1`, which makes its absence a failure.
pub fn nngcat(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nngcat"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("NANOPORT_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("{test}: nngcat not found and NANOPORT_REQUIRE_INTEROP=1");
        }
        eprintln!("SKIPPED {test}: nngcat not found");
    }
    found
}

/// A TCP port on 127.0.0.1 that was free a moment ago, never the same one twice in this
/// process, and below the kernel's ephemeral range (32768 and up by default), so no
/// outgoing connection of ours can be holding it. Other programs on the machine may still
/// take it: servers are started with [`start_server`], which retries.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = (std::process::id().wrapping_mul(7919)) % 22_000;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (10_000 + (base + n) % 22_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("nanoport-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// Writes `body` to `name` in the directory; returns the path.
    pub fn file(&self, name: &str, body: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, body).expect("write temp file");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished child left behind.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

type Sink = Arc<Mutex<Vec<u8>>>;

fn drain(mut r: impl Read + Send + 'static, sink: Sink) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&buf[..n]);
        }
    })
}

/// A child process that is killed (by its PID, through `Child::kill`) and reaped when
/// dropped, whatever happens to the test. Its output is collected as it comes.
pub struct Proc {
    child: Option<Child>,
    what: String,
    out: Sink,
    err: Sink,
    readers: Vec<JoinHandle<()>>,
}

impl Proc {
    pub fn spawn(prog: &Path, args: &[String]) -> Proc {
        Proc::spawn_with_stdin(prog, args, None)
    }

    /// Spawns with `input` written to the child's standard input (then closed).
    pub fn spawn_with_stdin(prog: &Path, args: &[String], input: Option<&[u8]>) -> Proc {
        let stdin = if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = Command::new(prog)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", prog.display()));
        if let (Some(data), Some(mut w)) = (input, child.stdin.take()) {
            // Small inputs fit the pipe buffer; the child reads to end of file.
            let _ = w.write_all(data);
        }
        let out = Sink::default();
        let err = Sink::default();
        let mut readers = Vec::new();
        if let Some(o) = child.stdout.take() {
            readers.push(drain(o, out.clone()));
        }
        if let Some(e) = child.stderr.take() {
            readers.push(drain(e, err.clone()));
        }
        Proc {
            child: Some(child),
            what: format!("{} {}", prog.display(), args.join(" ")),
            out,
            err,
            readers,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Standard output so far.
    pub fn stdout_so_far(&self) -> Vec<u8> {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    fn collect(mut self, code: Option<i32>) -> Output {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let stdout = std::mem::take(&mut *self.out.lock().unwrap_or_else(|e| e.into_inner()));
        let stderr = String::from_utf8_lossy(&self.err.lock().unwrap_or_else(|e| e.into_inner()))
            .into_owned();
        Output {
            code,
            stdout,
            stderr,
        }
    }

    /// Waits up to `timeout` for the process to exit; kills it and panics if it does not.
    pub fn finish(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let mut child = self.child.take().expect("child");
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(5)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let what = self.what.clone();
                    let out = self.collect(None);
                    panic!("`{what}` did not finish within {timeout:?}; {out:?}");
                }
            }
        };
        self.collect(status.code())
    }

    /// Kills the process (if still running) and returns what it printed.
    pub fn stop(mut self) -> Output {
        let mut child = self.child.take().expect("child");
        let _ = child.kill();
        let status = child.wait().ok();
        self.collect(status.and_then(|s| s.code()))
    }

    /// Like [`finish`](Proc::finish), and the exit status must be 0.
    pub fn success(self, timeout: Duration) -> Output {
        let what = self.what.clone();
        let out = self.finish(timeout);
        assert_eq!(out.code, Some(0), "`{what}` failed: {}", out.stderr);
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts a server that listens on a TCP port, with `--verbose` so it prints "Listening
/// at: URL" first. `args(url)` gives its arguments. It is ready when that line shows (nanoport
/// flushes it; nngcat buffers it until its first message) or when the port accepts a
/// connection while the process lives. If the port turns out to be taken (another program
/// on the machine got it first), tries again on another. Returns the process, its URL and
/// the announcement line's length (to strip from its output).
pub fn start_server(prog: &Path, args: impl Fn(&str) -> Vec<String>) -> (Proc, String, usize) {
    for _ in 0..5 {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut p = Proc::spawn(prog, &args(&url));
        let line = format!("Listening at: {url}\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if p.stdout_so_far().starts_with(line.as_bytes()) {
                return (p, url, line.len());
            }
            match listens_on(p.pid(), port) {
                Some(true) => return (p, url, line.len()),
                Some(false) => {}
                None => {
                    // No /proc: accept any listener while ours lives.
                    if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                        sleep(Duration::from_millis(20));
                        if !p.exited() {
                            return (p, url, line.len());
                        }
                    }
                }
            }
            if p.exited() {
                let out = p.stop();
                if out.stderr.contains("Address in use") {
                    break;
                }
                panic!("server {} exited: {out:?}", prog.display());
            }
            assert!(
                Instant::now() < deadline,
                "server {} did not listen on {url}",
                prog.display()
            );
            sleep(Duration::from_millis(2));
        }
    }
    panic!("no free port found for {}", prog.display());
}

/// Whether process `pid` has a TCP socket listening on `port` (Linux: /proc/net/tcp* and
/// /proc/PID/fd); `None` where /proc cannot tell.
pub fn listens_on(pid: u32, port: u16) -> Option<bool> {
    let mut inodes = Vec::new();
    let mut any_table = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        any_table = true;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let local_port = f[1]
                .rsplit(':')
                .next()
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            if local_port == Some(port) {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    if !any_table {
        return None;
    }
    if inodes.is_empty() {
        return Some(false);
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .map(|t| inodes.iter().any(|i| t.as_os_str() == i.as_str()))
            .unwrap_or(false)
    }))
}

/// Runs to completion (short commands).
pub fn run(prog: &Path, args: &[String]) -> Output {
    Proc::spawn(prog, args).finish(Duration::from_secs(10))
}

/// `&str`s to owned arguments.
pub fn s(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}
