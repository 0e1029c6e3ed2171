//! A fixed workload to count syscalls and CPU time per operation, under `strace -f -c` or
//! `perf stat`:
//!
//! ```text
//! cargo build --release -p nanoport-bench --example syscalls
//! strace -f -c -o /tmp/s.txt target/release/examples/syscalls sleep-cb 20000
//! ```
//!
//! Modes (N operations each, after a short warm-up that is not counted separately):
//! * `sleep-cb N`: `sleep_aio(0)` on a callback aio, the callback starting the next one.
//! * `sleep-wait N`: `sleep_aio(0)` + `wait` on a callback-less aio.
//! * `noop-wait N`: provider `begin` + `finish` + `wait` on a callback-less aio (no hop).
//! * `noop-cb N`: provider `begin` + `finish` + `wait` on a callback aio (one worker hop).
//! * `pingpong N`: an `IoSource` over a `UnixStream` pair writes 8 bytes and reads the echo
//!   (a plain blocking thread echoes: 1 `read` + 1 `write` per round trip of its own).
//!
//! Prints wall time and process CPU time (all threads) per operation.

use nanoport_engine::AioProvider;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::Mutex;
use std::task::Poll;
use std::time::{Duration, Instant};

use nanoport_bench::cpu_seconds;
use nanoport_engine::{sleep_aio, Aio, Error, IoOp, IoSource, Message, OpToken, Timeout};

struct ReadSome;
impl IoOp<UnixStream> for ReadSome {
    fn attempt(&mut self, io: &UnixStream, aio: &Aio, token: OpToken) -> Poll<()> {
        let mut buf = [0u8; 64];
        match (&*io).read(&mut buf) {
            Ok(0) => {
                aio.finish(token, Err(Error::ConnShut), 0);
                Poll::Ready(())
            }
            Ok(n) => {
                aio.finish(token, Ok(()), n);
                Poll::Ready(())
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Poll::Pending,
            Err(e) => {
                aio.finish(token, Err(e.into()), 0);
                Poll::Ready(())
            }
        }
    }
}

struct Write8([u8; 8]);
impl IoOp<UnixStream> for Write8 {
    fn attempt(&mut self, io: &UnixStream, aio: &Aio, token: OpToken) -> Poll<()> {
        match (&*io).write(&self.0) {
            Ok(n) => {
                aio.finish(token, if n == 8 { Ok(()) } else { Err(Error::Internal) }, n);
                Poll::Ready(())
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Poll::Pending,
            Err(e) => {
                aio.finish(token, Err(e.into()), 0);
                Poll::Ready(())
            }
        }
    }
}

fn run(mode: &str, n: u64) {
    match mode {
        "sleep-cb" => {
            let (tx, rx) = mpsc::channel();
            let tx = Mutex::new(tx);
            let left = std::sync::atomic::AtomicU64::new(n);
            let aio = Aio::new(move |aio| {
                if left.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) > 1 {
                    sleep_aio(Duration::ZERO, aio);
                } else {
                    tx.lock().unwrap().send(()).unwrap();
                }
            })
            .unwrap();
            sleep_aio(Duration::ZERO, &aio);
            rx.recv().unwrap();
            aio.wait();
        }
        "sleep-wait" => {
            let aio = Aio::new_waitable().unwrap();
            for _ in 0..n {
                sleep_aio(Duration::ZERO, &aio);
                aio.wait();
            }
        }
        "noop-wait" | "noop-cb" => {
            let aio = if mode == "noop-wait" {
                Aio::new_waitable().unwrap()
            } else {
                Aio::new(|_| {}).unwrap()
            };
            for _ in 0..n {
                let token = aio.begin(Timeout::Infinite, None).unwrap();
                aio.finish(token, Ok(()), 0);
                aio.wait();
            }
        }
        "pingpong" => {
            let (a, b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let echo = std::thread::spawn(move || {
                let mut b = b;
                let mut buf = [0u8; 8];
                while b.read_exact(&mut buf).is_ok() {
                    if b.write_all(&buf).is_err() {
                        break;
                    }
                }
            });
            let src: IoSource<UnixStream, ReadSome, Write8> = IoSource::new(a).unwrap();
            let aio = Aio::new_waitable().unwrap();
            for i in 0..n {
                src.start_write(&aio, Timeout::Infinite, Write8(i.to_be_bytes()));
                aio.wait();
                assert_eq!(aio.result(), Ok(()));
                let mut got = 0;
                while got < 8 {
                    src.start_read(&aio, Timeout::Infinite, ReadSome);
                    aio.wait();
                    assert_eq!(aio.result(), Ok(()));
                    got += aio.count();
                }
            }
            src.close(Error::Closed);
            drop(src);
            echo.join().unwrap();
        }
        other => {
            eprintln!(
                "unknown mode {other}: sleep-cb | sleep-wait | noop-wait | noop-cb | pingpong"
            );
            std::process::exit(2);
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "sleep-cb".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let _ = Message::new(); // the engine's types are linked in either way
    run(&mode, n.min(1000)); // warm-up: threads started, buffers grown
    let (t0, c0) = (Instant::now(), cpu_seconds());
    run(&mode, n);
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    println!(
        "{mode} x{n}: wall {:.2} µs/op, CPU (all threads) {:.2} µs/op",
        wall * 1e6 / n as f64,
        cpu * 1e6 / n as f64
    );
}
