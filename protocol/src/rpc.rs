//! The control plane's HTTP API (JSON, for browsers and operators) and the
//! internal node <-> control-plane RPC (MessagePack over HTTP POST, because
//! it is compact, schema-less like JSON, and already what Raft uses).

use crate::chat::ChatMessage;
use crate::ids::{NodeId, ParticipantId, RoomId, RoomSlug};
use crate::UnixMillis;
use serde::{Deserialize, Serialize};

/// Longest room name, in chars.
pub const MAX_ROOM_NAME_CHARS: usize = 100;
/// Longest display name, in chars.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Default and maximum page size of `GET /api/rooms/{slug}/messages`.
pub const HISTORY_PAGE: usize = 100;

/// `POST /api/rooms` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoomRequest {
    /// Human-readable name, 1 to [`MAX_ROOM_NAME_CHARS`] chars.
    pub name: String,
    /// Who may join; `open` when absent.
    #[serde(default)]
    pub access: crate::pass::RoomAccess,
    /// Encrypt media and chat end to end (`docs/e2ee.md`). Fixed at
    /// creation: turning it on later would leave earlier chat readable by
    /// the server, and off would silently downgrade a meeting.
    #[serde(default)]
    pub e2ee: bool,
}

/// A room as the REST API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomView {
    /// Internal id.
    pub id: RoomId,
    /// The link's slug.
    pub slug: RoomSlug,
    /// Name.
    pub name: String,
    /// The full link to share: `<public url>/r/<slug>`.
    pub link: String,
    /// Creation time.
    pub created_at_ms: UnixMillis,
    /// Who may join.
    #[serde(default)]
    pub access: crate::pass::RoomAccess,
    /// True for an end-to-end encrypted room. The pre-join page says so,
    /// and a browser that cannot encrypt media refuses to join.
    #[serde(default)]
    pub e2ee: bool,
    /// The display name of the owner's account, if a signed-in user
    /// created the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_name: Option<String>,
    /// Whether the requester owns the room: its signed-in creator, or a
    /// browser presenting the owner key
    /// ([`crate::pass::OWNER_KEY_HEADER`]). Owners manage guest passes.
    #[serde(default)]
    pub you_own: bool,
    /// Only in the create response of an anonymous creator: the owner key,
    /// shown this once (the server keeps its hash). The browser keeps it and
    /// sends it as [`crate::pass::OWNER_KEY_HEADER`] to act as the owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_key: Option<String>,
    /// Only in `GET /api/rooms/{slug}?pass=TOKEN`: why that pass would not
    /// admit now (its window in words, revoked, or not this meeting's), so
    /// the page can say it before anyone tries to join. Absent when the
    /// pass admits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_refusal: Option<String>,
    /// The room's moderation settings as they stand, so the page before
    /// joining can say "This meeting has a lobby" or that it is locked.
    #[serde(default)]
    pub settings: crate::moderation::RoomSettings,
    /// The room's cover (title, description, image), if its owner set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<crate::cover::CoverView>,
}

/// `POST /api/rooms/{slug}/join` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The name to show to others, 1 to [`MAX_DISPLAY_NAME_CHARS`] chars.
    pub display_name: String,
    /// Where the client believes it is, e.g. `eu-west`. Used for placement
    /// only when the load balancer did not set [`REGION_HEADER`].
    #[serde(default)]
    pub region: Option<String>,
    /// The token of an earlier session in this room, to come back as the
    /// same participant after the media node was lost or drained. Its
    /// signature must verify; it may have expired, but not longer ago than
    /// [`REJOIN_MAX_AGE_MS`].
    #[serde(default)]
    pub rejoin_token: Option<String>,
    /// The [`JoinResponse::rejoin_secret`] that came with `rejoin_token`:
    /// proof that the caller is the one the token was issued to, and not
    /// someone who only saw the token. Required with `rejoin_token`.
    #[serde(default)]
    pub rejoin_secret: Option<String>,
    /// A media node the client could not reach; placement avoids it even if
    /// the control plane still believes it alive.
    #[serde(default)]
    pub unreachable_node: Option<NodeId>,
    /// A guest pass token (the `pass` of a `/r/{slug}?pass=TOKEN` link):
    /// admits an anonymous guest to a `signed_in_or_pass` room inside the
    /// pass's window.
    #[serde(default)]
    pub pass: Option<String>,
}

/// The request header a load balancer sets to the region the client is
/// nearest to. It takes precedence over [`JoinRequest::region`].
pub const REGION_HEADER: &str = "x-veche-region";

/// How old a token may be and still serve as a `rejoin_token`: a
/// participant whose node died comes back within seconds, so an hour is
/// generous and still bounds what a leaked token can do.
pub const REJOIN_MAX_AGE_MS: u64 = 60 * 60 * 1000;

