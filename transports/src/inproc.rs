//! `inproc://`: in-process pipes with no syscalls and no copies.
//!
//! A pipe pair shares two queues, one per direction. A send completes once its queue
//! accepts the message: handed straight to a waiting receive, or held for the reader
//! while the queue holds less than [`INPROC_BUF`] bytes (the part a kernel socket buffer
//! plays for tcp and ipc); beyond that sends wait. Messages move, never copied. On
//! delivery the message is tagged with the receiving pipe; its header stays where the
//! sender put it, where NNG would move it to the front of the body (see `as_received`).
//! When one side closes, what it sent before stays readable by the other side, which then
//! gets `Closed`. Names live in a process-global registry: a second listener on a name
//! gets `AddrInUse`, a dial with no listener `ConnRefused`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{fence, AtomicU8, AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use nanoport_engine::{
    engine_scope, Aio, Cancel, CancelHook, Error, Message, OpToken, Pipe, PipeId, PipeOps, Result,
    SendAttempt, Timeout,
};

use crate::{BoxPipe, TransportPipe};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

static KEYS: AtomicUsize = AtomicUsize::new(1);
fn next_key() -> usize {
    KEYS.fetch_add(1, Ordering::Relaxed)
}

fn registry() -> &'static Mutex<HashMap<String, Weak<Listener>>> {
    static R: OnceLock<Mutex<HashMap<String, Weak<Listener>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A pipe whose connection is gone (a stand-in handle).
pub(crate) struct DeadPipe(pub PipeId, pub u16);
impl PipeOps for DeadPipe {
    fn id(&self) -> PipeId {
        self.0
    }
    fn close(&self) {}
    fn option(&self, _: &str) -> Result<String> {
        Err(Error::Closed)
    }
    fn peer_protocol(&self) -> u16 {
        self.1
    }
}

// ----- the pipe pair -------------------------------------------------------------------------

/// Bytes one direction of a pipe holds for its reader before further sends wait (each
/// message counted with [`INPROC_MSG_OVERHEAD`]); one larger message is always taken
/// when nothing is held.
///
/// Why a buffer at all: with a bare rendezvous every message of a stream costs a wake-up
/// of the reader and then of the writer (about 45 thousand messages a second on two
/// CPUs), where tcp and ipc have the kernel's socket buffer between the two threads. This
/// is that buffer: the writer runs ahead while the reader sleeps, and the reader then
/// takes everything held without a wake-up per message. The bound is the one a stream
/// pipe's write buffer has (128 KiB), so backpressure sets in as it does there.
pub const INPROC_BUF: usize = 128 * 1024;

/// Held bytes at or below which waiting sends are let in (see `Shared::after_take`).
const ADMIT_AT: usize = INPROC_BUF / 2;

/// Slots of a direction's lock-free ring (see [`Lane`]); messages past it wait in the
/// locked overflow queue. 128 slots of a `Message` are about 12 KiB, made on a
/// direction's first send, so a pipe that never carries a stream costs little, and a
/// reader that falls behind takes the lock once per ring-full, not per message.
const RING: usize = 128;

type Waiter = (usize, Aio, OpToken);

/// What a held message costs beyond its bytes: its slot in the queue and its body's two
/// heap blocks (an `Arc`'d vector). Counting it bounds a queue of tiny messages by memory
/// too: at 12 bytes each, payload alone would let 10,000 of them (2 MiB) pile up.
pub const INPROC_MSG_OVERHEAD: usize = std::mem::size_of::<Message>() + 64;

/// What a held message counts against [`INPROC_BUF`].
fn held_size(m: &Message) -> usize {
    m.len() + m.header_len() + INPROC_MSG_OVERHEAD
}

