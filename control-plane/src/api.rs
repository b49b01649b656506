//! HTTP routes: the public REST API (JSON), the internal node RPC
//! (MessagePack, behind the cluster secret), the web client and metrics.

use crate::cluster::{LeaderReply, LeaderRequest, LEADER_RPC};
use crate::error::{ApiError, RpcError};
use crate::store::model::{Command, CommandError, CommandOutput, Room};
use crate::ControlPlane;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use veche_protocol::admin::{AddMemberRequest, ClusterStatus, ADMIN_CLUSTER, ADMIN_MEMBERS};
use veche_protocol::chat::validate_chat;
use veche_protocol::rpc::{
    CommitChat, CreateRoomRequest, Heartbeat, JoinRequest, JoinResponse, MediaNodeInfo,
    MessagesPage, RegisterNode, RegisterNodeReply, RoomView, HISTORY_PAGE, MAX_DISPLAY_NAME_CHARS,
    MAX_ROOM_NAME_CHARS, RPC_COMMIT_CHAT, RPC_HEARTBEAT, RPC_REGISTER_NODE,
};
use veche_protocol::token::{self, JoinClaims};
use veche_protocol::{ErrorCode, MessageId, ParticipantId, RoomSlug};

/// Largest JSON body accepted on the public API.
const MAX_BODY: usize = 16 * 1024;

pub(crate) fn router(cp: Arc<ControlPlane>) -> Router {
    let internal = Router::new()
        .route(RPC_REGISTER_NODE, post(register_node))
        .route(RPC_COMMIT_CHAT, post(commit_chat))
        .route(RPC_HEARTBEAT, post(heartbeat))
        .route(LEADER_RPC, post(leader_rpc))
        .route(ADMIN_CLUSTER, get(cluster_status))
        .route(ADMIN_MEMBERS, post(add_member))
        .route(&format!("{ADMIN_MEMBERS}/{{id}}"), delete(remove_member))
        .with_state(cp.clone())
        .merge(crate::store::raft_router(cp.store.raft().clone()))
        .layer(middleware::from_fn_with_state(
            cp.clone(),
            require_cluster_secret,
        ));
    Router::new()
        .route("/api/rooms", post(create_room))
        .route("/api/rooms/{slug}", get(get_room))
        .route("/api/rooms/{slug}/join", post(join_room))
        .route("/api/rooms/{slug}/messages", get(messages))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .merge(crate::web::router())
        .with_state(cp)
        .merge(internal)
}

/// Compares secrets in time independent of where they differ, so the
/// secret cannot be guessed byte by byte from response timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_cluster_secret(
    State(cp): State<Arc<ControlPlane>>,
    req: Request,
    next: Next,
) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = presented
        .is_some_and(|p| constant_time_eq(p.as_bytes(), cp.config.cluster_secret.as_bytes()));
    if ok {
        next.run(req).await
    } else {
        (StatusCode::UNAUTHORIZED, "cluster secret required").into_response()
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("request body over {MAX_BODY} bytes"),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("invalid request body: {e}")))
}

fn parse_slug(s: &str) -> Result<RoomSlug, ApiError> {
    RoomSlug::parse(s).map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))
}

/// Trims and checks a name; control characters are never part of a name.
fn clean_name(raw: &str, what: &str, max: usize) -> Result<String, ApiError> {
    let name: String = raw.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("{what} must not be empty"),
        ));
    }
    if name.chars().count() > max {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("{what} is longer than {max} characters"),
        ));
    }
    Ok(name.to_owned())
}

