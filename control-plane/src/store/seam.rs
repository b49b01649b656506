//! [`Store`]: what the control plane keeps, as one trait, so that the code
//! above it does not depend on how (or whether) it is replicated.
//!
//! Two implementations pass one conformance suite (`store::conformance`,
//! run by `cargo test -p veche-control-plane --lib conformance`):
//!
//! - [`super::RaftStore`]: openraft over redb. Writes commit through the
//!   Raft log; reads confirm leadership with a quorum first, so they are
//!   linearizable. On a follower both answer [`StoreError::NotLeader`]: the
//!   leader forwarding of `crate::leader` sits above this trait, not in it.
//! - [`super::MemStore`]: plain maps behind a mutex. The reference for what
//!   the commands mean, and the store for tests that need no disk or Raft.
//!
//! Above them, `crate::leader::Replicated` is the same trait as any
//! control-plane node serves it: writes forwarded to the leader, reads after
//! a read barrier. It passes the same suite on a one-node control plane.
//! It is the one path of the HTTP API (`crate::api`) to what is stored:
//! every handler that reads or writes rooms, messages, the signing key or
//! media nodes calls this trait on `cp.replicated()`, and a test in
//! `api/tests.rs` fails if one reaches the Raft store or proposes a
//! `Command` itself. When forwarding fails (no leader in time, a write's
//! outcome unknown), `Replicated` answers [`StoreError::Forwarding`] with
//! the words the API gives the client.
//!
//! # Adding a table
//!
//! New capabilities (accounts, sessions, passes, statistics, roles,
//! recordings) use document tables (`docs.rs`), as `accounts.rs` does:
//!
//! 1. A module of its own with a command enum (everything that depends on
//!    the clock or on randomness carried in the command), its outputs and
//!    refusals, one `Command`/`CommandOutput`/`CommandError` variant each in
//!    [`super::model`], and an `apply` over `DocsMut`, dispatched to from
//!    `capabilities.rs`, which both `state_machine.rs` and `mem.rs` call
//!    (their match arm lists the capability's variant): written once.
//! 2. Queries over `Docs`, and a store trait with a blanket impl over
//!    [`super::DocAccess`] (so `MemStore`, `RaftStore` and `Replicated` all
//!    have it, with one read barrier per method).
//! 3. Conformance cases for every sentence of its contract
//!    (`conformance_accounts.rs` is the pattern), hooked into
//!    `conformance::run_all`. Snapshots need nothing: every document
//!    table travels in them.
//! 4. Handlers call the trait on `cp.replicated()`.
//!
//! The first tables (rooms, chat, the signing key, media nodes) predate
//! document tables and have their own redb tables, apply code in both
//! stores, snapshot fields, and methods on this trait; `raft_seam.rs`
//! writes those methods once for every `CommandLog`. A refusal the handler
//! answers in its own words is matched as `StoreError::Refused`; the rest
//! go through `api::write_error` or `ApiError::from`.

use super::error::StoreError;
use super::model::{CommandOutput, CommandResult, MediaNodeRecord, NewRoom, Room};
use std::future::Future;
use veche_protocol::chat::ChatMessage;
use veche_protocol::rpc::MediaNodeInfo;
use veche_protocol::{MessageId, NodeId, ParticipantId, RoomId, RoomSlug, UnixMillis};

/// A chat message to append, as accepted from a participant: the text is
/// already validated and filtered, and the time is the acceptor's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// Room.
    pub room_id: RoomId,
    /// Sender.
    pub participant_id: ParticipantId,
    /// Sender's display name.
    pub display_name: String,
    /// Filtered text.
    pub text: String,
    /// Acceptance time.
    pub sent_at_ms: UnixMillis,
    /// The client's idempotency key, unique per (room, participant).
    pub client_msg_id: Option<String>,
}

/// One page of a room's history, oldest first, and whether older messages
/// exist.
pub type HistoryPage = (Vec<ChatMessage>, bool);

/// The control plane's durable state: rooms, chat history, the join-token
/// signing key and media-node registrations.
///
/// Every method is linearizable: a read sees every write that returned
/// before it began. Refusals (a taken slug, an unknown room or node) are
/// [`StoreError::Refused`]; any other error means the store could not
/// answer, and only an idempotent write may then be retried blindly.
pub trait Store: Send + Sync {
    /// Creates a room with this slug, owner and access rule. Idempotent:
    /// the same command again (a retry after a lost reply) returns the room
    /// the first call created. Another room with the slug is
    /// [`CommandError::SlugTaken`](super::model::CommandError::SlugTaken). Room ids are unique and increasing.
    fn create_room_as(
        &self,
        room: NewRoom,
    ) -> impl Future<Output = Result<Room, StoreError>> + Send;

    /// [`Store::create_room_as`] an open room without an owner.
    fn create_room(
        &self,
        slug: RoomSlug,
        name: String,
        created_at_ms: UnixMillis,
    ) -> impl Future<Output = Result<Room, StoreError>> + Send {
        self.create_room_as(NewRoom::open(slug, name, created_at_ms))
    }

