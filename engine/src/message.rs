//! [`Message`]: NNG's `nng_msg`, a protocol header and a body.
//!
//! The body is shared copy-on-write, so cloning a message for pub or bus fan-out costs a
//! reference count, not a copy. The header lives inline (NNG's 64-byte header buffer holds
//! the deepest req/rep backtrace, 15 hops plus a request id), so protocol headers cost no
//! allocation.

use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::{Arc, OnceLock};

use crossbeam_queue::ArrayQueue;

use crate::{Error, Pipe, Result};

/// The most header bytes a message can carry: NNG's `(NNI_MAX_MAX_TTL + 1) * 4`.
pub const MAX_HEADER: usize = 64;

/// Body bytes kept free in front of the data so `prepend` rarely moves anything.
const HEADROOM: usize = 32;

/// The bytes before `start` are headroom: never exposed, so they may hold stale bytes of
/// an earlier message when `buf` came from the buffer cache.
#[derive(Clone, Default)]
struct Body {
    buf: Vec<u8>,
    start: usize,
}

impl Drop for Body {
    fn drop(&mut self) {
        if self.buf.capacity() >= crate::buffers::MIN_CACHED {
            crate::buffers::recycle(std::mem::take(&mut self.buf));
        }
    }
}

/// The largest body capacity (headroom included) the small-body pool keeps.
const SMALL_MAX: usize = 512;

/// How many small bodies the pool keeps: at most 512 KiB of capacity, plus their `Arc`s;
/// as many as an inproc pipe holds of 64-byte messages (about 600), so a stream through
/// one does not run the pool dry.
const SMALL_POOL: usize = 1024;

/// Small message bodies no message uses any more, each a unique `Arc` with its vector's
/// capacity kept, for the next small message to take instead of two allocations (the
/// `Arc` and the vector).
///
/// Why: a small message is made on one thread (the sender's copy, or the reader that cut
/// a frame out of its buffer) and dropped on another (the receiving application), so a
/// per-thread cache would fill on one side and stay empty on the other; this one queue
/// serves both directions with two atomic operations, where the allocator took two
/// allocations and two frees per message. Bodies above [`SMALL_MAX`] go to the
/// allocator, or to the large-buffer cache (`buffers`) from 16 KiB.
fn small_pool() -> &'static ArrayQueue<Arc<Body>> {
    static POOL: OnceLock<ArrayQueue<Arc<Body>>> = OnceLock::new();
    POOL.get_or_init(|| ArrayQueue::new(SMALL_POOL))
}

/// A body for `n` bytes after the headroom, from the pool when it fits there.
fn small_body(n: usize) -> Option<Arc<Body>> {
    if HEADROOM + n > SMALL_MAX {
        return None;
    }
    let mut body = small_pool().pop()?;
    let b = Arc::get_mut(&mut body).expect("pooled bodies are unique");
    b.buf.clear();
    b.buf.resize(HEADROOM, 0);
    b.buf.reserve(n);
    b.start = HEADROOM;
    Some(body)
}

/// A message: an SP protocol header and a body (`nng_msg`).
///
/// # Examples
///
/// ```
/// use nanoport_engine::Message;
/// let mut m = Message::from(&b"world"[..]);
/// m.prepend(b"hello ");
/// m.append_u32(7);
/// assert_eq!(m.len(), 15);
/// assert_eq!(m.chop_u32().unwrap(), 7);
/// assert_eq!(m.body(), b"hello world");
/// let copy = m.clone(); // shares the body until one side writes
/// assert_eq!(copy.body(), m.body());
/// ```
#[derive(Clone)]
pub struct Message {
    header: [u8; MAX_HEADER],
    header_len: u8,
    /// Taken in `drop` (to keep it in the small-body pool), nowhere else.
    body: ManuallyDrop<Arc<Body>>,
    pipe: Option<Pipe>,
}

