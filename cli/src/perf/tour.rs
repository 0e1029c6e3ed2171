//! `nanoport perf` with no arguments: latency and throughput over inproc, ipc and tcp for
//! 64 B, 1 KiB and 64 KiB messages, and over tls+tcp, ws and wss for 64 B (one row each),
//! in one process, each measurement bounded in time.

use std::io::{IsTerminal, Write};
use std::thread;
use std::time::{Duration, Instant};

use nanoport::{Error, Message, Socket, TlsConfig};

use super::report::{one_way_latency_us, throughput};

const TRANSPORTS: [&str; 3] = ["inproc", "ipc", "tcp"];
const SIZES: [usize; 3] = [64, 1024, 65536];
/// The secure and web transports, one row each (64 B): a self-signed certificate made at
/// start, which the dialing side trusts.
const SECURE: [&str; 3] = ["tls+tcp", "ws", "wss"];
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// One row of the table.
struct Row {
    transport: &'static str,
    size: usize,
    latency: Result<(u32, Duration), String>,
    thr: Result<(u64, Duration), String>,
}

/// Where to listen for one measurement, and how to clean up after it.
struct Place {
    url: String,
    ipc_path: Option<std::path::PathBuf>,
    /// (certificate, key) PEM for tls+tcp and wss.
    tls: Option<(String, String)>,
}

/// A self-signed certificate for 127.0.0.1, made once.
fn cert() -> (String, String) {
    static C: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    C.get_or_init(
        || match rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]) {
            Ok(ck) => (ck.cert.pem(), ck.key_pair.serialize_pem()),
            Err(_) => (String::new(), String::new()),
        },
    )
    .clone()
}

