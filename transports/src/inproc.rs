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

use nanoport_engine::AioProvider;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Held bytes at or below which waiting sends are let in (see `Queue::after_take`).
const ADMIT_AT: usize = INPROC_BUF / 2;

type Waiter = (usize, Aio, OpToken);

/// What a held message costs beyond its bytes: its slot in the queue and its body's two
/// heap blocks (an `Arc`'d vector). Counting it bounds a queue of tiny messages by memory
/// too: at 12 bytes each, payload alone would let 10,000 of them (2 MiB) pile up.
pub const INPROC_MSG_OVERHEAD: usize = std::mem::size_of::<Message>() + 64;

/// What a held message counts against [`INPROC_BUF`].
fn held_size(m: &Message) -> usize {
    m.len() + m.header_len() + INPROC_MSG_OVERHEAD
}

/// One direction of a pipe pair.
#[derive(Default)]
struct Queue {
    /// Messages accepted for the reader, oldest first.
    held: VecDeque<Message>,
    held_bytes: usize,
    /// Sends waiting for room; never non-empty while `held` is empty.
    senders: VecDeque<Waiter>,
    /// Receives waiting for a message; never non-empty while `held` is not.
    receivers: VecDeque<(usize, Aio, OpToken, Pipe)>,
}

impl Queue {
    fn has_room(&self, size: usize) -> bool {
        self.held_bytes == 0 || self.held_bytes + size <= INPROC_BUF
    }

    fn hold(&mut self, m: Message) {
        self.held_bytes += held_size(&m);
        self.held.push_back(m);
    }

    fn take_held(&mut self) -> Option<Message> {
        let m = self.held.pop_front()?;
        self.held_bytes -= held_size(&m);
        Some(m)
    }

    /// Gives back a message [`take_held`](Queue::take_held) took, at the front.
    fn unhold(&mut self, m: Message) {
        self.held_bytes += held_size(&m);
        self.held.push_front(m);
    }

    /// Accepts `msg` if the queue can take it now without overtaking a waiting send:
    /// straight to a waiting receive, else into `held` if there is room.
    fn offer(&mut self, mut msg: Message) -> std::result::Result<(), Message> {
        while let Some(r) = self.receivers.pop_front() {
            match hand_over(msg, &r.1, r.2, &r.3) {
                Ok(()) => return Ok(()),
                Err(m) => msg = m, // that receive was cancelled: try the next
            }
        }
        if self.senders.is_empty() && self.has_room(held_size(&msg)) {
            self.hold(msg);
            return Ok(());
        }
        Err(msg)
    }

    /// After the reader took a message: once `held` is down to [`ADMIT_AT`] bytes, lets
    /// waiting sends in.
    ///
    /// Why not at once: a waiting send is the socket's pipe send, whose completion
    /// costs a callback; let in with room for one message only, it would fill the queue
    /// again with that one and wait again, so a stream would pay an aio per message.
    /// From half empty, the socket refills the queue through `try_send_now` instead.
    fn after_take(&mut self) {
        if !self.senders.is_empty() && self.held_bytes <= ADMIT_AT {
            self.admit_senders();
        }
    }

    /// Moves waiting sends into `held` while there is room, completing each.
    fn admit_senders(&mut self) {
        while let Some(w) = self.senders.pop_front() {
            let r = w.1.attempt_send(w.2, |m| {
                if self.has_room(held_size(&m)) {
                    self.hold(m);
                    Ok(())
                } else {
                    Err((m, None))
                }
            });
            if r == SendAttempt::Pending {
                self.senders.push_front(w); // no room for it yet
                return;
            }
            // Done: its message is held. Lost: that send was cancelled or timed out.
        }
    }
}

#[derive(Default)]
struct PairState {
    /// `q[i]`: messages travelling to side `i`.
    q: [Queue; 2],
    /// `closed[i]`: side `i` closed its end. Either ends the connection; what side `i`
    /// sent before the other side closed stays readable by the other side.
    closed: [bool; 2],
}

impl PairState {
    fn any_closed(&self) -> bool {
        self.closed[0] || self.closed[1]
    }
}

#[derive(Default)]
struct Shared {
    st: Mutex<PairState>,
}

impl Cancel for Shared {
    fn cancelled(&self, _: &Aio, key: usize, _: OpToken) {
        let mut st = lock(&self.st);
        for q in &mut st.q {
            q.senders.retain(|w| w.0 != key);
            q.receivers.retain(|w| w.0 != key);
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
    /// Side `side` closes its end: every waiting operation fails with `Closed`, messages
    /// held for `side` are dropped, messages held for the other side stay readable.
    fn close(&self, side: usize) {
        let mut aios: Vec<(Aio, OpToken)> = Vec::new();
        let dropped;
        {
            let mut st = lock(&self.st);
            st.closed[side] = true;
            for q in &mut st.q {
                aios.extend(q.senders.drain(..).map(|w| (w.1, w.2)));
                aios.extend(q.receivers.drain(..).map(|w| (w.1, w.2)));
            }
            let q = &mut st.q[side];
            q.held_bytes = 0;
            dropped = std::mem::take(&mut q.held);
        }
        drop(dropped); // outside the lock: dropping messages may free pipes
        for (a, t) in aios {
            a.finish(t, Err(Error::Closed), 0);
        }
    }

    fn send(self: &Arc<Self>, to: usize, aio: &Aio) {
        let key = next_key();
        let Some(token) = aio.begin(Timeout::Infinite, Some(CancelHook::new(self.clone(), key)))
        else {
            return;
        };
        let mut st = lock(&self.st);
        if st.any_closed() {
            drop(st);
            aio.finish(token, Err(Error::Closed), 0);
            return;
        }
        let q = &mut st.q[to];
        if aio.attempt_send(token, |m| q.offer(m).map_err(|m| (m, None))) == SendAttempt::Pending {
            // No room: wait until the reader's takes make some (`admit_senders`).
            q.senders.push_back((key, aio.provider_handle(), token));
        }
        // Done: accepted. Lost: cancelled or timed out before we got to it.
    }

    /// The oldest message held for side `at` (as sent: see [`as_received`]); lets waiting
    /// sends into the room it leaves.
    fn take_now(&self, at: usize) -> Option<Message> {
        let mut st = lock(&self.st);
        if st.closed[at] {
            return None;
        }
        let q = &mut st.q[at];
        let m = q.take_held()?;
        q.after_take();
        Some(m)
    }

    fn recv(self: &Arc<Self>, at: usize, aio: &Aio, me: Pipe) {
        let key = next_key();
        let Some(token) = aio.begin(Timeout::Infinite, Some(CancelHook::new(self.clone(), key)))
        else {
            return;
        };
        let mut st = lock(&self.st);
        // A side that closed reads nothing; the other side drains what is held, and only
        // then sees the end.
        let i_closed = st.closed[at];
        let ended = st.any_closed();
        let q = &mut st.q[at];
        if !i_closed {
            if let Some(m) = q.take_held() {
                match hand_over(m, aio, token, &me) {
                    Ok(()) => q.after_take(),
                    Err(m) => q.unhold(m), // this receive lost a race with its cancel
                }
                return;
            }
        }
        if ended {
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
            let mut st = lock(&self.shared.st);
            if st.any_closed() {
                return Err(msg); // `send_aio` reports it
            }
            st.q[1 - self.side].offer(msg)
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
