//! The replicated state machine's commands and their results.
//!
//! Commands are deterministic: anything that depends on the clock or on
//! randomness (timestamps, slugs, keys) is decided by the proposer and
//! carried in the command, so every replica applies the same bytes to the
//! same result.

use serde::{Deserialize, Serialize};
use veche_protocol::chat::ChatMessage;
use veche_protocol::pass::RoomAccess;
use veche_protocol::rpc::MediaNodeInfo;
use veche_protocol::{NodeId, ParticipantId, RoomId, RoomSlug, UnixMillis, UserId};

/// A room as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// Assigned at apply time: unique, increasing in commit order.
    pub id: RoomId,
    /// Unguessable link slug, chosen by the proposer.
    pub slug: RoomSlug,
    /// Name.
    pub name: String,
    /// Proposer's wall clock at creation.
    pub created_at_ms: UnixMillis,
    /// The signed-in creator, who manages the room's guest passes. Rooms
    /// from before owners existed (and anonymous creators') have none.
    #[serde(default)]
    pub owner: Option<UserId>,
    /// SHA-256 of the owner key handed to an anonymous creator: whoever
    /// presents the key acts as the owner, like a host link.
    #[serde(default)]
    pub owner_key_hash: Option<[u8; 32]>,
    /// Who may join; rooms from before access rules are open.
    #[serde(default)]
    pub access: RoomAccess,
    /// Media and chat are encrypted end to end (`docs/e2ee.md`): the
    /// room has a delivery service (`e2ee.rs`) and cannot be recorded.
    /// Fixed at creation; rooms from before E2EE are not encrypted.
    #[serde(default)]
    pub e2ee: bool,
}

/// A room to create: what the proposer decided ([`Command::CreateRoom`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRoom {
    /// Link slug.
    pub slug: RoomSlug,
    /// Validated name.
    pub name: String,
    /// Creation time.
    pub created_at_ms: UnixMillis,
    /// Signed-in creator.
    pub owner: Option<UserId>,
    /// SHA-256 of an anonymous creator's owner key.
    pub owner_key_hash: Option<[u8; 32]>,
    /// Who may join.
    pub access: RoomAccess,
    /// End-to-end encrypted.
    pub e2ee: bool,
}

impl NewRoom {
    /// An open room without an owner: what every room was before owners.
    pub fn open(slug: RoomSlug, name: String, created_at_ms: UnixMillis) -> Self {
        NewRoom {
            slug,
            name,
            created_at_ms,
            owner: None,
            owner_key_hash: None,
            access: RoomAccess::Open,
            e2ee: false,
        }
    }

    /// The room, once its id is assigned.
    pub fn into_room(self, id: RoomId) -> Room {
        Room {
            id,
            slug: self.slug,
            name: self.name,
            created_at_ms: self.created_at_ms,
            owner: self.owner,
            owner_key_hash: self.owner_key_hash,
            access: self.access,
            e2ee: self.e2ee,
        }
    }

    /// Whether `room` is the one this command created before (the
    /// proposer's own retry): everything but the id is the same.
    pub fn is_retry_of(&self, room: &Room) -> bool {
        room.name == self.name
            && room.created_at_ms == self.created_at_ms
            && room.owner == self.owner
            && room.owner_key_hash == self.owner_key_hash
            && room.access == self.access
            && room.e2ee == self.e2ee
    }
}

/// A media node as stored: what it registered with, and whether an operator
/// is draining it. The two live in one record so that a registration and
/// its drain flag can never disagree about which node they describe, and so
/// that re-registering (a freshly started process) can clear the flag in
/// the same write.
///
/// The registration is flattened, so a record written before the flag
/// existed (a bare `MediaNodeInfo`) reads back as not draining.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaNodeRecord {
    /// What the node registered with.
    #[serde(flatten)]
    pub info: MediaNodeInfo,
    /// An operator asked to drain it: no new participants go there, and
    /// the node is told so in every heartbeat reply.
    #[serde(default)]
    pub draining: bool,
}

