//! The bytes of recordings over HTTP, and their deletion:
//! - `GET /api/recordings/{id}/files/{file}`: a recorded file, the
//!   concatenation of its segment objects, with HTTP ranges so a
//!   `<video>` seeks (`?download=1` adds a `Content-Disposition` with a
//!   readable file name);
//! - `GET /api/recordings/{id}/export`: one WebM of everything (a grid,
//!   mixed audio), made by ffmpeg on the first request, then kept as the
//!   object [`export_key`];
//! - `DELETE /api/recordings/{id}`: every object first, then the index
//!   entry (owner or administrator).
//!
//! Who may do what is [`super::recording_access::recording_right`]; the
//! JSON routes are in [`super::recordings`].

use super::recording_access::{recording_right, require_manage, RecordingRight};
use super::recordings::{delete_index, parse_recording_id, recording_or_404};
use crate::error::ApiError;
use crate::recording_export::{ExportError, ExportFile, FFMPEG_MISSING};
use crate::recording_files::{
    delete_objects, download_name, map_range, ranged, safe_name, stream_file, total_bytes,
};
use crate::recording_header::{find_duration, patch_stream, HEAD_BYTES};
use crate::store::recordings::Recording;
use crate::store::Store;
use crate::ControlPlane;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use veche_protocol::recording::{export_key, FileId, RecordingId, RecordingState};
use veche_protocol::ErrorCode;

/// How long an export request waits for a fresh export before telling the
/// browser to come back: well inside the edge's request timeout.
const EXPORT_WAIT: Duration = Duration::from_secs(10);

/// `?share=…&download=1`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct FileQuery {
    share: Option<String>,
    download: Option<String>,
}

fn bad_id(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, e.to_string())
}

/// The recording, or 400 for an id that is not one and 404 for one that
/// is not there.
async fn load(cp: &Arc<ControlPlane>, id: &str) -> Result<Recording, ApiError> {
    recording_or_404(cp, &parse_recording_id(id)?).await
}

/// The recording and the requester's right to it: [`load`]'s answers,
/// then 401/403 for a requester who may not view it.
async fn load_for(
    cp: &Arc<ControlPlane>,
    headers: &HeaderMap,
    id: &str,
    q: &FileQuery,
) -> Result<(Recording, RecordingRight), ApiError> {
    let rec = load(cp, id).await?;
    let right = recording_right(cp, headers, q.share.as_deref(), &rec).await?;
    Ok((rec, right))
}

/// The recording's files as an export reads them.
fn export_files(rec: &Recording) -> Vec<ExportFile> {
    rec.files
        .iter()
        .map(|f| ExportFile {
            file_id: f.file_id.clone(),
            offset_ms: f.offset_ms,
            segments: f.segments.iter().map(|s| (s.seq, s.bytes)).collect(),
        })
        .collect()
}

async fn room_name(cp: &Arc<ControlPlane>, rec: &Recording) -> String {
    match cp.replicated().room_by_id(rec.room_id).await {
        Ok(Some(room)) => room.name,
        _ => "meeting".into(),
    }
}

/// `GET /api/recordings/{id}/files/{file}`.
pub(super) async fn get_file(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Path((id, file)): Path<(String, String)>,
    Query(q): Query<FileQuery>,
) -> Result<Response, ApiError> {
    let file_id: FileId = file.parse().map_err(bad_id)?;
    let (rec, _) = load_for(&cp, &headers, &id, &q).await?;
    let f = rec
        .file(&file_id)
        .ok_or_else(|| ApiError::new(ErrorCode::RoomNotFound, "no such file in this recording"))?;
    let segments: Vec<(u32, u64)> = f.segments.iter().map(|s| (s.seq, s.bytes)).collect();
    let disposition = match q.download.as_deref() {
        Some("1") | Some("true") => Some(download_name(
            &room_name(&cp, &rec).await,
            &f.display_name,
            f.source,
        )),
        _ => None,
    };
    let store = cp.recording_objects();
    let recording = rec.id.clone();
    // An unfinished file's header says it lasts one tick; say what the
    // index knows instead (`crate::recording_header`).
    let patch = match (&f.end, f.segments.first()) {
        (None, Some(first)) => {
            duration_patch(&*store, &recording, &file_id, first.bytes, f.duration_ms()).await
        }
        _ => None,
    };
    Ok(ranged(
        &headers,
        total_bytes(&segments),
        disposition,
        move |r| {
            let start = r.start;
            let body = stream_file(store, recording, file_id, map_range(&segments, r));
            Body::from_stream(match patch {
                Some(p) => patch_stream(body, start, p),
                None => body,
            })
        },
    ))
}

