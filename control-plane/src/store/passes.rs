//! Guest passes: a room owner's permission for someone without an account
//! to join, inside a window of time, until revoked.
//!
//! Written once against the document tables ([`super::docs`]), so the Raft
//! state machine and [`super::MemStore`] run this same code.
//!
//! - A pass is stored under (room, pass id), so a room's passes are one
//!   range, oldest first.
//! - The link's token is random (chosen by the proposer) and only its
//!   SHA-256 is stored, indexed to find the pass a link names. A copy of
//!   the database or a snapshot admits no one.
//! - Revoking keeps the pass (the owner's list shows it as revoked) and
//!   records when; nothing else ever changes a pass. Whether a pass admits
//!   at an instant is `veche_protocol::pass::status`, decided by the
//!   reader with its own clock: expiry needs no write.

use super::access::DocAccess;
use super::db::DbError;
use super::docs::{next_id, DocTable, Docs, DocsMut};
use super::error::StoreError;
use super::model::{Command, CommandOutput};
use super::seam;
use std::future::Future;
use veche_protocol::limits::passes::MAX_PER_ROOM;
use veche_protocol::pass::PassId;
use veche_protocol::RoomId;

pub use super::pass_model::{Pass, PassCommand, PassOutput, PassRefusal};

/// Passes by (room, pass id).
const PASSES: DocTable<(u64, u64), Pass> = DocTable::new("passes");
/// (room, pass id) by token hash.
const PASS_TOKENS: DocTable<[u8; 32], (u64, u64)> = DocTable::new("pass_tokens");

type Applied = Result<Result<PassOutput, PassRefusal>, DbError>;

/// Applies one pass command.
pub(crate) fn apply(d: &mut (impl DocsMut + ?Sized), cmd: PassCommand) -> Applied {
    match cmd {
        PassCommand::Create {
            room_id,
            label,
            valid_from_ms,
            valid_until_ms,
            token_hash,
            created_at_ms,
            created_by,
        } => {
            if let Some(existing) = pass_by_token(d, &token_hash)? {
                return Ok(
                    if existing.room_id == room_id && existing.created_at_ms == created_at_ms {
                        Ok(PassOutput::Pass(existing))
                    } else {
                        Err(PassRefusal::TokenTaken)
                    },
                );
            }
            if count_of(d, room_id)? >= MAX_PER_ROOM {
                return Ok(Err(PassRefusal::TooMany));
            }
            let pass = Pass {
                id: PassId(next_id(d, "passes")?),
                room_id,
                label,
                valid_from_ms,
                valid_until_ms,
                token_hash,
                created_at_ms,
                created_by,
                revoked_at_ms: None,
            };
            PASSES.put(d, &(room_id.0, pass.id.0), &pass)?;
            PASS_TOKENS.put(d, &token_hash, &(room_id.0, pass.id.0))?;
            Ok(Ok(PassOutput::Pass(pass)))
        }
        PassCommand::Revoke {
            room_id,
            pass_id,
            at_ms,
        } => {
            let Some(mut pass) = pass(d, room_id, pass_id)? else {
                return Ok(Err(PassRefusal::NoSuchPass));
            };
            if pass.revoked_at_ms.is_none() {
                pass.revoked_at_ms = Some(at_ms);
                PASSES.put(d, &(room_id.0, pass_id.0), &pass)?;
            }
            Ok(Ok(PassOutput::Pass(pass)))
        }
    }
}

/// How many passes `room` holds, counting no further than the limit.
fn count_of(d: &(impl Docs + ?Sized), room: RoomId) -> Result<usize, DbError> {
    Ok(
        d.scan_raw("passes", &key_prefix(room), false, MAX_PER_ROOM)?
            .len(),
    )
}

fn key_prefix(room: RoomId) -> Vec<u8> {
    use super::docs::DocKey;
    room.0.key_bytes()
}

