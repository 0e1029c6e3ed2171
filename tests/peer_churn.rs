//! Crowds of peers joining and leaving while a socket sends at full speed cannot wedge
//! the process.
//!
//! For each protocol that sends to many peers (pub0, bus0, pair1 polyamorous, surveyor0,
//! push0): a socket listens and a thread sends through it as fast as it can. Round after
//! round, a crowd of ordinary peers (default options) dials, receives a little, stops
//! reading (so the sender's writes to them back up), and all of them close at the same
//! moment. After each round:
//!
//! * the sending thread still returns from its calls;
//! * a rep0 socket on another port of the same process still answers a req0;
//! * every dead pipe is gone: the socket's pipe count is back to 0 and the process's
//!   open fds back to where they were before the first round.
//!
//! Every wait is bounded. The bounds are deadlock detectors, not timing goals: a wedged
//! engine makes a test fail and say which protocol, which round and what was stuck,
//! never hang. Nothing that could wedge runs on the test's own thread (socket calls run
//! on spawned threads; the test thread only reads counters and channels with timeouts),
//! and a failing test leaks its sockets instead of closing them, since closing could
//! wedge too.
//!
//! Each test runs in a child process of its own (this binary, run again for that one
//! test): a wedged engine is process-wide, so in one process the first wedge would stop
//! every later test, and the fd counts would mix. The parent runs the children one at a
//! time, kills one that outlives a bound of its own, and fails with the child's output.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nanoport::{Listener, Message, Pipe, Protocol, Socket};

/// Rounds of churn per test.
const ROUNDS: usize = 12;
/// Peers that join, and then leave together, in each round.
const PEERS: usize = 64;
/// Messages each peer receives before it stops reading and waits for the others.
const TAKE: usize = 3;
/// Send calls the sender makes after all peers of a round have stopped reading, before
/// they leave, or as many as it makes in `BACKLOG_TIME`.
const BACKLOG: u64 = 2000;
const BACKLOG_TIME: Duration = Duration::from_millis(100);
/// Messages each pair1 peer sends the polyamorous hub, without waiting.
const BURST: usize = 64;
/// Size of the messages the sender sends: big enough that a peer that stops reading
/// backs the sender's writes up within a round.
const BODY: usize = 1024;
/// How long the peers of one round may take to dial and receive their first messages.
const JOIN_LIMIT: Duration = Duration::from_secs(30);
/// How long any other step may take before the test calls the process wedged.
const LIMIT: Duration = Duration::from_secs(10);
/// Fds the process may hold above its baseline after a round (per-thread engine state
/// that outlives a thread by a moment).
const FD_SLACK: usize = 4;

/// How long a child process may run before the parent kills it: well above the worst
/// case of the bounds above (a child that fails fails at the first one it hits).
const CHILD_LIMIT: Duration = Duration::from_secs(240);
/// Names the one test a child process runs.
const CHILD_ENV: &str = "NANOPORT_PEER_CHURN_CHILD";

static SERIAL: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Polls `ok` every 20 ms until it holds or `limit` passes.
fn settle(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ok()
}

