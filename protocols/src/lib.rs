//! # nanoport-protocols
//!
//! NNG's scalability protocols as pure state machines ([`ProtocolCore`]): no threads,
//! no sockets, no clocks. The root crate's `Socket` drives them over real pipes.
//!
//! [`open`] creates the state machine for a [`Protocol`], cooked or raw; [`Protocol::info`]
//! gives its static facts (ids, names, directions) without creating one.
//!
//! # Headers the user sees
//!
//! Every protocol moves its wire header out of the body, so the user's `body()` is the
//! payload. Where NNG leaves the header on a received message, so do we:
//!
//! | protocol | header of a received message |
//! |---|---|
//! | pair1 (cooked, raw, poly) | the hop count (one word) |
//! | req cooked / surveyor cooked | the request / survey id (one word) |
//! | rep cooked / respondent cooked | empty (the context keeps the backtrace) |
//! | rep raw / respondent raw | `[receiving pipe id][backtrace ... id]` |
//! | req raw | `[backtrace ... id]` |
//! | surveyor raw | the survey id |
//! | bus raw | the receiving pipe id |
//! | pair0, pub/sub, push/pull, bus cooked | empty |
//!
//! Raw sends take the header as the user (or a device) left it; cooked sends replace it.
//! `msg.pipe()` is never changed: a received message names the pipe it came in on.
//!
//! # How the socket learns about waiting operations
//!
//! `try_send` answering `SendBlock::Full` and `try_recv` answering `Ok(None)` mean "wait";
//! the protocol remembers that and emits `SendReady` / `RecvReady` for that context when
//! it may have changed. An outcome that ends a waiting receive without a message (a req
//! request replaced by a new send: `Canceled`; its pipe lost with resend off: `ConnReset`;
//! a survey that expired: `TimedOut`) is reported once, by the next `try_recv` on that
//! context, after a `RecvReady`.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod core;

mod backtrace;
mod inbound;
mod options;
mod outbound;
mod protocol;
mod request_ids;
mod topics;
mod wire;

mod bus0;
mod pair0;
mod pair1;
mod pair1_modal;
mod pair1_poly;
mod pub0;
mod pull0;
mod push0;
mod rep0;
mod rep0_raw;
mod req0;
mod req0_raw;
mod respondent0;
mod sub0;
mod surveyor0;
mod surveyor0_raw;

#[cfg(test)]
mod readiness;
#[cfg(test)]
mod robustness;
#[cfg(test)]
mod testing;

pub use crate::core::{opt, Action, CtxId, Discards, OptValue, ProtoInfo, ProtocolCore, SendBlock};
pub use crate::protocol::{open, Protocol};
