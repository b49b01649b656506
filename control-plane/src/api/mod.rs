//! HTTP routes: the public REST API (JSON), the internal node RPC
//! (MessagePack, behind the cluster secret), the operator API, the web
//! client and metrics. One module per concern; this one assembles the
//! router and holds what the public handlers share.
//!
//! Every handler reaches rooms, chat history, the signing key and media
//! nodes through the [`Store`] trait, as this node serves it
//! ([`crate::leader::Replicated`]: writes forwarded to the leader, reads
//! after a read barrier), never through the Raft store underneath; a test
//! (`tests.rs`) keeps it so. What only the leader's memory holds (media-node
//! liveness, placement, drains) and membership travel as leader RPCs
//! instead.
//!
//! The public API sits behind the admission layers of [`edge`]: per-address
//! rate limits, a body limit and a timeout. The internal and Raft routes
//! sit behind the cluster secret instead, with their own (larger) limits.

mod account;
mod admin;
pub(crate) mod auth;
mod cover_view;
mod covers;
mod e2ee;
pub(crate) mod edge;
mod history;
mod internal;
mod join;
pub(crate) mod join_policy;
pub(crate) mod moderation;
mod oidc;
mod owner;
mod passes;
pub(crate) mod recording_access;
mod recording_files;
mod recording_report;
pub mod recordings;
mod rooms;
mod stats;
#[cfg(test)]
mod stats_tests;
#[cfg(test)]
mod tests;
mod users;

use crate::error::ApiError;
use crate::store::model::Room;
use crate::store::{Store, StoreError};
use crate::ControlPlane;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Extension, Router};
use edge::{Edge, RouteClass};
use std::sync::Arc;
use veche_protocol::account::{
    ADMIN_CLUSTER_USERS, ADMIN_USERS, API_LOGIN, API_LOGOUT, API_LOGOUT_ALL, API_ME, API_PROFILE,
    API_PROFILE_AVATAR, API_PROFILE_PASSWORD,
};
use veche_protocol::admin::{ADMIN_CLUSTER, ADMIN_MEDIA_NODES, ADMIN_MEMBERS};
use veche_protocol::limits::accounts::MAX_AVATAR_BYTES;
use veche_protocol::limits::http::MAX_BODY_BYTES;
use veche_protocol::limits::moderation::MAX_RPC_BODY_BYTES;
use veche_protocol::limits::stats::MAX_EVENTS_BODY_BYTES;
use veche_protocol::recording::API_RECORDINGS;
use veche_protocol::rpc::{
    RoomView, RPC_COMMIT_CHAT, RPC_HEARTBEAT, RPC_MODERATE, RPC_REGISTER_NODE, RPC_ROOM_POLICY,
};
use veche_protocol::stats::{
    API_ADMIN_MEETINGS, API_ADMIN_OVERVIEW, API_MY_MEETINGS, RPC_NODE_EVENTS,
};
use veche_protocol::{ErrorCode, RoomSlug};

