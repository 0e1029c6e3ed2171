//! Helpers shared by the transport tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use nanoport_engine::{Aio, Message, Result};
use nanoport_transports::{BoxPipe, EndpointOptions, TransportDialer, TransportListener, Url};

pub const PUSH: u16 = 0x50;
pub const PULL: u16 = 0x51;

/// A unique name for this test process.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "np-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn waitable() -> Aio {
    Aio::new_waitable().expect("aio")
}

pub fn dial(d: &TransportDialer) -> Result<BoxPipe> {
    let a = waitable();
    d.dial_aio(&a);
    a.wait();
    a.result()?;
    Ok(a.take_output::<BoxPipe>().expect("dial output"))
}

pub fn accept(l: &TransportListener) -> Result<BoxPipe> {
    let a = waitable();
    l.accept_aio(&a);
    a.wait();
    a.result()?;
    Ok(a.take_output::<BoxPipe>().expect("accept output"))
}

pub fn send(p: &BoxPipe, m: Message) -> Result<()> {
    let a = waitable();
    a.set_msg(m);
    p.send_aio(&a);
    a.wait();
    a.result()
}

pub fn recv(p: &BoxPipe) -> Result<Message> {
    let a = waitable();
    p.recv_aio(&a);
    a.wait();
    a.result()?;
    Ok(a.take_msg().expect("recv msg"))
}

/// Listens on `url` (`:0` ports resolved) and dials it: (dialer side, listener side, listener).
pub fn connect(url: &str, opts: EndpointOptions) -> (BoxPipe, BoxPipe, TransportListener) {
    let u = Url::parse(url).expect("url");
    let l = TransportListener::bind(&u, PULL, opts.clone()).expect("bind");
    let durl = match l.port() {
        Some(p) if url.ends_with(":0") => format!("{}{p}", &url[..url.len() - 1]),
        _ => url.to_string(),
    };
    let d = TransportDialer::new(&Url::parse(&durl).unwrap(), PUSH, opts).expect("dialer");
    let a = waitable();
    l.accept_aio(&a);
    let dp = dial(&d).expect("dial");
    a.wait();
    a.result().expect("accept");
    let lp = a.take_output::<BoxPipe>().unwrap();
    (dp, lp, l)
}

/// Open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Polls `f` until it holds or `limit` passes (for "eventually" checks only).
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn ipc_path(tag: &str) -> String {
    format!("ipc:///tmp/{}.sock", unique(tag))
}
