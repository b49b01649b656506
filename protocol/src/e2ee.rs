//! End-to-end encryption: what the server sees of it, and the delivery
//! service's rules.
//!
//! In a room created with `e2ee`, browsers agree on a group key with MLS
//! (RFC 9420) and encrypt media (SFrame, RFC 9605) and chat with keys only
//! they hold. The server is MLS's *delivery service*: it relays key
//! packages, commits and welcomes, which it cannot read, and puts commits
//! into one total order per room, even when the room spans media nodes.
//! That order is the only decision it makes, and it makes it from the
//! plaintext labels the browser attaches (`group`, `epoch`, `added`,
//! `removed`), never from the MLS bytes. `docs/e2ee.md` has the design and
//! threat model.
//!
//! [`DeliveryService`] is the per-room state the control plane keeps
//! through Raft, so every control-plane node applies the same decisions in
//! the same order. It is pure: the caller passes in each event.

use crate::ids::ParticipantId;
use crate::limits::e2ee as lim;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The prefix of a sealed chat message's text: `e2ee1:` then
/// `{group}:{epoch}:{base64url(nonce ‖ ciphertext ‖ tag)}`. The version
/// lets a later format coexist.
pub const SEALED_CHAT_PREFIX: &str = "e2ee1:";

/// Internal RPC path: a media node asks the control plane to order one
/// handshake step of a participant's ([`DsRequest`], reply [`DsReply`]).
pub const RPC_E2EE: &str = "/internal/v1/rooms/e2ee";

/// Why a handshake message or sealed chat was refused. Each maps to the
/// wire code in [`E2eeError::code`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum E2eeError {
    /// The room was not created end-to-end encrypted.
    #[error("this room is not end-to-end encrypted")]
    NotEncryptedRoom,
    /// A field is not unpadded base64url, or is empty.
    #[error("{field} must be non-empty unpadded base64url")]
    NotBase64 {
        /// Which field.
        field: &'static str,
    },
    /// A field is over its limit.
    #[error("{field} is {len} bytes; the limit is {max}")]
    TooLarge {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `added` or `removed` lists too many participants, or one twice.
    #[error("a commit lists at most {max} participants, each once", max = lim::MAX_LISTED)]
    BadList,
    /// The commit starts from a group or epoch that is not the current one:
    /// another member's commit won. The sender drops its commit and waits
    /// for the winner's.
    #[error("the key agreement has moved on: it is at group {group} epoch {epoch}")]
    Stale {
        /// The current group.
        group: u32,
        /// The current epoch.
        epoch: u64,
    },
    /// The sender is not a member of the current group (it never joined,
    /// or it asked to rejoin and has not been welcomed yet).
    #[error("only a member of the current group can commit")]
    NotMember,
    /// The commit adds someone who has not sent a key package since they
    /// were last in the group.
    #[error("{0} has not asked to join the key agreement")]
    NotWaiting(ParticipantId),
    /// Chat in an encrypted room must be sealed by the client.
    #[error("this room is end-to-end encrypted: chat must be encrypted by the client")]
    ChatNotSealed,
}

impl E2eeError {
    /// The wire code of this refusal.
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            E2eeError::NotEncryptedRoom | E2eeError::Stale { .. } | E2eeError::NotMember => {
                C::InvalidState
            }
            E2eeError::NotWaiting(_) => C::InvalidState,
            E2eeError::TooLarge { .. } => C::TooLarge,
            E2eeError::NotBase64 { .. } | E2eeError::BadList | E2eeError::ChatNotSealed => {
                C::BadRequest
            }
        }
    }
}

fn is_b64url(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks one opaque field: non-empty base64url within `max` bytes.
pub fn check_opaque(field: &'static str, value: &str, max: usize) -> Result<(), E2eeError> {
    if value.len() > max {
        return Err(E2eeError::TooLarge {
            field,
            len: value.len(),
            max,
        });
    }
    if !is_b64url(value) {
        return Err(E2eeError::NotBase64 { field });
    }
    Ok(())
}

/// Checks a key package as a client sent it.
pub fn check_key_package(key_package: &str) -> Result<(), E2eeError> {
    check_opaque("key_package", key_package, lim::MAX_KEY_PACKAGE_BYTES)
}

/// Checks a commit's opaque parts and lists as a client sent them.
pub fn check_commit(
    c: &CommitLabels,
    commit: &str,
    welcome: Option<&str>,
) -> Result<(), E2eeError> {
    check_opaque("commit", commit, lim::MAX_COMMIT_BYTES)?;
    if let Some(w) = welcome {
        check_opaque("welcome", w, lim::MAX_WELCOME_BYTES)?;
    }
    let listed = c.added.len() + c.removed.len();
    let distinct: BTreeSet<&ParticipantId> = c.added.iter().chain(&c.removed).collect();
    if listed > lim::MAX_LISTED || distinct.len() != listed {
        return Err(E2eeError::BadList);
    }
    Ok(())
}

/// Checks that chat text in an encrypted room is a sealed envelope
/// (`e2ee1:{group}:{epoch}:{base64url}`) within the size limit. The
/// server cannot filter ciphertext; the client filters before sealing.
pub fn check_sealed_chat(text: &str) -> Result<(), E2eeError> {
    if text.len() > lim::MAX_SEALED_CHAT_BYTES {
        return Err(E2eeError::TooLarge {
            field: "text",
            len: text.len(),
            max: lim::MAX_SEALED_CHAT_BYTES,
        });
    }
    let Some(rest) = text.strip_prefix(SEALED_CHAT_PREFIX) else {
        return Err(E2eeError::ChatNotSealed);
    };
    let mut parts = rest.splitn(3, ':');
    let group = parts.next().and_then(|g| g.parse::<u32>().ok());
    let epoch = parts.next().and_then(|e| e.parse::<u64>().ok());
    let body = parts.next().unwrap_or_default();
    // 12-byte nonce and 16-byte tag: at least 38 base64 characters.
    if group.is_none() || epoch.is_none() || body.len() < 38 || !is_b64url(body) {
        return Err(E2eeError::ChatNotSealed);
    }
    Ok(())
}

/// The plaintext labels of a commit: what the delivery service decides
/// on. A committer that lies in them only harms its own group: members
/// check the MLS commit itself, and a mismatch makes them rejoin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitLabels {
    /// The group incarnation the commit belongs to.
    pub group: u32,
    /// The epoch the commit starts from; the group moves to `epoch + 1`.
    pub epoch: u64,
    /// Participants the commit adds (each sent a key package).
    #[serde(default)]
    pub added: Vec<ParticipantId>,
    /// Participants the commit removes because they left. A rejoiner
    /// (same id, new key package) is listed in `added` only: the commit
    /// replaces its old leaf with the new one.
    #[serde(default)]
    pub removed: Vec<ParticipantId>,
}

