//! [`TopicSet`]: sub0's subscriptions as a radix (compressed prefix) tree, so a message
//! is matched, and a topic added or removed, in time that depends on the bytes involved
//! and not on how many topics there are.
//!
//! A node is reached by the bytes on the path from the root; it is `terminal` when that
//! path is a subscribed topic. A body matches when the walk along its bytes passes a
//! terminal node (the root is terminal for the empty topic, which matches everything).
//!
//! Invariants (checked by the tests' `check`):
//! * every edge label is non-empty, and siblings' labels start with distinct bytes, kept
//!   sorted with that byte beside the child id so a step is a binary search of at most
//!   256 entries;
//! * every node but the root is terminal or has at least two children, so a set of `n`
//!   topics holds at most `2n + 1` live nodes: removal merges a node that no longer
//!   branches into its only child and frees a leaf no longer needed;
//! * freed nodes go on a free list and are reused, so the arena never exceeds the most
//!   nodes the set has held at once.
//!
//! Labels are stored reversed: a split keeps the label's tail in the child and cuts the
//! head off the end of its `Vec` (`split_off`), and a merge appends the removed node's
//! label to the end of its child's. Either touches only the bytes of the topic being added
//! or removed (plus at worst one reallocation of a label), never the longer topics that
//! happen to share the edge.

use std::fmt;

/// Index of a node in the arena.
type NodeId = u32;

/// The root: the empty prefix. Never freed.
const ROOT: NodeId = 0;

#[derive(Debug, Default)]
struct Node {
    /// The bytes on the edge from the parent, last byte first (empty only for the root).
    label_rev: Vec<u8>,
    /// Children by the first byte of their label, sorted by that byte.
    children: Vec<(u8, NodeId)>,
    /// Whether the path to this node is a subscribed topic.
    terminal: bool,
}

impl Node {
    /// The position of the child whose label starts with `byte`, or where it would go.
    fn child(&self, byte: u8) -> std::result::Result<usize, usize> {
        self.children.binary_search_by_key(&byte, |&(b, _)| b)
    }

    /// The label's first byte (the key under which the parent lists this node).
    fn first_byte(&self) -> u8 {
        *self.label_rev.last().expect("a non-root node has a label")
    }

    /// Whether `bytes` starts with the label; the label's length if so.
    fn label_prefixes(&self, bytes: &[u8]) -> Option<usize> {
        let n = self.label_rev.len();
        let head = bytes.get(..n)?;
        self.label_rev.iter().rev().eq(head).then_some(n)
    }
}

/// A set of byte-string topics answering "does any topic prefix this body?".
///
/// * [`insert`](TopicSet::insert): O(topic length); inserting a present topic is a no-op.
/// * [`remove`](TopicSet::remove): O(topic length); reports whether the topic was there.
/// * [`matches`](TopicSet::matches): O(min(body length, longest topic)).
///
/// Each step down the tree also binary-searches a node's children (at most 256).
pub(crate) struct TopicSet {
    nodes: Vec<Node>,
    free: Vec<NodeId>,
    len: usize,
}

impl TopicSet {
    /// The empty set: matches nothing.
    pub(crate) fn new() -> TopicSet {
        TopicSet {
            nodes: vec![Node::default()],
            free: Vec::new(),
            len: 0,
        }
    }

    fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    fn alloc(&mut self, node: Node) -> NodeId {
        if let Some(id) = self.free.pop() {
            *self.node_mut(id) = node;
            return id;
        }
        // A node is at least 56 bytes, so memory runs out long before 2^32 of them.
        let id = NodeId::try_from(self.nodes.len()).expect("fewer than 2^32 topic nodes");
        self.nodes.push(node);
        id
    }

    /// Returns `id` to the free list, dropping its label and child list now rather than
    /// when the slot is reused.
    fn release(&mut self, id: NodeId) {
        *self.node_mut(id) = Node::default();
        self.free.push(id);
    }

