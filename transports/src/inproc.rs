//! `inproc://`: in-process pipes with no syscalls and no copies.
//!
//! A pipe pair shares two rendezvous queues. A send completes only when a receiver takes
//! the message (no transport buffering); on handoff the header is pulled up into the
//! body, as NNG does, and the message is tagged with the receiving pipe. Names live in a
//! process-global registry: a second listener on a name gets `AddrInUse`, a dial with no
//! listener `ConnRefused`.

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

type Waiter = (usize, Aio, OpToken);

#[derive(Default)]
struct Queue {
    senders: VecDeque<Waiter>,
    receivers: VecDeque<(usize, Aio, OpToken, Pipe)>,
}

#[derive(Default)]
struct PairState {
    /// `q[i]`: messages travelling to side `i`.
    q: [Queue; 2],
    closed: bool,
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

/// Hands `msg` to receive `token` on `raio` as NNG's inproc does (header pulled up into
/// the body, tagged with the receiving pipe); on a lost race gives it back unchanged.
fn hand_over(
    mut msg: Message,
    raio: &Aio,
    rtoken: OpToken,
    rpipe: &Pipe,
) -> std::result::Result<(), Message> {
    let hlen = msg.header_len();
    let orig_pipe = msg.pipe();
    msg.pull_up_header();
    msg.set_pipe(Some(rpipe.clone()));
    match raio.finish_recv(rtoken, msg) {
        Ok(()) => Ok(()),
        Err(mut m) => {
            if hlen > 0 {
                let h: Vec<u8> = m.body()[..hlen].to_vec();
                let _ = m.trim(hlen);
                let _ = m.header_append(&h);
            }
            m.set_pipe(orig_pipe);
            Err(m)
        }
    }
}

impl Shared {
    fn close(&self) {
        let mut aios: Vec<(Aio, OpToken)> = Vec::new();
        {
            let mut st = lock(&self.st);
            st.closed = true;
            for q in &mut st.q {
                aios.extend(q.senders.drain(..).map(|w| (w.1, w.2)));
                aios.extend(q.receivers.drain(..).map(|w| (w.1, w.2)));
            }
        }
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
        if st.closed {
            drop(st);
            aio.finish(token, Err(Error::Closed), 0);
            return;
        }
        let q = &mut st.q[to];
        while let Some(r) = q.receivers.pop_front() {
            match aio.attempt_send(token, |m| {
                hand_over(m, &r.1, r.2, &r.3).map_err(|m| (m, None))
            }) {
                SendAttempt::Done => return,
                SendAttempt::Pending => continue, // that receiver was cancelled: try the next
                SendAttempt::Lost => {
                    q.receivers.push_front(r);
                    return;
                }
            }
        }
        q.senders.push_back((key, aio.provider_handle(), token));
    }

    fn recv(self: &Arc<Self>, at: usize, aio: &Aio, me: Pipe) {
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
        let q = &mut st.q[at];
        while let Some(s) = q.senders.pop_front() {
            let mut delivered = false;
            let r =
                s.1.attempt_send(s.2, |m| match hand_over(m, aio, token, &me) {
                    Ok(()) => {
                        delivered = true;
                        Ok(())
                    }
                    Err(m) => Err((m, None)),
                });
            match r {
                SendAttempt::Done if delivered => return,
                SendAttempt::Done | SendAttempt::Lost => continue, // that sender is gone
                SendAttempt::Pending => {
                    // Our own receive was cancelled meanwhile: the sender waits on.
                    q.senders.push_front(s);
                    return;
                }
            }
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
        engine_scope(|| self.shared.close());
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
