//! The message buffer cache: large message bodies are reused instead of going back to the
//! allocator after every message.
//!
//! Why: a stream of large messages allocates a body and frees one per message at each end
//! (the sender's copy of a byte slice, the receiver's frame). glibc gives the top of its
//! heap back to the kernel whenever more than 128 KiB lies free there
//! (`M_TRIM_THRESHOLD`), so alternating 64 KiB allocations and frees page-fault the same
//! memory in again and again: 4.5 faults per 64 KiB message, and half the rate of a
//! stream that reuses one message, on one CPU (`push_pull_rate ipc 100000 65536 copy`
//! against `... clone`). A few recently freed bodies kept here go straight to the next
//! message of a similar size, already mapped: no allocator call, no page fault, no zero
//! fill.
//!
//! Bounds: only buffers of [`MIN_CACHED`] to [`MAX_CACHED`] bytes are kept, at most 16 of
//! them and 4 MiB in all; a buffer serves only a request of at least half its capacity,
//! so a small message never pins a large buffer. A cache left unused for one to two
//! seconds is emptied by the idle sweep ([`crate::idle`]).
//!
//! A buffer from [`take`] holds stale bytes of an earlier message: callers overwrite every
//! byte they expose.
//!
//! # Examples
//!
//! ```
//! use nanoport_engine::buffers;
//!
//! let mut frame = buffers::take(64 * 1024); // 64 KiB, contents unspecified
//! frame.fill(7);
//! buffers::recycle(frame); // the next take of a similar size gets it back
//! let again = buffers::take(60 * 1024);
//! assert_eq!(again.len(), 60 * 1024);
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::idle::{self, IdleBuffers};

/// The smallest buffer worth keeping: below it the allocator's own free lists do well and a
/// message costs too little for a lock to pay off.
pub const MIN_CACHED: usize = 16 * 1024;

/// The largest buffer kept.
pub const MAX_CACHED: usize = 1024 * 1024;

/// At most this many buffers are kept.
const SLOTS: usize = 16;

/// At most this many bytes of capacity are kept in all.
const MAX_BYTES: usize = 4 * 1024 * 1024;

struct Kept {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
}

struct Cache {
    kept: Mutex<Kept>,
    /// Moves on every take served and every buffer kept (the idle sweep's activity).
    uses: AtomicU64,
    /// Enlisted in the idle sweep.
    watched: AtomicBool,
    me: Weak<Cache>,
}

static CACHE: OnceLock<Arc<Cache>> = OnceLock::new();

fn cache() -> &'static Arc<Cache> {
    CACHE.get_or_init(Cache::new)
}