// Bits of `Lane::state`: each says the fast paths must take the lock. Set and cleared
// only with `Shared::st` locked, always in step with the locked state they summarise.
/// Receives wait (`Queue::receivers` is not empty): a send must hand over to them.
const RECV_WAITING: u8 = 1;
/// Sends wait (`Queue::senders` is not empty): a send must queue behind them, and a take
/// that brings the held bytes to [`ADMIT_AT`] lets them in.
const SEND_WAITING: u8 = 2;
/// Messages wait in `Queue::overflow` (the ring was full): they are newer than all in the
/// ring, so sends go behind them, and a reader that empties the ring refills it from them.
const OVERFLOW: u8 = 4;
/// A receive that lost its race with a cancel gave its message back (`Queue::returned`):
/// it is the oldest, taken before the ring.
const RETURNED: u8 = 8;

/// One direction of a pipe pair: what the fast paths touch without the lock.
///
/// The hand-off of a message is a push into and a pop from a bounded lock-free ring
/// (crossbeam's `ArrayQueue`), with the held bytes counted in an atomic; the pair's mutex
/// is taken only when `state` says someone waits or overflowed, or a side closed. Where
/// a fast path races with a waiter's registration (a send pushes while a receive decides
/// to wait; a receive takes while a send decides to wait), each side writes its own word
/// and then reads the other's, all `SeqCst`, so at least one of them sees the other and
/// takes the lock to finish the hand-off.
///
/// Why not a `Mutex<VecDeque>` per direction, as before: the writer and the reader run
/// on different threads, and a shared mutex bounces its line and the queue's between the
/// two CPUs twice per message, and parks one of them whenever they meet.
#[derive(Default)]
struct Lane {
    ring: OnceLock<ArrayQueue<Message>>,
    /// Bytes held (ring, overflow and a returned message), by [`held_size`]; written by
    /// the writer (up) and the reader (down) on every message, so padded to its own line.
    held_bytes: CachePadded<AtomicUsize>,
    /// `RECV_WAITING | SEND_WAITING | OVERFLOW | RETURNED`.
    state: CachePadded<AtomicU8>,
}

impl Lane {
    fn ring(&self) -> &ArrayQueue<Message> {
        self.ring.get_or_init(|| ArrayQueue::new(RING))
    }

