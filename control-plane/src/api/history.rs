//! `GET /api/rooms/{slug}/messages`: a page of a room's chat history.

use super::{parse_slug, room_or_404};
use crate::error::ApiError;
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
    let room = room_or_404(&cp, &slug).await?;
    // room_or_404 was the read barrier; the local read is current.
    let (messages, has_more) =
        cp.store
            .local()
            .messages(room.id, q.before.map(MessageId), limit)?;
    Ok(Json(MessagesPage { messages, has_more }))
}