impl Cache {
    fn new() -> Arc<Cache> {
        Arc::new_cyclic(|me| Cache {
            kept: Mutex::new(Kept {
                bufs: Vec::new(),
                bytes: 0,
            }),
            uses: AtomicU64::new(0),
            watched: AtomicBool::new(false),
            me: me.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, len: usize) -> Option<Vec<u8>> {
        let mut kept = self.lock();
        let i = kept.bufs.iter().rposition(|b| serves(b.capacity(), len))?;
        let mut buf = kept.bufs.swap_remove(i);
        kept.bytes -= buf.capacity();
        drop(kept);
        self.uses.fetch_add(1, Ordering::Relaxed);
        // Zeros only for the part never written before (the sender's copies and the
        // receiver's frames differ by the message headroom).
        buf.resize(len, 0);
        Some(buf)
    }

    fn keep(&self, buf: Vec<u8>) {
        let cap = buf.capacity();
        if !(MIN_CACHED..=MAX_CACHED).contains(&cap) {
            return;
        }
        let mut kept = self.lock();
        if kept.bufs.len() >= SLOTS || kept.bytes + cap > MAX_BYTES {
            drop(kept);
            return; // `buf` is freed here, outside the lock
        }
        kept.bytes += cap;
        kept.bufs.push(buf);
        drop(kept);
        self.uses.fetch_add(1, Ordering::Relaxed);
        self.enlist();
    }

    fn enlist(&self) {
        if let Some(me) = self.me.upgrade() {
            idle::watch_once(&me, &self.watched);
        }
    }

    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// Whether a request for `len` bytes may be served by a buffer of `capacity` bytes: it is
/// large enough and not more than twice the size asked for.
fn serves(capacity: usize, len: usize) -> bool {
    capacity >= len && capacity / 2 <= len
}

/// A vector of exactly `len` bytes whose contents are unspecified: stale bytes of an
/// earlier message when a cached buffer serves it, zeros otherwise.
///
/// # Examples
///
/// ```
/// let small = nanoport_engine::buffers::take(10);
/// assert_eq!(small, vec![0u8; 10]); // below the cached sizes: always fresh zeros
/// ```
pub fn take(len: usize) -> Vec<u8> {
    if (MIN_CACHED..=MAX_CACHED).contains(&len) {
        if let Some(buf) = cache().take(len) {
            return buf;
        }
    }
    vec![0; len]
}

/// Hands a buffer back for a later [`take`]; it is kept if its capacity is one the cache
/// keeps and the cache has room, and freed otherwise. Its bytes up to `buf.len()` may be
/// handed out again by a later [`take`].
///
/// # Examples
///
/// ```
/// use nanoport_engine::buffers;
/// buffers::recycle(vec![1u8; 100]); // too small to keep: simply freed
/// buffers::recycle(vec![1u8; 32 * 1024]); // kept, if the cache has room
/// ```
pub fn recycle(buf: Vec<u8>) {
    if (MIN_CACHED..=MAX_CACHED).contains(&buf.capacity()) {
        cache().keep(buf);
    }
}

/// The bytes of capacity the cache holds now.
///
/// # Examples
///
/// ```
/// assert!(nanoport_engine::buffers::cached_bytes() <= 4 * 1024 * 1024);
/// ```
pub fn cached_bytes() -> usize {
    cache().bytes()
}

impl IdleBuffers for Cache {
    fn activity(&self) -> u64 {
        self.uses.load(Ordering::Relaxed)
    }

    fn release_idle(&self) -> bool {
        let bufs = {
            let mut kept = self.lock();
            kept.bytes = 0;
            std::mem::take(&mut kept.bufs)
        };
        drop(bufs);
        false
    }

    fn unwatched(&self) {
        self.watched.store(false, Ordering::Release);
        // A buffer kept between the sweep's release and the flag's reset found the cache
        // still enlisted; enlist again for it, or it would stay until the next recycle.
        if !self.lock().bufs.is_empty() {
            self.enlist();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A cache of its own, so tests running beside it cannot change what it holds.
    #[test]
    fn keeps_reuses_bounds_and_empties_when_idle() {
        let c = Cache::new();
        // Too small or too large: not kept.
        c.keep(vec![1; 100]);
        c.keep(vec![1; 2 * MAX_CACHED]);
        assert_eq!(c.bytes(), 0);

        // A kept buffer serves a request of a similar size, with its stale bytes.
        c.keep(vec![9; 64 * 1024]);
        let got = c.take(48 * 1024).expect("the kept buffer serves it");
        assert_eq!(got.len(), 48 * 1024);
        assert!(got.iter().all(|&b| b == 9));
        assert_eq!(c.bytes(), 0);

        // Never a request under half its capacity, nor over its capacity.
        c.keep(vec![9; 128 * 1024]);
        assert!(c.take(MIN_CACHED).is_none());
        assert!(c.take(200 * 1024).is_none());
        assert!(c.take(100 * 1024).is_some());

        // A buffer shorter than the request is extended with zeros, never with
        // uninitialized bytes.
        let mut short = Vec::with_capacity(64 * 1024);
        short.extend_from_slice(&[5u8; 40 * 1024]);
        c.keep(short);
        let got = c.take(64 * 1024).expect("served by capacity");
        assert!(got[..40 * 1024].iter().all(|&b| b == 5));
        assert!(got[40 * 1024..].iter().all(|&b| b == 0));

        // Bounded in count and bytes.
        for _ in 0..40 {
            c.keep(vec![3; 512 * 1024]);
        }
        assert_eq!(c.bytes(), MAX_BYTES);
        for _ in 0..100 {
            c.keep(vec![3; MIN_CACHED]);
        }
        assert!(c.lock().bufs.len() <= SLOTS);
        assert!(c.bytes() <= MAX_BYTES);

        // Emptied by the idle sweep once nothing uses it, and then no longer watched.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while c.bytes() != 0 || c.watched.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the cache was never emptied"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    #[test]
    fn take_outside_the_cached_sizes_is_fresh_zeros() {
        assert_eq!(take(0), Vec::<u8>::new());
        assert_eq!(take(MIN_CACHED - 1), vec![0; MIN_CACHED - 1]);
        let big = take(MAX_CACHED + 1);
        assert_eq!(big.len(), MAX_CACHED + 1);
    }
}
