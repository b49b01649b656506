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
use veche_protocol::admin::{
    AddMemberRequest, ClusterStatus, MediaNodeStatus, ADMIN_CLUSTER, ADMIN_MEDIA_NODES,
    ADMIN_MEMBERS,
};
use veche_protocol::chat::validate_chat;
use veche_protocol::rpc::{
    CommitChat, CreateRoomRequest, Heartbeat, JoinRequest, JoinResponse, MediaNodeInfo,
    MessagesPage, RegisterNode, RegisterNodeReply, RoomView, HISTORY_PAGE, MAX_DISPLAY_NAME_CHARS,
    MAX_ROOM_NAME_CHARS, REGION_HEADER, REJOIN_MAX_AGE_MS, RPC_COMMIT_CHAT, RPC_HEARTBEAT,
    RPC_REGISTER_NODE,
};
use veche_protocol::token::{self, JoinClaims, TokenError};
use veche_protocol::{ErrorCode, MessageId, NodeId, ParticipantId, RoomSlug};

/// Largest JSON body accepted on the public API.
const MAX_BODY: usize = 16 * 1024;
/// Longest region label a join may name.
const MAX_REGION_CHARS: usize = 64;

pub(crate) fn router(cp: Arc<ControlPlane>) -> Router {
    let internal = Router::new()
        .route(RPC_REGISTER_NODE, post(register_node))
        .route(RPC_COMMIT_CHAT, post(commit_chat))
        .route(RPC_HEARTBEAT, post(heartbeat))
        .route(LEADER_RPC, post(leader_rpc))
        .route(ADMIN_CLUSTER, get(cluster_status))
        .route(ADMIN_MEMBERS, post(add_member))
        .route(&format!("{ADMIN_MEMBERS}/{{id}}"), delete(remove_member))
        .route(
            &format!("{ADMIN_MEDIA_NODES}/{{id}}/drain"),
            post(drain_media_node).delete(undrain_media_node),
        )
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

/// The region to place a joiner in: the load balancer's
/// [`REGION_HEADER`] if present and non-empty, else the body's `region`.
/// Either must be a plain label, so that it can be logged and compared
/// without surprises.
fn join_region(headers: &HeaderMap, body: Option<&str>) -> Result<Option<String>, ApiError> {
    let header = match headers.get(REGION_HEADER) {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("the {REGION_HEADER} header is not plain ASCII"),
            )
        })?),
        None => None,
    }
    .filter(|r| !r.is_empty());
    let (region, source) = match (header, body.filter(|r| !r.is_empty())) {
        (Some(r), _) => (r, format!("the {REGION_HEADER} header")),
        (None, Some(r)) => (r, "region".to_owned()),
        (None, None) => return Ok(None),
    };
    if region.chars().count() > MAX_REGION_CHARS {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("{source} is longer than {MAX_REGION_CHARS} characters"),
        ));
    }
    if !region
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("{source} may only contain letters, digits, '.', '_' and '-'"),
        ));
    }
    Ok(Some(region.to_owned()))
}

