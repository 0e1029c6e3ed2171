//! libnng (NNG 2.0.0, built from the sources vendored in `nng-sys`) contenders, shaped as
//! the nanoport ones in [`crate::np`].
//!
//! The safe `nng` crate still wraps NNG 1.4.0, so this module holds the small safe layer
//! the benchmarks need over the `nng-sys` 2.0 bindings: open, listen, dial, options,
//! send and receive. Nothing here is a new binding; every call is an `nng_sys` function.
//!
//! Threads: NNG 2.0 defaults to 2 task threads per CPU, 1 expire thread per CPU and one
//! poller. [`init`] sets 2 task threads, 1 expire thread and 1 poller, the shape of
//! nanoport's engine (2 workers on this 2-CPU machine plus 1 reactor thread that also runs
//! timers). Set `NPBENCH_NNG_DEFAULT_THREADS=1` to keep NNG's defaults instead.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nng_sys as sys;

use crate::np::push_send_buffer;
use crate::{remove_ipc_file, RoundTrip, Stream, Transport, Tuning};

/// An NNG error code, displayed with `nng_strerror`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NngError(pub u32);

impl std::fmt::Display for NngError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: nng_strerror accepts any code and returns a static NUL-terminated string.
        let s = unsafe { CStr::from_ptr(sys::nng_strerror(sys::nng_err(self.0))) };
        write!(f, "{} ({})", s.to_string_lossy(), self.0)
    }
}

impl std::error::Error for NngError {}

/// `NNG_ECLOSED`.
pub const ECLOSED: NngError = NngError(7);

fn check(rv: std::ffi::c_int) -> Result<(), NngError> {
    if rv == 0 {
        Ok(())
    } else {
        Err(NngError(rv as u32))
    }
}

/// Initialises libnng once per process (NNG 2.0 requires `nng_init` before use), with the
/// thread counts described in the module documentation.
pub fn init() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let defaults = std::env::var_os("NPBENCH_NNG_DEFAULT_THREADS").is_some();
        let params = sys::nng_init_params {
            num_task_threads: if defaults { 0 } else { 2 },
            num_expire_threads: if defaults { 0 } else { 1 },
            num_poller_threads: if defaults { 0 } else { 1 },
            ..Default::default()
        };
        // SAFETY: `params` is a valid, fully initialised nng_init_params that outlives the
        // call; this is the first and only nng_init of the process (guarded by INIT).
        let rv = unsafe { sys::nng_init(&params) };
        assert_eq!(rv.0, 0, "nng_init: {}", NngError(rv.0));
    });
}

/// The NNG version the benchmarks link, from `nng_version()`.
pub fn version() -> String {
    init();
    // SAFETY: nng_version returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::nng_version()) }
        .to_string_lossy()
        .into_owned()
}

/// The protocols the benchmarks use.
#[derive(Clone, Copy, Debug)]
pub enum Proto {
    /// `nng_req0_open`
    Req0,
    /// `nng_rep0_open`
    Rep0,
    /// `nng_push0_open`
    Push0,
    /// `nng_pull0_open`
    Pull0,
    /// `nng_pair1_open`
    Pair1,
}

/// An NNG socket. Like `nng_socket` it is a plain id: copies name the same socket, and it
/// is closed explicitly with [`NngSocket::close`] (any thread may do so, which is how a
/// blocked receiver is woken).
#[derive(Clone, Copy, Debug)]
pub struct NngSocket(sys::nng_socket);

/// A message received from libnng; freed on drop unless sent on.
pub struct NngMsg(NonNull<sys::nng_msg>);

// SAFETY: an nng_msg is owned by exactly one holder at a time and libnng allows it to be
// used from any thread; NngMsg never shares the pointer.
unsafe impl Send for NngMsg {}

impl NngMsg {
    /// `nng_msg_alloc`: a message with a `size`-byte body (contents unspecified).
    ///
    /// # Errors
    /// The NNG error of nng_msg_alloc.
    pub fn alloc(size: usize) -> Result<Self, NngError> {
        init();
        let mut m: *mut sys::nng_msg = std::ptr::null_mut();
        // SAFETY: `m` is a valid out-parameter; on success it holds a message we own.
        check(unsafe { sys::nng_msg_alloc(&mut m, size) })?;
        Ok(NngMsg(
            NonNull::new(m).expect("nng_msg_alloc returned a message"),
        ))
    }

