//! Browser <-> media node signalling: JSON text frames over one WebSocket.
//!
//! Every frame is one JSON object with a `"type"` field. The full
//! specification, with examples, is `docs/protocol.md`; keep the two in
//! step.

use crate::chat::ChatMessage;
use crate::error::ErrorBody;
use crate::ids::{ParticipantId, RoomId, RoomSlug, TrackId};
use crate::moderation::{LobbyEntry, MediaGroup, ModAction, Notice, PolicyView, Role};
use crate::p2p::{DirectState, MediaPath, Pairing, PeerSignal};
use crate::UnixMillis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest signalling frame the node accepts: the row in the table of
/// limits, re-exported here because every parser of frames needs it. SDP
/// for a large room is a few tens of kilobytes; chat is capped far below.
pub use crate::limits::signal::MAX_FRAME_BYTES;

/// What kind of media a track carries, and from which device. The SFU
/// forwards all of them alike; the distinction is for the UI (screen shares
/// get their own tile) and, later, for moderation and layer selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    /// Microphone audio.
    Microphone,
    /// Camera video.
    Camera,
    /// Screen-share video.
    Screen,
    /// Screen-share audio (tab audio).
    ScreenAudio,
}

impl TrackSource {
    /// True for sources that carry audio.
    pub fn is_audio(self) -> bool {
        matches!(self, TrackSource::Microphone | TrackSource::ScreenAudio)
    }

    /// What a moderator stops to stop this track: a screen share's audio
    /// goes with the screen.
    pub fn group(self) -> MediaGroup {
        match self {
            TrackSource::Microphone => MediaGroup::Microphone,
            TrackSource::Camera => MediaGroup::Camera,
            TrackSource::Screen | TrackSource::ScreenAudio => MediaGroup::Screen,
        }
    }
}

/// Media kind, as in SDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// A trickle ICE candidate (in `ice.rs`, which both this module and
/// `p2p.rs` use without importing each other).
pub use crate::ice::IceCandidate;

/// Messages from a browser to its media node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Must be the first frame. Presents the join token from the control
    /// plane.
    Join {
        /// The signed token from `POST /api/rooms/{slug}/join`.
        token: String,
        /// The participant's initial device state.
        #[serde(default)]
        media: MediaState,
        /// Set when reconnecting after the connection dropped: take back
        /// the seat from the previous session instead of joining anew, so
        /// others see the same participant go from `reconnecting` back to
        /// `connected`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
        /// The client can connect directly to one other participant
        /// ([`crate::p2p`]). Clients that leave it out (load bots, older
        /// pages) always use the SFU.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        p2p: bool,
    },
    /// An SDP offer from the browser: its first offer, or a later one when
    /// it adds or removes a track it sends (screen sharing).
    Offer {
        /// The SDP text.
        sdp: String,
        /// What each sent track is, keyed by the track id in the offer's
        /// `a=msid` line. Unlisted tracks default by kind (audio as
        /// microphone, video as camera).
        #[serde(default)]
        tracks: BTreeMap<String, TrackSource>,
    },
    /// The browser's answer to the node's latest `offer`.
    Answer {
        /// The SDP text.
        sdp: String,
    },
    /// A trickle ICE candidate from the browser. `null` means end of
    /// candidates.
    Candidate {
        /// The candidate, or `None` at the end of gathering.
        candidate: Option<IceCandidate>,
    },
    /// The participant changed their microphone/camera/screen state.
    Media(MediaState),
    /// Post a chat message.
    Chat {
        /// The text. Validated and filtered by the server.
        text: String,
        /// The client's own id for the message, echoed back in the
        /// committed message.
        #[serde(default)]
        client_msg_id: Option<String>,
    },
    /// Keepalive; the node answers with `pong`. Browsers cannot send
    /// WebSocket pings, and a proxy may drop idle sockets.
    Ping {
        /// Echoed back.
        #[serde(default)]
        seq: u64,
    },
    /// Leave the room now. The node tells everyone and closes the socket.
    Leave,
    /// A moderation action (see [`ModAction`]). The node checks it with
    /// the control plane, which commits it or refuses it with `forbidden`
    /// and a reason; nothing changes on a refusal.
    Moderate(ModAction),
    /// Raise or lower one's hand.
    Hand {
        /// True to raise.
        raised: bool,
    },
    /// End-to-end encrypted rooms only: an MLS key package (RFC 9420,
    /// base64url), sent on join, again every
    /// [`crate::limits::e2ee::KEY_PACKAGE_RETRY_MS`] until welcomed, and
    /// on reconnect. The control plane orders it ([`crate::e2ee`]); the
    /// node relays it to the room, or answers `e2ee_found`.
    E2eeKeyPackage {
        /// The key package, opaque to the server.
        key_package: String,
    },
    /// End-to-end encrypted rooms only: an MLS commit, with the welcome
    /// for those it adds. The first commit from an epoch wins; a later one
    /// is refused with `invalid_state` and changes nothing.
    E2eeCommit {
        /// The group incarnation the commit belongs to.
        group: u32,
        /// The epoch the commit starts from.
        epoch: u64,
        /// Participants it adds (each sent a key package).
        #[serde(default)]
        added: Vec<ParticipantId>,
        /// Participants it removes because they left.
        #[serde(default)]
        removed: Vec<ParticipantId>,
        /// The commit, opaque to the server (base64url).
        commit: String,
        /// The welcome for `added`, opaque to the server (base64url).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        welcome: Option<String>,
    },
    /// Peer-to-peer rooms only: a signal for the one other participant,
    /// relayed by the node while the room's path is `p2p` with this
    /// `pairing`; refused with `invalid_state` otherwise.
    PeerSignal {
        /// The peer named in `media_path`.
        to: ParticipantId,
        /// The `pairing` of the `media_path` it answers.
        pairing: Pairing,
        /// The signal.
        signal: PeerSignal,
    },
    /// Peer-to-peer rooms only: how this participant's direct connection
    /// of `pairing` went. `connected` once it decodes the peer (a pair
    /// that came back from the SFU is forwarded until both said so);
    /// `failed` switches the room to the SFU. Refused with
    /// `invalid_state` from anyone but the pair of the current pairing.
    P2pState {
        /// The `pairing` of the `media_path` it reports on.
        pairing: Pairing,
        /// What happened.
        state: DirectState,
    },
}

