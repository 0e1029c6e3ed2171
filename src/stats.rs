//! Socket statistics: what a socket threw away or refused, and why.
//!
//! Bad input from the network never panics: it is answered by dropping the message or
//! closing the connection. These counters are how an operator sees that it happened, the
//! role NNG's statistics (`nng_stats_get`: a socket's `reject`, a listener's `proto`) play.

use crate::Socket;

/// A snapshot of a socket's counters, from [`Socket::stats`].
///
/// # Examples
///
/// ```
/// use nanoport::Socket;
/// let rep = Socket::rep0().unwrap();
/// let s = rep.stats();
/// assert_eq!(s.malformed + s.too_many_hops + s.unmatched + s.pipes_rejected, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketStats {
    /// Messages whose protocol header was too short or invalid (a backtrace without a
    /// request id, a pair1 hop count over 255); each also closed its pipe.
    pub malformed: u64,
    /// Messages that had travelled more hops than `ttl-max` allows; dropped, pipe kept.
    pub too_many_hops: u64,
    /// Replies and responses matching nothing outstanding (late, duplicate, or for a
    /// survey that ended); dropped.
    pub unmatched: u64,
    /// Connections refused because the peer speaks the wrong protocol (NNG's `reject`).
    pub pipes_rejected: u64,
    /// Connections closed because a frame announced more than the receive limit
    /// (`recv-size-max`) or set a reserved length bit; nothing of it was buffered.
    pub frames_too_large: u64,
    /// Connections closed because a frame was malformed (an IPC message type other
    /// than 1).
    pub frames_malformed: u64,
}

impl Socket {
    /// This socket's counters of discarded input and refused peers.
    pub fn stats(&self) -> SocketStats {
        let core = self.inner.lock();
        let d = core.proto.discards();
        SocketStats {
            malformed: d.malformed,
            too_many_hops: d.too_many_hops,
            unmatched: d.unmatched,
            pipes_rejected: core.rejected,
            frames_too_large: core.frames_too_large,
            frames_malformed: core.frames_malformed,
        }
    }
}
