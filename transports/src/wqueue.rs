//! The write side of an SP pipe over a stream socket, as a pure state machine (no I/O):
//! a bounded buffer of accepted frames and the rules for who writes it out, and when.
//!
//! Why a buffer at all: one `sendmsg` per 64-byte message caps a stream at a few hundred
//! thousand messages a second, however cheap the rest is. Batching needs messages to
//! wait somewhere while a write is under way, so a send completes once its frame is
//! *accepted* into this buffer (as a kernel socket buffer accepts bytes), not when it
//! reaches the kernel. The buffer is bounded ([`BUF_LIMIT`]); beyond it sends wait, which
//! is what lets push0 steer around a slow peer as before.
//!
//! Who writes: exactly one *writer* at a time owns the right to write ([`Writer`]), so
//! frames never interleave and stay in order. It is one of
//! * the sending thread itself, for a send on an idle pipe that is not part of a burst:
//!   the latency path, one write straight from the message, as before the buffer existed;
//! * the sending thread again once the buffer holds [`FLUSH_AT`] bytes and nobody writes
//!   (so a thread that streams faster than a flusher can be scheduled still batches);
//! * a worker-pool job ("kick"), asked for when a burst starts queueing: it writes
//!   whatever has gathered by the time it runs, and keeps going while more arrives;
//! * the reactor, after the kernel said `WouldBlock`, on writability (for one write;
//!   then a kick takes over, so one busy pipe never holds the reactor).
//!
//! A burst is told apart from a lone send by time alone: a send that comes within
//! [`BURST_GAP`] of the previous activity on the pipe (a send, or the end of a write),
//! after [`BURST_DIRECT`] such sends in a row, is queued instead of written at once. A
//! request/reply exchange never gets there (a round trip is longer than the gap), so its
//! latency is untouched, while a stream pays one kick and one `writev` per batch instead
//! of one `sendmsg` per message. Frames of [`DIRECT_ALWAYS`] bytes or more skip the
//! rule: on an idle pipe they are always written at once, since batching them saves
//! little and the hand-off to a writer would cost a thread hop each. The rule only
//! chooses *who* writes; no correctness depends on it.
//!
//! Small frames are copied into staging buffers ([`STAGE`] bytes, recycled), so a batch of
//! hundreds of them is a handful of iovecs; larger ones are written from the message
//! itself, without a copy.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::{Duration, Instant};

use nanoport_engine::{Error, Message};

use crate::frame::{encode_prefix, Framing};

/// Accepted but unwritten bytes from which new sends wait (backpressure), unless the
/// pipe's send-ahead bound sets a smaller limit ([`WriteQueue::set_limit`]).
pub(crate) const BUF_LIMIT: usize = 128 * 1024;
/// Frames up to this size (prefix included) are copied into a staging buffer.
pub(crate) const COPY_MAX: usize = 2048;
/// Capacity of one staging buffer.
pub(crate) const STAGE: usize = 16 * 1024;
/// Queued bytes from which a sender writes itself rather than wait for the kick.
pub(crate) const FLUSH_AT: usize = 32 * 1024;
/// Most iovecs in one vectored write (a chunk needs at most 3).
pub(crate) const MAX_IOV: usize = 64;
/// Bytes from which a batch takes no further chunk (one large message may exceed it).
pub(crate) const MAX_WRITE: usize = 256 * 1024;
/// Activity on a pipe this close to the previous one counts as a burst.
pub(crate) const BURST_GAP: Duration = Duration::from_micros(10);
/// Sends of a burst that are still written at once before queueing starts.
pub(crate) const BURST_DIRECT: u8 = 2;
/// Frames from this size on are written at once whenever the pipe is idle, burst or
/// not: one of them is already a large write, and queueing it would only add a hop.
pub(crate) const DIRECT_ALWAYS: usize = 8 * 1024;
/// Vectored writes one thread writer makes before it hands the rest to a fresh pool
/// job (the reactor makes one: it serves every connection).
pub(crate) const FLUSH_ROUNDS: usize = 16;
/// Staging buffers kept for reuse.
const SPARE_STAGES: usize = 4;

