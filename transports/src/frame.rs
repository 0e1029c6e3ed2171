//! SP message framing for stream transports, as a pure codec (no I/O).
//!
//! * TCP: `u64 BE length` then `length` bytes (the SP header followed by the body).
//! * IPC: a type byte `0x01`, then the same.
//!
//! [`FrameDecoder`] checks the announced length (reserved top 4 bits, receive limit) as
//! soon as the prefix is complete, before it allocates anything, and grows its buffer only
//! as payload bytes actually arrive: a peer announcing 1 GiB and sending 10 bytes pins a
//! few KiB, not a gigabyte.

use nanoport_engine::{Error, Message};

/// The largest length the wire allows: the top 4 bits of the 64-bit length are reserved.
pub const MAX_WIRE_LEN: u64 = 0x0FFF_FFFF_FFFF_FFFF;

/// The only IPC message type byte ("in-band").
pub const IPC_MSG_TYPE: u8 = 0x01;

/// The first receive chunk for a body; later chunks grow with what has arrived.
///
/// 64 KiB and room for a protocol header chain ([`nanoport_engine::MAX_HEADER`] bytes
/// and more): a 64 KiB payload behind pair1's or req0's header is 65,540 bytes, and at
/// exactly 64 KiB its last 4 bytes took a `recv` of their own.
const FIRST_CHUNK: usize = 64 * 1024 + 256;

/// Which stream mapping a frame follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `tcp://` (and tls): an 8-byte length prefix.
    Tcp,
    /// `ipc://`, `abstract://`: a type byte and an 8-byte length prefix.
    Ipc,
}

impl Framing {
    /// Length of the prefix in front of each payload.
    pub fn prefix_len(self) -> usize {
        match self {
            Framing::Tcp => 8,
            Framing::Ipc => 9,
        }
    }
}

/// The prefix for a payload of `len` bytes, in a buffer of which the first
/// [`Framing::prefix_len`] bytes are used.
///
/// ```
/// use nanoport_transports::frame::{encode_prefix, Framing};
/// assert_eq!(&encode_prefix(Framing::Ipc, 6)[..9], &[1, 0, 0, 0, 0, 0, 0, 0, 6]);
/// ```
pub fn encode_prefix(framing: Framing, len: u64) -> [u8; 9] {
    let mut p = [0u8; 9];
    match framing {
        Framing::Tcp => p[..8].copy_from_slice(&len.to_be_bytes()),
        Framing::Ipc => {
            p[0] = IPC_MSG_TYPE;
            p[1..].copy_from_slice(&len.to_be_bytes());
        }
    }
    p
}

/// Why an incoming frame was rejected. The connection must be dropped: the stream cannot
/// be resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The announced length has a reserved top bit set (`len > MAX_WIRE_LEN`).
    Reserved(u64),
    /// The announced length exceeds the receive limit (or this platform's `usize`).
    TooLarge(u64),
    /// An IPC type byte other than `0x01`.
    BadType(u8),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Reserved(n) => write!(f, "frame length {n:#x} uses reserved bits"),
            FrameError::TooLarge(n) => write!(f, "frame length {n} exceeds the receive limit"),
            FrameError::BadType(t) => write!(f, "bad IPC message type {t:#04x}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<FrameError> for Error {
    /// Lengths give `MsgSize`, a bad type byte `Proto`, as NNG does.
    fn from(e: FrameError) -> Error {
        match e {
            FrameError::Reserved(_) | FrameError::TooLarge(_) => Error::MsgSize,
            FrameError::BadType(_) => Error::Proto,
        }
    }
}

/// Checks a complete prefix (the first [`Framing::prefix_len`] bytes of `p`) and returns
/// the payload length it announces. Every reader of frames goes through this one check.
fn check_prefix(framing: Framing, recv_max: u64, p: &[u8]) -> Result<usize, FrameError> {
    let lenb: [u8; 8] = match framing {
        Framing::Tcp => [p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]],
        Framing::Ipc => {
            if p[0] != IPC_MSG_TYPE {
                return Err(FrameError::BadType(p[0]));
            }
            [p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]]
        }
    };
    let len = u64::from_be_bytes(lenb);
    if len > MAX_WIRE_LEN {
        return Err(FrameError::Reserved(len));
    }
    if recv_max > 0 && len > recv_max {
        return Err(FrameError::TooLarge(len));
    }
    usize::try_from(len).map_err(|_| FrameError::TooLarge(len))
}

#[derive(Debug)]
enum Phase {
    Prefix { buf: [u8; 9], have: usize },
    Body { buf: Vec<u8>, len: usize },
}

/// An incremental decoder for one stream of frames.
///
/// Feed it bytes with [`feed`](FrameDecoder::feed), or let it read straight from a
/// socket with [`read_with`](FrameDecoder::read_with), which never reads past the end of
/// the current frame.
#[derive(Debug)]
pub struct FrameDecoder {
    framing: Framing,
    recv_max: u64,
    phase: Phase,
}

impl FrameDecoder {
    /// A decoder for `framing` accepting payloads of at most `recv_max` bytes (0: no
    /// limit beyond the wire's own).
    pub fn new(framing: Framing, recv_max: usize) -> FrameDecoder {
        FrameDecoder {
            framing,
            recv_max: recv_max as u64,
            phase: Phase::Prefix {
                buf: [0; 9],
                have: 0,
            },
        }
    }

    /// Whether part of a frame has been consumed (stopping now leaves the stream
    /// mid-frame).
    pub fn in_frame(&self) -> bool {
        match &self.phase {
            Phase::Prefix { have, .. } => *have > 0,
            Phase::Body { .. } => true,
        }
    }

