//! [`DocAccess`]: the two primitives a capability's store trait is
//! written on. Apart from `docs.rs` so that the document tables depend on
//! nothing above them: capabilities (`accounts.rs`) use the tables, the
//! command model uses the capabilities' commands, and this uses the model.

use super::db::DbError;
use super::docs::Docs;
use super::error::StoreError;
use super::model::{Command, CommandResult};
use std::future::Future;

/// The two primitives a capability's store trait is written on: commit a
/// command, and read the document tables at a linearizable point.
/// Implemented by [`super::MemStore`] and by every
/// [`super::CommandLog`] (the Raft store on the leader, and
/// `leader::Replicated` on any node), so a capability's trait (e.g.
/// [`super::AccountStore`]) is one blanket impl over this.
pub trait DocAccess: Send + Sync {
    /// Commits `cmd` and returns what the state machine answered.
    fn commit(
        &self,
        cmd: Command,
    ) -> impl Future<Output = Result<CommandResult, StoreError>> + Send;

    /// Runs `f` on the document tables as of a point after every write
    /// that returned before the call (one read barrier, however much `f`
    /// reads).
    fn read_docs<T: Send>(
        &self,
        f: impl FnOnce(&dyn Docs) -> Result<T, DbError> + Send,
    ) -> impl Future<Output = Result<T, StoreError>> + Send;
}
