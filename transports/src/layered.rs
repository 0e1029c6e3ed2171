//! Connections with a layer between the TCP socket and the SP messages: TLS
//! (`tls+tcp://`), WebSocket (`ws://`) or WebSocket over TLS (`wss://`).
//!
//! One [`Link`] per connection holds the socket and a [`Core`]: the TLS state machine
//! (rustls is I/O-free: ciphertext in with `read_tls`, out with `write_tls`), the
//! plaintext read buffer and the message framing (SP's length prefix, or WebSocket
//! frames). Everything that touches the byte stream happens under the core's lock, from
//! operations on the engine's [`IoSource`]: the handshake and the receives run in the
//! read direction, sends and flushes in the write direction, each moved on by
//! readiness. Output the read side produces (TLS handshake records, a pong, a close
//! answer) is written at once; if the kernel would block, a flush operation is started
//! in the write direction from a pool job (never from inside the reactor's queue lock).
//!
//! The listeners share a port among WebSocket paths: one [`Server`] per bound address
//! accepts, reads each request and hands the connection to the listener of its path
//! (404 for a path nobody listens on, as NNG's HTTP server answers).

use nanoport_engine::AioProvider;
use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, IoSlice};
#[cfg(feature = "tls")]
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

use nanoport_engine::{
    engine_scope, Aio, Cancel, CancelHook, Error, IoOp, IoSource, Message, OpToken, Pipe, PipeId,
    PipeOps, Result, Timeout,
};
use socket2::{SockAddr, Socket};

use crate::attempts::{Attempts, Setup};
use crate::conn::Kind;
use crate::handshake::{encode_header, parse_header, HEADER_LEN};
use crate::sock::{
    bind_one, connect_one, next_key, target, usable, AcceptOp, Dest, LSrc as AcceptSrc, Target,
};
use crate::url::{Addr, Layer, Url};
use crate::{sys, BoxPipe, EndpointOptions, ListenerStats, TransportPipe};

#[cfg(feature = "ws")]
use crate::ws;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A registered socket running this module's operations.
pub(crate) type Src = IoSource<Socket, LRead, LWrite>;

/// `Read`/`Write` over a non-blocking socket, for rustls's `read_tls`/`write_tls`.
#[cfg(feature = "tls")]
struct SockIo<'a>(&'a Socket);

#[cfg(feature = "tls")]
impl Read for SockIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        sys::recv(self.0, buf)
    }
}

