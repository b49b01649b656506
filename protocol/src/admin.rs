//! The operator API for the control-plane cluster (JSON over HTTP, behind
//! the cluster secret): status, adding and removing control-plane nodes,
//! draining media nodes. `veche cluster status|add|remove|drain|undrain` is
//! a thin client of these routes.

use crate::ids::NodeId;
use crate::rpc::{MediaNodeInfo, RelayPeer};
use serde::{Deserialize, Serialize};

/// `GET`: this node's view of the cluster ([`ClusterStatus`]).
pub const ADMIN_CLUSTER: &str = "/api/admin/cluster";
/// `POST` an [`AddMemberRequest`]: add a control-plane node as a voter.
/// `DELETE {ADMIN_MEMBERS}/{id}`: remove one.
pub const ADMIN_MEMBERS: &str = "/api/admin/cluster/members";
/// `POST {ADMIN_MEDIA_NODES}/{id}/drain`: stop placing participants on a
/// media node (`202`, its [`MediaNodeStatus`]). `DELETE` the same path:
/// put it back in service (`200`).
pub const ADMIN_MEDIA_NODES: &str = "/api/admin/media-nodes";

/// `GET` on a media node (and on `veche serve`): its Prometheus metrics
/// (`veche_node_*`, text exposition). Here rather than in the node crate so
/// that the load harness, which scrapes it, need not depend on the node.
pub const MEDIA_METRICS_PATH: &str = "/media/metrics";

/// The drain route of media node `id`: `{ADMIN_MEDIA_NODES}/{id}/drain`.
pub fn drain_path(id: NodeId) -> String {
    format!("{ADMIN_MEDIA_NODES}/{}/drain", id.0)
}

/// One control-plane node's view of the Raft group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The answering node's Raft id.
    pub node_id: u64,
    /// `Leader`, `Follower`, `Candidate`, `Learner` or `Shutdown`.
    pub state: String,
    /// The current term.
    pub term: u64,
    /// The leader as this node knows it.
    pub leader: Option<MemberStatus>,
    /// Index of the last entry in this node's log.
    pub last_log_index: Option<u64>,
    /// Index of the last entry this node applied to its state machine.
    pub last_applied: Option<u64>,
    /// Every member, voters first. `matched_index` is filled in only on the
    /// leader, which is the only node that tracks replication.
    pub members: Vec<MemberStatus>,
    /// Registered media nodes with liveness; `None` on a follower, since
    /// liveness is kept in the leader's memory only.
    pub media_nodes: Option<Vec<MediaNodeStatus>>,
}

/// A control-plane node in the membership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Raft id.
    pub id: u64,
    /// Base URL other nodes reach it at.
    pub addr: String,
    /// Voter (counts towards quorum) or learner (receives the log only).
    pub voter: bool,
    /// The last log index known to be replicated to it (leader's view).
    pub matched_index: Option<u64>,
}

/// A media node as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaNodeStatus {
    /// What it registered with.
    #[serde(flatten)]
    pub info: MediaNodeInfo,
    /// True when a heartbeat arrived recently enough to place people on it.
    pub alive: bool,
    /// Milliseconds since its last heartbeat reached the leader.
    pub last_heartbeat_ms_ago: Option<u64>,
    /// Participants it reported.
    pub participants: u32,
    /// Rooms it reported.
    pub rooms: u32,
    /// An operator is draining it: no new participants are placed there.
    #[serde(default)]
    pub draining: bool,
}

/// Body of `POST` [`ADMIN_MEMBERS`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// The new node's Raft id (unique in the cluster).
    pub id: u64,
    /// Its base URL, `http://host:port`.
    pub addr: String,
}

/// A placement decision, for the admin view and tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The chosen node.
    pub node_id: NodeId,
    /// Its signalling URL.
    pub ws_url: String,
    /// The other alive media nodes hosting the room, with relay addresses,
    /// for the join token's `room_nodes`. Absent from a leader that
    /// predates cascading, hence the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub room_nodes: Vec<RelayPeer>,
}
