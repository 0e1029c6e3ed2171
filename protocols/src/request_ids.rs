//! [`RequestIds`]: request and survey ids, as NNG's id map over `[0x80000000, 0xffffffff]`
//! with a random starting point, allocated sequentially and never reused while in use.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::core::CtxId;

/// The lowest id: the most significant bit marks the end of a backtrace.
pub(crate) const FIRST_ID: u32 = 0x8000_0000;

/// The id allocator and the map from live ids to the context that owns each.
#[derive(Debug)]
pub(crate) struct RequestIds {
    next: u32,
    owners: HashMap<u32, CtxId>,
}

impl RequestIds {
    /// An allocator starting at a random id.
    pub(crate) fn new() -> RequestIds {
        RequestIds::starting_at(random_u32())
    }

    /// An allocator whose first id is `start` (with the top bit forced on).
    pub(crate) fn starting_at(start: u32) -> RequestIds {
        RequestIds {
            next: start | FIRST_ID,
            owners: HashMap::new(),
        }
    }

    /// A fresh id owned by `ctx`.
    pub(crate) fn allocate(&mut self, ctx: CtxId) -> u32 {
        loop {
            let id = self.next;
            self.next = if id == u32::MAX { FIRST_ID } else { id + 1 };
            if let std::collections::hash_map::Entry::Vacant(e) = self.owners.entry(id) {
                e.insert(ctx);
                return id;
            }
        }
    }

    /// The context that owns `id`, if it is live.
    pub(crate) fn owner(&self, id: u32) -> Option<CtxId> {
        self.owners.get(&id).copied()
    }

    /// Frees `id`: later replies carrying it are unknown.
    pub(crate) fn release(&mut self, id: u32) {
        self.owners.remove(&id);
    }
}

/// A random `u32` from the standard library's per-process random hash keys.
fn random_u32() -> u32 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_top_bit_and_are_sequential() {
        let mut ids = RequestIds::new();
        let a = ids.allocate(1);
        let b = ids.allocate(2);
        assert!(a >= FIRST_ID && b >= FIRST_ID);
        assert_eq!(b, if a == u32::MAX { FIRST_ID } else { a + 1 });
        assert_eq!(ids.owner(a), Some(1));
        ids.release(a);
        assert_eq!(ids.owner(a), None);
    }

    #[test]
    fn wraps_and_skips_live_ids() {
        let mut ids = RequestIds::starting_at(u32::MAX);
        assert_eq!(ids.allocate(0), u32::MAX);
        assert_eq!(ids.allocate(0), FIRST_ID);
        let mut again = RequestIds::starting_at(u32::MAX);
        again.owners.insert(u32::MAX, 9);
        assert_eq!(again.allocate(0), FIRST_ID);
    }
}