/// Runs `f` on its own thread and waits at most `limit` for its result: `None` if it has
/// not returned by then (it is left running).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pub,
    Bus,
    Poly,
    Surveyor,
    Push,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pub => "pub0",
            Kind::Bus => "bus0",
            Kind::Poly => "pair1 polyamorous",
            Kind::Surveyor => "surveyor0",
            Kind::Push => "push0",
        }
    }

    /// The socket the peers churn against.
    fn hub(self) -> Socket {
        match self {
            Kind::Pub => Socket::pub0(),
            Kind::Bus => Socket::bus0(),
            Kind::Poly => Socket::open(Protocol::Pair1Poly),
            Kind::Surveyor => Socket::surveyor0(),
            Kind::Push => Socket::push0(),
        }
        .unwrap()
    }

    /// One ordinary peer of the hub: default options but for what it needs to receive
    /// at all (a subscription) and a receive timeout.
    fn peer(self) -> nanoport::Result<Socket> {
        let s = match self {
            Kind::Pub => {
                let s = Socket::sub0()?;
                s.subscribe(b"")?;
                s
            }
            Kind::Bus => Socket::bus0()?,
            Kind::Poly => Socket::pair1()?,
            Kind::Surveyor => Socket::respondent0()?,
            Kind::Push => Socket::pull0()?,
        };
        s.set_recv_timeout(LIMIT)?;
        Ok(s)
    }

    /// A peer's part in a round once it has dialed: receive a little (answering where the
    /// protocol expects an answer).
    fn take_part(self, peer: &Socket) -> nanoport::Result<()> {
        if self == Kind::Poly {
            // Introduces the peer, so the hub's sender learns its pipe and sends to it.
            peer.send("hello")?;
        }
        for _ in 0..TAKE {
            let m = peer.recv()?;
            if self == Kind::Surveyor {
                peer.send(m)?;
            }
        }
        Ok(())
    }

    /// What a peer sends on its way out, right before it closes: pair1 and bus0 peers
    /// leave messages in flight towards the hub, whose receive queue fills, so its pipes
    /// pause and resume (as the sender drains it) while their peers close.
    fn parting_words(self, peer: &Socket) {
        if matches!(self, Kind::Poly | Kind::Bus) {
            for _ in 0..BURST {
                let _ = peer.try_send(&[0xa5; BODY][..]);
            }
        }
    }
}

/// What the sending thread reports, and how it is told to stop.
#[derive(Default)]
struct SenderState {
    stop: AtomicBool,
    stopped: AtomicBool,
    /// Send calls that have returned, whatever their result.
    calls: AtomicU64,
    /// Send calls that returned `Ok`.
    accepted: AtomicU64,
    /// Bumped by the test after a round's peers are gone; the sender then forgets the
    /// pipes it learned (pair1 polyamorous), and acknowledges in `forgot`.
    epoch: AtomicU64,
    forgot: AtomicU64,
}

/// The sending thread: sends through `hub` as fast as it can until told to stop.
fn drive(kind: Kind, hub: Socket, st: Arc<SenderState>) {
    let body = vec![0x5a; BODY];
    // pair1 polyamorous: the pipes the peers introduced themselves on.
    let mut pipes: Vec<Pipe> = Vec::new();
    while !st.stop.load(Ordering::Relaxed) {
        let epoch = st.epoch.load(Ordering::Acquire);
        if st.forgot.load(Ordering::Relaxed) != epoch {
            pipes.clear();
            st.forgot.store(epoch, Ordering::Release);
        }
        let count = |r: Result<(), nanoport::SendError>| {
            st.calls.fetch_add(1, Ordering::Relaxed);
            if r.is_ok() {
                st.accepted.fetch_add(1, Ordering::Relaxed);
            }
        };
        match kind {
            Kind::Pub | Kind::Push => count(hub.send(&body[..])),
            Kind::Bus | Kind::Surveyor => {
                count(hub.send(&body[..]));
                // What the peers send (bus) or answer (surveyor) is read and dropped.
                while hub.try_recv().is_ok() {}
            }
            Kind::Poly => {
                while let Ok(m) = hub.try_recv() {
                    if let Some(p) = m.pipe() {
                        if !pipes.iter().any(|q| q.id() == p.id()) {
                            pipes.push(p);
                        }
                    }
                }
                // Without a destination the message goes to the first peer connected.
                count(hub.send(&body[..]));
                for p in &pipes {
                    let mut m = Message::from(&body[..]);
                    m.set_pipe(Some(p.clone()));
                    count(hub.send(m));
                }
            }
        }
    }
    drop(pipes);
    drop(hub);
    st.stopped.store(true, Ordering::Release);
}

