//! The data of room covers: the stored cover, its commands and answers.
//! Apart from `covers.rs` (which applies and queries them) so that the
//! command model (`model.rs`) can name them without importing the code
//! that needs the model: no import cycle.

use serde::{Deserialize, Serialize};
use veche_protocol::cover::CoverKind;
use veche_protocol::{RoomId, UnixMillis};

/// A room's cover as stored: the text and, if one was uploaded, where the
/// image is. The image's bytes are in the object store, never in Raft.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cover {
    /// The room.
    pub room_id: RoomId,
    /// Validated title; may be empty.
    pub title: String,
    /// Validated description; may be empty.
    pub description: String,
    /// The image, if one is set.
    pub image: Option<CoverImage>,
    /// Bumped by every change, starting at 1.
    pub version: u64,
    /// When it last changed (proposer's clock).
    pub updated_at_ms: UnixMillis,
}

/// A cover image: where its bytes are and what they were found to be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverImage {
    /// Its key in the cover store: unique per upload
    /// (`rooms/<room id>/<random>`), so its URL never serves other bytes.
    pub key: String,
    /// The type it decoded as.
    pub kind: CoverKind,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// A write to a room's cover. The proposer validated the input and that
/// the room exists (rooms are not document tables). A command that changes
/// nothing (the same text again, a retry of the same upload, removing a
/// missing image) leaves the version alone, so every command is
/// idempotent. A cover left with no text and no image is deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoverCommand {
    /// Set the title and description.
    SetText {
        /// The room.
        room_id: RoomId,
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// Proposer's clock.
        at_ms: UnixMillis,
    },
    /// Set the image (its bytes are already in the store).
    SetImage {
        /// The room.
        room_id: RoomId,
        /// The image.
        image: CoverImage,
        /// Proposer's clock.
        at_ms: UnixMillis,
    },
    /// Remove the image; the text stays.
    RemoveImage {
        /// The room.
        room_id: RoomId,
        /// Proposer's clock.
        at_ms: UnixMillis,
    },
}

impl CoverCommand {
    /// Every cover command may be applied twice with the effect of once.
    pub fn is_idempotent(&self) -> bool {
        true
    }
}

/// What a cover command answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverOutput {
    /// The cover after the command; `None` when it has nothing left.
    pub cover: Option<Cover>,
    /// The image this command replaced or removed, whose bytes the
    /// proposer may now delete from the store. Decided at apply time, so
    /// two racing uploads each learn exactly the image they displaced.
    pub replaced: Option<CoverImage>,
}
