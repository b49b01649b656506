//! The admin view's JSON and exports (administrators only), and a user's
//! own meeting history: rooms and people online, counts by day and hour,
//! the meeting history, one meeting's participants (JSON and CSV) and its
//! chat. Everything reads the statistics (`store::stats`) through
//! [`StatsStore`] on `cp.replicated()`, one linearizable read per request.

use super::auth::{RequireAdmin, RequireUser};
use crate::error::ApiError;
use crate::store::{StatsStore, Store};
use crate::ControlPlane;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;
use veche_protocol::chat::ChatMessage;
use veche_protocol::limits::stats::MAX_CHAT_EXPORT;
use veche_protocol::rpc::HISTORY_PAGE;
use veche_protocol::stats::{
    MeetingDetail, MeetingId, MeetingPage, Overview, MAX_SEARCH_CHARS, MEETINGS_PAGE,
};
use veche_protocol::{ErrorCode, MessageId};

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

/// `GET /api/admin/overview`.
pub(super) async fn overview(
    State(cp): State<Arc<ControlPlane>>,
    _admin: RequireAdmin,
) -> Result<Json<Overview>, ApiError> {
    let now = crate::now_ms();
    Ok(Json(
        cp.replicated().stats_read(move |q| q.overview(now)).await?,
    ))
}

/// The query of the meeting lists.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MeetingsQuery {
    /// Part of the room name, any case.
    #[serde(default)]
    q: Option<String>,
    /// The `next_before` of the previous page.
    #[serde(default)]
    before: Option<u64>,
    /// Page size, 1 to [`MEETINGS_PAGE`].
    #[serde(default)]
    limit: Option<usize>,
}

/// The query checked: a search string without control characters and not
/// over [`MAX_SEARCH_CHARS`], a cursor, a page size in range.
fn checked(
    query: Result<Query<MeetingsQuery>, QueryRejection>,
) -> Result<(String, Option<MeetingId>, usize), ApiError> {
    let Query(q) = query.map_err(|e| bad(format!("invalid query: {}", e.body_text())))?;
    let search = q.q.unwrap_or_default();
    if search.chars().count() > MAX_SEARCH_CHARS {
        return Err(bad(format!(
            "the search is longer than {MAX_SEARCH_CHARS} characters"
        )));
    }
    if search.chars().any(char::is_control) {
        return Err(bad("the search must not contain control characters"));
    }
    let limit = q.limit.unwrap_or(MEETINGS_PAGE);
    if !(1..=MEETINGS_PAGE).contains(&limit) {
        return Err(bad(format!("limit must be between 1 and {MEETINGS_PAGE}")));
    }
    if q.before == Some(0) {
        return Err(bad("before must be a meeting id (1 or more)"));
    }
    Ok((search.trim().to_owned(), q.before.map(MeetingId), limit))
}

/// `GET /api/admin/meetings?q=&before=&limit=`.
pub(super) async fn meetings(
    State(cp): State<Arc<ControlPlane>>,
    _admin: RequireAdmin,
    query: Result<Query<MeetingsQuery>, QueryRejection>,
) -> Result<Json<MeetingPage>, ApiError> {
    let (search, before, limit) = checked(query)?;
    let now = crate::now_ms();
    Ok(Json(
        cp.replicated()
            .stats_read(move |q| q.meetings(&search, before, limit, now))
            .await?,
    ))
}

/// `GET /api/me/meetings?before=&limit=`: the signed-in user's meetings
/// (those they joined signed in).
pub(super) async fn my_meetings(
    State(cp): State<Arc<ControlPlane>>,
    RequireUser(me): RequireUser,
    query: Result<Query<MeetingsQuery>, QueryRejection>,
) -> Result<Json<MeetingPage>, ApiError> {
    let (search, before, limit) = checked(query)?;
    if !search.is_empty() {
        return Err(bad("q is not supported here"));
    }
    let now = crate::now_ms();
    let user = me.user.id;
    Ok(Json(
        cp.replicated()
            .stats_read(move |q| q.user_meetings(user, before, limit, now))
            .await?,
    ))
}

fn meeting_id(path: Result<Path<String>, PathRejection>) -> Result<MeetingId, ApiError> {
    let Path(raw) = path.map_err(|e| bad(e.body_text()))?;
    match raw.parse::<u64>() {
        Ok(id) if id > 0 => Ok(MeetingId(id)),
        _ => Err(bad(format!("{raw:?} is not a meeting id"))),
    }
}

fn no_such_meeting(id: MeetingId) -> ApiError {
    ApiError::new(ErrorCode::RoomNotFound, format!("no meeting has id {id}"))
}

async fn read_detail(cp: &Arc<ControlPlane>, id: MeetingId) -> Result<MeetingDetail, ApiError> {
    let now = crate::now_ms();
    cp.replicated()
        .stats_read(move |q| q.meeting_detail(id, now))
        .await?
        .ok_or_else(|| no_such_meeting(id))
}

