//! The pure, I/O-free pieces of the WebSocket transport (RFC 6455), as NNG's `ws://` and
//! `wss://` use them: the HTTP/1.1 upgrade (request, response, their parsers) and the
//! frame codec.
//!
//! Each SP message is one binary WebSocket message (the SP header then the body, no
//! length prefix of its own), possibly split into several frames. The subprotocol in
//! `Sec-WebSocket-Protocol` names the SP protocol as `<name>.sp.nanomsg.org`
//! ([`sp_token`]): a dialer asks for its peer's name, a listener accepts only its own,
//! as NNG's `src/sp/transport/ws/websocket.c` does.
//!
//! Everything here works on byte slices and is what the fuzz targets drive.
//!
//! ```
//! use nanoport_transports::ws::{encode_frame, FrameDecoder, Role, WsEvent};
//! // A client sends one masked binary frame; a server decodes it.
//! let mut wire = Vec::new();
//! encode_frame(&mut wire, 0x2, b"hello", Some([1, 2, 3, 4]));
//! let mut dec = FrameDecoder::new(Role::Server, 0);
//! let (used, ev) = dec.decode(&wire).unwrap();
//! assert_eq!(used, wire.len());
//! assert_eq!(ev, Some(WsEvent::Message(b"hello".to_vec())));
//! ```

use base64::Engine as _;
use nanoport_engine::{Error, Result};
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 §1.3 appends to the client's key.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The largest HTTP head (request or response line plus headers) accepted; NNG's HTTP
/// code refuses larger heads too. Beyond it the connection is refused.
pub const MAX_HTTP_HEAD: usize = 8192;

/// Which end of the connection we are: a server reads masked frames and sends plain
/// ones, a client the other way round (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The listener's side.
    Server,
    /// The dialer's side.
    Client,
}

/// Opcodes (RFC 6455 §5.2).
pub mod opcode {
    /// A continuation of a fragmented message.
    pub const CONT: u8 = 0x0;
    /// A text frame (NNG's SP mapping sends none; it is refused).
    pub const TEXT: u8 = 0x1;
    /// A binary frame: the SP messages.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// The SP protocol name used in `Sec-WebSocket-Protocol` for protocol id `proto`, as in
/// NNG's protocol table (`pair1` is NNG's own, the others are nanomsg's).
///
/// ```
/// use nanoport_transports::ws::sp_token;
/// assert_eq!(sp_token(0x30).as_deref(), Some("req.sp.nanomsg.org"));
/// assert_eq!(sp_token(0x11).as_deref(), Some("pair1.sp.nanomsg.org"));
/// assert_eq!(sp_token(0x99), None);
/// ```
pub fn sp_token(proto: u16) -> Option<String> {
    let name = match proto {
        0x10 => "pair",
        0x11 => "pair1",
        0x20 => "pub",
        0x21 => "sub",
        0x30 => "req",
        0x31 => "rep",
        0x50 => "push",
        0x51 => "pull",
        0x62 => "surveyor",
        0x63 => "respondent",
        0x70 => "bus",
        _ => return None,
    };
    Some(format!("{name}.sp.nanomsg.org"))
}

/// The protocol a socket speaking `proto` expects at the other end (NNG's peer id): over
/// ws the pipe's peer is taken from this, since no SP header is exchanged.
pub fn peer_of(proto: u16) -> u16 {
    match proto {
        0x20 => 0x21,
        0x21 => 0x20,
        0x30 => 0x31,
        0x31 => 0x30,
        0x50 => 0x51,
        0x51 => 0x50,
        0x62 => 0x63,
        0x63 => 0x62,
        p => p,
    }
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
///
/// ```
/// // The example of RFC 6455 §1.3.
/// assert_eq!(
///     nanoport_transports::ws::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// A fresh `Sec-WebSocket-Key` from 16 random-enough bytes (the key only guards against
/// caches replaying upgrades; it is not a secret).
pub fn new_key(seed: u64) -> String {
    let mut raw = [0u8; 16];
    let mut x = seed | 1;
    for b in raw.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// The client's upgrade request (what NNG's dialer sends).
pub fn client_request(host: &str, path: &str, key: &str, protocol: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
    )
    .into_bytes()
}

/// The server's `101 Switching Protocols` answer.
pub fn server_response(key: &str, protocol: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n",
        accept_key(key)
    )
    .into_bytes()
}

/// An HTTP error answer to a request that is not an acceptable upgrade (the connection
/// is closed after it).
pub fn reject_response(status: u16) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let mut extra = String::new();
    if status == 426 {
        extra.push_str("Sec-WebSocket-Version: 13\r\n");
    }
    format!("HTTP/1.1 {status} {reason}\r\n{extra}Connection: close\r\nContent-Length: 0\r\n\r\n")
        .into_bytes()
}

