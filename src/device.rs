//! [`device`]: forwarding between two raw sockets (`nng_device`).

use nanoport_engine::AioProvider;
use std::sync::{Arc, Condvar, Mutex};

use nanoport_engine::{Aio, Error, Result};

use crate::Socket;

/// Forwards messages between two raw sockets in both directions until one of them closes
/// (`nng_device`). Both must be raw and each must be the other's peer protocol (or the
/// same socket twice, for pair and bus: a reflector). Forwarding is best effort: a message
/// the other side cannot take is dropped. Hop counts in the protocol headers (the TTL)
/// stop a message that goes round a loop of devices.
///
/// # Errors
/// `Inval` when the sockets are not raw or do not peer; otherwise the error that stopped
/// forwarding (normally `Closed`).
///
/// # Examples
///
/// ```no_run
/// use nanoport::{device, Protocol, Socket};
/// let front = Socket::open_raw(Protocol::Rep0).unwrap();
/// let back = Socket::open_raw(Protocol::Req0).unwrap();
/// front.listen("tcp://127.0.0.1:5555").unwrap();
/// back.listen("tcp://127.0.0.1:5556").unwrap();
/// device(&front, &back).unwrap(); // blocks until a socket closes
/// ```
pub fn device(a: &Socket, b: &Socket) -> Result<()> {
    let (ia, ib) = (a.info(), b.info());
    if !ia.raw || !ib.raw {
        return Err(Error::Inval);
    }
    let reflector = a == b;
    if !reflector && (ia.peer_id != ib.id || ib.peer_id != ia.id) {
        return Err(Error::Inval);
    }
    if reflector && ia.peer_id != ia.id {
        return Err(Error::Inval);
    }
    let done = Arc::new((Mutex::new((0usize, None::<Error>)), Condvar::new()));
    let mut forwarders = Vec::new();
    if ia.can_recv && ib.can_send {
        forwarders.push(Forwarder::start(a.clone(), b.clone(), done.clone())?);
    }
    if !reflector && ib.can_recv && ia.can_send {
        forwarders.push(Forwarder::start(b.clone(), a.clone(), done.clone())?);
    }
    let (lock, cv) = &*done;
    let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
    while st.0 == 0 {
        st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
    }
    let err = st.1.unwrap_or(Error::Closed);
    drop(st);
    drop(forwarders);
    Err(err)
}

type Done = Arc<(Mutex<(usize, Option<Error>)>, Condvar)>;

/// One direction: receive on `from`, send on `to`, repeat. Two aios, no thread.
struct Forwarder {
    recv: Aio,
    send: Aio,
    /// Each aio's callback reaches the other aio through these; cleared on drop to break
    /// the cycle.
    slots: [Arc<Mutex<Option<Aio>>>; 2],
}

impl Forwarder {
    fn start(from: Socket, to: Socket, done: Done) -> Result<Forwarder> {
        let stop = move |done: &Done, e: Error| {
            let (lock, cv) = &**done;
            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
            st.0 += 1;
            st.1.get_or_insert(e);
            cv.notify_all();
        };
        let send_slot: Arc<Mutex<Option<Aio>>> = Arc::new(Mutex::new(None));
        let recv_slot: Arc<Mutex<Option<Aio>>> = Arc::new(Mutex::new(None));
        let (from2, to2, done2, send_slot2, recv_slot2) = (
            from.clone(),
            to.clone(),
            done.clone(),
            send_slot.clone(),
            recv_slot.clone(),
        );
        let recv = Aio::new(move |aio: &Aio| match aio.result() {
            Ok(()) => {
                let Some(m) = aio.take_msg() else { return };
                let guard = send_slot2.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(s) = guard.as_ref() {
                    s.set_msg(m);
                    to2.send_aio(s);
                }
            }
            Err(e) => stop(&done2, e),
        })?;
        let send = Aio::new(move |aio: &Aio| {
            if aio.result().is_err() {
                // Best effort: drop what the other side would not take.
                drop(aio.take_msg());
                if aio.result() == Err(Error::Closed) {
                    stop(&done, Error::Closed);
                    return;
                }
            }
            let guard = recv_slot2.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = guard.as_ref() {
                from2.recv_aio(r);
            }
        })?;
        *send_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(send.provider_handle());
        *recv_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(recv.provider_handle());
        from.recv_aio(&recv);
        Ok(Forwarder {
            recv,
            send,
            slots: [send_slot, recv_slot],
        })
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.recv.stop();
        self.send.stop();
        for slot in &self.slots {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}