/// The pass `id` of `room`.
pub(crate) fn pass(
    d: &(impl Docs + ?Sized),
    room: RoomId,
    id: PassId,
) -> Result<Option<Pass>, DbError> {
    PASSES.get(d, &(room.0, id.0))
}

/// The pass whose token has this hash.
pub(crate) fn pass_by_token(
    d: &(impl Docs + ?Sized),
    token_hash: &[u8; 32],
) -> Result<Option<Pass>, DbError> {
    match PASS_TOKENS.get(d, token_hash)? {
        Some(key) => PASSES.get(d, &key),
        None => Ok(None),
    }
}

/// Every pass of `room`, oldest first.
pub(crate) fn passes_of(d: &(impl Docs + ?Sized), room: RoomId) -> Result<Vec<Pass>, DbError> {
    PASSES.scan(d, &key_prefix(room), false, usize::MAX)
}

/// Guest passes as the API uses them. Implemented once for every store
/// ([`DocAccess`]); the contract is checked by the conformance cases in
/// `conformance_passes.rs` on both stores.
pub trait PassStore: DocAccess {
    /// Runs a pass command; a refusal is [`StoreError::Refused`].
    fn pass_command(
        &self,
        cmd: PassCommand,
    ) -> impl Future<Output = Result<Pass, StoreError>> + Send {
        async move {
            seam::expect(
                self.commit(Command::Passes(cmd)).await?,
                "a pass command",
                |o| match o {
                    CommandOutput::Passes(p) => match *p {
                        PassOutput::Pass(p) => Ok(p),
                    },
                    other => Err(other),
                },
            )
        }
    }

    /// The pass `id` of `room`.
    fn pass(
        &self,
        room: RoomId,
        id: PassId,
    ) -> impl Future<Output = Result<Option<Pass>, StoreError>> + Send {
        self.read_docs(move |d| pass(d, room, id))
    }

    /// The pass whose link token has this hash.
    fn pass_by_token(
        &self,
        token_hash: [u8; 32],
    ) -> impl Future<Output = Result<Option<Pass>, StoreError>> + Send {
        self.read_docs(move |d| pass_by_token(d, &token_hash))
    }

    /// Every pass of `room`, oldest first.
    fn passes(&self, room: RoomId) -> impl Future<Output = Result<Vec<Pass>, StoreError>> + Send {
        self.read_docs(move |d| passes_of(d, room))
    }
}

impl<S: DocAccess + ?Sized> PassStore for S {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::docs::MemDocs;

    fn create(room: u64, token: u8, at: u64) -> PassCommand {
        PassCommand::Create {
            room_id: RoomId(room),
            label: "Visitor".into(),
            valid_from_ms: 10,
            valid_until_ms: 20,
            token_hash: [token; 32],
            created_at_ms: at,
            created_by: None,
        }
    }

    #[test]
    fn a_room_holds_at_most_the_limit_of_passes() {
        let mut d = MemDocs::default();
        for n in 0..MAX_PER_ROOM {
            let mut hash = [0u8; 32];
            hash[..8].copy_from_slice(&(n as u64).to_be_bytes());
            let PassCommand::Create {
                room_id,
                label,
                valid_from_ms,
                valid_until_ms,
                created_at_ms,
                created_by,
                ..
            } = create(1, 0, 1)
            else {
                unreachable!()
            };
            let cmd = PassCommand::Create {
                room_id,
                label,
                valid_from_ms,
                valid_until_ms,
                token_hash: hash,
                created_at_ms,
                created_by,
            };
            assert!(apply(&mut d, cmd).unwrap().is_ok(), "pass {n}");
        }
        assert_eq!(
            apply(&mut d, create(1, 0xee, 1)).unwrap(),
            Err(PassRefusal::TooMany)
        );
        assert!(
            apply(&mut d, create(2, 0xee, 1)).unwrap().is_ok(),
            "another room has its own limit"
        );
    }
}
