//! Byte streams (NNG's `nng_stream`, `nng_stream_dialer`, `nng_stream_listener`): a plain
//! tcp or ipc connection with no SP handshake and no framing, driven by the same [`Aio`]s
//! and callbacks as sockets, for programs that speak some other protocol beside SP.
//!
//! The promises are those of NNG's stream functions (and asio's): every operation
//! completes exactly once through its aio, its callback never runs inside the call that
//! started it, a send may complete with fewer bytes than the message holds (the aio's
//! [`count`](crate::Aio::count) says how many; send the rest), and a receive completes with what
//! was there, up to the limit it was given.
//!
//! # Examples
//!
//! ```
//! use nanoport::stream::{Stream, StreamDialer, StreamListener};
//! use nanoport::{Aio, Message};
//!
//! let l = StreamListener::listen("tcp://127.0.0.1:0").unwrap();
//! let d = StreamDialer::open(&format!("tcp://127.0.0.1:{}", l.port().unwrap())).unwrap();
//! let (accept, dial) = (Aio::new_waitable().unwrap(), Aio::new_waitable().unwrap());
//! l.accept_aio(&accept);
//! d.dial_aio(&dial);
//! accept.wait();
//! dial.wait();
//! let server: Stream = accept.take_output().unwrap();
//! let client: Stream = dial.take_output().unwrap();
//!
//! let send = Aio::new_waitable().unwrap();
//! send.set_msg(Message::from("hello"));
//! client.send_aio(&send);
//! send.wait();
//! assert_eq!(send.count(), 5);
//!
//! let recv = Aio::new_waitable().unwrap();
//! let mut got = Vec::new();
//! while got.len() < 5 {
//!     server.recv_aio(&recv, 64);
//!     recv.wait();
//!     got.extend_from_slice(recv.take_msg().unwrap().body());
//! }
//! assert_eq!(got, b"hello");
//! ```
//!
//! [`Aio`]: crate::Aio

pub use nanoport_transports::{Stream, StreamDialer, StreamListener};