    /// Bytes of payload buffered so far (what a slow peer pins).
    pub fn buffered_capacity(&self) -> usize {
        match &self.phase {
            Phase::Prefix { .. } => 0,
            Phase::Body { buf, .. } => buf.capacity(),
        }
    }

    /// Checks a complete prefix and moves to the body phase.
    fn prefix_done(&mut self, p: [u8; 9]) -> Result<Option<Vec<u8>>, FrameError> {
        let len = check_prefix(self.framing, self.recv_max, &p)?;
        if len == 0 {
            self.phase = Phase::Prefix {
                buf: [0; 9],
                have: 0,
            };
            return Ok(Some(Vec::new()));
        }
        self.phase = Phase::Body {
            buf: Vec::new(),
            len,
        };
        Ok(None)
    }

    /// Consumes bytes from `data`; returns how many were used and the payload of a frame
    /// if one completed (then the rest of `data` is left for the next call).
    ///
    /// # Errors
    /// A bad prefix; the decoder must not be used again.
    pub fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Vec<u8>>), FrameError> {
        let mut used = 0;
        loop {
            let rest = &data[used..];
            match &mut self.phase {
                Phase::Prefix { buf, have } => {
                    let plen = self.framing.prefix_len();
                    let n = rest.len().min(plen - *have);
                    buf[*have..*have + n].copy_from_slice(&rest[..n]);
                    *have += n;
                    used += n;
                    if *have < plen {
                        return Ok((used, None));
                    }
                    let p = *buf;
                    if let Some(empty) = self.prefix_done(p)? {
                        return Ok((used, Some(empty)));
                    }
                }
                Phase::Body { buf, len } => {
                    let n = rest.len().min(*len - buf.len());
                    buf.extend_from_slice(&rest[..n]);
                    used += n;
                    if buf.len() < *len {
                        return Ok((used, None));
                    }
                    let out = std::mem::take(buf);
                    self.phase = Phase::Prefix {
                        buf: [0; 9],
                        have: 0,
                    };
                    return Ok((used, Some(out)));
                }
            }
        }
    }

    /// Reads one frame with `read` (a non-blocking `recv` into the slice it is given),
    /// never asking for more bytes than the current frame still needs. Returns
    /// `Ok(Some(payload))` for a complete frame, `Ok(None)` when `read` would block.
    ///
    /// # Errors
    /// [`ReadError::Eof`] if `read` returns 0, [`ReadError::Io`] for its other errors,
    /// [`ReadError::Frame`] for a bad prefix.
    pub fn read_with(
        &mut self,
        mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    ) -> Result<Option<Vec<u8>>, ReadError> {
        loop {
            let r = match &mut self.phase {
                Phase::Prefix { buf, have } => {
                    let plen = self.framing.prefix_len();
                    match read(&mut buf[*have..plen]) {
                        Ok(0) => return Err(ReadError::Eof),
                        Ok(n) => {
                            *have += n;
                            if *have == plen {
                                let p = *buf;
                                if let Some(empty) =
                                    self.prefix_done(p).map_err(ReadError::Frame)?
                                {
                                    return Ok(Some(empty));
                                }
                            }
                            continue;
                        }
                        Err(e) => e,
                    }
                }
                Phase::Body { buf, len } => {
                    let got = buf.len();
                    // Grow with what has arrived, never by the announced length alone.
                    let chunk = (*len - got).min(FIRST_CHUNK.max(got));
                    buf.resize(got + chunk, 0);
                    match read(&mut buf[got..]) {
                        Ok(0) => {
                            buf.truncate(got);
                            return Err(ReadError::Eof);
                        }
                        Ok(n) => {
                            buf.truncate(got + n);
                            if buf.len() == *len {
                                let out = std::mem::take(buf);
                                self.phase = Phase::Prefix {
                                    buf: [0; 9],
                                    have: 0,
                                };
                                return Ok(Some(out));
                            }
                            continue;
                        }
                        Err(e) => {
                            buf.truncate(got);
                            e
                        }
                    }
                }
            };
            match r.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => return Ok(None),
                _ => return Err(ReadError::Io(r)),
            }
        }
    }
}

/// Why [`FrameDecoder::read_with`] stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the stream.
    Eof,
    /// The read failed.
    Io(std::io::Error),
    /// The peer sent a bad frame prefix.
    Frame(FrameError),
}

impl From<ReadError> for Error {
    fn from(e: ReadError) -> Error {
        match e {
            ReadError::Eof => Error::ConnShut,
            ReadError::Io(e) => e.into(),
            ReadError::Frame(f) => f.into(),
        }
    }
}

/// The read buffer a [`FrameReader`] starts with, once the first byte is due.
pub const READ_BUF_MIN: usize = 4 * 1024;

/// The most a [`FrameReader`]'s buffer grows to; larger frames get a buffer of their own.
pub const READ_BUF_MAX: usize = 64 * 1024;

/// A frame too large for the read buffer, received straight into its own vector.
#[derive(Debug)]
struct BigFrame {
    /// `body[..got]` has arrived; the rest of `body` is room for the next read.
    body: Vec<u8>,
    got: usize,
    len: usize,
}

/// What a [`FrameReader`] hands a frame out as.
pub trait FromFrame: Sized {
    /// A frame complete in the read buffer, copied out of it.
    fn copy_of(payload: &[u8]) -> Self;
    /// A large frame, read into a vector of its own.
    fn from_vec(payload: Vec<u8>) -> Self;
}

