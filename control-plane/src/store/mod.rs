//! Durable, replicated state: an openraft group over redb.
//!
//! - [`model`]: the commands and their results (the contract).
//! - [`types`]: openraft's type configuration.
//! - [`log_store`] and [`state_machine`]: the Raft log and the state
//!   machine, both in one redb file.
//! - [`network`]: Raft RPC over HTTP + MessagePack, client and axum router.
//! - [`raft_store`]: [`RaftStore`], the handle everything else uses.
mod db;
pub mod log_store;
pub mod model;
pub mod network;
pub mod raft_store;
pub mod state_machine;
pub mod types;

pub use network::raft_router;
pub use raft_store::{default_raft_config, open_storage, RaftStore, StoreError};
pub use types::{ApplyResponse, TypeConfig};

#[cfg(test)]
mod tests;