/// One handshake step a media node asks the control plane to order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DsOp {
    /// The participant sent a key package: it wants to be (re)admitted.
    KeyPackage,
    /// The participant sent a commit with these labels.
    Commit(CommitLabels),
}

/// Body of [`RPC_E2EE`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsRequest {
    /// The room.
    pub room_id: crate::RoomId,
    /// Who sent it (the node's authenticated session).
    pub participant_id: ParticipantId,
    /// What they sent.
    #[serde(flatten)]
    pub op: DsOp,
}

/// The delivery service's answer to one step. A refusal is an
/// [`E2eeError`] instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DsReply {
    /// No live group: the sender founds group `group` alone, at epoch 0.
    /// The node tells the whole room (`e2ee_found`) so other waiters send
    /// their key packages again at once.
    Found {
        /// The new group incarnation.
        group: u32,
    },
    /// A live group exists: the node relays the key package to the room,
    /// and a member will commit the sender in.
    Queued {
        /// The live group.
        group: u32,
        /// Its epoch.
        epoch: u64,
    },
    /// The commit won: the group is now at `epoch`. The node relays it.
    Accepted {
        /// The group.
        group: u32,
        /// The new epoch.
        epoch: u64,
    },
}

/// The delivery service's state for one room. Membership here is the
/// server's view by participant id only; the cryptographic membership is
/// in the MLS group, which the server cannot see.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryService {
    /// The current (or last) group incarnation; 0 before any.
    pub group: u32,
    /// The current group's epoch.
    pub epoch: u64,
    /// Participants in the current group who hold its state.
    pub members: BTreeSet<ParticipantId>,
    /// Participants who sent a key package and wait to be committed in.
    pub waiting: BTreeSet<ParticipantId>,
}

impl DeliveryService {
    /// True when some member can still commit: otherwise the next key
    /// package founds a new group.
    pub fn live(&self) -> bool {
        !self.members.is_empty()
    }

    /// Applies a key package from `who`.
    pub fn key_package(&mut self, who: &ParticipantId) -> DsReply {
        // A member that sends a key package lost its group state (a
        // reload, or it missed a commit): it can no longer commit.
        self.members.remove(who);
        if !self.live() {
            self.group += 1;
            self.epoch = 0;
            self.waiting.remove(who);
            self.members.insert(who.clone());
            return DsReply::Found { group: self.group };
        }
        self.waiting.insert(who.clone());
        DsReply::Queued {
            group: self.group,
            epoch: self.epoch,
        }
    }

    /// Applies a commit from `who`: first commit per epoch wins.
    pub fn commit(&mut self, who: &ParticipantId, c: &CommitLabels) -> Result<DsReply, E2eeError> {
        if !self.live() || c.group != self.group || c.epoch != self.epoch {
            return Err(E2eeError::Stale {
                group: self.group,
                epoch: self.epoch,
            });
        }
        if !self.members.contains(who) {
            return Err(E2eeError::NotMember);
        }
        if let Some(p) = c.added.iter().find(|p| !self.waiting.contains(*p)) {
            return Err(E2eeError::NotWaiting(p.clone()));
        }
        self.epoch += 1;
        for p in &c.removed {
            self.members.remove(p);
            self.waiting.remove(p);
        }
        for p in &c.added {
            self.waiting.remove(p);
            self.members.insert(p.clone());
        }
        Ok(DsReply::Accepted {
            group: self.group,
            epoch: self.epoch,
        })
    }

    /// `who` left the room for good (not a resumable drop): it holds no
    /// state the group needs, and cannot commit.
    pub fn left(&mut self, who: &ParticipantId) {
        self.members.remove(who);
        self.waiting.remove(who);
    }
}

#[cfg(test)]
#[path = "e2ee_tests.rs"]
mod tests;