/// Where an unfinished file's header `Duration` is and what to put there:
/// read from the first bytes of its segment 0. `None` (serve the bytes as
/// they are) when the header cannot be read or parsed.
async fn duration_patch(
    store: &dyn ObjectStore,
    recording: &RecordingId,
    file: &FileId,
    first_segment_bytes: u64,
    duration_ms: u64,
) -> Option<(u64, Vec<u8>)> {
    let key = ObjectPath::from(veche_protocol::recording::segment_key(recording, file, 0));
    let len = first_segment_bytes.min(HEAD_BYTES);
    let options = GetOptions::new().with_range(Some(GetRange::Bounded(0..len)));
    let head = store
        .get_opts(&key, options)
        .await
        .ok()?
        .bytes()
        .await
        .ok()?;
    let slot = find_duration(&head)?;
    Some((slot.offset, slot.bytes_for(duration_ms)))
}

/// `DELETE /api/recordings/{id}`: objects first (a failure there leaves
/// the recording listed, to be deleted again), then the index. 204.
pub(super) async fn delete_recording(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
) -> Result<StatusCode, ApiError> {
    let (rec, right) = load_for(&cp, &headers, &id, &q).await?;
    require_manage(right)?;
    if rec.stopped_at_ms.is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            "the recording is still running: stop it in the meeting first",
        ));
    }
    delete_objects(cp.recording_objects().as_ref(), &rec.id)
        .await
        .map_err(|e| {
            tracing::warn!(recording = %rec.id, "deleting a recording's objects: {e}");
            ApiError::new(
                ErrorCode::Unavailable,
                "the recording's files could not be deleted from storage; try again",
            )
        })?;
    delete_index(&cp, &rec.id).await?;
    tracing::info!(recording = %rec.id, "recording deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Exports being made, by recording: requests for one being made wait on
/// it rather than start another.
type Running = Mutex<HashMap<RecordingId, watch::Receiver<Option<Result<(), String>>>>>;

fn running() -> &'static Running {
    static RUNNING: OnceLock<Running> = OnceLock::new();
    RUNNING.get_or_init(Default::default)
}

/// Makes the export of `rec` and stores it as [`export_key`], on a task
/// of its own (it outlives the request that asked for it).
fn start_export(
    cp: &Arc<ControlPlane>,
    rec: &Recording,
) -> watch::Receiver<Option<Result<(), String>>> {
    let mut map = running().lock().expect("lock poisoned");
    if let Some(rx) = map.get(&rec.id) {
        return rx.clone();
    }
    let (tx, rx) = watch::channel(None);
    map.insert(rec.id.clone(), rx.clone());
    let cp = cp.clone();
    let id = rec.id.clone();
    let files = export_files(rec);
    tokio::spawn(async move {
        let result = make_export(&cp, &id, &files).await;
        if let Err(e) = &result {
            tracing::warn!(recording = %id, "export failed: {e}");
        }
        let _ = tx.send(Some(result));
        running().lock().expect("lock poisoned").remove(&id);
    });
    rx
}

