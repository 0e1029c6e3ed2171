//! # nanoport-protocols
//!
//! NNG's scalability protocols as pure state machines ([`ProtocolCore`]): no threads,
//! no sockets, no clocks. The root crate's `Socket` drives them over real pipes.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod core;

pub use crate::core::{opt, Action, CtxId, OptValue, ProtoInfo, ProtocolCore, SendBlock};
