//! Room covers over HTTP. The owner (signed in as the creator, or
//! presenting the owner key) sets the text (`PUT /api/rooms/{slug}/cover`,
//! JSON) and the image (`PUT .../cover/image`, the raw bytes with their
//! `Content-Type`), or removes the image (`DELETE .../cover/image`);
//! anyone with the link may fetch the image (`GET .../cover/image?v=..`).
//! A signed-in user lists the rooms they own with their covers
//! (`GET /api/me/rooms`). What counts as a cover image is
//! [`crate::covers`]; the words of each refusal are
//! [`veche_protocol::cover::NotACover`].
//!
//! The owner check comes before the body is read, so a stranger can make
//! the server neither read 2 MB nor decode anything.

use super::auth::{RequireUser, Viewer};
use super::cover_view::{cover_view, version_of};
use super::edge::Body;
use super::{owned_room, parse_json, parse_slug, room_or_404, write_error};
use crate::covers::Covers;
use crate::error::ApiError;
use crate::store::covers::{CoverCommand, CoverImage};
use crate::store::model::Room;
use crate::store::CoverStore;
use crate::ControlPlane;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use std::sync::Arc;
use veche_protocol::cover::{precheck, CoverView, NotACover, SetCoverRequest};
use veche_protocol::limits::covers::{MAX_BYTES, MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS};
use veche_protocol::rpc::RoomView;
use veche_protocol::ErrorCode;

/// The refusal of a cover change by anyone but the owner.
const OWNER_ONLY: &str = "only the meeting's owner may change its cover";

/// Rooms listed by `GET /api/me/rooms` at most.
const MY_ROOMS_LIMIT: usize = 200;

/// Drops control characters (but keeps line breaks when `lines`), trims,
/// and bounds the length; empty is allowed.
fn clean_text(raw: &str, what: &str, max: usize, lines: bool) -> Result<String, ApiError> {
    let text: String = raw
        .chars()
        .filter(|c| !c.is_control() || (lines && *c == '\n'))
        .collect();
    let text = text.trim();
    if text.chars().count() > max {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("The cover {what} is longer than {max} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// The room's view after a change, as the pre-join page shows it.
async fn answer(
    cp: &Arc<ControlPlane>,
    headers: &HeaderMap,
    viewer: &Viewer,
    room: &Room,
) -> Result<Json<RoomView>, ApiError> {
    Ok(Json(
        super::rooms::view_for(cp, headers, viewer, room).await?,
    ))
}

/// `PUT /api/rooms/{slug}/cover`: the title and description.
pub(super) async fn set_text(
    State(cp): State<Arc<ControlPlane>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Body(body): Body,
) -> Result<Json<RoomView>, ApiError> {
    let room = owned_room(&cp, &viewer, &headers, &slug, OWNER_ONLY).await?;
    let req: SetCoverRequest = parse_json(&body)?;
    let title = clean_text(&req.title, "title", MAX_TITLE_CHARS, false)?;
    let description = clean_text(&req.description, "description", MAX_DESCRIPTION_CHARS, true)?;
    cp.replicated()
        .cover_command(CoverCommand::SetText {
            room_id: room.id,
            title,
            description,
            at_ms: crate::now_ms(),
        })
        .await
        .map_err(write_error)?;
    answer(&cp, &headers, &viewer, &room).await
}

fn refusal(e: NotACover) -> ApiError {
    let code = match e {
        NotACover::TooLarge(_) => ErrorCode::TooLarge,
        _ => ErrorCode::BadRequest,
    };
    ApiError::new(code, e.to_string())
}

fn store_unavailable(e: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Unavailable,
        format!("room covers are unavailable on this server: {e}"),
    )
}

/// `PUT /api/rooms/{slug}/cover/image`: the body is the image, its
/// `Content-Type` what the owner says it is; [`crate::covers::check`]
/// decides whether it is.
pub(super) async fn set_image(
    State(cp): State<Arc<ControlPlane>>,
    Extension(covers): Extension<Arc<Covers>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(slug): Path<String>,
    req: Request,
) -> Result<Json<RoomView>, ApiError> {
    let room = owned_room(&cp, &viewer, &headers, &slug, OWNER_ONLY).await?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let declared_len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    // Type and declared size first: a 30 MB upload is refused unread.
    if let Err(e) = precheck(declared.as_deref(), declared_len, None) {
        covers.count(&Err(e.clone()));
        return Err(refusal(e));
    }
    let bytes = match axum::body::to_bytes(req.into_body(), MAX_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            // No length was declared, or a wrong one: at least one byte over.
            let e = NotACover::TooLarge(declared_len.max(MAX_BYTES as u64 + 1));
            covers.count(&Err(e.clone()));
            return Err(refusal(e));
        }
    };
    let len = bytes.len();
    let checked = covers.decoder.check(declared, bytes.clone()).await;
    covers.count(&checked);
    let checked = checked.map_err(refusal)?;
    let store = covers.store().map_err(store_unavailable)?;
    let key = Covers::new_key(room.id);
    store.put(&key, bytes).await.map_err(|e| {
        tracing::error!(room = %room.id, "cover not stored: {e}");
        ApiError::new(ErrorCode::Internal, "the cover image could not be stored")
    })?;
    let image = CoverImage {
        key: key.clone(),
        kind: checked.kind,
        width: checked.width,
        height: checked.height,
        bytes: len as u64,
    };
    let out = cp
        .replicated()
        .cover_command(CoverCommand::SetImage {
            room_id: room.id,
            image,
            at_ms: crate::now_ms(),
        })
        .await;
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            forget(store, &key).await;
            return Err(write_error(e));
        }
    };
    if let Some(old) = out.replaced {
        forget(store, &old.key).await;
    }
    tracing::info!(room = %room.id, kind = ?checked.kind, width = checked.width, height = checked.height, "cover image set");
    answer(&cp, &headers, &viewer, &room).await
}

