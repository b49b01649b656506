//! `RPC_E2EE`: a media node asks the control plane to order one step of a
//! participant's MLS handshake (`DsRequest`, MessagePack, behind the
//! cluster secret like every node RPC, body at most
//! [`MAX_RPC_BODY_BYTES`]). The reply is the delivery service's
//! `DsReply`; a refusal is the protocol's `E2eeError`, through its one
//! code table (`E2eeError::code`).
//!
//! Nothing here decides the order: the step is a Raft command, decided at
//! apply time (`store/e2ee.rs`), so the first commit per epoch wins on
//! every control-plane node alike and an accepted commit survives a
//! leader's death. The write goes through [`crate::leader::Replicated`],
//! so a follower forwards it to the leader. The node rate-limits each
//! participant; the checks here (room, ids, lists) keep a caller's mistake
//! from reaching the log.

use super::internal::{decode_rpc, rpc_reply};
use super::write_error;
use crate::error::{ApiError, RpcError};
use crate::store::model::CommandError;
use crate::store::{E2eeStore, StoreError};
use crate::ControlPlane;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use std::collections::BTreeSet;
use std::sync::Arc;
use veche_protocol::e2ee::{DsOp, DsReply, DsRequest, E2eeError};
use veche_protocol::limits::e2ee::MAX_LISTED;
use veche_protocol::limits::moderation::{MAX_ID_BYTES, MAX_RPC_BODY_BYTES};
use veche_protocol::ErrorCode;

/// The RPC error of an E2EE refusal: its wire code and its words.
fn refusal(e: E2eeError) -> RpcError {
    RpcError(ApiError::from(e))
}

/// Checks what the rules do not: id lengths, and a commit's lists (at
/// most [`MAX_LISTED`] participants, each once), as the node checked them
/// already (`check_commit`); a node that did not is refused here.
fn check_request(req: &DsRequest) -> Result<(), RpcError> {
    let listed: Vec<_> = match &req.op {
        DsOp::KeyPackage => Vec::new(),
        DsOp::Commit(c) => c.added.iter().chain(&c.removed).collect(),
    };
    let too_long = std::iter::once(&req.participant_id)
        .chain(listed.iter().copied())
        .any(|p| p.0.len() > MAX_ID_BYTES);
    if too_long {
        return Err(RpcError(ApiError::new(
            ErrorCode::BadRequest,
            format!("a participant id is longer than {MAX_ID_BYTES} bytes"),
        )));
    }
    let distinct: BTreeSet<_> = listed.iter().collect();
    if listed.len() > MAX_LISTED || distinct.len() != listed.len() {
        return Err(refusal(E2eeError::BadList));
    }
    Ok(())
}

/// `RPC_E2EE`: orders one handshake step of an encrypted room.
pub(super) async fn step(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Response, RpcError> {
    let req: DsRequest = decode_rpc(&body)?;
    check_request(&req)?;
    let op = match req.op {
        DsOp::KeyPackage => "key_package",
        DsOp::Commit(_) => "commit",
    };
    let count = |outcome: &str| {
        cp.metrics
            .e2ee_steps
            .with_label_values(&[op, outcome])
            .inc()
    };
    let room = cp
        .replicated()
        .settled_room(req.room_id)
        .await
        .map_err(ApiError::from)?;
    match room {
        None => {
            count("refused");
            return Err(RpcError(ApiError::new(
                ErrorCode::RoomNotFound,
                "the room no longer exists",
            )));
        }
        Some(r) if !r.e2ee => {
            count("refused");
            return Err(refusal(E2eeError::NotEncryptedRoom));
        }
        Some(_) => {}
    }
    let (room_id, who) = (req.room_id, req.participant_id.clone());
    match cp.replicated().e2ee_step(req).await {
        Ok(reply) => {
            let outcome = match reply {
                DsReply::Found { .. } => "found",
                DsReply::Queued { .. } => "queued",
                DsReply::Accepted { .. } => "accepted",
            };
            count(outcome);
            tracing::debug!(room = %room_id, participant = %who, op, ?reply, "e2ee step ordered");
            Ok(rpc_reply(&reply))
        }
        Err(StoreError::Refused(CommandError::E2ee(r))) => {
            count("refused");
            tracing::debug!(room = %room_id, participant = %who, op, reason = %r, "e2ee step refused");
            Err(refusal(r.into_error()))
        }
        Err(e) => {
            count("failed");
            Err(RpcError(write_error(e)))
        }
    }
}

/// The body limit of the route.
pub(super) const BODY_LIMIT: usize = MAX_RPC_BODY_BYTES;
