//! Connections over stream sockets (tcp, ipc): the `IoOp` state machines that move
//! handshakes, frames and raw bytes, and the two connection types built on them, the SP
//! pipe ([`SpPipe`]) and the byte stream ([`Stream`]).

use nanoport_engine::AioProvider;
use std::io::{ErrorKind, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Poll;

use nanoport_engine::{
    at_scope_end, engine_scope, Aio, Cancel, CancelHook, Error, IoOp, IoSource, Message, OpToken,
    Pipe, PipeId, PipeOps, Result, ScopeEndJob, Timeout,
};
use socket2::Socket;

use crate::frame::{FrameReader, Framing};
use crate::handshake::{parse_header, HEADER_LEN};
use crate::wqueue::{fill_iov, Admit, After, CloseAct, WriteQueue, FLUSH_ROUNDS, MAX_IOV};
use crate::{sys, TransportPipe};

/// A registered stream socket running our read and write operations.
pub(crate) type Src = IoSource<Socket, ROp, WOp>;

/// Read-direction operations.
pub(crate) enum ROp {
    /// The peer's SP header; completes with output `u16` (its protocol id).
    Hdr { buf: [u8; HEADER_LEN], have: usize },
    /// One SP frame, from the pipe's read buffer (refilled by one `recv` when it holds
    /// no complete frame); completes with a message.
    Msg {
        rd: Arc<Mutex<FrameReader>>,
        pipe: Weak<SpPipe>,
    },
    /// Up to `max` raw bytes (the buffer is allocated on the first attempt).
    Stream { max: usize, buf: Vec<u8> },
}

/// Write-direction operations.
pub(crate) enum WOp {
    /// Waits for a non-blocking connect to finish.
    Connect,
    /// Our SP header.
    Hdr { buf: [u8; HEADER_LEN], sent: usize },
    /// Writes the pipe's queued frames once the socket is writable again (the kernel
    /// said `WouldBlock` to the pipe's writer; `fresh` skips the first, inline attempt,
    /// which would only hear it again).
    Flush { pipe: Weak<SpPipe>, fresh: bool },
    /// Some raw bytes (one write; may be partial).
    Stream { msg: Option<Message> },
}

fn fail(aio: &Aio, token: OpToken, e: Error) -> Poll<()> {
    aio.finish(token, Err(e), 0);
    Poll::Ready(())
}

/// Drops a connection after a receive error, as NNG does: the peer sees the close at once,
/// and the pipe is closed (fds released) off this thread.
fn drop_conn(io: &Socket, pipe: &Weak<SpPipe>) {
    sys::shutdown(io);
    let pipe = pipe.clone();
    nanoport_engine::spawn(move || {
        if let Some(p) = pipe.upgrade() {
            p.close();
        }
    });
}

impl IoOp<Socket> for ROp {
    fn attempt(&mut self, io: &Socket, aio: &Aio, token: OpToken) -> Poll<()> {
        match self {
            ROp::Hdr { buf, have } => loop {
                match sys::recv(io, &mut buf[*have..]) {
                    Ok(0) => return fail(aio, token, Error::ConnShut),
                    Ok(n) => {
                        *have += n;
                        if *have == HEADER_LEN {
                            match parse_header(buf) {
                                Ok(peer) => {
                                    let _ = aio.finish_output(token, peer);
                                }
                                Err(e) => {
                                    aio.finish(token, Err(e.into()), 0);
                                }
                            }
                            return Poll::Ready(());
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Poll::Pending,
                    Err(e) => return fail(aio, token, e.into()),
                }
            },
            ROp::Msg { rd, pipe } => {
                // Let go of the reader before the arms (`watch_idle` takes it again).
                let read = {
                    let mut r = lock(rd);
                    if r.skip_read_if_drained() {
                        Ok(None) // wait for readiness (level-triggered) without the EAGAIN
                    } else {
                        r.read_with_as::<Message>(|b| sys::recv(io, b))
                    }
                };
                match read {
                    Ok(None) => {
                        // Parked: if the pipe now sits on buffers, the idle sweep watches it.
                        if let Some(p) = pipe.upgrade() {
                            p.watch_idle();
                        }
                        Poll::Pending
                    }
                    Ok(Some(payload)) => {
                        let mut msg = payload;
                        msg.set_pipe(pipe.upgrade().map(|p| {
                            p.answered.store(true, Ordering::Relaxed);
                            // A reader that never catches up with its writer never parks,
                            // and may go quiet holding what the burst grew: enlist here
                            // too (one atomic load once enlisted).
                            p.watch_idle();
                            p.pipe()
                        }));
                        let _ = aio.finish_recv(token, msg);
                        Poll::Ready(())
                    }
                    Err(e) => {
                        drop_conn(io, pipe);
                        fail(aio, token, e.into())
                    }
                }
            }
            ROp::Stream { max, buf } => {
                buf.resize((*max).min(1 << 20), 0);
                loop {
                    match sys::recv(io, buf) {
                        Ok(0) if !buf.is_empty() => return fail(aio, token, Error::ConnShut),
                        Ok(n) => {
                            let mut data = std::mem::take(buf);
                            data.truncate(n);
                            let _ = aio.finish_recv(token, Message::from(data));
                            return Poll::Ready(());
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Poll::Pending,
                        Err(e) => return fail(aio, token, e.into()),
                    }
                }
            }
        }
    }

    // A receive keeps no bytes of its own (the pipe's reader holds them), so cancelling
    // one never leaves the stream mid-frame: the default `started() == false` holds.

    fn needs_io(&self) -> bool {
        match self {
            ROp::Msg { rd, .. } => !lock(rd).answers_without_io(),
            ROp::Hdr { .. } | ROp::Stream { .. } => true,
        }
    }
}

impl IoOp<Socket> for WOp {
    fn attempt(&mut self, io: &Socket, aio: &Aio, token: OpToken) -> Poll<()> {
        match self {
            WOp::Connect => match sys::connect_done(io) {
                Ok(true) => {
                    aio.finish(token, Ok(()), 0);
                    Poll::Ready(())
                }
                Ok(false) => Poll::Pending,
                Err(e) => fail(aio, token, e.into()),
            },
            WOp::Hdr { buf, sent } => loop {
                match sys::send_vectored(io, &[IoSlice::new(&buf[*sent..])]) {
                    Ok(n) => {
                        *sent += n;
                        if *sent == HEADER_LEN {
                            aio.finish(token, Ok(()), HEADER_LEN);
                            return Poll::Ready(());
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Poll::Pending,
                    Err(e) => return fail(aio, token, e.into()),
                }
            },
            WOp::Flush { pipe, fresh } => {
                if std::mem::take(fresh) {
                    return Poll::Pending;
                }
                match pipe.upgrade() {
                    Some(p) => p.resume_writer(io, aio, token),
                    None => fail(aio, token, Error::Closed),
                }
            }
            WOp::Stream { msg } => {
                let body: &[u8] = msg.as_ref().map(|m| m.body()).unwrap_or(&[]);
                loop {
                    match sys::send_vectored(io, &[IoSlice::new(body)]) {
                        Ok(n) => {
                            aio.finish(token, Ok(()), n);
                            return Poll::Ready(());
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Poll::Pending,
                        Err(e) => return fail(aio, token, e.into()),
                    }
                }
            }
        }
    }

    // A flush op owns no bytes either (the pipe's write queue does).
}

/// Which socket transport a connection runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tcp,
    Ipc,
}

/// What a connection knows about itself.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub kind: Kind,
    pub recv_max: usize,
    pub send_ahead_max: usize,
    pub local: String,
    pub remote: String,
}

impl Meta {
    pub(crate) fn framing(&self) -> Framing {
        match self.kind {
            Kind::Tcp => Framing::Tcp,
            Kind::Ipc => Framing::Ipc,
        }
    }
}

/// A connected socket and what it knows; the socket is released on close.
pub(crate) struct Conn {
    src: Mutex<Option<Src>>,
    meta: Meta,
    cred: Option<(i32, u32, u32)>,
}

/// Starts an op that can only fail (the connection is gone).
fn fail_now(aio: &Aio, e: Error) {
    if let Some(t) = aio.begin(Timeout::Infinite, None) {
        aio.finish(t, Err(e), 0);
    }
}

/// Takes the message to send and leaves it on the aio (a failed send hands it back
/// there); the op keeps a cheap clone (shared body, no copy).
fn peek_msg(aio: &Aio) -> Option<Message> {
    let m = aio.take_msg()?;
    let c = m.clone();
    aio.set_msg(m);
    Some(c)
}

impl Conn {
    pub(crate) fn new(src: Src, meta: Meta) -> Conn {
        let cred = if meta.kind == Kind::Ipc {
            sys::peer_cred(src.io()).ok()
        } else {
            None
        };
        Conn {
            src: Mutex::new(Some(src)),
            meta,
            cred,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Src>> {
        self.src.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn src(&self) -> Option<Src> {
        self.lock().clone()
    }

    /// Takes the socket out (later operations fail with `Closed`); the fd goes when the
    /// last handle does.
    fn take(&self) -> Option<Src> {
        self.lock().take()
    }

    pub(crate) fn close(&self) {
        let src = self.take();
        if let Some(s) = src {
            // Complete what is pending with Closed first, then let the peer see the close.
            s.close(Error::Closed);
            sys::shutdown(s.io());
        }
    }

    fn option(&self, name: &str) -> Result<String> {
        let b = |v: std::io::Result<bool>| v.map(|v| v.to_string()).map_err(Error::from);
        match (name, self.meta.kind) {
            ("remote-address", _) => Ok(self.meta.remote.clone()),
            ("local-address", _) => Ok(self.meta.local.clone()),
            ("tcp-nodelay", Kind::Tcp) => b(self.src().ok_or(Error::Closed)?.io().tcp_nodelay()),
            ("tcp-keepalive", Kind::Tcp) => b(self.src().ok_or(Error::Closed)?.io().keepalive()),
            // The kernel's keep-alive timing (getsockopt): milliseconds, and a count.
            (
                "tcp-keepalive-idle" | "tcp-keepalive-interval" | "tcp-keepalive-count",
                Kind::Tcp,
            ) => {
                let (idle, intvl, cnt) =
                    sys::tcp_keepalive_timing(self.src().ok_or(Error::Closed)?.io())?;
                Ok(match name {
                    "tcp-keepalive-idle" => idle.as_millis().to_string(),
                    "tcp-keepalive-interval" => intvl.as_millis().to_string(),
                    _ => cnt.to_string(),
                })
            }
            ("ipc:peer-pid", Kind::Ipc) => self.cred.map(|c| c.0.to_string()).ok_or(Error::NotSup),
            ("ipc:peer-uid", Kind::Ipc) => self.cred.map(|c| c.1.to_string()).ok_or(Error::NotSup),
            ("ipc:peer-gid", Kind::Ipc) => self.cred.map(|c| c.2.to_string()).ok_or(Error::NotSup),
            _ => Err(Error::NotSup),
        }
    }
}

/// A send waiting for room in a pipe's write buffer.
type Parked = (Aio, OpToken);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An SP pipe over tcp or ipc.
///
/// Reads go through one [`FrameReader`] per connection, so one `recv` serves many
/// receives. Writes go through a bounded [`WriteQueue`] (see the `wqueue` module for the
/// why): a send completes once its frame is accepted, and one writer at a time empties the
/// queue with vectored writes. Lock order: a sending aio, then `wq`; the I/O source's
/// queue, then `wq`, then `flush_aio`. Nothing is started on the I/O source while `wq` is
/// held.
pub(crate) struct SpPipe {
    id: PipeId,
    peer: u16,
    conn: Conn,
    me: Weak<SpPipe>,
    rd: Arc<Mutex<FrameReader>>,
    wq: Mutex<WriteQueue<Parked>>,
    /// Drives the reactor's `WOp::Flush` (at most one at a time: only the writer starts
    /// it). Callback-less, so it is idle again the moment it completes.
    flush_aio: Aio,
    /// Asks the worker pool for a writer (see `wqueue`); its callback writes.
    kick_aio: Aio,
    /// Set by `close`: buffered frames are no longer handed out synchronously.
    closing: AtomicBool,
    /// A message was read since the last send (see `WriteQueue::answered`).
    answered: AtomicBool,
    /// Enlisted in the idle sweep (see `idle.rs`).
    idle_watched: AtomicBool,
    /// The send-ahead bound in force (`EndpointOptions::send_ahead_max`), 0 for none.
    send_ahead: AtomicUsize,
    /// `SO_SNDBUF` as the pipe was made (restored when an ipc pipe's bound is lifted).
    orig_sndbuf: usize,
}

/// The write queue's share of a send-ahead bound: half; the kernel holds the other
/// (see [`set_kernel_bound`]).
fn queue_share(send_ahead_max: usize) -> usize {
    send_ahead_max.div_ceil(2)
}

/// Bounds what the kernel holds on the sending side to about half of a send-ahead bound
/// `b` (0: lifts it). Best effort, as the tcp flags are: a refused setting leaves the
/// queue's half in force.
///
/// * tcp: `TCP_NOTSENT_LOWAT` of `b / 2`: writes wait while that many bytes are queued
///   and not yet sent. It leaves the kernel's self-tuning of the send buffer alone, so
///   the bytes in flight still grow with the path (capping `SO_SNDBUF` instead cut
///   loopback throughput several-fold: docs/benchmarks.md, "Figures behind design
///   choices"); toward a peer that stopped reading nothing is in
///   flight (the window closed, what it took is acknowledged), so the cap is what waits.
///   0 hands the choice back to `net.ipv4.tcp_notsent_lowat` (by default: no limit).
/// * ipc: `SO_SNDBUF` of `b / 4`, which the kernel doubles and charges its per-packet
///   bookkeeping against. A unix stream's bytes wait in the receiver's queue counted
///   against the sender's buffer, so this bounds the whole kernel path. Unix sockets do
///   not self-tune: lifting the bound restores the size the socket had (`orig`).
fn set_kernel_bound(io: &Socket, kind: Kind, b: usize, orig: usize) {
    match kind {
        #[cfg(target_os = "linux")]
        Kind::Tcp => {
            let _ = io.set_tcp_notsent_lowat((b / 2).min(u32::MAX as usize) as u32);
        }
        // Elsewhere only the write queue's half applies over tcp.
        #[cfg(not(target_os = "linux"))]
        Kind::Tcp => {}
        Kind::Ipc => {
            let size = if b == 0 { orig / 2 } else { (b / 4).max(1) };
            if size > 0 {
                let _ = io.set_send_buffer_size(size);
            }
        }
    }
}

/// Bytes `m` takes on the wire.
fn frame_len(framing: Framing, m: &Message) -> usize {
    framing.prefix_len() + m.header_len() + m.len()
}

/// How a writer's run ended.
enum Pumped {
    /// The role was released (queue empty, handed to a kick, closed or failed).
    Done,
    /// The kernel would block; the role now belongs to the reactor.
    WouldBlock,
}

impl SpPipe {
    pub(crate) fn new(src: Src, peer: u16, meta: Meta) -> Arc<SpPipe> {
        let framing = meta.framing();
        let rd = Arc::new(Mutex::new(FrameReader::new(framing, meta.recv_max)));
        let ahead = meta.send_ahead_max;
        // The send buffer's own size, to restore on an ipc pipe whose bound is lifted.
        let orig_sndbuf = match meta.kind {
            Kind::Ipc => src.io().send_buffer_size().unwrap_or(0),
            Kind::Tcp => 0,
        };
        let mut wq = WriteQueue::new(framing);
        if ahead > 0 {
            wq.set_limit(queue_share(ahead));
            set_kernel_bound(src.io(), meta.kind, ahead, orig_sndbuf);
        }
        Arc::new_cyclic(|me: &Weak<SpPipe>| {
            let weak = me.clone();
            let kick_aio = Aio::new(move |_| {
                if let Some(p) = weak.upgrade() {
                    p.on_kick();
                }
            })
            .expect("aio");
            SpPipe {
                id: crate::next_pipe_id(),
                peer,
                conn: Conn::new(src, meta),
                me: me.clone(),
                rd,
                wq: Mutex::new(wq),
                flush_aio: Aio::new_waitable().expect("aio"),
                kick_aio,
                closing: AtomicBool::new(false),
                answered: AtomicBool::new(false),
                idle_watched: AtomicBool::new(false),
                send_ahead: AtomicUsize::new(ahead),
                orig_sndbuf,
            }
        })
    }

    fn framing(&self) -> Framing {
        self.conn.meta.framing()
    }

    fn send_scoped(&self, aio: &Aio) {
        let Some(me) = self.me.upgrade() else {
            return fail_now(aio, Error::Closed);
        };
        let Some(token) = aio.begin(Timeout::Infinite, Some(CancelHook::new(me, 0))) else {
            return;
        };
        let Some(src) = self.conn.src() else {
            aio.finish(token, Err(Error::Closed), 0);
            return;
        };
        let mut after = After::Nothing;
        let mut direct = false;
        let framing = self.framing();
        aio.attempt_send(token, |m| {
            let mut w = lock(&self.wq);
            self.note_answer(&mut w);
            match w.admit(frame_len(framing, &m), nanoport_engine::scope_now) {
                Admit::Closed(e) => Err((m, Some(e))),
                Admit::Full => {
                    w.park((aio.provider_handle(), token));
                    Err((m, None))
                }
                Admit::Queue => {
                    after = w.push(m);
                    Ok(())
                }
                Admit::Direct => {
                    // The latency path: an idle pipe, a lone send. This thread holds the
                    // writer role; the write itself waits for the end of the engine scope.
                    direct = true;
                    after = w.push(m);
                    Ok(())
                }
            }
        });
        drop(src);
        if direct {
            self.write_at_scope_end();
        }
        match after {
            After::Nothing => {}
            After::FlushNow => self.write_at_scope_end(),
            After::Kick => self.kick(),
        }
    }

    /// Enlists the pipe in the idle sweep if it holds buffers and is not enlisted yet.
    /// Takes the reader's and the queue's locks: call with neither held.
    fn watch_idle(&self) {
        if self.idle_watched.load(Ordering::Relaxed) {
            return;
        }
        let holds = lock(&self.rd).buffered_capacity() > 0 || lock(&self.wq).holds_memory();
        if let (true, Some(me)) = (holds, self.me.upgrade()) {
            nanoport_engine::idle::watch_once(&me, &self.idle_watched);
        }
    }

    /// Tells the write queue whether a message came in since the last send.
    fn note_answer(&self, w: &mut WriteQueue<(Aio, OpToken)>) {
        if self.answered.load(Ordering::Relaxed) && self.answered.swap(false, Ordering::Relaxed) {
            w.answered();
        }
    }

    /// This thread holds the writer role: write what is queued once the engine scope ends,
    /// when the caller's locks (the socket's, typically) are released. The write wakes
    /// the peer, and a peer woken while those locks are held may find them taken.
    fn write_at_scope_end(&self) {
        match self.me.upgrade() {
            Some(me) => at_scope_end(me),
            // Being dropped: nothing will read what is queued.
            None => self.pump_closed(),
        }
    }

    /// `send_aio` without the aio: the same admission, with "wait" and "fail" both
    /// handing the message back.
    fn try_send_scoped(&self, msg: Message) -> std::result::Result<(), Message> {
        let mut w = lock(&self.wq);
        self.note_answer(&mut w);
        match w.admit(frame_len(self.framing(), &msg), nanoport_engine::scope_now) {
            Admit::Closed(_) | Admit::Full => Err(msg),
            Admit::Queue => {
                let after = w.push(msg);
                drop(w);
                match after {
                    After::Nothing => {}
                    After::Kick => self.kick(),
                    After::FlushNow => self.write_at_scope_end(),
                }
                Ok(())
            }
            Admit::Direct => {
                let after = w.push(msg);
                debug_assert_eq!(after, After::Nothing, "the role is ours already");
                drop(w);
                self.write_at_scope_end();
                Ok(())
            }
        }
    }

    /// Took the writer role but the socket is already gone (closed meanwhile): let go.
    fn pump_closed(&self) {
        let mut w = lock(&self.wq);
        w.discard();
        let _ = w.next_batch();
        let _ = w.take_shutdown();
    }

    /// Asks the pool for a writer (one kick at a time; see `WriteQueue::push`).
    fn kick(&self) {
        if let Some(t) = self.kick_aio.begin(Timeout::Infinite, None) {
            self.kick_aio.finish(t, Ok(()), 0);
        }
    }

    fn on_kick(&self) {
        let Some(src) = self.conn.src() else {
            lock(&self.wq).kick_run();
            return;
        };
        if lock(&self.wq).kick_run() {
            engine_scope(|| self.pump_thread(&src));
        }
    }

    /// Runs the writer on this thread (it holds the role); if the kernel would block,
    /// hands the role to the reactor.
    fn pump_thread(&self, src: &Src) {
        if let Pumped::WouldBlock = self.pump(src.io(), None) {
            self.start_flush_op(src);
        }
    }

    /// The writer role now belongs to the reactor (the kernel just said `WouldBlock`):
    /// start the op that resumes writing on writability.
    fn start_flush_op(&self, src: &Src) {
        src.start_write(
            &self.flush_aio,
            Timeout::Infinite,
            WOp::Flush {
                pipe: self.me.clone(),
                fresh: true,
            },
        );
    }

    /// The reactor's flush op: writes on if it still holds the role.
    fn resume_writer(&self, io: &Socket, aio: &Aio, token: OpToken) -> Poll<()> {
        {
            let mut w = lock(&self.wq);
            if !w.resume_reactor() {
                // A close took the role over.
                aio.finish(token, Ok(()), 0);
                return Poll::Ready(());
            }
        }
        match self.pump(io, Some((aio, token))) {
            Pumped::Done => Poll::Ready(()),
            Pumped::WouldBlock => Poll::Pending,
        }
    }

    /// The writer's loop: vectored writes of queued frames until the queue is empty, the
    /// kernel would block, or [`FLUSH_ROUNDS`] writes are done (then a fresh pool job
    /// carries on, so neither a worker nor the reactor is held by one busy pipe). Parked
    /// sends are let in as room frees. `op` is the reactor's flush op, completed under
    /// the queue's lock as the role is released, so a new one can start right after.
    fn pump(&self, io: &Socket, op: Option<(&Aio, OpToken)>) -> Pumped {
        let finish_op = |r: Result<()>| {
            if let Some((a, t)) = op {
                a.finish(t, r, 0);
            }
        };
        let mut rounds = 0;
        loop {
            let mut w = lock(&self.wq);
            let Some(batch) = w.next_batch() else {
                w.wrote_at(nanoport_engine::scope_now());
                finish_op(Ok(()));
                let shut = w.take_shutdown();
                drop(w);
                if shut {
                    sys::shutdown(io);
                }
                self.watch_idle();
                return Pumped::Done;
            };
            drop(w);
            let res = {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let k = fill_iov(&batch, &mut iov);
                loop {
                    match sys::send_vectored(io, &iov[..k]) {
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        r => break r,
                    }
                }
            };
            let mut w = lock(&self.wq);
            match res {
                Ok(n) => w.written(batch, n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    w.written(batch, 0);
                    if w.closing() {
                        // Closing and the peer does not read: drop the rest.
                        w.discard();
                        continue;
                    }
                    w.park_on_reactor();
                    return Pumped::WouldBlock;
                }
                Err(e) => {
                    w.written(batch, 0);
                    let e: Error = e.into();
                    let parked = w.fail(e);
                    finish_op(Err(e));
                    let _ = w.take_shutdown();
                    drop(w);
                    // The stream is broken: drop the connection, so the pending receive
                    // fails too and the owner removes the pipe (as a failed send did).
                    sys::shutdown(io);
                    for (a, t) in parked {
                        a.finish(t, Err(e), 0);
                    }
                    return Pumped::Done;
                }
            }
            drop(w);
            self.let_parked_in();
            rounds += 1;
            // The reactor writes one round only: it serves every connection, and a
            // stream that keeps it writing would serialise the whole process on it. A
            // sender driving its own blocked send serves only itself: a full share.
            let budget = if op.is_some() && !nanoport_engine::in_driving_wait() {
                1
            } else {
                FLUSH_ROUNDS
            };
            if rounds >= budget {
                let mut w = lock(&self.wq);
                if !w.closing() {
                    w.wrote_at(nanoport_engine::scope_now());
                    let after = w.hand_off();
                    finish_op(Ok(()));
                    drop(w);
                    if after == After::Kick {
                        self.kick();
                    }
                    return Pumped::Done;
                }
            }
        }
    }

    /// Accepts parked sends while there is room (called by the writer, so accepting one
    /// never asks for another writer).
    fn let_parked_in(&self) {
        loop {
            let Some((aio, token)) = lock(&self.wq).pop_waiter() else {
                return;
            };
            let mut full = false;
            aio.attempt_send(token, |m| {
                let mut w = lock(&self.wq);
                if let Some(e) = w.closed() {
                    return Err((m, Some(e)));
                }
                if w.has_room() {
                    let _ = w.push(m);
                    Ok(())
                } else {
                    w.unpark_front((aio.provider_handle(), token));
                    full = true;
                    Err((m, None))
                }
            });
            if full {
                return;
            }
        }
    }
}

impl nanoport_engine::idle::IdleBuffers for SpPipe {
    fn activity(&self) -> u64 {
        lock(&self.rd)
            .reads()
            .wrapping_add(lock(&self.wq).batches())
    }

    fn release_idle(&self) -> bool {
        let mut rd = lock(&self.rd);
        rd.release_idle();
        let mut wq = lock(&self.wq);
        wq.release_idle();
        rd.buffered_capacity() > 0 || wq.holds_memory()
    }

    fn unwatched(&self) {
        self.idle_watched.store(false, Ordering::Release);
    }
}

impl ScopeEndJob for SpPipe {
    fn run_at_scope_end(&self) {
        match self.conn.src() {
            Some(src) => self.pump_thread(&src),
            None => self.pump_closed(),
        }
    }
}

impl Cancel for SpPipe {
    fn cancelled(&self, aio: &Aio, _key: usize, token: OpToken) {
        lock(&self.wq).remove_waiters(|(a, t)| *t == token && Aio::ptr_eq(a, aio));
    }
}

impl PipeOps for SpPipe {
    fn id(&self) -> PipeId {
        self.id
    }
    /// Closes: parked sends fail with `Closed` (their messages stay on their aios),
    /// pending receives complete with `Closed`, then what the pipe had accepted is written
    /// out as far as the kernel takes it without waiting (a peer that is not reading loses
    /// the rest: there is no linger, as in NNG), and the socket is shut down. A thread in
    /// the middle of a write finishes it and shuts the socket down itself.
    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        engine_scope(|| {
            // A handle of our own first: with two closers racing, whichever is told to
            // flush needs the socket even if the other took it out of `conn`.
            let src = self.conn.src();
            let (parked, act) = lock(&self.wq).close(Error::Closed);
            for (a, t) in parked {
                a.finish(t, Err(Error::Closed), 0);
            }
            if let Some(s) = self.conn.take() {
                s.close(Error::Closed);
            }
            match (act, src) {
                (CloseAct::ShutdownNow, Some(s)) => sys::shutdown(s.io()),
                (CloseAct::Flush, Some(s)) => {
                    self.pump(s.io(), None);
                }
                (CloseAct::Flush, None) => self.pump_closed(),
                _ => {}
            }
        })
    }
    fn option(&self, name: &str) -> Result<String> {
        match name {
            "recv-size-max" => Ok(lock(&self.rd).recv_max().to_string()),
            "send-ahead-max" => Ok(self.send_ahead.load(Ordering::Relaxed).to_string()),
            _ => self.conn.option(name),
        }
    }
    fn peer_protocol(&self) -> u16 {
        self.peer
    }
}

impl TransportPipe for SpPipe {
    fn send_aio(&self, aio: &Aio) {
        engine_scope(|| self.send_scoped(aio))
    }

    fn recv_aio(&self, aio: &Aio) {
        let Some(src) = self.conn.src() else {
            return fail_now(aio, Error::Closed);
        };
        src.start_read(
            aio,
            Timeout::Infinite,
            ROp::Msg {
                rd: self.rd.clone(),
                pipe: self.me.clone(),
            },
        );
    }

    fn pipe(&self) -> Pipe {
        match self.me.upgrade() {
            Some(me) => Pipe::new(me),
            // Unreachable while a caller holds the pipe; a closed stand-in otherwise.
            None => Pipe::new(Arc::new(crate::inproc::DeadPipe(self.id, self.peer))),
        }
    }

    fn try_send_now(&self, msg: Message) -> std::result::Result<(), Message> {
        engine_scope(|| self.try_send_scoped(msg))
    }

    fn set_options(&self, opts: &crate::EndpointOptions) {
        lock(&self.rd).set_recv_max(opts.recv_max);
        // The kernel is told only when the bound changes: a pipe that never had one keeps
        // the system's settings untouched.
        let changed = {
            let mut w = lock(&self.wq);
            w.set_limit(queue_share(opts.send_ahead_max));
            self.send_ahead.swap(opts.send_ahead_max, Ordering::Relaxed) != opts.send_ahead_max
        };
        if changed {
            if let Some(src) = self.conn.src() {
                set_kernel_bound(
                    src.io(),
                    self.conn.meta.kind,
                    opts.send_ahead_max,
                    self.orig_sndbuf,
                );
            }
        }
        if self.conn.meta.kind == Kind::Tcp {
            if let Some(src) = self.conn.src() {
                // Best effort, as at connect time: a socket the peer already reset may
                // refuse, and the pipe learns of that from its next read or write.
                sys::tune_tcp(src.io(), opts);
            }
        }
    }

    fn buffered_bytes(&self) -> usize {
        lock(&self.rd).buffered_capacity() + lock(&self.wq).buffered_bytes()
    }

    fn read_readiness(&self) -> Option<nanoport_engine::Readiness> {
        if self.closing.load(Ordering::Acquire) {
            return None;
        }
        self.conn.src()?.read_readiness()
    }

    fn write_readiness(&self) -> Option<nanoport_engine::Readiness> {
        if self.closing.load(Ordering::Acquire) {
            return None;
        }
        self.conn.src()?.write_readiness()
    }

    fn try_recv_now(&self) -> Option<Message> {
        if self.closing.load(Ordering::Acquire) {
            return None;
        }
        // A bad frame is left for `recv_aio`, which reports it and drops the connection.
        let payload = lock(&self.rd).next_buffered_as::<Message>().ok()??;
        self.answered.store(true, Ordering::Relaxed);
        let mut msg = payload;
        msg.set_pipe(Some(self.pipe()));
        Some(msg)
    }
}

/// A connected byte stream over tcp or ipc (`nng_stream`): no SP handshake, no framing.
#[derive(Clone)]
pub struct Stream {
    conn: Arc<Conn>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("remote", &self.conn.meta.remote)
            .finish_non_exhaustive()
    }
}

impl Stream {
    pub(crate) fn new(src: Src, meta: Meta) -> Stream {
        Stream {
            conn: Arc::new(Conn::new(src, meta)),
        }
    }

    /// Writes the body of the message on `aio` (`nng_stream_send`). Completes once some
    /// bytes were handed to the kernel, with `count` saying how many (possibly fewer than
    /// the body holds); the message stays on the aio.
    pub fn send_aio(&self, aio: &Aio) {
        let Some(src) = self.conn.src() else {
            return fail_now(aio, Error::Closed);
        };
        src.start_write(aio, Timeout::Infinite, WOp::Stream { msg: peek_msg(aio) });
    }

    /// Reads at most `max` bytes (`nng_stream_recv`): completes with a message holding what
    /// was read, `count` the number of bytes. End of stream is `ConnShut`.
    pub fn recv_aio(&self, aio: &Aio, max: usize) {
        let Some(src) = self.conn.src() else {
            return fail_now(aio, Error::Closed);
        };
        src.start_read(
            aio,
            Timeout::Infinite,
            ROp::Stream {
                max,
                buf: Vec::new(),
            },
        );
    }

    /// Closes the stream; pending operations complete with `Closed`.
    pub fn close(&self) {
        self.conn.close();
    }

    /// A named option as text (`remote-address`, `local-address`, `tcp-nodelay`,
    /// `tcp-keepalive`, `tcp-keepalive-idle` and `tcp-keepalive-interval` (milliseconds),
    /// `tcp-keepalive-count`, `ipc:peer-pid`, `ipc:peer-uid`, `ipc:peer-gid`).
    ///
    /// # Errors
    /// `NotSup` for an option this stream lacks, `Closed` after close.
    pub fn option(&self, name: &str) -> Result<String> {
        self.conn.option(name)
    }
}
