//! The node's side of moderation at the edge: fetching a room's policy
//! from the control plane, and sending it participants' actions (one
//! session's at a time, in order) and the unattended lobby's admissions.
//! What a policy does to the room is in `crate::room` (`policy.rs`).

use crate::node::Shared;
use crate::outbox::Outbox;
use crate::room::{PolicySource, Room};
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{info, warn, Instrument};
use veche_protocol::error::ErrorBody;
use veche_protocol::limits;
use veche_protocol::moderation::ModAction;
use veche_protocol::rpc::{Actor, ModerateRequest, RoomPolicyRequest};
use veche_protocol::{ParticipantId, UnixMillis};

/// Fetches the room's policy unless this node already has a copy: before
/// the first seat of a room here, so that nobody is seated (or publishes)
/// under rules the node does not know yet. Without a copy the join is
/// refused (the caller closes with `unavailable`, and the client tries
/// again): seating someone unchecked would let a banned participant in, or
/// forward a non-speaker's media, until the copy arrived.
pub(crate) async fn ensure_policy(node: &Shared, room: &Room) -> Result<(), ErrorBody> {
    if room.policy_version().is_none() {
        fetch_policy(node, room).await?;
    }
    Ok(())
}

/// Fetches the room's policy and applies it if newer. A failure is
/// logged and returned: a room that already has a copy runs on it, and the
/// next join or heartbeat tries again.
pub(crate) async fn fetch_policy(node: &Shared, room: &Room) -> Result<(), ErrorBody> {
    let req = RoomPolicyRequest { room_id: room.id() };
    match node.cp.room_policy(&req).await {
        Ok(policy) => {
            room.apply_policy(policy, PolicySource::Fetched);
            Ok(())
        }
        Err(e) => {
            warn!(room = %room.id(), code = e.code.as_str(), "could not fetch the room's moderation policy: {}", e.message);
            Err(e)
        }
    }
}

/// Starts the task that sends one session's moderation actions to the
/// control plane, one at a time and in order, so a slow commit never holds
/// up signalling. Returns its queue ([`limits::signal::MODERATE_QUEUE`]
/// actions, each with the time the node received it).
pub(crate) fn spawn_moderation(
    node: Arc<Shared>,
    room: Arc<Room>,
    out: Outbox,
    actor: Actor,
) -> mpsc::Sender<(ModAction, UnixMillis)> {
    let (tx, mut rx) = mpsc::channel::<(ModAction, UnixMillis)>(limits::signal::MODERATE_QUEUE);
    tokio::spawn(
        async move {
            while let Some((action, at_ms)) = rx.recv().await {
                let kind = action.kind();
                let req = ModerateRequest {
                    room_id: room.id(),
                    actor: Some(actor.clone()),
                    action,
                    present: room.present(),
                    at_ms,
                };
                match node.cp.moderate(&req).await {
                    Ok(policy) => {
                        info!(
                            action = kind,
                            version = policy.version,
                            "moderation committed"
                        );
                        room.apply_policy(policy, PolicySource::Moderated(actor.clone()));
                    }
                    Err(e) => {
                        info!(
                            action = kind,
                            code = e.code.as_str(),
                            "moderation refused: {}",
                            e.message
                        );
                        node.reply_error(&out, e, "moderate", None);
                    }
                }
            }
        }
        .in_current_span(),
    );
    tx
}

/// The lobby stayed unattended: asks the control plane, as the node
/// itself (`actor: None`, which may only admit), to let `id` in. The reply
/// is applied and relayed like any moderator's.
pub(crate) fn admit_unattended(
    node: Arc<Shared>,
    room: Arc<Room>,
    id: ParticipantId,
    at_ms: UnixMillis,
) {
    tokio::spawn(
        async move {
            info!(participant = %id, "lobby unattended; asking to admit");
            let req = ModerateRequest {
                room_id: room.id(),
                actor: None,
                action: ModAction::Admit { participant_id: id },
                present: room.present(),
                at_ms,
            };
            match node.cp.moderate(&req).await {
                Ok(policy) => {
                    room.apply_policy(
                        policy,
                        PolicySource::Moderated(Actor {
                            participant_id: ParticipantId(String::new()),
                            display_name: "The lobby".into(),
                            claimed_role: Default::default(),
                        }),
                    );
                }
                Err(e) => warn!(
                    code = e.code.as_str(),
                    "unattended admission failed: {}", e.message
                ),
            }
        }
        .in_current_span(),
    );
}