pub(crate) fn router(cp: Arc<ControlPlane>) -> Router {
    let accounts = Arc::new(account::Accounts::new(&cp));
    let covers = Arc::new(crate::covers::Covers::new(
        &cp.config
            .cover_dir
            .clone()
            .unwrap_or_else(|| cp.config.data_dir.join("covers")),
    ));
    cp.include_metrics(covers.metrics_registry());
    cp.include_metrics(accounts.metrics_registry());
    let internal = Router::new()
        .route(
            ADMIN_CLUSTER_USERS,
            post(users::operator_create_user).layer(Extension(accounts.clone())),
        )
        .route(RPC_REGISTER_NODE, post(internal::register_node))
        .route(RPC_COMMIT_CHAT, post(internal::commit_chat))
        .route(RPC_HEARTBEAT, post(internal::heartbeat))
        .route(RPC_ROOM_POLICY, post(moderation::room_policy))
        .route(
            RPC_MODERATE,
            post(moderation::moderate).layer(DefaultBodyLimit::max(MAX_RPC_BODY_BYTES)),
        )
        .route(
            veche_protocol::e2ee::RPC_E2EE,
            post(e2ee::step).layer(DefaultBodyLimit::max(e2ee::BODY_LIMIT)),
        )
        .route(
            RPC_NODE_EVENTS,
            post(internal::node_events).layer(DefaultBodyLimit::max(MAX_EVENTS_BODY_BYTES)),
        )
        .route(
            veche_protocol::recording::RPC_RECORDING_REPORT,
            post(recording_report::report).layer(DefaultBodyLimit::max(
                veche_protocol::limits::recording::MAX_REPORT_BODY_BYTES,
            )),
        )
        .route(
            crate::recording_export::RPC_EXPORT_PLAN,
            get(recording_files::export_plan),
        )
        .route(crate::leader::LEADER_RPC, post(internal::leader_rpc))
        .route(ADMIN_CLUSTER, get(admin::cluster_status))
        .route(ADMIN_MEMBERS, post(admin::add_member))
        .route(
            &format!("{ADMIN_MEMBERS}/{{id}}"),
            delete(admin::remove_member),
        )
        .route(
            &format!("{ADMIN_MEDIA_NODES}/{{id}}/drain"),
            post(admin::drain_media_node).delete(admin::undrain_media_node),
        )
        .with_state(cp.clone())
        .merge(cp.raft_routes())
        .layer(middleware::from_fn_with_state(
            cp.clone(),
            edge::require_cluster_secret,
        ));
    let edge = Arc::new(Edge::new(&cp.config.http));
    cp.include_metrics(edge.metrics_registry());
    let limited =
        |class: RouteClass| middleware::from_fn_with_state((edge.clone(), class), edge::rate_limit);
    if let Some(sso) = &cp.sso {
        cp.include_metrics(sso.metrics_registry());
    }
    let public_api = Router::new()
        .route(
            "/api/rooms",
            post(rooms::create_room).layer(limited(RouteClass::CreateRoom)),
        )
        .route(
            "/api/rooms/{slug}",
            get(rooms::get_room).layer(limited(RouteClass::Read)),
        )
        .route(
            "/api/rooms/{slug}/join",
            post(join::join_room).layer(limited(RouteClass::Join)),
        )
        .route(
            "/api/rooms/{slug}/passes",
            post(passes::create_pass)
                .get(passes::list_passes)
                .layer(limited(RouteClass::Passes)),
        )
        .route(
            "/api/rooms/{slug}/settings",
            put(moderation::put_settings).layer(limited(RouteClass::Passes)),
        )
        .route(
            "/api/rooms/{slug}/passes/{id}",
            delete(passes::revoke_pass).layer(limited(RouteClass::Passes)),
        )
        .route(
            "/api/rooms/{slug}/cover",
            put(covers::set_text).layer(limited(RouteClass::Cover)),
        )
        .route(
            "/api/rooms/{slug}/cover/image",
            get(covers::get_image).layer(limited(RouteClass::Read)),
        )
        // The same path: axum merges the methods, each with its own limit.
        .route(
            "/api/rooms/{slug}/cover/image",
            put(covers::set_image)
                .delete(covers::remove_image)
                .layer(limited(RouteClass::Cover)),
        )
        .route(
            "/api/me/rooms",
            get(covers::my_rooms).layer(limited(RouteClass::Account)),
        )
        .route(
            "/api/rooms/{slug}/messages",
            get(history::messages).layer(limited(RouteClass::Read)),
        )
        .route(API_ME, get(auth::me).layer(limited(RouteClass::Account)))
        .route(
            API_LOGOUT,
            post(auth::logout).layer(limited(RouteClass::Account)),
        )
        .merge(oidc::routes(&cp, edge.clone()))
        .route(
            API_ADMIN_OVERVIEW,
            get(stats::overview).layer(limited(RouteClass::AdminView)),
        )
        .route(
            API_ADMIN_MEETINGS,
            get(stats::meetings).layer(limited(RouteClass::AdminView)),
        )
        .route(
            &format!("{API_ADMIN_MEETINGS}/{{id}}"),
            get(stats::meeting).layer(limited(RouteClass::AdminView)),
        )
        .route(
            &format!("{API_ADMIN_MEETINGS}/{{id}}/participants.csv"),
            get(stats::participants_csv).layer(limited(RouteClass::AdminView)),
        )
        .route(
            &format!("{API_ADMIN_MEETINGS}/{{id}}/chat"),
            get(stats::chat).layer(limited(RouteClass::AdminView)),
        )
        .route(
            API_MY_MEETINGS,
            get(stats::my_meetings).layer(limited(RouteClass::AdminView)),
        )
        .route(
            API_LOGIN,
            post(account::login).layer(limited(RouteClass::Account)),
        )
        .route(
            API_LOGOUT_ALL,
            post(account::logout_all).layer(limited(RouteClass::Account)),
        )
        .route(
            API_PROFILE,
            get(account::profile)
                .put(account::update_profile)
                .layer(limited(RouteClass::Account)),
        )
        .route(
            API_PROFILE_PASSWORD,
            put(account::change_password).layer(limited(RouteClass::Account)),
        )
        .route(
            API_PROFILE_AVATAR,
            post(account::upload_avatar)
                .layer(DefaultBodyLimit::max(MAX_AVATAR_BYTES + 4096))
                .layer(limited(RouteClass::Avatar))
                .delete(account::delete_avatar)
                .layer(limited(RouteClass::Account)),
        )
        .route(
            "/api/users/{id}/avatar",
            get(account::get_avatar).layer(limited(RouteClass::Read)),
        )
        .route(
            ADMIN_USERS,
            get(users::list_users)
                .post(users::admin_create_user)
                .layer(limited(RouteClass::Account)),
        )
        .route(
            &format!("{ADMIN_USERS}/{{id}}"),
            put(users::update_user)
                .delete(users::delete_user)
                .layer(limited(RouteClass::Account)),
        )
        .route(
            API_RECORDINGS,
            get(recordings::list).layer(limited(RouteClass::RecordingRead)),
        )
        .route(
            &format!("{API_RECORDINGS}/{{id}}"),
            get(recordings::get_one).layer(limited(RouteClass::RecordingRead)),
        )
        .route(
            &format!("{API_RECORDINGS}/{{id}}"),
            delete(recording_files::delete_recording).layer(limited(RouteClass::RecordingWrite)),
        )
        .route(
            &format!("{API_RECORDINGS}/{{id}}/files/{{file}}"),
            get(recording_files::get_file).layer(limited(RouteClass::RecordingRead)),
        )
        .route(
            &format!("{API_RECORDINGS}/{{id}}/export"),
            get(recording_files::get_export).layer(limited(RouteClass::RecordingExport)),
        )
        .route(
            &format!("{API_RECORDINGS}/{{id}}/share"),
            post(recordings::share).layer(limited(RouteClass::RecordingWrite)),
        )
        .layer(Extension(accounts))
        .layer(Extension(covers))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(edge.clone(), edge::timeout));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(cp.clone())
        .merge(public_api.with_state(cp.clone()))
        .merge(crate::web::router(&cp.config.http))
        .merge(internal)
}

