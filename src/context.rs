//! [`Context`]: an independent protocol state on a socket (`nng_ctx`).

use std::fmt;
use std::sync::Arc;

use nanoport_engine::{Aio, Message, Result, Timeout};
use nanoport_protocols::{CtxId, OptValue};

use crate::socket::{Dir, SocketInner};
use crate::SendError;

/// A context (`nng_ctx`): its own request/reply or survey state, or its own
/// subscriptions, on a shared socket, so many exchanges can be outstanding at once.
/// Contexts exist on req0, rep0, surveyor0, respondent0 and sub0 cooked sockets.
///
/// # Examples
///
/// ```
/// use nanoport::Socket;
/// let req = Socket::req0().unwrap();
/// let a = req.context().unwrap();
/// let b = req.context().unwrap();
/// assert_ne!(a.id(), b.id());
/// a.close().unwrap();
/// ```
///
/// A context closes when its last handle is dropped, as the `nng` crate's does: opening
/// and dropping contexts without `close` leaks nothing.
///
/// Contexts have no poll fds: NNG's `nng_socket_get_recv_poll_fd` and
/// `nng_socket_get_send_poll_fd` are "not compatible with contexts", and neither are
/// [`Socket::recv_poll_fd`](crate::Socket::recv_poll_fd) and
/// [`Socket::send_poll_fd`](crate::Socket::send_poll_fd), which follow the socket's own
/// context only (`recv-fd` and `send-fd` on a context are `NotSup`). An event loop that
/// drives contexts starts their [`recv_aio`](Context::recv_aio)s with a callback that
/// wakes it.
#[derive(Clone)]
pub struct Context {
    inner: Arc<CtxInner>,
}

/// What every handle of one context shares; dropping it closes the context.
struct CtxInner {
    sock: Arc<SocketInner>,
    id: CtxId,
}

impl Drop for CtxInner {
    fn drop(&mut self) {
        // Already closed (by `close`, or with its socket) is fine here.
        let _ = self.sock.close_ctx(self.id);
    }
}

impl Context {
    pub(crate) fn open(sock: &Arc<SocketInner>) -> Result<Context> {
        let id = sock.open_ctx()?;
        Ok(Context {
            inner: Arc::new(CtxInner {
                sock: sock.clone(),
                id,
            }),
        })
    }

    /// The context id (`nng_ctx_id`).
    pub fn id(&self) -> u32 {
        self.inner.id
    }

    /// Sends on this context, waiting up to its send timeout (`nng_ctx_sendmsg`).
    ///
    /// # Errors
    /// As [`Socket::send`](crate::Socket::send): the message comes back in the
    /// [`SendError`].
    pub fn send(&self, msg: impl Into<Message>) -> std::result::Result<(), SendError> {
        self.inner
            .sock
            .send_blocking(self.inner.id, msg.into(), false)
    }

    /// Sends on this context without waiting (`nng_ctx_sendmsg` with
    /// `NNG_FLAG_NONBLOCK`).
    ///
    /// # Errors
    /// As [`Socket::try_send`](crate::Socket::try_send).
    pub fn try_send(&self, msg: impl Into<Message>) -> std::result::Result<(), SendError> {
        self.inner
            .sock
            .send_blocking(self.inner.id, msg.into(), true)
    }

    /// Receives on this context, waiting up to its receive timeout (`nng_ctx_recvmsg`).
    ///
    /// # Errors
    /// As [`Socket::recv`](crate::Socket::recv).
    pub fn recv(&self) -> Result<Message> {
        self.inner.sock.recv_blocking(self.inner.id, false)
    }

    /// Receives on this context without waiting (`nng_ctx_recvmsg` with
    /// `NNG_FLAG_NONBLOCK`).
    ///
    /// # Errors
    /// As [`Socket::try_recv`](crate::Socket::try_recv): `Again` when nothing is ready.
    pub fn try_recv(&self) -> Result<Message> {
        self.inner.sock.recv_blocking(self.inner.id, true)
    }

    /// Starts an asynchronous send (`nng_ctx_send`).
    pub fn send_aio(&self, aio: &Aio) {
        self.inner.sock.send_aio(self.inner.id, aio)
    }

    /// Starts an asynchronous receive (`nng_ctx_recv`).
    pub fn recv_aio(&self, aio: &Aio) {
        self.inner.sock.recv_aio_callback(self.inner.id, aio)
    }

    /// Closes the context (`nng_ctx_close`): its waiting operations complete with `Closed`.
    ///
    /// # Errors
    /// `Closed` if it was already closed.
    pub fn close(&self) -> Result<()> {
        self.inner.sock.close_ctx(self.inner.id)
    }

