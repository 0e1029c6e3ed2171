//! `nanoport perf`: the tour runs, and the NNG-style roles pair up.

mod common;

use std::time::Duration;

use common::{nanoport, nngcat, s, Proc, TempDir};

/// Waits for an ipc listener's socket file.
fn wait_path(path: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(path).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // The file appears at bind(); give listen() a moment.
    std::thread::sleep(Duration::from_millis(20));
}

const T: Duration = Duration::from_secs(20);

#[test]
fn tour_runs_quick() {
    let out = Proc::spawn(&nanoport(), &s(&["perf", "--quick"])).success(T);
    let table = String::from_utf8_lossy(&out.stdout);
    for t in ["inproc", "ipc", "tcp"] {
        assert_eq!(
            table.lines().filter(|l| l.starts_with(t)).count(),
            3,
            "{table}"
        );
    }
    // One 64 B row each for the secure and web transports.
    for t in ["tls+tcp ", "ws ", "wss "] {
        assert_eq!(
            table.lines().filter(|l| l.starts_with(t)).count(),
            1,
            "{table}"
        );
    }
    for (size, rows) in [("64 B", 6), ("1 KiB", 3), ("64 KiB", 3)] {
        assert_eq!(
            table.lines().filter(|l| l.contains(size)).count(),
            rows,
            "{table}"
        );
    }
    assert!(!table.contains("failed"), "{table}");
    assert!(out.stderr.contains("[24/24]"), "progress: {}", out.stderr);
}

#[test]
fn local_lat_remote_lat_pair_up() {
    let np = nanoport();
    let dir = TempDir::new("perf-lat");
    let path = format!("{}/sock", dir.0.display());
    let url = format!("ipc://{path}");
    let server = Proc::spawn(&np, &s(&["perf", "local_lat", &url, "100", "300"]));
    wait_path(&path);
    let out = Proc::spawn(&np, &s(&["perf", "remote_lat", &url, "100", "300"])).success(T);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("total time: ") && lines[0].ends_with(" [s]"),
        "{text}"
    );
    assert_eq!(lines[1], "message size: 100 [B]");
    assert_eq!(lines[2], "round trip count: 300");
    assert!(
        lines[3].starts_with("average latency: ") && lines[3].ends_with(" [us]"),
        "{text}"
    );
    server.success(T);
}

#[test]
fn local_thr_remote_thr_pair_up() {
    let np = nanoport();
    let dir = TempDir::new("perf-thr");
    let path = format!("{}/sock", dir.0.display());
    let url = format!("ipc://{path}");
    let server = Proc::spawn(&np, &s(&["perf", "local_thr", &url, "512", "2000"]));
    wait_path(&path);
    Proc::spawn(&np, &s(&["perf", "remote_thr", &url, "512", "2000"])).success(T);
    let out = server.success(T);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[1], "message size: 512 [B]");
    assert_eq!(lines[2], "message count: 2000");
    assert!(
        lines[3].starts_with("throughput: ") && lines[3].ends_with(" [msg/s]"),
        "{text}"
    );
    assert!(
        lines[4].starts_with("throughput: ") && lines[4].ends_with(" [Mb/s]"),
        "{text}"
    );
}

/// local_lat speaks pair1 as NNG's perf does: NNG's pair1 (through nngcat) gets its
/// message echoed.
#[test]
fn local_lat_echoes_to_nng_pair1() {
    let Some(nng) = nngcat("local_lat_echoes_to_nng_pair1") else {
        return;
    };
    let dir = TempDir::new("perf-nng");
    let path = format!("{}/sock", dir.0.display());
    let url = format!("ipc://{path}");
    let server = Proc::spawn(&nanoport(), &s(&["perf", "local_lat", &url, "4", "1"]));
    wait_path(&path);
    let out = Proc::spawn(
        &nng,
        &s(&[
            "--pair1",
            "--dial",
            &url,
            "--data",
            "ping",
            "-Q",
            "--recv-timeout",
            "1",
        ]),
    )
    .success(T);
    assert_eq!(out.stdout, b"\"ping\"\n");
    server.success(T);
}

#[test]
fn bad_perf_arguments() {
    let np = nanoport();
    let out = Proc::spawn(
        &np,
        &s(&["perf", "local_lat", "tcp://127.0.0.1:1", "x", "10"]),
    )
    .finish(T);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("Invalid message size"),
        "{}",
        out.stderr
    );
    let out = Proc::spawn(&np, &s(&["perf", "remote_lat", "tcp://127.0.0.1:1"])).finish(T);
    assert_ne!(out.code, Some(0));
    let out = Proc::spawn(&np, &s(&["perf", "bogus_mode", "u", "1", "1"])).finish(T);
    assert_ne!(out.code, Some(0));
}
