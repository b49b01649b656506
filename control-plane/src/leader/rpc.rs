//! The leader RPC's messages: a [`LeaderRequest`] for something only the
//! leader can do, and its [`LeaderReply`]. MessagePack on the wire, behind
//! the cluster secret.

use crate::store::model::{Command, CommandResult};
use serde::{Deserialize, Serialize};
use veche_protocol::admin::{MediaNodeStatus, Placement};
use veche_protocol::error::ErrorBody;
use veche_protocol::rpc::{Heartbeat, HeartbeatReply};
use veche_protocol::NodeId;

/// The internal RPC path for [`LeaderRequest`]s.
pub const LEADER_RPC: &str = "/internal/v1/leader";

/// Something only the leader can do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LeaderRequest {
    /// Propose a command; the reply is its result.
    Write(Command),
    /// Confirm leadership and return the read index.
    ReadIndex,
    /// Add a control-plane node as a voter.
    AddVoter {
        /// Raft id.
        id: u64,
        /// Base URL.
        addr: String,
    },
    /// Remove a control-plane node.
    RemoveMember {
        /// Raft id.
        id: u64,
    },
    /// A media node's heartbeat.
    Heartbeat(Heartbeat),
    /// Choose a media node for a new participant of a room.
    Place {
        /// The room.
        room: veche_protocol::RoomId,
        /// The region the participant is in, if known: nodes there first.
        #[serde(default)]
        region: Option<String>,
        /// A node the participant could not reach: never chosen.
        #[serde(default)]
        avoid: Option<NodeId>,
    },
    /// Drain a media node (no new participants) or put it back in service.
    /// Draining is refused when no other alive node in service would be
    /// left to take its participants.
    SetDraining {
        /// The media node.
        node: NodeId,
        /// Drain, or undrain.
        draining: bool,
    },
}

impl LeaderRequest {
    /// Whether doing it twice is harmless, so that it may be retried after
    /// an ambiguous failure.
    pub fn retry_is_safe(&self) -> bool {
        match self {
            LeaderRequest::Write(cmd) => cmd.is_idempotent(),
            _ => true,
        }
    }

    /// A short name, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            LeaderRequest::Write(_) => "write",
            LeaderRequest::ReadIndex => "read_index",
            LeaderRequest::AddVoter { .. } => "add_voter",
            LeaderRequest::RemoveMember { .. } => "remove_member",
            LeaderRequest::Heartbeat(_) => "heartbeat",
            LeaderRequest::Place { .. } => "place",
            LeaderRequest::SetDraining { .. } => "set_draining",
        }
    }
}

/// The answer to a [`LeaderRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LeaderReply {
    /// The command's result.
    Written(CommandResult),
    /// The read index.
    ReadIndex(u64),
    /// A membership change completed.
    Done,
    /// Heartbeat recorded (or the node is unknown).
    Heartbeat(HeartbeatReply),
    /// The chosen media node, if any is available.
    Placed(Option<Placement>),
    /// A media node's status after a drain or undrain.
    MediaNode(MediaNodeStatus),
    /// The receiver is not the leader (any more): ask again.
    NotLeader,
    /// The leader could not reach a quorum in time. The request may or may
    /// not have taken effect.
    Ambiguous(String),
    /// A final answer: the request was refused or failed.
    Failed(ErrorBody),
}
