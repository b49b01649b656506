//! Room policies: each room's moderation state
//! ([`veche_protocol::moderation::RoomPolicy`]), one document per room.
//!
//! Written once against the document tables ([`super::docs`]), so the Raft
//! state machine and [`super::MemStore`] run this same code. Every change
//! is decided here, at apply time, by the protocol's pure rules
//! (`veche_protocol::moderation_rules`): the committed policy is the only
//! input besides the command, so every replica decides alike and a refusal
//! commits nothing. A room nobody moderated has no document; it reads as
//! the default policy, version 0.

use super::access::DocAccess;
use super::db::DbError;
use super::docs::{DocTable, Docs, DocsMut};
use super::error::StoreError;
use super::model::{Command, CommandOutput};
use super::recordings;
use super::seam;
use std::future::Future;
use veche_protocol::moderation::RoomPolicy;
use veche_protocol::moderation_rules::{decide_in, with_host, with_settings, without_recording};
use veche_protocol::{NodeId, RoomId};

pub use super::policy_model::{PolicyCommand, PolicyRefusal};

/// Policies by room id.
const POLICIES: DocTable<u64, RoomPolicy> = DocTable::new("room_policies");

type Applied = Result<Result<RoomPolicy, PolicyRefusal>, DbError>;

/// Applies one policy command: the policy after it (stored only if it
/// changed), or the rules' refusal.
pub(crate) fn apply(d: &mut (impl DocsMut + ?Sized), cmd: PolicyCommand) -> Applied {
    let room = cmd.room_id();
    let old = policy_of(d, room)?;
    let next = match &cmd {
        // An encrypted room refuses a recording start (the rules say why).
        PolicyCommand::Act(req) => decide_in(&old, req, super::e2ee::is_encrypted(d, room)?),
        PolicyCommand::RecordHost { participant_id, .. } => with_host(&old, participant_id),
        PolicyCommand::ChangeSettings { change, .. } => Ok(with_settings(&old, change)),
    };
    let next = match next {
        Ok(p) => p,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if next.version != old.version {
        POLICIES.put(d, &room.0, &next)?;
    }
    if old.recording != next.recording {
        if let PolicyCommand::Act(req) = &cmd {
            // The account of whoever started it, from the node's list of
            // who is present (their join token's claim).
            let user = req.actor.as_ref().and_then(|a| {
                req.present
                    .iter()
                    .find(|p| p.participant_id == a.participant_id)
                    .and_then(|p| p.user)
            });
            recordings::on_policy_change(
                d,
                room,
                old.recording.as_ref(),
                next.recording.as_ref(),
                req.at_ms,
                user,
                None,
            )?;
        }
    }
    Ok(Ok(next))
}

/// The meeting in `room` ended at `at_ms` (the last participant left,
/// anywhere): a running recording stops, in the policy (so every node
/// stops writing) and in the index, in the statistics' own apply. The
/// index awaits the last report of `last_node`, where that participant sat.
pub(crate) fn end_recording(
    d: &mut (impl DocsMut + ?Sized),
    room: RoomId,
    at_ms: u64,
    last_node: NodeId,
) -> Result<(), DbError> {
    let old = policy_of(d, room)?;
    if old.recording.is_none() {
        return Ok(());
    }
    let next = without_recording(&old);
    POLICIES.put(d, &room.0, &next)?;
    recordings::on_policy_change(
        d,
        room,
        old.recording.as_ref(),
        None,
        at_ms,
        None,
        Some(last_node),
    )
}

/// The policy of `room` (the default, version 0, if nobody changed it).
pub(crate) fn policy_of(d: &(impl Docs + ?Sized), room: RoomId) -> Result<RoomPolicy, DbError> {
    Ok(POLICIES.get(d, &room.0)?.unwrap_or_default())
}

/// The policy version of each of `rooms` that has one (version above 0),
/// for heartbeat replies.
pub(crate) fn versions_of(
    d: &(impl Docs + ?Sized),
    rooms: &[RoomId],
) -> Result<Vec<(RoomId, u64)>, DbError> {
    let mut out = Vec::new();
    for room in rooms {
        let v = policy_of(d, *room)?.version;
        if v > 0 {
            out.push((*room, v));
        }
    }
    Ok(out)
}

/// Room policies as the API uses them. Implemented once for every store
/// ([`DocAccess`]); the contract is checked by the conformance cases in
/// `conformance_policies.rs` on every store.
pub trait PolicyStore: DocAccess {
    /// Runs a policy command; a refusal is [`StoreError::Refused`] with
    /// [`super::model::CommandError::Policy`].
    fn policy_command(
        &self,
        cmd: PolicyCommand,
    ) -> impl Future<Output = Result<RoomPolicy, StoreError>> + Send {
        async move {
            seam::expect(
                self.commit(Command::Policies(cmd)).await?,
                "a policy command",
                |o| match o {
                    CommandOutput::Policy(p) => Ok(*p),
                    other => Err(other),
                },
            )
        }
    }

    /// The policy of `room`, read linearizably.
    fn room_policy(
        &self,
        room: RoomId,
    ) -> impl Future<Output = Result<RoomPolicy, StoreError>> + Send {
        self.read_docs(move |d| policy_of(d, room))
    }
}

impl<S: DocAccess + ?Sized> PolicyStore for S {}