/// A rep0 socket on its own tcp port, answered by its own thread, and a req0 client on
/// another thread that asks it on the test's behalf (plus an idle one).
struct Bystander {
    rep: Socket,
    idle: Socket,
    _rep_listener: Listener,
    asks: mpsc::Sender<u64>,
    answers: mpsc::Receiver<nanoport::Result<u64>>,
}

impl Bystander {
    fn start() -> Bystander {
        let rep = Socket::rep0().unwrap();
        let rep_listener = rep.listen("tcp://127.0.0.1:0").unwrap();
        let port = rep_listener.port().unwrap();
        let server = rep.clone();
        std::thread::spawn(move || {
            while let Ok(m) = server.recv() {
                if server.send(m).is_err() {
                    break;
                }
            }
        });
        let url = format!("tcp://127.0.0.1:{port}");
        // A second client that stays idle: a socket with a single pipe is driven by the
        // thread blocked in it, whereas a server with several pipes reads its requests
        // through the process's reactor, like any busy server.
        let idle = Socket::req0().unwrap();
        idle.dial(&url).unwrap();
        let req = Socket::req0().unwrap();
        // Longer than any bound of the test: the test's own bound decides.
        req.set_recv_timeout(Duration::from_secs(120)).unwrap();
        req.dial(&url).unwrap();
        assert!(
            settle(LIMIT, || rep.pipe_count() == 2),
            "the rep0 socket has {} pipes, not 2",
            rep.pipe_count()
        );
        let (asks, asked) = mpsc::channel::<u64>();
        let (answer, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for n in asked {
                let mut m = Message::new();
                m.append_u64(n);
                let r = req
                    .send(m)
                    .map_err(nanoport::Error::from)
                    .and_then(|()| req.recv())
                    .and_then(|mut m| m.trim_u64());
                if answer.send(r).is_err() {
                    break;
                }
            }
            let _ = req.close();
        });
        Bystander {
            rep,
            idle,
            _rep_listener: rep_listener,
            asks,
            answers,
        }
    }

    /// One request and its reply, within `LIMIT`.
    fn ask(&self, n: u64) -> Result<(), String> {
        let t = Instant::now();
        self.asks
            .send(n)
            .map_err(|_| "the req0 client thread is gone".to_string())?;
        match self.answers.recv_timeout(LIMIT) {
            Ok(Ok(v)) if v == n => Ok(()),
            Ok(Ok(v)) => Err(format!("the rep0 socket answered {v} to request {n}")),
            Ok(Err(e)) => Err(format!("the req0/rep0 round trip failed: {e:?}")),
            Err(_) => Err(format!(
                "the rep0 socket on another port gave no reply within {:?} (a req0 waits for it)",
                t.elapsed()
            )),
        }
    }
}

/// The peers of one round.
struct Crowd {
    joined: AtomicUsize,
    closed: AtomicUsize,
    failures: Mutex<Vec<String>>,
    /// Met when all peers have joined and received.
    all_in: Barrier,
    /// Met when the sender has made `BACKLOG` more calls at the silent peers (or
    /// `BACKLOG_TIME` has passed): then all leave at once.
    leave_together: Barrier,
    sender: Arc<SenderState>,
}

fn peer_thread(kind: Kind, url: String, crowd: Arc<Crowd>) {
    let (peer, dialer, failure) = match kind.peer() {
        Err(e) => (None, None, Some(e)),
        Ok(s) => match s.dial(&url) {
            Err(e) => (Some(s), None, Some(e)),
            Ok(d) => {
                let failure = kind.take_part(&s).err();
                (Some(s), Some(d), failure)
            }
        },
    };
    if let Some(e) = failure {
        lock(&crowd.failures).push(format!("{url}: {e:?}"));
    }
    crowd.joined.fetch_add(1, Ordering::AcqRel);
    if crowd.all_in.wait().is_leader() {
        // The peers read no more: let the sender's writes to them back up for a while
        // (pacing, not a bound: if the sender is stuck the test reports it after).
        let calls = crowd.sender.calls.load(Ordering::Relaxed);
        settle(BACKLOG_TIME, || {
            crowd.sender.calls.load(Ordering::Relaxed) >= calls + BACKLOG
        });
    }
    crowd.leave_together.wait();
    if let Some(s) = peer {
        if dialer.is_some() {
            kind.parting_words(&s);
        }
        let _ = s.close();
    }
    drop(dialer);
    crowd.closed.fetch_add(1, Ordering::AcqRel);
}

