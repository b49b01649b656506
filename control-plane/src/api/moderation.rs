//! Room policies over the wire: the media nodes' internal RPCs
//! (`RPC_ROOM_POLICY`, `RPC_MODERATE`; MessagePack, behind the cluster
//! secret) and the owner's `PUT /api/rooms/{slug}/settings` (JSON).
//!
//! Nothing here decides who may do what: the store applies every change
//! with the protocol's rules at apply time (`store/policies.rs`), and a
//! refusal comes back as the rules worded it (`403 forbidden`, or `400
//! bad_request` for an overlong id or a full policy), with nothing
//! committed. Writes go through [`crate::leader::Replicated`], so any
//! control-plane node takes them and the leader commits them.

use super::auth::Viewer;
use super::edge::Body;
use super::internal::{decode_rpc, rpc_reply};
use super::{owned_room, parse_json, write_error};
use crate::error::{ApiError, RpcError};
use crate::store::model::CommandError;
use crate::store::policies::{PolicyCommand, PolicyRefusal};
use crate::store::{PolicyStore, Store, StoreError};
use crate::ControlPlane;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use std::sync::Arc;
use veche_protocol::limits::moderation::MAX_ENTRIES;
use veche_protocol::moderation::{ModAction, PolicyView, RoomPolicy, SettingsChange};
use veche_protocol::recording::RecordingId;
use veche_protocol::rpc::{ModerateRequest, RoomPolicyRequest};
use veche_protocol::{ErrorCode, RoomId};

/// The refusal of a settings change by someone who does not own the room.
pub(crate) const OWNER_ONLY: &str = "only the meeting's owner may change its settings";

/// Commits `cmd`, counting it under `action`: the policy after it, or the
/// rules' refusal as an API error.
async fn commit(
    cp: &Arc<ControlPlane>,
    action: &str,
    cmd: PolicyCommand,
) -> Result<RoomPolicy, ApiError> {
    let room = cmd.room_id();
    // Only for the metric's outcome: a change committed by someone else
    // between this read and the command can count as `applied` what
    // changed nothing, never the other way round.
    let before = cp.replicated().room_policy(room).await.ok();
    let result = cp.replicated().policy_command(cmd).await;
    let outcome = match &result {
        Ok(p) if before.as_ref().is_some_and(|b| b.version == p.version) => "unchanged",
        Ok(_) => "applied",
        Err(StoreError::Refused(CommandError::Policy(_))) => "refused",
        Err(_) => "failed",
    };
    cp.metrics
        .moderation_actions
        .with_label_values(&[action, outcome])
        .inc();
    match result {
        Ok(p) => {
            tracing::info!(room = %room, action, version = p.version, outcome, "room policy");
            Ok(p)
        }
        Err(StoreError::Refused(CommandError::Policy(r))) => {
            tracing::info!(room = %room, action, reason = %r, "moderation refused");
            Err(refusal(&r))
        }
        Err(e) => Err(write_error(e)),
    }
}

/// The API error of a refusal by the rules.
fn refusal(r: &PolicyRefusal) -> ApiError {
    ApiError::new(r.code(), r.message())
}

async fn existing_room(cp: &Arc<ControlPlane>, room: RoomId) -> Result<(), ApiError> {
    match cp.replicated().room_by_id(room).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::new(
            ErrorCode::RoomNotFound,
            "the room no longer exists",
        )),
    }
}

/// `RPC_ROOM_POLICY`: the room's committed policy, read linearizably
/// (a node opening a room must not start from a policy older than one it
/// could have heard of).
pub(super) async fn room_policy(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Response, RpcError> {
    let req: RoomPolicyRequest = decode_rpc(&body)?;
    let policy = cp
        .replicated()
        .room_policy(req.room_id)
        .await
        .map_err(ApiError::from)?;
    Ok(rpc_reply(&policy))
}

/// `RPC_MODERATE`: a participant's action (or the node's own lobby
/// admit), decided and committed; the reply is the new policy.
pub(super) async fn moderate(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Response, RpcError> {
    let req: ModerateRequest = decode_rpc(&body)?;
    if req.present.len() > MAX_ENTRIES {
        return Err(RpcError(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "{} present participants; at most {MAX_ENTRIES}",
                req.present.len()
            ),
        )));
    }
    existing_room(&cp, req.room_id).await?;
    let mut req = req;
    if let ModAction::StartRecording { id } = &mut req.action {
        // The id is the control plane's: whatever a client sent is
        // replaced, so ids are random and never reused.
        *id = Some(RecordingId::from_random(crate::random_bytes()));
    }
    let action = req.action.kind();
    let policy = commit(&cp, action, PolicyCommand::Act(req)).await?;
    Ok(rpc_reply(&policy))
}

/// `PUT /api/rooms/{slug}/settings`: the owner changes the room's
/// settings (lobby, lock, speak mode, self-unmute), before or during the
/// meeting. The owner check comes before the body is parsed, as for
/// guest passes. Media nodes hosting the room learn the new version from
/// their next heartbeat reply.
pub(super) async fn put_settings(
    State(cp): State<Arc<ControlPlane>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Body(body): Body,
) -> Result<Json<PolicyView>, ApiError> {
    let room = owned_room(&cp, &viewer, &headers, &slug, OWNER_ONLY).await?;
    let change: SettingsChange = parse_json(&body)?;
    let policy = commit(
        &cp,
        "settings",
        PolicyCommand::ChangeSettings {
            room_id: room.id,
            change,
        },
    )
    .await?;
    Ok(Json(policy.view()))
}
