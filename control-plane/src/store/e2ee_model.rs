//! The data of the E2EE delivery service: the command that orders one
//! handshake step, and the refusals it can answer. Apart from `e2ee.rs`
//! (which applies and queries them) so that the command model
//! (`model.rs`) can name them without importing the code that needs the
//! model: no import cycle.
//!
//! The rules themselves (`veche_protocol::e2ee::DeliveryService`) are in
//! the protocol crate; this is only how they travel through Raft.

use serde::{Deserialize, Serialize};
use veche_protocol::e2ee::{DsOp, DsRequest, E2eeError};
use veche_protocol::{ParticipantId, RoomId};

/// A write to a room's delivery service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum E2eeCommand {
    /// One handshake step a media node asks to order (`RPC_E2EE`),
    /// decided at apply time against the committed state, so racing
    /// commits are decided in log order on every replica alike.
    Step {
        /// The room.
        room_id: RoomId,
        /// The participant who sent it.
        participant_id: ParticipantId,
        /// What they sent.
        op: DsOp,
    },
}

impl E2eeCommand {
    /// The command of a node's request.
    pub fn step(req: DsRequest) -> Self {
        E2eeCommand::Step {
            room_id: req.room_id,
            participant_id: req.participant_id,
            op: req.op,
        }
    }

    /// Never retried blindly: a key package applied twice founds a second
    /// group, and a commit applied twice is refused as stale the second
    /// time although the first was accepted.
    pub fn is_idempotent(&self) -> bool {
        false
    }
}

/// Why the delivery service (or the chat check of an encrypted room)
/// refused, in a form that travels in the Raft log's results.
/// [`E2eeError`] itself names fields with `&'static str`, which cannot be
/// deserialized; [`E2eeRefusal::into_error`] gives it back for the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum E2eeRefusal {
    /// The room has no delivery service: it is not end-to-end encrypted
    /// (or does not exist).
    #[error("this room is not end-to-end encrypted")]
    NotEncryptedRoom,
    /// Another commit won the epoch.
    #[error("the key agreement has moved on: it is at group {group} epoch {epoch}")]
    Stale {
        /// The current group.
        group: u32,
        /// The current epoch.
        epoch: u64,
    },
    /// The committer is not a member of the current group.
    #[error("only a member of the current group can commit")]
    NotMember,
    /// The commit adds someone who is not waiting.
    #[error("{0} has not asked to join the key agreement")]
    NotWaiting(ParticipantId),
    /// A commit lists too many participants, or one twice.
    #[error("a commit lists too many participants, or one twice")]
    BadList,
    /// Chat in an encrypted room that is not a sealed envelope.
    #[error("this room is end-to-end encrypted: chat must be encrypted by the client")]
    ChatNotSealed,
    /// A sealed envelope over its size limit.
    #[error("text is {len} bytes; the limit is {max}")]
    ChatTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl E2eeRefusal {
    /// The refusal as the protocol words it, for the one error table
    /// ([`E2eeError::code`]).
    pub fn into_error(self) -> E2eeError {
        match self {
            E2eeRefusal::NotEncryptedRoom => E2eeError::NotEncryptedRoom,
            E2eeRefusal::Stale { group, epoch } => E2eeError::Stale { group, epoch },
            E2eeRefusal::NotMember => E2eeError::NotMember,
            E2eeRefusal::NotWaiting(p) => E2eeError::NotWaiting(p),
            E2eeRefusal::BadList => E2eeError::BadList,
            E2eeRefusal::ChatNotSealed => E2eeError::ChatNotSealed,
            E2eeRefusal::ChatTooLarge { len, max } => E2eeError::TooLarge {
                field: "text",
                len,
                max,
            },
        }
    }

    /// The refusal of a protocol rule, as stored. The delivery service's
    /// own rules answer only stale, not a member, or not waiting; the
    /// sealed-chat check answers not sealed or too large. A field that is
    /// not base64url only ever comes from the sealed-chat check.
    pub fn from_error(e: E2eeError) -> Self {
        match e {
            E2eeError::NotEncryptedRoom => E2eeRefusal::NotEncryptedRoom,
            E2eeError::Stale { group, epoch } => E2eeRefusal::Stale { group, epoch },
            E2eeError::NotMember => E2eeRefusal::NotMember,
            E2eeError::NotWaiting(p) => E2eeRefusal::NotWaiting(p),
            E2eeError::TooLarge { len, max, .. } => E2eeRefusal::ChatTooLarge { len, max },
            E2eeError::BadList => E2eeRefusal::BadList,
            E2eeError::ChatNotSealed | E2eeError::NotBase64 { .. } => E2eeRefusal::ChatNotSealed,
        }
    }
}
