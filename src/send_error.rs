//! [`SendError`]: a failed send hands its message back.

use std::fmt;

use nanoport_engine::{Error, Message};

/// Why a send failed, with the message that was not sent (`nng_sendmsg` leaves the
/// message with the caller on failure; the `nng` crate returns it the same way).
///
/// A caller that gets [`Error::Again`] or [`Error::TimedOut`] can retry with the same
/// message, no clone needed; `?` in a function returning [`nanoport::Result`](crate::Result)
/// keeps just the error.
///
/// # Examples
///
/// ```
/// use nanoport::{Error, Socket};
/// let push = Socket::push0().unwrap(); // no peer: nothing can take the message
/// let err = push.try_send("keep me").unwrap_err();
/// assert_eq!(err.error(), Error::Again);
/// let msg = err.into_message();
/// assert_eq!(msg.body(), b"keep me");
/// ```
pub struct SendError {
    error: Error,
    msg: Message,
}

impl SendError {
    pub(crate) fn new(error: Error, msg: Message) -> SendError {
        SendError { error, msg }
    }

    /// Why the send failed.
    pub fn error(&self) -> Error {
        self.error
    }

    /// The message that was not sent.
    pub fn message(&self) -> &Message {
        &self.msg
    }

    /// Takes the message back, to retry or reuse it.
    pub fn into_message(self) -> Message {
        self.msg
    }

    /// The error and the message, apart.
    pub fn into_parts(self) -> (Error, Message) {
        (self.error, self.msg)
    }
}

impl fmt::Debug for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("error", &self.error)
            .field("message_len", &self.msg.len())
            .finish()
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for SendError {}

impl From<SendError> for Error {
    fn from(e: SendError) -> Error {
        e.error
    }
}

/// Compares the error only: `err == Error::Again`.
impl PartialEq<Error> for SendError {
    fn eq(&self, other: &Error) -> bool {
        self.error == *other
    }
}