impl Drop for Message {
    fn drop(&mut self) {
        // SAFETY: `self.body` is taken once, here, and `self` is never used again.
        let mut body = unsafe { ManuallyDrop::take(&mut self.body) };
        let cap = body.buf.capacity();
        if (HEADROOM..=SMALL_MAX).contains(&cap) && Arc::get_mut(&mut body).is_some() {
            // Full pool: the body goes back to the allocator.
            let _ = small_pool().push(body);
        }
    }
}

impl Message {
    /// An empty message (`nng_msg_alloc(&m, 0)`).
    pub fn new() -> Message {
        Message::with_capacity(0)
    }

    /// An empty message with room for `n` body bytes before it reallocates.
    pub fn with_capacity(n: usize) -> Message {
        if let Some(body) = small_body(n) {
            return Message::from_arc(body);
        }
        let mut buf = Vec::with_capacity(HEADROOM + n);
        buf.resize(HEADROOM, 0);
        Message::from_body(Body {
            buf,
            start: HEADROOM,
        })
    }

    fn from_body(body: Body) -> Message {
        Message::from_arc(Arc::new(body))
    }

    fn from_arc(body: Arc<Body>) -> Message {
        Message {
            header: [0; MAX_HEADER],
            header_len: 0,
            body: ManuallyDrop::new(body),
            pipe: None,
        }
    }

    /// The body (`nng_msg_body`).
    pub fn body(&self) -> &[u8] {
        &self.body.buf[self.body.start..]
    }

    /// The body, writable; copies it first if another clone shares it.
    pub fn body_mut(&mut self) -> &mut [u8] {
        let b = Arc::make_mut(&mut *self.body);
        &mut b.buf[b.start..]
    }

    fn body_vec(&mut self) -> &mut Body {
        Arc::make_mut(&mut *self.body)
    }

