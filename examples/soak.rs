//! Soak test: req/rep and push/pull at full speed over tcp (or ipc, inproc) with many pipes, for a set
//! time, checking that every message arrives exactly once where the protocol promises
//! delivery, and printing resident memory over time.
//!
//! After the first third of the run a churn phase starts beside that traffic: one socket
//! of each broadcasting protocol (pub0, bus0, surveyor0, pair1 polyamorous) sends all the
//! time, and crowds of its peers join, receive a little and leave together, at random.
//! Those protocols promise no delivery, so what is checked there is that what arrives
//! arrives at most once and in order, that every dead pipe goes away, and that the process
//! never wedges. A rep0 socket of its own (with two req0 pipes, so its reads go through
//! the reactor), asked every 5 ms, records the process's response time in each phase
//! (p99 and max). If nothing answers for 20 s the soak says what is stuck and exits with
//! status 2 instead of hanging.
//!
//! `cargo run --release --example soak -- [SECONDS] [tcp|ipc|inproc]` (default 60 s over
//! tcp).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nanoport::{Message, Pipe, PipeEvent, PipeId, Protocol, Socket};

const REQ_CLIENTS: usize = 8;
const PUSHERS: usize = 8;
/// Threads that make peers join and leave.
const CHURNERS: usize = 4;
/// The most peers one churner opens (and then closes) at once.
const MAX_CROWD: u64 = 16;
/// How often the probe asks its rep0 socket.
const PROBE_EVERY: Duration = Duration::from_millis(5);
/// No progress for this long means the process is wedged.
const WEDGE_LIMIT: Duration = Duration::from_secs(20);

fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A fresh address on `transport` (`tcp`, `ipc` or `inproc`).
fn free_url(transport: &str, tag: &str) -> String {
    match transport {
        "inproc" => format!("inproc://soak-{tag}"),
        "ipc" => format!("ipc:///tmp/nanoport-soak-{}-{tag}.sock", std::process::id()),
        _ => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port())
        }
    }
}

/// xorshift64*: enough randomness to pick who joins and when.
struct Rng(u64);

