//! A req/rep service run from the program's own `mio` event loop, next to a plain TCP echo
//! listener on the same loop: nanoport as a guest in someone else's reactor.
//!
//! ```text
//! cargo run --release --example mio_reqrep                  # demo: clients, then numbers
//! cargo run --release --example mio_reqrep -- 20000         # demo with 20000 round trips
//! cargo run --release --example mio_reqrep -- --serve tcp://127.0.0.1:5555 127.0.0.1:7777
//!     # then, e.g.: nngcat --req0 --dial tcp://127.0.0.1:5555 --data hi --interval 1 -A
//!     #             nc 127.0.0.1 7777
//! ```
//!
//! The rep socket's receive and send poll fds ([`Socket::recv_poll_fd`],
//! [`Socket::send_poll_fd`]; NNG's `nng_socket_get_recv_poll_fd`) are registered with
//! `mio` beside the echo listener and its connections. On readiness the loop calls
//! `try_recv` and answers with `try_send`, on its own thread: no nanoport thread is on the
//! message path beyond the reactor that reads the socket and raises the fd (the reply is
//! written from the loop's thread when the pipe has room).
//!
//! `mio` registers edge-triggered, so each event is drained until `Again`; a reply that
//! cannot go yet (its pipe still writing the previous one) waits for the send fd, and no
//! new request is taken meanwhile (a cooked rep answers one request at a time).
//!
//! The demo mode runs a req client (blocking calls, its own thread) and an echo client
//! against the loop, each alone and then both at once, then the same req client against
//! a rep served by a plain blocking thread, and prints round-trip figures measured in the
//! same run.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use nanoport::{Error, Message, Socket};

const REP_IN: Token = Token(0);
const REP_OUT: Token = Token(1);
const ECHO: Token = Token(2);
const WAKE: Token = Token(3);
const FIRST_CONN: usize = 4;

/// One echo connection: what was read and not yet written back.
struct Conn {
    stream: TcpStream,
    unsent: Vec<u8>,
}

struct Server {
    rep: Socket,
    /// A reply that the socket could not take yet; sent when the send fd fires.
    pending: Option<Message>,
    echo: TcpListener,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    replies: u64,
}

impl Server {
    /// Takes requests while there are any and answers each; stops at `Again` (the recv fd
    /// goes quiet, and its next edge brings us back) or at a reply that must wait.
    fn serve_rep(&mut self) {
        loop {
            if let Some(reply) = self.pending.take() {
                match self.rep.try_send(reply) {
                    Ok(()) => self.replies += 1,
                    Err(e) if e.error() == Error::Again => {
                        // The send fd turns readable when the pipe can take it.
                        self.pending = Some(e.into_message());
                        return;
                    }
                    Err(e) => eprintln!("rep: reply dropped: {}", e.error()),
                }
            }
            match self.rep.try_recv() {
                Ok(request) => self.pending = Some(request), // echo the request back
                Err(Error::Again) => return,
                Err(e) => {
                    eprintln!("rep: {e}");
                    return;
                }
            }
        }
    }