    /// Body length in bytes (`nng_msg_len`).
    pub fn len(&self) -> usize {
        self.body.buf.len() - self.body.start
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The header (`nng_msg_header`).
    pub fn header(&self) -> &[u8] {
        &self.header[..self.header_len as usize]
    }

    /// Header length in bytes (`nng_msg_header_len`).
    pub fn header_len(&self) -> usize {
        self.header_len as usize
    }

    /// Appends to the body (`nng_msg_append`).
    pub fn append(&mut self, data: &[u8]) {
        self.body_vec().buf.extend_from_slice(data);
    }

    /// Inserts at the front of the body (`nng_msg_insert`).
    pub fn prepend(&mut self, data: &[u8]) {
        let b = self.body_vec();
        if b.start >= data.len() {
            b.start -= data.len();
            let s = b.start;
            b.buf[s..s + data.len()].copy_from_slice(data);
        } else {
            let mut buf = Vec::with_capacity(HEADROOM + data.len() + b.buf.len() - b.start);
            buf.resize(HEADROOM, 0);
            buf.extend_from_slice(data);
            buf.extend_from_slice(&b.buf[b.start..]);
            *b = Body {
                buf,
                start: HEADROOM,
            };
        }
    }

    /// Removes `n` bytes from the front of the body (`nng_msg_trim`).
    ///
    /// # Errors
    /// `Inval` when the body is shorter than `n`; the message is unchanged.
    pub fn trim(&mut self, n: usize) -> Result<()> {
        if n > self.len() {
            return Err(Error::Inval);
        }
        self.body_vec().start += n;
        Ok(())
    }

    /// Removes `n` bytes from the end of the body (`nng_msg_chop`).
    ///
    /// # Errors
    /// `Inval` when the body is shorter than `n`; the message is unchanged.
    pub fn chop(&mut self, n: usize) -> Result<()> {
        let len = self.len();
        if n > len {
            return Err(Error::Inval);
        }
        let b = self.body_vec();
        let new_len = b.buf.len() - n;
        b.buf.truncate(new_len);
        Ok(())
    }

    /// Empties the body (`nng_msg_clear`).
    pub fn clear(&mut self) {
        if Arc::get_mut(&mut *self.body).is_none() {
            // Through the `ManuallyDrop`: the shared body's count goes down here.
            *self.body = Arc::new(Body {
                buf: vec![0; HEADROOM],
                start: HEADROOM,
            });
            return;
        }
        let b = self.body_vec();
        b.buf.truncate(HEADROOM.min(b.buf.len()));
        b.buf.resize(HEADROOM, 0);
        b.start = HEADROOM;
    }

    /// Reserves room for `n` more body bytes.
    pub fn reserve(&mut self, n: usize) {
        self.body_vec().buf.reserve(n);
    }

    /// Shortens or zero-extends the body to `n` bytes (`nng_msg_realloc`).
    pub fn resize(&mut self, n: usize) {
        let b = self.body_vec();
        let s = b.start;
        b.buf.resize(s + n, 0);
    }

    /// Appends to the header (`nng_msg_header_append`).
    ///
    /// # Errors
    /// `Inval` when the header would exceed [`MAX_HEADER`] bytes.
    pub fn header_append(&mut self, data: &[u8]) -> Result<()> {
        let len = self.header_len as usize;
        if len + data.len() > MAX_HEADER {
            return Err(Error::Inval);
        }
        self.header[len..len + data.len()].copy_from_slice(data);
        self.header_len += data.len() as u8;
        Ok(())
    }

    /// Inserts at the front of the header (`nng_msg_header_insert`).
    ///
    /// # Errors
    /// `Inval` when the header would exceed [`MAX_HEADER`] bytes.
    pub fn header_prepend(&mut self, data: &[u8]) -> Result<()> {
        let len = self.header_len as usize;
        if len + data.len() > MAX_HEADER {
            return Err(Error::Inval);
        }
        self.header.copy_within(0..len, data.len());
        self.header[..data.len()].copy_from_slice(data);
        self.header_len += data.len() as u8;
        Ok(())
    }

    /// Removes `n` bytes from the front of the header (`nng_msg_header_trim`).
    ///
    /// # Errors
    /// `Inval` when the header is shorter than `n`.
    pub fn header_trim(&mut self, n: usize) -> Result<()> {
        let len = self.header_len as usize;
        if n > len {
            return Err(Error::Inval);
        }
        self.header.copy_within(n..len, 0);
        self.header_len -= n as u8;
        Ok(())
    }

    /// Empties the header (`nng_msg_header_clear`).
    pub fn header_clear(&mut self) {
        self.header_len = 0;
    }

    /// Removes `n` bytes from the end of the header (`nng_msg_header_chop`).
    ///
    /// # Errors
    /// `Inval` when the header is shorter than `n`.
    pub fn header_chop(&mut self, n: usize) -> Result<()> {
        if n > self.header_len as usize {
            return Err(Error::Inval);
        }
        self.header_len -= n as u8;
        Ok(())
    }

    /// Inserts at the front of the header: NNG's name for
    /// [`header_prepend`](Message::header_prepend) (`nng_msg_header_insert`).
    ///
    /// # Errors
    /// `Inval` when the header would exceed [`MAX_HEADER`] bytes.
    pub fn header_insert(&mut self, data: &[u8]) -> Result<()> {
        self.header_prepend(data)
    }

    /// Bytes the body can hold without reallocating (`nng_msg_capacity`).
    pub fn capacity(&self) -> usize {
        self.body.buf.capacity().saturating_sub(self.body.start)
    }

    /// Moves the header to the front of the body, leaving the header empty: the bytes a
    /// stream transport puts on the wire, in one buffer.
    pub fn pull_up_header(&mut self) {
        if self.header_len > 0 {
            let h = self.header;
            let n = self.header_len as usize;
            self.prepend(&h[..n]);
            self.header_len = 0;
        }
    }

    /// The pipe this message arrived on, if it came from a peer (`nng_msg_get_pipe`).
    pub fn pipe(&self) -> Option<Pipe> {
        self.pipe.clone()
    }

    /// Sets the pipe (`nng_msg_set_pipe`); pair1 polyamorous and raw sockets route by it.
    pub fn set_pipe(&mut self, pipe: Option<Pipe>) {
        self.pipe = pipe;
    }

    /// The pipe, borrowed.
    pub fn pipe_ref(&self) -> Option<&Pipe> {
        self.pipe.as_ref()
    }
}

macro_rules! int_helpers {
    ($t:ty, $append:ident, $prepend:ident, $trim:ident, $chop:ident) => {
        impl Message {
            #[doc = concat!("Appends a big-endian `", stringify!($t), "` to the body.")]
            pub fn $append(&mut self, v: $t) {
                self.append(&v.to_be_bytes());
            }
            #[doc = concat!("Inserts a big-endian `", stringify!($t), "` at the front of the body.")]
            pub fn $prepend(&mut self, v: $t) {
                self.prepend(&v.to_be_bytes());
            }
            #[doc = concat!("Removes a big-endian `", stringify!($t), "` from the front of the body.")]
            ///
            /// # Errors
            /// `Inval` when the body is too short; the message is unchanged.
            pub fn $trim(&mut self) -> Result<$t> {
                const N: usize = std::mem::size_of::<$t>();
                let bytes: [u8; N] = self.body().get(..N).ok_or(Error::Inval)?.try_into().map_err(|_| Error::Inval)?;
                self.body_vec().start += N;
                Ok(<$t>::from_be_bytes(bytes))
            }
            #[doc = concat!("Removes a big-endian `", stringify!($t), "` from the end of the body.")]
            ///
            /// # Errors
            /// `Inval` when the body is too short; the message is unchanged.
            pub fn $chop(&mut self) -> Result<$t> {
                const N: usize = std::mem::size_of::<$t>();
                let len = self.len();
                if len < N {
                    return Err(Error::Inval);
                }
                let bytes: [u8; N] = self.body()[len - N..].try_into().map_err(|_| Error::Inval)?;
                self.chop(N)?;
                Ok(<$t>::from_be_bytes(bytes))
            }
        }
    };
}
macro_rules! header_int_helpers {
    ($t:ty, $append:ident, $insert:ident, $trim:ident, $chop:ident) => {
        impl Message {
            #[doc = concat!("Appends a big-endian `", stringify!($t), "` to the header (`nng_msg_header_", stringify!($append), "`).")]
            ///
            /// # Errors
            /// `Inval` when the header would exceed [`MAX_HEADER`] bytes.
            pub fn $append(&mut self, v: $t) -> Result<()> {
                self.header_append(&v.to_be_bytes())
            }
            #[doc = concat!("Inserts a big-endian `", stringify!($t), "` at the front of the header.")]
            ///
            /// # Errors
            /// `Inval` when the header would exceed [`MAX_HEADER`] bytes.
            pub fn $insert(&mut self, v: $t) -> Result<()> {
                self.header_prepend(&v.to_be_bytes())
            }
            #[doc = concat!("Removes a big-endian `", stringify!($t), "` from the front of the header.")]
            ///
            /// # Errors
            /// `Inval` when the header is too short; the message is unchanged.
            pub fn $trim(&mut self) -> Result<$t> {
                const N: usize = std::mem::size_of::<$t>();
                let bytes: [u8; N] = self.header().get(..N).ok_or(Error::Inval)?.try_into().map_err(|_| Error::Inval)?;
                self.header_trim(N)?;
                Ok(<$t>::from_be_bytes(bytes))
            }
            #[doc = concat!("Removes a big-endian `", stringify!($t), "` from the end of the header.")]
            ///
            /// # Errors
            /// `Inval` when the header is too short; the message is unchanged.
            pub fn $chop(&mut self) -> Result<$t> {
                const N: usize = std::mem::size_of::<$t>();
                let h = self.header();
                if h.len() < N {
                    return Err(Error::Inval);
                }
                let bytes: [u8; N] = h[h.len() - N..].try_into().map_err(|_| Error::Inval)?;
                self.header_chop(N)?;
                Ok(<$t>::from_be_bytes(bytes))
            }
        }
    };
}
header_int_helpers!(
    u16,
    header_append_u16,
    header_insert_u16,
    header_trim_u16,
    header_chop_u16
);
header_int_helpers!(
    u32,
    header_append_u32,
    header_insert_u32,
    header_trim_u32,
    header_chop_u32
);
header_int_helpers!(
    u64,
    header_append_u64,
    header_insert_u64,
    header_trim_u64,
    header_chop_u64
);
int_helpers!(u16, append_u16, prepend_u16, trim_u16, chop_u16);
int_helpers!(u32, append_u32, prepend_u32, trim_u32, chop_u32);
int_helpers!(u64, append_u64, prepend_u64, trim_u64, chop_u64);

impl Default for Message {
    fn default() -> Message {
        Message::new()
    }
}

impl From<&[u8]> for Message {
    fn from(data: &[u8]) -> Message {
        if HEADROOM + data.len() >= crate::buffers::MIN_CACHED {
            // A large copy goes into a reused buffer (see `buffers`); every byte after the
            // headroom is overwritten here.
            let mut buf = crate::buffers::take(HEADROOM + data.len());
            buf[HEADROOM..].copy_from_slice(data);
            return Message::from_body(Body {
                buf,
                start: HEADROOM,
            });
        }
        let mut m = Message::with_capacity(data.len());
        m.append(data);
        m
    }
}

impl From<Vec<u8>> for Message {
    /// Takes the vector without copying (the first `prepend` may move it once).
    fn from(buf: Vec<u8>) -> Message {
        Message::from_body(Body { buf, start: 0 })
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Message {
        Message::from(s.as_bytes())
    }
}

impl From<&Vec<u8>> for Message {
    fn from(v: &Vec<u8>) -> Message {
        Message::from(v.as_slice())
    }
}

impl<const N: usize> From<&[u8; N]> for Message {
    fn from(v: &[u8; N]) -> Message {
        Message::from(&v[..])
    }
}

impl PartialEq for Message {
    /// Messages are equal when their headers and bodies are; the pipe is not compared.
    fn eq(&self, other: &Message) -> bool {
        self.header() == other.header() && self.body() == other.body()
    }
}
impl Eq for Message {}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("header", &self.header())
            .field("len", &self.len())
            .field("pipe", &self.pipe)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn small_bodies_are_reused_clean_and_a_shared_body_is_never_reused() {
        let a = Message::from(&[9u8; 100][..]);
        let kept = a.clone();
        drop(a); // still shared with `kept`: must not reach the pool
        for i in 0..3000u32 {
            let mut m = Message::from(&[(i % 251) as u8; 50][..]);
            m.body_mut()[0] = 0xEE; // written: unique, so it goes back to the pool
            drop(m);
        }
        assert_eq!(
            kept.body(),
            &[9u8; 100][..],
            "a shared body was never overwritten"
        );
        let m = Message::with_capacity(10);
        assert!(m.is_empty(), "a reused body starts empty");
        assert_eq!(m.header_len(), 0);
        let mut m = Message::from(&[3u8; 20][..]);
        assert_eq!(
            m.body(),
            &[3u8; 20][..],
            "no stale bytes of an earlier message"
        );
        m.prepend(b"ab"); // the headroom is there on a reused body too
        assert_eq!(&m.body()[..3], b"ab\x03");
    }