/// Proof that a new connection may take over a seat whose connection
/// dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    /// The seat's participant id (from the earlier `joined`).
    pub participant_id: ParticipantId,
    /// The `resume_token` from the earlier `joined`.
    pub resume_token: String,
    /// The client still holds the seat's peer connection and will restart
    /// its ICE over this socket: the node keeps its side too (if it still
    /// has it), so the seat's tracks, and everyone's view of them, carry on
    /// with no renegotiation. `joined.media_kept` says whether it did.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_media: bool,
}

/// A participant's device state as the room sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaState {
    /// Microphone muted, or no microphone at all.
    pub mic_muted: bool,
    /// Camera off, or no camera at all.
    pub camera_muted: bool,
    /// Sharing the screen.
    pub screen_sharing: bool,
}

/// Connection status of a participant as others see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// Signalling connected.
    Connected,
    /// The signalling connection dropped without a goodbye; the node keeps
    /// the seat for a grace period while the client retries.
    Reconnecting,
}

/// A published track, announced so clients can label incoming media.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// The track id, written as the msid track id in the node's SDP. Do not
    /// expect it to equal `MediaStreamTrack.id` at the receiver: when the
    /// node reuses a media section the browser created, the browser keeps
    /// its own id for the receiving track. Match on `stream_id` instead.
    pub id: TrackId,
    /// Audio or video.
    pub kind: MediaKind,
    /// Which device it comes from.
    pub source: TrackSource,
    /// The `MediaStream.id` the browser sees: the publisher's participant
    /// id for microphone and camera (so they play in one element), and
    /// `<participant id>-screen` for screen share.
    pub stream_id: String,
}

/// One participant as every member of the room sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    /// Their id.
    pub id: ParticipantId,
    /// The name they gave.
    pub display_name: String,
    /// Connection status.
    pub status: PresenceStatus,
    /// Device state.
    pub media: MediaState,
    /// Tracks they currently publish.
    pub tracks: Vec<TrackInfo>,
    /// When they joined.
    pub joined_at_ms: UnixMillis,
    /// Joined without an account in a room of the organisation (a guest
    /// pass, or an open room's link): the participant list marks the name
    /// "(guest)". Absent means false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guest: bool,
    /// Their authority in the room: their join token's role, raised by the
    /// room's policy (a host, or a granted moderator).
    #[serde(default)]
    pub role: Role,
    /// When they raised their hand (by the clock of their media node);
    /// absent when it is down. Lists order raised hands by this, then id,
    /// so every participant sees the same order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_raised_at_ms: Option<UnixMillis>,
}