#[cfg(feature = "tls")]
impl Write for SockIo<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sys::send_vectored(self.0, &[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        sys::send_vectored(self.0, bufs)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ----- the byte-stream core ------------------------------------------------------------------

/// How SP messages are cut out of the plaintext stream.
enum Framing {
    /// Still handshaking.
    None,
    /// `u64` big-endian length, then the message (tls+tcp, as tcp).
    Sp { recv_max: usize },
    /// WebSocket frames; a client masks what it sends.
    #[cfg(feature = "ws")]
    Ws {
        dec: ws::FrameDecoder,
        mask: bool,
        close_sent: bool,
    },
}

/// The handshake that runs over the (possibly encrypted) stream before messages flow.
enum App {
    /// Both sides send the 8-byte SP header, then read the peer's.
    Sp { local: u16, sent: bool },
    /// We dialed: send the upgrade request, read the answer.
    #[cfg(feature = "ws")]
    WsClient {
        local: u16,
        request: Option<Vec<u8>>,
        key: String,
        token: String,
    },
    /// We accepted: read the request, route it by path, answer.
    #[cfg(feature = "ws")]
    WsServer { server: Weak<Server> },
}

/// What a finished handshake gives: the peer's protocol and, on a listener, the
/// listener the connection belongs to.
pub(crate) struct Outcome {
    peer: u16,
    route: Option<Arc<ListenerInner>>,
    path: String,
}

/// The most bytes `try_send_now` lets wait in the core for a flush op; beyond it sends
/// take the aio path and wait.
const SEND_QUEUE_MAX: usize = 256 * 1024;
/// The most unsent output (pongs included) a ws pipe lets build up before a ping is
/// taken as abuse.
#[cfg(feature = "ws")]
const PONG_BACKLOG_MAX: usize = 1 << 20;
/// Grows by this much when the read buffer has no room (one TLS record fits).
const READ_CHUNK: usize = 64 * 1024;
/// Plaintext writes this large go to rustls at once rather than through `Core::plain`.
#[cfg(feature = "tls")]
const SEAL_DIRECT: usize = 16 * 1024;
/// The most ciphertext one receive takes in (four 64 KiB messages' worth of records).
#[cfg(feature = "tls")]
const CIPHER_CHUNK: usize = 256 * 1024;
/// WebSocket frames we send carry at most this much (NNG's default `ws:txframe-max`).
#[cfg(feature = "ws")]
const WS_TX_FRAME: usize = 64 * 1024;

pub(crate) struct Core {
    #[cfg(feature = "tls")]
    tls: Option<rustls::Connection>,
    /// Plaintext read, `buf[start..end]` not yet consumed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes for the socket when there is no TLS (with TLS, rustls holds them).
    tx: Vec<u8>,
    /// Bytes encoded since the output was last empty (bounds what `try_send_now` queues).
    out_bytes: usize,
    /// The last receive took less than it had room for: the kernel had nothing more, so
    /// the next receive that finds no whole message waits for readiness rather than
    /// hearing `EAGAIN` (once; the tcp pipe's reader does the same).
    drained: bool,
    /// Ciphertext just received, on its way into rustls.
    #[cfg(feature = "tls")]
    cipher: Vec<u8>,
    /// Small plaintext writes not yet handed to rustls (see `Core::seal`).
    #[cfg(feature = "tls")]
    plain: Vec<u8>,
    tx_pos: usize,
    framing: Framing,
    app: Option<App>,
    /// State of the masking-key generator (xorshift; masks need not be secret here: they
    /// only keep a browser's script from steering the bytes a proxy sees).
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    seed: u64,
}

impl Core {
    fn avail(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room for at least `want` more bytes at the end of the read buffer.
    fn room(&mut self, want: usize) -> &mut [u8] {
        if self.buf.len() - self.end < want {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < want {
                self.buf.resize(self.end + want, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Queues plaintext for the peer.
    fn put(&mut self, parts: &[&[u8]]) {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            for p in parts {
                if p.len() >= SEAL_DIRECT {
                    // Large: straight into rustls (it copies into its records anyway).
                    self.seal();
                    if let Some(t) = &mut self.tls {
                        // The buffer limit is lifted (see `Link::new`): it takes it all.
                        let _ = t.writer().write_all(p);
                    }
                } else {
                    self.plain.extend_from_slice(p);
                }
            }
            return;
        }
        for p in parts {
            self.tx.extend_from_slice(p);
        }
    }

    /// Hands the small writes gathered since the last flush to rustls in one go, so a
    /// batch of small messages becomes one record (one seal, one allocation) rather than
    /// one per message.
    #[cfg(feature = "tls")]
    fn seal(&mut self) {
        if self.plain.is_empty() {
            return;
        }
        if let Some(t) = &mut self.tls {
            let _ = t.writer().write_all(&self.plain);
        }
        self.plain.clear();
    }

    fn has_output(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(t) = &self.tls {
            return !self.plain.is_empty() || t.wants_write();
        }
        self.tx_pos < self.tx.len()
    }

    /// Moves everything queued for the socket into `out` (ciphertext with TLS).
    fn take_output(&mut self, out: &mut Vec<u8>) {
        #[cfg(feature = "tls")]
        self.seal();
        #[cfg(feature = "tls")]
        if let Some(t) = &mut self.tls {
            while t.wants_write() {
                if t.write_tls(out).is_err() {
                    break;
                }
            }
            self.out_bytes = 0;
            return;
        }
        if self.tx_pos == 0 && out.is_empty() {
            std::mem::swap(&mut self.tx, out);
        } else {
            out.extend_from_slice(&self.tx[self.tx_pos..]);
            self.tx.clear();
        }
        self.tx_pos = 0;
        self.out_bytes = 0;
    }

    /// Writes what is queued: `Ok(true)` once all of it is in the kernel, `Ok(false)` if
    /// the kernel would block.
    fn flush(&mut self, io: &Socket) -> Result<bool> {
        #[cfg(feature = "tls")]
        self.seal();
        #[cfg(feature = "tls")]
        if let Some(t) = &mut self.tls {
            while t.wants_write() {
                match t.write_tls(&mut SockIo(io)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(e.into()),
                }
            }
            self.out_bytes = 0;
            return Ok(true);
        }
        while self.tx_pos < self.tx.len() {
            match sys::send_vectored(io, &[IoSlice::new(&self.tx[self.tx_pos..])]) {
                Ok(n) => self.tx_pos += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        self.tx.clear();
        self.tx_pos = 0;
        self.out_bytes = 0;
        Ok(true)
    }

    /// Reads from the socket into the plaintext buffer: `Ok(true)` if anything came in
    /// (with TLS, possibly only handshake records), `Ok(false)` if the kernel would block.
    ///
    /// # Errors
    /// `ConnShut` at end of stream; a TLS failure (`PeerAuth`, `Crypto`); I/O errors.
    fn fill(&mut self, io: &Socket, want: usize) -> Result<bool> {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return self.fill_tls(io);
        }
        let want = want.clamp(READ_CHUNK, 16 << 20);
        loop {
            let room = self.room(want);
            let cap = room.len();
            match sys::recv(io, room) {
                Ok(0) => return Err(Error::ConnShut),
                Ok(n) => {
                    self.end += n;
                    self.drained = n < cap;
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
    }

    #[cfg(feature = "tls")]
    fn fill_tls(&mut self, io: &Socket) -> Result<bool> {
        // One recv of up to CIPHER_CHUNK into our own buffer, then fed to rustls slice by
        // slice: its own `read_tls` reads 4 KiB at a time (and shrinks its buffer when
        // drained), which cost a syscall and a reallocation per 4 KiB of a 64 KiB message.
        let mut cipher = std::mem::take(&mut self.cipher);
        if cipher.len() < CIPHER_CHUNK {
            cipher.resize(CIPHER_CHUNK, 0);
        }
        let n = loop {
            match sys::recv(io, &mut cipher) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.cipher = cipher;
                    return Ok(false);
                }
                Err(e) => {
                    self.cipher = cipher;
                    return Err(e.into());
                }
            }
        };
        self.drained = n < cipher.len();
        let res = self.feed_tls(io, &cipher[..n]);
        self.cipher = cipher;
        if n == 0 {
            return Err(Error::ConnShut);
        }
        res.map(|()| true)
    }

    /// Hands ciphertext to rustls and moves the plaintext it yields into the read buffer.
    #[cfg(feature = "tls")]
    fn feed_tls(&mut self, io: &Socket, mut data: &[u8]) -> Result<()> {
        let mut closed = false;
        let mut full = false;
        while !data.is_empty() {
            let Some(t) = self.tls.as_mut() else {
                return Ok(());
            };
            // Only a full buffer fails here: what it holds is processed below, which
            // makes room, unless it holds no whole record (then the peer is not speaking
            // TLS records we can take).
            match t.read_tls(&mut data) {
                Ok(_) => full = false,
                Err(_) if full => return Err(Error::Crypto),
                Err(_) => full = true,
            }
            let state = match t.process_new_packets() {
                Ok(s) => s,
                Err(e) => {
                    // rustls queued an alert telling the peer why; try to send it.
                    let err = crate::tls::map_error(&e);
                    let _ = self.flush(io);
                    return Err(err);
                }
            };
            closed |= state.peer_has_closed();
            let mut pending = state.plaintext_bytes_to_read();
            while pending > 0 {
                self.room(pending);
                let Some(t) = self.tls.as_mut() else {
                    break;
                };
                match t.reader().read(&mut self.buf[self.end..]) {
                    Ok(0) => break,
                    Ok(k) => {
                        self.end += k;
                        pending = pending.saturating_sub(k);
                    }
                    Err(_) => break,
                }
            }
            if closed {
                break;
            }
        }
        if closed && self.start == self.end {
            return Err(Error::ConnShut);
        }
        Ok(())
    }

    #[cfg(feature = "tls")]
    fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    #[cfg(not(feature = "tls"))]
    fn tls_handshaking(&self) -> bool {
        false
    }

    /// Bytes still missing for the frame at the head of the buffer (a read-size hint).
    fn missing(&self) -> usize {
        match &self.framing {
            Framing::Sp { .. } => {
                let a = self.avail();
                if a.len() < 8 {
                    return 0;
                }
                let len = u64::from_be_bytes(a[..8].try_into().unwrap_or([0; 8]));
                (len.saturating_add(8).saturating_sub(a.len() as u64)).min(16 << 20) as usize
            }
            #[cfg(feature = "ws")]
            Framing::Ws { dec, .. } => dec.missing(self.avail()).min(16 << 20),
            Framing::None => 0,
        }
    }

    /// The next whole message in the buffer, if there is one.
    ///
    /// # Errors
    /// `MsgSize` for a length over the receive limit (checked before buffering), `Proto`
    /// for a bad WebSocket frame, `ConnShut` when the peer closed the WebSocket.
    fn next_msg(&mut self) -> Result<Option<Message>> {
        match &mut self.framing {
            Framing::None => Ok(None),
            Framing::Sp { recv_max } => {
                let recv_max = *recv_max as u64;
                let a = self.avail();
                if a.len() < 8 {
                    return Ok(None);
                }
                let len = u64::from_be_bytes(a[..8].try_into().unwrap_or([0; 8]));
                if len > crate::frame::MAX_WIRE_LEN || (recv_max > 0 && len > recv_max) {
                    return Err(Error::MsgSize);
                }
                let len = len as usize;
                if a.len() - 8 < len {
                    return Ok(None);
                }
                let body = a[8..8 + len].to_vec();
                self.consume(8 + len);
                Ok(Some(Message::from(body)))
            }
            #[cfg(feature = "ws")]
            Framing::Ws { .. } => self.next_ws(),
        }
    }

    #[cfg(feature = "ws")]
    fn next_ws(&mut self) -> Result<Option<Message>> {
        loop {
            let Framing::Ws { dec, .. } = &mut self.framing else {
                return Ok(None);
            };
            let (n, ev) = dec.decode(&self.buf[self.start..self.end])?;
            if n == 0 {
                return Ok(None);
            }
            self.consume(n);
            match ev {
                None | Some(ws::WsEvent::Pong) => {}
                Some(ws::WsEvent::Message(v)) => return Ok(Some(Message::from(v))),
                Some(ws::WsEvent::Ping(p)) => {
                    // A peer that pings but never reads our pongs would grow them here
                    // without bound: past the limit it loses the connection.
                    if self.out_bytes > PONG_BACKLOG_MAX {
                        return Err(Error::Proto);
                    }
                    self.put_ws(ws::opcode::PONG, &[&p]);
                }
                Some(ws::WsEvent::Close(code)) => {
                    // Answer with a close echoing the status (RFC 6455 §5.5.1), once.
                    let sent = match &mut self.framing {
                        Framing::Ws { close_sent, .. } => std::mem::replace(close_sent, true),
                        _ => true,
                    };
                    if !sent {
                        let c = code.unwrap_or(1000).to_be_bytes();
                        self.put_ws(ws::opcode::CLOSE, &[&c]);
                    }
                    return Err(Error::ConnShut);
                }
            }
        }
    }

    #[cfg(feature = "ws")]
    fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed = x;
        (x as u32).to_ne_bytes()
    }

    /// Queues one WebSocket frame (FIN set) of our side's kind.
    #[cfg(feature = "ws")]
    fn put_ws(&mut self, op: u8, parts: &[&[u8]]) {
        let mask = match &self.framing {
            Framing::Ws { mask: true, .. } => Some(self.next_mask()),
            _ => None,
        };
        let mut out = Vec::new();
        ws::encode_frame_parts(&mut out, op, true, parts, mask);
        self.out_bytes += out.len();
        self.put(&[&out]);
    }

    /// Queues message `m` for the peer in the link's framing.
    fn encode(&mut self, m: &Message) {
        self.out_bytes += m.header_len() + m.len() + 14;
        match &self.framing {
            #[cfg(feature = "ws")]
            Framing::Ws { mask, .. } => {
                let mask = *mask;
                let total = m.header_len() + m.len();
                if total <= WS_TX_FRAME {
                    let k = mask.then(|| self.next_mask());
                    let mut out = Vec::with_capacity(total + 14);
                    ws::encode_frame_parts(
                        &mut out,
                        ws::opcode::BINARY,
                        true,
                        &[m.header(), m.body()],
                        k,
                    );
                    self.put(&[&out]);
                    return;
                }
                // Larger messages go in frames of NNG's default size, which an NNG peer's
                // per-frame receive limit admits.
                let mut whole = Vec::with_capacity(total);
                whole.extend_from_slice(m.header());
                whole.extend_from_slice(m.body());
                let mut out = Vec::with_capacity(total + 14 * (total / WS_TX_FRAME + 1));
                let chunks: Vec<&[u8]> = whole.chunks(WS_TX_FRAME).collect();
                for (i, c) in chunks.iter().enumerate() {
                    let op = if i == 0 {
                        ws::opcode::BINARY
                    } else {
                        ws::opcode::CONT
                    };
                    let k = mask.then(|| self.next_mask());
                    ws::encode_frame_parts(&mut out, op, i + 1 == chunks.len(), &[c], k);
                }
                self.put(&[&out]);
            }
            _ => {
                let len = ((m.header_len() + m.len()) as u64).to_be_bytes();
                self.put(&[&len, m.header(), m.body()]);
            }
        }
    }

    /// Moves the application handshake on: `Ok(Some(..))` once done.
    fn advance(&mut self) -> Result<Option<Outcome>> {
        if self.tls_handshaking() {
            return Ok(None);
        }
        match self.app.take() {
            None => Err(Error::State),
            Some(App::Sp { local, sent }) => {
                if !sent {
                    self.put(&[&encode_header(local)]);
                }
                let a = self.avail();
                if a.len() < HEADER_LEN {
                    self.app = Some(App::Sp { local, sent: true });
                    return Ok(None);
                }
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&a[..HEADER_LEN]);
                self.consume(HEADER_LEN);
                let peer = parse_header(&h)?;
                Ok(Some(Outcome {
                    peer,
                    route: None,
                    path: String::new(),
                }))
            }
            #[cfg(feature = "ws")]
            Some(App::WsClient {
                local,
                mut request,
                key,
                token,
            }) => {
                if let Some(r) = request.take() {
                    self.put(&[&r]);
                }
                match ws::parse_response(self.avail(), &key, &token)? {
                    Some(n) => {
                        self.consume(n);
                        Ok(Some(Outcome {
                            peer: ws::peer_of(local),
                            route: None,
                            path: String::new(),
                        }))
                    }
                    None => {
                        self.app = Some(App::WsClient {
                            local,
                            request,
                            key,
                            token,
                        });
                        Ok(None)
                    }
                }
            }
            #[cfg(feature = "ws")]
            Some(App::WsServer { server }) => {
                let reject = |c: &mut Core, status: u16| {
                    c.put(&[&ws::reject_response(status)]);
                    Err(Error::Proto)
                };
                let (n, req) = match ws::parse_request(self.avail()) {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        self.app = Some(App::WsServer { server });
                        return Ok(None);
                    }
                    Err(status) => return reject(self, status),
                };
                self.consume(n);
                let path = req.path.split('?').next().unwrap_or("/").to_string();
                let Some(route) = server.upgrade().and_then(|s| s.route(&path)) else {
                    return reject(self, 404);
                };
                if !req.protocols.iter().any(|p| *p == route.token) {
                    // NNG's handler refuses a request for another protocol (or none).
                    return reject(self, 400);
                }
                self.put(&[&ws::server_response(&req.key, &route.token)]);
                Ok(Some(Outcome {
                    peer: ws::peer_of(route.proto),
                    route: Some(route),
                    path,
                }))
            }
        }
    }
}

// ----- operations ----------------------------------------------------------------------------

/// Read-direction operations.
pub(crate) enum LRead {
    /// The TLS handshake and the SP or WebSocket one; completes with output [`Outcome`].
    Hs(Weak<Link>),
    /// One message.
    Msg(Weak<Link>, Weak<LPipe>),
}

/// Write-direction operations.
pub(crate) enum LWrite {
    /// Waits for a non-blocking connect.
    Connect,
    /// Writes out what the core holds, round after round (the bytes of the round being
    /// written, and how far).
    Flush(Weak<Link>, Vec<u8>, usize),
    /// One message (a clone sharing the aio's body; `None` once queued in the core).
    Send(Weak<Link>, Option<Message>),
}

fn fail(aio: &Aio, token: OpToken, e: Error) -> Poll<()> {
    aio.finish(token, Err(e), 0);
    Poll::Ready(())
}

impl IoOp<Socket> for LRead {
    fn attempt(&mut self, io: &Socket, aio: &Aio, token: OpToken) -> Poll<()> {
        match self {
            LRead::Hs(link) => match link.upgrade() {
                Some(l) => l.handshake(io, aio, token),
                None => fail(aio, token, Error::Closed),
            },
            LRead::Msg(link, pipe) => match link.upgrade() {
                Some(l) => l.recv(io, aio, token, pipe),
                None => fail(aio, token, Error::Closed),
            },
        }
    }
}

impl IoOp<Socket> for LWrite {
    fn attempt(&mut self, io: &Socket, aio: &Aio, token: OpToken) -> Poll<()> {
        match self {
            LWrite::Connect => match sys::connect_done(io) {
                Ok(true) => {
                    aio.finish(token, Ok(()), 0);
                    Poll::Ready(())
                }
                Ok(false) => Poll::Pending,
                Err(e) => fail(aio, token, e.into()),
            },
            LWrite::Flush(link, out, pos) => {
                let Some(l) = link.upgrade() else {
                    return fail(aio, token, Error::Closed);
                };
                // The bytes are taken out of the core and written without its lock, so
                // senders keep encoding into it meanwhile: the next round writes all they
                // queued in one go. While this op runs (`flushing`), nobody else writes.
                loop {
                    if *pos == out.len() {
                        let mut c = lock(&l.core);
                        out.clear();
                        *pos = 0;
                        c.take_output(out);
                        if out.is_empty() {
                            aio.finish(token, Ok(()), 0);
                            // Under the core's lock, after the aio is idle again: a writer
                            // that finds output after this asks for a new flush.
                            l.flushing.store(false, Ordering::Release);
                            return Poll::Ready(());
                        }
                    }
                    match sys::send_vectored(io, &[IoSlice::new(&out[*pos..])]) {
                        Ok(n) => *pos += n,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Poll::Pending,
                        Err(e) => {
                            let c = lock(&l.core);
                            aio.finish(token, Err(e.into()), 0);
                            l.flushing.store(false, Ordering::Release);
                            drop(c);
                            sys::shutdown(io);
                            return Poll::Ready(());
                        }
                    }
                }
            }
            LWrite::Send(link, msg) => {
                let Some(l) = link.upgrade() else {
                    return fail(aio, token, Error::Closed);
                };
                let mut c = lock(&l.core);
                if let Some(m) = msg.take() {
                    c.encode(&m);
                    l.sends_queued.fetch_sub(1, Ordering::AcqRel);
                }
                match c.flush(io) {
                    Ok(true) => {
                        drop(c);
                        aio.finish_send(token);
                        Poll::Ready(())
                    }
                    Ok(false) => Poll::Pending,
                    Err(e) => {
                        drop(c);
                        sys::shutdown(io);
                        fail(aio, token, e)
                    }
                }
            }
        }
    }

    fn started(&self) -> bool {
        matches!(self, LWrite::Send(_, None))
    }
}

impl Drop for LWrite {
    fn drop(&mut self) {
        // A send dropped before its message reached the core (cancelled, closed).
        if let LWrite::Send(link, Some(_)) = self {
            if let Some(l) = link.upgrade() {
                l.sends_queued.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

// ----- the link ------------------------------------------------------------------------------

/// What a connection knows about itself, for the pipe's options.
#[derive(Clone, Debug, Default)]
struct Info {
    scheme: String,
    local: String,
    remote: String,
    recv_max: usize,
    verified: bool,
    peer_cn: Option<String>,
    path: String,
}

/// One connection: the socket and the core.
pub(crate) struct Link {
    core: Mutex<Core>,
    src: Mutex<Option<Src>>,
    /// A flush op is queued or running (see [`LWrite::Flush`]).
    flushing: AtomicBool,
    /// A pool job to start one is on its way (one job, however many messages queue).
    kicked: AtomicBool,
    /// Send ops started whose message is not yet in the core: `try_send_now` must not
    /// overtake them.
    sends_queued: std::sync::atomic::AtomicUsize,
    flush_aio: Aio,
    me: Weak<Link>,
}

impl Link {
    fn new(
        src: Src,
        app: App,
        #[cfg(feature = "tls")] tls: Option<rustls::Connection>,
    ) -> Arc<Link> {
        #[cfg(feature = "tls")]
        let tls = tls.map(|mut t| {
            // Our own write path bounds what is queued (one message at a time per send);
            // rustls must take each whole message.
            t.set_buffer_limit(None);
            t
        });
        let seed = Instant::now().elapsed().as_nanos() as u64 ^ (next_key() as u64).rotate_left(32);
        Arc::new_cyclic(|me| Link {
            core: Mutex::new(Core {
                #[cfg(feature = "tls")]
                tls,
                buf: Vec::new(),
                start: 0,
                end: 0,
                tx: Vec::new(),
                tx_pos: 0,
                out_bytes: 0,
                drained: false,
                #[cfg(feature = "tls")]
                cipher: Vec::new(),
                #[cfg(feature = "tls")]
                plain: Vec::new(),
                framing: Framing::None,
                app: Some(app),
                seed: seed | 1,
            }),
            src: Mutex::new(Some(src)),
            flushing: AtomicBool::new(false),
            kicked: AtomicBool::new(false),
            sends_queued: std::sync::atomic::AtomicUsize::new(0),
            flush_aio: Aio::new_waitable().expect("aio"),
            me: me.clone(),
        })
    }

    fn src(&self) -> Option<Src> {
        lock(&self.src).clone()
    }

    fn close(&self) {
        let s = lock(&self.src).take();
        if let Some(s) = s {
            s.close(Error::Closed);
            sys::shutdown(s.io());
        }
    }

    /// The kernel would not take all the output the read side produced: flush it when
    /// the socket is writable, from a pool job (this may run under the source's queue
    /// lock, where starting an operation on it would deadlock).
    fn kick_flush(&self) {
        if self.kicked.swap(true, Ordering::AcqRel) {
            return; // a job is on its way; it flushes whatever is queued by then
        }
        let me = self.me.clone();
        nanoport_engine::spawn(move || {
            let Some(l) = me.upgrade() else { return };
            l.kicked.store(false, Ordering::Release);
            if l.flushing.swap(true, Ordering::AcqRel) {
                return; // one is queued; it writes everything
            }
            match l.src() {
                Some(src) => {
                    let op = LWrite::Flush(me.clone(), Vec::new(), 0);
                    src.start_write(&l.flush_aio, Timeout::Infinite, op)
                }
                None => l.flushing.store(false, Ordering::Release),
            }
        });
    }

    /// Writes what the read side produced, or leaves it to a flush op.
    fn flush_or_kick(&self, c: &mut Core, io: &Socket) -> Result<()> {
        if !c.has_output() {
            return Ok(());
        }
        if self.writer_busy() || !c.flush(io)? {
            self.kick_flush();
        }
        Ok(())
    }

    /// A flush op has bytes in flight or is about to start: writing now would put our
    /// bytes before its. Read under the core's lock.
    fn writer_busy(&self) -> bool {
        self.flushing.load(Ordering::Acquire) || self.kicked.load(Ordering::Acquire)
    }

    fn handshake(&self, io: &Socket, aio: &Aio, token: OpToken) -> Poll<()> {
        let mut c = lock(&self.core);
        loop {
            match c.advance() {
                Ok(Some(out)) => {
                    if let Err(e) = self.flush_or_kick(&mut c, io) {
                        return fail(aio, token, e);
                    }
                    drop(c);
                    let _ = aio.finish_output(token, out);
                    return Poll::Ready(());
                }
                Ok(None) => {}
                Err(e) => {
                    // An HTTP error answer or a TLS alert goes out as far as it can now.
                    let _ = c.flush(io);
                    return fail(aio, token, e);
                }
            }
            if let Err(e) = self.flush_or_kick(&mut c, io) {
                return fail(aio, token, e);
            }
            match c.fill(io, 0) {
                Ok(true) => {}
                Ok(false) => return Poll::Pending,
                Err(e) => return fail(aio, token, e),
            }
        }
    }

    fn recv(&self, io: &Socket, aio: &Aio, token: OpToken, pipe: &Weak<LPipe>) -> Poll<()> {
        let mut c = lock(&self.core);
        let err = loop {
            match c.next_msg() {
                Ok(Some(mut m)) => {
                    if let Err(e) = self.flush_or_kick(&mut c, io) {
                        break e;
                    }
                    drop(c);
                    m.set_pipe(pipe.upgrade().map(|p| {
                        p.answered.store(true, Ordering::Relaxed);
                        p.pipe()
                    }));
                    let _ = aio.finish_recv(token, m);
                    return Poll::Ready(());
                }
                Ok(None) => {}
                Err(e) => break e,
            }
            if std::mem::take(&mut c.drained) {
                // Nothing more in the kernel a moment ago: wait for readiness (level-
                // triggered: data that came meanwhile reports at once).
                if let Err(e) = self.flush_or_kick(&mut c, io) {
                    break e;
                }
                return Poll::Pending;
            }
            let want = c.missing();
            match c.fill(io, want) {
                Ok(true) => {}
                Ok(false) => {
                    if let Err(e) = self.flush_or_kick(&mut c, io) {
                        break e;
                    }
                    return Poll::Pending;
                }
                Err(e) => break e,
            }
        };
        // A receive error ends the connection, as in NNG: the peer sees the close at once
        // (after our close frame or alert, if one is queued), and the pipe is closed off
        // this thread.
        let _ = c.flush(io);
        drop(c);
        sys::shutdown(io);
        let pipe = pipe.clone();
        nanoport_engine::spawn(move || {
            if let Some(p) = pipe.upgrade() {
                p.close();
            }
        });
        fail(aio, token, e_or_shut(err))
    }
}

fn e_or_shut(e: Error) -> Error {
    match e {
        Error::Closed => Error::ConnShut,
        e => e,
    }
}

// ----- the pipe ------------------------------------------------------------------------------

/// An SP pipe over tls+tcp, ws or wss.
pub(crate) struct LPipe {
    id: PipeId,
    peer: u16,
    link: Arc<Link>,
    info: Info,
    me: Weak<LPipe>,
    /// Set by `close`: nothing buffered is handed out synchronously any more.
    closing: AtomicBool,
    /// A message came in since the last send: the next send answers it and is written
    /// at once; a stream of sends with no answers is written in batches by a flush op.
    answered: AtomicBool,
}

impl LPipe {
    fn new(link: Arc<Link>, peer: u16, info: Info) -> Arc<LPipe> {
        Arc::new_cyclic(|me| LPipe {
            id: crate::next_pipe_id(),
            peer,
            link,
            info,
            me: me.clone(),
            closing: AtomicBool::new(false),
            answered: AtomicBool::new(true),
        })
    }
}

fn fail_now(aio: &Aio, e: Error) {
    if let Some(t) = aio.begin(Timeout::Infinite, None) {
        aio.finish(t, Err(e), 0);
    }
}

impl PipeOps for LPipe {
    fn id(&self) -> PipeId {
        self.id
    }

    /// Closes: pending operations complete with `Closed` and the socket is shut down.
    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        engine_scope(|| self.link.close());
    }

    fn option(&self, name: &str) -> Result<String> {
        let i = &self.info;
        match name {
            "remote-address" => Ok(i.remote.clone()),
            "local-address" => Ok(i.local.clone()),
            "recv-size-max" => Ok(self.link.recv_max().unwrap_or(i.recv_max).to_string()),
            "url" | "scheme" if name == "scheme" => Ok(i.scheme.clone()),
            "tls-verified" if i.scheme.starts_with("tls") || i.scheme.starts_with("wss") => {
                Ok(i.verified.to_string())
            }
            "tls-peer-cn" if i.scheme.starts_with("tls") || i.scheme.starts_with("wss") => {
                i.peer_cn.clone().ok_or(Error::NotSup)
            }
            "ws:request-uri" if i.scheme.starts_with("ws") => Ok(i.path.clone()),
            "tcp-nodelay" => self
                .link
                .src()
                .ok_or(Error::Closed)?
                .io()
                .tcp_nodelay()
                .map(|v| v.to_string())
                .map_err(Error::from),
            _ => Err(Error::NotSup),
        }
    }

    fn peer_protocol(&self) -> u16 {
        self.peer
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

impl Link {
    /// The receive limit the message framing enforces now (`None` while handshaking).
    fn recv_max(&self) -> Option<usize> {
        match &lock(&self.core).framing {
            Framing::None => None,
            Framing::Sp { recv_max } => Some(*recv_max),
            #[cfg(feature = "ws")]
            Framing::Ws { dec, .. } => Some(dec.recv_max()),
        }
    }

    /// A changed receive limit, from the next message header on.
    fn set_recv_max(&self, n: usize) {
        match &mut lock(&self.core).framing {
            Framing::None => {}
            Framing::Sp { recv_max } => *recv_max = n,
            #[cfg(feature = "ws")]
            Framing::Ws { dec, .. } => dec.set_recv_max(n),
        }
    }
}

impl TransportPipe for LPipe {
    fn set_options(&self, opts: &EndpointOptions) {
        self.link.set_recv_max(opts.recv_max);
        if let Some(src) = self.link.src() {
            // Best effort, as at connect time (see the tcp pipe's).
            sys::tune_tcp(src.io(), opts);
        }
    }

    fn send_aio(&self, aio: &Aio) {
        let Some(src) = self.link.src() else {
            return fail_now(aio, Error::Closed);
        };
        let Some(m) = peek_msg(aio) else {
            return fail_now(aio, Error::Inval);
        };
        src.start_write(
            aio,
            Timeout::Infinite,
            LWrite::Send(Arc::downgrade(&self.link), Some(m)),
        );
    }

    fn recv_aio(&self, aio: &Aio) {
        let Some(src) = self.link.src() else {
            return fail_now(aio, Error::Closed);
        };
        src.start_read(
            aio,
            Timeout::Infinite,
            LRead::Msg(Arc::downgrade(&self.link), self.me.clone()),
        );
    }

    fn pipe(&self) -> Pipe {
        match self.me.upgrade() {
            Some(me) => Pipe::new(me),
            None => Pipe::new(Arc::new(crate::inproc::DeadPipe(self.id, self.peer))),
        }
    }

    /// A thread blocked on this pipe's next message reads it itself: the handoff from
    /// the reactor to a worker to the waiting thread cost two cross-CPU wake-ups per
    /// message (docs/benchmarks.md, "Figures behind design choices").
    fn read_readiness(&self) -> Option<nanoport_engine::Readiness> {
        if self.closing.load(Ordering::Acquire) {
            return None;
        }
        self.link.src()?.read_readiness()
    }

    fn write_readiness(&self) -> Option<nanoport_engine::Readiness> {
        if self.closing.load(Ordering::Acquire) {
            return None;
        }
        self.link.src()?.write_readiness()
    }

    /// Takes a message without an aio when nothing waits to go out before it (no queued
    /// send) and the core holds less than [`SEND_QUEUE_MAX`] bytes; otherwise hands it
    /// back for `send_aio`, which waits its turn. A send that answers a received message
    /// (request/reply) is written at once from the caller's thread; a stream of sends is
    /// encoded into the core and written in batches by a flush op, so a 64 B stream
    /// pays one `send(2)` per batch rather than per message, as the tcp pipe does.
    ///
    /// Why no aio: its start, completion and the callback's thread hop cost more than the
    /// write itself for small messages.
    fn try_send_now(&self, msg: Message) -> std::result::Result<(), Message> {
        if self.closing.load(Ordering::Acquire)
            || self.link.sends_queued.load(Ordering::Acquire) > 0
        {
            return Err(msg);
        }
        let Some(src) = self.link.src() else {
            return Err(msg);
        };
        let mut c = lock(&self.link.core);
        if matches!(c.framing, Framing::None) || c.out_bytes > SEND_QUEUE_MAX {
            return Err(msg);
        }
        let idle = !c.has_output() && !self.link.writer_busy();
        c.encode(&msg);
        if idle && self.answered.swap(false, Ordering::Relaxed) {
            match c.flush(src.io()) {
                Ok(true) => {}
                Ok(false) => self.link.kick_flush(),
                // The connection broke: the pending receive sees it and the pipe closes.
                Err(_) => sys::shutdown(src.io()),
            }
        } else {
            self.link.kick_flush();
        }
        Ok(())
    }

    /// A message already decoded from what was read, without I/O. A bad frame is left
    /// for `recv_aio`, which reports it and drops the connection.
    fn try_recv_now(&self) -> Option<Message> {
        if self.closing.load(Ordering::Acquire) {
            return None;
        }
        let mut c = lock(&self.link.core);
        let mut m = c.next_msg().ok()??;
        if c.has_output() {
            // A pong or close answer decoded on the way.
            self.link.kick_flush();
        }
        drop(c);
        self.answered.store(true, Ordering::Relaxed);
        m.set_pipe(Some(self.pipe()));
        Some(m)
    }
}

// ----- negotiation ---------------------------------------------------------------------------

/// Told when a connection being set up is ready (or failed).
trait Owner: Send + Sync + 'static {
    fn done(&self, key: usize, link: &Arc<Link>, res: Result<Outcome>);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Connect,
    Hs,
}

struct Nego {
    key: usize,
    link: Arc<Link>,
    step: Mutex<Step>,
    aio: OnceLock<Aio>,
    deadline: Duration,
    owner: Weak<dyn Owner>,
}

impl Nego {
    fn new(
        key: usize,
        link: Arc<Link>,
        step: Step,
        deadline: Duration,
        owner: Weak<dyn Owner>,
    ) -> Result<Arc<Nego>> {
        let n = Arc::new(Nego {
            key,
            link,
            step: Mutex::new(step),
            aio: OnceLock::new(),
            deadline,
            owner,
        });
        let weak = Arc::downgrade(&n);
        let aio = Aio::new_inline(move |a| {
            if let Some(n) = weak.upgrade() {
                n.on_step(a);
            }
        })?;
        let _ = n.aio.set(aio);
        Ok(n)
    }

    fn run(&self, step: Step) {
        *lock(&self.step) = step;
        let (Some(aio), Some(src)) = (self.aio.get(), self.link.src()) else {
            return self.finish(Err(Error::Closed));
        };
        match step {
            Step::Connect => src.start_write(aio, Timeout::Infinite, LWrite::Connect),
            Step::Hs => {
                aio.set_expire(Instant::now() + self.deadline);
                src.start_read(
                    aio,
                    Timeout::Infinite,
                    LRead::Hs(Arc::downgrade(&self.link)),
                );
            }
        }
    }

    fn start(&self) {
        let step = *lock(&self.step);
        self.run(step);
    }

    fn on_step(&self, aio: &Aio) {
        let step = *lock(&self.step);
        if let Err(e) = aio.result() {
            let e = if step != Step::Connect && e == Error::Closed {
                Error::ConnShut
            } else {
                e
            };
            return self.finish(Err(e));
        }
        match step {
            Step::Connect => self.run(Step::Hs),
            Step::Hs => match aio.take_output::<Outcome>() {
                Some(o) => self.finish(Ok(o)),
                None => self.finish(Err(Error::Proto)),
            },
        }
    }

    fn finish(&self, res: Result<Outcome>) {
        if res.is_err() {
            self.link.close();
        }
        if let Some(o) = self.owner.upgrade() {
            o.done(self.key, &self.link, res);
        }
    }

    fn abort(&self) {
        self.link.close();
    }
}

/// TLS details of a finished handshake: (verified, peer common name).
#[cfg(feature = "tls")]
fn tls_info(link: &Link, cfg: Option<&crate::TlsConfig>, name: &str) -> (bool, Option<String>) {
    let c = lock(&link.core);
    let Some(t) = &c.tls else {
        return (false, None);
    };
    let certs = t.peer_certificates();
    let cn = certs
        .and_then(|c| c.first())
        .and_then(|c| crate::tls::common_name(c));
    let verified = match (cfg, t) {
        (Some(cfg), rustls::Connection::Client(_)) => match cfg.auth() {
            crate::TlsAuthMode::Required => true,
            _ => certs.is_some_and(|c| cfg.verifies_server(c, name)),
        },
        (Some(cfg), rustls::Connection::Server(_)) => {
            cfg.auth() != crate::TlsAuthMode::None && certs.is_some()
        }
        _ => false,
    };
    (verified, cn)
}

fn addr_text(scheme: &str, a: std::io::Result<SockAddr>) -> String {
    match a.ok().and_then(|a| a.as_socket()) {
        Some(s) => format!("{scheme}://{s}"),
        None => String::new(),
    }
}

fn tune(s: &Socket, opts: &EndpointOptions) {
    sys::tune_tcp(s, opts);
}

fn info_for(scheme: &str, s: &Socket, recv_max: usize) -> Info {
    Info {
        scheme: scheme.to_string(),
        local: addr_text(scheme, s.local_addr()),
        remote: addr_text(scheme, s.peer_addr()),
        recv_max,
        ..Info::default()
    }
}

/// Starts the framing for messages once the handshake is done.
fn start_messages(link: &Link, layer: &Layer, client: bool, recv_max: usize) {
    let mut c = lock(&link.core);
    c.framing = match layer {
        #[cfg(feature = "ws")]
        Layer::Ws { .. } => Framing::Ws {
            dec: ws::FrameDecoder::new(
                if client {
                    ws::Role::Client
                } else {
                    ws::Role::Server
                },
                recv_max,
            ),
            mask: client,
            close_sent: false,
        },
        _ => {
            let _ = client;
            Framing::Sp { recv_max }
        }
    };
}

fn build_pipe(link: &Arc<Link>, out: &Outcome, mut info: Info) -> BoxPipe {
    info.path = out.path.clone();
    let p = LPipe::new(link.clone(), out.peer, info);
    // A handshake answer the kernel did not take yet goes out now.
    if lock(&link.core).has_output() {
        link.kick_flush();
    }
    p
}

// ----- listener ------------------------------------------------------------------------------

/// What a listener on one path of a server wants.
pub(crate) struct ListenerInner {
    proto: u16,
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    token: String,
    /// Read as each connection is set up, so a change reaches later connections.
    opts: Mutex<EndpointOptions>,
    st: Mutex<LState>,
    server: Mutex<Option<Arc<Server>>>,
    path: String,
}

#[derive(Default)]
struct LState {
    ready: VecDeque<BoxPipe>,
    waiters: VecDeque<(usize, Aio, OpToken)>,
    closed: bool,
}

/// The counters behind [`ListenerStats`].
#[derive(Default)]
struct StatCounters {
    accepted: AtomicU64,
    proto: AtomicU64,
    timeout: AtomicU64,
    disconnect: AtomicU64,
    other: AtomicU64,
}

impl StatCounters {
    fn record(&self, res: &Result<()>) {
        let c = match res {
            Ok(_) => &self.accepted,
            Err(Error::Proto | Error::Crypto | Error::PeerAuth | Error::MsgSize) => &self.proto,
            Err(Error::TimedOut) => &self.timeout,
            Err(Error::ConnShut | Error::ConnReset | Error::ConnAborted) => &self.disconnect,
            Err(_) => &self.other,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ListenerStats {
        ListenerStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            handshake_proto: self.proto.load(Ordering::Relaxed),
            handshake_timeout: self.timeout.load(Ordering::Relaxed),
            handshake_disconnect: self.disconnect.load(Ordering::Relaxed),
            handshake_other: self.other.load(Ordering::Relaxed),
        }
    }
}

/// Accepts on one bound address for one listener (tls+tcp) or for every ws path on it.
pub(crate) struct Server {
    lsrc: Mutex<Option<AcceptSrc>>,
    accept: OnceLock<Aio>,
    me: Weak<Server>,
    layer: Layer,
    #[cfg(feature = "tls")]
    tls: Option<(Arc<rustls::ServerConfig>, crate::TlsConfig)>,
    routes: Mutex<HashMap<String, Weak<ListenerInner>>>,
    negos: Mutex<HashMap<usize, Arc<Nego>>>,
    reg_key: Option<(bool, SocketAddr)>,
    port: Option<u16>,
    opts: EndpointOptions,
    stats: StatCounters,
    closed: AtomicBool,
    /// The accept loop is paused after a resource error (see `on_accept`).
    pausing: AtomicBool,
}

type Registry = Mutex<HashMap<(bool, SocketAddr), Weak<Server>>>;

/// The ws servers by bound address, so listeners on other paths of a port join them.
fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Server {
    fn bind(url: &Url, t: &Target, opts: &EndpointOptions) -> Result<Arc<Server>> {
        let layer = url.layer.clone();
        #[cfg(feature = "tls")]
        let tls = if layer.is_tls() {
            let cfg = opts.tls.clone().ok_or(Error::Inval)?;
            Some((cfg.server_config()?, cfg))
        } else {
            None
        };
        let mut last = Error::AddrInval;
        let mut sock = None;
        let v6only = match &url.addr {
            Addr::Tcp {
                family: crate::url::Family::V6,
                ..
            } => Some(true),
            Addr::Tcp {
                host: None,
                family: crate::url::Family::Any,
                ..
            } => Some(false),
            _ => None,
        };
        for a in &t.addrs {
            match bind_one(t, a, v6only) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let sock = sock.ok_or(last)?;
        let bound = sock.local_addr()?.as_socket();
        let port = bound.map(|a| a.port());
        let reg_key = match (&layer, bound) {
            (Layer::Ws { tls, .. }, Some(a)) => Some((*tls, a)),
            _ => None,
        };
        let lsrc = AcceptSrc::new(sock)?;
        let s = Arc::new_cyclic(|me: &Weak<Server>| Server {
            lsrc: Mutex::new(Some(lsrc)),
            accept: OnceLock::new(),
            me: me.clone(),
            layer,
            #[cfg(feature = "tls")]
            tls,
            routes: Mutex::new(HashMap::new()),
            negos: Mutex::new(HashMap::new()),
            reg_key,
            port,
            opts: opts.clone(),
            stats: StatCounters::default(),
            closed: AtomicBool::new(false),
            pausing: AtomicBool::new(false),
        });
        let weak = s.me.clone();
        let aio = Aio::new_inline(move |a| {
            if let Some(s) = weak.upgrade() {
                s.on_accept(a);
            }
        })?;
        let _ = s.accept.set(aio);
        Ok(s)
    }

    fn route(&self, path: &str) -> Option<Arc<ListenerInner>> {
        let r = lock(&self.routes);
        let norm = |p: &str| p.trim_end_matches('/').to_string();
        r.get(&norm(path)).and_then(Weak::upgrade)
    }

    fn start_accept(&self) {
        let (Some(src), Some(aio)) = (lock(&self.lsrc).clone(), self.accept.get()) else {
            return;
        };
        src.start_read(aio, Timeout::Infinite, AcceptOp);
    }

    fn on_accept(&self, aio: &Aio) {
        if self.pausing.swap(false, Ordering::AcqRel) {
            // The pause after a resource error is over.
            if !self.closed.load(Ordering::Acquire) {
                self.start_accept();
            }
            return;
        }
        match aio.result() {
            Ok(()) => {
                if let Some(s) = aio.take_output::<Socket>() {
                    self.setup(s);
                }
            }
            Err(Error::Closed | Error::Canceled) => return,
            Err(
                Error::ConnAborted
                | Error::ConnReset
                | Error::Proto
                | Error::Interrupted
                | Error::Again,
            ) => {}
            Err(_) => {
                // Out of fds or memory: pause 100 ms rather than spin, as NNG's listener.
                self.pausing.store(true, Ordering::Release);
                nanoport_engine::sleep_aio(Duration::from_millis(100), aio);
                return;
            }
        }
        if !self.closed.load(Ordering::Acquire) {
            self.start_accept();
        }
    }

    fn setup(&self, s: Socket) {
        tune(&s, &self.opts);
        let Ok(src) = Src::new(s) else { return };
        let app = match &self.layer {
            #[cfg(feature = "ws")]
            Layer::Ws { .. } => App::WsServer {
                server: self.me.clone(),
            },
            _ => {
                // tls+tcp: the one listener's protocol.
                let Some(l) = self.route("") else { return };
                App::Sp {
                    local: l.proto,
                    sent: false,
                }
            }
        };
        #[cfg(feature = "tls")]
        let tls = match &self.tls {
            Some((cfg, _)) => match rustls::ServerConnection::new(cfg.clone()) {
                Ok(c) => Some(rustls::Connection::Server(c)),
                Err(_) => return,
            },
            None => None,
        };
        #[cfg(feature = "tls")]
        let link = Link::new(src, app, tls);
        #[cfg(not(feature = "tls"))]
        let link = Link::new(src, app);
        let key = next_key();
        let owner: Weak<dyn Owner> = self.me.clone();
        let Ok(n) = Nego::new(key, link, Step::Hs, self.opts.handshake_timeout, owner) else {
            return;
        };
        if self.closed.load(Ordering::Acquire) {
            return n.abort();
        }
        lock(&self.negos).insert(key, n.clone());
        n.start();
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(k) = &self.reg_key {
            let mut r = lock(registry());
            if r.get(k).is_some_and(|w| w.as_ptr() == self.me.as_ptr()) {
                r.remove(k);
            }
        }
        let lsrc = lock(&self.lsrc).take();
        if let Some(s) = lsrc {
            s.close(Error::Closed);
        }
        if let Some(a) = self.accept.get() {
            a.cancel();
        }
        let negos: Vec<_> = lock(&self.negos).drain().map(|(_, n)| n).collect();
        for n in negos {
            n.abort();
        }
    }

    /// Removes a listener's path; the last one out closes the server.
    fn detach(&self, path: &str) {
        let empty = {
            let mut r = lock(&self.routes);
            r.remove(path);
            r.retain(|_, w| w.strong_count() > 0);
            r.is_empty()
        };
        if empty {
            self.close();
        }
    }
}

impl Owner for Server {
    fn done(&self, key: usize, link: &Arc<Link>, res: Result<Outcome>) {
        if lock(&self.negos).remove(&key).is_none() {
            return;
        }
        self.stats.record(&res.as_ref().map(|_| ()).map_err(|e| *e));
        let Ok(out) = res else { return };
        let route = out.route.clone().or_else(|| self.route(""));
        let Some(l) = route else {
            return link.close();
        };
        let Some(src) = link.src() else { return };
        let scheme = self.layer.scheme();
        #[allow(unused_mut)]
        let recv_max = lock(&l.opts).recv_max;
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut info = info_for(scheme, src.io(), recv_max);
        #[cfg(feature = "tls")]
        {
            let (v, cn) = tls_info(link, self.tls.as_ref().map(|t| &t.1), "");
            info.verified = v;
            info.peer_cn = cn;
        }
        start_messages(link, &self.layer, false, recv_max);
        l.deliver(build_pipe(link, &out, info));
    }
}

impl ListenerInner {
    fn deliver(&self, mut p: BoxPipe) {
        let mut st = lock(&self.st);
        if st.closed {
            drop(st);
            return p.close();
        }
        while let Some((_, a, t)) = st.waiters.pop_front() {
            match a.finish_output(t, p) {
                Ok(()) => return,
                Err(back) => p = back,
            }
        }
        st.ready.push_back(p);
    }

    fn close(&self) {
        let (ready, waiters) = {
            let mut st = lock(&self.st);
            if st.closed {
                return;
            }
            st.closed = true;
            (
                std::mem::take(&mut st.ready),
                std::mem::take(&mut st.waiters),
            )
        };
        for p in ready {
            p.close();
        }
        for (_, a, t) in waiters {
            a.finish(t, Err(Error::Closed), 0);
        }
        let server = lock(&self.server).take();
        if let Some(s) = server {
            s.detach(&self.path);
        }
    }
}

impl Cancel for ListenerInner {
    fn cancelled(&self, _: &Aio, key: usize, _: OpToken) {
        lock(&self.st).waiters.retain(|w| w.0 != key);
    }
}

/// A tls+tcp, ws or wss listener.
pub(crate) struct LayerListener {
    inner: Arc<ListenerInner>,
    server: Arc<Server>,
}

fn norm_path(p: &str) -> String {
    p.trim_end_matches('/').to_string()
}

impl LayerListener {
    pub(crate) fn bind(url: &Url, local_proto: u16, opts: EndpointOptions) -> Result<Self> {
        let t = target(url, true)?;
        #[cfg(feature = "tls")]
        if url.layer.is_tls() {
            match &opts.tls {
                Some(c) if c.is_server() => {}
                // A listener needs a server configuration with its certificate.
                _ => return Err(Error::Inval),
            }
        }
        let path = match &url.layer {
            Layer::Ws { path, .. } => norm_path(path),
            _ => String::new(),
        };
        #[cfg(feature = "ws")]
        let token = ws::sp_token(local_proto).unwrap_or_default();
        #[cfg(not(feature = "ws"))]
        let token = String::new();
        let inner = Arc::new(ListenerInner {
            proto: local_proto,
            token,
            opts: Mutex::new(opts.clone()),
            st: Mutex::new(LState::default()),
            server: Mutex::new(None),
            path: path.clone(),
        });
        // A ws listener joins the server already on its port (another path), if any.
        let port = match &url.addr {
            Addr::Tcp { port, .. } => *port,
            _ => 0,
        };
        let mut joined = None;
        if let (Layer::Ws { tls, .. }, true) = (&url.layer, port != 0) {
            let r = lock(registry());
            for a in &t.addrs {
                if let Some(s) = a
                    .as_socket()
                    .and_then(|a| r.get(&(*tls, a)))
                    .and_then(Weak::upgrade)
                {
                    joined = Some(s);
                    break;
                }
            }
        }
        let server = match joined {
            Some(s) => s,
            None => {
                let s = Server::bind(url, &t, &opts)?;
                if let Some(k) = s.reg_key {
                    lock(registry()).insert(k, Arc::downgrade(&s));
                }
                s
            }
        };
        {
            let mut r = lock(&server.routes);
            if r.get(&path).is_some_and(|w| w.strong_count() > 0) {
                return Err(Error::AddrInUse);
            }
            r.insert(path, Arc::downgrade(&inner));
        }
        *lock(&inner.server) = Some(server.clone());
        let first = lock(&server.routes).len() == 1;
        if first {
            server.start_accept();
        }
        Ok(LayerListener { inner, server })
    }

    pub(crate) fn accept_aio(&self, aio: &Aio) {
        engine_scope(|| {
            let key = next_key();
            let hook = CancelHook::new(self.inner.clone(), key);
            let Some(token) = aio.begin(Timeout::Infinite, Some(hook)) else {
                return;
            };
            let mut st = lock(&self.inner.st);
            if st.closed {
                drop(st);
                aio.finish(token, Err(Error::Closed), 0);
                return;
            }
            if let Some(p) = st.ready.pop_front() {
                if let Err(p) = aio.finish_output(token, p) {
                    st.ready.push_front(p);
                }
                return;
            }
            st.waiters.push_back((key, aio.provider_handle(), token));
        })
    }

    pub(crate) fn port(&self) -> Option<u16> {
        self.server.port
    }

    pub(crate) fn stats(&self) -> ListenerStats {
        self.server.stats.snapshot()
    }

    pub(crate) fn handshaking(&self) -> usize {
        lock(&self.server.negos).len()
    }

    /// Options for the connections accepted from now on on this path (the receive limit,
    /// which is the path's own; the shared port's TCP flags and handshake deadline stay
    /// those of the listener that bound it).
    pub(crate) fn set_options(&self, opts: &EndpointOptions) {
        let mut o = lock(&self.inner.opts);
        o.recv_max = opts.recv_max;
        o.tcp_nodelay = opts.tcp_nodelay;
        o.tcp_keepalive = opts.tcp_keepalive;
        o.tcp_keepalive_idle = opts.tcp_keepalive_idle;
        o.tcp_keepalive_interval = opts.tcp_keepalive_interval;
        o.tcp_keepalive_count = opts.tcp_keepalive_count;
        o.send_ahead_max = opts.send_ahead_max;
    }

    pub(crate) fn close(&self) {
        engine_scope(|| self.inner.close());
    }
}

impl Drop for LayerListener {
    fn drop(&mut self) {
        self.close();
    }
}

// ----- dialer --------------------------------------------------------------------------------

struct DInner {
    attempts: Attempts<Nego>,
    me: Weak<DInner>,
    target: Target,
    layer: Layer,
    local_proto: u16,
    /// Read as each connection is set up, so a change reaches later connections.
    opts: Mutex<EndpointOptions>,
    /// Host (and port) for the HTTP `Host` header and the TLS server name.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    host: String,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    hostname: String,
    #[cfg(feature = "tls")]
    tls: Option<(Arc<rustls::ClientConfig>, crate::TlsConfig)>,
}

/// A tls+tcp, ws or wss dialer.
pub(crate) struct LayerDialer {
    inner: Arc<DInner>,
}

impl LayerDialer {
    pub(crate) fn new(url: &Url, local_proto: u16, opts: EndpointOptions) -> Result<Self> {
        let target = target(url, false)?;
        let (hostname, port) = match &url.addr {
            Addr::Tcp { host, port, .. } => (host.clone().unwrap_or_default(), *port),
            _ => return Err(Error::AddrInval),
        };
        let host = if hostname.contains(':') {
            format!("[{hostname}]:{port}")
        } else {
            format!("{hostname}:{port}")
        };
        #[cfg(feature = "tls")]
        let tls = if url.layer.is_tls() {
            // No configuration: a client that verifies against no CA refuses every server,
            // which is NNG's default too; the error says so at the first dial.
            let cfg = opts.tls.clone().unwrap_or_else(crate::TlsConfig::client);
            Some((cfg.client_config()?, cfg))
        } else {
            None
        };
        #[cfg(feature = "ws")]
        if matches!(url.layer, Layer::Ws { .. }) && ws::sp_token(local_proto).is_none() {
            return Err(Error::NotSup);
        }
        let inner = Arc::new_cyclic(|me| DInner {
            attempts: Attempts::new(),
            me: me.clone(),
            target,
            layer: url.layer.clone(),
            local_proto,
            opts: Mutex::new(opts),
            host,
            hostname,
            #[cfg(feature = "tls")]
            tls,
        });
        Ok(LayerDialer { inner })
    }

    /// Options for the connections dialed from now on (the TLS configuration is fixed
    /// once the dialer runs).
    pub(crate) fn set_options(&self, opts: &EndpointOptions) {
        let mut o = lock(&self.inner.opts);
        o.recv_max = opts.recv_max;
        o.tcp_nodelay = opts.tcp_nodelay;
        o.tcp_keepalive = opts.tcp_keepalive;
        o.tcp_keepalive_idle = opts.tcp_keepalive_idle;
        o.tcp_keepalive_interval = opts.tcp_keepalive_interval;
        o.tcp_keepalive_count = opts.tcp_keepalive_count;
        o.local_addr = opts.local_addr;
        o.send_ahead_max = opts.send_ahead_max;
    }

    pub(crate) fn dial_aio(&self, aio: &Aio) {
        engine_scope(|| self.inner.dial_aio(aio));
    }

    pub(crate) fn close(&self) {
        engine_scope(|| self.inner.close());
    }
}

impl Drop for LayerDialer {
    fn drop(&mut self) {
        self.close();
    }
}

impl DInner {
    fn app(&self) -> App {
        match &self.layer {
            #[cfg(feature = "ws")]
            Layer::Ws { path, .. } => {
                let key =
                    ws::new_key(next_key() as u64 ^ Instant::now().elapsed().as_nanos() as u64);
                let peer = ws::peer_of(self.local_proto);
                let token = ws::sp_token(peer).unwrap_or_default();
                App::WsClient {
                    local: self.local_proto,
                    request: Some(ws::client_request(&self.host, path, &key, &token)),
                    key,
                    token,
                }
            }
            _ => App::Sp {
                local: self.local_proto,
                sent: false,
            },
        }
    }

    /// One attempt: look the name up (on a resolver thread) unless the address is
    /// literal, then connect to each address in turn until one answers (as the tcp
    /// dialer in `sock.rs`).
    fn dial_aio(self: &Arc<Self>, aio: &Aio) {
        let key = next_key();
        let Some(token) = aio.begin(Timeout::Infinite, Some(CancelHook::new(self.clone(), key)))
        else {
            return;
        };
        if !self.attempts.begin(key, aio, token) {
            return;
        }
        match self.target.dest() {
            Dest::Addrs(a) => {
                let ips = a.iter().filter_map(SockAddr::as_socket).collect();
                let r = usable(ips, &lock(&self.opts));
                self.resolved(key, r);
            }
            Dest::Name(host, port, family) => {
                let me = self.me.clone();
                let opts = lock(&self.opts).clone();
                crate::resolv::lookup(host, port, family, move |r| {
                    if let Some(d) = me.upgrade() {
                        engine_scope(|| d.resolved(key, r.and_then(|a| usable(a, &opts))));
                    }
                });
            }
        }
    }

    fn resolved(&self, key: usize, r: Result<VecDeque<SockAddr>>) {
        if self.attempts.resolved(key, r) {
            self.try_next(key);
        }
    }

    /// Connects attempt `key` to its next address; with none left, fails it with the
    /// first address's error.
    fn try_next(&self, key: usize) {
        let (addr, opts) = loop {
            let Some(addr) = self.attempts.next_addr(key) else {
                return;
            };
            let opts = lock(&self.opts).clone();
            match connect_one(Kind::Tcp, &addr, &opts)
                .and_then(|(s, now)| Ok((Src::new(s)?, if now { Step::Hs } else { Step::Connect })))
            {
                Ok(x) => break (x, opts),
                Err(e) => self.attempts.note_error(key, e),
            }
        };
        let ((src, step), opts) = (addr, opts);
        #[cfg(feature = "tls")]
        let tls = match &self.tls {
            Some((cfg, tc)) => {
                let name = tc.name_for(&self.hostname);
                let conn = rustls::pki_types::ServerName::try_from(name)
                    .map_err(|_| Error::AddrInval)
                    .and_then(|n| {
                        rustls::ClientConnection::new(cfg.clone(), n).map_err(|_| Error::Crypto)
                    });
                match conn {
                    Ok(c) => Some(rustls::Connection::Client(c)),
                    Err(e) => return self.attempts.fail(key, e),
                }
            }
            None => None,
        };
        #[cfg(feature = "tls")]
        let link = Link::new(src, self.app(), tls);
        #[cfg(not(feature = "tls"))]
        let link = Link::new(src, self.app());
        let owner: Weak<dyn Owner> = self.me.clone();
        let n = match Nego::new(key, link, step, opts.handshake_timeout, owner) {
            Ok(n) => n,
            Err(e) => return self.attempts.fail(key, e),
        };
        if !self.attempts.set_setup(key, &n) {
            return n.abort();
        }
        n.start();
    }

    fn close(&self) {
        self.attempts.close();
    }
}

impl Owner for DInner {
    fn done(&self, key: usize, link: &Arc<Link>, res: Result<Outcome>) {
        // A refused connect moves on to the next address.
        if self.attempts.connect_failed(key, &res) {
            return self.try_next(key);
        }
        let Some((aio, token)) = self.attempts.take(key) else {
            return link.close();
        };
        let out = match res {
            Ok(o) => o,
            Err(e) => {
                aio.finish(token, Err(e), 0);
                return;
            }
        };
        let Some(src) = link.src() else {
            aio.finish(token, Err(Error::ConnShut), 0);
            return;
        };
        #[allow(unused_mut)]
        let recv_max = lock(&self.opts).recv_max;
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut info = info_for(self.layer.scheme(), src.io(), recv_max);
        #[cfg(feature = "tls")]
        {
            let name = self
                .tls
                .as_ref()
                .map(|t| t.1.name_for(&self.hostname))
                .unwrap_or_default();
            let (v, cn) = tls_info(link, self.tls.as_ref().map(|t| &t.1), &name);
            info.verified = v;
            info.peer_cn = cn;
        }
        start_messages(link, &self.layer, true, recv_max);
        let p = build_pipe(link, &out, info);
        if let Err(p) = aio.finish_output(token, p) {
            p.close();
        }
    }
}

impl Cancel for DInner {
    fn cancelled(&self, _: &Aio, key: usize, _: OpToken) {
        self.attempts.cancel(key);
    }
}

impl Setup for Nego {
    fn abort(&self) {
        Nego::abort(self)
    }
    fn connecting(&self) -> bool {
        *lock(&self.step) == Step::Connect
    }
}