/// A parsed, valid upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The request target (path and query), which selects the listener.
    pub path: String,
    /// `Sec-WebSocket-Key`.
    pub key: String,
    /// The subprotocols offered in `Sec-WebSocket-Protocol` (trimmed, in order).
    pub protocols: Vec<String>,
}

fn header<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim)
}

fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Parses the client's upgrade request from the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete, `Ok(Some((head_len, request)))` for a
/// valid upgrade, and `Err(status)` with the HTTP status to answer for anything else: 400
/// for a malformed request or one that is not a WebSocket upgrade, 405 for a method other
/// than GET, 426 for a WebSocket version other than 13, 431 for a head over
/// [`MAX_HTTP_HEAD`].
///
/// ```
/// use nanoport_transports::ws::{client_request, parse_request};
/// let req = client_request("h", "/x", "dGhlIHNhbXBsZSBub25jZQ==", "rep.sp.nanomsg.org");
/// let (n, r) = parse_request(&req).unwrap().unwrap();
/// assert_eq!((n, r.path.as_str()), (req.len(), "/x"));
/// assert_eq!(parse_request(b"GET / HTTP/1.1\r\n\r\n"), Err(400));
/// assert_eq!(parse_request(b"GET / HT"), Ok(None));
/// ```
pub fn parse_request(buf: &[u8]) -> std::result::Result<Option<(usize, UpgradeRequest)>, u16> {
    let mut hdrs = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut hdrs);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HTTP_HEAD => return Err(431),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(431),
        Err(_) => return Err(400),
    };
    if n > MAX_HTTP_HEAD {
        return Err(431);
    }
    if req.method != Some("GET") {
        return Err(405);
    }
    if req.version != Some(1) {
        return Err(400);
    }
    let path = req.path.unwrap_or("/");
    let h = req.headers;
    if !has_token(header(h, "Upgrade"), "websocket")
        || !has_token(header(h, "Connection"), "upgrade")
    {
        return Err(400);
    }
    if header(h, "Sec-WebSocket-Version") != Some("13") {
        return Err(426);
    }
    let key = header(h, "Sec-WebSocket-Key").ok_or(400u16)?;
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return Err(400),
    }
    let protocols = h
        .iter()
        .filter(|x| x.name.eq_ignore_ascii_case("Sec-WebSocket-Protocol"))
        .filter_map(|x| std::str::from_utf8(x.value).ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    Ok(Some((
        n,
        UpgradeRequest {
            path: if path.is_empty() { "/" } else { path }.to_string(),
            key: key.to_string(),
            protocols,
        },
    )))
}

