//! Pipe events (`nng_pipe_notify`) and the pipe handle users see.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::{self, ThreadId};

use nanoport_engine::{IdMap, Pipe, PipeId, PipeOps, Result};
use nanoport_transports::BoxPipe;

use crate::endpoint::EndpointInner;
use crate::socket::SocketInner;

/// A pipe's life event (`nng_pipe_ev`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipeEvent {
    /// After the handshake, before the protocol sees the pipe (`NNG_PIPE_EV_ADD_PRE`).
    /// Closing the pipe here rejects it: it gets neither `AddPost` nor `RemPost`.
    AddPre,
    /// The protocol has the pipe (`NNG_PIPE_EV_ADD_POST`).
    AddPost,
    /// The pipe is gone (`NNG_PIPE_EV_REM_POST`); only for pipes that had `AddPost`.
    RemPost,
}

type NotifyFn = Arc<dyn Fn(Pipe, PipeEvent) + Send + Sync>;

/// What a socket's pipe-event queue runs, in order.
pub(crate) enum NotifyItem {
    /// Call the callback registered for the event, if any.
    Event(Pipe, PipeEvent),
    /// Socket plumbing that must run in order with the events (attaching a pipe: its
    /// `AddPre`, the protocol taking it, its `AddPost`).
    Task(Box<dyn FnOnce() + Send>),
}

/// One socket's pipe callbacks and the queue that runs them.
///
/// User callbacks never run on the reactor thread or inside an engine scope: events are
/// queued and one thread at a time drains the queue (a worker, or a thread that asked to
/// help), so a callback that blocks, or closes its own socket, holds up that socket's
/// pipe events and nothing else. NNG also runs one socket's pipe callbacks one at a time,
/// in order; the queue keeps an `AddPost` ahead of the same pipe's `RemPost`.
#[derive(Default)]
pub(crate) struct PipeNotify {
    slots: Mutex<[Option<NotifyFn>; 3]>,
    /// Some callback was ever registered: until then pipes attach without the queue.
    active: AtomicBool,
    queue: Mutex<NotifyQueue>,
}

#[derive(Default)]
struct NotifyQueue {
    items: VecDeque<NotifyItem>,
    /// The thread draining the queue now, if any.
    drainer: Option<ThreadId>,
    /// A worker job to drain it has been asked for and has not started yet.
    scheduled: bool,
}

impl PipeNotify {
    pub(crate) fn set(&self, ev: PipeEvent, cb: NotifyFn) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())[ev as usize] = Some(cb);
        self.active.store(true, Ordering::Release);
    }

    /// Whether pipe events go through the queue (some callback was registered).
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    fn lock_queue(&self) -> MutexGuard<'_, NotifyQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item`. With `help`, a caller that may block (a user thread outside any
    /// engine scope) drains the queue itself when nobody else is, so what it queued has
    /// run when it returns; otherwise a worker drains it. Never waits for a drainer.
    pub(crate) fn post(self: &Arc<Self>, item: NotifyItem, help: bool) {
        let mut q = self.lock_queue();
        q.items.push_back(item);
        if q.drainer.is_some() || q.scheduled {
            return;
        }
        if help {
            drop(q);
            self.drain();
        } else {
            q.scheduled = true;
            drop(q);
            let me = self.clone();
            nanoport_engine::spawn(move || me.drain());
        }
    }

    /// Runs queued items in order until the queue is empty.
    fn drain(&self) {
        let me = thread::current().id();
        {
            let mut q = self.lock_queue();
            if q.drainer.is_some() {
                return;
            }
            q.drainer = Some(me);
            q.scheduled = false;
        }
        loop {
            let item = {
                let mut q = self.lock_queue();
                match q.items.pop_front() {
                    Some(item) => item,
                    None => {
                        q.drainer = None;
                        return;
                    }
                }
            };
            match item {
                NotifyItem::Event(pipe, ev) => self.call(&pipe, ev),
                NotifyItem::Task(task) => {
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).is_err() {
                        eprintln!("nanoport: attaching a pipe panicked");
                    }
                }
            }
        }
    }

    /// Calls the callback for `ev` on this thread (the drainer's).
    pub(crate) fn call(&self, pipe: &Pipe, ev: PipeEvent) {
        let cb = self.slots.lock().unwrap_or_else(|e| e.into_inner())[ev as usize].clone();
        if let Some(cb) = cb {
            if let Err(p) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(pipe.clone(), ev)))
            {
                drop(p);
                eprintln!("nanoport: a pipe_notify callback panicked");
            }
        }
    }
}

/// The socket's view of one transport pipe: what `pipe_notify` callbacks get, and what
/// [`PipeExt`](crate::PipeExt) finds by pipe id.
pub(crate) struct SocketPipe {
    tp: BoxPipe,
    owner: Option<Weak<EndpointInner>>,
    closed: AtomicBool,
    socket_id: u32,
    sock: Weak<SocketInner>,
}

/// Every pipe some socket has vetted, by id, as NNG keeps its pipes in an id map so that
/// `nng_pipe_socket` and friends work from the id alone. Touched once when a pipe arrives
/// and once when its handle goes, never per message.
fn registry() -> MutexGuard<'static, IdMap<PipeId, Weak<SocketPipe>>> {
    static PIPES: std::sync::OnceLock<Mutex<IdMap<PipeId, Weak<SocketPipe>>>> =
        std::sync::OnceLock::new();
    PIPES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

impl SocketPipe {
    /// A socket's handle on `tp`, findable by its id until the handle is dropped.
    pub(crate) fn register(
        tp: BoxPipe,
        owner: Option<Weak<EndpointInner>>,
        sock: &Arc<SocketInner>,
    ) -> Arc<SocketPipe> {
        let handle = Arc::new(SocketPipe {
            tp,
            owner,
            closed: AtomicBool::new(false),
            socket_id: sock.id,
            sock: Arc::downgrade(sock),
        });
        registry().insert(handle.tp.id(), Arc::downgrade(&handle));
        handle
    }

    /// The handle of pipe `id`, while some socket holds it.
    pub(crate) fn find(id: PipeId) -> Option<Arc<SocketPipe>> {
        registry().get(&id).and_then(Weak::upgrade)
    }

    /// The socket the pipe belongs to, while it exists.
    pub(crate) fn socket(&self) -> Option<Arc<SocketInner>> {
        self.sock.upgrade()
    }

    /// The transport pipe.
    pub(crate) fn transport(&self) -> &BoxPipe {
        &self.tp
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn owner(&self) -> Option<Arc<EndpointInner>> {
        self.owner.as_ref().and_then(Weak::upgrade)
    }
}

impl Drop for SocketPipe {
    fn drop(&mut self) {
        let mut pipes = registry();
        // Only this handle's entry: ids are not reused while one is registered, but a
        // stale entry must not remove a newer one.
        if pipes
            .get(&self.tp.id())
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
        {
            pipes.remove(&self.tp.id());
        }
    }
}

impl PipeOps for SocketPipe {
    fn id(&self) -> PipeId {
        self.tp.id()
    }
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.tp.close();
    }
    fn option(&self, name: &str) -> Result<String> {
        match name {
            "socket" => Ok(self.socket_id.to_string()),
            _ => self.tp.option(name),
        }
    }
    fn peer_protocol(&self) -> u16 {
        self.tp.peer_protocol()
    }
}
