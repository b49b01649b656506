//! The data of room policies: the commands that change one. Apart from
//! `policies.rs` (which applies and queries them) so that the command
//! model (`model.rs`) can name them without importing the code that needs
//! the model: no import cycle.
//!
//! The policy itself ([`veche_protocol::moderation::RoomPolicy`]) and the
//! rules deciding every change (`veche_protocol::moderation_rules`) are in
//! the protocol crate: media nodes hold copies of the one and the rules
//! are the contract of the other.

use serde::{Deserialize, Serialize};
use veche_protocol::moderation::SettingsChange;
use veche_protocol::rpc::ModerateRequest;
use veche_protocol::{ParticipantId, RoomId};

pub use veche_protocol::moderation_rules::Refusal as PolicyRefusal;

/// A write to a room's policy. Every one is decided at apply time against
/// the committed policy, so racing writers are decided in log order. A
/// write that changes nothing commits nothing (the version stays).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyCommand {
    /// A participant's (or a media node's) moderation action, decided by
    /// `moderation_rules::decide`. Refused with the rules' reason.
    Act(ModerateRequest),
    /// Someone joined as the room's owner: their participant id is a host
    /// from now on. The join handler proposes it only when the id is not
    /// recorded yet.
    RecordHost {
        /// The room.
        room_id: RoomId,
        /// The host's participant id.
        participant_id: ParticipantId,
    },
    /// The owner changed the room's settings over REST (before or during
    /// the meeting).
    ChangeSettings {
        /// The room.
        room_id: RoomId,
        /// What changes.
        change: SettingsChange,
    },
}

impl PolicyCommand {
    /// The room the command is about.
    pub fn room_id(&self) -> RoomId {
        match self {
            PolicyCommand::Act(r) => r.room_id,
            PolicyCommand::RecordHost { room_id, .. }
            | PolicyCommand::ChangeSettings { room_id, .. } => *room_id,
        }
    }

    /// Recording a host twice is recording them once. An action or a
    /// settings change applied twice could undo a change committed in
    /// between (a mute retried after an "ask to unmute"), so neither is
    /// retried after an ambiguous failure: the node or the owner sees the
    /// error and looks again.
    pub fn is_idempotent(&self) -> bool {
        matches!(self, PolicyCommand::RecordHost { .. })
    }
}