    /// Counts `size` bytes in if they fit the bound: always when nothing is held.
    fn reserve(&self, size: usize) -> bool {
        let mut cur = self.held_bytes.load(Ordering::SeqCst);
        loop {
            if cur != 0 && cur + size > INPROC_BUF {
                return false;
            }
            match self.held_bytes.compare_exchange_weak(
                cur,
                cur + size,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    fn release(&self, size: usize) -> usize {
        self.held_bytes.fetch_sub(size, Ordering::SeqCst) - size
    }

    fn set(&self, bit: u8, on: bool) {
        if on {
            self.state.fetch_or(bit, Ordering::SeqCst);
        } else {
            self.state.fetch_and(!bit, Ordering::SeqCst);
        }
    }

    fn has(&self, bits: u8) -> bool {
        self.state.load(Ordering::SeqCst) & bits != 0
    }
}

/// One direction's locked part.
#[derive(Default)]
struct Queue {
    /// A message a lost receive gave back: the oldest held ([`RETURNED`]).
    returned: Option<Message>,
    /// Held messages that found the ring full, oldest first ([`OVERFLOW`]).
    overflow: VecDeque<Message>,
    /// Sends waiting for room; never non-empty while nothing is held.
    senders: VecDeque<Waiter>,
    /// Receives waiting for a message; never non-empty while something is held.
    receivers: VecDeque<(usize, Aio, OpToken, Pipe)>,
}

#[derive(Default)]
struct PairState {
    /// `q[i]`: messages travelling to side `i`.
    q: [Queue; 2],
}

/// Bit `1 << i` of `Shared::closed`: side `i` closed its end. Either ends the connection;
/// what side `i` sent before the other side closed stays readable by the other side.
fn side_bit(side: usize) -> u8 {
    1 << side
}

#[derive(Default)]
struct Shared {
    /// `lanes[i]`: the fast part of the direction towards side `i`.
    lanes: [Lane; 2],
    /// Closed sides (`side_bit`); set with `st` locked, read by the fast paths.
    closed: AtomicU8,
    st: Mutex<PairState>,
}

impl Cancel for Shared {
    fn cancelled(&self, _: &Aio, key: usize, _: OpToken) {
        let mut st = lock(&self.st);
        for (q, lane) in st.q.iter_mut().zip(&self.lanes) {
            q.senders.retain(|w| w.0 != key);
            q.receivers.retain(|w| w.0 != key);
            lane.set(SEND_WAITING, !q.senders.is_empty());
            lane.set(RECV_WAITING, !q.receivers.is_empty());
        }
    }
}

/// Makes `msg` what a receiver gets: the sender's message as it is, header included,
/// tagged with the receiving pipe.
///
/// NNG's inproc moves the header to the front of the body, the bytes a stream transport
/// delivers. Here the receiving protocol reads the header where it is (its parsers read
/// a message's header, then its body, as one stream), because that move copies a body
/// shared with a clone (the body is copy-on-write): 64 KiB per message for a user who
/// sends clones of one large message.
fn as_received(mut msg: Message, rpipe: Pipe) -> Message {
    msg.set_pipe(Some(rpipe));
    msg
}

/// Hands `msg` to receive `token` on `raio` (see [`as_received`]); on a lost race gives it
/// back unchanged.
fn hand_over(
    msg: Message,
    raio: &Aio,
    rtoken: OpToken,
    rpipe: &Pipe,
) -> std::result::Result<(), Message> {
    let orig_pipe = msg.pipe();
    match raio.finish_recv(rtoken, as_received(msg, rpipe.clone())) {
        Ok(()) => Ok(()),
        Err(mut m) => {
            m.set_pipe(orig_pipe);
            Err(m)
        }
    }
}

impl Shared {
    fn is_closed(&self, side: usize) -> bool {
        self.closed.load(Ordering::SeqCst) & side_bit(side) != 0
    }

    fn any_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst) != 0
    }

    /// The fast send: into the ring, when nobody waits, nothing overflowed, no side closed
    /// and the bound has room. `Err` gives the message back for the locked path.
    fn fast_offer(&self, to: usize, msg: Message) -> std::result::Result<(), Message> {
        let lane = &self.lanes[to];
        if self.any_closed() || lane.state.load(Ordering::SeqCst) != 0 {
            return Err(msg);
        }
        let size = held_size(&msg);
        if !lane.reserve(size) {
            return Err(msg);
        }
        if let Err(m) = lane.ring().push(msg) {
            lane.release(size);
            return Err(m);
        }
        // Orders the push before the loads below (the receive's side is in `recv`).
        fence(Ordering::SeqCst);
        // A receive may have begun to wait, or the reader closed, since the check above:
        // then it did not see this message, so hand it over (or drop it) here.
        if lane.has(RECV_WAITING) || self.is_closed(to) {
            let dropped = {
                let mut st = lock(&self.st);
                self.settle(&mut st, to)
            };
            drop(dropped); // outside the lock: dropping messages may free pipes
        }
        Ok(())
    }

    /// With the lock: hands what is held towards `to` to waiting receives; if side `to`
    /// closed, empties its direction instead. Returns the messages to drop (after the
    /// lock is released).
    fn settle(&self, st: &mut PairState, to: usize) -> Vec<Message> {
        let lane = &self.lanes[to];
        let q = &mut st.q[to];
        if self.is_closed(to) {
            return Self::drain(q, lane);
        }
        'msgs: while !q.receivers.is_empty() {
            let Some(mut m) = Self::pop_locked(q, lane) else {
                break;
            };
            let size = held_size(&m);
            while let Some(r) = q.receivers.pop_front() {
                match hand_over(m, &r.1, r.2, &r.3) {
                    Ok(()) => {
                        lane.release(size);
                        continue 'msgs;
                    }
                    Err(back) => m = back, // that receive was cancelled: try the next
                }
            }
            q.returned = Some(m);
            lane.set(RETURNED, true);
        }
        lane.set(RECV_WAITING, !q.receivers.is_empty());
        Vec::new()
    }