impl Place {
    fn new(transport: &str, n: usize) -> Place {
        let pid = std::process::id();
        match transport {
            "inproc" => Place {
                url: format!("inproc://nanoport-perf-{pid}-{n}"),
                ipc_path: None,
                tls: None,
            },
            "ipc" => {
                let p = std::env::temp_dir().join(format!("nanoport-perf-{pid}-{n}.ipc"));
                Place {
                    url: format!("ipc://{}", p.display()),
                    ipc_path: Some(p),
                    tls: None,
                }
            }
            "tls+tcp" => Place {
                url: "tls+tcp://127.0.0.1:0".into(),
                ipc_path: None,
                tls: Some(cert()),
            },
            "ws" | "wss" => Place {
                url: format!("{transport}://127.0.0.1:0/perf"),
                ipc_path: None,
                tls: (transport == "wss").then(cert),
            },
            _ => Place {
                url: "tcp://127.0.0.1:0".into(),
                ipc_path: None,
                tls: None,
            },
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(p) = &self.ipc_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn e(what: &str) -> impl Fn(nanoport::Error) -> String + '_ {
    move |err| format!("{what}: {err}")
}

/// Listens on `place`; returns the socket and the URL a peer should dial.
fn listen(place: &Place) -> Result<(Socket, nanoport::Listener, String), String> {
    let s = Socket::pair1().map_err(e("open"))?;
    s.set_recv_timeout(IO_TIMEOUT).map_err(e("recv timeout"))?;
    s.set_send_timeout(IO_TIMEOUT).map_err(e("send timeout"))?;
    let l = s.listener(&place.url).map_err(e("listen"))?;
    if let Some((c, k)) = &place.tls {
        let cfg = TlsConfig::server()
            .cert_key_pem(c, k)
            .map_err(e("certificate"))?;
        l.set_tls(&cfg).map_err(e("tls"))?;
    }
    l.start().map_err(e("listen"))?;
    let url = match l.port() {
        Some(port) if place.url.contains("127.0.0.1:0") => {
            place
                .url
                .replacen("127.0.0.1:0", &format!("127.0.0.1:{port}"), 1)
        }
        _ => place.url.clone(),
    };
    Ok((s, l, url))
}

fn dial(url: &str, place: &Place) -> Result<Socket, String> {
    let s = Socket::pair1().map_err(e("open"))?;
    s.set_recv_timeout(IO_TIMEOUT).map_err(e("recv timeout"))?;
    s.set_send_timeout(IO_TIMEOUT).map_err(e("send timeout"))?;
    let d = s.dialer(url).map_err(e("dial"))?;
    if let Some((c, _)) = &place.tls {
        let cfg = TlsConfig::client().ca_pem(c).map_err(e("certificate"))?;
        d.set_tls(&cfg).map_err(e("tls"))?;
    }
    d.start(false).map_err(e("dial"))?;
    Ok(s)
}

/// Round trips of `size`-byte messages against an echo thread, for about `budget`.
fn latency(place: &Place, size: usize, budget: Duration) -> Result<(u32, Duration), String> {
    let (server, _l, url) = listen(place)?;
    let echo = server.clone();
    let th = thread::spawn(move || {
        while let Ok(m) = echo.recv() {
            if echo.send(m).is_err() {
                break;
            }
        }
    });
    let result = (|| -> Result<(u32, Duration), String> {
        let client = dial(&url, place)?;
        let mut msg = Message::from(vec![0u8; size]);
        for _ in 0..10 {
            client.send(msg).map_err(Error::from).map_err(e("send"))?;
            msg = client.recv().map_err(e("recv"))?;
        }
        let start = Instant::now();
        let mut trips = 0u32;
        while start.elapsed() < budget {
            client.send(msg).map_err(Error::from).map_err(e("send"))?;
            msg = client.recv().map_err(e("recv"))?;
            trips += 1;
        }
        let total = start.elapsed();
        let _ = client.close();
        Ok((trips, total))
    })();
    let _ = server.close();
    let _ = th.join();
    result
}

/// A sender thread streams `size`-byte messages for about `budget`, then an empty one;
/// the receiver times from the first message to the empty one and acknowledges.
fn stream(place: &Place, size: usize, budget: Duration) -> Result<(u64, Duration), String> {
    let (rx, _l, url) = listen(place)?;
    rx.set_recv_buffer(128).map_err(e("recv buffer"))?;
    let tx = dial(&url, place)?;
    tx.set_send_buffer(128).map_err(e("send buffer"))?;
    let sender = thread::spawn(move || -> Result<(), String> {
        let body = Message::from(vec![1u8; size]);
        let start = Instant::now();
        while start.elapsed() < budget {
            tx.send(body.clone())
                .map_err(Error::from)
                .map_err(e("send"))?;
        }
        tx.send(Message::new())
            .map_err(Error::from)
            .map_err(e("send"))?;
        // Wait for the acknowledgement, so closing cannot cut the stream short.
        let _ = tx.recv();
        let _ = tx.close();
        Ok(())
    });
    let result = (|| -> Result<(u64, Duration), String> {
        rx.recv().map_err(e("recv"))?;
        let start = Instant::now();
        let mut n = 0u64;
        loop {
            let m = rx.recv().map_err(e("recv"))?;
            if m.is_empty() {
                break;
            }
            n += 1;
        }
        let total = start.elapsed();
        let _ = rx.send(Message::new());
        Ok((n, total))
    })();
    let sent = sender
        .join()
        .unwrap_or_else(|_| Err("sender thread panicked".into()));
    let _ = rx.close();
    let (n, total) = result?;
    sent?;
    Ok((n, total))
}

struct Progress {
    tty: bool,
    total: usize,
    done: usize,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.done += 1;
        let line = format!("[{:2}/{}] {what}", self.done, self.total);
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r\x1b[K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

fn size_label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// Formats the final table.
fn table(rows: &[Row], budget: Duration) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "nanoport perf tour: pair1 sockets in one process, about {} ms per measurement\n",
        budget.as_millis()
    ));
    s.push_str("latency is one-way (round-trip time / 2), as NNG's remote_lat reports it\n\n");
    s.push_str(&format!(
        "{:<9} {:>8} {:>14} {:>12} {:>16} {:>14}\n",
        "transport", "size", "latency [us]", "round trips", "thr [msg/s]", "thr [Mb/s]"
    ));
    for r in rows {
        let (lat, trips) = match &r.latency {
            Ok((n, t)) => (format!("{:.3}", one_way_latency_us(*t, *n)), n.to_string()),
            Err(_) => ("failed".into(), "-".into()),
        };
        let (msgs, mbps) = match &r.thr {
            Ok((n, t)) => {
                let (m, b) = throughput(*t, r.size, *n);
                (format!("{m:.0}"), format!("{b:.3}"))
            }
            Err(_) => ("failed".into(), "-".into()),
        };
        s.push_str(&format!(
            "{:<9} {:>8} {:>14} {:>12} {:>16} {:>14}\n",
            r.transport,
            size_label(r.size),
            lat,
            trips,
            msgs,
            mbps
        ));
    }
    for r in rows {
        for (what, res) in [
            ("latency", r.latency.as_ref().err()),
            ("throughput", r.thr.as_ref().err()),
        ] {
            if let Some(err) = res {
                s.push_str(&format!(
                    "{what} {} {}: {err}\n",
                    r.transport,
                    size_label(r.size)
                ));
            }
        }
    }
    s
}

/// Runs the tour; `quick` makes every measurement tiny (for tests). Returns the exit
/// status: 0, or 1 if a measurement failed.
pub fn run(quick: bool) -> i32 {
    let budget = if quick {
        Duration::from_millis(15)
    } else {
        Duration::from_millis(400)
    };
    let mut progress = Progress {
        tty: std::io::stderr().is_terminal(),
        total: (TRANSPORTS.len() * SIZES.len() + SECURE.len()) * 2,
        done: 0,
    };
    let mut rows = Vec::new();
    let mut n = 0;
    let plan = TRANSPORTS
        .iter()
        .flat_map(|t| SIZES.iter().map(move |s| (*t, *s)))
        .chain(SECURE.iter().map(|t| (*t, 64)));
    for (transport, size) in plan {
        {
            n += 1;
            progress.step(&format!(
                "latency    {transport:<7} {:>6} ...",
                size_label(size)
            ));
            let lat = latency(&Place::new(transport, 2 * n), size, budget);
            progress.step(&format!(
                "throughput {transport:<7} {:>6} ...",
                size_label(size)
            ));
            let thr = stream(&Place::new(transport, 2 * n + 1), size, budget);
            rows.push(Row {
                transport,
                size,
                latency: lat,
                thr,
            });
        }
    }
    progress.finish();
    print!("{}", table(&rows, budget));
    let _ = std::io::stdout().flush();
    let failed = rows.iter().any(|r| r.latency.is_err() || r.thr.is_err());
    i32::from(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_layout() {
        let rows = vec![
            Row {
                transport: "inproc",
                size: 64,
                latency: Ok((1000, Duration::from_millis(10))),
                thr: Ok((1000, Duration::from_secs(1))),
            },
            Row {
                transport: "tcp",
                size: 65536,
                latency: Err("dial: refused".into()),
                thr: Err("x".into()),
            },
        ];
        let t = table(&rows, Duration::from_millis(400));
        assert!(t.contains("inproc"), "{t}");
        assert!(t.contains("5.000"), "{t}");
        assert!(t.contains("64 KiB"), "{t}");
        assert!(t.contains("latency tcp 64 KiB: dial: refused"), "{t}");
        assert_eq!(size_label(1024), "1 KiB");
        assert_eq!(size_label(64), "64 B");
    }
}