/// Waits up to `limit` for `counter` to reach `n`; returns what it reached.
fn reach(counter: &AtomicUsize, n: usize, limit: Duration) -> usize {
    settle(limit, || counter.load(Ordering::Acquire) >= n);
    counter.load(Ordering::Acquire)
}

/// One protocol's churn: the hub socket, its sending thread and the bystander.
struct Rig {
    kind: Kind,
    label: String,
    hub: Socket,
    listeners: Vec<Listener>,
    urls: Vec<String>,
    ipc_files: Vec<String>,
    sender: Arc<SenderState>,
    bystander: Bystander,
    fds: usize,
}

impl Rig {
    /// Starts `kind`'s hub listening on one tcp port and on `ipc` ipc addresses (peers
    /// spread over them) and its sender.
    fn start(kind: Kind, tcp: bool, ipc: usize) -> Rig {
        let hub = kind.hub();
        let mut listeners = Vec::new();
        let mut urls = Vec::new();
        let mut ipc_files = Vec::new();
        if tcp {
            let l = hub.listen("tcp://127.0.0.1:0").unwrap();
            urls.push(format!("tcp://127.0.0.1:{}", l.port().unwrap()));
            listeners.push(l);
        }
        for _ in 0..ipc {
            let url = common::ipc("churn");
            listeners.push(hub.listen(&url).unwrap());
            ipc_files.push(url.trim_start_matches("ipc://").to_string());
            urls.push(url);
        }
        if kind == Kind::Push {
            // With no peer ready, a send returns (timed out) instead of waiting forever.
            hub.set_send_timeout(Duration::from_millis(20)).unwrap();
        }
        let transports = match (tcp, ipc) {
            (true, 0) => "tcp".to_string(),
            (false, _) => "ipc".to_string(),
            (true, _) => "tcp and ipc".to_string(),
        };
        let label = format!("{} over {transports}", kind.name());
        let bystander = Bystander::start();
        bystander
            .ask(0)
            .unwrap_or_else(|e| panic!("{label}: before any churn, {e}"));
        let sender = Arc::new(SenderState::default());
        let (h, st) = (hub.clone(), sender.clone());
        std::thread::spawn(move || drive(kind, h, st));
        let fds = open_fds();
        Rig {
            kind,
            label,
            hub,
            listeners,
            urls,
            ipc_files,
            sender,
            bystander,
            fds,
        }
    }

    /// Reports a wedge: leaks every socket (closing one could wedge this thread too) and
    /// fails.
    fn fail(self, round: usize, what: String) -> ! {
        let msg = format!("{}, round {round} of {ROUNDS}: {what}", self.label);
        for f in &self.ipc_files {
            let _ = std::fs::remove_file(f);
        }
        std::mem::forget(self);
        panic!("{msg}");
    }

