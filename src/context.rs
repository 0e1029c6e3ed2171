//! [`Context`]: an independent protocol state on a socket (`nng_ctx`).

use std::fmt;
use std::sync::Arc;

use nanoport_engine::{Aio, Message, Result, Timeout};
use nanoport_protocols::{CtxId, OptValue};

use crate::socket::{Dir, SocketInner};

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
pub struct Context {
    sock: Arc<SocketInner>,
    id: CtxId,
}

impl Context {
    pub(crate) fn open(sock: &Arc<SocketInner>) -> Result<Context> {
        let id = sock.open_ctx()?;
        Ok(Context {
            sock: sock.clone(),
            id,
        })
    }

    /// The context id (`nng_ctx_id`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Sends on this context, waiting up to its send timeout (`nng_ctx_sendmsg`).
    ///
    /// # Errors
    /// As [`Socket::send`](crate::Socket::send).
    pub fn send(&self, msg: impl Into<Message>) -> Result<()> {
        self.sock.send_blocking(self.id, msg.into(), false)
    }

    /// Receives on this context, waiting up to its receive timeout (`nng_ctx_recvmsg`).
    ///
    /// # Errors
    /// As [`Socket::recv`](crate::Socket::recv).
    pub fn recv(&self) -> Result<Message> {
        self.sock.recv_blocking(self.id, false)
    }

    /// Starts an asynchronous send (`nng_ctx_send`).
    pub fn send_aio(&self, aio: &Aio) {
        self.sock.send_aio(self.id, aio)
    }

    /// Starts an asynchronous receive (`nng_ctx_recv`).
    pub fn recv_aio(&self, aio: &Aio) {
        self.sock.recv_aio_callback(self.id, aio)
    }

    /// Closes the context (`nng_ctx_close`): its waiting operations complete with `Closed`.
    ///
    /// # Errors
    /// `Closed` if it was already closed.
    pub fn close(&self) -> Result<()> {
        self.sock.close_ctx(self.id)
    }

    /// Sets this context's send timeout (`NNG_OPT_SENDTIMEO`); it starts as the socket's.
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_send_timeout(&self, t: impl Into<Timeout>) -> Result<()> {
        self.sock.set_ctx_timeout(self.id, Dir::Send, t.into())
    }

    /// Sets this context's receive timeout (`NNG_OPT_RECVTIMEO`).
    ///
    /// # Errors
    /// `Closed`.
    pub fn set_recv_timeout(&self, t: impl Into<Timeout>) -> Result<()> {
        self.sock.set_ctx_timeout(self.id, Dir::Recv, t.into())
    }

    /// Sets a protocol option by NNG name on this context (`sub:subscribe`,
    /// `req:resend-time`, `surveyor:survey-time`, ...).
    ///
    /// # Errors
    /// `NotSup` for an option the protocol lacks, `Inval` for a bad value.
    pub fn set_option(&self, name: &str, value: OptValue) -> Result<()> {
        self.sock.set_proto_option(self.id, name, value)
    }

    /// Reads a protocol option of this context.
    ///
    /// # Errors
    /// `NotSup` for an option the protocol lacks.
    pub fn get_option(&self, name: &str) -> Result<OptValue> {
        self.sock.get_proto_option(self.id, name)
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

impl Clone for Context {
    fn clone(&self) -> Context {
        Context {
            sock: self.sock.clone(),
            id: self.id,
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("socket", &self.sock.id)
            .field("id", &self.id)
            .finish()
    }
}