    /// With the lock: everything held towards a closed side, its bytes uncounted.
    fn drain(q: &mut Queue, lane: &Lane) -> Vec<Message> {
        let mut out: Vec<Message> = q.returned.take().into_iter().collect();
        if let Some(ring) = lane.ring.get() {
            while let Some(m) = ring.pop() {
                out.push(m);
            }
        }
        out.extend(q.overflow.drain(..));
        for m in &out {
            lane.release(held_size(m));
        }
        lane.set(RETURNED | OVERFLOW, false);
        out
    }

    /// With the lock: the oldest held message (returned, ring, then overflow, refilling
    /// the ring from the overflow), still counted in the held bytes.
    fn pop_locked(q: &mut Queue, lane: &Lane) -> Option<Message> {
        if let Some(m) = q.returned.take() {
            lane.set(RETURNED, false);
            return Some(m);
        }
        let ring = lane.ring();
        if let Some(m) = ring.pop() {
            return Some(m);
        }
        Self::refill(q, lane);
        ring.pop()
    }

    /// With the lock: moves overflowed messages into the ring while it has room; clears
    /// [`OVERFLOW`] once none is left.
    fn refill(q: &mut Queue, lane: &Lane) {
        let ring = lane.ring();
        while let Some(m) = q.overflow.pop_front() {
            if let Err(m) = ring.push(m) {
                q.overflow.push_front(m);
                return;
            }
        }
        lane.set(OVERFLOW, false);
    }

    /// With the lock: accepts `msg` if the direction can take it now without overtaking
    /// a waiting send: straight to a waiting receive, else held if the bound has room.
    fn offer_locked(
        &self,
        st: &mut PairState,
        to: usize,
        mut msg: Message,
    ) -> std::result::Result<(), Message> {
        let lane = &self.lanes[to];
        let q = &mut st.q[to];
        while let Some(r) = q.receivers.pop_front() {
            match hand_over(msg, &r.1, r.2, &r.3) {
                Ok(()) => {
                    lane.set(RECV_WAITING, !q.receivers.is_empty());
                    return Ok(());
                }
                Err(m) => msg = m, // that receive was cancelled: try the next
            }
        }
        lane.set(RECV_WAITING, false);
        if !q.senders.is_empty() || !lane.reserve(held_size(&msg)) {
            return Err(msg);
        }
        Self::hold_locked(q, lane, msg);
        Ok(())
    }

    /// With the lock: puts an accepted (counted) message behind everything held.
    fn hold_locked(q: &mut Queue, lane: &Lane, msg: Message) {
        if !q.overflow.is_empty() {
            Self::refill(q, lane);
        }
        let msg = if q.overflow.is_empty() {
            match lane.ring().push(msg) {
                Ok(()) => return,
                Err(m) => m,
            }
        } else {
            msg
        };
        q.overflow.push_back(msg);
        lane.set(OVERFLOW, true);
    }

    /// After the reader took a message and the held bytes came down to `now`: once they
    /// are at [`ADMIT_AT`] or below, lets waiting sends in.
    ///
    /// Why not at once: a waiting send is the socket's pipe send, whose completion
    /// costs a callback; let in with room for one message only, it would fill the queue
    /// again with that one and wait again, so a stream would pay an aio per message.
    /// From half empty, the socket refills the queue through `try_send_now` instead.
    fn after_take(&self, at: usize, now: usize) {
        let lane = &self.lanes[at];
        if now <= ADMIT_AT && lane.has(SEND_WAITING) {
            let mut st = lock(&self.st);
            Self::admit_senders(&mut st.q[at], lane);
        }
    }