/// Removes an image no cover names any more. A failure leaves an orphan
/// file, logged, never a broken cover.
async fn forget(store: &crate::blobs::BlobStore, key: &str) {
    if let Err(e) = store.delete(key).await {
        tracing::warn!(key, "old cover image not removed: {e}");
    }
}

/// `DELETE /api/rooms/{slug}/cover/image`: the text stays.
pub(super) async fn remove_image(
    State(cp): State<Arc<ControlPlane>>,
    Extension(covers): Extension<Arc<Covers>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Json<RoomView>, ApiError> {
    let room = owned_room(&cp, &viewer, &headers, &slug, OWNER_ONLY).await?;
    let out = cp
        .replicated()
        .cover_command(CoverCommand::RemoveImage {
            room_id: room.id,
            at_ms: crate::now_ms(),
        })
        .await
        .map_err(write_error)?;
    if let (Some(old), Ok(store)) = (out.replaced, covers.store()) {
        forget(store, &old.key).await;
    }
    answer(&cp, &headers, &viewer, &room).await
}

/// The query of a cover image URL.
#[derive(serde::Deserialize)]
pub(super) struct ImageQuery {
    v: Option<String>,
}

/// `GET /api/rooms/{slug}/cover/image[?v=..]`: the room's current image,
/// served with the type it decoded as and `nosniff`. With the `v` of the
/// current image (what [`CoverView::image_url`] carries) the answer never
/// changes and is cached for a year; without it, or with an older one,
/// the current image is served but must be revalidated.
pub(super) async fn get_image(
    State(cp): State<Arc<ControlPlane>>,
    Extension(covers): Extension<Arc<Covers>>,
    Path(slug): Path<String>,
    Query(q): Query<ImageQuery>,
) -> Result<Response, ApiError> {
    let slug = parse_slug(&slug)?;
    let room = room_or_404(&cp.replicated(), &slug).await?;
    let not_found =
        || Ok((StatusCode::NOT_FOUND, "this meeting has no cover image").into_response());
    let Some(image) = cp.replicated().cover(room.id).await?.and_then(|c| c.image) else {
        return not_found();
    };
    let store = covers.store().map_err(store_unavailable)?;
    let Some(bytes) = store.get(&image.key).await.map_err(|e| {
        tracing::error!(room = %room.id, "cover not read: {e}");
        ApiError::new(ErrorCode::Internal, "the cover image could not be read")
    })?
    else {
        return not_found();
    };
    let cache = if q.v.as_deref() == Some(version_of(&image)) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok(super::stored_image(image.kind.content_type(), cache, bytes))
}

/// One of the rooms a user owns, as `GET /api/me/rooms` lists it.
#[derive(Debug, Serialize)]
pub(super) struct MyRoom {
    slug: String,
    name: String,
    link: String,
    created_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cover: Option<CoverView>,
}

/// `GET /api/me/rooms`: the rooms the signed-in user created, newest
/// first, with their covers (`{"rooms": [..]}`).
pub(super) async fn my_rooms(
    State(cp): State<Arc<ControlPlane>>,
    RequireUser(me): RequireUser,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rooms = cp
        .replicated()
        .rooms_owned_by(me.user.id, MY_ROOMS_LIMIT)
        .await?;
    let base = super::public_base(&cp, &headers);
    let rooms: Vec<MyRoom> = rooms
        .into_iter()
        .map(|(r, c)| MyRoom {
            link: format!("{base}/r/{}", r.slug),
            cover: c.map(|c| cover_view(r.slug.as_str(), &c)),
            slug: r.slug.to_string(),
            name: r.name,
            created_at_ms: r.created_at_ms,
        })
        .collect();
    Ok(Json(serde_json::json!({ "rooms": rooms })))
}