/// Part of the byte stream waiting to be written.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// Whole small frames copied back to back.
    Bytes { buf: Vec<u8>, sent: usize },
    /// One frame written from its message: prefix, header, body.
    Msg {
        prefix: [u8; 9],
        plen: u8,
        msg: Message,
        sent: usize,
    },
}

impl Chunk {
    fn parts(&self) -> [&[u8]; 3] {
        match self {
            Chunk::Bytes { buf, .. } => [buf, &[], &[]],
            Chunk::Msg {
                prefix, plen, msg, ..
            } => [&prefix[..*plen as usize], msg.header(), msg.body()],
        }
    }

    fn sent(&self) -> usize {
        match self {
            Chunk::Bytes { sent, .. } | Chunk::Msg { sent, .. } => *sent,
        }
    }

    fn advance(&mut self, n: usize) {
        match self {
            Chunk::Bytes { sent, .. } | Chunk::Msg { sent, .. } => *sent += n,
        }
    }

    fn remaining(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum::<usize>() - self.sent()
    }
}

/// Fills `iov` with the unsent bytes of `batch`, in order; returns how many it used.
pub(crate) fn fill_iov<'a>(batch: &'a [Chunk], iov: &mut [IoSlice<'a>]) -> usize {
    let mut k = 0;
    for c in batch {
        let mut skip = c.sent();
        for p in c.parts() {
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            if k == iov.len() {
                return k;
            }
            iov[k] = IoSlice::new(&p[skip..]);
            skip = 0;
            k += 1;
        }
    }
    k
}

/// Who holds the right to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    /// Nobody; the buffer is empty or a kick is on its way.
    None,
    /// A thread (a sender, a pool job, the reactor inside a flush) is writing now.
    Thread,
    /// The kernel said `WouldBlock`; the reactor resumes on writability.
    Reactor,
}

/// What a new send should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// The caller now holds the writer role: accept it with [`WriteQueue::push`] and
    /// write it from the calling thread.
    Direct,
    /// Accept it with [`WriteQueue::push`].
    Queue,
    /// No room: wait (park the send) until the writer frees some.
    Full,
    /// The pipe can take no more sends.
    Closed(Error),
}

/// What the caller must do after accepting a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Nothing: a writer exists or has been asked for.
    Nothing,
    /// Write now: the caller holds the writer role.
    FlushNow,
    /// Ask the worker pool for a writer.
    Kick,
}

/// What closing the pipe leaves to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseAct {
    /// Nothing is queued: shut the socket down now.
    ShutdownNow,
    /// The caller took the writer role: write out what is queued (no waiting), then shut
    /// the socket down.
    Flush,
    /// A thread is writing: it shuts the socket down when it is done.
    Deferred,
}

/// The bounded write buffer of one pipe and its writer role; `W` is a parked send.
#[derive(Debug)]
pub(crate) struct WriteQueue<W> {
    framing: Framing,
    chunks: VecDeque<Chunk>,
    /// Bytes in `chunks`.
    queued: usize,
    /// Accepted bytes not yet written: `queued` plus a writer's batch in flight.
    unsent: usize,
    spare: Vec<Vec<u8>>,
    batch_spare: Vec<Chunk>,
    writer: Writer,
    kicked: bool,
    last_active: Option<Instant>,
    burst: u8,
    closed: Option<Error>,
    shutdown_on_release: bool,
    waiters: VecDeque<W>,
    batches: u64,
    /// Unsent bytes from which sends wait: [`BUF_LIMIT`] or the send-ahead bound's share.
    limit: usize,
    /// Queued bytes from which a sender writes itself: [`FLUSH_AT`], or half a smaller
    /// limit, so a bounded queue still gets written before it fills.
    flush_at: usize,
}

impl<W> WriteQueue<W> {
    pub(crate) fn new(framing: Framing) -> Self {
        WriteQueue {
            framing,
            chunks: VecDeque::new(),
            queued: 0,
            unsent: 0,
            spare: Vec::new(),
            batch_spare: Vec::new(),
            writer: Writer::None,
            kicked: false,
            last_active: None,
            burst: 0,
            closed: None,
            shutdown_on_release: false,
            waiters: VecDeque::new(),
            batches: 0,
            limit: BUF_LIMIT,
            flush_at: FLUSH_AT,
        }
    }

