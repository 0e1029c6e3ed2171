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
//! Bounds: only buffers of [`MIN_CACHED`] to [`MAX_CACHED`] bytes are kept, at most
//! [`DEFAULT_MAX_BYTES`] (32 MiB) of them in all ([`set_max_cached_bytes`] changes it; 0
//! turns the cache off). A buffer serves only a request of at least half its capacity, so
//! a small message never pins a large buffer. The cache holds only bodies that were alive
//! a moment before (a deep send or receive queue of large messages is what fills it), and
//! the idle sweep ([`crate::idle`]) frees all of it after one to two seconds without use.
//! Why that much: a socket with a 128-message queue of 64 KiB messages frees 8 MiB in a
//! burst, and every buffer the cache turned away went back to glibc and was faulted in
//! again (the measurement is in docs/benchmarks.md, "Figures behind design choices").
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

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::idle::{self, IdleBuffers};

/// The smallest buffer worth keeping here: below it a message costs too little for a lock
/// to pay off. Bodies of up to 512 B have their own lock-free pool (`message.rs`); between
/// the two, the allocator's free lists serve.
pub const MIN_CACHED: usize = 16 * 1024;

/// The largest buffer kept.
pub const MAX_CACHED: usize = 1024 * 1024;

/// The default bound on the bytes of capacity kept in all ([`set_max_cached_bytes`]).
pub const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;

/// How many buffers at the top of a size class a request looks at before giving up.
const LOOK: usize = 8;

/// Size classes: class `k` holds buffers of capacity `2^(k + 14)` to `2^(k + 15) - 1`.
const CLASSES: usize = 7;

fn class_of(capacity: usize) -> usize {
    (capacity.ilog2() as usize).saturating_sub(MIN_CACHED.ilog2() as usize)
}

struct Kept {
    /// Per size class, a stack: the most recently kept buffer (the likeliest to be in the
    /// CPU's caches) is reused first.
    classes: [Vec<Vec<u8>>; CLASSES],
    bytes: usize,
}

