//! The E2EE delivery service: each encrypted room's
//! [`DeliveryService`] (which group and epoch the room's MLS handshake is
//! at, who is in it, who waits), one document per room in the
//! `e2ee_delivery` table.
//!
//! Written once against the document tables ([`super::docs`]), so the Raft
//! state machine and [`super::MemStore`] run this same code. Every change
//! is decided here, at apply time, by the protocol's pure rules
//! (`veche_protocol::e2ee`), so every control-plane node orders a room's
//! commits alike, and the reply (or the refusal) comes back from the
//! apply: the first commit per epoch wins, cluster-wide, and survives a
//! leader's death like any committed entry.
//!
//! The document is created with the room (`CreateRoom` with `e2ee`), so
//! its presence is also what makes a room encrypted for the rules that run
//! at apply time (recording refusal, sealed chat): they see only document
//! tables. Besides the handshake steps, the statistics' apply changes it
//! (`capabilities.rs`): a participant who left the room for good is
//! [`DeliveryService::left`], and a meeting that ended clears the members
//! and waiters but keeps the group number, which only ever grows.

use super::access::DocAccess;
use super::db::DbError;
use super::docs::{DocTable, Docs, DocsMut};
use super::e2ee_model::{E2eeCommand, E2eeRefusal};
use super::error::StoreError;
use super::model::{Command, CommandOutput, Room};
use super::seam;
use std::future::Future;
use veche_protocol::e2ee::{check_sealed_chat, DeliveryService, DsOp, DsReply, DsRequest};
use veche_protocol::{ParticipantId, RoomId};

/// Delivery services by room id; present exactly for encrypted rooms.
const DELIVERY: DocTable<u64, DeliveryService> = DocTable::new("e2ee_delivery");

type Applied = Result<Result<DsReply, E2eeRefusal>, DbError>;

/// Gives a new encrypted room its (empty) delivery service.
pub(crate) fn on_room_created(d: &mut (impl DocsMut + ?Sized), room: &Room) -> Result<(), DbError> {
    if room.e2ee {
        DELIVERY.put(d, &room.id.0, &DeliveryService::default())?;
    }
    Ok(())
}

/// Whether `room` is end-to-end encrypted.
pub(crate) fn is_encrypted(d: &(impl Docs + ?Sized), room: RoomId) -> Result<bool, DbError> {
    DELIVERY.contains(d, &room.0)
}

/// Applies one handshake step: the reply, or the rules' refusal with
/// nothing stored.
pub(crate) fn apply(d: &mut (impl DocsMut + ?Sized), cmd: E2eeCommand) -> Applied {
    let E2eeCommand::Step {
        room_id,
        participant_id,
        op,
    } = cmd;
    let Some(mut ds) = DELIVERY.get(d, &room_id.0)? else {
        return Ok(Err(E2eeRefusal::NotEncryptedRoom));
    };
    let reply = match &op {
        DsOp::KeyPackage => ds.key_package(&participant_id),
        DsOp::Commit(labels) => match ds.commit(&participant_id, labels) {
            Ok(r) => r,
            Err(e) => return Ok(Err(E2eeRefusal::from_error(e))),
        },
    };
    DELIVERY.put(d, &room_id.0, &ds)?;
    Ok(Ok(reply))
}

/// Chat text `text` may be stored in `room`: anything in a plain room (the
/// API filtered it), only a sealed envelope in an encrypted one.
pub(crate) fn check_chat(
    d: &(impl Docs + ?Sized),
    room: RoomId,
    text: &str,
) -> Result<Result<(), E2eeRefusal>, DbError> {
    if !is_encrypted(d, room)? {
        return Ok(Ok(()));
    }
    Ok(check_sealed_chat(text).map_err(E2eeRefusal::from_error))
}

/// `who` left `room` for good: no longer a member or a waiter. Nothing
/// for a plain room, or one it was in neither.
pub(crate) fn left(
    d: &mut (impl DocsMut + ?Sized),
    room: RoomId,
    who: &ParticipantId,
) -> Result<(), DbError> {
    let Some(mut ds) = DELIVERY.get(d, &room.0)? else {
        return Ok(());
    };
    let before = ds.clone();
    ds.left(who);
    if ds != before {
        DELIVERY.put(d, &room.0, &ds)?;
    }
    Ok(())
}

/// The meeting in `room` ended: nobody holds the group any more. Members
/// and waiters are cleared; the group number stays, so the next key
/// package founds a group with a higher number than any before it (a
/// client still holding an old group's state can never mistake the new
/// one for it).
pub(crate) fn reset(d: &mut (impl DocsMut + ?Sized), room: RoomId) -> Result<(), DbError> {
    let Some(ds) = DELIVERY.get(d, &room.0)? else {
        return Ok(());
    };
    if ds.members.is_empty() && ds.waiting.is_empty() {
        return Ok(());
    }
    let cleared = DeliveryService {
        group: ds.group,
        epoch: ds.epoch,
        ..DeliveryService::default()
    };
    DELIVERY.put(d, &room.0, &cleared)
}

/// The delivery service as the API uses it. Implemented once for every
/// store ([`DocAccess`]); the contract is checked by the conformance cases
/// in `conformance_e2ee.rs` on every store.
pub trait E2eeStore: DocAccess {
    /// Orders one handshake step. A refusal (a stale commit, a room that
    /// is not encrypted) is [`StoreError::Refused`] with
    /// [`super::model::CommandError::E2ee`], and changes nothing.
    fn e2ee_step(
        &self,
        req: DsRequest,
    ) -> impl Future<Output = Result<DsReply, StoreError>> + Send {
        async move {
            seam::expect(
                self.commit(Command::E2ee(E2eeCommand::step(req))).await?,
                "an e2ee step",
                |o| match o {
                    CommandOutput::E2ee(r) => Ok(r),
                    other => Err(other),
                },
            )
        }
    }

    /// The delivery service of `room`, read linearizably; `None` for a
    /// room that is not encrypted.
    fn delivery_service(
        &self,
        room: RoomId,
    ) -> impl Future<Output = Result<Option<DeliveryService>, StoreError>> + Send {
        self.read_docs(move |d| DELIVERY.get(d, &room.0))
    }
}

impl<S: DocAccess + ?Sized> E2eeStore for S {}