    /// Sets the unsent bytes from which sends wait; 0 restores [`BUF_LIMIT`], and more
    /// than it is taken as it (the bound only ever tightens the queue). A send is admitted
    /// while the queue holds less than the limit, so a queue may hold the limit plus one
    /// frame. A raised limit lets parked sends in at the writer's next completed write
    /// (a send only parks on a full queue, which always has a writer or one coming).
    pub(crate) fn set_limit(&mut self, bytes: usize) {
        self.limit = if bytes == 0 {
            BUF_LIMIT
        } else {
            bytes.min(BUF_LIMIT)
        };
        self.flush_at = FLUSH_AT.min(self.limit.div_ceil(2));
    }

    /// The unsent bytes from which sends wait.
    #[cfg(test)]
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    #[cfg(test)]
    pub(crate) fn writer(&self) -> Writer {
        self.writer
    }

    #[cfg(test)]
    pub(crate) fn unsent(&self) -> usize {
        self.unsent
    }

    pub(crate) fn closed(&self) -> Option<Error> {
        self.closed
    }

    /// Whether a send may be accepted now (parked sends aside).
    pub(crate) fn has_room(&self) -> bool {
        self.unsent < self.limit
    }

    fn touch(&mut self, now: Instant) -> bool {
        let burst = self
            .last_active
            .is_some_and(|t| now.saturating_duration_since(t) < BURST_GAP);
        self.last_active = Some(now);
        burst
    }

    /// A message came in on the pipe since the last send: the next send answers it, and
    /// an exchange is not a burst however quickly it goes (on one CPU the peer's answer
    /// can arrive within [`BURST_GAP`] of the end of the write it answers).
    pub(crate) fn answered(&mut self) {
        self.burst = 0;
        self.last_active = None;
    }

    /// Decides what a new send does; on `Direct` the caller now holds the writer role.
    /// The clock is read only when the pipe is idle, the one case where it matters (a
    /// streaming sender finds a writer busy and pays nothing for the burst rule).
    pub(crate) fn admit(&mut self, frame_len: usize, now: impl FnOnce() -> Instant) -> Admit {
        if let Some(e) = self.closed {
            return Admit::Closed(e);
        }
        if !self.waiters.is_empty() || !self.has_room() {
            return Admit::Full;
        }
        if self.writer == Writer::None && !self.kicked && self.chunks.is_empty() {
            self.burst = if self.touch(now()) {
                self.burst.saturating_add(1)
            } else {
                0
            };
            if self.burst < BURST_DIRECT || frame_len >= DIRECT_ALWAYS {
                self.writer = Writer::Thread;
                return Admit::Direct;
            }
        }
        Admit::Queue
    }

    /// Accepts `msg` (admitted with `Queue`, or a parked send now let in).
    pub(crate) fn push(&mut self, msg: Message) -> After {
        let len = msg.len() + msg.header_len();
        let prefix = encode_prefix(self.framing, len as u64);
        let plen = self.framing.prefix_len();
        let total = plen + len;
        if total <= COPY_MAX {
            let fits = matches!(self.chunks.back(), Some(Chunk::Bytes { buf, .. }) if buf.len() + total <= STAGE);
            if !fits {
                let mut buf = self.spare.pop().unwrap_or_default();
                buf.clear();
                buf.reserve(STAGE);
                self.chunks.push_back(Chunk::Bytes { buf, sent: 0 });
            }
            if let Some(Chunk::Bytes { buf, .. }) = self.chunks.back_mut() {
                buf.extend_from_slice(&prefix[..plen]);
                buf.extend_from_slice(msg.header());
                buf.extend_from_slice(msg.body());
            }
        } else {
            self.chunks.push_back(Chunk::Msg {
                prefix,
                plen: plen as u8,
                msg,
                sent: 0,
            });
        }
        self.queued += total;
        self.unsent += total;
        if self.writer != Writer::None {
            After::Nothing
        } else if self.queued >= self.flush_at {
            self.writer = Writer::Thread;
            After::FlushNow
        } else if !self.kicked {
            self.kicked = true;
            After::Kick
        } else {
            After::Nothing
        }
    }