    /// With the lock: moves waiting sends into the held messages while there is room,
    /// completing each.
    fn admit_senders(q: &mut Queue, lane: &Lane) {
        while let Some(w) = q.senders.pop_front() {
            let r = w.1.attempt_send(w.2, |m| {
                if lane.reserve(held_size(&m)) {
                    Self::hold_locked(q, lane, m);
                    Ok(())
                } else {
                    Err((m, None))
                }
            });
            if r == SendAttempt::Pending {
                q.senders.push_front(w); // no room for it yet
                break;
            }
            // Done: its message is held. Lost: that send was cancelled or timed out.
        }
        lane.set(SEND_WAITING, !q.senders.is_empty());
    }

    /// Side `side` closes its end: every waiting operation fails with `Closed`, messages
    /// held for `side` are dropped, messages held for the other side stay readable.
    fn close(&self, side: usize) {
        let mut aios: Vec<(Aio, OpToken)> = Vec::new();
        let dropped;
        {
            let mut st = lock(&self.st);
            self.closed.fetch_or(side_bit(side), Ordering::SeqCst);
            // A send that pushed before seeing this drains its own (`fast_offer`).
            fence(Ordering::SeqCst);
            for (q, lane) in st.q.iter_mut().zip(&self.lanes) {
                aios.extend(q.senders.drain(..).map(|w| (w.1, w.2)));
                aios.extend(q.receivers.drain(..).map(|w| (w.1, w.2)));
                lane.set(SEND_WAITING | RECV_WAITING, false);
            }
            dropped = Self::drain(&mut st.q[side], &self.lanes[side]);
        }
        drop(dropped); // outside the lock: dropping messages may free pipes
        for (a, t) in aios {
            a.finish(t, Err(Error::Closed), 0);
        }
    }

    /// `try_send_now`: the fast path, else the locked one; `Err` when the direction
    /// cannot take it now (or a side closed: `send_aio` reports that).
    fn try_send(&self, to: usize, msg: Message) -> std::result::Result<(), Message> {
        let msg = match self.fast_offer(to, msg) {
            Ok(()) => return Ok(()),
            Err(m) => m,
        };
        let mut st = lock(&self.st);
        if self.any_closed() {
            return Err(msg);
        }
        self.offer_locked(&mut st, to, msg)
    }

    fn send(self: &Arc<Self>, to: usize, aio: &Aio) {
        let key = next_key();
        let Some(token) = aio.begin(Timeout::Infinite, Some(CancelHook::new(self.clone(), key)))
        else {
            return;
        };
        // No fast path here: the socket tried `try_send_now` first, and taking the lock
        // before the aio's keeps the one lock order (pair, then aio) everywhere.
        let mut st = lock(&self.st);
        if self.any_closed() {
            drop(st);
            aio.finish(token, Err(Error::Closed), 0);
            return;
        }
        let lane = &self.lanes[to];
        let r = aio.attempt_send(token, |m| {
            self.offer_locked(&mut st, to, m).map_err(|m| (m, None))
        });
        // Done: accepted. Lost: cancelled or timed out before we got to it.
        if r != SendAttempt::Pending {
            return;
        }
        // No room: wait until the reader's takes make some (`after_take`). A take that
        // emptied the direction before SEND_WAITING was set did not see this send, so
        // look again once it is set.
        let q = &mut st.q[to];
        q.senders.push_back((key, aio.provider_handle(), token));
        lane.set(SEND_WAITING, true);
        if lane.held_bytes.load(Ordering::SeqCst) <= ADMIT_AT {
            Self::admit_senders(q, lane);
        }
    }

    /// The oldest message held for side `at` (as sent: see [`as_received`]); lets waiting
    /// sends into the room it leaves.
    fn take_now(&self, at: usize) -> Option<Message> {
        if self.is_closed(at) {
            return None;
        }
        let lane = &self.lanes[at];
        let m = if lane.has(RETURNED | OVERFLOW) {
            let mut st = lock(&self.st);
            if self.is_closed(at) {
                return None;
            }
            Self::pop_locked(&mut st.q[at], lane)?
        } else {
            lane.ring.get()?.pop()?
        };
        let now = lane.release(held_size(&m));
        self.after_take(at, now);
        Some(m)
    }

