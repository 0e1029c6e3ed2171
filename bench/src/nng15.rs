//! Debian's libnng 1.5.2 (`libnng.so.1`, built with mbedTLS, so it speaks tls+tcp, ws and
//! wss) as the contender for the secure and web transports, through a few hand-declared
//! functions of its C API. The vendored NNG 2.0 of the `libnng` feature is built without
//! TLS. Feature `libnng-system` (`apt-get install libnng1`).

use std::ffi::{c_char, c_int, c_void, CString};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::secure::{cert, Secure};
use crate::{RoundTrip, Stream};

#[repr(C)]
#[derive(Clone, Copy)]
struct Id(u32);

#[link(name = "libnng.so.1", kind = "dylib", modifiers = "+verbatim")]
extern "C" {
    fn nng_req0_open(s: *mut Id) -> c_int;
    fn nng_rep0_open(s: *mut Id) -> c_int;
    fn nng_push0_open(s: *mut Id) -> c_int;
    fn nng_pull0_open(s: *mut Id) -> c_int;
    fn nng_close(s: Id) -> c_int;
    fn nng_listener_create(l: *mut Id, s: Id, url: *const c_char) -> c_int;
    fn nng_listener_start(l: Id, flags: c_int) -> c_int;
    fn nng_listener_set_ptr(l: Id, opt: *const c_char, v: *mut c_void) -> c_int;
    fn nng_dialer_create(d: *mut Id, s: Id, url: *const c_char) -> c_int;
    fn nng_dialer_start(d: Id, flags: c_int) -> c_int;
    fn nng_dialer_set_ptr(d: Id, opt: *const c_char, v: *mut c_void) -> c_int;
    fn nng_socket_set_int(s: Id, opt: *const c_char, v: c_int) -> c_int;
    fn nng_send(s: Id, data: *const c_void, len: usize, flags: c_int) -> c_int;
    fn nng_recv(s: Id, data: *mut c_void, len: *mut usize, flags: c_int) -> c_int;
    fn nng_free(p: *mut c_void, len: usize);
    fn nng_tls_config_alloc(c: *mut *mut c_void, mode: c_int) -> c_int;
    fn nng_tls_config_own_cert(
        c: *mut c_void,
        cert: *const c_char,
        key: *const c_char,
        pass: *const c_char,
    ) -> c_int;
    fn nng_tls_config_ca_chain(c: *mut c_void, ca: *const c_char, crl: *const c_char) -> c_int;
}

const NNG_FLAG_ALLOC: c_int = 1;