    /// Body length in bytes.
    pub fn len(&self) -> usize {
        // SAFETY: self.0 is a live message owned by self.
        unsafe { sys::nng_msg_len(self.0.as_ptr()) }
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for NngMsg {
    fn drop(&mut self) {
        // SAFETY: self.0 is a live message owned by self, freed exactly once here.
        unsafe { sys::nng_msg_free(self.0.as_ptr()) }
    }
}

fn c_url(url: &str) -> CString {
    CString::new(url).expect("URL without NUL")
}

impl NngSocket {
    /// Opens a socket of protocol `p`.
    ///
    /// # Errors
    /// The NNG error of the open call.
    pub fn open(p: Proto) -> Result<Self, NngError> {
        init();
        let mut s = sys::nng_socket::default();
        // SAFETY: `s` is a valid out-parameter for the open call.
        let rv = unsafe {
            match p {
                Proto::Req0 => sys::nng_req0_open(&mut s),
                Proto::Rep0 => sys::nng_rep0_open(&mut s),
                Proto::Push0 => sys::nng_push0_open(&mut s),
                Proto::Pull0 => sys::nng_pull0_open(&mut s),
                Proto::Pair1 => sys::nng_pair1_open(&mut s),
            }
        };
        check(rv).map(|()| NngSocket(s))
    }

    /// The underlying `nng_socket`, for calls this wrapper does not cover.
    pub fn raw(&self) -> sys::nng_socket {
        self.0
    }

    /// `nng_listen`; returns the bound TCP port for `tcp://` URLs (None otherwise).
    ///
    /// # Errors
    /// The NNG error of nng_listen.
    pub fn listen(&self, url: &str) -> Result<Option<u16>, NngError> {
        let u = c_url(url);
        let mut l = sys::nng_listener::default();
        // SAFETY: `u` is a NUL-terminated string alive for the call; `l` is a valid
        // out-parameter.
        check(unsafe { sys::nng_listen(self.0, u.as_ptr(), &mut l, 0) })?;
        if !url.starts_with("tcp") {
            return Ok(None);
        }
        let mut port: std::ffi::c_int = 0;
        // SAFETY: the option name is a NUL-terminated constant; `port` is a valid
        // out-parameter; `l` is the listener just started.
        let rv = unsafe {
            sys::nng_listener_get_int(l, sys::NNG_OPT_BOUND_PORT.as_ptr().cast(), &mut port)
        };
        check(rv)?;
        Ok(u16::try_from(port).ok())
    }

    /// `nng_dial` (blocking: returns once the first connection is up).
    ///
    /// # Errors
    /// The NNG error of nng_dial.
    pub fn dial(&self, url: &str) -> Result<(), NngError> {
        self.dial_flags(url, 0)
    }

    /// `nng_dial` with `NNG_FLAG_NONBLOCK`: starts the dialer and returns at once.
    ///
    /// # Errors
    /// The NNG error of nng_dial.
    pub fn dial_nonblocking(&self, url: &str) -> Result<(), NngError> {
        self.dial_flags(url, sys::NNG_FLAG_NONBLOCK as std::ffi::c_int)
    }

    fn dial_flags(&self, url: &str, flags: std::ffi::c_int) -> Result<(), NngError> {
        let u = c_url(url);
        // SAFETY: `u` is NUL-terminated and alive for the call; a null dialer pointer is
        // allowed (we do not keep the dialer id).
        check(unsafe { sys::nng_dial(self.0, u.as_ptr(), std::ptr::null_mut(), flags) })
    }

    /// `nng_socket_set_int` with a NUL-terminated option name from `nng_sys`.
    ///
    /// # Errors
    /// The NNG error of the call.
    pub fn set_int(&self, opt: &[u8], v: i32) -> Result<(), NngError> {
        assert_eq!(opt.last(), Some(&0), "option names are NUL-terminated");
        // SAFETY: `opt` is NUL-terminated (checked above) and alive for the call.
        check(unsafe { sys::nng_socket_set_int(self.0, opt.as_ptr().cast(), v) })
    }

    /// `nng_socket_set_ms` with a NUL-terminated option name from `nng_sys`.
    ///
    /// # Errors
    /// The NNG error of the call.
    pub fn set_ms(&self, opt: &[u8], ms: i32) -> Result<(), NngError> {
        assert_eq!(opt.last(), Some(&0), "option names are NUL-terminated");
        // SAFETY: `opt` is NUL-terminated (checked above) and alive for the call.
        check(unsafe { sys::nng_socket_set_ms(self.0, opt.as_ptr().cast(), ms) })
    }

    /// `nng_send`: copies `body` into a new message and sends it (blocking).
    ///
    /// # Errors
    /// The NNG error of nng_send.
    pub fn send(&self, body: &[u8]) -> Result<(), NngError> {
        // SAFETY: `body` is valid for reads of body.len() bytes for the call; nng_send
        // copies it (no NNG_FLAG_ALLOC).
        check(unsafe { sys::nng_send(self.0, body.as_ptr().cast(), body.len(), 0) })
    }

    /// `nng_sendmsg`: sends `m` without copying.
    ///
    /// # Errors
    /// The NNG error of nng_sendmsg (the message is freed).
    pub fn send_msg(&self, m: NngMsg) -> Result<(), NngError> {
        // SAFETY: `m` is a live message we own. On success NNG takes ownership, so we
        // forget our handle; on failure ownership stays with us and `m` frees it.
        let rv = unsafe { sys::nng_sendmsg(self.0, m.0.as_ptr(), 0) };
        if rv == 0 {
            std::mem::forget(m);
        }
        check(rv)
    }

    /// `nng_recvmsg` (blocking).
    ///
    /// # Errors
    /// The NNG error of nng_recvmsg (`ECLOSED` after close).
    pub fn recv(&self) -> Result<NngMsg, NngError> {
        let mut m: *mut sys::nng_msg = std::ptr::null_mut();
        // SAFETY: `m` is a valid out-parameter; on success it holds a message we own.
        check(unsafe { sys::nng_recvmsg(self.0, &mut m, 0) })?;
        Ok(NngMsg(
            NonNull::new(m).expect("nng_recvmsg returned a message"),
        ))
    }

    /// `nng_socket_close`; blocked calls on other threads return `ECLOSED`.
    pub fn close(&self) {
        // SAFETY: closing an id is always allowed; a second close returns ECLOSED.
        unsafe {
            sys::nng_socket_close(self.0);
        }
    }
}

/// libnng counterpart of [`crate::np::NpRoundTrip`].
pub struct NngRoundTrip {
    req: NngSocket,
    rep: NngSocket,
    url: String,
    echo: Option<JoinHandle<()>>,
    body: Vec<u8>,
}

impl NngRoundTrip {
    /// Connects a req0/rep0 pair over `t` with an echo thread; messages carry `size` bytes.
    pub fn new(t: Transport, size: usize) -> Self {
        let rep = NngSocket::open(Proto::Rep0).expect("rep0");
        let url = t.listen_url();
        let port = rep.listen(&url).expect("listen");
        let url = t.dial_url(&url, port);
        let req = NngSocket::open(Proto::Req0).expect("req0");
        req.dial(&url).expect("dial");
        let echo = std::thread::spawn(move || {
            while let Ok(m) = rep.recv() {
                if rep.send_msg(m).is_err() {
                    break;
                }
            }
        });
        NngRoundTrip {
            req,
            rep,
            url,
            echo: Some(echo),
            body: vec![7u8; size],
        }
    }
}

impl RoundTrip for NngRoundTrip {
    fn round_trip(&mut self) {
        self.req.send(&self.body).expect("send");
        let m = self.req.recv().expect("recv");
        debug_assert_eq!(m.len(), self.body.len(), "echo size");
    }
}

impl Drop for NngRoundTrip {
    fn drop(&mut self) {
        self.req.close();
        self.rep.close();
        if let Some(h) = self.echo.take() {
            let _ = h.join();
        }
        remove_ipc_file(&self.url);
    }
}

/// libnng counterpart of [`crate::np::NpStream`].
pub struct NngStream {
    push: NngSocket,
    pull: NngSocket,
    url: String,
    body: Vec<u8>,
}

impl NngStream {
    /// Connects a push0/pull0 pair over `t`, tuned alike ([`Tuning::Alike`]); messages
    /// carry `size` bytes.
    pub fn new(t: Transport, size: usize) -> Self {
        Self::with_tuning(t, size, Tuning::Alike)
    }

    /// Connects a push0/pull0 pair over `t` set up as `tuning` says; messages carry
    /// `size` bytes.
    pub fn with_tuning(t: Transport, size: usize, tuning: Tuning) -> Self {
        let pull = NngSocket::open(Proto::Pull0).expect("pull0");
        let url = t.listen_url();
        let port = pull.listen(&url).expect("listen");
        let url = t.dial_url(&url, port);
        let push = NngSocket::open(Proto::Push0).expect("push0");
        if tuning == Tuning::Alike {
            push.set_int(sys::NNG_OPT_SENDBUF, push_send_buffer())
                .expect("send buffer");
        }
        push.dial(&url).expect("dial");
        NngStream {
            push,
            pull,
            url,
            body: vec![7u8; size],
        }
    }
}

impl Stream for NngStream {
    fn stream(&mut self, n: u64) -> Duration {
        let (push, body, pull) = (self.push, &self.body, self.pull);
        let start = Instant::now();
        std::thread::scope(|s| {
            s.spawn(move || {
                for _ in 0..n {
                    push.send(body).expect("send");
                }
            });
            for _ in 0..n {
                let m = pull.recv().expect("recv");
                assert_eq!(m.len(), body.len(), "message size");
            }
            start.elapsed()
        })
    }
}

impl Drop for NngStream {
    fn drop(&mut self) {
        self.push.close();
        self.pull.close();
        remove_ipc_file(&self.url);
    }
}