    fn accept(&mut self, poll: &Poll) -> io::Result<()> {
        loop {
            match self.echo.accept() {
                Ok((mut stream, _)) => {
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    stream.set_nodelay(true)?;
                    self.conns.insert(
                        token,
                        Conn {
                            stream,
                            unsent: Vec::new(),
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Echoes what a connection sent; drops it on EOF or error.
    fn echo(&mut self, token: Token, poll: &Poll) {
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        let mut buf = [0u8; 4096];
        let mut alive = true;
        loop {
            while !c.unsent.is_empty() {
                match c.stream.write(&c.unsent) {
                    Ok(n) => {
                        c.unsent.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        alive = false;
                        break;
                    }
                }
            }
            if !alive || !c.unsent.is_empty() {
                break;
            }
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    alive = false;
                    break;
                }
                Ok(n) => c.unsent.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    alive = false;
                    break;
                }
            }
        }
        if !alive {
            if let Some(mut c) = self.conns.remove(&token) {
                let _ = poll.registry().deregister(&mut c.stream);
            }
        }
    }
}

/// Runs the loop until `done` says stop (checked after each wake-up through `WAKE`).
fn run(poll: &mut Poll, server: &mut Server, done: impl Fn() -> bool) -> io::Result<()> {
    let mut events = Events::with_capacity(256);
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in events.iter() {
            match ev.token() {
                REP_IN | REP_OUT => server.serve_rep(),
                ECHO => server.accept(poll)?,
                WAKE => {}
                t => server.echo(t, poll),
            }
        }
        if done() {
            return Ok(());
        }
    }
}

/// Median and 99th percentile of `v`, in µs.
fn percentiles(v: &mut [Duration]) -> (f64, f64) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

/// `n` timed round trips (after 1000 untimed) of a blocking req client.
fn req_client(url: &str, n: usize) -> nanoport::Result<Vec<Duration>> {
    let req = Socket::req0()?;
    req.dial(url)?;
    let body = [7u8; 64];
    let mut rtts = Vec::with_capacity(n);
    for i in 0..n + 1000 {
        let t = Instant::now();
        req.send(&body[..]).map_err(|e| e.error())?;
        let reply = req.recv()?;
        assert_eq!(reply.body(), &body[..], "the loop echoes requests");
        if i >= 1000 {
            rtts.push(t.elapsed());
        }
    }
    Ok(rtts)
}

/// `n` timed round trips (after 1000 untimed) of a blocking TCP echo client.
fn echo_client(addr: SocketAddr, n: usize) -> io::Result<Vec<Duration>> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let body = [9u8; 64];
    let mut back = [0u8; 64];
    let mut rtts = Vec::with_capacity(n);
    for i in 0..n + 1000 {
        let t = Instant::now();
        s.write_all(&body)?;
        s.read_exact(&mut back)?;
        assert_eq!(back, body, "the loop echoes bytes");
        if i >= 1000 {
            rtts.push(t.elapsed());
        }
    }
    Ok(rtts)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let serve = args.first().map(String::as_str) == Some("--serve");
    let (url, echo_addr, n) = if serve {
        let url = args
            .get(1)
            .cloned()
            .unwrap_or("tcp://127.0.0.1:5555".into());
        let echo = args.get(2).cloned().unwrap_or("127.0.0.1:7777".into());
        (url, echo, 0)
    } else {
        let n = args.first().map_or(Ok(10_000), |s| s.parse())?;
        (
            "tcp://127.0.0.1:0".to_string(),
            "127.0.0.1:0".to_string(),
            n,
        )
    };

    let mut poll = Poll::new()?;
    let rep = Socket::rep0()?;
    let listener = rep.listen(&url)?;
    let rep_url = match listener.port() {
        Some(p) if !serve => format!("tcp://127.0.0.1:{p}"),
        _ => url.clone(),
    };
    // The fds live as long as the socket; mio only needs the raw numbers to register.
    let recv_fd = rep.recv_poll_fd()?.as_raw_fd();
    let send_fd = rep.send_poll_fd()?.as_raw_fd();
    let registry = poll.registry();
    registry.register(&mut SourceFd(&recv_fd), REP_IN, Interest::READABLE)?;
    registry.register(&mut SourceFd(&send_fd), REP_OUT, Interest::READABLE)?;
    let mut echo = TcpListener::bind(echo_addr.parse()?)?;
    let echo_addr = echo.local_addr()?;
    registry.register(&mut echo, ECHO, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(registry, WAKE)?);

    let mut server = Server {
        rep,
        pending: None,
        echo,
        conns: HashMap::new(),
        next_token: FIRST_CONN,
        replies: 0,
    };

    if serve {
        println!("rep on {rep_url}, echo on {echo_addr}; one mio loop serves both (Ctrl-C ends)");
        run(&mut poll, &mut server, || false)?;
        return Ok(());
    }

    // Demo: a driver thread runs a req client alone, an echo client alone, then both at
    // once, against the loop; the loop serves everything on this thread.
    let finished = Arc::new(AtomicBool::new(false));
    let driver = {
        let (waker, finished, url) = (waker.clone(), finished.clone(), rep_url.clone());
        std::thread::spawn(move || -> Result<Vec<Vec<Duration>>, String> {
            let req = move || req_client(&url, n).map_err(|e| format!("req client: {e}"));
            let echo = move || echo_client(echo_addr, n).map_err(|e| format!("echo: {e}"));
            let mut out = vec![req()?, echo()?];
            let both_req = std::thread::spawn(req);
            let both_echo = std::thread::spawn(echo);
            out.push(both_req.join().map_err(|_| "req client panicked")??);
            out.push(both_echo.join().map_err(|_| "echo client panicked")??);
            finished.store(true, Ordering::SeqCst);
            let _ = waker.wake();
            Ok(out)
        })
    };
    run(&mut poll, &mut server, || finished.load(Ordering::SeqCst))?;
    let rtts = driver.join().map_err(|_| "driver panicked")??;
    println!("one mio loop serving rep (poll fds, {rep_url}) and a TCP echo ({echo_addr});");
    println!("{n} round trips of 64 B per client, after 1000 to warm up:");
    let labels = [
        "req -> rep alone",
        "echo alone",
        "req -> rep, echo running too",
        "echo, req -> rep running too",
    ];
    for (label, mut v) in labels.iter().zip(rtts) {
        let (p50, p99) = percentiles(&mut v);
        println!("  {label:30} median {p50:7.1} us   p99 {p99:8.1} us");
    }
    println!("  ({} replies sent from the loop thread)", server.replies);

    // For comparison, the same req client against a rep served by a plain blocking thread
    // (no event loop: the thread reads its lone pipe itself, one hop fewer).
    let plain = Socket::rep0()?;
    let plain_url = match plain.listen("tcp://127.0.0.1:0")?.port() {
        Some(p) => format!("tcp://127.0.0.1:{p}"),
        None => return Err("no port".into()),
    };
    let server = std::thread::spawn(move || -> nanoport::Result<()> {
        for _ in 0..n + 1000 {
            let m = plain.recv()?;
            plain.send(m).map_err(|e| e.error())?;
        }
        Ok(())
    });
    let mut v = req_client(&plain_url, n)?;
    server.join().map_err(|_| "blocking rep panicked")??;
    let (p50, p99) = percentiles(&mut v);
    println!(
        "  {:30} median {p50:7.1} us   p99 {p99:8.1} us",
        "req -> blocking rep thread"
    );
    Ok(())
}