/// `POST /api/rooms/{slug}/join` response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The signed join token to present in the `join` signalling message.
    pub token: String,
    /// The media node's signalling WebSocket URL. It may be relative to the
    /// page (`/media/ws`), in which case the client resolves it against the
    /// page's origin with `ws:`/`wss:` to match `http:`/`https:`.
    pub ws_url: String,
    /// The participant id the token grants.
    pub participant_id: ParticipantId,
    /// The media node the participant was placed on, so the client can name
    /// it in `unreachable_node` if it cannot reach it.
    pub node_id: NodeId,
    /// When the token stops being accepted. Join promptly.
    pub expires_at_ms: UnixMillis,
    /// The room.
    pub room: RoomView,
    /// A fresh random secret (32 bytes, base64url) that only this response
    /// carries; the token holds just its hash. Keep it with the token, and
    /// send both (`rejoin_token`, `rejoin_secret`) to come back as the same
    /// participant. Empty only from a server older than rejoin secrets.
    #[serde(default)]
    pub rejoin_secret: String,
}

/// `GET /api/rooms/{slug}/messages` response: up to [`HISTORY_PAGE`]
/// messages, oldest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessagesPage {
    /// The messages, in commit order.
    pub messages: Vec<ChatMessage>,
    /// True if older messages exist before the first one returned.
    pub has_more: bool,
}

/// Internal RPC path: a media node registers itself.
pub const RPC_REGISTER_NODE: &str = "/internal/v1/nodes/register";
/// Internal RPC path: a media node commits a chat message.
pub const RPC_COMMIT_CHAT: &str = "/internal/v1/chat";

/// Internal RPC path: a media node's liveness and load report.
pub const RPC_HEARTBEAT: &str = "/internal/v1/nodes/heartbeat";

/// Milliseconds between media-node heartbeats.
pub const HEARTBEAT_INTERVAL_MS: u64 = 1000;

/// A media node as the cluster knows it: what it registered with. Stored
/// durably (through Raft) because it changes only when the node's own
/// configuration does; liveness and load are not stored (see [`Heartbeat`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaNodeInfo {
    /// The node's id.
    pub node_id: NodeId,
    /// Region label (`eu-west`, `office-berlin`), used for placement.
    #[serde(default)]
    pub region: String,
    /// The signalling URL browsers should use (absolute, or a path relative
    /// to the control plane's public origin).
    pub ws_url: String,
    /// How many participants the node accepts; 0 means unlimited.
    #[serde(default)]
    pub capacity: u32,
    /// The node's QUIC relay endpoint (`host:port`), through which other
    /// media nodes cascade tracks to it. `None` for a node that cannot
    /// cascade (the embedded node of `veche serve`); a room on such a node
    /// never spans nodes.
    #[serde(default)]
    pub relay_addr: Option<String>,
}

/// Body of [`RPC_REGISTER_NODE`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegisterNode {
    /// The node's id.
    pub node_id: NodeId,
    /// The signalling URL browsers should use (absolute, or a path relative
    /// to the control plane's public origin).
    pub ws_url: String,
    /// Region label; empty when the deployment has one region.
    #[serde(default)]
    pub region: String,
    /// Participant capacity; 0 means unlimited.
    #[serde(default)]
    pub capacity: u32,
    /// The node's QUIC relay endpoint (`host:port`), through which other
    /// media nodes cascade tracks to it. `None` for a node that cannot
    /// cascade (the embedded node of `veche serve`); a room on such a node
    /// never spans nodes.
    #[serde(default)]
    pub relay_addr: Option<String>,
}

/// Reply to [`RPC_REGISTER_NODE`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegisterNodeReply {
    /// The Ed25519 public key (32 raw bytes) that signs join tokens.
    #[serde(with = "serde_bytes_compat")]
    pub token_public_key: Vec<u8>,
    /// Base URLs of every control-plane node, so the media node can fail
    /// over to another one without an operator.
    #[serde(default)]
    pub control_planes: Vec<String>,
}

/// Body of [`RPC_HEARTBEAT`]: "I am alive, and this is my load". Any
/// control-plane node accepts it and passes it to the leader, which keeps
/// it in memory only.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The node's id.
    pub node_id: NodeId,
    /// Participants connected to the node now.
    pub participants: u32,
    /// Rooms with at least one participant on the node.
    pub rooms: u32,
    /// Those rooms' ids, so that a new leader knows where each room lives
    /// and keeps placing its participants together.
    #[serde(default)]
    pub room_ids: Vec<crate::ids::RoomId>,
}