/// Parses the server's answer to our upgrade request (sent with `key`, asking for
/// `protocol`). `Ok(None)` while incomplete, `Ok(Some(head_len))` for a valid
/// `101 Switching Protocols`; `Err(ConnRefused)` for any other status (a 404 from a path
/// nobody listens on, a 400 for a protocol the server does not speak), `Err(Proto)` for
/// a malformed answer, a wrong accept key or a different subprotocol.
///
/// ```
/// use nanoport_transports::ws::{parse_response, server_response};
/// let key = "dGhlIHNhbXBsZSBub25jZQ==";
/// let res = server_response(key, "rep.sp.nanomsg.org");
/// assert_eq!(parse_response(&res, key, "rep.sp.nanomsg.org"), Ok(Some(res.len())));
/// assert!(parse_response(&res, key, "req.sp.nanomsg.org").is_err());
/// ```
pub fn parse_response(buf: &[u8], key: &str, protocol: &str) -> Result<Option<usize>> {
    let mut hdrs = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut hdrs);
    let n = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HTTP_HEAD => return Err(Error::Proto),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Error::Proto),
    };
    if n > MAX_HTTP_HEAD {
        return Err(Error::Proto);
    }
    if res.code != Some(101) {
        return Err(Error::ConnRefused);
    }
    let h = res.headers;
    if !has_token(header(h, "Upgrade"), "websocket")
        || !has_token(header(h, "Connection"), "upgrade")
        || header(h, "Sec-WebSocket-Accept") != Some(accept_key(key).as_str())
        || header(h, "Sec-WebSocket-Protocol") != Some(protocol)
    {
        return Err(Error::Proto);
    }
    Ok(Some(n))
}

/// Appends one frame (FIN set) with `payload` to `out`, masked with `mask` when given
/// (a client's frames).
pub fn encode_frame(out: &mut Vec<u8>, op: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    encode_frame_parts(out, op, true, &[payload], mask);
}

/// Appends one frame whose payload is the concatenation of `parts`; `fin` false for all
/// but the last frame of a fragmented message.
pub fn encode_frame_parts(
    out: &mut Vec<u8>,
    op: u8,
    fin: bool,
    parts: &[&[u8]],
    mask: Option<[u8; 4]>,
) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.reserve(len + 14);
    out.push(if fin { 0x80 } else { 0 } | (op & 0x0f));
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= 0xffff {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        None => {
            for p in parts {
                out.extend_from_slice(p);
            }
        }
        Some(k) => {
            out.extend_from_slice(&k);
            let start = out.len();
            for p in parts {
                out.extend_from_slice(p);
            }
            apply_mask(&mut out[start..], k, 0);
        }
    }
}

/// XORs `buf` with the masking key `key`, `buf[0]` being byte `offset` of the payload
/// (RFC 6455 §5.3). Eight bytes at a time: masking byte by byte cost more than the
/// whole rest of a 64 KiB message's path.
///
/// ```
/// use nanoport_transports::ws::apply_mask;
/// let mut b = *b"abcdefghij";
/// apply_mask(&mut b, [1, 2, 3, 4], 0);
/// apply_mask(&mut b[..3], [1, 2, 3, 4], 0);
/// apply_mask(&mut b[3..], [1, 2, 3, 4], 3);
/// assert_eq!(&b, b"abcdefghij");
/// ```
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let r = offset & 3;
    let k = [key[r], key[(r + 1) & 3], key[(r + 2) & 3], key[(r + 3) & 3]];
    let k8 = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ k8).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i & 3];
    }
}

/// What the decoder found in the bytes it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A whole binary message (its fragments reassembled, unmasked).
    Message(Vec<u8>),
    /// A ping with its payload: answer with a pong carrying it.
    Ping(Vec<u8>),
    /// A pong (ignored).
    Pong,
    /// The peer closes, with its status code if it gave one: answer with a close.
    Close(Option<u16>),
}

/// A frame header (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode.
    pub op: u8,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub len: u64,
    /// Bytes of the header itself.
    pub header_len: usize,
}

/// Parses a frame header at the start of `buf`: `Ok(None)` until enough bytes are there.
///
/// # Errors
/// `Proto` for reserved bits set or a 64-bit length with its top bit set (RFC 6455 §5.2).
pub fn parse_frame_header(buf: &[u8]) -> Result<Option<FrameHeader>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(Error::Proto); // RSV1-3: no extension was negotiated
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => {
            let Some(b) = buf.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([b[0], b[1]])), 4)
        }
        127 => {
            let Some(b) = buf.get(2..10) else {
                return Ok(None);
            };
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let len = u64::from_be_bytes(a);
            if len >> 63 != 0 {
                return Err(Error::Proto);
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        let Some(k) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some([k[0], k[1], k[2], k[3]])
    } else {
        None
    };
    Ok(Some(FrameHeader {
        fin: b0 & 0x80 != 0,
        op: b0 & 0x0f,
        mask,
        len,
        header_len: at,
    }))
}

