//! `POST /api/rooms` (create, subject to the room creation policy, with
//! the creator as owner) and `GET /api/rooms/{slug}` (look up, with the
//! owner's name, whether the requester owns the room, and what a guest
//! pass in the link would meet).

use super::auth::Viewer;
use super::edge::Body;
use super::owner::{owner_key_hash, owns, user_id};
use super::passes::presented_pass;
use super::{clean_name, parse_json, parse_slug, room_or_404, view, write_error};
use crate::admission::RoomCreation;
use crate::error::ApiError;
use crate::secret::{bearer, secrets_match};
use crate::store::model::{CommandError, NewRoom, Room};
use crate::store::{AccountStore, PolicyStore, Store, StoreError};
use crate::ControlPlane;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use std::sync::Arc;
use veche_protocol::rpc::{CreateRoomRequest, RoomView, MAX_ROOM_NAME_CHARS};
use veche_protocol::{ErrorCode, RoomSlug, UserId};

/// Whether this request may create a room under `policy`. Checked before
/// the body is even parsed, so a refused request writes nothing.
fn may_create(
    policy: &RoomCreation,
    headers: &HeaderMap,
    user: Option<UserId>,
) -> Result<(), ApiError> {
    match policy {
        RoomCreation::Anyone => Ok(()),
        RoomCreation::SignedIn => match user {
            Some(_) => Ok(()),
            None => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "only signed-in members of the organisation may create meetings on this server: \
                 sign in first",
            )),
        },
        RoomCreation::Secret(secret) => match bearer(headers) {
            Some(p) if secrets_match(p.as_bytes(), secret.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::new(
                ErrorCode::Forbidden,
                "creating meetings here needs the create secret, and the one presented is wrong",
            )),
            None => Err(ApiError::new(
                ErrorCode::Forbidden,
                "creating meetings on this server is restricted: present the create secret \
                 as `Authorization: Bearer <secret>`",
            )),
        },
    }
}

/// How `room` is shown to this requester: with the owner's name and
/// whether the requester is the owner.
pub(super) async fn view_for(
    cp: &Arc<ControlPlane>,
    headers: &HeaderMap,
    viewer: &Viewer,
    room: &Room,
) -> Result<RoomView, ApiError> {
    let mut v = view(cp, headers, room);
    v.cover = super::cover_view::view_of(cp, room).await?;
    v.you_own = owns(room, user_id(viewer), headers);
    v.owner_name = match room.owner {
        Some(owner) if user_id(viewer) == Some(owner) => {
            viewer.0.as_ref().map(|s| s.user.display_name.clone())
        }
        Some(owner) => cp.replicated().user(owner).await?.map(|u| u.display_name),
        None => None,
    };
    Ok(v)
}

pub(super) async fn create_room(
    State(cp): State<Arc<ControlPlane>>,
    viewer: Viewer,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<RoomView>), ApiError> {
    let owner = user_id(&viewer);
    may_create(&cp.config.http.room_creation, &headers, owner)?;
    let req: CreateRoomRequest = parse_json(&body)?;
    let name = clean_name(&req.name, "room name", MAX_ROOM_NAME_CHARS)?;
    let slug = RoomSlug::from_random(crate::random_bytes());
    // An anonymous creator owns the room by a key only they are given.
    let owner_key = owner
        .is_none()
        .then(|| crate::rejoin::encode_secret(crate::random_bytes()));
    let new = NewRoom {
        owner,
        owner_key_hash: owner_key.as_deref().map(owner_key_hash),
        access: req.access,
        e2ee: req.e2ee,
        ..NewRoom::open(slug, name, crate::now_ms())
    };
    match cp.replicated().create_room_as(new).await {
        Ok(room) => {
            cp.metrics.rooms_created.inc();
            tracing::info!(room = %room.id, access = ?room.access, e2ee = room.e2ee, signed_in = owner.is_some(), "room created");
            let mut v = view_for(&cp, &headers, &viewer, &room).await?;
            v.you_own = true;
            v.owner_key = owner_key;
            Ok((StatusCode::CREATED, Json(v)))
        }
        Err(StoreError::Refused(CommandError::SlugTaken)) => Err(ApiError::new(
            ErrorCode::Unavailable,
            "could not allocate a link; retry",
        )),
        Err(e) => Err(write_error(e)),
    }
}

/// The `pass` parameter of a query string, if any.
fn pass_param(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "pass")
        .map(|(_, v)| v)
}

/// `GET /api/rooms/{slug}[?pass=TOKEN]`. With a pass (the room page passes
/// on its link's), the view says why the pass would not admit now, so the
/// page can say so before anyone tries to join.
pub(super) async fn get_room(
    State(cp): State<Arc<ControlPlane>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<RoomView>, ApiError> {
    let slug = parse_slug(&slug)?;
    let room = room_or_404(&cp.replicated(), &slug).await?;
    let mut v = view_for(&cp, &headers, &viewer, &room).await?;
    // For the page before joining: "This meeting has a lobby".
    v.settings = cp.replicated().room_policy(room.id).await?.settings;
    if let Some(token) = pass_param(query.as_deref()) {
        v.pass_refusal = match presented_pass(&cp, &room, Some(token), None, crate::now_ms()).await
        {
            Ok(found) => found.and_then(|(_, why)| why),
            Err(e) => Some(e.0.message),
        };
    }
    Ok(Json(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::AUTHORIZATION;

    fn with_bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        h
    }

    #[test]
    fn only_the_create_secret_opens_restricted_creation() {
        let secret = "s".repeat(40);
        let policy = RoomCreation::Secret(secret.clone());
        assert!(may_create(&policy, &with_bearer(&secret), None).is_ok());
        for (what, headers) in [
            ("no header", HeaderMap::new()),
            ("a wrong secret", with_bearer("nope")),
            ("a prefix of it", with_bearer(&secret[..39])),
        ] {
            let e = may_create(&policy, &headers, Some(UserId(1))).unwrap_err();
            assert_eq!(e.0.code, ErrorCode::Forbidden, "{what}");
            assert!(e.0.message.contains("create secret"), "{what}: {e:?}");
        }
        assert!(may_create(&RoomCreation::Anyone, &HeaderMap::new(), None).is_ok());
    }

    #[test]
    fn the_pass_is_found_among_the_query_parameters() {
        assert_eq!(pass_param(Some("a=1&pass=xyz&b=2")), Some("xyz"));
        assert_eq!(pass_param(Some("pass=")), Some(""));
        assert_eq!(pass_param(Some("passport=1")), None);
        assert_eq!(pass_param(None), None);
    }

    #[test]
    fn signed_in_creation_refuses_anonymous_requests_with_401() {
        let e = may_create(&RoomCreation::SignedIn, &HeaderMap::new(), None).unwrap_err();
        assert_eq!(e.0.code, ErrorCode::Unauthorized);
        assert!(e.0.message.contains("sign in"), "{e:?}");
        assert!(may_create(&RoomCreation::SignedIn, &HeaderMap::new(), Some(UserId(1))).is_ok());
    }
}
