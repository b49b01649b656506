//! Meeting statistics on the wire: the media nodes' participant events
//! (internal RPC, MessagePack) and the admin view's JSON.
//!
//! A media node is where participants really join and leave, so it is the
//! source of the events; the control plane turns them into meeting and
//! participant sessions (one Raft entry per batch of events) and serves
//! them to administrators. docs/protocol.md describes both halves.

use crate::ids::{NodeId, ParticipantId, RoomId, RoomSlug, UserId};
use crate::UnixMillis;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Internal RPC path: a media node reports a batch of participant events
/// ([`NodeEvents`], answered with [`NodeEventsReply`]).
pub const RPC_NODE_EVENTS: &str = "/internal/v1/nodes/events";

/// `GET`: rooms and people online now, and counts by day and by hour
/// ([`Overview`]). Administrators only.
pub const API_ADMIN_OVERVIEW: &str = "/api/admin/overview";
/// `GET ?q=&before=&limit=`: past and current meetings, newest first
/// ([`MeetingPage`]). `GET {API_ADMIN_MEETINGS}/{id}`: one meeting
/// ([`MeetingDetail`]); `/{id}/participants.csv` and `/{id}/chat` export it.
pub const API_ADMIN_MEETINGS: &str = "/api/admin/meetings";
/// `GET`: the signed-in user's own meetings ([`MeetingPage`]).
pub const API_MY_MEETINGS: &str = "/api/me/meetings";

/// Most meetings in one page of [`API_ADMIN_MEETINGS`] (also the default).
pub const MEETINGS_PAGE: usize = 50;
/// Longest search string accepted by [`API_ADMIN_MEETINGS`], in chars.
pub const MAX_SEARCH_CHARS: usize = 100;
/// Days in [`Overview::by_day`].
pub const OVERVIEW_DAYS: u64 = 30;
/// Hours in [`Overview::by_hour`].
pub const OVERVIEW_HOURS: u64 = 24;
/// Milliseconds in an hour and a day: the buckets of the counts, in UTC.
pub const HOUR_MS: u64 = 3_600_000;
/// See [`HOUR_MS`].
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// A meeting's id: one meeting is one stretch of time in which a room had
/// somebody in it, anywhere in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MeetingId(pub u64);

impl fmt::Display for MeetingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What happened to a participant on a media node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The participant took a seat on the node (a first join, or a rejoin
    /// after their node was lost; not a resume of a dropped connection,
    /// which keeps the seat).
    Joined {
        /// The name shown to others.
        display_name: String,
        /// The signed-in account, if the participant has one.
        #[serde(default)]
        user: Option<UserId>,
        /// Admitted on a guest pass.
        #[serde(default)]
        guest: bool,
    },
    /// The participant's seat on the node ended (left, removed after the
    /// reconnect grace period, replaced by a newer connection).
    Left,
}

/// One participant event, as the node reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantEvent {
    /// Unique within the node's run ([`NodeEvents::boot`]) and increasing
    /// in the order the node saw the events: with the node and the boot,
    /// the event's id, by which the control plane drops a repeat.
    pub seq: u64,
    /// The room.
    pub room_id: RoomId,
    /// The room's name, for the history (the node has it from the token).
    pub room_name: String,
    /// The room's link slug.
    pub room_slug: RoomSlug,
    /// Who.
    pub participant_id: ParticipantId,
    /// When, by the node's clock.
    pub at_ms: UnixMillis,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Body of [`RPC_NODE_EVENTS`]: events in the order the node saw them.
/// Sent again, whole or in part, until acknowledged (at-least-once); the
/// control plane applies each (node, boot, seq) once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEvents {
    /// The reporting node.
    pub node_id: NodeId,
    /// A random id of this run of the node's process. Sequence numbers
    /// restart with every run; a new boot also tells the control plane
    /// that every seat of the previous run is gone.
    pub boot: u64,
    /// The events, `seq` increasing. May be empty: the first report of a
    /// run is sent even without events, to announce the boot.
    pub events: Vec<ParticipantEvent>,
    /// Events this run dropped because its queue was full (total so far),
    /// for the control plane's log.
    #[serde(default)]
    pub dropped: u64,
}

/// Reply to [`RPC_NODE_EVENTS`]: every event of the batch is stored
/// (or was already), so the node forgets them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEventsReply {
    /// The highest `seq` of this boot now stored.
    pub stored_through: u64,
}