/// Reassembles the frames one side receives into [`WsEvent`]s, enforcing the rules of
/// RFC 6455 and NNG's message mode.
#[derive(Debug)]
pub struct FrameDecoder {
    role: Role,
    recv_max: usize,
    /// The fragments of the message in progress.
    partial: Vec<u8>,
    in_message: bool,
}

impl FrameDecoder {
    /// The receive limit (0: none).
    pub fn recv_max(&self) -> usize {
        self.recv_max
    }

    /// Changes the receive limit from the next frame header on (0: no limit).
    pub fn set_recv_max(&mut self, recv_max: usize) {
        self.recv_max = recv_max;
    }

    /// A decoder for the `role` side, refusing messages over `recv_max` bytes (0: no
    /// limit).
    pub fn new(role: Role, recv_max: usize) -> FrameDecoder {
        FrameDecoder {
            role,
            recv_max,
            partial: Vec::new(),
            in_message: false,
        }
    }

    /// Decodes at most one frame from the start of `buf`: returns how many bytes it used
    /// (0 while the frame is incomplete) and the event, if the frame completed one.
    ///
    /// The limits are checked from the header alone, before any payload is buffered.
    ///
    /// # Errors
    /// `Proto`: reserved bits or opcodes, a text frame, a server receiving an unmasked
    /// frame or a client a masked one, a control frame over 125 bytes or fragmented, a
    /// continuation with no message in progress or a new message inside one, a 64-bit
    /// length with its top bit set. `MsgSize`: a message over the receive limit.
    pub fn decode(&mut self, buf: &[u8]) -> Result<(usize, Option<WsEvent>)> {
        let Some(h) = parse_frame_header(buf)? else {
            return Ok((0, None));
        };
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) | (Role::Client, true) => return Err(Error::Proto),
            _ => {}
        }
        let control = h.op & 0x8 != 0;
        match h.op {
            opcode::CLOSE | opcode::PING | opcode::PONG => {
                if !h.fin || h.len > 125 {
                    return Err(Error::Proto);
                }
            }
            opcode::BINARY if self.in_message => return Err(Error::Proto),
            opcode::CONT if !self.in_message => return Err(Error::Proto),
            opcode::BINARY | opcode::CONT => {
                let total = (self.partial.len() as u64).saturating_add(h.len);
                if self.recv_max > 0 && total > self.recv_max as u64 {
                    return Err(Error::MsgSize);
                }
                if total > usize::MAX as u64 / 2 {
                    return Err(Error::MsgSize);
                }
            }
            // Text frames belong to NNG's stream mode only; the rest are reserved.
            _ => return Err(Error::Proto),
        }
        let len = h.len as usize;
        let end = h.header_len + len;
        if buf.len() < end {
            return Ok((0, None));
        }
        let payload = &buf[h.header_len..end];
        let unmask = |dst: &mut Vec<u8>| {
            let start = dst.len();
            dst.extend_from_slice(payload);
            if let Some(k) = h.mask {
                apply_mask(&mut dst[start..], k, 0);
            }
        };
        if control {
            let mut p = Vec::with_capacity(len);
            unmask(&mut p);
            let ev = match h.op {
                opcode::PING => WsEvent::Ping(p),
                opcode::PONG => WsEvent::Pong,
                _ => {
                    if p.len() == 1 {
                        return Err(Error::Proto);
                    }
                    WsEvent::Close((p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]])))
                }
            };
            return Ok((end, Some(ev)));
        }
        if h.fin && !self.in_message {
            // The common case, one frame per message: straight into its own buffer.
            let mut p = Vec::with_capacity(len);
            unmask(&mut p);
            return Ok((end, Some(WsEvent::Message(p))));
        }
        unmask(&mut self.partial);
        if h.fin {
            self.in_message = false;
            return Ok((
                end,
                Some(WsEvent::Message(std::mem::take(&mut self.partial))),
            ));
        }
        self.in_message = true;
        Ok((end, None))
    }

    /// How many bytes of the frame at the start of `buf` are still missing, when its
    /// header is complete (so a reader can size its next receive).
    pub fn missing(&self, buf: &[u8]) -> usize {
        match parse_frame_header(buf) {
            Ok(Some(h)) => (h.header_len as u64 + h.len).saturating_sub(buf.len() as u64) as usize,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(op: u8, fin: bool, p: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut v = Vec::new();
        encode_frame_parts(&mut v, op, fin, &[p], mask);
        v
    }

    const K: Option<[u8; 4]> = Some([9, 8, 7, 6]);

    #[test]
    fn fragments_are_reassembled() {
        let mut d = FrameDecoder::new(Role::Server, 0);
        let mut w = frame(opcode::BINARY, false, b"ab", K);
        w.extend(frame(opcode::PING, true, b"p", K));
        w.extend(frame(opcode::CONT, false, b"cd", K));
        w.extend(frame(opcode::CONT, true, b"ef", K));
        let mut at = 0;
        let mut evs = Vec::new();
        while at < w.len() {
            let (n, e) = d.decode(&w[at..]).unwrap();
            assert!(n > 0);
            at += n;
            evs.extend(e);
        }
        assert_eq!(
            evs,
            vec![
                WsEvent::Ping(b"p".to_vec()),
                WsEvent::Message(b"abcdef".to_vec())
            ]
        );
    }

    #[test]
    fn lengths_of_each_width_roundtrip() {
        for len in [0usize, 125, 126, 65535, 65536, 70000] {
            let p = vec![7u8; len];
            let w = frame(opcode::BINARY, true, &p, None);
            let mut d = FrameDecoder::new(Role::Client, 0);
            assert_eq!(d.decode(&w).unwrap(), (w.len(), Some(WsEvent::Message(p))));
            // Incomplete: nothing used.
            assert_eq!(d.decode(&w[..w.len() - 1]).unwrap().0, 0);
        }
    }

    #[test]
    fn bad_frames_are_refused() {
        let s = || FrameDecoder::new(Role::Server, 100);
        // Unmasked client frame.
        assert_eq!(s().decode(&frame(2, true, b"x", None)), Err(Error::Proto));
        // Masked server frame.
        let mut c = FrameDecoder::new(Role::Client, 0);
        assert_eq!(c.decode(&frame(2, true, b"x", K)), Err(Error::Proto));
        // Text.
        assert_eq!(s().decode(&frame(1, true, b"x", K)), Err(Error::Proto));
        // Control frame over 125 bytes.
        assert_eq!(s().decode(&frame(9, true, &[0; 126], K)), Err(Error::Proto));
        // Over the receive limit: refused from the header alone.
        let big = frame(2, true, &[0; 101], K);
        assert_eq!(s().decode(&big[..8]), Err(Error::MsgSize));
        // A 2^63 length.
        let mut h = vec![0x82, 0xff];
        h.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(s().decode(&h), Err(Error::Proto));
        // Continuation without a message, reserved bits, reserved opcode.
        assert_eq!(s().decode(&frame(0, true, b"x", K)), Err(Error::Proto));
        assert_eq!(s().decode(&[0xc2, 0x80, 0, 0, 0, 0]), Err(Error::Proto));
        assert_eq!(s().decode(&frame(3, true, b"", K)), Err(Error::Proto));
    }

    #[test]
    fn requests_that_are_not_upgrades_get_http_errors() {
        assert_eq!(parse_request(b"POST / HTTP/1.1\r\n\r\n"), Err(405));
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Err(400)
        );
        assert_eq!(parse_request(b"\x00\x01garbage\r\n\r\n"), Err(400));
        let long = vec![b'a'; MAX_HTTP_HEAD + 10];
        assert_eq!(parse_request(&long), Err(431));
        let mut partial = b"GET / HTTP/1.1\r\nX: ".to_vec();
        partial.extend(vec![b'a'; MAX_HTTP_HEAD]);
        assert_eq!(parse_request(&partial), Err(431));
        let v12 = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Version: 12\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        assert_eq!(parse_request(v12), Err(426));
    }
}