    /// The role holder finished writing at `now` (for the burst rule).
    pub(crate) fn wrote_at(&mut self, now: Instant) {
        self.last_active = Some(now);
    }

    /// The next chunks to write, for the role holder; `None` when nothing is queued, and
    /// then the role is released.
    pub(crate) fn next_batch(&mut self) -> Option<Vec<Chunk>> {
        if self.chunks.is_empty() {
            self.writer = Writer::None;
            return None;
        }
        let mut batch = std::mem::take(&mut self.batch_spare);
        let mut bytes = 0;
        while batch.len() < MAX_IOV / 3 && bytes < MAX_WRITE {
            let Some(c) = self.chunks.pop_front() else {
                break;
            };
            let r = c.remaining();
            bytes += r;
            self.queued -= r;
            batch.push(c);
        }
        Some(batch)
    }

    /// `n` bytes of `batch` were written; what is left goes back in front, in order.
    pub(crate) fn written(&mut self, mut batch: Vec<Chunk>, n: usize) {
        self.batches += 1;
        self.unsent -= n;
        let mut left = n;
        let mut done = 0;
        for c in batch.iter_mut() {
            let r = c.remaining();
            if left >= r {
                left -= r;
                done += 1;
            } else {
                c.advance(left);
                break;
            }
        }
        while batch.len() > done {
            if let Some(c) = batch.pop() {
                self.queued += c.remaining();
                self.chunks.push_front(c);
            }
        }
        for c in batch.drain(..) {
            if let Chunk::Bytes { buf, .. } = c {
                if self.spare.len() < SPARE_STAGES {
                    self.spare.push(buf);
                }
            }
        }
        self.batch_spare = batch;
    }

    /// Frees the spare staging buffers when nothing is queued or being written; returns
    /// the bytes of memory freed (see `FrameReader::release_idle` for why).
    pub(crate) fn release_idle(&mut self) -> usize {
        if self.writer != Writer::None || !self.chunks.is_empty() {
            return 0;
        }
        let freed = self.spare.iter().map(Vec::capacity).sum::<usize>()
            + self.spare.capacity() * std::mem::size_of::<Vec<u8>>()
            + self.batch_spare.capacity() * std::mem::size_of::<Chunk>();
        self.spare = Vec::new();
        self.batch_spare = Vec::new();
        freed
    }

    /// Whether it holds memory beyond its bookkeeping: queued frames or spare buffers.
    pub(crate) fn holds_memory(&self) -> bool {
        !self.chunks.is_empty() || !self.spare.is_empty()
    }

    /// Bytes of buffer memory held: spare staging buffers and queued copies.
    pub(crate) fn buffered_bytes(&self) -> usize {
        let staged: usize = self
            .chunks
            .iter()
            .map(|c| match c {
                Chunk::Bytes { buf, .. } => buf.capacity(),
                Chunk::Msg { .. } => 0,
            })
            .sum();
        staged + self.spare.iter().map(Vec::capacity).sum::<usize>()
    }

    /// Batches written so far (an activity count for the idle sweep).
    pub(crate) fn batches(&self) -> u64 {
        self.batches
    }

    /// The kernel would block: the reactor takes the role over.
    pub(crate) fn park_on_reactor(&mut self) {
        self.writer = Writer::Reactor;
    }

    /// The reactor saw writability: whether it still holds the role (then it writes).
    pub(crate) fn resume_reactor(&mut self) -> bool {
        if self.writer == Writer::Reactor {
            self.writer = Writer::Thread;
            true
        } else {
            false
        }
    }

    /// The role holder spent its budget: the rest goes to a fresh pool job.
    pub(crate) fn hand_off(&mut self) -> After {
        self.writer = Writer::None;
        if self.chunks.is_empty() || self.kicked {
            After::Nothing
        } else {
            self.kicked = true;
            After::Kick
        }
    }

    /// A kick job runs: whether it takes the role (something is queued, nobody writes).
    pub(crate) fn kick_run(&mut self) -> bool {
        self.kicked = false;
        if self.writer == Writer::None && !self.chunks.is_empty() && self.closed.is_none() {
            self.writer = Writer::Thread;
            true
        } else {
            false
        }
    }

    /// Parks a send that found no room.
    pub(crate) fn park(&mut self, w: W) {
        self.waiters.push_back(w);
    }