impl FromFrame for Vec<u8> {
    fn copy_of(payload: &[u8]) -> Self {
        payload.to_vec()
    }
    fn from_vec(payload: Vec<u8>) -> Self {
        payload
    }
}

impl FromFrame for Message {
    fn copy_of(payload: &[u8]) -> Self {
        Message::from(payload)
    }
    fn from_vec(payload: Vec<u8>) -> Self {
        Message::from(payload)
    }
}

/// A buffered reader of frames for one connection: one `recv` of up to
/// [`READ_BUF_MAX`] bytes yields as many frames as arrived, and later calls hand them out
/// with no I/O at all.
///
/// Why: a stream of small messages read frame by frame costs two syscalls per message (the
/// prefix, then the body); reading into a connection buffer costs one syscall per buffer
/// full. The buffer is allocated once per connection, starts at [`READ_BUF_MIN`] and
/// doubles only when arrived bytes fill at least half of it, so its size follows what the
/// peer actually sent. A frame that cannot fit in [`READ_BUF_MAX`] is read straight into
/// its own vector, which grows with the bytes received (as [`FrameDecoder::read_with`]):
/// a peer announcing a huge frame and going quiet pins what it sent plus one chunk.
///
/// The prefix checks are [`FrameDecoder`]'s (same errors, same limits); after an error
/// the reader keeps failing with it, since the stream cannot be resynchronised.
#[derive(Debug)]
pub struct FrameReader {
    framing: Framing,
    recv_max: u64,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    big: Option<BigFrame>,
    failed: Option<FrameError>,
    /// The last read filled all the free space: more is probably waiting.
    last_read_full: bool,
    /// The last frame was too large for the buffer: read only the next prefix before
    /// deciding, so a stream of large frames is not copied through the buffer.
    last_big: bool,
    /// Reads that brought bytes, ever (an activity count for the idle sweep).
    reads: u64,
    /// The last read brought fewer bytes than it had room for: the kernel held no more at
    /// that moment (see [`FrameReader::skip_read_if_drained`]).
    drained: bool,
}

impl FrameReader {
    /// Changes the receive limit from the next frame on; a frame whose length was already
    /// accepted is finished under the old one.
    pub fn set_recv_max(&mut self, recv_max: usize) {
        self.recv_max = recv_max as u64;
    }

    /// The receive limit (0: none).
    pub fn recv_max(&self) -> usize {
        self.recv_max as usize
    }

    /// A reader for `framing` accepting payloads of at most `recv_max` bytes (0: no limit
    /// beyond the wire's own). Allocates nothing until bytes arrive.
    pub fn new(framing: Framing, recv_max: usize) -> FrameReader {
        FrameReader {
            framing,
            recv_max: recv_max as u64,
            buf: Vec::new(),
            start: 0,
            end: 0,
            big: None,
            failed: None,
            last_read_full: false,
            last_big: false,
            reads: 0,
            drained: false,
        }
    }

    /// How many reads have brought bytes so far: unchanged between two looks, the
    /// connection received nothing in between.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Frees the read buffer if it holds no received bytes; returns the bytes of memory
    /// freed. The next read goes onto the stack first, as for a new connection, and the
    /// buffer grows again from [`READ_BUF_MIN`] only if bytes come.
    ///
    /// Why: the buffer grows to [`READ_BUF_MAX`] under a burst and nothing else would
    /// shrink it; thousands of connections that were busy once and then went quiet would
    /// each pin it for good.
    pub fn release_idle(&mut self) -> usize {
        if self.start < self.end || self.big.is_some() {
            return 0;
        }
        let freed = self.buf.capacity();
        self.buf = Vec::new();
        self.start = 0;
        self.end = 0;
        self.last_read_full = false;
        freed
    }

    /// Whether the next [`read_with`](FrameReader::read_with) would only read to find
    /// nothing: no complete frame is buffered and the last read came back short, so the
    /// kernel had drained at that moment. Answers true once per short read; the caller
    /// then waits for readiness without that read, which is safe as long as the wait is
    /// level-triggered (`poll`, or an epoll arming, which reports data already there).
    ///
    /// Why: after each message a reader otherwise makes one more `recv` that fails with
    /// `EAGAIN`; in a request/reply exchange that is one syscall in three per side.
    pub fn skip_read_if_drained(&mut self) -> bool {
        if !self.drained || self.failed.is_some() {
            return false;
        }
        self.drained = false;
        if self.big.is_some() {
            return true;
        }
        let avail = &self.buf[self.start..self.end];
        let plen = self.framing.prefix_len();
        if avail.len() < plen {
            return true;
        }
        // A frame complete in the buffer (or a bad prefix, for `read_with` to report)
        // must not wait for more bytes.
        match check_prefix(self.framing, self.recv_max, avail) {
            Ok(len) => avail.len() - plen < len,
            Err(_) => false,
        }
    }

    /// Whether received bytes of an incomplete or not yet handed out frame are held.
    pub fn in_frame(&self) -> bool {
        self.start < self.end || self.big.is_some()
    }

    /// Whether the next [`read_with`](FrameReader::read_with) answers from what is already
    /// buffered (a complete frame, or a bad prefix to report) without any I/O; when false
    /// it would have to read, so the caller may as well wait for readiness first.
    pub fn answers_without_io(&self) -> bool {
        if self.failed.is_some() {
            return true;
        }
        if self.big.is_some() {
            return false;
        }
        let avail = &self.buf[self.start..self.end];
        let plen = self.framing.prefix_len();
        if avail.len() < plen {
            return false;
        }
        match check_prefix(self.framing, self.recv_max, avail) {
            Ok(len) => avail.len() - plen >= len,
            Err(_) => true,
        }
    }

