//! The recordings API (JSON): the list, one recording, share links, and
//! the index half of a deletion. The file bytes and the one-file export
//! are served by `crate::recording_files` / `crate::recording_export`,
//! which check rights with the same [`super::recording_access`].
//!
//! - `GET /api/recordings?room={slug}&before={ms}&limit={n}`: a page,
//!   newest first. With `room`: all of it for the room's owner or an
//!   administrator, the recordings they started for any other signed-in
//!   account, `401` for anonymous requesters. Without `room`: every
//!   recording for an administrator, those of the rooms they own for a
//!   signed-in account, `401` for anonymous requesters.
//! - `GET /api/recordings/{id}`: one, for whoever may view it (a share
//!   token in `?share=` included).
//! - `POST /api/recordings/{id}/share`: a share link, for managers.
//!
//! `<video src>` cannot send the owner-key header, so every file URL in a
//! view carries a share token minted for this viewer ([`FILE_LINK_HOURS`]).

use super::auth::Viewer;
use super::edge::Body;
use super::recording_access::{
    require_manage, right_of, share_token, RecordingRight, ShareKey, SIGN_IN,
};
use super::{parse_json, parse_slug, room_or_404};
use crate::error::ApiError;
use crate::store::model::Room;
use crate::store::recordings::Recording;
use crate::store::{CoverStore, RecordingStore, Store};
use crate::ControlPlane;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use veche_protocol::limits::recording::{PAGE, SHARE_MAX_HOURS};
use veche_protocol::recording::{
    FileView, RecordingId, RecordingPage, RecordingView, ShareLink, ShareRequest, API_RECORDINGS,
    SHARE_QUERY,
};
use veche_protocol::{ErrorCode, RoomId};

/// How long the share tokens in a view's file URLs work, in hours: long
/// enough to watch a long meeting from one page load.
pub const FILE_LINK_HOURS: u64 = 12;
const HOUR_MS: u64 = 3_600_000;
/// Rooms whose recordings a signed-in owner's list spans.
const MAX_OWNED_ROOMS: usize = 1_000;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

/// The answer for an id no recording has (any more).
pub fn no_such_recording() -> ApiError {
    ApiError::new(
        ErrorCode::RoomNotFound,
        "no recording has this id (it may have been deleted)",
    )
}

/// The id in a path, or `400`.
pub fn parse_recording_id(raw: &str) -> Result<RecordingId, ApiError> {
    raw.parse()
        .map_err(|e: veche_protocol::ids::InvalidId| bad(e.to_string()))
}

/// The recording with this id, or `404`.
pub async fn recording_or_404(
    cp: &Arc<ControlPlane>,
    id: &RecordingId,
) -> Result<Recording, ApiError> {
    cp.replicated()
        .recording(id.clone())
        .await?
        .ok_or_else(no_such_recording)
}

/// `rec` as `right` may see it, with file URLs carrying a fresh token;
/// `export_available` is whether this server's exporter runs
/// ([`crate::recording_export::Exporter::available`]).
pub fn view_of(
    key: &ShareKey,
    rec: &Recording,
    room: Option<&Room>,
    right: RecordingRight,
    now_ms: u64,
    export_available: bool,
) -> RecordingView {
    let token = share_token(key, &rec.id, now_ms + FILE_LINK_HOURS * HOUR_MS);
    let mut files: Vec<FileView> = rec
        .files
        .iter()
        .map(|f| FileView {
            file_id: f.file_id.clone(),
            participant_id: f.participant_id.clone(),
            display_name: f.display_name.clone(),
            source: f.source,
            offset_ms: f.offset_ms,
            duration_ms: f.duration_ms(),
            bytes: f.bytes(),
            segments: f.segments.len() as u32,
            state: f.state(),
            url: format!(
                "{API_RECORDINGS}/{}/files/{}?{SHARE_QUERY}={token}",
                rec.id, f.file_id
            ),
        })
        .collect();
    files.sort_by_key(|f| f.offset_ms);
    RecordingView {
        id: rec.id.clone(),
        room_id: rec.room_id,
        room_slug: room
            .map(|r| r.slug.clone())
            .unwrap_or_else(|| veche_protocol::RoomSlug::from_random([0; 16])),
        room_name: room.map(|r| r.name.clone()).unwrap_or_default(),
        started_at_ms: rec.started_at_ms,
        stopped_at_ms: rec.stopped_at_ms,
        started_by_name: rec.started_by_name.clone(),
        state: rec.state(),
        duration_ms: rec.duration_ms(),
        bytes: rec.bytes(),
        files,
        can_manage: right == RecordingRight::Manage,
        export_available,
    }
}