    /// Sets this context's send timeout (`NNG_OPT_SENDTIMEO`); it starts as the socket's.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_send_timeout(&self, t: impl Into<Timeout>) -> Result<()> {
        self.inner
            .sock
            .set_ctx_timeout(self.inner.id, Dir::Send, t.into())
    }

    /// Sets this context's receive timeout (`NNG_OPT_RECVTIMEO`).
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_recv_timeout(&self, t: impl Into<Timeout>) -> Result<()> {
        self.inner
            .sock
            .set_ctx_timeout(self.inner.id, Dir::Recv, t.into())
    }

    /// This context's send timeout.
    ///
    /// # Errors
    /// `Closed`.
    pub fn send_timeout(&self) -> Result<Timeout> {
        Ok(self.inner.sock.ctx_timeouts(self.inner.id)?.send)
    }

    /// This context's receive timeout.
    ///
    /// # Errors
    /// `Closed`.
    pub fn recv_timeout(&self) -> Result<Timeout> {
        Ok(self.inner.sock.ctx_timeouts(self.inner.id)?.recv)
    }

    /// This req0 context's resend time.
    ///
    /// # Errors
    /// `NotSup` on protocols other than req0; `Closed`.
    pub fn resend_time(&self) -> Result<Timeout> {
        match self.get_option(nanoport_protocols::opt::REQ_RESEND_TIME)? {
            OptValue::Duration(t) => Ok(t),
            _ => Err(nanoport_engine::Error::BadType),
        }
    }

    /// This surveyor0 context's survey time.
    ///
    /// # Errors
    /// `NotSup` on protocols other than surveyor0; `Closed`.
    pub fn survey_time(&self) -> Result<Timeout> {
        match self.get_option(nanoport_protocols::opt::SURVEY_TIME)? {
            OptValue::Duration(t) => Ok(t),
            _ => Err(nanoport_engine::Error::BadType),
        }
    }

    /// Sets an option by NNG name on this context (`nng_ctx_set`): `recv-timeout`,
    /// `send-timeout`, and the protocol's (`sub:subscribe`, `req:resend-time`,
    /// `surveyor:survey-time`, ...).
    ///
    /// # Errors
    /// `NotSup` for an option the context lacks, `BadType` for a value of the wrong type,
    /// `Inval` for a bad value, `Closed`.
    pub fn set_option(&self, name: &str, value: OptValue) -> Result<()> {
        use nanoport_protocols::opt;
        match (name, value) {
            (opt::RECV_TIMEOUT, OptValue::Duration(t)) => self.set_recv_timeout(t),
            (opt::SEND_TIMEOUT, OptValue::Duration(t)) => self.set_send_timeout(t),
            (opt::RECV_TIMEOUT | opt::SEND_TIMEOUT, _) => Err(nanoport_engine::Error::BadType),
            (_, value) => self.inner.sock.set_proto_option(self.inner.id, name, value),
        }
    }

    /// Reads a protocol option of this context.
    ///
    /// # Errors
    /// `NotSup` for an option the protocol lacks.
    pub fn get_option(&self, name: &str) -> Result<OptValue> {
        use nanoport_protocols::opt;
        match name {
            opt::RECV_TIMEOUT => Ok(OptValue::Duration(self.recv_timeout()?)),
            opt::SEND_TIMEOUT => Ok(OptValue::Duration(self.send_timeout()?)),
            _ => self.inner.sock.get_proto_option(self.inner.id, name),
        }
    }

    /// Sets this req0 context's resend time (`NNG_OPT_REQ_RESENDTIME` on an `nng_ctx`).
    ///
    /// # Errors
    /// `NotSup` on protocols other than req0.
    pub fn set_resend_time(&self, t: impl Into<nanoport_engine::Timeout>) -> Result<()> {
        self.set_option(
            nanoport_protocols::opt::REQ_RESEND_TIME,
            OptValue::Duration(t.into()),
        )
    }

    /// Sets this surveyor0 context's survey time (`NNG_OPT_SURVEYOR_SURVEYTIME` on an
    /// `nng_ctx`).
    ///
    /// # Errors
    /// `NotSup` on protocols other than surveyor0.
    pub fn set_survey_time(&self, t: impl Into<nanoport_engine::Timeout>) -> Result<()> {
        self.set_option(
            nanoport_protocols::opt::SURVEY_TIME,
            OptValue::Duration(t.into()),
        )
    }

    /// Subscribes this sub0 context to messages starting with `prefix`.
    ///
    /// # Errors
    /// `NotSup` on other protocols.
    pub fn subscribe(&self, prefix: &[u8]) -> Result<()> {
        self.set_option(
            nanoport_protocols::opt::SUBSCRIBE,
            OptValue::Bytes(prefix.to_vec()),
        )
    }

    /// Removes a subscription of this sub0 context.
    ///
    /// # Errors
    /// `NoEnt` if it was not subscribed; `NotSup` on other protocols.
    pub fn unsubscribe(&self, prefix: &[u8]) -> Result<()> {
        self.set_option(
            nanoport_protocols::opt::UNSUBSCRIBE,
            OptValue::Bytes(prefix.to_vec()),
        )
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("socket", &self.inner.sock.id)
            .field("id", &self.inner.id)
            .finish()
    }
}
