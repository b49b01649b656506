//! `GET /api/rooms/{slug}/messages`: a page of a room's chat history.

use super::{no_such_room, parse_slug};
use crate::error::ApiError;
use crate::store::Store;
use crate::ControlPlane;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;
use veche_protocol::rpc::{MessagesPage, HISTORY_PAGE};
use veche_protocol::{ErrorCode, MessageId};

#[derive(Deserialize)]
pub(super) struct MessagesQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

pub(super) async fn messages(
    State(cp): State<Arc<ControlPlane>>,
    Path(slug): Path<String>,
    query: Result<Query<MessagesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<MessagesPage>, ApiError> {
    let slug = parse_slug(&slug)?;
    let Query(q) = query.map_err(|e| ApiError::new(ErrorCode::BadRequest, e.body_text()))?;
    let limit = q.limit.unwrap_or(HISTORY_PAGE).clamp(1, HISTORY_PAGE);
    // The room and its page in one read: one read barrier, not two.
    let (_, (messages, has_more)) = cp
        .replicated()
        .room_history(&slug, q.before.map(MessageId), limit)
        .await?
        .ok_or_else(no_such_room)?;
    Ok(Json(MessagesPage { messages, has_more }))
}