/// Parses a JSON body; the size was already bounded by the body limit of
/// the route (the public API's [`MAX_BODY_BYTES`], or the larger default of
/// the cluster-secret routes), and is checked again here for the routes
/// whose bodies are always small.
/// An uploaded image (a profile picture, a room cover) as served back: the
/// type its content was checked to be, `nosniff`, and a sandboxing CSP, so
/// that even a file a browser might take for a document (opened directly,
/// not in an `<img>`) can run nothing on this origin.
fn stored_image(
    content_type: &'static str,
    cache: &'static str,
    bytes: impl axum::response::IntoResponse,
) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, cache),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox",
            ),
        ],
        bytes,
    )
        .into_response()
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(edge::too_large());
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
        access: room.access,
        e2ee: room.e2ee,
        // Per request, by `rooms::view_for`.
        owner_name: None,
        you_own: false,
        owner_key: None,
        pass_refusal: None,
        // Per request, by `rooms::view_for`.
        settings: Default::default(),
        // Read from the store by `rooms::view_for`.
        cover: None,
    }
}

/// The answer when no room has the slug.
fn no_such_room() -> ApiError {
    ApiError::new(ErrorCode::RoomNotFound, "no meeting has this link")
}

/// The room with this slug, read linearizably on whichever node serves the
/// request.
async fn room_or_404(store: &impl Store, slug: &RoomSlug) -> Result<Room, ApiError> {
    store.room_by_slug(slug).await?.ok_or_else(no_such_room)
}

/// The room of `slug`, if the requester owns it (see [`owner::owns`]);
/// `403` with `refusal` ("only the meeting's owner may ...") otherwise.
/// One check for every owner-only route, so they cannot drift apart.
async fn owned_room(
    cp: &Arc<ControlPlane>,
    viewer: &auth::Viewer,
    headers: &HeaderMap,
    slug: &str,
    refusal: &'static str,
) -> Result<Room, ApiError> {
    let slug = parse_slug(slug)?;
    let room = room_or_404(&cp.replicated(), &slug).await?;
    if !owner::owns(&room, owner::user_id(viewer), headers) {
        return Err(ApiError::new(ErrorCode::Forbidden, refusal));
    }
    Ok(room)
}

/// The answer to a failed write for which the handler has no answer of its
/// own. A refusal the handler did not expect, or an output of another kind
/// than the command's (`Inconsistent`), is the state machine answering
/// something the command never asks for: a bug, answered and logged as one.
/// (A write through [`crate::leader::Replicated`] meets `Inconsistent` only
/// that way; the leader's own storage failures arrive as `Forwarding`.)
/// Anything else maps as [`ApiError::from`] says.
fn write_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Refused(_) | StoreError::Inconsistent(_) => {
            tracing::error!("unexpected state machine output: {e}");
            ApiError::new(
                ErrorCode::Internal,
                "unexpected result from the state machine",
            )
        }
        other => other.into(),
    }
}

async fn metrics(State(cp): State<Arc<ControlPlane>>) -> impl IntoResponse {
    cp.refresh_raft_gauges();
    (
        [("content-type", "text/plain; version=0.0.4")],
        cp.metrics.render(),
    )
}