fn public_base(cp: &ControlPlane, headers: &HeaderMap) -> String {
    if let Some(u) = &cp.config.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn view(cp: &ControlPlane, headers: &HeaderMap, room: &Room) -> RoomView {
    RoomView {
        id: room.id,
        slug: room.slug.clone(),
        name: room.name.clone(),
        link: format!("{}/r/{}", public_base(cp, headers), room.slug),
        created_at_ms: room.created_at_ms,
    }
}

/// The room with this slug, read linearizably on whichever node serves the
/// request.
async fn room_or_404(cp: &ControlPlane, slug: &RoomSlug) -> Result<Room, ApiError> {
    cp.read_barrier().await?;
    cp.store
        .local()
        .room_by_slug(slug)?
        .ok_or_else(|| ApiError::new(ErrorCode::RoomNotFound, "no meeting has this link"))
}

async fn create_room(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<RoomView>), ApiError> {
    let req: CreateRoomRequest = parse_json(&body)?;
    let name = clean_name(&req.name, "room name", MAX_ROOM_NAME_CHARS)?;
    let slug = RoomSlug::from_random(crate::random_bytes());
    let out = cp
        .write(Command::CreateRoom {
            slug,
            name,
            created_at_ms: crate::now_ms(),
        })
        .await?;
    match out {
        Ok(CommandOutput::Room(room)) => {
            cp.metrics.rooms_created.inc();
            tracing::info!(room = %room.id, "room created");
            Ok((StatusCode::CREATED, Json(view(&cp, &headers, &room))))
        }
        Err(CommandError::SlugTaken) => Err(ApiError::new(
            ErrorCode::Unavailable,
            "could not allocate a link; retry",
        )),
        other => Err(unexpected(other)),
    }
}

fn unexpected(out: Result<CommandOutput, CommandError>) -> ApiError {
    tracing::error!("unexpected state machine output: {out:?}");
    ApiError::new(
        ErrorCode::Internal,
        "unexpected result from the state machine",
    )
}

async fn get_room(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Json<RoomView>, ApiError> {
    let slug = parse_slug(&slug)?;
    let room = room_or_404(&cp, &slug).await?;
    Ok(Json(view(&cp, &headers, &room)))
}

async fn join_room(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<Json<JoinResponse>, ApiError> {
    let slug = parse_slug(&slug)?;
    let req: JoinRequest = parse_json(&body)?;
    let display_name = clean_name(&req.display_name, "display name", MAX_DISPLAY_NAME_CHARS)?;
    let room = room_or_404(&cp, &slug).await?;
    let signing_key = cp.signing_key().await?;
    let placement = match cp.on_leader(LeaderRequest::Place { room: room.id }).await? {
        LeaderReply::Placed(p) => p,
        _ => None,
    };
    let (node_id, ws_url) = placement.map(|p| (p.node_id, p.ws_url)).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unavailable,
            "no media node is available; retry shortly",
        )
    })?;
    let now = crate::now_ms();
    let claims = JoinClaims {
        room_id: room.id,
        room_slug: room.slug.clone(),
        room_name: room.name.clone(),
        participant_id: ParticipantId::from_random(crate::random_bytes()),
        display_name,
        node_id,
        issued_at_ms: now,
        expires_at_ms: now + cp.config.token_ttl.as_millis() as u64,
        room_nodes: Vec::new(),
        rejoin: false,
    };
    let token = token::sign(&claims, &signing_key);
    cp.metrics.joins.inc();
    Ok(Json(JoinResponse {
        token,
        ws_url,
        participant_id: claims.participant_id,
        node_id,
        expires_at_ms: claims.expires_at_ms,
        room: view(&cp, &headers, &room),
    }))
}

#[derive(Deserialize)]
struct MessagesQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

