//! Durable state: the [`Store`] trait over what the control plane keeps,
//! and its two implementations.
//!
//! - [`seam`]: the [`Store`] trait (the contract, and how to add a table).
//! - [`model`]: the commands and their results, which both stores apply.
//! - [`mem`]: [`MemStore`], in memory: the reference and the test store.
//! - [`raft_store`]: [`RaftStore`], an openraft group over redb, and its
//!   [`Store`] implementation (`raft_seam.rs`); underneath it:
//!   - [`types`]: openraft's type configuration;
//!   - `batcher.rs`: packs concurrent writes into one log entry, and
//!     `deadline.rs` bounds each request;
//!   - [`log_store`] and [`state_machine`]: the Raft log and the state
//!     machine, both in one redb file (`db.rs`), with `snapshot.rs` and
//!     the read-only `queries.rs` beside the state machine;
//!   - [`network`]: Raft RPC over HTTP + MessagePack, client and router.
//! - [`docs`]: document tables, the shape of every capability's tables
//!   after the first ones, with [`DocAccess`], the two primitives
//!   (commit, read) each capability's store trait is written on once:
//!   - [`accounts`]: users and sessions ([`AccountStore`]);
//!   - [`passes`]: guest passes ([`PassStore`]), their data in
//!     `pass_model.rs`;
//!   - [`policies`]: each room's moderation policy ([`PolicyStore`]),
//!     its commands in `policy_model.rs`;
//!   - [`covers`]: room covers ([`CoverStore`]), their data in
//!     `cover_model.rs`, and `owned_rooms.rs`, each owner's rooms;
//!   - [`recordings`]: the recordings index ([`RecordingStore`]), its
//!     data in `recording_model.rs`, started and stopped with the room's
//!     policy;
//!   - [`e2ee`]: each encrypted room's MLS delivery service
//!     ([`E2eeStore`]), its command in `e2ee_model.rs`; the room's
//!     leaves and meeting end reach it from the statistics' apply;
//!   - [`stats`]: meeting and participant sessions ([`StatsStore`]), read
//!     through `stats_read.rs`, and the webhook [`outbox`] they fill.
//! - [`error`]: [`StoreError`], why an operation failed.
//!
//! The conformance suite both stores pass is `conformance.rs` (tests only).
mod access;
mod account_store;
pub mod accounts;
mod batcher;
mod capabilities;
mod cover_model;
pub mod covers;
mod db;
mod deadline;
pub mod docs;
mod docs_redb;
pub mod e2ee;
pub mod e2ee_model;
pub mod error;
pub mod log_store;
pub mod mem;
pub mod model;
pub mod network;
pub mod outbox;
mod owned_rooms;
mod pass_model;
pub mod passes;
pub mod policies;
mod policy_model;
mod queries;
mod raft_seam;
pub mod raft_store;
mod recording_model;
pub mod recordings;
mod recordings_read;
pub mod seam;
mod snapshot;
pub mod state_machine;
pub mod stats;
pub mod stats_read;
pub mod types;

pub use access::DocAccess;
pub use account_store::AccountStore;
pub use covers::CoverStore;
pub use e2ee::E2eeStore;
pub use error::StoreError;
pub use mem::MemStore;
pub use network::raft_router;
pub use passes::PassStore;
pub use policies::PolicyStore;
pub use raft_seam::CommandLog;
pub use raft_store::{default_raft_config, open_storage, LocalReads, RaftStore};
pub use recordings::RecordingStore;
pub use seam::{HistoryPage, NewMessage, Store};
pub use stats_read::{StatsQuery, StatsStore};
pub use types::{ApplyResponse, TypeConfig};

#[cfg(test)]
pub(crate) mod conformance;
#[cfg(test)]
mod conformance_accounts;
#[cfg(test)]
mod conformance_covers;
#[cfg(test)]
mod conformance_e2ee;
#[cfg(test)]
pub(crate) mod conformance_kit;
#[cfg(test)]
mod conformance_passes;
#[cfg(test)]
mod conformance_policies;
#[cfg(test)]
mod conformance_recordings;
#[cfg(test)]
mod conformance_stats;
#[cfg(test)]
mod tests;