/// A count of one day or one hour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the bucket (UTC day or hour).
    pub start_ms: UnixMillis,
    /// Meetings that started in it.
    pub meetings: u64,
    /// Participant sessions that started in it.
    pub participants: u64,
}

/// Reply to [`API_ADMIN_OVERVIEW`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    /// Rooms with somebody in them now.
    pub rooms_online: u64,
    /// Participants in those rooms now (each seat once).
    pub participants_online: u64,
    /// Signed-in accounts among them (each account once).
    pub users_online: u64,
    /// The rooms online, longest-running first.
    pub live: Vec<MeetingView>,
    /// The last [`OVERVIEW_DAYS`] UTC days, oldest first, today last.
    pub by_day: Vec<Bucket>,
    /// The last [`OVERVIEW_HOURS`] hours, oldest first, this hour last.
    pub by_hour: Vec<Bucket>,
}

/// A meeting in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingView {
    /// Id.
    pub id: MeetingId,
    /// The room.
    pub room_id: RoomId,
    /// The room's name when the meeting began.
    pub room_name: String,
    /// The room's link slug.
    pub room_slug: RoomSlug,
    /// First join.
    pub started_at_ms: UnixMillis,
    /// Last leave; `None` while it goes on.
    pub ended_at_ms: Option<UnixMillis>,
    /// End (or now, if it goes on) minus start.
    pub duration_ms: u64,
    /// Participant sessions it had.
    pub participants: u64,
}

/// Reply to [`API_ADMIN_MEETINGS`] and [`API_MY_MEETINGS`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingPage {
    /// Newest first.
    pub meetings: Vec<MeetingView>,
    /// Pass as `before` for the next (older) page; `None` on the last.
    pub next_before: Option<MeetingId>,
}

/// A participant session: one seat, from join to leave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantView {
    /// The participant.
    pub participant_id: ParticipantId,
    /// The name shown in the meeting.
    pub display_name: String,
    /// The signed-in account, if any.
    pub user: Option<UserId>,
    /// The account's email, if any.
    pub email: Option<String>,
    /// Came on a guest pass.
    pub guest: bool,
    /// Joined.
    pub joined_at_ms: UnixMillis,
    /// Left; `None` while still in.
    pub left_at_ms: Option<UnixMillis>,
    /// Left (or now) minus joined.
    pub duration_ms: u64,
    /// The media node it was on.
    pub node_id: NodeId,
}

/// Reply to `GET {API_ADMIN_MEETINGS}/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingDetail {
    /// The meeting.
    pub meeting: MeetingView,
    /// Its participant sessions, by join time.
    pub participants: Vec<ParticipantView>,
}

/// What a webhook reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    /// A meeting started: the first participant joined an empty room.
    RoomStarted,
    /// A meeting ended: the last participant left.
    RoomFinished,
    /// A participant took a seat.
    ParticipantJoined,
    /// A participant's seat ended.
    ParticipantLeft,
    /// A recording stopped and every file of it is finished (or its node
    /// died): it can be played and downloaded.
    RecordingReady,
}

/// The participant a webhook is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookParticipant {
    /// The participant.
    pub participant_id: ParticipantId,
    /// The name shown.
    pub display_name: String,
    /// The signed-in account, if any.
    pub user: Option<UserId>,
    /// Came on a guest pass.
    pub guest: bool,
    /// The media node.
    pub node_id: NodeId,
}

/// The JSON body of a webhook delivery. The same event always has the
/// same `id`, however often it is delivered (at-least-once: deduplicate by
/// `id`). Signed in the `Veche-Signature` header
/// (`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// `evt_<n>`: unique in the cluster, assigned when the event was stored.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: WebhookKind,
    /// When it happened (the media node's clock).
    pub at_ms: UnixMillis,
    /// The meeting.
    pub meeting_id: MeetingId,
    /// The room.
    pub room_id: RoomId,
    /// The room's name.
    pub room_name: String,
    /// The room's link slug.
    pub room_slug: RoomSlug,
    /// For `participant_joined` and `participant_left`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<WebhookParticipant>,
    /// For `recording_ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<WebhookRecording>,
}

/// The recording a `recording_ready` webhook is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRecording {
    /// The recording (`GET /api/recordings/{id}`).
    pub recording_id: crate::recording::RecordingId,
    /// Its length on the common timeline.
    pub duration_ms: u64,
    /// How many files it has.
    pub files: u32,
}

/// The header carrying a webhook's signature.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "Veche-Signature";