/// The room, as shown in the `joined` message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// Internal id.
    pub id: RoomId,
    /// Link slug.
    pub slug: RoomSlug,
    /// Name.
    pub name: String,
    /// True for a room created end-to-end encrypted: the client must
    /// encrypt media and chat (see `docs/e2ee.md`) or not connect.
    #[serde(default)]
    pub e2ee: bool,
}

/// Messages from the media node to a browser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The join was accepted. Carries the full room state; after this the
    /// client applies `participant_*` deltas in order.
    Joined {
        /// This participant's id.
        participant_id: ParticipantId,
        /// The room.
        room: RoomInfo,
        /// Everyone in the room, including this participant.
        participants: Vec<ParticipantInfo>,
        /// ICE servers the browser should use (STUN/TURN); empty on a LAN.
        ice_servers: Vec<IceServer>,
        /// Secret for taking this seat back after a dropped connection
        /// (see `Join::resume`). Keep it in memory only.
        resume_token: String,
        /// True when this `joined` resumed an existing seat.
        #[serde(default)]
        resumed: bool,
        /// A resume that asked to keep its media (`Resume::keep_media`)
        /// did: the node's side of the old peer connection now answers on
        /// this socket. False: make a new peer connection.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        media_kept: bool,
        /// The room's moderation state; `policy` messages replace it.
        #[serde(default)]
        policy: PolicyView,
    },
    /// The room's moderation state changed: settings, holds, speakers.
    /// Replaces the previous one (compare `version`).
    Policy {
        /// The new state.
        policy: PolicyView,
    },
    /// Something a moderator did to this participant, and who.
    Moderated {
        /// What happened.
        #[serde(flatten)]
        notice: Notice,
        /// The moderator's participant id.
        by: ParticipantId,
        /// The moderator's name.
        by_name: String,
    },
    /// Who waits in the lobby (to hosts and moderators only): the whole
    /// list, on every change, and after `joined`.
    Lobby {
        /// Waiting people, longest-waiting first.
        waiting: Vec<LobbyEntry>,
    },
    /// Sent instead of `joined` to someone whose token puts them in the
    /// lobby: they wait until a moderator admits them (then `joined`
    /// follows on the same connection) or denies them (then an `error`
    /// with `forbidden`, and close code [`CLOSE_DENIED`]).
    LobbyWaiting {
        /// The room.
        room: RoomInfo,
    },
    /// The node's answer to the browser's `offer`.
    Answer {
        /// SDP text.
        sdp: String,
    },
    /// A node-initiated offer: tracks to receive were added or removed.
    /// The browser must reply with `answer`.
    Offer {
        /// SDP text.
        sdp: String,
    },
    /// A trickle ICE candidate from the node; `null` ends gathering.
    Candidate {
        /// The candidate.
        candidate: Option<IceCandidate>,
    },
    /// Someone joined.
    ParticipantJoined {
        /// Who.
        participant: ParticipantInfo,
    },
    /// Someone's status, devices or tracks changed. Carries their whole
    /// new state, so clients replace rather than patch.
    ParticipantUpdated {
        /// Their new state.
        participant: ParticipantInfo,
    },
    /// Someone left.
    ParticipantLeft {
        /// Who.
        participant_id: ParticipantId,
        /// Why, for the UI.
        reason: LeaveReason,
    },
    /// A committed chat message (including the recipient's own).
    Chat {
        /// The message.
        message: ChatMessage,
    },
    /// A request failed. The connection stays open unless a close frame
    /// follows.
    Error {
        /// What failed.
        #[serde(flatten)]
        error: ErrorBody,
        /// The `type` of the client message that failed, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
        /// The chat `client_msg_id`, when a chat message was refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    /// This media node is going away (an operator is draining it). The
    /// client asks the control plane for a new token with `rejoin_token`,
    /// joins the node it is given, and only then closes this connection, so
    /// others see no gap. It must not send `leave` here.
    Move {
        /// Why, for a log line or a toast.
        reason: String,
    },
    /// End-to-end encrypted rooms: `participant_id` founded key-agreement
    /// group `group` alone (there was no live one). Everyone else waiting
    /// sends its key package again now.
    E2eeFound {
        /// The founder.
        participant_id: ParticipantId,
        /// The new group incarnation.
        group: u32,
    },
    /// End-to-end encrypted rooms: `participant_id` asks to be committed
    /// into group `group`.
    E2eeKeyPackage {
        /// Who sent it.
        participant_id: ParticipantId,
        /// The live group it was queued for.
        group: u32,
        /// The key package, as sent.
        key_package: String,
    },
    /// End-to-end encrypted rooms: the delivery service accepted this
    /// commit; the group moved from `epoch` to `epoch + 1`. Commits reach
    /// clients in epoch order on one node; across nodes a client may see
    /// `epoch + 1` before `epoch` and must hold it until then.
    E2eeCommit {
        /// The committer.
        participant_id: ParticipantId,
        /// The group.
        group: u32,
        /// The epoch the commit starts from.
        epoch: u64,
        /// Participants it adds; each finds its welcome in `welcome`.
        #[serde(default)]
        added: Vec<ParticipantId>,
        /// Participants it removes.
        #[serde(default)]
        removed: Vec<ParticipantId>,
        /// The commit, as sent.
        commit: String,
        /// The welcome for `added`, as sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        welcome: Option<String>,
    },
    /// How this participant's media should travel now ([`crate::p2p`]).
    /// Sent after `joined` and on every change; with `p2p`, `peer` is the
    /// other participant and `offerer` says which of the two makes the
    /// direct connection's offer.
    MediaPath {
        /// The path.
        path: MediaPath,
        /// The attempt's number; signals of another pairing are refused.
        pairing: Pairing,
        /// The other participant, with `p2p`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<ParticipantId>,
        /// True for the one of the two that sends the offer.
        #[serde(default)]
        offerer: bool,
    },
    /// A relayed `peer_signal` from the other participant of the pair.
    PeerSignal {
        /// Who sent it.
        from: ParticipantId,
        /// Its pairing.
        pairing: Pairing,
        /// The signal, as sent.
        signal: PeerSignal,
    },
    /// Answer to `ping`.
    Pong {
        /// The ping's `seq`.
        seq: u64,
        /// Server wall-clock time.
        server_time_ms: UnixMillis,
    },
}