impl Rng {
    fn seeded(salt: u64) -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng((t ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The broadcasting protocols whose peers churn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hub {
    Pub,
    Bus,
    Surveyor,
    Poly,
}

const HUBS: [Hub; 4] = [Hub::Pub, Hub::Bus, Hub::Surveyor, Hub::Poly];

impl Hub {
    fn name(self) -> &'static str {
        match self {
            Hub::Pub => "pub0",
            Hub::Bus => "bus0",
            Hub::Surveyor => "surveyor0",
            Hub::Poly => "pair1-poly",
        }
    }

    fn open(self) -> Socket {
        match self {
            Hub::Pub => Socket::pub0(),
            Hub::Bus => Socket::bus0(),
            Hub::Surveyor => Socket::surveyor0(),
            Hub::Poly => Socket::open(Protocol::Pair1Poly),
        }
        .unwrap()
    }

    fn peer(self) -> nanoport::Result<Socket> {
        let s = match self {
            Hub::Pub => {
                let s = Socket::sub0()?;
                s.subscribe(b"")?;
                s
            }
            Hub::Bus => Socket::bus0()?,
            Hub::Surveyor => Socket::respondent0()?,
            Hub::Poly => Socket::pair1()?,
        };
        s.set_recv_timeout(Duration::from_secs(5))?;
        Ok(s)
    }
}

/// Counters shared by the churn phase's threads.
#[derive(Default)]
struct Churn {
    /// Set when the churn phase begins.
    on: AtomicBool,
    /// Set to stop the churning threads, then (once they have) `quiet` to stop the hubs'
    /// senders: peers still receiving need the hubs to keep sending.
    over: AtomicBool,
    quiet: AtomicBool,
    joined: AtomicU64,
    left: AtomicU64,
    /// Messages the peers received.
    received: AtomicU64,
    /// Receives that timed out (best-effort protocols: counted, not failed).
    timeouts: AtomicU64,
    /// A peer saw a sequence number not above the one before: duplicated or reordered.
    disorder: AtomicU64,
    /// The surveyor got an answer to some other survey than the current one.
    stray_answers: AtomicU64,
    answers: AtomicU64,
    /// Per hub: messages its socket accepted.
    sent: [AtomicU64; 4],
    churners_done: AtomicU64,
    senders_done: AtomicU64,
}

/// A hub's sending thread: numbered messages as fast as pacing allows, until told to stop.
fn hub_sender(hub: Hub, sock: Socket, churn: Arc<Churn>, gone: Arc<Mutex<Vec<PipeId>>>) {
    let i = HUBS.iter().position(|h| *h == hub).unwrap();
    let mut seq = 0u64;
    let mut pipes: Vec<Pipe> = Vec::new();
    let msg = |seq: u64| {
        let mut m = Message::with_capacity(136);
        m.append_u64(seq);
        m.append(&[0x5a; 128]);
        m
    };
    while !churn.quiet.load(Ordering::Relaxed) {
        match hub {
            Hub::Pub | Hub::Bus => {
                for _ in 0..32 {
                    seq += 1;
                    if sock.send(msg(seq)).is_ok() {
                        churn.sent[i].fetch_add(1, Ordering::Relaxed);
                    }
                }
                while sock.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(1));
            }
            Hub::Surveyor => {
                seq += 1;
                if sock.send(msg(seq)).is_ok() {
                    churn.sent[i].fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
                while let Ok(mut r) = sock.try_recv() {
                    if r.trim_u64() == Ok(seq) {
                        churn.answers.fetch_add(1, Ordering::Relaxed);
                    } else {
                        churn.stray_answers.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Hub::Poly => {
                while let Ok(m) = sock.try_recv() {
                    if let Some(p) = m.pipe() {
                        if !pipes.iter().any(|q| q.id() == p.id()) {
                            pipes.push(p);
                        }
                    }
                }
                let dead = std::mem::take(&mut *gone.lock().unwrap());
                pipes.retain(|p| !dead.contains(&p.id()));
                for p in &pipes {
                    seq += 1;
                    let mut m = msg(seq);
                    m.set_pipe(Some(p.clone()));
                    if sock.send(m).is_ok() {
                        churn.sent[i].fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    churn.senders_done.fetch_add(1, Ordering::Relaxed);
}

/// A churning thread: a crowd of peers of a random hub joins, each receives a few
/// messages (checking they come in order, each once), and all leave together.
fn churner(n: u64, urls: Arc<Vec<String>>, churn: Arc<Churn>) {
    let mut rng = Rng::seeded(n + 1);
    while !churn.over.load(Ordering::Relaxed) {
        if !churn.on.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let h = rng.below(HUBS.len() as u64) as usize;
        let hub = HUBS[h];
        let crowd: Vec<(Socket, nanoport::Dialer)> = (0..1 + rng.below(MAX_CROWD))
            .filter_map(|_| {
                let s = hub.peer().ok()?;
                let d = s.dial(&urls[h]).ok()?;
                if hub == Hub::Poly {
                    let _ = s.send("hello");
                }
                Some((s, d))
            })
            .collect();
        churn
            .joined
            .fetch_add(crowd.len() as u64, Ordering::Relaxed);
        let take = 1 + rng.below(8);
        for (peer, _) in &crowd {
            let mut last = 0u64;
            for _ in 0..take {
                match peer.recv() {
                    Ok(mut m) => {
                        churn.received.fetch_add(1, Ordering::Relaxed);
                        let seq = m.trim_u64().unwrap_or(0);
                        if seq <= last {
                            churn.disorder.fetch_add(1, Ordering::Relaxed);
                        }
                        last = seq;
                        if hub == Hub::Surveyor {
                            let mut a = Message::new();
                            a.append_u64(seq);
                            let _ = peer.send(a);
                        }
                    }
                    Err(_) => {
                        churn.timeouts.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        // Stay a moment, not reading, while the hub keeps sending; then all leave.
        std::thread::sleep(Duration::from_millis(rng.below(50)));
        let n = crowd.len() as u64;
        for (peer, _) in &crowd {
            let _ = peer.close();
        }
        drop(crowd);
        churn.left.fetch_add(n, Ordering::Relaxed);
    }
    churn.churners_done.fetch_add(1, Ordering::Relaxed);
}

/// Response times of the probe's requests, in µs, by phase (0 steady, 1 churn).
#[derive(Default)]
struct Probe {
    answered: AtomicU64,
    last_answer: Mutex<Option<Instant>>,
    latencies: Mutex<[Vec<u64>; 2]>,
}

fn p99_max(v: &[u64]) -> (u64, u64) {
    let mut v = v.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => (0, 0),
        n => (v[(n * 99 / 100).min(n - 1)], v[n - 1]),
    }
}

/// Prints what is stuck and exits: a soak must end, not hang.
fn wedged(what: &str, hubs: &[(Hub, Socket)], churn: &Churn, probe: &Probe) -> ! {
    println!("WEDGED: {what}");
    let lat = probe.latencies.lock().unwrap();
    let (p99, max) = p99_max(&lat[1]);
    println!(
        "  probe during the churn: {} answers, p99 {p99} us, max {max} us; its last answer {:.1?} ago",
        lat[1].len(),
        probe.last_answer.lock().unwrap().map(|t| t.elapsed()).unwrap_or_default()
    );
    for (h, s) in hubs {
        println!("  {} pipes attached: {}", h.name(), s.pipe_count());
    }
    println!(
        "  churn: {} peers joined, {} left; open fds {}",
        churn.joined.load(Ordering::Relaxed),
        churn.left.load(Ordering::Relaxed),
        open_fds()
    );
    std::process::exit(2);
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let transport = std::env::args().nth(2).unwrap_or_else(|| "tcp".into());
    let stop = Arc::new(AtomicBool::new(false));
    let round_trips = Arc::new(AtomicU64::new(0));
    let pushed = Arc::new(AtomicU64::new(0));

    // req/rep: one rep socket with 4 contexts, 8 req sockets each on its own pipe. Each
    // request carries (client, sequence); the reply must echo exactly that.
    let rep_url = free_url(&transport, "rep");
    let rep = Socket::rep0().unwrap();
    rep.listen(&rep_url).unwrap();
    let mut threads = Vec::new();
    for _ in 0..4 {
        let ctx = rep.context().unwrap();
        threads.push(std::thread::spawn(move || {
            while let Ok(m) = ctx.recv() {
                if ctx.send(m).is_err() {
                    break;
                }
            }
        }));
    }
    let mut clients = Vec::new();
    for c in 0..REQ_CLIENTS as u32 {
        let req = Socket::req0().unwrap();
        req.set_recv_timeout(Duration::from_secs(30)).unwrap();
        req.dial(&rep_url).unwrap();
        let (stop, rt) = (stop.clone(), round_trips.clone());
        clients.push(std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut m = Message::new();
                m.append_u32(c);
                m.append_u64(seq);
                req.send(m).expect("request");
                let mut r = req.recv().expect("reply (lost?)");
                assert_eq!(r.trim_u32().unwrap(), c, "reply for another client");
                assert_eq!(
                    r.trim_u64().unwrap(),
                    seq,
                    "reply out of order or duplicated"
                );
                seq += 1;
                rt.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // push/pull: 8 pushers into one pull; every (pusher, sequence) must arrive exactly once.
    let pull_url = free_url(&transport, "pull");
    let pull = Socket::pull0().unwrap();
    pull.listen(&pull_url).unwrap();
    pull.set_recv_timeout(Duration::from_secs(5)).unwrap();
    let mut pushers = Vec::new();
    for p in 0..PUSHERS as u32 {
        let push = Socket::push0().unwrap();
        push.dial(&pull_url).unwrap();
        let (stop, n) = (stop.clone(), pushed.clone());
        pushers.push(std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut m = Message::new();
                m.append_u32(p);
                m.append_u64(seq);
                push.send(m).expect("push");
                seq += 1;
                n.fetch_add(1, Ordering::Relaxed);
            }
            // The socket goes back to the main thread, which closes it only once the
            // receiver has drained: closing discards frames still queued on the pipe (as
            // NNG's close does), which would count as lost here.
            (seq, push)
        }));
    }
    let receiver = std::thread::spawn(move || {
        let mut next = [0u64; PUSHERS];
        let mut seen = HashSet::new();
        let mut count = 0u64;
        while let Ok(mut m) = pull.recv() {
            let p = m.trim_u32().unwrap() as usize;
            let s = m.trim_u64().unwrap();
            assert!(seen.insert((p, s)), "duplicate push message {p}/{s}");
            assert_eq!(
                s, next[p],
                "push message {p}/{s} out of order (expected {})",
                next[p]
            );
            next[p] += 1;
            seen.remove(&(p, s));
            count += 1;
        }
        (count, next)
    });

    // The probe: a rep0 of its own, asked every 5 ms by one req0 (a second, idle req0
    // gives it two pipes, so its reads go through the reactor like a busy server's).
    let probe_url = free_url(&transport, "probe");
    let probe_rep = Socket::rep0().unwrap();
    probe_rep.listen(&probe_url).unwrap();
    let server = probe_rep.clone();
    let probe_server = std::thread::spawn(move || {
        while let Ok(m) = server.recv() {
            if server.send(m).is_err() {
                break;
            }
        }
    });
    let probe_idle = Socket::req0().unwrap();
    probe_idle.dial(&probe_url).unwrap();
    let probe = Arc::new(Probe::default());
    let churn = Arc::new(Churn::default());
    let probe_client = {
        let req = Socket::req0().unwrap();
        req.set_recv_timeout(Duration::from_secs(60)).unwrap();
        req.dial(&probe_url).unwrap();
        let (stop, probe, churn) = (stop.clone(), probe.clone(), churn.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if req.send("ping").is_err() || req.recv().is_err() {
                    break;
                }
                let us = t.elapsed().as_micros() as u64;
                let phase = usize::from(churn.on.load(Ordering::Relaxed));
                probe.latencies.lock().unwrap()[phase].push(us);
                probe.answered.fetch_add(1, Ordering::Relaxed);
                *probe.last_answer.lock().unwrap() = Some(Instant::now());
                std::thread::sleep(PROBE_EVERY);
            }
        })
    };

    // The churn phase's hubs, their senders and the churning threads (idle until the
    // phase begins).
    let mut hubs = Vec::new();
    let mut urls = Vec::new();
    let mut hub_threads = Vec::new();
    for hub in HUBS {
        let url = free_url(&transport, hub.name());
        let sock = hub.open();
        sock.listen(&url).unwrap();
        let gone = Arc::new(Mutex::new(Vec::new()));
        if hub == Hub::Poly {
            let g = gone.clone();
            sock.pipe_notify(PipeEvent::RemPost, move |p, _| {
                g.lock().unwrap().push(p.id());
            });
        }
        let (s, c) = (sock.clone(), churn.clone());
        hub_threads.push(std::thread::spawn(move || hub_sender(hub, s, c, gone)));
        hubs.push((hub, sock));
        urls.push(url);
    }
    let urls = Arc::new(urls);
    let churners: Vec<_> = (0..CHURNERS as u64)
        .map(|n| {
            let (u, c) = (urls.clone(), churn.clone());
            std::thread::spawn(move || churner(n, u, c))
        })
        .collect();

    let start = Instant::now();
    let rss0 = rss_kib();
    let churn_at = Duration::from_secs(secs / 3);
    println!("soak: {secs} s, {REQ_CLIENTS} req pipes, {PUSHERS} push pipes, {transport}; churn of pub0/bus0/surveyor0/pair1-poly peers from t={}s; RSS at start {rss0} KiB", churn_at.as_secs());
    let tick = Duration::from_secs(10).min(Duration::from_secs(secs.max(1)));
    let mut last = (0, 0, 0, 0);
    // Where the probe's latencies of the last tick begin.
    let (mut last_phase, mut last_probe) = (0, 0);
    let mut last_tick = Instant::now();
    let mut fds_before_churn = open_fds();
    // For the wedge watch: when each kind of progress was last seen.
    let mut watch = [(0u64, Instant::now()); 3];
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(200));
        if !churn.on.load(Ordering::Relaxed) && start.elapsed() >= churn_at {
            fds_before_churn = open_fds();
            churn.on.store(true, Ordering::Relaxed);
            println!("t={:>4}s  churn phase begins", start.elapsed().as_secs());
        }
        let hub_sends: u64 = churn.sent.iter().map(|a| a.load(Ordering::Relaxed)).sum();
        let now = [
            probe.answered.load(Ordering::Relaxed),
            hub_sends,
            round_trips.load(Ordering::Relaxed) + pushed.load(Ordering::Relaxed),
        ];
        for (w, n) in watch.iter_mut().zip(now) {
            if n != w.0 {
                *w = (n, Instant::now());
            }
        }
        for (w, what) in watch.iter().zip([
            "the probe's rep0 gives no reply",
            "no hub send returns",
            "req/rep and push/pull stopped",
        ]) {
            if w.1.elapsed() > WEDGE_LIMIT {
                wedged(
                    &format!("{what} for {:?}", w.1.elapsed()),
                    &hubs,
                    &churn,
                    &probe,
                );
            }
        }
        if last_tick.elapsed() < tick {
            continue;
        }
        let dt = last_tick.elapsed().as_secs_f64();
        last_tick = Instant::now();
        let (rt, pu) = (
            round_trips.load(Ordering::Relaxed),
            pushed.load(Ordering::Relaxed),
        );
        let (joined, got) = (
            churn.joined.load(Ordering::Relaxed),
            churn.received.load(Ordering::Relaxed),
        );
        let phase = usize::from(churn.on.load(Ordering::Relaxed));
        let (p99, max) = {
            let lat = probe.latencies.lock().unwrap();
            let from = if phase == last_phase { last_probe } else { 0 };
            last_phase = phase;
            last_probe = lat[phase].len();
            p99_max(&lat[phase][from.min(last_probe)..])
        };
        println!(
            "t={:>4}s  req/rep {:>8.0}/s  push/pull {:>8.0}/s  churn {:>5.0} peers/s, {:>6.0} msgs/s to peers  probe p99 {p99} us max {max} us  RSS {} KiB",
            start.elapsed().as_secs(),
            (rt - last.0) as f64 / dt,
            (pu - last.1) as f64 / dt,
            (joined - last.2) as f64 / dt,
            (got - last.3) as f64 / dt,
            rss_kib()
        );
        last = (rt, pu, joined, got);
    }

    // End the churn: every churner and then every sender stops, and every dead pipe
    // goes away.
    for (flag, done, n, what) in [
        (
            &churn.over,
            &churn.churners_done,
            CHURNERS,
            "churning threads",
        ),
        (&churn.quiet, &churn.senders_done, HUBS.len(), "hub senders"),
    ] {
        flag.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + WEDGE_LIMIT;
        while done.load(Ordering::Relaxed) < n as u64 {
            if Instant::now() > deadline {
                let stuck = n as u64 - done.load(Ordering::Relaxed);
                wedged(
                    &format!("{stuck} of {n} {what} did not stop"),
                    &hubs,
                    &churn,
                    &probe,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for t in churners.into_iter().chain(hub_threads) {
        t.join().expect("a churn thread failed");
    }
    let deadline = Instant::now() + WEDGE_LIMIT;
    while hubs.iter().any(|(_, s)| s.pipe_count() > 0) {
        if Instant::now() > deadline {
            wedged("dead pipes were not removed", &hubs, &churn, &probe);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for (_, s) in &hubs {
        s.close().unwrap();
    }
    let fds_after_churn = open_fds();

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("a req client failed");
    }
    let (sent, push_sockets): (Vec<u64>, Vec<Socket>) = pushers
        .into_iter()
        .map(|t| t.join().expect("a pusher failed"))
        .unzip();
    let (received, next) = receiver.join().expect("the receiver failed");
    drop(push_sockets);
    let total: u64 = sent.iter().sum();
    assert_eq!(
        next.to_vec(),
        sent,
        "per-pusher counts differ: something was lost"
    );
    assert_eq!(received, total);
    probe_client.join().expect("the probe client failed");
    rep.close().unwrap();
    probe_rep.close().unwrap();
    probe_idle.close().unwrap();
    probe_server.join().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    let disorder = churn.disorder.load(Ordering::Relaxed);
    let stray = churn.stray_answers.load(Ordering::Relaxed);
    let lat = probe.latencies.lock().unwrap();
    let (steady, churning) = (p99_max(&lat[0]), p99_max(&lat[1]));
    println!(
        "probe (a rep0 asked every {PROBE_EVERY:?}): steady p99 {} us, max {} us ({} asks); churn p99 {} us, max {} us ({} asks)",
        steady.0,
        steady.1,
        lat[0].len(),
        churning.0,
        churning.1,
        lat[1].len()
    );
    let sends: Vec<String> = HUBS
        .iter()
        .zip(&churn.sent)
        .map(|(h, n)| format!("{} {}", h.name(), n.load(Ordering::Relaxed)))
        .collect();
    println!(
        "churn: {} peers joined and left; hub sends {}; peers received {} messages ({} receives timed out), {} out of order or repeated; surveyor got {} answers, {} for another survey; fds {} before the churn, {} after",
        churn.left.load(Ordering::Relaxed),
        sends.join(", "),
        churn.received.load(Ordering::Relaxed),
        churn.timeouts.load(Ordering::Relaxed),
        disorder,
        churn.answers.load(Ordering::Relaxed),
        stray,
        fds_before_churn,
        fds_after_churn
    );
    assert_eq!(disorder, 0, "a peer got a message twice or out of order");
    assert_eq!(stray, 0, "the surveyor got an answer to an old survey");
    println!(
        "soak OK: {} req/rep round trips, {} push/pull messages, each exactly once and in order; RSS {} -> {} KiB",
        round_trips.load(Ordering::Relaxed),
        total,
        rss0,
        rss_kib()
    );
}
