//! [`Pipe`]: a handle to one connection of a socket, as NNG's `nng_pipe`.
//!
//! The engine only defines the handle; transports implement [`PipeOps`] for their
//! connections and the root crate adds the option getters users see.

use std::fmt;
use std::sync::Arc;

use crate::Result;

/// A pipe's id: NNG draws them at random from `1..=0x7fff_ffff`, so the top bit is clear
/// and a req/rep backtrace can tell a pipe id from a request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipeId(pub u32);

/// What a transport's connection offers to whoever holds a [`Pipe`] handle.
pub trait PipeOps: Send + Sync + 'static {
    /// The pipe's id.
    fn id(&self) -> PipeId;
    /// Closes the connection; pending operations on it complete with `Closed`.
    fn close(&self);
    /// A named option of the pipe (`"remote-address"`, `"local-address"`, `"tcp-nodelay"`, ...)
    /// rendered as text; `Err(NotSup)` for an option this pipe lacks.
    fn option(&self, name: &str) -> Result<String>;
    /// The peer's SP protocol id, from its handshake.
    fn peer_protocol(&self) -> u16;
}

/// A cheap, cloneable handle to a pipe (`nng_pipe`). It stays valid after the connection
/// closes; operations on a closed pipe fail with `Closed`.
///
/// # Examples
///
/// ```
/// use nanoport_engine::{Message, PipeId};
/// let m = Message::from("hi");
/// assert!(m.pipe().is_none()); // built locally, it arrived on no pipe
/// ```
#[derive(Clone)]
pub struct Pipe {
    ops: Arc<dyn PipeOps>,
}

impl Pipe {
    /// Wraps a transport connection.
    pub fn new(ops: Arc<dyn PipeOps>) -> Pipe {
        Pipe { ops }
    }

    /// The pipe's id (`nng_pipe_id`).
    pub fn id(&self) -> PipeId {
        self.ops.id()
    }

    /// Closes the pipe (`nng_pipe_close`).
    pub fn close(&self) {
        self.ops.close()
    }

    /// A named option as text (`nng_pipe_get_*`).
    ///
    /// # Errors
    /// `NotSup` when the pipe's transport has no such option.
    pub fn option(&self, name: &str) -> Result<String> {
        self.ops.option(name)
    }

    /// The peer's SP protocol id (`NNG_OPT_PEER`).
    pub fn peer_protocol(&self) -> u16 {
        self.ops.peer_protocol()
    }

    /// The transport object behind the handle.
    pub fn ops(&self) -> &Arc<dyn PipeOps> {
        &self.ops
    }
}

impl PartialEq for Pipe {
    fn eq(&self, other: &Pipe) -> bool {
        self.id() == other.id()
    }
}
impl Eq for Pipe {}

impl fmt::Debug for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pipe").field(&self.id().0).finish()
    }
}
