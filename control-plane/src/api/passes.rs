//! Guest passes over HTTP: a room's owner creates (`POST`), lists (`GET`)
//! and revokes (`DELETE .../{id}`) the passes of `/api/rooms/{slug}/passes`.
//!
//! Only the owner (signed in as the creator, or presenting the owner key)
//! may do any of it; everyone else gets `403` and nothing changes. The
//! owner check comes before the body is parsed, so a stranger learns
//! nothing from the answers to malformed input. Joining with a pass is in
//! `join.rs`.

use super::auth::Viewer;
use super::edge::Body;
use super::owner::user_id;
use super::{clean_name, owned_room, parse_json, public_base, write_error};
use crate::error::ApiError;
use crate::store::model::{CommandError, Room};
use crate::store::passes::{Pass, PassCommand, PassRefusal};
use crate::store::{PassStore, StoreError};
use crate::ControlPlane;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use std::sync::Arc;
use veche_protocol::limits::passes::{MAX_LABEL_CHARS, MAX_WINDOW_MS};
use veche_protocol::pass::{
    format_utc, CreatePassRequest, CreatedPass, PassId, PassList, PassView, RoomAccess,
};
use veche_protocol::{ErrorCode, UnixMillis};

/// The refusal of a pass change by anyone but the owner.
const OWNER_ONLY: &str = "only the meeting's owner may manage its guest passes";

/// Longest pass token accepted: the 43 characters of 32 base64url bytes,
/// with room to spare, so a hostile body cannot make the server hash
/// kilobytes.
const MAX_PASS_TOKEN_CHARS: usize = 128;

/// The pass a joiner presents, looked up: the link's token, else the pass
/// their rejoin token was issued with. `None` if they present none.
pub(super) async fn presented_pass(
    cp: &Arc<ControlPlane>,
    room: &Room,
    token: Option<&str>,
    rejoin_pass: Option<PassId>,
    now: UnixMillis,
) -> Result<Option<(PassId, Option<String>)>, ApiError> {
    let store = cp.replicated();
    let pass = match (token.filter(|t| !t.is_empty()), rejoin_pass) {
        (Some(t), _) => {
            if t.chars().count() > MAX_PASS_TOKEN_CHARS {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!("pass is longer than {MAX_PASS_TOKEN_CHARS} characters"),
                ));
            }
            let found = store
                .pass_by_token(super::auth::token_hash(t.as_bytes()))
                .await?;
            found.filter(|p| p.room_id == room.id).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Forbidden,
                    "This guest pass is not valid for this meeting. Check the link, or ask the \
                     organiser for a new pass.",
                )
            })?
        }
        (None, Some(id)) => store.pass(room.id, id).await?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::Forbidden,
                "the guest pass this rejoin came with no longer exists; join with a new pass",
            )
        })?,
        (None, None) => return Ok(None),
    };
    Ok(Some((pass.id, pass.refusal(now))))
}

/// Checks a pass request's window at `now_ms`. I/O-free.
fn check_window(req: &CreatePassRequest, now_ms: UnixMillis) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::new(ErrorCode::BadRequest, m));
    if req.valid_until_ms <= req.valid_from_ms {
        return bad(format!(
            "the pass must end after it starts (from {} until {})",
            format_utc(req.valid_from_ms),
            format_utc(req.valid_until_ms)
        ));
    }
    if req.valid_until_ms - req.valid_from_ms > MAX_WINDOW_MS {
        return bad(format!(
            "a pass may be valid for at most {} days",
            MAX_WINDOW_MS / 86_400_000
        ));
    }
    if req.valid_until_ms <= now_ms {
        return bad(format!(
            "this pass would already have expired (on {})",
            format_utc(req.valid_until_ms)
        ));
    }
    Ok(())
}

/// How the owner sees a pass at `now_ms`.
fn pass_view(p: &Pass, now_ms: UnixMillis) -> PassView {
    PassView {
        id: p.id,
        label: p.label.clone(),
        valid_from_ms: p.valid_from_ms,
        valid_until_ms: p.valid_until_ms,
        status: p.status(now_ms),
        created_at_ms: p.created_at_ms,
        revoked_at_ms: p.revoked_at_ms,
    }
}

