//! Wire types shared by every Veche part.
//!
//! This crate has no I/O and no clock: everything here is data, parsing and
//! pure validation, so the control plane, the media node, the load harness and
//! tests all agree on one definition. See `docs/protocol.md` for the
//! human-readable specification of the same messages.
#![deny(missing_docs)]

pub mod account;
pub mod admin;
pub mod chat;
pub mod cover;
pub mod e2ee;
pub mod error;
mod ice;
pub mod ids;
pub mod limits;
pub mod moderation;
pub mod moderation_rules;
pub mod msgpack;
pub mod p2p;
pub mod pass;
pub mod recording;
pub mod relay;
pub mod rpc;
pub mod secret;
pub mod signal;
mod signal_parse;
pub mod stats;
pub mod token;
mod token_bucket;
pub mod turn;

#[cfg(test)]
mod robustness;

pub use error::ErrorCode;
pub use ids::{MessageId, NodeId, ParticipantId, RoomId, RoomSlug, TrackId, UserId};

/// Milliseconds since the Unix epoch. Wall-clock time on the wire is always
/// this unit so that JavaScript clients can pass it to `new Date()` directly.
pub type UnixMillis = u64;