    /// Puts back a send that was let in but found the room gone.
    pub(crate) fn unpark_front(&mut self, w: W) {
        self.waiters.push_front(w);
    }

    /// The oldest parked send, if there is room for it now.
    pub(crate) fn pop_waiter(&mut self) -> Option<W> {
        if self.has_room() && self.closed.is_none() {
            self.waiters.pop_front()
        } else {
            None
        }
    }

    /// Forgets the parked sends `f` picks (a cancel).
    pub(crate) fn remove_waiters(&mut self, f: impl FnMut(&W) -> bool) {
        let mut f = f;
        self.waiters.retain(|w| !f(w));
    }

    /// Whether the role holder should stop at `WouldBlock` instead of handing over to
    /// the reactor, and ignore its budget: the pipe is closing.
    pub(crate) fn closing(&self) -> bool {
        self.closed.is_some()
    }

    /// Drops everything queued (the pipe is closing and the peer does not read, or the
    /// stream failed).
    pub(crate) fn discard(&mut self) {
        self.chunks.clear();
        self.queued = 0;
        self.unsent = 0;
    }

    /// Whether the role holder must shut the socket down as it lets go (a close came
    /// while it was writing). Asking clears it.
    pub(crate) fn take_shutdown(&mut self) -> bool {
        std::mem::take(&mut self.shutdown_on_release)
    }

    /// A write failed with `e`: nothing more will be written. Releases the role; returns
    /// the parked sends, which fail with `e`.
    pub(crate) fn fail(&mut self, e: Error) -> Vec<W> {
        self.discard();
        self.writer = Writer::None;
        if self.closed.is_none() {
            self.closed = Some(e);
        }
        self.waiters.drain(..).collect()
    }

    /// Closes: no more sends; returns the parked sends (they fail with `err`) and what
    /// the caller must do about what is queued.
    pub(crate) fn close(&mut self, err: Error) -> (Vec<W>, CloseAct) {
        if self.closed.is_none() {
            self.closed = Some(err);
        }
        let waiters = self.waiters.drain(..).collect();
        let act = match self.writer {
            Writer::Thread => {
                self.shutdown_on_release = true;
                CloseAct::Deferred
            }
            Writer::None | Writer::Reactor if !self.chunks.is_empty() => {
                // A parked reactor writer is taken over: it finds the role gone.
                self.writer = Writer::Thread;
                self.shutdown_on_release = true;
                CloseAct::Flush
            }
            _ => {
                self.writer = Writer::None;
                CloseAct::ShutdownNow
            }
        };
        (waiters, act)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> WriteQueue<u32> {
        WriteQueue::new(Framing::Tcp)
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u64).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    /// Writes out everything as the role holder would, `step(i)` bytes per write.
    fn drain(w: &mut WriteQueue<u32>, out: &mut Vec<u8>, mut step: impl FnMut(usize) -> usize) {
        let mut i = 0;
        while let Some(batch) = w.next_batch() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let k = fill_iov(&batch, &mut iov);
            let mut n = 0;
            let limit = step(i);
            i += 1;
            for s in &iov[..k] {
                let take = s.len().min(limit - n);
                out.extend_from_slice(&s[..take]);
                n += take;
                if n == limit {
                    break;
                }
            }
            w.written(batch, n);
        }
        assert_eq!(w.writer(), Writer::None);
        assert_eq!(w.unsent(), 0);
    }

