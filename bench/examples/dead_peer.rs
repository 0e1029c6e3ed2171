//! What a dead peer takes with it: a push0 streams numbered messages to two pull0 peers,
//! each its own process; one stops reading after `read` messages and is killed (SIGKILL),
//! the other reads on. Every message the push accepted that neither application read is
//! lost: it sat in the push's write queue, in the kernel between the two processes, or in
//! the dead process's own buffers. The example prints that count, where the kernel held
//! it at the moment of the kill (`ss`: the dead peer's receive queue, the push side's
//! send queue), and the push throughput over the whole run.
//!
//! ```sh
//! cargo build --release -p nanoport-bench --example dead_peer
//! target/release/examples/dead_peer [transport=tcp|ipc|all] [size=16|4096|all] \
//!     [n=100000] [read=5000] [ahead=0,16384] [rounds=3] [hold=200] [peer=nanoport|nngcat]
//! ```
//!
//! * `ahead`: the push socket's send-ahead bound in bytes (`Socket::set_send_ahead_max`),
//!   a comma-separated list that the rounds alternate through; 0 leaves the default.
//! * `hold`: milliseconds between the peer's stop and the kill, so the buffers between
//!   the two fill up (the worst case: a peer that hangs before it dies); 0 kills at once.
//! * `read=0`: nobody is killed, both peers read everything (throughput only).
//! * `peer=nngcat`: the dying peer is libnng's `nngcat --pull0 --raw`; its stdout is read
//!   by this process, `read` messages' worth, then left unread (nngcat blocks writing it
//!   once the pipe is full); after the kill the rest of its stdout counts as read.
//!
//! The pull peers are this same executable re-run with `peer URL STOP_AFTER` arguments.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nanoport::Socket;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("peer") {
        return peer(&args[1], args[2].parse().unwrap(), args[3].parse().unwrap());
    }
    let get = |k: &str, d: &str| -> String {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("{k}=")).map(str::to_owned))
            .unwrap_or_else(|| d.to_owned())
    };
    let transports: Vec<&str> = match get("transport", "all").as_str() {
        "all" => vec!["tcp", "ipc"],
        "tcp" => vec!["tcp"],
        "ipc" => vec!["ipc"],
        t => panic!("transport {t}?"),
    };
    let sizes: Vec<usize> = match get("size", "all").as_str() {
        "all" => vec![16, 4096],
        s => s.split(',').map(|v| v.parse().unwrap()).collect(),
    };
    let n: u64 = get("n", "100000").parse().unwrap();
    let read: u64 = get("read", "5000").parse().unwrap();
    let rounds: usize = get("rounds", "3").parse().unwrap();
    let hold = Duration::from_millis(get("hold", "200").parse().unwrap());
    let aheads: Vec<usize> = get("ahead", "0")
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let nngcat = get("peer", "nanoport") == "nngcat";

    println!(
        "transport size ahead | lost (msgs, bytes) | at the kill: peer recv-q, push send-q (bytes) | push msg/s"
    );
    for t in &transports {
        for &size in &sizes {
            for r in 0..rounds {
                for &ahead in &aheads {
                    let o = run(t, size, n, read, ahead, hold, nngcat, r);
                    let frame = size + if *t == "tcp" { 8 } else { 9 };
                    println!(
                        "{t:>3} {size:>5} {ahead:>7} | lost {:>6} {:>9} | recv-q {:>8} send-q {:>8} | {:>9.0}{}",
                        o.lost,
                        o.lost * frame as u64,
                        o.recv_q.map_or("-".into(), |v| v.to_string()),
                        o.send_q.map_or("-".into(), |v| v.to_string()),
                        o.rate,
                        if o.dups > 0 { format!("  DUPLICATES {}", o.dups) } else { String::new() },
                    );
                }
            }
        }
    }
}

struct Outcome {
    lost: u64,
    dups: u64,
    rate: f64,
    recv_q: Option<u64>,
    send_q: Option<u64>,
}