/// `POST /api/rooms/{slug}/passes`.
pub(super) async fn create_pass(
    State(cp): State<Arc<ControlPlane>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<CreatedPass>), ApiError> {
    let room = owned_room(&cp, &viewer, &headers, &slug, OWNER_ONLY).await?;
    let req: CreatePassRequest = parse_json(&body)?;
    let label = clean_name(&req.label, "pass label", MAX_LABEL_CHARS)?;
    let now = crate::now_ms();
    check_window(&req, now)?;
    if room.access == RoomAccess::SignedIn {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "this meeting is for signed-in members only, so a guest pass would admit no one; \
             passes are for meetings open to signed-in members or guests with a pass",
        ));
    }
    let token = crate::rejoin::encode_secret(crate::random_bytes());
    let cmd = PassCommand::Create {
        room_id: room.id,
        label,
        valid_from_ms: req.valid_from_ms,
        valid_until_ms: req.valid_until_ms,
        token_hash: super::auth::token_hash(token.as_bytes()),
        created_at_ms: now,
        created_by: user_id(&viewer),
    };
    let pass = match cp.replicated().pass_command(cmd).await {
        Ok(p) => p,
        Err(StoreError::Refused(CommandError::Pass(PassRefusal::TooMany))) => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                PassRefusal::TooMany.to_string(),
            ))
        }
        Err(StoreError::Refused(CommandError::Pass(PassRefusal::TokenTaken))) => {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "could not allocate a pass link; retry",
            ))
        }
        Err(e) => return Err(write_error(e)),
    };
    tracing::info!(room = %room.id, pass = %pass.id, "guest pass created");
    let link = format!(
        "{}/r/{}?pass={token}",
        public_base(&cp, &headers),
        room.slug
    );
    Ok((
        StatusCode::CREATED,
        Json(CreatedPass {
            pass: pass_view(&pass, now),
            link,
        }),
    ))
}

/// `GET /api/rooms/{slug}/passes`.
pub(super) async fn list_passes(
    State(cp): State<Arc<ControlPlane>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Json<PassList>, ApiError> {
    let room = owned_room(&cp, &viewer, &headers, &slug, OWNER_ONLY).await?;
    let now = crate::now_ms();
    let passes = cp.replicated().passes(room.id).await?;
    Ok(Json(PassList {
        passes: passes.iter().map(|p| pass_view(p, now)).collect(),
    }))
}

/// `DELETE /api/rooms/{slug}/passes/{id}`: revokes at once; the holder's
/// next join or rejoin is refused.
pub(super) async fn revoke_pass(
    State(cp): State<Arc<ControlPlane>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path((slug, id)): Path<(String, String)>,
    Body(_): Body,
) -> Result<Json<PassView>, ApiError> {
    let room = owned_room(&cp, &viewer, &headers, &slug, OWNER_ONLY).await?;
    let id = id.parse::<u64>().map(PassId).map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("{id:?} is not a pass id (a number)"),
        )
    })?;
    let no_such = || {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("this meeting has no guest pass {id}"),
        )
    };
    // Read first: a mistyped id costs a read, not a log entry.
    if cp.replicated().pass(room.id, id).await?.is_none() {
        return Err(no_such());
    }
    let now = crate::now_ms();
    let cmd = PassCommand::Revoke {
        room_id: room.id,
        pass_id: id,
        at_ms: now,
    };
    match cp.replicated().pass_command(cmd).await {
        Ok(p) => {
            tracing::info!(room = %room.id, pass = %p.id, "guest pass revoked");
            Ok(Json(pass_view(&p, now)))
        }
        Err(StoreError::Refused(CommandError::Pass(PassRefusal::NoSuchPass))) => Err(no_such()),
        Err(e) => Err(write_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(from: u64, until: u64) -> CreatePassRequest {
        CreatePassRequest {
            label: "Visitor".into(),
            valid_from_ms: from,
            valid_until_ms: until,
        }
    }

    #[test]
    fn a_pass_window_must_end_after_it_starts_within_a_year_and_in_the_future() {
        let now = 1_776_346_860_000;
        let hour = 3_600_000;
        assert!(check_window(&req(now, now + hour), now).is_ok());
        assert!(check_window(&req(now - hour, now + hour), now).is_ok());
        assert!(check_window(&req(now, now + MAX_WINDOW_MS), now).is_ok());
        for (what, r, words) in [
            ("empty", req(now, now), "end after it starts"),
            ("backwards", req(now + hour, now), "end after it starts"),
            (
                "too long",
                req(now, now + MAX_WINDOW_MS + 1),
                "at most 366 days",
            ),
            (
                "over",
                req(now - 2 * hour, now - hour),
                "already have expired",
            ),
        ] {
            let e = check_window(&r, now).unwrap_err();
            assert_eq!(e.0.code, ErrorCode::BadRequest, "{what}");
            assert!(e.0.message.contains(words), "{what}: {e:?}");
        }
    }
}