fn check(what: &str, rv: c_int) {
    assert_eq!(rv, 0, "libnng {what} failed: {rv}");
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `listener` listens on `t`, `dialer` dials it, TLS configured as nanoport's contender.
fn connect(t: Secure, listener: Id, dialer: Id) {
    let url = cstr(&t.url(free_port()));
    let opt = cstr("tls-config");
    let (c, k) = cert();
    let (c, k) = (cstr(c), cstr(k));
    // libnng copies what it keeps (the TLS config is reference counted by its endpoint).
    // SAFETY: every pointer passed is a valid NUL-terminated string or an out-parameter.
    unsafe {
        let mut l = Id(0);
        check(
            "listener",
            nng_listener_create(&mut l, listener, url.as_ptr()),
        );
        let mut d = Id(0);
        check("dialer", nng_dialer_create(&mut d, dialer, url.as_ptr()));
        if t.tls() {
            let mut scfg = std::ptr::null_mut();
            check("tls server", nng_tls_config_alloc(&mut scfg, 1));
            check(
                "own cert",
                nng_tls_config_own_cert(scfg, c.as_ptr(), k.as_ptr(), std::ptr::null()),
            );
            check("set tls", nng_listener_set_ptr(l, opt.as_ptr(), scfg));
            let mut ccfg = std::ptr::null_mut();
            check("tls client", nng_tls_config_alloc(&mut ccfg, 0));
            check(
                "ca",
                nng_tls_config_ca_chain(ccfg, c.as_ptr(), std::ptr::null()),
            );
            check("set tls", nng_dialer_set_ptr(d, opt.as_ptr(), ccfg));
        }
        check("listen", nng_listener_start(l, 0));
        check("dial", nng_dialer_start(d, 0));
    }
}

fn send(s: Id, body: &[u8]) -> bool {
    // SAFETY: `body` is valid for its length; nng_send copies it.
    unsafe { nng_send(s, body.as_ptr().cast(), body.len(), 0) == 0 }
}

fn recv(s: Id) -> Option<usize> {
    let mut p: *mut c_void = std::ptr::null_mut();
    let mut n = 0usize;
    // SAFETY: with NNG_FLAG_ALLOC libnng stores a buffer it allocated in `p` and its size
    // in `n`; it is freed with nng_free and that size.
    unsafe {
        if nng_recv(
            s,
            (&mut p as *mut *mut c_void).cast(),
            &mut n,
            NNG_FLAG_ALLOC,
        ) != 0
        {
            return None;
        }
        nng_free(p, n);
    }
    Some(n)
}

fn open(f: unsafe extern "C" fn(*mut Id) -> c_int) -> Id {
    let mut s = Id(0);
    // SAFETY: an out-parameter on this stack frame.
    check("open", unsafe { f(&mut s) });
    s
}

fn close(s: Id) {
    // SAFETY: closing a socket id; libnng ignores ids it no longer knows.
    unsafe { nng_close(s) };
}

/// libnng req0 and a rep0 echo thread over `t`.
pub struct NngSecRoundTrip {
    req: Id,
    rep: Id,
    echo: Option<JoinHandle<()>>,
    body: Vec<u8>,
}

impl NngSecRoundTrip {
    /// Connects a pair over `t`; messages carry `size` bytes.
    pub fn new(t: Secure, size: usize) -> Self {
        let rep = open(nng_rep0_open);
        let req = open(nng_req0_open);
        connect(t, rep, req);
        let echo = std::thread::spawn(move || {
            let mut buf = Vec::new();
            loop {
                let mut p: *mut c_void = std::ptr::null_mut();
                let mut n = 0usize;
                // SAFETY: as in `recv`; the buffer is copied out, then freed.
                let ok = unsafe {
                    let ok = nng_recv(
                        rep,
                        (&mut p as *mut *mut c_void).cast(),
                        &mut n,
                        NNG_FLAG_ALLOC,
                    ) == 0;
                    if ok {
                        buf.clear();
                        buf.extend_from_slice(std::slice::from_raw_parts(p.cast::<u8>(), n));
                        nng_free(p, n);
                    }
                    ok
                };
                if !ok || !send(rep, &buf) {
                    break;
                }
            }
        });
        NngSecRoundTrip {
            req,
            rep,
            echo: Some(echo),
            body: vec![7u8; size],
        }
    }
}

impl RoundTrip for NngSecRoundTrip {
    fn round_trip(&mut self) {
        assert!(send(self.req, &self.body));
        assert_eq!(recv(self.req), Some(self.body.len()));
    }
}

impl Drop for NngSecRoundTrip {
    fn drop(&mut self) {
        close(self.req);
        close(self.rep);
        if let Some(h) = self.echo.take() {
            let _ = h.join();
        }
    }
}

/// libnng push0 (send buffer as nanoport's) to pull0 over `t`.
pub struct NngSecStream {
    push: Id,
    pull: Id,
    body: Vec<u8>,
}

impl NngSecStream {
    /// Connects a pair over `t`; messages carry `size` bytes.
    pub fn new(t: Secure, size: usize) -> Self {
        let pull = open(nng_pull0_open);
        let push = open(nng_push0_open);
        let opt = cstr("send-buffer");
        // SAFETY: a valid option name; an int option.
        check("sendbuf", unsafe {
            nng_socket_set_int(push, opt.as_ptr(), crate::np::push_send_buffer())
        });
        connect(t, pull, push);
        NngSecStream {
            push,
            pull,
            body: vec![7u8; size],
        }
    }
}

impl Stream for NngSecStream {
    fn stream(&mut self, n: u64) -> Duration {
        let (push, pull, body) = (self.push, self.pull, &self.body);
        let start = Instant::now();
        std::thread::scope(|s| {
            s.spawn(move || {
                for _ in 0..n {
                    assert!(send(push, body));
                }
            });
            for _ in 0..n {
                assert_eq!(recv(pull), Some(body.len()));
            }
            start.elapsed()
        })
    }
}

impl Drop for NngSecStream {
    fn drop(&mut self) {
        close(self.push);
        close(self.pull);
    }
}