    fn recv(self: &Arc<Self>, at: usize, aio: &Aio, me: Pipe) {
        let key = next_key();
        let Some(token) = aio.begin(Timeout::Infinite, Some(CancelHook::new(self.clone(), key)))
        else {
            return;
        };
        let lane = &self.lanes[at];
        let mut st = lock(&self.st);
        // A side that closed reads nothing; the other side drains what is held, and only
        // then sees the end.
        let i_closed = self.is_closed(at);
        let ended = self.any_closed();
        let q = &mut st.q[at];
        if !i_closed {
            // Waiting from here on: a send that pushes after our look below sees it.
            lane.set(RECV_WAITING, true);
            fence(Ordering::SeqCst);
            if let Some(m) = Self::pop_locked(q, lane) {
                lane.set(RECV_WAITING, !q.receivers.is_empty());
                let size = held_size(&m);
                match hand_over(m, aio, token, &me) {
                    Ok(()) => {
                        let now = lane.release(size);
                        if now <= ADMIT_AT && lane.has(SEND_WAITING) {
                            Self::admit_senders(q, lane);
                        }
                    }
                    Err(m) => {
                        // This receive lost a race with its cancel.
                        q.returned = Some(m);
                        lane.set(RETURNED, true);
                    }
                }
                return;
            }
        }
        if ended {
            lane.set(RECV_WAITING, !q.receivers.is_empty());
            drop(st);
            aio.finish(token, Err(Error::Closed), 0);
            return;
        }
        q.receivers
            .push_back((key, aio.provider_handle(), token, me));
    }
}

/// One end of an inproc connection.
struct InprocPipe {
    id: PipeId,
    side: usize,
    peer: u16,
    name: String,
    shared: Arc<Shared>,
    me: Weak<InprocPipe>,
}

impl PipeOps for InprocPipe {
    fn id(&self) -> PipeId {
        self.id
    }
    fn close(&self) {
        engine_scope(|| self.shared.close(self.side));
    }
    fn option(&self, name: &str) -> Result<String> {
        match name {
            "remote-address" | "local-address" => Ok(format!("inproc://{}", self.name)),
            _ => Err(Error::NotSup),
        }
    }
    fn peer_protocol(&self) -> u16 {
        self.peer
    }
}

impl TransportPipe for InprocPipe {
    fn send_aio(&self, aio: &Aio) {
        engine_scope(|| self.shared.send(1 - self.side, aio));
    }
    fn recv_aio(&self, aio: &Aio) {
        let me = self.pipe();
        engine_scope(|| self.shared.recv(self.side, aio, me));
    }
    fn try_send_now(&self, msg: Message) -> std::result::Result<(), Message> {
        engine_scope(|| {
            // Refused when closed too: `send_aio` reports that.
            self.shared.try_send(1 - self.side, msg)
        })
    }
    fn try_recv_now(&self) -> Option<Message> {
        engine_scope(|| self.shared.take_now(self.side)).map(|m| as_received(m, self.pipe()))
    }
    fn pipe(&self) -> Pipe {
        match self.me.upgrade() {
            Some(p) => Pipe::new(p),
            None => Pipe::new(Arc::new(DeadPipe(self.id, self.peer))),
        }
    }
}

fn pair(name: &str, dialer_proto: u16, listener_proto: u16) -> (BoxPipe, BoxPipe) {
    let shared = Arc::new(Shared::default());
    let mk = |side: usize, peer: u16| -> BoxPipe {
        Arc::new_cyclic(|me| InprocPipe {
            id: crate::next_pipe_id(),
            side,
            peer,
            name: name.to_string(),
            shared: shared.clone(),
            me: me.clone(),
        })
    };
    (mk(0, listener_proto), mk(1, dialer_proto))
}

// ----- endpoints -----------------------------------------------------------------------------

struct LState {
    ready: VecDeque<BoxPipe>,
    waiters: VecDeque<Waiter>,
    closed: bool,
}