    /// The room with this slug, if any.
    fn room_by_slug(
        &self,
        slug: &RoomSlug,
    ) -> impl Future<Output = Result<Option<Room>, StoreError>> + Send;

    /// The room with this id, if any.
    fn room_by_id(
        &self,
        id: RoomId,
    ) -> impl Future<Output = Result<Option<Room>, StoreError>> + Send;

    /// Appends a chat message and returns it with its id. Ids are unique
    /// and strictly increasing in commit order. With a `client_msg_id`
    /// that the same participant already used in the same room, nothing is
    /// appended and the first message is returned (an idempotent retry);
    /// keys of other participants or rooms never match. A room that does
    /// not exist is [`CommandError::NoSuchRoom`](super::model::CommandError::NoSuchRoom).
    fn post_chat(
        &self,
        message: NewMessage,
    ) -> impl Future<Output = Result<ChatMessage, StoreError>> + Send;

    /// The newest `limit` messages of `room` with an id below `before` (or
    /// the newest overall if `None`), oldest first, and whether older ones
    /// exist. To page back, pass the first returned id as the next
    /// `before`. An unknown room has an empty history.
    fn messages(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: usize,
    ) -> impl Future<Output = Result<HistoryPage, StoreError>> + Send;

    /// The room with this slug and a page of its history, as
    /// [`Store::room_by_slug`] and then [`Store::messages`] would answer,
    /// but read at one point: one linearizable read where two would each
    /// pay for their own (on a follower, a round trip to the leader). `None`
    /// if no room has the slug.
    fn room_history(
        &self,
        slug: &RoomSlug,
        before: Option<MessageId>,
        limit: usize,
    ) -> impl Future<Output = Result<Option<(Room, HistoryPage)>, StoreError>> + Send;

    /// Installs the join-token signing key (PKCS#8) unless one is set, and
    /// returns the installed one: the first writer wins, so concurrent
    /// first callers converge on one key.
    fn init_signing_key(
        &self,
        pkcs8: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// The installed join-token signing key, if any.
    fn signing_key(&self) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Records a media node's registration, replacing an earlier one of the
    /// same node id, and clears its drain flag: a node registers when its
    /// process starts, and a fresh process is back in service.
    fn register_media_node(
        &self,
        info: MediaNodeInfo,
    ) -> impl Future<Output = Result<MediaNodeRecord, StoreError>> + Send;

    /// Sets or clears a registered node's drain flag and returns its
    /// record. Setting the flag it has changes nothing. A node that never
    /// registered is [`CommandError::NoSuchMediaNode`](super::model::CommandError::NoSuchMediaNode).
    fn set_media_node_draining(
        &self,
        node: NodeId,
        draining: bool,
    ) -> impl Future<Output = Result<MediaNodeRecord, StoreError>> + Send;

    /// Every registered media node with its drain flag, by node id.
    fn media_nodes(&self) -> impl Future<Output = Result<Vec<MediaNodeRecord>, StoreError>> + Send;
}

/// The command's result as a `T`: a refusal becomes
/// [`StoreError::Refused`], an output of another kind (a bug: commands
/// answer with their own kind) [`StoreError::Inconsistent`].
pub(crate) fn expect<T>(
    result: CommandResult,
    what: &str,
    pick: impl FnOnce(CommandOutput) -> Result<T, CommandOutput>,
) -> Result<T, StoreError> {
    match result {
        Ok(out) => pick(out).map_err(|other| {
            StoreError::Inconsistent(format!("{what} was answered with {other:?}"))
        }),
        Err(refusal) => Err(StoreError::Refused(refusal)),
    }
}

/// [`expect`] for commands answered with a room.
pub(crate) fn room(result: CommandResult) -> Result<Room, StoreError> {
    expect(result, "CreateRoom", |o| match o {
        CommandOutput::Room(r) => Ok(r),
        other => Err(other),
    })
}

/// [`expect`] for commands answered with a chat message.
pub(crate) fn chat(result: CommandResult) -> Result<ChatMessage, StoreError> {
    expect(result, "PostChat", |o| match o {
        CommandOutput::Chat(m) => Ok(m),
        other => Err(other),
    })
}

/// [`expect`] for commands answered with the signing key.
pub(crate) fn signing_key(result: CommandResult) -> Result<Vec<u8>, StoreError> {
    expect(result, "InitSigningKey", |o| match o {
        CommandOutput::SigningKey(k) => Ok(k),
        other => Err(other),
    })
}

/// [`expect`] for commands answered with a media-node record.
pub(crate) fn media_node(result: CommandResult) -> Result<MediaNodeRecord, StoreError> {
    expect(result, "a media-node command", |o| match o {
        CommandOutput::MediaNode(n) => Ok(n),
        other => Err(other),
    })
}

impl NewMessage {
    /// The command that appends this message.
    pub fn into_command(self) -> super::model::Command {
        super::model::Command::PostChat {
            room_id: self.room_id,
            participant_id: self.participant_id,
            display_name: self.display_name,
            text: self.text,
            sent_at_ms: self.sent_at_ms,
            client_msg_id: self.client_msg_id,
        }
    }
}