    #[test]
    fn lone_sends_go_direct_bursts_queue_and_kick_once() {
        let mut w = q();
        let t0 = Instant::now();
        assert_eq!(w.admit(64, || t0), Admit::Direct);
        // While the direct writer holds the role, others queue and nobody is kicked.
        assert_eq!(w.admit(64, || t0), Admit::Queue);
        assert_eq!(w.push(Message::from(&b"a"[..])), After::Nothing);
        let mut out = Vec::new();
        drain(&mut w, &mut out, |_| usize::MAX);
        assert_eq!(out, frame(b"a"));
        // Long after: direct again. A burst: the first BURST_DIRECT go direct, then queue.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(w.admit(64, || t1), Admit::Direct);
        w.wrote_at(t1);
        assert!(w.next_batch().is_none());
        let mut t = t1;
        for _ in 0..BURST_DIRECT - 1 {
            t += Duration::from_micros(1);
            assert_eq!(w.admit(64, || t), Admit::Direct);
            assert!(w.next_batch().is_none());
        }
        t += Duration::from_micros(1);
        assert_eq!(w.admit(64, || t), Admit::Queue);
        assert_eq!(w.push(Message::from(&b"b"[..])), After::Kick);
        assert_eq!(w.admit(64, || t), Admit::Queue);
        assert_eq!(
            w.push(Message::from(&b"c"[..])),
            After::Nothing,
            "kicked once"
        );
        assert!(w.kick_run());
        assert!(!w.kick_run(), "a second kick finds the role taken");
        let mut out = Vec::new();
        drain(&mut w, &mut out, |_| usize::MAX);
        assert_eq!(out, [frame(b"b"), frame(b"c")].concat());
        assert!(!w.kick_run(), "nothing queued: a late kick does nothing");
    }

    #[test]
    fn large_frames_on_an_idle_pipe_always_go_direct() {
        let mut w = q();
        let t = Instant::now();
        w.burst = BURST_DIRECT;
        w.last_active = Some(t);
        assert_eq!(
            w.admit(64, || t),
            Admit::Queue,
            "a small one in a burst queues"
        );
        w.push(Message::from(&b"x"[..]));
        assert_eq!(
            w.admit(DIRECT_ALWAYS, || t),
            Admit::Queue,
            "not past queued ones"
        );
        assert!(w.kick_run());
        let mut out = Vec::new();
        drain(&mut w, &mut out, |_| usize::MAX);
        assert_eq!(w.admit(DIRECT_ALWAYS, || t), Admit::Direct, "idle: direct");
    }

    #[test]
    fn a_full_enough_queue_is_flushed_by_the_sender() {
        let mut w = q();
        let t = Instant::now();
        w.burst = BURST_DIRECT;
        w.last_active = Some(t);
        assert_eq!(w.admit(64, || t), Admit::Queue);
        assert_eq!(w.push(Message::from(vec![1u8; 100])), After::Kick);
        let mut n = 108;
        while n < FLUSH_AT {
            assert_eq!(w.admit(64, || t), Admit::Queue);
            let a = w.push(Message::from(vec![1u8; 100]));
            n += 108;
            if n >= FLUSH_AT {
                assert_eq!(a, After::FlushNow);
            } else {
                assert_eq!(a, After::Nothing);
            }
        }
        assert_eq!(w.writer(), Writer::Thread);
        let mut out = Vec::new();
        drain(&mut w, &mut out, |_| usize::MAX);
        assert_eq!(out.len(), n);
        // The pending kick finds nothing to do.
        assert!(!w.kick_run());
    }

    #[test]
    fn bytes_come_out_in_order_whatever_the_partial_writes() {
        let sizes = [
            0usize,
            1,
            1024,
            5000,
            64,
            2039,
            2040,
            1 << 20,
            3,
            100_000,
            7,
        ];
        for step in [1usize, 7, 100, 4096, 65_536, usize::MAX] {
            let mut w = q();
            let mut want = Vec::new();
            let t = Instant::now();
            w.burst = BURST_DIRECT;
            w.last_active = Some(t);
            w.writer = Writer::Thread;
            for (i, &s) in sizes.iter().enumerate() {
                let mut m = Message::from(vec![i as u8; s]);
                if i % 3 == 0 {
                    m.header_append(&[0x80, 0, 0, i as u8]).unwrap();
                }
                let mut payload = m.header().to_vec();
                payload.extend_from_slice(m.body());
                want.extend(frame(&payload));
                w.push(m);
            }
            let mut out = Vec::new();
            let mut k = 0usize;
            drain(&mut w, &mut out, |_| {
                k += 1;
                // Vary the write sizes, including zero (WouldBlock).
                if k % 5 == 0 {
                    0
                } else {
                    step
                }
            });
            assert_eq!(out.len(), want.len(), "step {step}");
            assert!(out == want, "step {step}: stream differs");
            assert!(w.spare.len() <= SPARE_STAGES);
        }
    }

