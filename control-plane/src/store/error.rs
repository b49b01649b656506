//! [`StoreError`]: why a store operation failed, and how openraft's and
//! redb's errors become one.

use super::db::DbError;
use super::model::CommandError;
use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, ForwardToLeader, RaftError};
use openraft::BasicNode;
use std::path::PathBuf;
use std::time::Duration;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// This node is not the leader, so it cannot accept writes or serve
    /// linearizable reads. `leader` is the current leader's id and base URL
    /// if this node knows them; the caller may retry there.
    #[error("not the Raft leader (leader: {leader:?})")]
    NotLeader {
        /// The leader's node id and base URL, if known.
        leader: Option<(u64, String)>,
    },
    /// The cluster cannot serve the request now: no quorum answered, or no
    /// leader emerged in time. Retrying later may succeed.
    #[error("raft cluster unavailable: {reason}")]
    Unavailable {
        /// What was not available.
        reason: String,
    },
    /// Raft has stopped: it was shut down, or it hit a storage error and
    /// stopped itself to avoid damage. The node needs a restart.
    #[error("raft stopped: {0}")]
    Stopped(Box<Fatal<u64>>),
    /// The embedded database failed (I/O error, corruption, lock held by
    /// another process).
    #[error("storage: {0}")]
    Storage(#[from] redb::Error),
    /// Bytes in the database did not decode: corruption, or data written by
    /// an incompatible version.
    #[error("stored data did not decode: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// Stored data contradicts itself (for example an index entry whose
    /// target is missing), or a value could not be encoded.
    #[error("inconsistent storage: {0}")]
    Inconsistent(String),
    /// The request did not complete within
    /// [`super::deadline::REQUEST_TIMEOUT`]. For a
    /// write the outcome is unknown: the command may still commit later,
    /// so only retry commands that are idempotent (chat with a
    /// `client_msg_id`, `InitSigningKey`).
    #[error("raft request timed out after {timeout:?}")]
    Timeout {
        /// The deadline that passed.
        timeout: Duration,
    },
    /// The command was applied and refused by the state machine (a taken
    /// slug, an unknown room or media node). Deterministic: retrying the
    /// same command gets the same refusal. Returned by the
    /// [`super::Store`] methods; [`super::RaftStore::write`] returns
    /// refusals inside its `Ok` instead.
    #[error("refused: {0}")]
    Refused(CommandError),
    /// The layer that carries requests to the leader
    /// (`crate::leader::Replicated`) got no answer, or the leader failed
    /// the request: no leader within the forwarding deadline, a write
    /// whose outcome is unknown, a follower still catching up for a read.
    /// The body is that layer's answer for a client, kept as it worded it
    /// (whether a write may have been applied, what to do), so it must
    /// never carry anything a client may not see.
    #[error("{}", .0.message)]
    Forwarding(veche_protocol::error::ErrorBody),
    /// The Raft configuration was rejected by openraft.
    #[error("invalid raft config: {0}")]
    Config(Box<openraft::ConfigError>),
    /// The data directory could not be created.
    #[error("creating data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl From<Fatal<u64>> for StoreError {
    fn from(f: Fatal<u64>) -> Self {
        StoreError::Stopped(Box::new(f))
    }
}

impl From<openraft::ConfigError> for StoreError {
    fn from(e: openraft::ConfigError) -> Self {
        StoreError::Config(Box::new(e))
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Redb(e) => StoreError::Storage(e),
            DbError::Decode(e) => StoreError::Decode(e),
            DbError::Encode(e) => StoreError::Inconsistent(format!("encoding: {e}")),
            DbError::Inconsistent(s) => StoreError::Inconsistent(s),
            DbError::Task(e) => StoreError::Inconsistent(format!("storage task failed: {e}")),
        }
    }
}

impl StoreError {
    /// The same failure for another write of the same batch. Most variants
    /// carry plain data; the few that wrap a non-clonable source become
    /// `Unavailable` with its text.
    pub(super) fn for_another_waiter(&self) -> StoreError {
        match self {
            StoreError::NotLeader { leader } => StoreError::NotLeader {
                leader: leader.clone(),
            },
            StoreError::Unavailable { reason } => StoreError::Unavailable {
                reason: reason.clone(),
            },
            StoreError::Timeout { timeout } => StoreError::Timeout { timeout: *timeout },
            StoreError::Inconsistent(s) => StoreError::Inconsistent(s.clone()),
            StoreError::Refused(e) => StoreError::Refused(e.clone()),
            StoreError::Forwarding(body) => StoreError::Forwarding(body.clone()),
            other => StoreError::Unavailable {
                reason: other.to_string(),
            },
        }
    }

    pub(super) fn from_forward(f: &ForwardToLeader<u64, BasicNode>) -> Self {
        StoreError::NotLeader {
            leader: match (&f.leader_id, &f.leader_node) {
                (Some(id), Some(node)) => Some((*id, node.addr.clone())),
                _ => None,
            },
        }
    }
}

impl From<RaftError<u64, ClientWriteError<u64, BasicNode>>> for StoreError {
    fn from(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> Self {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                StoreError::from_forward(&f)
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                StoreError::Unavailable {
                    reason: e.to_string(),
                }
            }
            RaftError::Fatal(f) => StoreError::from(f),
        }
    }
}

impl From<RaftError<u64, CheckIsLeaderError<u64, BasicNode>>> for StoreError {
    fn from(e: RaftError<u64, CheckIsLeaderError<u64, BasicNode>>) -> Self {
        match e {
            RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => {
                StoreError::from_forward(&f)
            }
            RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(q)) => {
                StoreError::Unavailable {
                    reason: q.to_string(),
                }
            }
            RaftError::Fatal(f) => StoreError::from(f),
        }
    }
}