    use super::*;

    #[test]
    fn large_copies_in_reused_buffers_expose_only_their_own_bytes() {
        for _ in 0..8 {
            crate::buffers::recycle(vec![0xEE; 64 * 1024 + HEADROOM]);
        }
        let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let mut m = Message::from(&data[..]);
        assert_eq!(m.body(), &data[..]);
        m.prepend(b"head");
        assert_eq!(&m.body()[..4], b"head");
        assert_eq!(&m.body()[4..], &data[..]);
        m.clear();
        assert!(m.is_empty());
        // A dropped large body goes back to the cache, a small one does not.
        drop(Message::from(&data[..]));
        drop(Message::from(&data[..100]));
    }

    #[test]
    fn append_prepend_trim_chop() {
        let mut m = Message::new();
        m.append(b"cd");
        m.prepend(b"ab");
        m.append(b"ef");
        assert_eq!(m.body(), b"abcdef");
        m.trim(1).unwrap();
        m.chop(1).unwrap();
        assert_eq!(m.body(), b"bcde");
        assert_eq!(m.trim(5), Err(Error::Inval));
        assert_eq!(m.chop(5), Err(Error::Inval));
        assert_eq!(m.body(), b"bcde");
        m.clear();
        assert!(m.is_empty());
    }

    #[test]
    fn prepend_beyond_headroom_keeps_bytes() {
        let mut m = Message::from(vec![9u8; 3]);
        let big = vec![1u8; 100];
        m.prepend(&big);
        assert_eq!(m.len(), 103);
        assert_eq!(&m.body()[..100], &big[..]);
        assert_eq!(&m.body()[100..], &[9, 9, 9]);
        m.prepend(b"x");
        assert_eq!(m.body()[0], b'x');
    }

