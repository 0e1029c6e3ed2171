//! [`IdHasher`]: a cheap hasher for maps keyed by ids that nanoport hands out itself
//! (pipe ids, context ids).
//!
//! Why: a message passes through several such lookups (the socket's pipe table, the
//! protocol's pipe set), and `std`'s default SipHash cost more than the rest of each
//! lookup: a sixth of a 64-byte inproc push/pull stream went to hashing pipe ids. SipHash
//! guards against keys an attacker picks to collide; these keys are drawn by us (pipe ids
//! from a random start, then sequential; context ids sequential), so a multiplicative
//! hash is enough. Keep SipHash for any map whose *keys* come off the wire.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiplicative hasher (the rustc "Fx" mix) for keys nanoport issues itself.
///
/// Not for keys a peer chooses: those can be made to collide.
///
/// # Examples
///
/// ```
/// use std::hash::{BuildHasher, BuildHasherDefault};
/// use nanoport_engine::{IdHasher, PipeId};
///
/// let build = BuildHasherDefault::<IdHasher>::default();
/// // Deterministic: the same id always hashes alike, and neighbours differ.
/// assert_eq!(build.hash_one(PipeId(7)), build.hash_one(PipeId(7)));
/// assert_ne!(build.hash_one(PipeId(7)), build.hash_one(PipeId(8)));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl IdHasher {
    fn mix(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.mix(u64::from(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
    fn write_isize(&mut self, n: isize) {
        self.mix(n as u64);
    }
}

/// A `HashMap` keyed by ids nanoport issues, hashed with [`IdHasher`].
///
/// # Examples
///
/// ```
/// use nanoport_engine::{IdMap, PipeId};
///
/// let mut pipes: IdMap<PipeId, &str> = IdMap::default();
/// pipes.insert(PipeId(0x1234), "tcp://127.0.0.1:5555");
/// assert_eq!(pipes.get(&PipeId(0x1234)), Some(&"tcp://127.0.0.1:5555"));
/// ```
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A `HashSet` of ids nanoport issues, hashed with [`IdHasher`].
///
/// # Examples
///
/// ```
/// use nanoport_engine::{IdSet, PipeId};
///
/// let mut pipes: IdSet<PipeId> = IdSet::default();
/// assert!(pipes.insert(PipeId(1)));
/// assert!(!pipes.insert(PipeId(1)));
/// assert!(pipes.contains(&PipeId(1)));
/// ```
pub type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn sequential_ids_spread_over_a_small_table() {
        // hashbrown takes the bucket from the low bits and the tag from the top 7: both
        // must vary across sequential ids, or every lookup would probe a long chain.
        let build = BuildHasherDefault::<IdHasher>::default();
        let start = 0x3a5f_0001u32;
        let mut low = HashSet::new();
        let mut top = HashSet::new();
        for id in start..start + 64 {
            let h = build.hash_one(crate::PipeId(id));
            low.insert(h & 63);
            top.insert(h >> 57);
        }
        assert_eq!(low.len(), 64, "low bits collide for sequential ids");
        assert!(top.len() > 32, "top bits barely vary: {}", top.len());
    }

    #[test]
    fn maps_and_sets_behave_as_std_ones() {
        let mut m: IdMap<u32, u32> = IdMap::default();
        let mut s: IdSet<u32> = IdSet::default();
        for i in 0..1000u32 {
            m.insert(i.wrapping_mul(7919), i);
            s.insert(i.wrapping_mul(7919));
        }
        for i in 0..1000u32 {
            assert_eq!(m.get(&i.wrapping_mul(7919)), Some(&i));
            assert!(s.contains(&i.wrapping_mul(7919)));
        }
        assert_eq!((m.len(), s.len()), (1000, 1000));
        assert!(!s.contains(&1));
    }
}
