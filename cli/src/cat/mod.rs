//! `nanoport cat`: nngcat's behaviour on nanoport sockets (nngcat.c's `main`, `recvloop`,
//! `resploop`, `sendloop` and `sendrecv`), checked against nngcat 1.5.2.
//!
//! Where it knowingly differs from nngcat 1.5.2:
//! * times (`--interval`, `--delay`, `--recv-timeout`, `--send-timeout`) also take decimal
//!   seconds (`0.5`);
//! * `--pair` opens pair1 (pair0 with `--compat`) as documented; nngcat 1.5.2 forgets the
//!   flag and says "No protocol specified.";
//! * `--count` without `--interval` on req/surveyor/pair/bus waits for replies until they
//!   end (or `--recv-timeout`); nngcat computes a negative receive timeout there and
//!   usually dies with "Cannot set recv timeout: Invalid argument";
//! * errors are prefixed with "nanoport cat: "; `--version` prints nanoport's version;
//! * TLS (`--insecure`, `--cacert`, `--cert`, `--key`) and ZeroTier (`--zt-home`) options
//!   are accepted (files are read, as nngcat does) and ignored: nanoport has neither
//!   transport, so `tls+tcp://`, `wss://` and `zt://` URLs fail with "Not supported".

pub mod args;
pub mod format;
mod log_stderr;

use std::io::Write;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nanoport::{Error, Message, Protocol, Socket, Timeout, TlsAuthMode, TlsConfig};

use args::{AddrMode, Command, Config, Format, Proto};

/// Runs `nanoport cat` with nngcat's arguments; returns the exit status.
pub fn main(argv: &[Vec<u8>]) -> i32 {
    match args::parse(argv) {
        Err(e) => {
            eprintln!("nanoport cat: {e}");
            1
        }
        Ok(Command::Help) => {
            print!("{}", args::USAGE);
            let _ = std::io::stdout().flush();
            1
        }
        Ok(Command::Version) => {
            println!("{}", env!("CARGO_PKG_VERSION"));
            0
        }
        Ok(Command::Run(cfg)) => match run(&cfg) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("nanoport cat: {e}");
                1
            }
        },
    }
}

/// Prints received messages to standard output, flushing after each, as nngcat does.
struct Printer {
    format: Format,
    buf: Vec<u8>,
}

impl Printer {
    fn print(&mut self, body: &[u8]) -> Result<(), String> {
        if matches!(self.format, Format::Unset | Format::Blank) {
            return Ok(());
        }
        self.buf.clear();
        format::render(self.format, body, &mut self.buf);
        write_out(&self.buf)
    }
}

fn write_out(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // Like a C program killed by SIGPIPE: the reader went away, stop quietly.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(1),
        Err(e) => Err(format!("Cannot write to standard output: {e}")),
    }
}