    #[test]
    fn idle_spares_are_released_only_when_nothing_is_queued() {
        let mut w = q();
        w.writer = Writer::Reactor;
        for _ in 0..3000 {
            w.push(Message::from(&[1u8; 40][..]));
        }
        assert_eq!(w.release_idle(), 0, "queued frames: keep everything");
        let mut out = Vec::new();
        w.writer = Writer::Thread;
        drain(&mut w, &mut out, |_| usize::MAX);
        assert!(w.batches() > 0);
        assert!(!w.spare.is_empty(), "written stages are kept for reuse");
        assert!(w.release_idle() >= STAGE);
        assert!(w.spare.is_empty());
        // Still works afterwards.
        assert_eq!(w.admit(64, Instant::now), Admit::Direct);
        w.push(Message::from(&b"x"[..]));
        let mut out = Vec::new();
        drain(&mut w, &mut out, |_| usize::MAX);
        assert_eq!(out, frame(b"x"));
    }

    #[test]
    fn an_answer_is_never_part_of_a_burst() {
        let mut w = q();
        let t = Instant::now();
        for i in 0..10 {
            w.answered();
            assert_eq!(w.admit(64, || t), Admit::Direct, "send {i}");
            w.push(Message::from(&b"x"[..]));
            let mut out = Vec::new();
            drain(&mut w, &mut out, |_| usize::MAX);
            w.wrote_at(t);
        }
        // Without answers in between, the same pace soon counts as a burst.
        let mut direct = 0;
        while w.admit(64, || t) == Admit::Direct {
            direct += 1;
            assert!(direct <= BURST_DIRECT, "never queued");
            w.push(Message::from(&b"x"[..]));
            let mut out = Vec::new();
            drain(&mut w, &mut out, |_| usize::MAX);
            w.wrote_at(t);
        }
    }

    #[test]
    fn a_direct_send_is_queued_under_the_senders_role() {
        // The sender writes it itself (at the end of its engine scope); pushing it must
        // neither ask for another writer nor let a later send take the role.
        let mut w = q();
        let t = Instant::now();
        assert_eq!(w.admit(64, || t), Admit::Direct);
        assert_eq!(w.push(Message::from(&b"first"[..])), After::Nothing);
        assert_eq!(w.writer(), Writer::Thread);
        assert_eq!(w.admit(64, || t), Admit::Queue);
        assert_eq!(w.push(Message::from(&b"second"[..])), After::Nothing);
        let mut out = Vec::new();
        drain(&mut w, &mut out, |_| usize::MAX);
        let mut want = frame(b"first");
        want.extend(frame(b"second"));
        assert_eq!(out, want);
        assert_eq!(w.writer(), Writer::None);
    }

    #[test]
    fn backpressure_parks_sends_in_order_until_room() {
        let mut w = q();
        let t = Instant::now();
        w.writer = Writer::Reactor;
        let mut pushed = 0;
        while w.admit(64, || t) == Admit::Queue {
            w.push(Message::from(vec![0u8; 4000]));
            pushed += 1;
        }
        assert!(w.unsent() >= BUF_LIMIT && w.unsent() < BUF_LIMIT + 4008);
        assert!(pushed > 1);
        w.park(1);
        assert_eq!(w.admit(64, || t), Admit::Full, "behind a parked send");
        w.park(2);
        assert_eq!(w.pop_waiter(), None, "no room yet");
        assert!(w.resume_reactor());
        let batch = w.next_batch().unwrap();
        w.written(batch, 20_000);
        assert_eq!(w.pop_waiter(), Some(1));
        w.unpark_front(1);
        w.remove_waiters(|&x| x == 1);
        assert_eq!(w.pop_waiter(), Some(2));
        assert_eq!(w.pop_waiter(), None);
    }

