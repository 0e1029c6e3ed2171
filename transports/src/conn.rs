//! Connections over stream sockets (tcp, ipc): the `IoOp` state machines that move
//! handshakes, frames and raw bytes, and the two connection types built on them, the SP
//! pipe ([`SpPipe`]) and the byte stream ([`Stream`]).

use std::io::{ErrorKind, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Poll;

use nanoport_engine::{
    Aio, Error, IoOp, IoSource, Message, OpToken, Pipe, PipeId, PipeOps, Result, Timeout,
};
use socket2::Socket;

use crate::frame::{encode_prefix, FrameDecoder, Framing};
use crate::handshake::{parse_header, HEADER_LEN};
use crate::{sys, TransportPipe};

/// A registered stream socket running our read and write operations.
pub(crate) type Src = IoSource<Socket, ROp, WOp>;

/// Read-direction operations.
pub(crate) enum ROp {
    /// The peer's SP header; completes with output `u16` (its protocol id).
    Hdr { buf: [u8; HEADER_LEN], have: usize },
    /// One SP frame; completes with a message.
    Msg {
        dec: FrameDecoder,
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
    /// One SP frame: prefix, message header, message body, in one vectored write.
    Msg {
        prefix: [u8; 9],
        plen: usize,
        msg: Option<Message>,
        sent: usize,
    },
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
            ROp::Msg { dec, pipe } => match dec.read_with(|b| sys::recv(io, b)) {
                Ok(Some(payload)) => {
                    let mut msg = Message::from(payload);
                    msg.set_pipe(pipe.upgrade().map(|p| p.pipe()));
                    let _ = aio.finish_recv(token, msg);
                    Poll::Ready(())
                }
                Ok(None) => Poll::Pending,
                Err(e) => {
                    drop_conn(io, pipe);
                    fail(aio, token, e.into())
                }
            },
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

    fn started(&self) -> bool {
        match self {
            ROp::Msg { dec, .. } => dec.in_frame(),
            _ => false,
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
            WOp::Msg {
                prefix,
                plen,
                msg,
                sent,
            } => {
                let Some(m) = msg.as_ref() else {
                    // No message on the aio: finish_send reports Inval.
                    let _ = aio.finish_send(token);
                    return Poll::Ready(());
                };
                let parts: [&[u8]; 3] = [&prefix[..*plen], m.header(), m.body()];
                let total: usize = parts.iter().map(|p| p.len()).sum();
                loop {
                    let mut skip = *sent;
                    let mut iov: [IoSlice<'_>; 3] =
                        [IoSlice::new(&[]), IoSlice::new(&[]), IoSlice::new(&[])];
                    let mut k = 0;
                    for p in parts {
                        if skip >= p.len() {
                            skip -= p.len();
                            continue;
                        }
                        iov[k] = IoSlice::new(&p[skip..]);
                        skip = 0;
                        k += 1;
                    }
                    match sys::send_vectored(io, &iov[..k]) {
                        Ok(n) => {
                            *sent += n;
                            if *sent >= total {
                                let _ = aio.finish_send(token);
                                return Poll::Ready(());
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Poll::Pending,
                        Err(e) => return fail(aio, token, e.into()),
                    }
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

    fn started(&self) -> bool {
        match self {
            WOp::Msg { sent, .. } => *sent > 0,
            _ => false,
        }
    }
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

    pub(crate) fn close(&self) {
        let src = self.lock().take();
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
            ("recv-size-max", _) => Ok(self.meta.recv_max.to_string()),
            ("tcp-nodelay", Kind::Tcp) => b(self.src().ok_or(Error::Closed)?.io().tcp_nodelay()),
            ("tcp-keepalive", Kind::Tcp) => b(self.src().ok_or(Error::Closed)?.io().keepalive()),
            ("ipc:peer-pid", Kind::Ipc) => self.cred.map(|c| c.0.to_string()).ok_or(Error::NotSup),
            ("ipc:peer-uid", Kind::Ipc) => self.cred.map(|c| c.1.to_string()).ok_or(Error::NotSup),
            ("ipc:peer-gid", Kind::Ipc) => self.cred.map(|c| c.2.to_string()).ok_or(Error::NotSup),
            _ => Err(Error::NotSup),
        }
    }
}

/// An SP pipe over tcp or ipc.
pub(crate) struct SpPipe {
    id: PipeId,
    peer: u16,
    conn: Conn,
    me: Weak<SpPipe>,
}

impl SpPipe {
    pub(crate) fn new(src: Src, peer: u16, meta: Meta) -> Arc<SpPipe> {
        Arc::new_cyclic(|me| SpPipe {
            id: crate::next_pipe_id(),
            peer,
            conn: Conn::new(src, meta),
            me: me.clone(),
        })
    }
}

impl PipeOps for SpPipe {
    fn id(&self) -> PipeId {
        self.id
    }
    fn close(&self) {
        self.conn.close();
    }
    fn option(&self, name: &str) -> Result<String> {
        self.conn.option(name)
    }
    fn peer_protocol(&self) -> u16 {
        self.peer
    }
}

impl TransportPipe for SpPipe {
    fn send_aio(&self, aio: &Aio) {
        let Some(src) = self.conn.src() else {
            return fail_now(aio, Error::Closed);
        };
        let msg = peek_msg(aio);
        let framing = self.conn.meta.framing();
        let len = msg.as_ref().map_or(0, |m| m.len() + m.header_len()) as u64;
        let op = WOp::Msg {
            prefix: encode_prefix(framing, len),
            plen: framing.prefix_len(),
            msg,
            sent: 0,
        };
        src.start_write(aio, Timeout::Infinite, op);
    }

    fn recv_aio(&self, aio: &Aio) {
        let Some(src) = self.conn.src() else {
            return fail_now(aio, Error::Closed);
        };
        let dec = FrameDecoder::new(self.conn.meta.framing(), self.conn.meta.recv_max);
        src.start_read(
            aio,
            Timeout::Infinite,
            ROp::Msg {
                dec,
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
    /// `tcp-keepalive`, `ipc:peer-pid`, `ipc:peer-uid`, `ipc:peer-gid`).
    ///
    /// # Errors
    /// `NotSup` for an option this stream lacks, `Closed` after close.
    pub fn option(&self, name: &str) -> Result<String> {
        self.conn.option(name)
    }
}