/// Reply to [`RPC_HEARTBEAT`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// False if the cluster has no registration for this node (for example
    /// its data was restored from an old backup): the node registers again.
    pub registered: bool,
    /// Base URLs of every control-plane node, leader first.
    pub control_planes: Vec<String>,
    /// An operator asked to drain this node: it tells its participants to
    /// move (they rejoin elsewhere with a new token) and exits once empty.
    #[serde(default)]
    pub draining: bool,
    /// For each room the node reported, the other alive media nodes that
    /// host it. A node links to any it is not linked with yet, which repairs
    /// the rare race where two nodes got a room's first participants at the
    /// same moment and neither token named the other.
    #[serde(default)]
    pub room_nodes: Vec<RoomNodes>,
    /// The current policy version of each room in the heartbeat's
    /// `room_ids`. A node whose copy is older fetches the policy
    /// ([`RPC_ROOM_POLICY`]): that is how changes made over REST (an owner
    /// locking a room from its page) and any relay message a node missed
    /// reach it within a heartbeat.
    #[serde(default)]
    pub policy_versions: Vec<(RoomId, u64)>,
}

/// Node -> control plane: the room's current moderation policy. Body
/// [`RoomPolicyRequest`], reply [`crate::moderation::RoomPolicy`] (the
/// default, version 0, for a room nobody moderated yet).
pub const RPC_ROOM_POLICY: &str = "/internal/v1/rooms/policy";

/// Body of [`RPC_ROOM_POLICY`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoomPolicyRequest {
    /// The room.
    pub room_id: RoomId,
}

/// Node -> control plane: apply a moderation action. Body
/// [`ModerateRequest`]; reply the new [`crate::moderation::RoomPolicy`],
/// or an error body with `forbidden` and the reason (nothing committed).
pub const RPC_MODERATE: &str = "/internal/v1/rooms/moderate";

/// Body of [`RPC_MODERATE`]. The node fills in what only it knows (who is
/// acting, as their token says, and who is present); the control plane
/// decides with the room's committed policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerateRequest {
    /// The room.
    pub room_id: RoomId,
    /// Who acts. `None` for the node itself: the lobby opening after it
    /// stayed unattended ([`crate::limits::moderation::LOBBY_UNATTENDED_MS`]),
    /// which only admits.
    pub actor: Option<Actor>,
    /// The action.
    pub action: crate::moderation::ModAction,
    /// Everyone in the room as the node sees it, with the role each one's
    /// token claims: whom `mute_everyone` holds, and the target's account
    /// and pass for a ban.
    #[serde(default)]
    pub present: Vec<PresentParticipant>,
    /// When the node received the action.
    pub at_ms: UnixMillis,
}

/// The participant acting, as their join token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Their participant id.
    pub participant_id: ParticipantId,
    /// Their name.
    pub display_name: String,
    /// The role their token claims.
    pub claimed_role: crate::moderation::Role,
}

/// One participant present in the room, as the node sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresentParticipant {
    /// Their id.
    pub participant_id: ParticipantId,
    /// The role their token claims.
    pub claimed_role: crate::moderation::Role,
    /// Their account, if any.
    #[serde(default)]
    pub user: Option<crate::ids::UserId>,
    /// Their guest pass, if any.
    #[serde(default)]
    pub pass: Option<crate::pass::PassId>,
}

/// The media nodes hosting one room, besides the one being told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomNodes {
    /// The room.
    pub room_id: RoomId,
    /// The other nodes hosting it, with their relay addresses.
    pub nodes: Vec<RelayPeer>,
}

/// Another media node, as far as cascading needs to know it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RelayPeer {
    /// Its id, which its TLS certificate must name.
    pub node_id: NodeId,
    /// Its QUIC relay endpoint, `host:port`.
    pub relay_addr: String,
}

/// Body of [`RPC_COMMIT_CHAT`]. The reply is the committed
/// [`ChatMessage`], or an [`crate::error::ErrorBody`] with a non-2xx status.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitChat {
    /// Room.
    pub room_id: RoomId,
    /// Sender.
    pub participant_id: ParticipantId,
    /// Sender's display name.
    pub display_name: String,
    /// Raw text; the control plane validates and filters it again.
    pub text: String,
    /// The client's id for the message, if any.
    pub client_msg_id: Option<String>,
    /// When the node accepted it.
    pub sent_at_ms: UnixMillis,
}

/// MessagePack encodes `Vec<u8>` as an array of ints by default; this keeps
/// it a compact `bin` without pulling in another crate.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_reply_round_trips_through_msgpack() {
        let r = RegisterNodeReply {
            token_public_key: vec![1, 2, 3, 255],
            control_planes: vec!["http://127.0.0.1:1".into()],
        };
        let bytes = rmp_serde::to_vec_named(&r).unwrap();
        let back: RegisterNodeReply = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.token_public_key, vec![1, 2, 3, 255]);
    }
}