    /// Bytes of memory held for received data (read buffer plus a large frame's vector).
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity() + self.big.as_ref().map_or(0, |b| b.body.capacity())
    }

    /// The next complete frame among the bytes already received, without any I/O.
    ///
    /// # Errors
    /// A bad prefix, now and on every later call.
    pub fn next_buffered(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        self.next_buffered_as()
    }

    /// [`next_buffered`](FrameReader::next_buffered), the frame handed out as `T`: a
    /// [`Message`] takes a small frame's bytes straight from the read buffer into a pooled
    /// body, with no vector in between.
    ///
    /// # Errors
    /// A bad prefix, now and on every later call.
    pub fn next_buffered_as<T: FromFrame>(&mut self) -> Result<Option<T>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.big.is_some() {
            return Ok(None);
        }
        let plen = self.framing.prefix_len();
        let avail = &self.buf[self.start..self.end];
        if avail.len() < plen {
            return Ok(None);
        }
        let len = match check_prefix(self.framing, self.recv_max, avail) {
            Ok(len) => len,
            Err(e) => {
                self.failed = Some(e);
                return Err(e);
            }
        };
        self.last_big = len > READ_BUF_MAX - plen;
        if avail.len() - plen >= len {
            let payload = T::copy_of(&avail[plen..plen + len]);
            self.start += plen + len;
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
            return Ok(Some(payload));
        }
        if self.last_big {
            // Too large for the buffer: move what arrived into the frame's own vector,
            // with room for the first read (the growth rule of `read_with`). The vector
            // comes from the buffer cache, stale bytes and all: the frame is handed out
            // only once reads have overwritten every one of its bytes.
            let got = avail.len() - plen;
            let room = (len - got).min(FIRST_CHUNK.max(got));
            let mut body = nanoport_engine::buffers::take(got + room);
            body[..got].copy_from_slice(&avail[plen..]);
            self.start = 0;
            self.end = 0;
            self.big = Some(BigFrame { got, body, len });
        }
        Ok(None)
    }

    /// The next frame: from the buffer if one is complete there, else after reading with
    /// `read` (a non-blocking `recv` into the slice it is given) until a frame completes
    /// or `read` would block (`Ok(None)`).
    ///
    /// # Errors
    /// [`ReadError::Eof`] if `read` returns 0, [`ReadError::Io`] for its other errors,
    /// [`ReadError::Frame`] for a bad prefix.
    pub fn read_with(
        &mut self,
        read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    ) -> Result<Option<Vec<u8>>, ReadError> {
        self.read_with_as(read)
    }

    /// [`read_with`](FrameReader::read_with), the frame handed out as `T` (see
    /// [`next_buffered_as`](FrameReader::next_buffered_as)).
    ///
    /// # Errors
    /// As [`read_with`](FrameReader::read_with).
    pub fn read_with_as<T: FromFrame>(
        &mut self,
        mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    ) -> Result<Option<T>, ReadError> {
        loop {
            if let Some(f) = self.next_buffered_as::<T>().map_err(ReadError::Frame)? {
                return Ok(Some(f));
            }
            let r = if let Some(big) = &mut self.big {
                if big.got == big.body.len() {
                    // Grow with what has arrived, never by the announced length alone
                    // (and only when the room is used up, so a peer sending a byte at a
                    // time costs no refill per byte).
                    let chunk = (big.len - big.got).min(FIRST_CHUNK.max(big.got));
                    big.body.resize(big.got + chunk, 0);
                }
                let room = big.body.len() - big.got;
                match read(&mut big.body[big.got..]) {
                    Ok(0) => return Err(ReadError::Eof),
                    Ok(n) => {
                        self.reads += 1;
                        self.drained = n < room;
                        big.got += n;
                        if big.got == big.len {
                            let out = std::mem::take(&mut big.body);
                            self.big = None;
                            return Ok(Some(T::from_vec(out)));
                        }
                        continue;
                    }
                    Err(e) => e,
                }
            } else if self.buf.is_empty() {
                // No buffer yet. A listener may hold thousands of connections that never
                // speak after the handshake; each would pin a buffer if it were allocated
                // for the first read. Read onto the stack and allocate only if bytes came.
                let mut first = [0u8; READ_BUF_MIN];
                match read(&mut first) {
                    Ok(0) => return Err(ReadError::Eof),
                    Ok(n) => {
                        self.reads += 1;
                        self.drained = n < READ_BUF_MIN;
                        self.buf.resize(READ_BUF_MIN, 0);
                        self.buf[..n].copy_from_slice(&first[..n]);
                        self.end = n;
                        self.last_read_full = n == READ_BUF_MIN;
                        continue;
                    }
                    Err(e) => e,
                }
            } else {
                self.make_room();
                let mut upto = self.buf.len();
                let plen = self.framing.prefix_len();
                if self.last_big && self.end < plen {
                    // After a large frame: just the next prefix, then decide (a large one
                    // goes straight into its own vector, not through the buffer).
                    upto = plen;
                }
                match read(&mut self.buf[self.end..upto]) {
                    Ok(0) => return Err(ReadError::Eof),
                    Ok(n) => {
                        self.reads += 1;
                        self.drained = self.end + n < upto;
                        self.last_read_full = self.end + n == upto && upto == self.buf.len();
                        self.end += n;
                        continue;
                    }
                    Err(e) => e,
                }
            };
            match r.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => return Ok(None),
                _ => return Err(ReadError::Io(r)),
            }
        }
    }

    /// Moves the unconsumed tail to the front, and doubles the buffer when arrived bytes
    /// fill at least half of it or the last read filled it (more is waiting), so there is
    /// always free space to read into and the size follows what the peer really sends.
    fn make_room(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let cap = self.buf.len();
        if (self.end * 2 >= cap || self.last_read_full) && cap < READ_BUF_MAX {
            self.buf.resize((cap * 2).min(READ_BUF_MAX), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(framing: Framing, payload: &[u8]) -> Vec<u8> {
        let mut v = encode_prefix(framing, payload.len() as u64)[..framing.prefix_len()].to_vec();
        v.extend_from_slice(payload);
        v
    }

    fn decode_all(d: &mut FrameDecoder, mut data: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let (n, f) = d.feed(data)?;
            data = &data[n..];
            out.extend(f);
        }
        Ok(out)
    }

    #[test]
    fn worked_examples() {
        let req = [0x80, 0, 0, 1, b'h', b'i'];
        assert_eq!(
            frame(Framing::Tcp, &req),
            [0, 0, 0, 0, 0, 0, 0, 6, 0x80, 0, 0, 1, 0x68, 0x69]
        );
        assert_eq!(
            frame(Framing::Ipc, &req),
            [1, 0, 0, 0, 0, 0, 0, 0, 6, 0x80, 0, 0, 1, 0x68, 0x69]
        );
    }

    #[test]
    fn round_trip_sizes_both_framings() {
        for framing in [Framing::Tcp, Framing::Ipc] {
            let mut wire = Vec::new();
            let sizes = [0usize, 1, 7, 8, 9, 1024, 100_000];
            for &s in &sizes {
                wire.extend(frame(framing, &vec![(s % 251) as u8; s]));
            }
            let mut d = FrameDecoder::new(framing, 0);
            let got = decode_all(&mut d, &wire).unwrap();
            assert_eq!(got.len(), sizes.len());
            for (g, &s) in got.iter().zip(&sizes) {
                assert_eq!(g, &vec![(s % 251) as u8; s]);
            }
            assert!(!d.in_frame());
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let wire: Vec<u8> = [
            frame(Framing::Ipc, b"abc"),
            frame(Framing::Ipc, b""),
            frame(Framing::Ipc, b"z"),
        ]
        .concat();
        let mut d = FrameDecoder::new(Framing::Ipc, 0);
        let mut got = Vec::new();
        for b in &wire {
            let (n, f) = d.feed(std::slice::from_ref(b)).unwrap();
            assert_eq!(n, 1);
            got.extend(f);
        }
        assert_eq!(got, vec![b"abc".to_vec(), vec![], b"z".to_vec()]);
    }

    #[test]
    fn length_with_reserved_bits_is_rejected() {
        for len in [1u64 << 63, u64::MAX, 1 << 60, MAX_WIRE_LEN + 1] {
            let mut d = FrameDecoder::new(Framing::Tcp, 0);
            assert_eq!(d.feed(&len.to_be_bytes()), Err(FrameError::Reserved(len)));
            assert_eq!(d.buffered_capacity(), 0);
        }
        assert_eq!(Error::from(FrameError::Reserved(1 << 63)), Error::MsgSize);
    }

    #[test]
    fn recv_max_is_enforced_exactly() {
        let mut d = FrameDecoder::new(Framing::Tcp, 100);
        assert_eq!(
            decode_all(&mut d, &frame(Framing::Tcp, &[7; 100])).unwrap(),
            vec![vec![7; 100]]
        );
        assert_eq!(
            decode_all(&mut d, &frame(Framing::Tcp, &[7; 99])).unwrap(),
            vec![vec![7; 99]]
        );
        let mut d = FrameDecoder::new(Framing::Tcp, 100);
        assert_eq!(
            d.feed(&101u64.to_be_bytes()),
            Err(FrameError::TooLarge(101))
        );
        assert_eq!(Error::from(FrameError::TooLarge(101)), Error::MsgSize);
        // 0 means unlimited (up to the wire limit): a large announcement is accepted lazily.
        let mut d = FrameDecoder::new(Framing::Tcp, 0);
        assert_eq!(d.feed(&MAX_WIRE_LEN.to_be_bytes()).map(|r| r.1), Ok(None));
    }

    #[test]
    fn bad_ipc_type_byte() {
        for t in [0u8, 2, 0x80, 0xff] {
            let mut d = FrameDecoder::new(Framing::Ipc, 0);
            let mut wire = frame(Framing::Ipc, b"x");
            wire[0] = t;
            assert_eq!(d.feed(&wire), Err(FrameError::BadType(t)));
        }
        assert_eq!(Error::from(FrameError::BadType(2)), Error::Proto);
    }

    #[test]
    fn truncated_frames_stay_pending() {
        let wire = frame(Framing::Tcp, b"hello");
        for cut in 0..wire.len() {
            let mut d = FrameDecoder::new(Framing::Tcp, 0);
            let (n, f) = d.feed(&wire[..cut]).unwrap();
            assert_eq!((n, f), (cut, None));
            assert_eq!(d.in_frame(), cut > 0);
        }
    }

    #[test]
    fn big_announcement_pins_only_what_arrived() {
        // read_with: 1 GiB announced, 10 bytes sent.
        let mut d = FrameDecoder::new(Framing::Tcp, 0);
        let mut src: Vec<u8> = frame(Framing::Tcp, &[])[..0].to_vec();
        src.extend((1u64 << 30).to_be_bytes());
        src.extend([9u8; 10]);
        let mut pos = 0;
        let r = d.read_with(|buf| {
            if pos == src.len() {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(src.len() - pos);
            buf[..n].copy_from_slice(&src[pos..pos + n]);
            pos += n;
            Ok(n)
        });
        assert!(matches!(r, Ok(None)));
        assert!(
            d.buffered_capacity() <= 2 * FIRST_CHUNK,
            "pinned {}",
            d.buffered_capacity()
        );
        // feed: the same.
        let mut d = FrameDecoder::new(Framing::Tcp, 0);
        d.feed(&src).unwrap();
        assert!(
            d.buffered_capacity() <= 64,
            "pinned {}",
            d.buffered_capacity()
        );
    }

    #[test]
    fn read_with_reads_exactly_one_frame_and_reports_eof() {
        let wire = [
            frame(Framing::Ipc, &[1; 200_000]),
            frame(Framing::Ipc, b"next"),
        ]
        .concat();
        let mut pos = 0;
        let mut reader = |buf: &mut [u8]| {
            let n = buf.len().min(wire.len() - pos).min(3000);
            buf[..n].copy_from_slice(&wire[pos..pos + n]);
            pos += n;
            Ok(n)
        };
        let mut d = FrameDecoder::new(Framing::Ipc, 0);
        assert_eq!(d.read_with(&mut reader).unwrap(), Some(vec![1; 200_000]));
        assert_eq!(d.read_with(&mut reader).unwrap(), Some(b"next".to_vec()));
        assert!(matches!(d.read_with(&mut reader), Err(ReadError::Eof)));
        let mut d = FrameDecoder::new(Framing::Tcp, 10);
        let big = 11u64.to_be_bytes();
        let mut p = 0;
        let r = d.read_with(|buf| {
            let n = buf.len().min(8 - p);
            buf[..n].copy_from_slice(&big[p..p + n]);
            p += n;
            Ok(n)
        });
        assert!(matches!(r, Err(ReadError::Frame(FrameError::TooLarge(11)))));
    }

    /// A reader over `wire` that hands out at most `max` bytes per call, counting calls,
    /// and says WouldBlock at the end.
    struct Src<'a> {
        wire: &'a [u8],
        pos: usize,
        max: usize,
        calls: usize,
    }

    impl Src<'_> {
        /// Serves `wire`, at most `max` bytes per read, then `WouldBlock`.
        fn new(wire: &[u8], max: usize) -> Src<'_> {
            Src {
                wire,
                pos: 0,
                max,
                calls: 0,
            }
        }

        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            self.calls += 1;
            if self.pos == self.wire.len() {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = b.len().min(self.wire.len() - self.pos).min(self.max);
            b[..n].copy_from_slice(&self.wire[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn drain_reader(r: &mut FrameReader, src: &mut Src<'_>) -> Result<Vec<Vec<u8>>, ReadError> {
        let mut out = Vec::new();
        while let Some(f) = r.read_with(|b| src.read(b))? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn reader_one_read_yields_many_frames_then_serves_them_without_io() {
        let wire: Vec<u8> = (0..500u32)
            .flat_map(|i| frame(Framing::Tcp, &[i as u8; 64]))
            .collect();
        let mut r = FrameReader::new(Framing::Tcp, 0);
        let mut src = Src::new(&wire, usize::MAX);
        let first = r.read_with(|b| src.read(b)).unwrap().unwrap();
        assert_eq!(first, vec![0u8; 64]);
        assert_eq!(src.calls, 1, "one read for the first frame");
        // Everything already buffered comes out with no read at all.
        let mut n = 1;
        while let Some(f) = r.next_buffered().unwrap() {
            assert_eq!(f, vec![n as u8; 64]);
            n += 1;
        }
        assert_eq!(src.calls, 1);
        assert!(
            n > 50,
            "a {READ_BUF_MIN}-byte buffer holds many 72-byte frames: {n}"
        );
        let rest = drain_reader(&mut r, &mut src).unwrap();
        assert_eq!(n + rest.len(), 500);
        for (k, f) in rest.iter().enumerate() {
            assert_eq!(f, &vec![(n + k) as u8; 64]);
        }
        assert!(
            src.calls < 20,
            "the buffer grew to batch reads: {} calls",
            src.calls
        );
        assert!(r.buffered_capacity() <= READ_BUF_MAX);
        assert!(!r.in_frame());
    }

    #[test]
    fn reader_matches_decoder_for_any_chunking() {
        for framing in [Framing::Tcp, Framing::Ipc] {
            let sizes = [
                0usize, 1, 7, 8, 9, 4000, 4096, 70_000, 1, 0, 65_000, 65_527, 200_000, 3,
            ];
            let wire: Vec<u8> = sizes
                .iter()
                .enumerate()
                .flat_map(|(i, &s)| frame(framing, &vec![i as u8; s]))
                .collect();
            let want: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, &s)| vec![i as u8; s])
                .collect();
            for max in [1, 2, 5, 9, 100, 4095, 4096, 65_536, usize::MAX] {
                let mut r = FrameReader::new(framing, 0);
                let mut src = Src::new(&wire, max);
                let got = drain_reader(&mut r, &mut src).unwrap();
                assert_eq!(got, want, "{framing:?} chunk {max}");
                assert!(!r.in_frame());
                assert!(matches!(r.read_with(|_| Ok(0)), Err(ReadError::Eof)));
            }
        }
    }

    #[test]
    fn reader_releases_an_idle_buffer_but_never_a_partial_frame() {
        let mut wire = Vec::new();
        for i in 0..200u32 {
            wire.extend(frame(Framing::Tcp, &i.to_le_bytes().repeat(16)));
        }
        let half = frame(Framing::Tcp, &[9u8; 100]);
        wire.extend(&half[..50]);
        let mut r = FrameReader::new(Framing::Tcp, 0);
        let mut src = Src::new(&wire, 4096);
        let got = drain_reader(&mut r, &mut src).unwrap();
        assert_eq!(got.len(), 200);
        assert!(r.reads() > 0);
        assert!(r.buffered_capacity() > READ_BUF_MIN, "grew under the burst");
        assert_eq!(r.release_idle(), 0, "half a frame is held: keep it");
        let rest = &half[50..];
        let mut src = Src::new(rest, 4096);
        assert_eq!(
            drain_reader(&mut r, &mut src).unwrap(),
            vec![vec![9u8; 100]]
        );
        let held = r.buffered_capacity();
        assert_eq!(r.release_idle(), held);
        assert_eq!(r.buffered_capacity(), 0);
        // And it reads on as a new connection would.
        let next = frame(Framing::Tcp, b"after");
        let mut src = Src::new(&next, 4096);
        assert_eq!(
            drain_reader(&mut r, &mut src).unwrap(),
            vec![b"after".to_vec()]
        );
        assert_eq!(r.buffered_capacity(), READ_BUF_MIN);
    }

    #[test]
    fn reader_allocates_nothing_until_bytes_arrive() {
        let mut r = FrameReader::new(Framing::Tcp, 0);
        let mut src = Src::new(&[], usize::MAX);
        assert!(matches!(r.read_with(|b| src.read(b)), Ok(None)));
        assert_eq!(
            r.buffered_capacity(),
            0,
            "an idle connection holds no buffer"
        );
        let wire = frame(Framing::Tcp, b"late");
        let mut src = Src::new(&wire, usize::MAX);
        assert_eq!(
            r.read_with(|b| src.read(b)).unwrap(),
            Some(b"late".to_vec())
        );
        assert_eq!(r.buffered_capacity(), READ_BUF_MIN);
    }

    #[test]
    fn reader_skips_the_read_after_a_short_one_only_when_nothing_is_buffered() {
        // One frame, read short: the kernel had nothing more, so the next read is skipped
        // once (and only once).
        let wire = frame(Framing::Tcp, b"one");
        let mut r = FrameReader::new(Framing::Tcp, 0);
        let mut src = Src::new(&wire, usize::MAX);
        assert_eq!(r.read_with(|b| src.read(b)).unwrap().unwrap(), b"one");
        assert!(r.skip_read_if_drained());
        assert!(!r.skip_read_if_drained(), "once per short read");
        assert!(matches!(r.read_with(|b| src.read(b)), Ok(None)));

        // Two frames in one short read: the second is buffered, so no skip.
        let mut wire = frame(Framing::Tcp, b"a");
        wire.extend(frame(Framing::Tcp, b"b"));
        let mut r = FrameReader::new(Framing::Tcp, 0);
        let mut src = Src::new(&wire, usize::MAX);
        assert_eq!(r.read_with(|b| src.read(b)).unwrap().unwrap(), b"a");
        assert!(!r.skip_read_if_drained());
        assert_eq!(r.next_buffered().unwrap().unwrap(), b"b");

        // A bad prefix already buffered is reported, not skipped over.
        let mut wire = frame(Framing::Tcp, b"a");
        wire.extend([0x80, 0, 0, 0, 0, 0, 0, 1, 0]);
        let mut r = FrameReader::new(Framing::Tcp, 0);
        let mut src = Src::new(&wire, usize::MAX);
        assert_eq!(r.read_with(|b| src.read(b)).unwrap().unwrap(), b"a");
        assert!(!r.skip_read_if_drained());
        assert!(r.read_with(|b| src.read(b)).is_err());

        // A read that filled all the room it had says nothing about the kernel: no skip.
        let wire = frame(Framing::Tcp, &[7u8; 3 * READ_BUF_MIN]);
        let mut r = FrameReader::new(Framing::Tcp, 0);
        let mut src = Src::new(&wire[..2 * READ_BUF_MIN], READ_BUF_MIN);
        assert!(matches!(r.read_with(|b| src.read(b)), Ok(None)));
        assert!(!r.skip_read_if_drained());

        // A large frame read short waits for the rest without an extra read.
        let wire = frame(Framing::Tcp, &[7u8; 100_000]);
        let mut r = FrameReader::new(Framing::Tcp, 0);
        let mut src = Src::new(&wire[..50_000], usize::MAX);
        assert!(matches!(r.read_with(|b| src.read(b)), Ok(None)));
        let calls = src.calls;
        assert!(r.skip_read_if_drained());
        assert_eq!(src.calls, calls);
    }

    #[test]
    fn reader_big_frames_in_reused_buffers_carry_only_their_own_bytes() {
        // Stale buffers in the cache, as earlier messages leave them: a large frame read
        // into one must come out with its own bytes only, however the reads are cut.
        for _ in 0..8 {
            nanoport_engine::buffers::recycle(vec![0xEE; 80 * 1024]);
            nanoport_engine::buffers::recycle(vec![0xEE; 64 * 1024]);
        }
        for max in [1000, 4096, 65_536, usize::MAX] {
            let bodies: Vec<Vec<u8>> = [65_536usize, 70_000, 65_529, 100_000]
                .iter()
                .enumerate()
                .map(|(k, &n)| (0..n).map(|i| (i * 7 + k) as u8).collect())
                .collect();
            let wire: Vec<u8> = bodies.iter().flat_map(|b| frame(Framing::Ipc, b)).collect();
            let mut r = FrameReader::new(Framing::Ipc, 0);
            let mut src = Src::new(&wire, max);
            assert_eq!(drain_reader(&mut r, &mut src).unwrap(), bodies, "max {max}");
        }
    }

    #[test]
    fn reader_big_announcement_pins_only_what_arrived() {
        let mut wire = (1u64 << 30).to_be_bytes().to_vec();
        wire.extend([9u8; 10]);
        let mut r = FrameReader::new(Framing::Tcp, 0);
        let mut src = Src::new(&wire, usize::MAX);
        assert!(matches!(r.read_with(|b| src.read(b)), Ok(None)));
        assert!(r.in_frame());
        assert!(
            r.buffered_capacity() <= READ_BUF_MIN + 2 * FIRST_CHUNK,
            "pinned {}",
            r.buffered_capacity()
        );
        // A frame that fits the buffer, announced and never finished, pins the buffer only.
        let mut wire = 60_000u64.to_be_bytes().to_vec();
        wire.extend([1u8; 100]);
        let mut r = FrameReader::new(Framing::Tcp, 0);
        let mut src = Src::new(&wire, usize::MAX);
        assert!(matches!(r.read_with(|b| src.read(b)), Ok(None)));
        assert_eq!(r.buffered_capacity(), READ_BUF_MIN);
    }

    #[test]
    fn reader_errors_are_the_decoders_and_stick() {
        let cases: Vec<(Framing, usize, Vec<u8>, FrameError)> = vec![
            (
                Framing::Tcp,
                0,
                (1u64 << 63).to_be_bytes().to_vec(),
                FrameError::Reserved(1 << 63),
            ),
            (
                Framing::Tcp,
                0,
                u64::MAX.to_be_bytes().to_vec(),
                FrameError::Reserved(u64::MAX),
            ),
            (
                Framing::Tcp,
                100,
                101u64.to_be_bytes().to_vec(),
                FrameError::TooLarge(101),
            ),
            (
                Framing::Ipc,
                0,
                [&[2u8][..], &1u64.to_be_bytes(), b"x"].concat(),
                FrameError::BadType(2),
            ),
        ];
        for (framing, max, bad, err) in cases {
            // The error comes after the good frames in front of it, and then stays.
            let wire = [frame(framing, b"ok"), bad].concat();
            let mut r = FrameReader::new(framing, max);
            let mut src = Src::new(&wire, usize::MAX);
            assert_eq!(r.read_with(|b| src.read(b)).unwrap(), Some(b"ok".to_vec()));
            for _ in 0..2 {
                assert!(
                    matches!(r.read_with(|b| src.read(b)), Err(ReadError::Frame(e)) if e == err)
                );
                assert_eq!(r.next_buffered(), Err(err));
            }
            let mut d = FrameDecoder::new(framing, max);
            assert_eq!(decode_all(&mut d, &wire), Err(err));
        }
        // Exactly the limit is fine.
        let mut r = FrameReader::new(Framing::Tcp, 100);
        let wire = frame(Framing::Tcp, &[7; 100]);
        let mut src = Src::new(&wire, 3);
        assert_eq!(drain_reader(&mut r, &mut src).unwrap(), vec![vec![7; 100]]);
    }

    #[test]
    fn reader_eof_mid_frame_and_io_errors() {
        let wire = frame(Framing::Ipc, &[1; 500]);
        let mut r = FrameReader::new(Framing::Ipc, 0);
        let mut pos = 0;
        let cut = 200;
        let res = r.read_with(|b| {
            let n = b.len().min(cut - pos);
            b[..n].copy_from_slice(&wire[pos..pos + n]);
            pos += n;
            Ok(n)
        });
        assert!(matches!(res, Err(ReadError::Eof)));
        let mut r = FrameReader::new(Framing::Ipc, 0);
        let res = r.read_with(|_| Err(std::io::ErrorKind::ConnectionReset.into()));
        assert!(matches!(res, Err(ReadError::Io(_))));
        let mut tries = 0;
        let mut r = FrameReader::new(Framing::Ipc, 0);
        let res = r.read_with(|b| {
            tries += 1;
            if tries == 1 {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            b[..wire.len()].copy_from_slice(&wire);
            Ok(wire.len())
        });
        assert_eq!(res.unwrap(), Some(vec![1; 500]));
    }

    #[test]
    fn reader_after_a_large_frame_reads_only_the_next_prefix() {
        let wire = [
            frame(Framing::Tcp, &[1; 100_000]),
            frame(Framing::Tcp, &[2; 100_000]),
            frame(Framing::Tcp, b"small"),
            frame(Framing::Tcp, b"again"),
        ]
        .concat();
        let mut r = FrameReader::new(Framing::Tcp, 0);
        let mut pos = 0;
        let mut asked = Vec::new();
        let mut got = Vec::new();
        loop {
            let res = r.read_with(|b| {
                asked.push(b.len());
                if pos == wire.len() {
                    return Err(std::io::ErrorKind::WouldBlock.into());
                }
                let n = b.len().min(wire.len() - pos);
                b[..n].copy_from_slice(&wire[pos..pos + n]);
                pos += n;
                Ok(n)
            });
            match res.unwrap() {
                Some(f) => got.push(f),
                None => break,
            }
        }
        assert_eq!(got.len(), 4);
        assert_eq!(got[1], vec![2; 100_000]);
        assert_eq!(got[3], b"again".to_vec());
        // Right after a large frame, the next read asks for the prefix only; after the
        // small frame, for a whole buffer again.
        assert!(asked.contains(&8), "asked {asked:?}");
        assert!(
            asked.iter().all(|&a| a >= 8),
            "never byte by byte: {asked:?}"
        );
    }
}
