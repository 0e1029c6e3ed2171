//! Against a real NNG peer: `nngcat` (Debian `nng-utils`). Skipped loudly when it is
//! missing, unless `NANOPORT_REQUIRE_INTEROP=1`.

mod common;
use common::*;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nanoport_engine::Message;
use nanoport_transports::{BoxPipe, EndpointOptions, TransportDialer, TransportListener, Url};

/// Kills and reaps the child (by its pid) when dropped, even on failure, and unlinks the
/// ipc path it listened on, if any (a killed nngcat cannot).
struct Kid(Child, Option<String>);
impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(p) = &self.1 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn nngcat() -> bool {
    let found = Command::new("nngcat")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        if std::env::var("NANOPORT_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("nngcat not found and NANOPORT_REQUIRE_INTEROP=1");
        }
        eprintln!("\n*** SKIPPED: nngcat not found (apt-get install nng-utils) ***\n");
    }
    found
}

/// A port that was free a moment ago, below the ephemeral range (see tests/common's
/// `tcp()` in the root crate for why).
fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let base = std::process::id().wrapping_mul(7919) % 22_000;
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (10_000 + (base + n) % 22_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// nngcat pulls (listening); we dial as push and send; it prints what it got.
fn we_push_to_nngcat(url: &str) {
    let mut kid = Kid(
        Command::new("nngcat")
            .args(["--pull0", "--listen", url, "--ascii"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nngcat"),
        url.strip_prefix("ipc://").map(str::to_string),
    );
    let d =
        TransportDialer::new(&Url::parse(url).unwrap(), PUSH, EndpointOptions::default()).unwrap();
    // Wait for nngcat to be listening ("eventually": retry the dial with a deadline).
    let mut pipe: Option<BoxPipe> = None;
    assert!(eventually(Duration::from_secs(10), || {
        pipe = dial(&d).ok();
        pipe.is_some()
    }));
    let p = pipe.unwrap();
    assert_eq!(p.peer_protocol(), PULL);
    for i in 0..20 {
        send(&p, Message::from(format!("hello {i}").as_str())).unwrap();
    }
    // nngcat --ascii prints each message as is, without a separator.
    let want: String = (0..20).map(|i| format!("hello {i}")).collect();
    let mut out = kid.0.stdout.take().unwrap();
    let n = want.len();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = vec![0u8; n];
        let _ = tx.send(out.read_exact(&mut got).map(|_| got));
    });
    // Bounded wait, so a silent nngcat fails the test instead of hanging it.
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("nngcat output in time")
        .expect("nngcat output");
    assert_eq!(String::from_utf8_lossy(&got), want);
}

/// nngcat pushes (dialing) to our listener; we receive.
fn nngcat_pushes_to_us(url: &str) {
    let l = TransportListener::bind(&Url::parse(url).unwrap(), PULL, EndpointOptions::default())
        .unwrap();
    let url = match l.port() {
        Some(p) if url.ends_with(":0") => format!("tcp://127.0.0.1:{p}"),
        _ => url.to_string(),
    };
    let _kid = Kid(
        Command::new("nngcat")
            .args([
                "--push0",
                "--dial",
                &url,
                "--data",
                "hello from nng",
                "--count",
                "5",
                "--interval",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nngcat"),
        None, // it dials our listener, which unlinks its own path
    );
    let a = waitable();
    a.set_timeout(Duration::from_secs(10));
    l.accept_aio(&a);
    a.wait();
    a.result().expect("accept nngcat");
    let p = a.take_output::<BoxPipe>().unwrap();
    assert_eq!(p.peer_protocol(), PUSH);
    for _ in 0..5 {
        assert_eq!(recv(&p).unwrap().body(), b"hello from nng");
    }
}

#[test]
fn tcp_we_dial_nngcat() {
    if nngcat() {
        we_push_to_nngcat(&format!("tcp://127.0.0.1:{}", free_port()));
    }
}

#[test]
fn tcp_nngcat_dials_us() {
    if nngcat() {
        nngcat_pushes_to_us("tcp://127.0.0.1:0");
    }
}

#[test]
fn ipc_we_dial_nngcat() {
    if nngcat() {
        we_push_to_nngcat(&ipc_path("interop"));
    }
}

#[test]
fn ipc_nngcat_dials_us() {
    if nngcat() {
        nngcat_pushes_to_us(&ipc_path("interop"));
    }
}

#[test]
fn abstract_both_ways() {
    if nngcat() {
        we_push_to_nngcat(&format!("abstract://{}", unique("interop")));
        nngcat_pushes_to_us(&format!("abstract://{}", unique("interop")));
    }
}
