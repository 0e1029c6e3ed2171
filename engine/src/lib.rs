//! # nanoport-engine
//!
//! The proactor under nanoport: asynchronous operations ([`Aio`]) that complete by
//! running a plain callback on a fixed worker pool, driven by one reactor thread over
//! epoll (the `polling` crate off Linux) with a timer queue. No `async`/`await`, no executor.
//!
//! * [`Aio`], [`sleep_aio`]: NNG's aio contract (callback exactly once, cancel, abort,
//!   stop, timeouts), see the [`aio`] module docs for how races are decided.
//! * [`IoSource`], [`IoOp`]: resumable non-blocking operations on a registered fd, for
//!   transports.
//! * [`Message`], [`Error`], [`Timeout`], [`Pipe`]: the types every layer shares.
//! * [`PollFd`]: an fd that polls readable while a condition holds, for a socket's
//!   receive and send poll fds.
//!
//! Threads: one reactor thread (`nanoport:reactor`), N workers (`nanoport:worker:i`,
//! [`set_worker_threads`]). Both start on first use.

#![warn(missing_docs, missing_debug_implementations)]

pub mod aio;
pub mod buffers;
#[cfg(all(target_os = "linux", not(feature = "portable-poller")))]
mod epoll;
mod error;
mod id_hash;
pub mod idle;
mod idle_strategy;
pub mod io;
mod job_queue;
mod message;
mod pipe;
mod poll_fd;
mod poller;
mod pool;
pub mod reactor;
mod timeout;
mod waker;

pub use aio::{
    at_scope_end, engine_scope, in_driving_wait, in_engine_scope, scope_now, sleep_aio, Aio,
    AioProvider, Cancel, CancelHook, Now, OpToken, ScopeEndJob, SendAttempt,
};
pub use error::{Error, Result};
pub use id_hash::{IdHasher, IdMap, IdSet};
pub use idle_strategy::{idle_strategy, set_idle_strategy, IdleStrategy};
pub use io::{IoOp, IoSource};
pub use message::{Message, MAX_HEADER};
pub use pipe::{Pipe, PipeId, PipeOps};
pub use poll_fd::PollFd;
pub use pool::{callback_panics, set_worker_threads, spawn, worker_threads};
pub use reactor::{
    armed_timers, poller_modifications, registered_sources, Interest, Readiness, ReadyHandler,
    Registration, HOLD_SWEEP_EVERY,
};
pub use timeout::Timeout;
