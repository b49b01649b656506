//! `veche loadtest`: bots that join rooms through the normal HTTP API and signalling, publish
//! synthetic media and subscribe to each other, measuring what they receive.
//!
//! [`media`] is the I/O-free synthetic media source and receive-side measurement; the bots,
//! networking and scenarios build on it.
#![deny(missing_docs)]

pub mod bot;
mod client;
pub mod cluster;
pub mod commits;
pub mod janus;
pub mod media;
pub mod proc;
pub mod report;
pub mod scenario;