    #[test]
    fn a_send_ahead_limit_bounds_the_queue_and_can_be_lifted() {
        // Fills a queue nobody writes (the reactor waits on a deaf peer) with 1 KiB
        // messages; returns the bytes accepted.
        fn fill(w: &mut WriteQueue<u32>) -> usize {
            let t = Instant::now();
            while w.admit(1024, || t) == Admit::Queue {
                w.push(Message::from(vec![0u8; 1024]));
            }
            w.unsent()
        }
        let frame = 1024 + 8;
        let mut w = q();
        w.writer = Writer::Reactor;
        w.set_limit(10_000);
        assert_eq!(w.limit(), 10_000);
        assert_eq!(w.flush_at, 5_000, "a sender flushes at half a small limit");
        let held = fill(&mut w);
        assert!(held >= 10_000 && held < 10_000 + frame, "{held}");
        w.park(1);
        assert_eq!(w.pop_waiter(), None, "full: the parked send waits");
        // Tightening below what is queued accepts nothing more; lifting (0) restores the
        // default and lets the parked send in.
        w.set_limit(4_000);
        assert_eq!(w.pop_waiter(), None);
        w.set_limit(0);
        assert_eq!((w.limit(), w.flush_at), (BUF_LIMIT, FLUSH_AT));
        assert_eq!(w.pop_waiter(), Some(1));
        let held = fill(&mut w);
        assert!(held >= BUF_LIMIT && held < BUF_LIMIT + frame, "{held}");
        // The bound only ever tightens the queue.
        w.set_limit(10 * BUF_LIMIT);
        assert_eq!(w.limit(), BUF_LIMIT);
        // Written bytes make room again.
        let mut w = q();
        w.writer = Writer::Reactor;
        w.set_limit(3000);
        fill(&mut w);
        assert!(w.resume_reactor());
        let batch = w.next_batch().unwrap();
        w.written(batch, 2 * frame);
        assert!(w.has_room());
    }

    #[test]
    fn budget_hand_off_kicks_for_the_rest() {
        let mut w = q();
        let t = Instant::now();
        w.writer = Writer::Thread;
        w.last_active = Some(t);
        w.burst = BURST_DIRECT;
        w.push(Message::from(vec![1u8; 10]));
        w.push(Message::from(vec![2u8; 10]));
        let b = w.next_batch().unwrap();
        w.written(b, 5);
        assert_eq!(w.hand_off(), After::Kick);
        assert_eq!(w.writer(), Writer::None);
        assert_eq!(
            w.admit(64, || t),
            Admit::Queue,
            "kicked: no direct write may jump the queue"
        );
        assert!(w.kick_run());
        let mut out = Vec::new();
        drain(&mut w, &mut out, |_| usize::MAX);
        assert_eq!(out.len(), 2 * 18 - 5);
    }

    #[test]
    fn close_decides_who_finishes() {
        // Nothing queued: shut down now.
        let mut w = q();
        w.park(7);
        let (ws, act) = w.close(Error::Closed);
        assert_eq!((ws, act), (vec![7], CloseAct::ShutdownNow));
        assert_eq!(w.admit(64, Instant::now), Admit::Closed(Error::Closed));
        // Queued, nobody writing (a kick pending): the closer flushes.
        let mut w = q();
        w.kicked = true;
        w.push(Message::from(&b"x"[..]));
        let (_, act) = w.close(Error::Closed);
        assert_eq!(act, CloseAct::Flush);
        assert_eq!(w.writer(), Writer::Thread);
        assert!(!w.kick_run(), "the late kick stays out");
        assert!(w.take_shutdown());
        // A thread writing: it shuts down when done.
        let mut w = q();
        w.writer = Writer::Thread;
        w.push(Message::from(&b"x"[..]));
        assert_eq!(w.close(Error::Closed).1, CloseAct::Deferred);
        let mut out = Vec::new();
        drain(&mut w, &mut out, |_| usize::MAX);
        assert!(w.take_shutdown());
        assert!(!w.take_shutdown());
        // A parked reactor writer is taken over; the reactor then finds the role gone.
        let mut w = q();
        w.writer = Writer::Reactor;
        w.push(Message::from(&b"x"[..]));
        assert_eq!(w.close(Error::Closed).1, CloseAct::Flush);
        assert!(!w.resume_reactor());
        // A failed write releases everything.
        let mut w = q();
        w.writer = Writer::Thread;
        w.push(Message::from(&b"x"[..]));
        w.park(3);
        assert_eq!(w.fail(Error::ConnShut), vec![3]);
        assert_eq!(w.unsent(), 0);
        assert_eq!(w.admit(64, Instant::now), Admit::Closed(Error::ConnShut));
    }
}