/// An inproc listener: owns its name in the registry until closed.
pub(crate) struct Listener {
    name: String,
    proto: u16,
    st: Mutex<LState>,
}

impl Listener {
    pub(crate) fn bind(name: &str, proto: u16) -> Result<Arc<Listener>> {
        let mut reg = lock(registry());
        if reg
            .get(name)
            .and_then(|w| w.upgrade())
            .is_some_and(|l| !lock(&l.st).closed)
        {
            return Err(Error::AddrInUse);
        }
        let l = Arc::new(Listener {
            name: name.to_string(),
            proto,
            st: Mutex::new(LState {
                ready: VecDeque::new(),
                waiters: VecDeque::new(),
                closed: false,
            }),
        });
        reg.insert(name.to_string(), Arc::downgrade(&l));
        Ok(l)
    }

    pub(crate) fn accept_aio(self: &Arc<Self>, aio: &Aio) {
        let key = next_key();
        let Some(token) = aio.begin(Timeout::Infinite, Some(CancelHook::new(self.clone(), key)))
        else {
            return;
        };
        let mut st = lock(&self.st);
        if st.closed {
            drop(st);
            aio.finish(token, Err(Error::Closed), 0);
            return;
        }
        if let Some(p) = st.ready.pop_front() {
            if let Err(p) = aio.finish_output(token, p) {
                st.ready.push_front(p);
            }
            return;
        }
        st.waiters.push_back((key, aio.provider_handle(), token));
    }

    /// Offers a new connection; `Err` if the listener is closed.
    fn deliver(&self, mut p: BoxPipe) -> std::result::Result<(), BoxPipe> {
        let mut st = lock(&self.st);
        if st.closed {
            return Err(p);
        }
        while let Some((_, a, t)) = st.waiters.pop_front() {
            match a.finish_output(t, p) {
                Ok(()) => return Ok(()),
                Err(back) => p = back,
            }
        }
        st.ready.push_back(p);
        Ok(())
    }

    pub(crate) fn close(&self) {
        let (ready, waiters) = {
            let mut st = lock(&self.st);
            if st.closed {
                return;
            }
            st.closed = true;
            (
                std::mem::take(&mut st.ready),
                std::mem::take(&mut st.waiters),
            )
        };
        {
            let mut reg = lock(registry());
            if reg
                .get(&self.name)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
            {
                reg.remove(&self.name);
            }
        }
        for p in ready {
            p.close();
        }
        for (_, a, t) in waiters {
            a.finish(t, Err(Error::Closed), 0);
        }
    }
}

impl Cancel for Listener {
    fn cancelled(&self, _: &Aio, key: usize, _: OpToken) {
        lock(&self.st).waiters.retain(|w| w.0 != key);
    }
}

/// An inproc dialer: connects at once or fails with `ConnRefused`.
pub(crate) struct Dialer {
    name: String,
    proto: u16,
    closed: std::sync::atomic::AtomicBool,
}

impl Dialer {
    pub(crate) fn new(name: &str, proto: u16) -> Dialer {
        Dialer {
            name: name.to_string(),
            proto,
            closed: false.into(),
        }
    }

    pub(crate) fn dial_aio(&self, aio: &Aio) {
        let Some(token) = aio.begin(Timeout::Infinite, None) else {
            return;
        };
        if self.closed.load(Ordering::Acquire) {
            aio.finish(token, Err(Error::Closed), 0);
            return;
        }
        let l = lock(registry()).get(&self.name).and_then(|w| w.upgrade());
        let Some(l) = l else {
            aio.finish(token, Err(Error::ConnRefused), 0);
            return;
        };
        let (mine, theirs) = pair(&self.name, self.proto, l.proto);
        if let Err(theirs) = l.deliver(theirs) {
            theirs.close();
            aio.finish(token, Err(Error::ConnRefused), 0);
            return;
        }
        if let Err(mine) = aio.finish_output(token, mine) {
            mine.close();
        }
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}
