//! The openraft type configuration of the control plane's Raft group.

use super::model::{Command, CommandResult};

/// What the state machine returns for one applied log entry.
///
/// openraft asks the state machine for a response to *every* entry it
/// applies, including the entries that carry no [`Command`]: the blank entry
/// a new leader commits and membership changes. [`CommandResult`] has no way
/// to say "there was no command", so the response is `None` for those and
/// `Some(result)` for a [`Command`]. [`super::raft_store::RaftStore::write`]
/// unwraps it, so callers of the store only ever see a [`CommandResult`].
pub type ApplyResponse = Option<CommandResult>;

openraft::declare_raft_types!(
    /// The Raft types of the control plane: nodes are numbered `u64`s whose
    /// [`openraft::BasicNode::addr`] is the base URL (`http://host:port`) of
    /// that node's control-plane HTTP server, where
    /// [`super::network::raft_router`] is mounted.
    pub TypeConfig:
        D = Command,
        R = ApplyResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft handle of the control plane's group.
pub type Raft = openraft::Raft<TypeConfig>;

/// A Raft node id in this group.
pub type RaftNodeId = u64;