    /// Adds `topic`; returns false (and changes nothing) if it was already there.
    pub(crate) fn insert(&mut self, topic: &[u8]) -> bool {
        let mut at = ROOT;
        let mut rest = topic;
        loop {
            let Some(&first) = rest.first() else {
                let node = self.node_mut(at);
                if node.terminal {
                    return false;
                }
                node.terminal = true;
                self.len += 1;
                return true;
            };
            let pos = match self.node(at).child(first) {
                Ok(pos) => pos,
                Err(pos) => {
                    let leaf = self.alloc(Node {
                        label_rev: rest.iter().rev().copied().collect(),
                        children: Vec::new(),
                        terminal: true,
                    });
                    self.node_mut(at).children.insert(pos, (first, leaf));
                    self.len += 1;
                    return true;
                }
            };
            let child = self.node(at).children[pos].1;
            let label = &self.node(child).label_rev;
            // At least 1: the first bytes agree.
            let common = label
                .iter()
                .rev()
                .zip(rest)
                .take_while(|(a, b)| a == b)
                .count();
            if common < label.len() {
                // `rest` leaves the edge part way along: a node goes in at that point,
                // keeping the label's head; the child keeps the (non-empty) tail.
                let cut = label.len() - common;
                let head = self.node_mut(child).label_rev.split_off(cut);
                let child_first = self.node(child).first_byte();
                let mid = self.alloc(Node {
                    label_rev: head,
                    children: vec![(child_first, child)],
                    terminal: false,
                });
                self.node_mut(at).children[pos].1 = mid;
                at = mid;
            } else {
                at = child;
            }
            rest = &rest[common..];
        }
    }

    /// Removes `topic`; returns false (and changes nothing) if it was not there.
    pub(crate) fn remove(&mut self, topic: &[u8]) -> bool {
        // The node for `topic`, its parent and grandparent, each with the position of the
        // child in its list: what pruning may have to rewrite.
        let mut at = ROOT;
        let mut parent: Option<(NodeId, usize)> = None;
        let mut grandparent: Option<(NodeId, usize)> = None;
        let mut rest = topic;
        while let Some(&first) = rest.first() {
            let Ok(pos) = self.node(at).child(first) else {
                return false;
            };
            let child = self.node(at).children[pos].1;
            let Some(n) = self.node(child).label_prefixes(rest) else {
                return false;
            };
            grandparent = parent;
            parent = Some((at, pos));
            at = child;
            rest = &rest[n..];
        }
        let node = self.node_mut(at);
        if !node.terminal {
            return false;
        }
        node.terminal = false;
        self.len -= 1;
        let Some((p, pos)) = parent else {
            return true; // the root (the empty topic) stays whatever it holds
        };
        match self.node(at).children.len() {
            0 => {
                self.node_mut(p).children.remove(pos);
                self.release(at);
                let pn = self.node(p);
                if let Some((g, gpos)) = grandparent {
                    if !pn.terminal && pn.children.len() == 1 {
                        self.merge_into_child(p, g, gpos);
                    }
                }
            }
            1 => self.merge_into_child(at, p, pos),
            _ => {}
        }
        true
    }

    /// Replaces `id` (a non-terminal node with one child, listed at `pos` in `parent`) by
    /// that child, whose label grows by `id`'s label in front. The child's first byte
    /// becomes `id`'s, so the parent's list stays sorted.
    fn merge_into_child(&mut self, id: NodeId, parent: NodeId, pos: usize) {
        let (_, child) = self.node(id).children[0];
        let head = std::mem::take(&mut self.node_mut(id).label_rev);
        self.node_mut(child).label_rev.extend_from_slice(&head);
        self.node_mut(parent).children[pos].1 = child;
        self.release(id);
    }

