//! # nanoport
//!
//! A pure-Rust implementation of NNG's Scalability Protocols, wire-compatible with libnng,
//! on a callback-driven proactor (no `async`/`await`).
//!
//! Open a [`Socket`] of a [`Protocol`], [`listen`](Socket::listen) or
//! [`dial`](Socket::dial) a URL (`inproc://`, `ipc://`, `abstract://`, `tcp://`, and with
//! the default features `tls+tcp://`, `ws://`, `wss://`), and
//! [`send`](Socket::send)/[`recv`](Socket::recv) [`Message`]s, blocking or through an
//! [`Aio`] whose callback runs on a worker thread when the operation ends.
//!
//! ```
//! use nanoport::{Socket, Message};
//! let pull = Socket::pull0().unwrap();
//! pull.listen("inproc://crate-doc").unwrap();
//! let push = Socket::push0().unwrap();
//! push.dial("inproc://crate-doc").unwrap();
//! push.send("hello").unwrap();
//! assert_eq!(pull.recv().unwrap().body(), b"hello");
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod context;
mod device;
mod endpoint;
mod options;
mod pipe_ext;
mod pipes;
mod send_error;
mod socket;
mod stats;
pub mod stream;

pub use context::Context;
pub use device::device;
pub use endpoint::{Dialer, Listener};
pub use nanoport_engine::{
    set_worker_threads, sleep_aio, Aio, Error, Message, Pipe, PipeId, Result, Timeout,
};
pub use nanoport_protocols::{opt, OptValue, ProtoInfo, Protocol};
pub use nanoport_transports::ListenerStats;
#[cfg(feature = "tls")]
pub use nanoport_transports::{TlsAuthMode, TlsConfig, TlsMode};
pub use pipe_ext::{PipeExt, SockAddr};
pub use pipes::PipeEvent;
pub use send_error::SendError;
pub use socket::Socket;
pub use stats::SocketStats;

/// The engine, for transports and advanced users (provider-side aio API, reactor).
pub use nanoport_engine as engine;
