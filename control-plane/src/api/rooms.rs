//! `POST /api/rooms` (create, subject to the room creation policy) and
//! `GET /api/rooms/{slug}` (look up).

use super::edge::Body;
use super::{clean_name, parse_json, parse_slug, room_or_404, view, write_error};
use crate::admission::RoomCreation;
use crate::error::ApiError;
use crate::secret::{bearer, secrets_match};
use crate::store::model::CommandError;
use crate::store::{Store, StoreError};
use crate::ControlPlane;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use std::sync::Arc;
use veche_protocol::rpc::{CreateRoomRequest, RoomView, MAX_ROOM_NAME_CHARS};
use veche_protocol::{ErrorCode, RoomSlug};

/// Whether this request may create a room under `policy`. Checked before
/// the body is even parsed, so a refused request writes nothing.
fn may_create(policy: &RoomCreation, headers: &HeaderMap) -> Result<(), ApiError> {
    match policy {
        RoomCreation::Anyone => Ok(()),
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

pub(super) async fn create_room(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<RoomView>), ApiError> {
    may_create(&cp.config.http.room_creation, &headers)?;
    let req: CreateRoomRequest = parse_json(&body)?;
    let name = clean_name(&req.name, "room name", MAX_ROOM_NAME_CHARS)?;
    let slug = RoomSlug::from_random(crate::random_bytes());
    match cp
        .replicated()
        .create_room(slug, name, crate::now_ms())
        .await
    {
        Ok(room) => {
            cp.metrics.rooms_created.inc();
            tracing::info!(room = %room.id, "room created");
            Ok((StatusCode::CREATED, Json(view(&cp, &headers, &room))))
        }
        Err(StoreError::Refused(CommandError::SlugTaken)) => Err(ApiError::new(
            ErrorCode::Unavailable,
            "could not allocate a link; retry",
        )),
        Err(e) => Err(write_error(e)),
    }
}

pub(super) async fn get_room(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Json<RoomView>, ApiError> {
    let slug = parse_slug(&slug)?;
    let room = room_or_404(&cp.replicated(), &slug).await?;
    Ok(Json(view(&cp, &headers, &room)))
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
        assert!(may_create(&policy, &with_bearer(&secret)).is_ok());
        for (what, headers) in [
            ("no header", HeaderMap::new()),
            ("a wrong secret", with_bearer("nope")),
            ("a prefix of it", with_bearer(&secret[..39])),
        ] {
            let e = may_create(&policy, &headers).unwrap_err();
            assert_eq!(e.0.code, ErrorCode::Forbidden, "{what}");
            assert!(e.0.message.contains("create secret"), "{what}: {e:?}");
        }
        assert!(may_create(&RoomCreation::Anyone, &HeaderMap::new()).is_ok());
    }
}