async fn messages(
    State(cp): State<Arc<ControlPlane>>,
    Path(slug): Path<String>,
    query: Result<Query<MessagesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<MessagesPage>, ApiError> {
    let slug = parse_slug(&slug)?;
    let Query(q) = query.map_err(|e| ApiError::new(ErrorCode::BadRequest, e.body_text()))?;
    let limit = q.limit.unwrap_or(HISTORY_PAGE).clamp(1, HISTORY_PAGE);
    let room = room_or_404(&cp, &slug).await?;
    // room_or_404 was the read barrier; the local read is current.
    let (messages, has_more) =
        cp.store
            .local()
            .messages(room.id, q.before.map(MessageId), limit)?;
    Ok(Json(MessagesPage { messages, has_more }))
}

async fn metrics(State(cp): State<Arc<ControlPlane>>) -> impl IntoResponse {
    cp.refresh_raft_gauges();
    (
        [("content-type", "text/plain; version=0.0.4")],
        cp.metrics.render(),
    )
}

fn decode_rpc<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, RpcError> {
    rmp_serde::from_slice(body).map_err(|e| {
        RpcError(ApiError::new(
            ErrorCode::BadRequest,
            format!("undecodable RPC body: {e}"),
        ))
    })
}

fn rpc_reply<T: serde::Serialize>(v: &T) -> Response {
    match rmp_serde::to_vec_named(v) {
        Ok(b) => ([("content-type", "application/msgpack")], b).into_response(),
        Err(e) => {
            RpcError(ApiError::new(ErrorCode::Internal, format!("encode: {e}"))).into_response()
        }
    }
}

async fn register_node(
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
    // with the same settings costs a read, not a write.
    cp.read_barrier().await?;
    let stored = cp.store.local().media_nodes().map_err(ApiError::from)?;
    if !stored.contains(&info) {
        match cp
            .write(Command::RegisterMediaNode { info: info.clone() })
            .await?
        {
            Ok(CommandOutput::MediaNode(_)) => {}
            other => return Err(RpcError(unexpected(other))),
        }
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

async fn heartbeat(State(cp): State<Arc<ControlPlane>>, body: Bytes) -> Result<Response, RpcError> {
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
async fn leader_rpc(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Response, RpcError> {
    let req: LeaderRequest = decode_rpc(&body)?;
    let reply = if cp.store.is_leader() {
        cp.execute_as_leader(&req).await
    } else {
        LeaderReply::NotLeader
    };
    Ok(rpc_reply(&reply))
}

/// `GET /api/admin/cluster`: this node's view.
async fn cluster_status(State(cp): State<Arc<ControlPlane>>) -> Json<ClusterStatus> {
    Json(cp.status())
}

/// `POST /api/admin/cluster/members`: add a node as a voter (through the
/// leader). Answers once the node has caught up and votes.
async fn add_member(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Json<ClusterStatus>, ApiError> {
    let req: AddMemberRequest = parse_json(&body)?;
    if !(req.addr.starts_with("http://") || req.addr.starts_with("https://")) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "addr must be a base URL like http://10.0.0.4:8080",
        ));
    }
    cp.on_leader(LeaderRequest::AddVoter {
        id: req.id,
        addr: req.addr,
    })
    .await?;
    Ok(Json(cp.status()))
}

/// `DELETE /api/admin/cluster/members/{id}`: remove a node.
async fn remove_member(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
) -> Result<Json<ClusterStatus>, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "member id must be a number"))?;
    if !cp.store.member_addrs().contains_key(&id) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("node {id} is not a member of this cluster"),
        ));
    }
    cp.on_leader(LeaderRequest::RemoveMember { id }).await?;
    Ok(Json(cp.status()))
}

async fn commit_chat(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Response, RpcError> {
    let req: CommitChat = decode_rpc(&body)?;
    // Validated again here: the control plane is the authority, and the
    // internal API must not trust that the caller filtered anything.
    let text =
        validate_chat(&req.text).map_err(|e| RpcError(ApiError::new(e.code(), e.to_string())))?;
    let out = cp
        .write(Command::PostChat {
            room_id: req.room_id,
            participant_id: req.participant_id,
            display_name: req.display_name,
            text,
            sent_at_ms: req.sent_at_ms,
            client_msg_id: req.client_msg_id,
        })
        .await?;
    match out {
        Ok(CommandOutput::Chat(msg)) => {
            cp.metrics.chat_messages.inc();
            Ok(rpc_reply(&msg))
        }
        Err(CommandError::NoSuchRoom) => Err(RpcError(ApiError::new(
            ErrorCode::RoomNotFound,
            "the room no longer exists",
        ))),
        other => Err(RpcError(unexpected(other))),
    }
}
