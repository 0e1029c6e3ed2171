//! Pipe events (`nng_pipe_notify`) and the pipe handle users see.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use nanoport_engine::{Pipe, PipeId, PipeOps, Result};
use nanoport_transports::BoxPipe;

use crate::endpoint::EndpointInner;

/// A pipe's life event (`nng_pipe_ev`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipeEvent {
    /// After the handshake, before the protocol sees the pipe (`NNG_PIPE_EV_ADD_PRE`).
    /// Closing the pipe here rejects it.
    AddPre,
    /// The protocol has the pipe (`NNG_PIPE_EV_ADD_POST`).
    AddPost,
    /// The pipe is gone (`NNG_PIPE_EV_REM_POST`).
    RemPost,
}

type NotifyFn = Arc<dyn Fn(Pipe, PipeEvent) + Send + Sync>;

/// The three callbacks of one socket.
#[derive(Default)]
pub(crate) struct PipeNotify {
    slots: Mutex<[Option<NotifyFn>; 3]>,
}

/// NNG runs all pipe callbacks of the process one at a time; so do we, so a callback never
/// races another one about the same pipe.
static SERIAL: Mutex<()> = Mutex::new(());

impl PipeNotify {
    pub(crate) fn set(&self, ev: PipeEvent, cb: NotifyFn) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())[ev as usize] = Some(cb);
    }

    pub(crate) fn fire(&self, pipe: &Pipe, ev: PipeEvent) {
        let cb = self.slots.lock().unwrap_or_else(|e| e.into_inner())[ev as usize].clone();
        if let Some(cb) = cb {
            let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(p) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(pipe.clone(), ev)))
            {
                drop(p);
                eprintln!("nanoport: a pipe_notify callback panicked");
            }
        }
    }
}

/// The socket's view of one transport pipe: what `pipe_notify` callbacks get.
pub(crate) struct SocketPipe {
    tp: BoxPipe,
    owner: Option<Weak<EndpointInner>>,
    closed: AtomicBool,
    socket_id: u32,
}

impl SocketPipe {
    pub(crate) fn new(
        tp: BoxPipe,
        owner: Option<Weak<EndpointInner>>,
        socket_id: u32,
    ) -> SocketPipe {
        SocketPipe {
            tp,
            owner,
            closed: AtomicBool::new(false),
            socket_id,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn owner(&self) -> Option<Arc<EndpointInner>> {
        self.owner.as_ref().and_then(Weak::upgrade)
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