/// The query of the list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// A room's link slug.
    #[serde(default)]
    room: Option<String>,
    /// The `next_before` of the previous page.
    #[serde(default)]
    before: Option<u64>,
    /// Page size, 1 to [`PAGE`].
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /api/recordings`.
pub(super) async fn list(
    State(cp): State<Arc<ControlPlane>>,
    viewer: Viewer,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<RecordingPage>, ApiError> {
    let Query(q) = query.map_err(|e| bad(format!("invalid query: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(PAGE);
    if !(1..=PAGE).contains(&limit) {
        return Err(bad(format!("limit must be between 1 and {PAGE}")));
    }
    let store = cp.replicated();
    let user = viewer.0.as_ref().map(|s| &s.user);
    let is_admin = user.is_some_and(|u| u.is_admin);
    let mut rooms: HashMap<RoomId, Option<Room>> = HashMap::new();
    let (recs, manager) = match q.room {
        Some(slug) => {
            let room = room_or_404(&store, &parse_slug(&slug)?).await?;
            let manager = is_admin || super::owner::owns(&room, user.map(|u| u.id), &headers);
            let all = store.room_recordings(room.id, q.before, limit).await?;
            rooms.insert(room.id, Some(room));
            let recs = match (manager, user) {
                (true, _) => all,
                (false, Some(u)) => all
                    .into_iter()
                    .filter(|r| r.started_by_user == Some(u.id))
                    .collect(),
                (false, None) => return Err(ApiError::new(ErrorCode::Unauthorized, SIGN_IN)),
            };
            (recs, manager)
        }
        None => match user {
            None => {
                return Err(ApiError::new(
                    ErrorCode::Unauthorized,
                    "sign in to see your rooms' recordings",
                ))
            }
            Some(u) if u.is_admin => (store.all_recordings(q.before, limit).await?, true),
            Some(u) => {
                let owned = store.rooms_owned_by(u.id, MAX_OWNED_ROOMS).await?;
                let ids: Vec<RoomId> = owned.iter().map(|(r, _)| r.id).collect();
                for (r, _) in owned {
                    rooms.insert(r.id, Some(r));
                }
                (store.rooms_recordings(ids, q.before, limit).await?, true)
            }
        },
    };
    let next_before = (recs.len() == limit)
        .then(|| recs.last().map(|r| r.started_at_ms))
        .flatten();
    let key = ShareKey::of(&cp);
    let now = crate::now_ms();
    let export_available = cp.exporter().available();
    let mut views = Vec::with_capacity(recs.len());
    for rec in &recs {
        if let std::collections::hash_map::Entry::Vacant(e) = rooms.entry(rec.room_id) {
            e.insert(store.room_by_id(rec.room_id).await?);
        }
        let right = if manager {
            RecordingRight::Manage
        } else {
            RecordingRight::View
        };
        let room = rooms.get(&rec.room_id).and_then(Option::as_ref);
        views.push(view_of(&key, rec, room, right, now, export_available));
    }
    Ok(Json(RecordingPage {
        recordings: views,
        next_before,
    }))
}

/// The query of the routes about one recording.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShareQuery {
    /// A share token.
    #[serde(default)]
    share: Option<String>,
}

/// The recording a route about one names and the requester's right to
/// it: 400 for a malformed path or query, 404 for an unknown id, 401/403
/// for a requester who may not view it.
async fn one(
    cp: &Arc<ControlPlane>,
    viewer: &Viewer,
    headers: &HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ShareQuery>, QueryRejection>,
) -> Result<(Recording, RecordingRight), ApiError> {
    let Path(raw) = path.map_err(|e| bad(format!("invalid path: {}", e.body_text())))?;
    let Query(q) = query.map_err(|e| bad(format!("invalid query: {}", e.body_text())))?;
    let rec = recording_or_404(cp, &parse_recording_id(&raw)?).await?;
    let right = right_of(cp, viewer, headers, q.share.as_deref(), &rec).await?;
    Ok((rec, right))
}

/// `GET /api/recordings/{id}`.
pub(super) async fn get_one(
    State(cp): State<Arc<ControlPlane>>,
    viewer: Viewer,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ShareQuery>, QueryRejection>,
) -> Result<Json<RecordingView>, ApiError> {
    let (rec, right) = one(&cp, &viewer, &headers, path, query).await?;
    let room = cp.replicated().room_by_id(rec.room_id).await?;
    Ok(Json(view_of(
        &ShareKey::of(&cp),
        &rec,
        room.as_ref(),
        right,
        crate::now_ms(),
        cp.exporter().available(),
    )))
}

/// `POST /api/recordings/{id}/share`: a link for `valid_hours`, for the
/// room's owner or an administrator. The rights come before the body.
pub(super) async fn share(
    State(cp): State<Arc<ControlPlane>>,
    viewer: Viewer,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ShareQuery>, QueryRejection>,
    Body(body): Body,
) -> Result<Json<ShareLink>, ApiError> {
    let (rec, right) = one(&cp, &viewer, &headers, path, query).await?;
    require_manage(right)?;
    let id = rec.id;
    let req: ShareRequest = parse_json(&body)?;
    if !(1..=SHARE_MAX_HOURS).contains(&req.valid_hours) {
        return Err(bad(format!(
            "valid_hours must be between 1 and {SHARE_MAX_HOURS}"
        )));
    }
    let expires_at_ms = crate::now_ms() + u64::from(req.valid_hours) * HOUR_MS;
    let token = share_token(&ShareKey::of(&cp), &id, expires_at_ms);
    tracing::info!(recording = %id, hours = req.valid_hours, "recording share link made");
    Ok(Json(ShareLink {
        url: format!("/recordings/{id}?{SHARE_QUERY}={token}"),
        expires_at_ms,
    }))
}

/// The index half of `DELETE /api/recordings/{id}`: the caller (the
/// files route) checked the right to manage it and deleted its objects
/// first, so a failure here leaves an index entry whose files are gone
/// (deleting again finishes), never objects nobody can find. Whether the
/// recording was still indexed.
pub async fn delete_index(cp: &Arc<ControlPlane>, id: &RecordingId) -> Result<bool, ApiError> {
    let found = cp
        .replicated()
        .delete_recording(id.clone())
        .await
        .map_err(super::write_error)?;
    tracing::info!(recording = %id, found, "recording deleted from the index");
    Ok(found)
}
