//! A Veche media node: a WebRTC SFU on webrtc-rs.
//!
//! Decisions live in I/O-free modules ([`core`], [`negotiation`],
//! [`admission`], [`codecs`], [`forward`]); sockets, tasks and timers live at the edge
//! ([`media_node`], `session`, [`peer`], [`track`], [`relay`]).
//!
//! Modules import only downward, so each can be understood (and tested)
//! with what is below it; `tests/layering.rs` (in the workspace root) checks it for every crate. From the top:
//!
//! ```text
//! media_node ─▶ session ─▶ node (Shared) ─▶ peer ─▶ room ─▶ relay ─▶ track ─▶ forward
//!                                                      └─▶ core      └─▶ relay_tls
//! ```
//!
//! plus the leaves `cp_client`, `metrics`, `negotiation`, `interceptor`
//! and `events` (participant events for statistics, emitted by rooms).
//! Beside `session` sit `lobby_wait` (a session before its seat: the
//! room's policy, bans, the lobby) and `moderation` (the control-plane
//! calls for policies and moderation actions); both use `node` and `room`. docs/architecture.md walks through a join.
pub mod admission;
pub mod codecs;
pub mod core;
pub mod cp_client;
mod e2ee;
pub mod events;
pub mod forward;
pub mod ice_path;
pub mod interceptor;
mod lobby_wait;
pub mod media_node;
pub mod metrics;
mod moderation;
pub mod negotiation;
pub mod node;
pub mod outbox;
pub mod peer;
mod peer_conn;
pub mod recorder;
pub mod relay;
pub mod relay_tls;
mod resume;
pub mod room;
mod session;
mod socket;
#[cfg(test)]
mod test_support;
pub mod track;

pub use media_node::{MediaNode, METRICS_PATH, WS_PATH};
pub use node::NodeConfig;
pub use peer::RtcConfig;
