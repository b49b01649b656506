//! A Veche media node: a WebRTC SFU on webrtc-rs.
//!
//! Decisions live in I/O-free modules ([`core`], [`negotiation`],
//! [`admission`], [`codecs`] for what an offer may carry,
//! [`forward`]); sockets, tasks and timers live at the edge ([`node`],
//! `session`, `peer`, `track`).
pub mod admission;
pub mod codecs;
pub mod core;
pub mod cp_client;
pub mod forward;
pub mod interceptor;
pub mod metrics;
pub mod negotiation;
pub mod node;
pub mod outbox;
pub mod peer;
pub mod relay;
pub mod relay_tls;
pub mod room;
mod session;
mod socket;
mod track;

pub use node::{MediaNode, NodeConfig, METRICS_PATH, WS_PATH};
pub use peer::RtcConfig;
