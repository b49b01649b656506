//! The internal RPC of media nodes and control-plane peers (MessagePack,
//! behind the cluster secret): registration, heartbeats, chat commits and
//! requests to the leader.

use super::write_error;
use crate::error::{ApiError, RpcError};
use crate::leader::{LeaderReply, LeaderRequest};
use crate::store::model::CommandError;
use crate::store::{NewMessage, Store, StoreError};
use crate::ControlPlane;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use veche_protocol::chat::validate_chat;
use veche_protocol::e2ee::check_sealed_chat;
use veche_protocol::rpc::{CommitChat, Heartbeat, MediaNodeInfo, RegisterNode, RegisterNodeReply};
use veche_protocol::ErrorCode;

pub(super) fn decode_rpc<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, RpcError> {
    veche_protocol::msgpack::from_slice(body).map_err(|e| {
        RpcError(ApiError::new(
            ErrorCode::BadRequest,
            format!("undecodable RPC body: {e}"),
        ))
    })
}

pub(super) fn rpc_reply<T: serde::Serialize>(v: &T) -> Response {
    match rmp_serde::to_vec_named(v) {
        Ok(b) => ([("content-type", "application/msgpack")], b).into_response(),
        Err(e) => {
            RpcError(ApiError::new(ErrorCode::Internal, format!("encode: {e}"))).into_response()
        }
    }
}

pub(super) async fn register_node(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Response, RpcError> {
    let req: RegisterNode = decode_rpc(&body)?;
    let info = MediaNodeInfo {
        node_id: req.node_id,
        region: req.region,
        ws_url: req.ws_url,
        capacity: req.capacity,
        relay_addr: req.relay_addr,
    };
    // Only a changed registration is worth a log entry: a node restarting
    // with the same settings costs a read, not a write. A drained node
    // registering again is a change: a freshly started process is back in
    // service, and the write clears the flag.
    let store = cp.replicated();
    let stored = store.media_nodes().await.map_err(ApiError::from)?;
    if !stored.iter().any(|r| r.info == info && !r.draining) {
        store
            .register_media_node(info.clone())
            .await
            .map_err(write_error)?;
    }
    tracing::info!(node = %info.node_id, ws_url = %info.ws_url, region = %info.region, "media node registered");
    cp.on_leader(LeaderRequest::Heartbeat(Heartbeat {
        node_id: info.node_id,
        participants: 0,
        rooms: 0,
        room_ids: Vec::new(),
    }))
    .await?;
    let key = cp.signing_key().await?;
    Ok(rpc_reply(&RegisterNodeReply {
        token_public_key: veche_protocol::token::public_key_bytes(&key),
        control_planes: cp.control_plane_urls(),
    }))
}

pub(super) async fn heartbeat(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Response, RpcError> {
    let req: Heartbeat = decode_rpc(&body)?;
    match cp.on_leader(LeaderRequest::Heartbeat(req)).await? {
        LeaderReply::Heartbeat(reply) => Ok(rpc_reply(&reply)),
        other => Err(RpcError(ApiError::new(
            ErrorCode::Internal,
            format!("unexpected leader reply {other:?}"),
        ))),
    }
}

/// Another control-plane node asks this one, as leader, to do something.
/// Never forwarded further: if this node is not the leader it says so and
/// the sender finds the leader itself, so a stale view cannot make a loop.
pub(super) async fn leader_rpc(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Response, RpcError> {
    let req: LeaderRequest = decode_rpc(&body)?;
    let reply = if cp.is_leader() {
        cp.execute_as_leader(&req).await
    } else {
        LeaderReply::NotLeader
    };
    Ok(rpc_reply(&reply))
}

pub(super) async fn commit_chat(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Response, RpcError> {
    let req: CommitChat = decode_rpc(&body)?;
    // Validated again here: the control plane is the authority, and the
    // internal API must not trust that the caller filtered anything. In
    // an encrypted room the text is a sealed envelope: the plain filters
    // would strip or refuse what they cannot read, so only its form and
    // size are checked (the client filtered before sealing), and the
    // state machine checks it again at apply time.
    let room = cp
        .replicated()
        .settled_room(req.room_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::new(ErrorCode::RoomNotFound, "the room no longer exists"))?;
    let text = if room.e2ee {
        check_sealed_chat(&req.text).map_err(ApiError::from)?;
        req.text
    } else {
        validate_chat(&req.text).map_err(|e| RpcError(ApiError::new(e.code(), e.to_string())))?
    };
    let message = NewMessage {
        room_id: req.room_id,
        participant_id: req.participant_id,
        display_name: req.display_name,
        text,
        sent_at_ms: req.sent_at_ms,
        client_msg_id: req.client_msg_id,
    };
    let msg = cp
        .replicated()
        .post_chat(message)
        .await
        .map_err(|e| match e {
            StoreError::Refused(CommandError::NoSuchRoom) => {
                ApiError::new(ErrorCode::RoomNotFound, "the room no longer exists")
            }
            StoreError::Refused(CommandError::E2ee(r)) => ApiError::from(r.into_error()),
            e => write_error(e),
        })?;
    cp.metrics.chat_messages.inc();
    Ok(rpc_reply(&msg))
}

/// A media node reports a batch of participant events: checked, then
/// stored through Raft as one command (one log entry), and acknowledged
/// with the highest `seq` stored. Repeats are dropped by the state
/// machine, so the node may send a batch again after any failure.
pub(super) async fn node_events(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Response, RpcError> {
    use crate::store::stats::{StatsCommand, StatsOutput};
    use crate::store::StatsStore;
    use veche_protocol::rpc::{MAX_DISPLAY_NAME_CHARS, MAX_ROOM_NAME_CHARS};
    use veche_protocol::stats::{EventKind, NodeEvents, NodeEventsReply};
    let req: NodeEvents = decode_rpc(&body)?;
    let bad = |m: String| RpcError(ApiError::new(ErrorCode::BadRequest, m));
    if req.events.len() > veche_protocol::limits::stats::MAX_EVENTS_PER_BATCH {
        return Err(bad(format!("{} events in one report", req.events.len())));
    }
    if req.events.windows(2).any(|w| w[0].seq >= w[1].seq) {
        return Err(bad("event sequence numbers must increase".into()));
    }
    for e in &req.events {
        let name_ok = match &e.kind {
            EventKind::Joined { display_name, .. } => {
                display_name.chars().count() <= MAX_DISPLAY_NAME_CHARS
            }
            EventKind::Left => true,
        };
        if !name_ok || e.room_name.chars().count() > MAX_ROOM_NAME_CHARS {
            return Err(bad(format!("event {} has an overlong name", e.seq)));
        }
    }
    if req.dropped > 0 {
        tracing::warn!(node = %req.node_id, dropped = req.dropped, "a media node dropped participant events (its queue was full)");
    }
    let events = req.events.len() as u64;
    let out = cp
        .replicated()
        .stats(StatsCommand::Record {
            node_id: req.node_id,
            boot: req.boot,
            events: req.events,
            received_at_ms: crate::now_ms(),
            webhooks: cp.webhooks_enabled(),
        })
        .await
        .map_err(write_error)?;
    let StatsOutput::Recorded {
        stored_through,
        applied,
    } = out
    else {
        return Err(RpcError(ApiError::new(
            ErrorCode::Internal,
            "unexpected result from the state machine",
        )));
    };
    cp.metrics.stats_reports.inc();
    cp.metrics.stats_events.inc_by(applied);
    tracing::debug!(node = %req.node_id, events, applied, "participant events stored");
    Ok(rpc_reply(&NodeEventsReply { stored_through }))
}