/// The participant a `rejoin_token` proves the caller was in `room`: the
/// token must carry this control plane's signature (expired is fine), name
/// the same room, and have been issued at most [`REJOIN_MAX_AGE_MS`] ago.
fn rejoining_participant(
    rejoin_token: &str,
    key: &ring::signature::Ed25519KeyPair,
    room: &Room,
    now_ms: u64,
) -> Result<ParticipantId, ApiError> {
    let claims = token::verify_ignoring_expiry(rejoin_token, &token::public_key_bytes(key))
        .map_err(|e| {
            let why = match e {
                TokenError::BadSignature => "its signature is not valid",
                _ => "it is malformed",
            };
            ApiError::new(
                ErrorCode::TokenInvalid,
                format!("the rejoin token was refused: {why}"),
            )
        })?;
    if claims.room_id != room.id {
        return Err(ApiError::new(
            ErrorCode::TokenInvalid,
            "the rejoin token was refused: it is for another meeting",
        ));
    }
    if now_ms.saturating_sub(claims.issued_at_ms) > REJOIN_MAX_AGE_MS {
        return Err(ApiError::new(
            ErrorCode::TokenExpired,
            format!(
                "the rejoin token was refused: it is more than {} minutes old; join without it",
                REJOIN_MAX_AGE_MS / 60_000
            ),
        ));
    }
    Ok(claims.participant_id)
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
    let region = join_region(&headers, req.region.as_deref())?;
    let room = room_or_404(&cp, &slug).await?;
    let signing_key = cp.signing_key().await?;
    let now = crate::now_ms();
    // Checked before placement, so a refused token does not count a
    // participant against a node.
    let rejoining = req
        .rejoin_token
        .as_deref()
        .map(|t| rejoining_participant(t, &signing_key, &room, now))
        .transpose()?;
    let placement = match cp
        .on_leader(LeaderRequest::Place {
            room: room.id,
            region,
            avoid: req.unreachable_node,
        })
        .await?
    {
        LeaderReply::Placed(p) => p,
        _ => None,
    };
    let placement = placement.ok_or_else(|| {
        let msg = if req.unreachable_node.is_some() {
            "no other media node is available; retry shortly"
        } else {
            "no media node is available; retry shortly"
        };
        ApiError::new(ErrorCode::Unavailable, msg)
    })?;
    let (node_id, ws_url) = (placement.node_id, placement.ws_url);
    let claims = JoinClaims {
        room_id: room.id,
        room_slug: room.slug.clone(),
        room_name: room.name.clone(),
        participant_id: rejoining
            .clone()
            .unwrap_or_else(|| ParticipantId::from_random(crate::random_bytes())),
        display_name,
        node_id,
        issued_at_ms: now,
        expires_at_ms: now + cp.config.token_ttl.as_millis() as u64,
        room_nodes: placement.room_nodes,
        rejoin: rejoining.is_some(),
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
    veche_protocol::msgpack::from_slice(body).map_err(|e| {
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
    // with the same settings costs a read, not a write. A drained node
    // registering again is a change: a freshly started process is back in
    // service, and the write clears the flag.
    cp.read_barrier().await?;
    let stored = cp.store.local().media_nodes().map_err(ApiError::from)?;
    if !stored.iter().any(|r| r.info == info && !r.draining) {
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

fn parse_media_node_id(id: &str) -> Result<NodeId, ApiError> {
    id.parse()
        .map(NodeId)
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "media node id must be a number"))
}

async fn set_draining(
    cp: &ControlPlane,
    node: NodeId,
    draining: bool,
) -> Result<MediaNodeStatus, ApiError> {
    match cp
        .on_leader(LeaderRequest::SetDraining { node, draining })
        .await?
    {
        LeaderReply::MediaNode(status) => Ok(status),
        other => Err(ApiError::new(
            ErrorCode::Internal,
            format!("unexpected leader reply {other:?}"),
        )),
    }
}

/// `POST /api/admin/media-nodes/{id}/drain`: place no one new on the node,
/// and tell it (in its heartbeat replies) to move its participants. `202`:
/// the node empties over the next seconds or minutes.
async fn drain_media_node(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<MediaNodeStatus>), ApiError> {
    let node = parse_media_node_id(&id)?;
    let status = set_draining(&cp, node, true).await?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// `DELETE /api/admin/media-nodes/{id}/drain`: back in service.
async fn undrain_media_node(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
) -> Result<Json<MediaNodeStatus>, ApiError> {
    let node = parse_media_node_id(&id)?;
    Ok(Json(set_draining(&cp, node, false).await?))
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

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::Ed25519KeyPair;

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn room(id: u64) -> Room {
        Room {
            id: veche_protocol::RoomId(id),
            slug: RoomSlug::from_random([id as u8; 16]),
            name: "Standup".into(),
            created_at_ms: 0,
        }
    }

    /// A token for `room` issued at `issued_at_ms`, valid for a minute.
    fn token(key: &Ed25519KeyPair, room: &Room, issued_at_ms: u64) -> String {
        token::sign(
            &JoinClaims {
                room_id: room.id,
                room_slug: room.slug.clone(),
                room_name: room.name.clone(),
                participant_id: ParticipantId::from_random([7; 8]),
                display_name: "Ada".into(),
                node_id: NodeId(1),
                issued_at_ms,
                expires_at_ms: issued_at_ms + 60_000,
                room_nodes: Vec::new(),
                rejoin: false,
            },
            key,
        )
    }

    #[test]
    fn a_rejoin_token_is_accepted_expired_but_not_older_than_the_limit() {
        let k = key();
        let r = room(1);
        let issued = 1_000_000;
        let t = token(&k, &r, issued);
        let ada = ParticipantId::from_random([7; 8]);
        // Long expired, still within the rejoin age: the same participant.
        let at_limit = issued + REJOIN_MAX_AGE_MS;
        assert_eq!(rejoining_participant(&t, &k, &r, at_limit).unwrap(), ada);
        let too_old = rejoining_participant(&t, &k, &r, at_limit + 1).unwrap_err();
        assert_eq!(too_old.0.code, ErrorCode::TokenExpired, "{too_old:?}");
    }

    #[test]
    fn a_rejoin_token_of_another_room_or_key_or_shape_is_invalid() {
        let k = key();
        let r = room(1);
        let now = 2_000_000;
        let cases = [
            ("another room", token(&k, &room(2), now)),
            ("another key", token(&key(), &r, now)),
            ("garbage", "v1.%%%.%%%".to_owned()),
        ];
        for (what, t) in cases {
            let e = rejoining_participant(&t, &k, &r, now).unwrap_err();
            assert_eq!(e.0.code, ErrorCode::TokenInvalid, "{what}: {e:?}");
            assert!(e.0.message.contains("rejoin token"), "{what}: {e:?}");
        }
    }

    #[test]
    fn the_region_header_wins_over_the_body_and_must_be_a_plain_label() {
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(REGION_HEADER, v.parse().unwrap());
            h
        };
        let none = HeaderMap::new();
        assert_eq!(join_region(&none, None).unwrap(), None);
        assert_eq!(join_region(&none, Some("")).unwrap(), None);
        assert_eq!(
            join_region(&none, Some("us")).unwrap().as_deref(),
            Some("us")
        );
        assert_eq!(
            join_region(&headers("eu"), Some("us")).unwrap().as_deref(),
            Some("eu")
        );
        assert_eq!(
            join_region(&headers(""), Some("us")).unwrap().as_deref(),
            Some("us")
        );
        let ok = "a".repeat(MAX_REGION_CHARS);
        assert!(join_region(&none, Some(&ok)).is_ok());
        for bad in ["eu west", "eu/1", "ü", &"a".repeat(MAX_REGION_CHARS + 1)] {
            let e = join_region(&none, Some(bad)).unwrap_err();
            assert_eq!(e.0.code, ErrorCode::BadRequest, "{bad:?}");
        }
        let e = join_region(&headers("eu west"), None).unwrap_err();
        assert!(e.0.message.contains(REGION_HEADER), "{e:?}");
    }
}