async fn make_export(
    cp: &Arc<ControlPlane>,
    id: &RecordingId,
    files: &[ExportFile],
) -> Result<(), String> {
    let r: [u8; 8] = crate::random_bytes();
    let out = std::env::temp_dir().join(format!(
        "veche-export-{id}-{:x}.webm",
        u64::from_le_bytes(r)
    ));
    let store = cp.recording_objects();
    let made = cp.exporter().export(store.clone(), id, files, &out).await;
    let stored = match made {
        Ok(()) => upload(store, &export_key(id), &out).await,
        Err(e) => Err(e.to_string()),
    };
    let _ = tokio::fs::remove_file(&out).await;
    stored
}

/// Copies a local file into the store without holding it in memory.
async fn upload(
    store: Arc<dyn ObjectStore>,
    key: &str,
    path: &std::path::Path,
) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    let mut w = object_store::buffered::BufWriter::new(store, ObjectPath::from(key));
    tokio::io::copy(&mut file, &mut w)
        .await
        .map_err(|e| e.to_string())?;
    w.shutdown().await.map_err(|e| e.to_string())
}

/// `GET /api/recordings/{id}/export`: the stored export, or a fresh one
/// if it is made within [`EXPORT_WAIT`]; otherwise 503 with
/// `Retry-After` while it is being made.
pub(super) async fn get_export(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
) -> Result<Response, ApiError> {
    let (rec, _) = load_for(&cp, &headers, &id, &q).await?;
    if rec.state() != RecordingState::Ready {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            "the recording is not finished yet; the export can be made once it is ready",
        ));
    }
    let store = cp.recording_objects();
    let key = ObjectPath::from(export_key(&rec.id));
    let meta = match store.head(&key).await {
        Ok(meta) => meta,
        Err(object_store::Error::NotFound { .. }) => {
            if !cp.exporter().available() {
                return Err(ApiError::new(ErrorCode::Unavailable, FFMPEG_MISSING));
            }
            let mut rx = start_export(&cp, &rec);
            // The watch's guard is dropped here, before any await below.
            let done = match tokio::time::timeout(EXPORT_WAIT, rx.wait_for(|r| r.is_some())).await {
                Ok(Ok(r)) => r.clone(),
                _ => None,
            };
            match done {
                Some(outcome) => match outcome {
                    Ok(()) => store.head(&key).await.map_err(|e| storage_error(&e))?,
                    Err(e) if e == ExportError::FfmpegMissing.to_string() => {
                        return Err(ApiError::new(ErrorCode::Unavailable, FFMPEG_MISSING));
                    }
                    Err(_) => {
                        return Err(ApiError::new(
                            ErrorCode::Internal,
                            "the export failed; the server's log says why",
                        ));
                    }
                },
                None => {
                    let mut busy = ApiError::new(
                        ErrorCode::Unavailable,
                        "the export is being made; try again in a minute",
                    )
                    .into_response();
                    busy.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(30u32));
                    return Ok(busy);
                }
            }
        }
        Err(e) => return Err(storage_error(&e)),
    };
    let name = format!("{}-{}.webm", safe_name(&room_name(&cp, &rec).await), rec.id);
    Ok(ranged(&headers, meta.size, Some(name), move |r| {
        Body::from_stream(
            futures::stream::once(async move {
                let got = store
                    .get_opts(
                        &key,
                        GetOptions::new().with_range(Some(GetRange::Bounded(r))),
                    )
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                Ok::<_, std::io::Error>(
                    got.into_stream()
                        .map_err(|e| std::io::Error::other(e.to_string())),
                )
            })
            .try_flatten(),
        )
    }))
}

fn storage_error(e: &object_store::Error) -> ApiError {
    tracing::warn!("recording storage: {e}");
    ApiError::new(
        ErrorCode::Unavailable,
        "recording storage is unavailable; try again",
    )
}

/// `GET /internal/v1/recordings/{id}/export-plan` (cluster secret): the
/// files `veche recording export` reads from the store itself.
pub(super) async fn export_plan(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
) -> Result<axum::Json<crate::recording_export::ExportPlan>, ApiError> {
    let rec = load(&cp, &id).await?;
    Ok(axum::Json(crate::recording_export::ExportPlan {
        recording_id: rec.id.clone(),
        files: export_files(&rec),
    }))
}