    fn round(&self, round: usize) -> Result<(), String> {
        let crowd = Arc::new(Crowd {
            joined: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            failures: Mutex::new(Vec::new()),
            all_in: Barrier::new(PEERS),
            leave_together: Barrier::new(PEERS),
            sender: self.sender.clone(),
        });
        let threads: Vec<JoinHandle<()>> = (0..PEERS)
            .map(|i| {
                let (url, crowd, kind) = (
                    self.urls[i % self.urls.len()].clone(),
                    crowd.clone(),
                    self.kind,
                );
                std::thread::spawn(move || peer_thread(kind, url, crowd))
            })
            .collect();

        let joined = reach(&crowd.joined, PEERS, JOIN_LIMIT);
        if joined < PEERS {
            let mut what = vec![format!(
                "{} of {PEERS} peers still dialing or waiting for their first {TAKE} messages after {JOIN_LIMIT:?}",
                PEERS - joined
            )];
            what.extend(self.symptoms(round, 0));
            return Err(what.join("; "));
        }
        let closed = reach(&crowd.closed, PEERS, LIMIT);
        if closed < PEERS {
            let mut what = vec![format!(
                "{} of {PEERS} peers stuck in close() for {LIMIT:?} after leaving together",
                PEERS - closed
            )];
            what.extend(self.symptoms(round, PEERS - closed));
            return Err(what.join("; "));
        }
        for t in threads {
            t.join().expect("a peer thread panicked");
        }
        let failures = std::mem::take(&mut *lock(&crowd.failures));
        if !failures.is_empty() {
            return Err(format!(
                "{} of {PEERS} peers could not dial or receive {TAKE} messages: {}",
                failures.len(),
                failures.join("; ")
            ));
        }
        let what = self.symptoms(round, 0);
        if what.is_empty() {
            Ok(())
        } else {
            Err(what.join("; "))
        }
    }

    /// Checks, all at once and each within `LIMIT`, that the sender still gets through
    /// its calls, that the rep0 socket answers, and that the dead pipes and their fds are
    /// gone (but `alive` peers that have not closed); returns what failed.
    fn symptoms(&self, round: usize, alive: usize) -> Vec<String> {
        let t = Instant::now();
        let left = || LIMIT.saturating_sub(t.elapsed());
        let mut what = Vec::new();
        // Started first, they run while the sender is watched.
        if self.bystander.asks.send(round as u64).is_err() {
            what.push("the req0 client thread is gone".to_string());
        }
        let hub = self.hub.clone();
        let (tx, pipes) = mpsc::channel();
        std::thread::spawn(move || {
            settle(LIMIT, || hub.pipe_count() <= alive);
            let _ = tx.send(hub.pipe_count());
        });
        let epoch = self.sender.epoch.fetch_add(1, Ordering::AcqRel) + 1;

        let calls = self.sender.calls.load(Ordering::Relaxed);
        if !settle(LIMIT, || self.sender.calls.load(Ordering::Relaxed) > calls) {
            what.push(format!(
                "the sending thread is stuck: no {} send has returned for {LIMIT:?} ({calls} had)",
                self.kind.name()
            ));
        }
        match self.bystander.answers.recv_timeout(left()) {
            Ok(Ok(v)) if v == round as u64 => {}
            Ok(Ok(v)) => what.push(format!("the rep0 socket answered {v} to request {round}")),
            Ok(Err(e)) => what.push(format!("the req0/rep0 round trip failed: {e:?}")),
            Err(_) => what.push(format!(
                "the rep0 socket on another port gave its req0 no reply for {LIMIT:?}"
            )),
        }
        match pipes.recv_timeout(left() + Duration::from_secs(1)) {
            Ok(n) if n <= alive => {}
            Ok(n) => what.push(format!(
                "{} dead pipes still attached {LIMIT:?} after their peers closed",
                n - alive
            )),
            Err(_) => what.push("pipe_count() blocked".into()),
        }
        if alive == 0 {
            // The sender drops the pipe handles it learned before the fds are counted.
            let forgot = settle(left(), || {
                self.sender.forgot.load(Ordering::Acquire) == epoch
            });
            if !settle(left(), || open_fds() <= self.fds + FD_SLACK) {
                what.push(format!(
                    "{} fds open {LIMIT:?} after the round, {} before the first round{}",
                    open_fds(),
                    self.fds,
                    if forgot || self.kind != Kind::Poly {
                        ""
                    } else {
                        " (the sender may still hold pipe handles)"
                    }
                ));
            }
        }
        what
    }