/// One round: push listens, two peers dial, one dies.
#[allow(clippy::too_many_arguments)]
fn run(
    t: &str,
    size: usize,
    n: u64,
    read: u64,
    ahead: usize,
    hold: Duration,
    nngcat: bool,
    round: usize,
) -> Outcome {
    let push = Socket::push0().unwrap();
    if ahead > 0 {
        push.set_send_ahead_max(ahead).unwrap();
    }
    let path = format!("/tmp/nanoport-dead-peer-{}-{round}.ipc", std::process::id());
    let url = if t == "tcp" {
        let l = push.listen("tcp://127.0.0.1:0").unwrap();
        format!("tcp://127.0.0.1:{}", l.port().unwrap())
    } else {
        push.listen(&format!("ipc://{path}")).unwrap();
        format!("ipc://{path}")
    };
    let exe = std::env::current_exe().unwrap();
    let mut alive = Command::new(&exe)
        .args(["peer", &url, "0", &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut dying = if nngcat {
        Command::new("nngcat")
            .args(["--pull0", "--dial", &url, "--raw"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("nngcat (Debian's nng-utils)")
    } else {
        Command::new(&exe)
            .args(["peer", &url, &read.to_string(), &n.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let t0 = Instant::now();
    while push.pipe_count() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "peers did not connect"
        );
        thread::sleep(Duration::from_millis(1));
    }
    // The killer: watches the dying peer, kills it `hold` after it stopped reading, and
    // reports how many messages its application read and the queues at the kill.
    let dying_pid = dying.id();
    let mut out = dying.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let killer = thread::spawn(move || {
        let mut got = 0u64;
        if nngcat {
            // Read `read` messages' worth of nngcat's output, then stop reading.
            let mut buf = vec![0u8; size * 64];
            let mut bytes = 0u64;
            while read > 0 && bytes < read * size as u64 {
                let want = ((read * size as u64 - bytes) as usize).min(buf.len());
                match out.read(&mut buf[..want]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => bytes += k as u64,
                }
            }
            got = bytes;
        } else {
            let mut line = String::new();
            let mut r = BufReader::new(&mut out);
            r.read_line(&mut line).unwrap();
            if read > 0 {
                if line.trim() != "stopped" {
                    // Killed before it read `read` messages (see below): not counted.
                    eprintln!("the dying peer never got {read} messages");
                    let _ = dying.wait();
                    return (u64::MAX, None, None);
                }
            } else {
                got = line.split_whitespace().next().unwrap().parse().unwrap();
            }
        }
        if read == 0 {
            return (got, None, None);
        }
        thread::sleep(hold);
        let (recv_q, send_q) = queues(dying_pid);
        kill(&mut dying);
        if nngcat {
            // What nngcat wrote to its stdout before it died, it had read.
            let mut rest = Vec::new();
            let _ = out.read_to_end(&mut rest);
            got = (got + rest.len() as u64) / size as u64;
        } else {
            got = read;
        }
        let _ = tx.send(());
        (got, recv_q, send_q)
    });
    let mut msg = vec![0u8; size];
    let start = Instant::now();
    for seq in 0..n {
        msg[..8].copy_from_slice(&seq.to_le_bytes());
        push.send(&msg[..]).unwrap();
    }
    let elapsed = start.elapsed();
    let mut line = String::new();
    BufReader::new(alive.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // The live peer has gone quiet: everything was sent and what could arrive did. A
    // dying peer that never got its `read` messages (push steered around it) is killed
    // now; what it read counts as read.
    if rx.try_recv().is_err() {
        let _ = Command::new("kill")
            .args(["-9", &dying_pid.to_string()])
            .status();
    }
    let (dead_got, recv_q, send_q) = killer.join().unwrap();
    let mut it = line.split_whitespace().map(|v| v.parse::<u64>().unwrap());
    let (alive_got, dups) = (it.next().unwrap(), it.next().unwrap());
    let _ = alive.wait();
    push.close().unwrap();
    let _ = std::fs::remove_file(&path);
    Outcome {
        lost: n.saturating_sub(alive_got.saturating_add(dead_got)),
        dups,
        rate: n as f64 / elapsed.as_secs_f64(),
        recv_q,
        send_q,
    }
}

fn kill(c: &mut Child) {
    c.kill().unwrap();
    c.wait().unwrap();
}

/// The dying peer's kernel receive queue and the push side's send queue (bytes) on the
/// connection between them, from `ss` (tcp: Send-Q is unsent plus unacknowledged; unix
/// streams: a sender's bytes sit in the receiver's queue, counted against the sender's
/// send buffer).
fn queues(pid: u32) -> (Option<u64>, Option<u64>) {
    let Ok(o) = Command::new("ss").args(["-tanxpH"]).output() else {
        return (None, None);
    };
    let text = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    // Columns: netid state recv-q send-q local peer [users]; unix rows split the address
    // and its inode, so "local" and "peer" are two columns each there.
    let mine = format!("pid={pid},");
    let Some(dead) = rows
        .iter()
        .find(|r| r.len() > 5 && r.iter().any(|c| c.contains(&mine)) && r[1] == "ESTAB")
    else {
        return (None, None);
    };
    let recv_q = dead[2].parse().ok();
    let peer_of = |r: &Vec<&str>| -> (String, String) {
        if r[0] == "u_str" {
            (r[5].to_owned(), r[7].to_owned()) // own inode, peer inode
        } else {
            (r[4].to_owned(), r[5].to_owned())
        }
    };
    let (me, them) = peer_of(dead);
    let send_q = rows
        .iter()
        .filter(|r| r.len() > 5 && r[1] == "ESTAB" && r[0] == dead[0])
        .find(|r| {
            let (a, b) = peer_of(r);
            a == them && b == me
        })
        .and_then(|r| r[3].parse().ok());
    (recv_q, send_q)
}

/// A pull peer: reads until `stop` messages (then says "stopped" and reads no more until
/// killed) or, with `stop == 0`, until a second passes without a message, then prints how
/// many distinct messages it read and how many duplicates.
fn peer(url: &str, stop: u64, n: u64) {
    let pull = Socket::pull0().unwrap();
    let mut seen = vec![false; n as usize];
    let (mut got, mut dups) = (0u64, 0u64);
    pull.dial(url).unwrap();
    pull.set_recv_timeout(Duration::from_secs(1)).unwrap();
    let mut stdout = std::io::stdout();
    loop {
        match pull.recv() {
            Ok(m) => {
                let seq = u64::from_le_bytes(m.body()[..8].try_into().unwrap()) as usize;
                if std::mem::replace(&mut seen[seq], true) {
                    dups += 1;
                } else {
                    got += 1;
                }
                if stop > 0 && got == stop {
                    writeln!(stdout, "stopped").unwrap();
                    stdout.flush().unwrap();
                    loop {
                        thread::park();
                    }
                }
            }
            Err(nanoport::Error::TimedOut) if got > 0 => break,
            Err(nanoport::Error::TimedOut) => {}
            Err(e) => panic!("peer recv: {e}"),
        }
    }
    writeln!(stdout, "{got} {dups}").unwrap();
}