    /// Whether some topic is a prefix of `body`.
    pub(crate) fn matches(&self, body: &[u8]) -> bool {
        let mut at = self.node(ROOT);
        let mut rest = body;
        loop {
            if at.terminal {
                return true;
            }
            let Some(&first) = rest.first() else {
                return false;
            };
            let Ok(pos) = at.child(first) else {
                return false;
            };
            let child = self.node(at.children[pos].1);
            let Some(n) = child.label_prefixes(rest) else {
                return false;
            };
            at = child;
            rest = &rest[n..];
        }
    }
}

/// The counts only: a sub0 socket's `Debug` must not print 100,000 topics.
impl fmt::Debug for TopicSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicSet")
            .field("len", &self.len)
            .field("nodes", &(self.nodes.len() - self.free.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl TopicSet {
        fn len(&self) -> usize {
            self.len
        }

        /// Asserts the module's invariants and returns every topic in the set.
        fn check(&self) -> Vec<Vec<u8>> {
            let free: std::collections::HashSet<NodeId> = self.free.iter().copied().collect();
            assert_eq!(free.len(), self.free.len(), "a node freed twice");
            let mut topics = Vec::new();
            let mut live = 0;
            let mut stack = vec![(ROOT, Vec::new())];
            while let Some((id, path)) = stack.pop() {
                live += 1;
                let node = self.node(id);
                assert!(!free.contains(&id), "node {id} is live and free");
                if id != ROOT {
                    assert!(!node.label_rev.is_empty(), "empty label below the root");
                    assert!(
                        node.terminal || node.children.len() >= 2,
                        "node {id} neither terminal nor branching"
                    );
                }
                assert!(node.children.windows(2).all(|w| w[0].0 < w[1].0));
                if node.terminal {
                    topics.push(path.clone());
                }
                for &(byte, child) in &node.children {
                    assert_eq!(self.node(child).first_byte(), byte);
                    let mut p = path.clone();
                    p.extend(self.node(child).label_rev.iter().rev());
                    stack.push((child, p));
                }
            }
            assert_eq!(live + self.free.len(), self.nodes.len(), "leaked nodes");
            assert_eq!(topics.len(), self.len);
            assert!(
                live <= 2 * self.len + 1,
                "{live} nodes for {} topics",
                self.len
            );
            topics.sort();
            topics
        }
    }

    /// The scan the set replaces: the reference for its answers.
    fn naive_matches(topics: &[Vec<u8>], body: &[u8]) -> bool {
        topics.iter().any(|t| body.starts_with(t))
    }

    /// xorshift64*: deterministic, so a failure replays.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Up to `max_len` bytes from a small alphabet, so topics share prefixes and
        /// edges split and merge; 0x00 and 0xff test the ends of the child order.
        fn bytes(&mut self, max_len: usize) -> Vec<u8> {
            const ALPHABET: [u8; 4] = [0x00, b'a', b'b', 0xff];
            let len = self.below(max_len + 1);
            (0..len).map(|_| ALPHABET[self.below(4)]).collect()
        }
    }

    #[test]
    fn empty_set_matches_nothing() {
        let set = TopicSet::new();
        assert!(!set.matches(b""));
        assert!(!set.matches(b"anything"));
        assert_eq!(set.len(), 0);
        set.check();
    }

    #[test]
    fn empty_topic_matches_everything() {
        let mut set = TopicSet::new();
        assert!(set.insert(b""));
        assert!(set.matches(b""));
        assert!(set.matches(b"\x00\xff"));
        assert!(!set.insert(b""), "twice is a no-op");
        assert!(set.remove(b""));
        assert!(!set.remove(b""));
        assert!(!set.matches(b"x"));
        set.check();
    }

    #[test]
    fn prefixes_split_and_merge_edges() {
        let mut set = TopicSet::new();
        assert!(set.insert(b"weather.rain"));
        assert!(set.insert(b"weather.snow"));
        assert!(set.insert(b"weather"));
        assert!(!set.insert(b"weather.rain"));
        assert_eq!(
            set.check(),
            [&b"weather"[..], b"weather.rain", b"weather.snow"]
        );
        assert!(set.matches(b"weather"));
        assert!(set.matches(b"weather.hail"));
        assert!(!set.matches(b"weathe"));
        assert!(!set.remove(b"weather."), "a prefix of topics is not one");
        assert!(!set.remove(b"weather.rainy"));
        assert!(set.remove(b"weather"));
        assert!(!set.matches(b"weather.hail"));
        assert!(set.matches(b"weather.rainy"));
        assert!(set.remove(b"weather.snow"));
        assert_eq!(set.check(), [&b"weather.rain"[..]]);
        assert!(set.remove(b"weather.rain"));
        assert!(set.check().is_empty());
        assert!(!set.matches(b"weather.rain"));
    }

    #[test]
    fn freed_nodes_are_reused() {
        let mut set = TopicSet::new();
        for _ in 0..100 {
            for t in [&b"ab"[..], b"abc", b"abd", b"b"] {
                assert!(set.insert(t));
            }
            for t in [&b"abd"[..], b"ab", b"b", b"abc"] {
                assert!(set.remove(t));
            }
        }
        set.check();
        assert!(set.nodes.len() <= 6, "{} nodes", set.nodes.len());
    }

    /// Random inserts, removes and matches against a `Vec` scanned the old way.
    #[test]
    fn agrees_with_the_naive_scan() {
        for seed in 1..=40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut set = TopicSet::new();
            let mut model: Vec<Vec<u8>> = Vec::new();
            for step in 0..2_000 {
                let ctx = format!("seed {seed} step {step}");
                match rng.below(10) {
                    0..=3 => {
                        let t = rng.bytes(6);
                        let added = !model.contains(&t);
                        if added {
                            model.push(t.clone());
                        }
                        assert_eq!(set.insert(&t), added, "insert {t:?}, {ctx}");
                    }
                    4..=5 => {
                        // Present topics half the time, else likely absent ones.
                        let t = if !model.is_empty() && rng.below(2) == 0 {
                            model[rng.below(model.len())].clone()
                        } else {
                            rng.bytes(6)
                        };
                        let at = model.iter().position(|m| *m == t);
                        if let Some(at) = at {
                            model.swap_remove(at);
                        }
                        assert_eq!(set.remove(&t), at.is_some(), "remove {t:?}, {ctx}");
                    }
                    _ => {
                        let body = rng.bytes(9);
                        assert_eq!(
                            set.matches(&body),
                            naive_matches(&model, &body),
                            "match {body:?} against {model:?}, {ctx}"
                        );
                    }
                }
                if step % 100 == 0 {
                    let mut sorted = model.clone();
                    sorted.sort();
                    assert_eq!(set.check(), sorted, "{ctx}");
                }
            }
        }
    }

    /// 100,000 topics in, matched, and out again (the sizes that took seconds as a scan).
    #[test]
    fn a_hundred_thousand_topics() {
        let topic = |i: u32| format!("feed/{:05}/", i * 7 % 100_000).into_bytes();
        let mut set = TopicSet::new();
        for i in 0..100_000 {
            assert!(set.insert(&topic(i)));
        }
        assert!(!set.insert(&topic(12_345)));
        assert_eq!(set.len(), 100_000);
        set.check();
        assert!(set.matches(b"feed/04242/price=1"));
        assert!(set.matches(b"feed/99999/"));
        assert!(!set.matches(b"feed/04242"));
        assert!(!set.matches(b"feed/100000/"));
        assert!(!set.matches(b"other"));
        for i in (0..100_000).step_by(2) {
            assert!(set.remove(&topic(i)));
        }
        assert!(!set.remove(&topic(0)));
        assert_eq!(set.len(), 50_000);
        for i in 0..100_000 {
            assert_eq!(set.matches(&topic(i)), i % 2 == 1, "topic {i}");
        }
        for i in (1..100_000).step_by(2) {
            assert!(set.remove(&topic(i)));
        }
        assert_eq!(set.len(), 0);
        assert!(set.check().is_empty());
        assert!(!set.matches(b"feed/00001/"));
    }
}