    /// Stops the sender and closes everything, each step bounded.
    fn finish(self, round: usize) {
        self.sender.stop.store(true, Ordering::Relaxed);
        if !settle(LIMIT, || self.sender.stopped.load(Ordering::Acquire)) {
            self.fail(round, "the sending thread did not stop".into());
        }
        let sockets = [
            self.hub.clone(),
            self.bystander.rep.clone(),
            self.bystander.idle.clone(),
        ];
        if within(LIMIT, move || {
            for s in sockets {
                let _ = s.close();
            }
        })
        .is_none()
        {
            self.fail(round, "closing the sockets blocked".into());
        }
        for f in &self.ipc_files {
            let _ = std::fs::remove_file(f);
        }
        drop(self.listeners);
    }
}

fn churn(kind: Kind, tcp: bool, ipc: usize) {
    let t = Instant::now();
    let rig = Rig::start(kind, tcp, ipc);
    for round in 1..=ROUNDS {
        if let Err(what) = rig.round(round) {
            rig.fail(round, what);
        }
        eprintln!(
            "{}: round {round} ok at {:.1?} ({} sends accepted so far)",
            rig.label,
            t.elapsed(),
            rig.sender.accepted.load(Ordering::Relaxed)
        );
    }
    let accepted = rig.sender.accepted.load(Ordering::Relaxed);
    let label = rig.label.clone();
    rig.finish(ROUNDS);
    assert!(accepted > 0, "{label}: no send was accepted");
    eprintln!(
        "{label}: {ROUNDS} rounds of {PEERS} peers in {:.1?}",
        t.elapsed()
    );
}

/// Runs `body` in a child process that runs only the test `name`, one child at a time,
/// and fails with the child's output if the child fails or outlives `CHILD_LIMIT`.
fn in_child(name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        body();
        return;
    }
    use std::io::Read;
    use std::process::{Command, Stdio};
    let _serial = lock(&SERIAL);
    let t = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run this test binary again as a child");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        match child.try_wait().unwrap() {
            Some(s) => break Some(s),
            None if t.elapsed() > CHILD_LIMIT => break None,
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let output = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    eprintln!("{output}");
    match status {
        None => panic!(
            "{name}: the child process was still running after {CHILD_LIMIT:?} and was killed"
        ),
        Some(s) => assert!(
            s.success(),
            "{name}: the child process failed ({s}); its output is above"
        ),
    }
}

/// A test that runs `churn` in a child process of its own.
macro_rules! churn_test {
    ($(#[$doc:meta])* $name:ident: $kind:expr, tcp: $tcp:expr, ipc: $ipc:expr) => {
        $(#[$doc])*
        #[test]
        fn $name() {
            in_child(stringify!($name), || churn($kind, $tcp, $ipc));
        }
    };
}

churn_test!(
    /// Subscribers (sub0, subscribed to everything) of a publishing pub0.
    pub0_survives_subscribers_leaving_together: Kind::Pub, tcp: true, ipc: 0
);
churn_test!(
    /// bus0 peers of a broadcasting bus0; they send to it as they leave.
    bus0_survives_peers_leaving_together: Kind::Bus, tcp: true, ipc: 0
);
churn_test!(
    /// pair1 peers of a polyamorous pair1 that sends to each of them (and to whichever
    /// connected first); they send to it as they leave.
    pair1_poly_survives_peers_leaving_together: Kind::Poly, tcp: true, ipc: 0
);
churn_test!(
    /// respondent0 peers answering a surveyor0 that starts survey after survey.
    surveyor0_survives_respondents_leaving_together: Kind::Surveyor, tcp: true, ipc: 0
);
churn_test!(
    /// pull0 peers of a push0 that sends with a short send timeout.
    push0_survives_pullers_leaving_together: Kind::Push, tcp: true, ipc: 0
);
churn_test!(
    /// As the pub0 test, over ipc.
    pub0_survives_subscribers_leaving_together_over_ipc: Kind::Pub, tcp: false, ipc: 1
);
churn_test!(
    /// As the bus0 test, half the peers over tcp and half over ipc.
    bus0_survives_peers_leaving_together_over_tcp_and_ipc: Kind::Bus, tcp: true, ipc: 1
);
