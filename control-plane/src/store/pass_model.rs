//! The data of guest passes: the stored pass, its commands, answers and
//! refusals. Apart from `passes.rs` (which applies and queries them) so that
//! the command model (`model.rs`) can name them without importing the code
//! that needs the model: no import cycle.

use serde::{Deserialize, Serialize};
use veche_protocol::limits::passes::MAX_PER_ROOM;
use veche_protocol::pass::{PassId, PassStatus};
use veche_protocol::{RoomId, UnixMillis, UserId};

/// A guest pass as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    /// Assigned at apply time; unique across rooms.
    pub id: PassId,
    /// The room it admits to.
    pub room_id: RoomId,
    /// Who it is for.
    pub label: String,
    /// First instant it admits.
    pub valid_from_ms: UnixMillis,
    /// Instant it stops admitting.
    pub valid_until_ms: UnixMillis,
    /// SHA-256 of the link's token.
    pub token_hash: [u8; 32],
    /// Creation time (proposer's clock).
    pub created_at_ms: UnixMillis,
    /// The signed-in owner who issued it; `None` when an anonymous owner
    /// did, with the owner key.
    pub created_by: Option<UserId>,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<UnixMillis>,
}

impl Pass {
    /// Its status at `now_ms`.
    pub fn status(&self, now_ms: UnixMillis) -> PassStatus {
        veche_protocol::pass::status(
            self.valid_from_ms,
            self.valid_until_ms,
            self.revoked_at_ms.is_some(),
            now_ms,
        )
    }

    /// Why it does not admit at `now_ms`, in words for the guest; `None`
    /// when it admits.
    pub fn refusal(&self, now_ms: UnixMillis) -> Option<String> {
        veche_protocol::pass::refusal(
            self.valid_from_ms,
            self.valid_until_ms,
            self.revoked_at_ms.is_some(),
            now_ms,
        )
    }
}

/// A write to guest passes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PassCommand {
    /// Issue a pass. The input is validated by the proposer (label, window);
    /// the room's existence and ownership too, since rooms are not document
    /// tables. Refused with [`PassRefusal::TooMany`] once the room holds
    /// [`MAX_PER_ROOM`] passes. The same command again (a retry: same token
    /// hash, room and creation time) returns the pass it created.
    Create {
        /// The room.
        room_id: RoomId,
        /// Who it is for.
        label: String,
        /// First instant it admits.
        valid_from_ms: UnixMillis,
        /// Instant it stops admitting.
        valid_until_ms: UnixMillis,
        /// SHA-256 of the link's token.
        token_hash: [u8; 32],
        /// Creation time.
        created_at_ms: UnixMillis,
        /// The signed-in owner issuing it.
        created_by: Option<UserId>,
    },
    /// Revoke a pass of a room at once. Revoking a revoked pass changes
    /// nothing (the first revocation time stays). A pass of another room,
    /// or none, is [`PassRefusal::NoSuchPass`].
    Revoke {
        /// The room.
        room_id: RoomId,
        /// The pass.
        pass_id: PassId,
        /// Revocation time.
        at_ms: UnixMillis,
    },
}

impl PassCommand {
    /// Every pass command may be applied twice with the effect of once.
    pub fn is_idempotent(&self) -> bool {
        true
    }
}

/// What a pass command answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PassOutput {
    /// The pass as stored after the command.
    Pass(Pass),
}

/// Why a pass command was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PassRefusal {
    /// The room holds as many passes as it may.
    #[error("this meeting already has {MAX_PER_ROOM} guest passes")]
    TooMany,
    /// No such pass in this room.
    #[error("no such guest pass")]
    NoSuchPass,
    /// Another pass has this token (a 2^-256 event, checked rather than
    /// assumed).
    #[error("pass token already exists")]
    TokenTaken,
}