fn protocol(p: Proto) -> Protocol {
    match p {
        Proto::Req0 => Protocol::Req0,
        Proto::Rep0 => Protocol::Rep0,
        Proto::Push0 => Protocol::Push0,
        Proto::Pull0 => Protocol::Pull0,
        Proto::Pub0 => Protocol::Pub0,
        Proto::Sub0 => Protocol::Sub0,
        Proto::Surveyor0 => Protocol::Surveyor0,
        Proto::Respondent0 => Protocol::Respondent0,
        Proto::Pair0 => Protocol::Pair0,
        Proto::Pair1 | Proto::Pair => Protocol::Pair1,
        Proto::Bus0 => Protocol::Bus0,
    }
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Opens the socket, sets it up, dials and listens, then runs the protocol's loop.
fn run(cfg: &Config) -> Result<(), String> {
    if cfg.verbose {
        log_stderr::install();
    }
    let sock =
        Socket::open(protocol(cfg.proto)).map_err(|e| format!("Unable to open socket: {e}"))?;
    for t in &cfg.topics {
        sock.subscribe(t)
            .map_err(|e| format!("Unable to subscribe to topic {}: {e}", lossy(t)))?;
    }
    if cfg.send_timeout_ms > 0 {
        sock.set_send_timeout(ms(cfg.send_timeout_ms))
            .map_err(|e| format!("Unable to set send timeout: {e}"))?;
    }
    if cfg.recv_timeout_ms > 0 {
        sock.set_recv_timeout(ms(cfg.recv_timeout_ms))
            .map_err(|e| format!("Unable to set recv timeout: {e}"))?;
    }
    if let Some(n) = cfg.recv_maxsz {
        sock.set_recv_max_size(n)
            .map_err(|e| format!("Unable to set max receive size: {e}"))?;
    }
    if let Some(name) = &cfg.socket_name {
        sock.set_name(&lossy(name))
            .map_err(|e| format!("Unable to set socket name: {e}"))?;
    }

    // Endpoints stay open until the process exits.
    let mut dialers = Vec::new();
    let mut listeners = Vec::new();
    for (mode, url) in &cfg.addrs {
        match mode {
            AddrMode::Dial => {
                let d = sock
                    .dialer(url)
                    .map_err(|e| format!("Unable to create dialer for {url}: {e}"))?;
                if let Some(tls) = tls_config(cfg, url, false)? {
                    d.set_tls(&tls)
                        .map_err(|e| format!("Unable to set TLS config: {e}"))?;
                }
                d.start(cfg.nonblocking)
                    .map_err(|e| format!("Unable to dial on {url}: {e}"))?;
                if cfg.verbose {
                    write_out(format!("Connected to: {}\n", d.url()).as_bytes())?;
                }
                dialers.push(d);
            }
            AddrMode::Listen => {
                let l = sock
                    .listener(url)
                    .map_err(|e| format!("Unable to create listener for {url}: {e}"))?;
                if let Some(tls) = tls_config(cfg, url, true)? {
                    l.set_tls(&tls)
                        .map_err(|e| format!("Unable to set TLS config: {e}"))?;
                }
                l.start()
                    .map_err(|e| format!("Unable to listen on {url}: {e}"))?;
                if cfg.verbose {
                    let shown = bound_url(&l.url(), l.port());
                    write_out(format!("Listening at: {shown}\n").as_bytes())?;
                }
                listeners.push(l);
            }
        }
    }

    let mut p = Printer {
        format: cfg.format,
        buf: Vec::new(),
    };
    let res = exchange(&sock, cfg, &mut p);
    if cfg.stats {
        // nanoport's addition: the statistics tree, on stderr so it never mixes with the
        // messages nngcat prints.
        eprint!("{}", sock.stat());
    }
    res
}

/// The protocol's loop, as nngcat picks it from the protocol and `--data`.
fn exchange(sock: &Socket, cfg: &Config, p: &mut Printer) -> Result<(), String> {
    match (cfg.proto, &cfg.data) {
        (Proto::Sub0 | Proto::Pull0, _) => recv_loop(sock, cfg, p),
        (Proto::Rep0 | Proto::Respondent0, None) => recv_loop(sock, cfg, p),
        (Proto::Rep0 | Proto::Respondent0, Some(data)) => resp_loop(sock, cfg, data, p),
        (Proto::Push0 | Proto::Pub0, Some(data)) => send_loop(sock, cfg, data),
        (Proto::Bus0 | Proto::Pair0 | Proto::Pair1 | Proto::Pair, None) => recv_loop(sock, cfg, p),
        (_, Some(data)) => send_recv(sock, cfg, data, p),
        (_, None) => Err("No data to send (specify with --data or --file)".into()),
    }
}

/// The TLS configuration nngcat builds for a `tls+tcp://` or `wss://` endpoint from
/// `--cert`/`--key` (own certificate; the key defaults to the cert file), `--cacert` (CA
/// chain) and `--insecure` (auth mode none); `None` for other URLs.
pub fn tls_config(cfg: &Config, url: &str, server: bool) -> Result<Option<TlsConfig>, String> {
    if !(url.starts_with("tls+") || url.starts_with("wss")) {
        return Ok(None);
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut tls = if server {
        TlsConfig::server()
    } else {
        TlsConfig::client()
    };
    if let Some(cert) = &cfg.cert {
        let key = cfg.key.as_ref().unwrap_or(cert);
        tls = tls
            .cert_key_pem(&text(cert), &text(key))
            .map_err(|e| format!("Unable to set TLS certificate and key: {e}"))?;
    }
    if let Some(ca) = &cfg.cacert {
        tls = tls
            .ca_pem(&text(ca))
            .map_err(|e| format!("Unable to set TLS CA chain: {e}"))?;
    }
    if cfg.insecure {
        tls = tls.auth_mode(TlsAuthMode::None);
    }
    Ok(Some(tls))
}

/// A listener's URL as NNG reports it once bound: a TCP port 0 shows the chosen port.
pub fn bound_url(url: &str, port: Option<u16>) -> String {
    match (url.strip_suffix(":0"), port) {
        (Some(head), Some(p)) if p != 0 => format!("{head}:{p}"),
        _ => url.to_string(),
    }
}

/// Prints what arrives until `--count` messages, a timeout or the end of a survey.
fn recv_loop(sock: &Socket, cfg: &Config, p: &mut Printer) -> Result<(), String> {
    let mut iters = 0u32;
    loop {
        if cfg.count > 0 && iters >= cfg.count {
            return Ok(());
        }
        let r = sock.recv();
        iters += 1;
        match r {
            Ok(m) => p.print(m.body())?,
            Err(Error::TimedOut | Error::State) => return Ok(()),
            Err(e) => return Err(format!("Receive error: {e}")),
        }
    }
}

/// rep/respondent with data: print each request and answer it with the data.
fn resp_loop(sock: &Socket, cfg: &Config, data: &[u8], p: &mut Printer) -> Result<(), String> {
    let mut iters = 0u32;
    loop {
        let m = sock.recv().map_err(|e| format!("Receive error: {e}"))?;
        p.print(m.body())?;
        drop(m);
        sock.send(Message::from(data))
            .map_err(|e| format!("Send error: {e}"))?;
        iters += 1;
        if cfg.count > 0 && iters >= cfg.count {
            break;
        }
    }
    sleep(Duration::from_millis(200));
    Ok(())
}

/// push/pub: send the data once, or per `--interval` (start to start) up to `--count`.
fn send_loop(sock: &Socket, cfg: &Config, data: &[u8]) -> Result<(), String> {
    if cfg.delay_ms > 0 {
        sleep(ms(cfg.delay_ms));
    }
    let mut iters = 0u32;
    loop {
        let start = Instant::now();
        sock.send(Message::from(data))
            .map_err(|e| format!("Send error: {e}"))?;
        iters += 1;
        if (cfg.interval_ms < 0 && cfg.count == 0) || (cfg.count > 0 && iters >= cfg.count) {
            break;
        }
        pace(start, cfg.interval_ms);
    }
    // Give the queues a chance to drain.
    sleep(Duration::from_millis(200));
    Ok(())
}

/// Sleeps for what is left of the interval since `start` (nothing if it is unset).
fn pace(start: Instant, interval_ms: i64) {
    if interval_ms >= 0 {
        let interval = ms(interval_ms);
        let spent = start.elapsed();
        if spent < interval {
            sleep(interval - spent);
        }
    }
}

/// How long to wait for replies in one round of [`send_recv`]: the rest of the interval,
/// capped by `--recv-timeout`; with no interval, `--recv-timeout` or forever.
///
/// nngcat computes `interval - elapsed` even when the interval is unset (-1), and fails
/// with "Cannot set recv timeout: Invalid argument" when that is below -1 (a millisecond
/// has passed); an overrun interval fails the same way. Here an unset interval means
/// "until the reply, the timeout or the end of the survey", and an overrun one means "no
/// more waiting".
pub fn round_timeout(interval_ms: i64, recv_timeout_ms: i64, elapsed: Duration) -> Timeout {
    let elapsed_ms = elapsed.as_millis().min(i64::MAX as u128) as i64;
    let expire = if interval_ms < 0 {
        None
    } else {
        Some((interval_ms - elapsed_ms).max(0))
    };
    let expire = match (expire, recv_timeout_ms) {
        (None, r) if r >= 0 => Some(r),
        (Some(e), r) if r >= 0 && e > r => Some(r),
        (e, _) => e,
    };
    match expire {
        None => Timeout::Infinite,
        Some(e) => Timeout::After(ms(e)),
    }
}

/// req/surveyor (and pair/bus with data): send, print the replies, repeat.
fn send_recv(sock: &Socket, cfg: &Config, data: &[u8], p: &mut Printer) -> Result<(), String> {
    if cfg.delay_ms > 0 {
        sleep(ms(cfg.delay_ms));
    }
    let mut iters = 0u32;
    loop {
        let start = Instant::now();
        sock.send(Message::from(data))
            .map_err(|e| format!("Send error: {e}"))?;
        if cfg.interval_ms < 0 && cfg.count == 0 {
            return recv_loop(sock, cfg, p);
        }
        loop {
            let t = round_timeout(cfg.interval_ms, cfg.recv_timeout_ms, start.elapsed());
            sock.set_recv_timeout(t)
                .map_err(|e| format!("Cannot set recv timeout: {e}"))?;
            match sock.recv() {
                Ok(m) => p.print(m.body())?,
                Err(Error::TimedOut | Error::State) => break,
                Err(e) => return Err(format!("Cannot receive: {e}")),
            }
        }
        iters += 1;
        if cfg.count > 0 && iters >= cfg.count {
            return Ok(());
        }
        pace(start, cfg.interval_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_urls() {
        assert_eq!(
            bound_url("tcp://127.0.0.1:0", Some(4321)),
            "tcp://127.0.0.1:4321"
        );
        assert_eq!(
            bound_url("tcp://127.0.0.1:5555", Some(5555)),
            "tcp://127.0.0.1:5555"
        );
        assert_eq!(bound_url("ipc:///tmp/x", None), "ipc:///tmp/x");
        assert_eq!(bound_url("tcp://[::1]:0", Some(7)), "tcp://[::1]:7");
    }

    #[test]
    fn round_timeouts() {
        let z = Duration::ZERO;
        assert_eq!(round_timeout(-1, -1, z), Timeout::Infinite);
        assert_eq!(
            round_timeout(-1, -1, Duration::from_millis(5)),
            Timeout::Infinite
        );
        assert_eq!(
            round_timeout(-1, 2000, Duration::from_millis(5)),
            Timeout::After(Duration::from_secs(2))
        );
        assert_eq!(
            round_timeout(1000, -1, Duration::from_millis(300)),
            Timeout::After(Duration::from_millis(700))
        );
        assert_eq!(
            round_timeout(1000, 500, Duration::from_millis(300)),
            Timeout::After(Duration::from_millis(500))
        );
        assert_eq!(
            round_timeout(1000, -1, Duration::from_millis(3000)),
            Timeout::After(Duration::ZERO)
        );
    }
}
