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
//!
//! ## Where things are
//!
//! | You want | NNG's name | Here |
//! |---|---|---|
//! | a socket, its options | `nng_socket`, `nng_socket_set` | [`Socket`], [`Socket::set_option`], [`opt`] |
//! | a context (concurrent req/rep, surveys) | `nng_ctx` | [`Context`] |
//! | an asynchronous operation | `nng_aio` | [`Aio`], [`sleep_aio`] |
//! | a message | `nng_msg` | [`Message`] |
//! | a failed send, message handed back | `nng_sendmsg` | [`SendError`] |
//! | dialers and listeners | `nng_dialer`, `nng_listener` | [`Dialer`], [`Listener`] |
//! | a connection and its events | `nng_pipe`, `nng_pipe_notify` | [`Pipe`], [`PipeExt`], [`PipeEvent`], [`SockAddr`] |
//! | TLS | `nng_tls_config` | [`TlsConfig`] (feature `tls`) |
//! | byte streams | `nng_stream` | [`stream`] |
//! | forwarding between raw sockets | `nng_device` | [`device`] |
//! | errors | `nng_err` | [`Error`] |
//! | writing a transport or engine extension | (NNG's internal `nni_*`) | [`engine`], [`engine::AioProvider`] |
//!
//! docs/guide.md in the repository maps the rest of NNG's API, option by option.

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
mod stat;
mod stats;
pub mod stream;

pub use context::Context;
pub use device::device;
pub use endpoint::{Dialer, Listener};
pub use nanoport_engine::{
    idle_strategy, set_idle_strategy, set_worker_threads, sleep_aio, Aio, Error, IdleStrategy,
    Message, Pipe, PipeId, Result, Timeout,
};
pub use nanoport_protocols::{OptValue, ProtoInfo, Protocol};
pub use nanoport_transports::ListenerStats;
pub use nanoport_transports::{set_resolver, ResolveFn};
#[cfg(feature = "tls")]
pub use nanoport_transports::{TlsAuthMode, TlsConfig, TlsMode};
pub use options::opt;
pub use pipe_ext::{PipeExt, SockAddr};
pub use pipes::PipeEvent;
pub use send_error::SendError;
pub use socket::Socket;
pub use stat::{stats, Stat, StatValue};
pub use stats::SocketStats;

/// The engine underneath, for transport authors and engine extensions: the provider side
/// of an aio ([`AioProvider`](engine::AioProvider)), the reactor, I/O sources and buffer
/// pools. Applications need nothing from it.
pub use nanoport_engine as engine;