/// A write to the control plane's durable state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create a room. Fails with [`CommandError::SlugTaken`] if another
    /// room has the slug (a 2^-128 event, but checked rather than assumed).
    /// The same command applied twice (a retry after a lost reply) returns
    /// the room it created the first time.
    CreateRoom {
        /// Link slug.
        slug: RoomSlug,
        /// Validated name.
        name: String,
        /// Creation time.
        created_at_ms: UnixMillis,
        /// Signed-in creator (absent in entries from before owners).
        #[serde(default)]
        owner: Option<UserId>,
        /// SHA-256 of an anonymous creator's owner key.
        #[serde(default)]
        owner_key_hash: Option<[u8; 32]>,
        /// Who may join.
        #[serde(default)]
        access: RoomAccess,
        /// End-to-end encrypted (absent in entries from before E2EE).
        #[serde(default)]
        e2ee: bool,
    },
    /// Append a chat message. The text is already validated and filtered.
    /// If `client_msg_id` is set and a message from the same participant in
    /// the same room with the same `client_msg_id` exists, the existing
    /// message is returned and nothing is appended (idempotent retry).
    PostChat {
        /// Room.
        room_id: RoomId,
        /// Sender.
        participant_id: ParticipantId,
        /// Sender's display name.
        display_name: String,
        /// Filtered text.
        text: String,
        /// Acceptance time.
        sent_at_ms: UnixMillis,
        /// Client's idempotency key.
        client_msg_id: Option<String>,
    },
    /// Install the join-token signing key (PKCS#8 Ed25519) if none is set
    /// yet. The first writer wins; the result is always the installed key,
    /// so concurrent proposers converge on one key.
    InitSigningKey {
        /// PKCS#8 document.
        pkcs8: Vec<u8>,
    },
    /// Record (or update) a media node's registration. Proposed only when
    /// the registration differs from what is stored, so a restarting node
    /// costs one entry and heartbeats cost none.
    ///
    /// It also clears the node's drain flag: a node registers when its
    /// process starts, and a freshly started process is back in service.
    RegisterMediaNode {
        /// What the node registered with.
        info: MediaNodeInfo,
    },
    /// Set or clear a registered media node's drain flag. Refused with
    /// [`CommandError::NoSuchMediaNode`] for a node that never registered.
    /// Setting the flag it already has changes nothing, so retries are safe.
    SetMediaNodeDraining {
        /// The node.
        node_id: NodeId,
        /// Drain (`true`) or put back in service (`false`).
        draining: bool,
    },
    /// Accounts and sessions (`accounts.rs`).
    Accounts(super::accounts::AccountCommand),
    /// Guest passes (`passes.rs`).
    Passes(super::pass_model::PassCommand),
    /// Meeting statistics (`stats.rs`): a batch of a media node's
    /// participant events, or a lost node's sessions closed.
    Stats(super::stats::StatsCommand),
    /// Room policies (`policies.rs`): moderation, hosts, settings.
    Policies(super::policy_model::PolicyCommand),
    /// Room covers (`covers.rs`).
    Covers(super::cover_model::CoverCommand),
    /// The recordings index (`recordings.rs`): node reports, deletions,
    /// a lost node's files.
    Recordings(super::recording_model::RecordingCommand),
    /// The E2EE delivery service (`e2ee.rs`): one handshake step.
    E2ee(super::e2ee_model::E2eeCommand),
    /// Several commands in one log entry, applied in order, each with its
    /// own result ([`CommandOutput::Batch`]). openraft 0.9 appends and
    /// flushes client writes one entry at a time, so packing concurrent
    /// writes into one entry is what lets many chat messages share one
    /// fsync. Never nested.
    Batch(Vec<Command>),
}

impl Command {
    /// The command that creates `room`.
    pub fn create_room(room: NewRoom) -> Command {
        Command::CreateRoom {
            slug: room.slug,
            name: room.name,
            created_at_ms: room.created_at_ms,
            owner: room.owner,
            owner_key_hash: room.owner_key_hash,
            access: room.access,
            e2ee: room.e2ee,
        }
    }

    /// Whether applying this command twice has the same effect as once.
    /// Only such commands may be retried after an ambiguous failure (a
    /// timeout or a dropped connection after the request was sent), when
    /// the first attempt may or may not have committed.
    pub fn is_idempotent(&self) -> bool {
        match self {
            Command::CreateRoom { .. }
            | Command::InitSigningKey { .. }
            | Command::RegisterMediaNode { .. }
            | Command::SetMediaNodeDraining { .. } => true,
            Command::PostChat { client_msg_id, .. } => client_msg_id.is_some(),
            Command::Accounts(c) => c.is_idempotent(),
            Command::Passes(c) => c.is_idempotent(),
            Command::Stats(c) => c.is_idempotent(),
            Command::Policies(c) => c.is_idempotent(),
            Command::Covers(c) => c.is_idempotent(),
            Command::Recordings(c) => c.is_idempotent(),
            Command::E2ee(c) => c.is_idempotent(),
            Command::Batch(cmds) => cmds.iter().all(Command::is_idempotent),
        }
    }
}

/// The successful result of applying a [`Command`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutput {
    /// The created room.
    Room(Room),
    /// The stored message (new, or the existing one on idempotent retry).
    Chat(ChatMessage),
    /// The installed signing key.
    SigningKey(Vec<u8>),
    /// The stored media-node record (registration and drain flag).
    MediaNode(MediaNodeRecord),
    /// What an account command answered.
    Accounts(Box<super::accounts::AccountOutput>),
    /// What a pass command answered.
    Passes(Box<super::pass_model::PassOutput>),
    /// What a statistics command answered.
    Stats(super::stats::StatsOutput),
    /// A room's policy after a policy command.
    Policy(Box<veche_protocol::moderation::RoomPolicy>),
    /// What a cover command answered.
    Covers(Box<super::cover_model::CoverOutput>),
    /// What a recording command answered.
    Recordings(Box<super::recording_model::RecordingOutput>),
    /// What the delivery service answered a handshake step.
    E2ee(veche_protocol::e2ee::DsReply),
    /// One result per command of a [`Command::Batch`], in order.
    Batch(Vec<CommandResult>),
}

/// A command that was committed to the log but refused by the state
/// machine. Refusals are deterministic, so every replica refuses alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CommandError {
    /// `CreateRoom` with a slug that exists.
    #[error("room slug already exists")]
    SlugTaken,
    /// `PostChat` to a room that does not exist.
    #[error("no such room")]
    NoSuchRoom,
    /// `SetMediaNodeDraining` for a node that is not registered.
    #[error("no such media node")]
    NoSuchMediaNode,
    /// An account command was refused.
    #[error(transparent)]
    Account(#[from] super::accounts::AccountRefusal),
    /// A pass command was refused.
    #[error(transparent)]
    Pass(#[from] super::pass_model::PassRefusal),
    /// A policy command was refused by the moderation rules.
    #[error(transparent)]
    Policy(#[from] super::policy_model::PolicyRefusal),
    /// The delivery service refused a handshake step, or an encrypted
    /// room refused chat that is not sealed.
    #[error(transparent)]
    E2ee(#[from] super::e2ee_model::E2eeRefusal),
    /// A [`Command::Batch`] inside a batch.
    #[error("batches do not nest")]
    NestedBatch,
}

/// What the state machine returns for each applied entry.
pub type CommandResult = Result<CommandOutput, CommandError>;