    #[test]
    fn integers_are_big_endian_and_short_bodies_fail() {
        let mut m = Message::new();
        m.append_u16(0x0102);
        m.append_u32(0x0304_0506);
        m.append_u64(0x0708_090a_0b0c_0d0e);
        assert_eq!(m.body(), &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        m.prepend_u32(0xdead_beef);
        assert_eq!(m.trim_u32(), Ok(0xdead_beef));
        assert_eq!(m.chop_u64(), Ok(0x0708_090a_0b0c_0d0e));
        assert_eq!(m.trim_u16(), Ok(0x0102));
        assert_eq!(m.chop_u64(), Err(Error::Inval));
        assert_eq!(m.trim_u64(), Err(Error::Inval));
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn clone_is_copy_on_write() {
        let mut a = Message::from("shared");
        let b = a.clone();
        assert!(std::ptr::eq(a.body().as_ptr(), b.body().as_ptr()));
        a.body_mut()[0] = b'S';
        assert_eq!(a.body(), b"Shared");
        assert_eq!(b.body(), b"shared");
    }

    #[test]
    fn header_is_bounded_and_ordered() {
        let mut m = Message::new();
        m.header_append_u32(2).unwrap();
        m.header_prepend(&1u32.to_be_bytes()).unwrap();
        assert_eq!(m.header(), &[0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(m.header_trim_u32(), Ok(1));
        for _ in 0..15 {
            m.header_append_u32(7).unwrap();
        }
        assert_eq!(m.header_len(), 64);
        assert_eq!(m.header_append(b"x"), Err(Error::Inval));
        m.header_clear();
        assert_eq!(m.header_trim_u32(), Err(Error::Inval));
    }

    #[test]
    fn pull_up_moves_header_into_body() {
        let mut m = Message::from("hi");
        m.header_append_u32(0x8000_0001).unwrap();
        m.pull_up_header();
        assert_eq!(m.header_len(), 0);
        assert_eq!(m.body(), &[0x80, 0, 0, 1, b'h', b'i']);
    }

    #[test]
    fn clear_on_shared_body_leaves_clone_intact() {
        let mut a = Message::from("abc");
        let b = a.clone();
        a.clear();
        assert!(a.is_empty());
        assert_eq!(b.body(), b"abc");
    }

    #[test]
    fn every_mutation_of_a_clone_leaves_the_other_intact() {
        // Copy-on-write must hold for each operation that touches the body.
        type Mutation = fn(&mut Message);
        let ops: [(&str, Mutation); 8] = [
            ("append", |m| m.append(b"+")),
            ("prepend", |m| m.prepend(b"-")),
            ("trim", |m| m.trim(1).unwrap()),
            ("chop", |m| m.chop(1).unwrap()),
            ("clear", |m| m.clear()),
            ("resize", |m| m.resize(10)),
            ("body_mut", |m| m.body_mut()[0] = b'X'),
            ("trim_u16", |m| {
                m.trim_u16().unwrap();
            }),
        ];
        for (name, op) in ops {
            let original = Message::from("abcdef");
            let mut copy = original.clone();
            op(&mut copy);
            assert_eq!(
                original.body(),
                b"abcdef",
                "{name} on a clone changed the original"
            );
            let mut original = original;
            let copy2 = original.clone();
            op(&mut original);
            assert_eq!(
                copy2.body(),
                b"abcdef",
                "{name} on the original changed a clone"
            );
        }
    }

    #[test]
    fn resize_zero_extends_and_truncates() {
        let mut m = Message::from(&b"abc"[..]);
        m.resize(5);
        assert_eq!(m.body(), b"abc\0\0");
        m.resize(1);
        assert_eq!(m.body(), b"a");
        m.resize(0);
        assert!(m.is_empty());
    }

    #[test]
    fn conversions_and_capacity() {
        let m = Message::with_capacity(1024);
        assert!(m.is_empty() && m.header().is_empty());
        assert_eq!(Message::from(vec![1u8, 2, 3]).body(), &[1, 2, 3]);
        assert_eq!(Message::from(&[4u8, 5][..]).body(), &[4, 5]);
        assert_eq!(Message::from("hi").len(), 2);
        assert_eq!(Message::default().len(), 0);
        let mut m = Message::new();
        m.reserve(100);
        m.append(&[7; 100]);
        assert_eq!(m.len(), 100);
    }

    #[test]
    fn header_clone_is_independent_and_trims_are_bounded() {
        let mut a = Message::new();
        a.header_append(&[1, 2, 3, 4]).unwrap();
        let b = a.clone();
        a.header_clear();
        assert_eq!(b.header(), &[1, 2, 3, 4]);
        let mut b = b;
        assert_eq!(b.header_trim(5), Err(Error::Inval));
        assert_eq!(b.header(), &[1, 2, 3, 4]);
        b.header_trim(1).unwrap();
        assert_eq!(b.header(), &[2, 3, 4]);
        assert_eq!(b.header_prepend(&[0; MAX_HEADER]), Err(Error::Inval));
        assert_eq!(b.header(), &[2, 3, 4]);
    }

    #[test]
    fn header_integers_round_trip_at_both_ends_as_nng_s_helpers_do() {
        let mut m = Message::new();
        m.header_append_u32(0x0102_0304).unwrap();
        m.header_insert_u16(0x0a0b).unwrap();
        m.header_append_u64(7).unwrap();
        assert_eq!(m.header_len(), 14);
        assert_eq!(&m.header()[..6], &[0x0a, 0x0b, 1, 2, 3, 4]);
        assert_eq!(m.header_chop_u64(), Ok(7));
        assert_eq!(m.header_trim_u16(), Ok(0x0a0b));
        assert_eq!(m.header_chop_u16(), Ok(0x0304));
        assert_eq!(m.header(), &[1, 2]);
        // Too short: an error, and the header is left as it was.
        assert_eq!(m.header_trim_u32(), Err(Error::Inval));
        assert_eq!(m.header_chop_u64(), Err(Error::Inval));
        assert_eq!(m.header(), &[1, 2]);
        m.header_chop(1).unwrap();
        assert_eq!(m.header(), &[1]);
        assert_eq!(m.header_chop(2), Err(Error::Inval));
        m.header_insert(&[9]).unwrap();
        assert_eq!(m.header(), &[9, 1]);
        let mut full = Message::new();
        full.header_append(&[0; MAX_HEADER - 2]).unwrap();
        assert_eq!(full.header_append_u32(1), Err(Error::Inval));
        assert_eq!(full.header_len(), MAX_HEADER - 2);
    }

    #[test]
    fn capacity_covers_the_body_and_reserve_grows_it() {
        let mut m = Message::with_capacity(100);
        assert!(m.capacity() >= 100);
        m.append(&[1; 10]);
        m.reserve(1000);
        assert!(m.capacity() >= 1010);
        assert_eq!(m.body(), &[1; 10]);
    }
}