/// `GET /api/admin/meetings/{id}`.
pub(super) async fn meeting(
    State(cp): State<Arc<ControlPlane>>,
    _admin: RequireAdmin,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<MeetingDetail>, ApiError> {
    let id = meeting_id(path)?;
    Ok(Json(read_detail(&cp, id).await?))
}

/// A download: the body with its type and a file name.
fn attachment(content_type: &'static str, name: String, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/admin/meetings/{id}/participants.csv`: name, email, joined,
/// left, duration in seconds; times in UTC, ISO 8601.
pub(super) async fn participants_csv(
    State(cp): State<Arc<ControlPlane>>,
    RequireAdmin(admin): RequireAdmin,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = meeting_id(path)?;
    let d = read_detail(&cp, id).await?;
    // Who took a list of people's names and emails is worth an audit line.
    tracing::info!(admin = %admin.user.id, meeting = %id, "participant list exported");
    Ok(attachment(
        "text/csv; charset=utf-8",
        format!("meeting-{id}-participants.csv"),
        csv::participants(&d.participants),
    ))
}

/// `GET /api/admin/meetings/{id}/chat`: the room's chat messages sent
/// during the meeting, as text, one per line.
pub(super) async fn chat(
    State(cp): State<Arc<ControlPlane>>,
    RequireAdmin(admin): RequireAdmin,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = meeting_id(path)?;
    let d = read_detail(&cp, id).await?;
    tracing::info!(admin = %admin.user.id, meeting = %id, "chat exported");
    let from = d.meeting.started_at_ms;
    let until = d.meeting.ended_at_ms.unwrap_or(u64::MAX);
    // Pages back from the newest message until the meeting's start.
    let store = cp.replicated();
    let mut before: Option<MessageId> = None;
    let mut found: Vec<ChatMessage> = Vec::new();
    loop {
        let (page, more) = store
            .messages(d.meeting.room_id, before, HISTORY_PAGE)
            .await?;
        let reached_start = page.first().is_none_or(|m| m.sent_at_ms < from);
        before = page.first().map(|m| m.id);
        found.extend(
            page.into_iter()
                .rev()
                .filter(|m| (from..=until).contains(&m.sent_at_ms)),
        );
        if reached_start || !more || found.len() >= MAX_CHAT_EXPORT {
            break;
        }
    }
    found.truncate(MAX_CHAT_EXPORT);
    found.reverse();
    Ok(attachment(
        "text/plain; charset=utf-8",
        format!("meeting-{id}-chat.txt"),
        csv::chat(&d.meeting.room_name, &found),
    ))
}

/// Text formats of the exports.
pub(crate) mod csv {
    use veche_protocol::chat::ChatMessage;
    use veche_protocol::stats::ParticipantView;

    /// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
    pub(crate) fn iso_utc(ms: u64) -> String {
        let secs = ms / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Civil date from days since 1970-01-01 (Howard Hinnant's
        // algorithm), for the proleptic Gregorian calendar.
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    /// One CSV field: quoted when it holds a separator, a quote or a line
    /// break; and a leading `=`, `+`, `-` or `@` is prefixed with `'`, so
    /// that a display name cannot become a spreadsheet formula.
    pub(crate) fn field(s: &str) -> String {
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_owned()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    }

    /// The participant list.
    pub(crate) fn participants(list: &[ParticipantView]) -> String {
        let mut out = String::from("name,email,joined,left,duration_s\r\n");
        for p in list {
            out.push_str(&format!(
                "{},{},{},{},{}\r\n",
                field(&p.display_name),
                field(p.email.as_deref().unwrap_or("")),
                iso_utc(p.joined_at_ms),
                p.left_at_ms.map(iso_utc).unwrap_or_default(),
                p.duration_ms / 1000
            ));
        }
        out
    }

    /// The chat, one message a line: time, name, text (line breaks in the
    /// text indented, so every message starts a line).
    pub(crate) fn chat(room: &str, messages: &[ChatMessage]) -> String {
        let mut out = format!("Chat of {room}\n");
        for m in messages {
            out.push_str(&format!(
                "[{}] {}: {}\n",
                iso_utc(m.sent_at_ms),
                m.display_name,
                m.text.replace('\n', "\n    ")
            ));
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn times_are_iso_8601_utc() {
            assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
            assert_eq!(iso_utc(1_776_346_860_000), "2026-04-16T13:41:00Z");
            assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        }

        #[test]
        fn a_name_cannot_break_the_csv_or_become_a_formula() {
            assert_eq!(field("Ann"), "Ann");
            assert_eq!(field("Doe, Jane"), "\"Doe, Jane\"");
            assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
            assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
            assert_eq!(field("-1,2"), "\"'-1,2\"");
        }
    }
}