/// WebSocket close code of a session whose participant continues on
/// another media node (a newer session of theirs joined there). The client
/// that moved ignores it; any other tab showing that session should say the
/// meeting continues elsewhere and not reconnect.
pub const CLOSE_MOVED: u16 = 4010;

/// WebSocket close code of a session the node ended because it kept
/// sending after being refused: more than
/// [`crate::limits::signal::MAX_STRIKES`] frames over budget or malformed
/// within [`crate::limits::signal::STRIKE_WINDOW_MS`]. Mirrors RFC 6455's
/// 1008 "policy violation". A client should not reconnect automatically.
pub const CLOSE_POLICY: u16 = 4008;

/// WebSocket close code of a session whose browser stopped reading: more
/// than [`crate::limits::signal::OUTBOUND_QUEUE`] messages waited for it.
/// The seat is kept for the reconnect grace period, as for a dropped
/// connection, so a client may resume.
pub const CLOSE_TOO_SLOW: u16 = 4011;

/// WebSocket close code of a session whose participant a moderator
/// removed. A client must not reconnect.
pub const CLOSE_REMOVED: u16 = 4020;

/// WebSocket close code of a lobby waiter a moderator denied. A client
/// must not reconnect.
pub const CLOSE_DENIED: u16 = 4021;

/// WebSocket close code of a session that ended normally: after `leave`,
/// or answering the client's own close 1000/1001 (RFC 6455 "normal
/// closure").
pub const CLOSE_NORMAL: u16 = 1000;

/// Why a participant left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// They pressed Leave or closed the tab.
    Left,
    /// Their connection dropped and did not come back within the grace
    /// period.
    Disconnected,
    /// They joined again from another connection with the same session.
    Replaced,
    /// A moderator removed them.
    Removed,
}

/// A STUN or TURN server, shaped like the browser's `RTCIceServer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The `type` tag of a frame that failed to parse as a [`ClientMessage`],
/// if it has one, so the error reply can say which request failed.
pub fn peek_type(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "type")]
        ty: String,
    }
    serde_json::from_str::<Peek>(text)
        .ok()
        .map(|p| p.ty)
        .filter(|t| t.len() <= 32)
}

#[cfg(test)]
#[path = "signal_tests.rs"]
mod tests;