struct Cache {
    kept: Mutex<Kept>,
    /// Moves on every take served and every buffer kept (the idle sweep's activity).
    uses: AtomicU64,
    /// The bound on `Kept::bytes`.
    max_bytes: AtomicUsize,
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
                classes: Default::default(),
                bytes: 0,
            }),
            uses: AtomicU64::new(0),
            max_bytes: AtomicUsize::new(DEFAULT_MAX_BYTES),
            watched: AtomicBool::new(false),
            me: me.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, len: usize) -> Option<Vec<u8>> {
        let k = class_of(len);
        let mut kept = self.lock();
        // In `len`'s own class every buffer is under twice `len`, but some may be smaller
        // than `len`; in the next class every buffer is large enough, but some may be more
        // than twice `len`.
        let mut found = None;
        for c in [k, k + 1] {
            let Some(stack) = kept.classes.get(c) else {
                break;
            };
            if let Some(i) = stack
                .iter()
                .rev()
                .take(LOOK)
                .position(|b| serves(b.capacity(), len))
            {
                found = Some((c, stack.len() - 1 - i));
                break;
            }
        }
        let (c, i) = found?;
        let mut buf = kept.classes[c].remove(i);
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
        if kept.bytes + cap > self.max_bytes.load(Ordering::Relaxed) {
            drop(kept);
            return; // `buf` is freed here, outside the lock
        }
        kept.bytes += cap;
        kept.classes[class_of(cap)].push(buf);
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

    /// Frees everything kept.
    fn clear(&self) {
        let classes = {
            let mut kept = self.lock();
            kept.bytes = 0;
            std::mem::take(&mut kept.classes)
        };
        drop(classes);
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
    cache().keep(buf);
}

/// Sets the most bytes of capacity the cache keeps (default [`DEFAULT_MAX_BYTES`]); 0 turns
/// it off. Buffers already kept beyond a lowered bound are freed at once.
///
/// # Examples
///
/// ```
/// use nanoport_engine::buffers;
/// buffers::set_max_cached_bytes(4 * 1024 * 1024); // a memory-tight process
/// assert!(buffers::cached_bytes() <= 4 * 1024 * 1024);
/// buffers::set_max_cached_bytes(buffers::DEFAULT_MAX_BYTES);
/// ```
pub fn set_max_cached_bytes(n: usize) {
    let c = cache();
    c.max_bytes.store(n, Ordering::Relaxed);
    if c.bytes() > n {
        c.clear();
    }
}

/// The bytes of capacity the cache holds now.
///
/// # Examples
///
/// ```
/// use nanoport_engine::buffers;
/// assert!(buffers::cached_bytes() <= buffers::DEFAULT_MAX_BYTES);
/// ```
pub fn cached_bytes() -> usize {
    cache().bytes()
}

impl IdleBuffers for Cache {
    fn activity(&self) -> u64 {
        self.uses.load(Ordering::Relaxed)
    }

    fn release_idle(&self) -> bool {
        self.clear();
        false
    }

    fn unwatched(&self) {
        self.watched.store(false, Ordering::Release);
        // A buffer kept between the sweep's release and the flag's reset found the cache
        // still enlisted; enlist again for it, or it would stay until the next recycle.
        if self.bytes() != 0 {
            self.enlist();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(c: &Cache) -> usize {
        c.lock().classes.iter().map(Vec::len).sum()
    }

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

        // The last kept is the first reused.
        c.keep(vec![1; 64 * 1024]);
        c.keep(vec![2; 64 * 1024]);
        assert_eq!(c.take(64 * 1024).unwrap()[0], 2);
        assert_eq!(c.take(64 * 1024).unwrap()[0], 1);

        // A buffer shorter than the request is extended with zeros, never with
        // uninitialized bytes.
        let mut short = Vec::with_capacity(64 * 1024);
        short.extend_from_slice(&[5u8; 40 * 1024]);
        c.keep(short);
        let got = c.take(64 * 1024).expect("served by capacity");
        assert!(got[..40 * 1024].iter().all(|&b| b == 5));
        assert!(got[40 * 1024..].iter().all(|&b| b == 0));

        // Bounded in bytes.
        c.max_bytes.store(4 * 1024 * 1024, Ordering::Relaxed);
        for _ in 0..40 {
            c.keep(vec![3; 512 * 1024]);
        }
        assert_eq!(c.bytes(), 4 * 1024 * 1024);
        assert_eq!(count(&c), 8);
        for _ in 0..100 {
            c.keep(vec![3; MIN_CACHED]);
        }
        assert_eq!(c.bytes(), 4 * 1024 * 1024);

        // Emptied by the idle sweep once nothing uses it, and then no longer watched.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while c.bytes() != 0 || c.watched.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the cache was never emptied"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(count(&c), 0);
    }

    #[test]
    fn a_request_looks_only_at_its_class_and_the_next() {
        let c = Cache::new();
        // Every size class, full of buffers that are too small for 100 KiB except one
        // buried under more than `LOOK` others: a bounded search does not find it.
        c.keep(vec![0; 120 * 1024]);
        for _ in 0..LOOK {
            c.keep(vec![0; 65 * 1024]); // class of 100 KiB, too small
        }
        for _ in 0..LOOK {
            c.keep(vec![0; 250 * 1024]); // next class, more than twice 100 KiB
        }
        assert!(c.take(100 * 1024).is_none());
        // Found once it is near the top again.
        c.keep(vec![0; 110 * 1024]);
        assert_eq!(c.take(100 * 1024).unwrap().capacity(), 110 * 1024);
        assert_eq!(class_of(MIN_CACHED), 0);
        assert_eq!(class_of(MAX_CACHED), CLASSES - 1);
        assert_eq!(class_of(2 * MIN_CACHED - 1), 0);
    }

    #[test]
    fn take_outside_the_cached_sizes_is_fresh_zeros() {
        assert_eq!(take(0), Vec::<u8>::new());
        assert_eq!(take(MIN_CACHED - 1), vec![0; MIN_CACHED - 1]);
        let big = take(MAX_CACHED + 1);
        assert_eq!(big.len(), MAX_CACHED + 1);
    }
}
