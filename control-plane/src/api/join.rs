//! `POST /api/rooms/{slug}/join`: a join token for a media node, a fresh
//! rejoin secret, and (with `rejoin_token` and `rejoin_secret`) the same
//! participant id as before.

use super::edge::Body;
use super::{clean_name, parse_json, parse_slug, room_or_404, view};
use crate::error::ApiError;
use crate::leader::{LeaderReply, LeaderRequest};
use crate::rejoin::{encode_secret, rejoining_participant};
use crate::ControlPlane;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use std::sync::Arc;
use veche_protocol::rpc::{JoinRequest, JoinResponse, MAX_DISPLAY_NAME_CHARS, REGION_HEADER};
use veche_protocol::token::{self, JoinClaims};
use veche_protocol::{ErrorCode, ParticipantId};

/// Longest region label a join may name.
const MAX_REGION_CHARS: usize = 64;

/// The region to place a joiner in: the load balancer's
/// [`REGION_HEADER`] if present and non-empty, else the body's `region`.
/// Either must be a plain label, so that it can be logged and compared
/// without surprises.
fn join_region(headers: &HeaderMap, body: Option<&str>) -> Result<Option<String>, ApiError> {
    let header = match headers.get(REGION_HEADER) {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("the {REGION_HEADER} header is not plain ASCII"),
            )
        })?),
        None => None,
    }
    .filter(|r| !r.is_empty());
    let (region, source) = match (header, body.filter(|r| !r.is_empty())) {
        (Some(r), _) => (r, format!("the {REGION_HEADER} header")),
        (None, Some(r)) => (r, "region".to_owned()),
        (None, None) => return Ok(None),
    };
    if region.chars().count() > MAX_REGION_CHARS {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("{source} is longer than {MAX_REGION_CHARS} characters"),
        ));
    }
    if !region
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("{source} may only contain letters, digits, '.', '_' and '-'"),
        ));
    }
    Ok(Some(region.to_owned()))
}

pub(super) async fn join_room(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Body(body): Body,
) -> Result<Json<JoinResponse>, ApiError> {
    let slug = parse_slug(&slug)?;
    let req: JoinRequest = parse_json(&body)?;
    let display_name = clean_name(&req.display_name, "display name", MAX_DISPLAY_NAME_CHARS)?;
    let region = join_region(&headers, req.region.as_deref())?;
    let room = room_or_404(&cp.replicated(), &slug).await?;
    let signing_key = cp.signing_key().await?;
    let now = crate::now_ms();
    // Checked before placement, so a refused rejoin does not count a
    // participant against a node.
    let rejoining = req
        .rejoin_token
        .as_deref()
        .map(|t| rejoining_participant(t, req.rejoin_secret.as_deref(), &signing_key, &room, now))
        .transpose()?;
    let placement = match cp
        .on_leader(LeaderRequest::Place {
            room: room.id,
            region,
            avoid: req.unreachable_node,
        })
        .await?
    {
        LeaderReply::Placed(p) => p,
        _ => None,
    };
    let placement = placement.ok_or_else(|| {
        let msg = if req.unreachable_node.is_some() {
            "no other media node is available; retry shortly"
        } else {
            "no media node is available; retry shortly"
        };
        ApiError::new(ErrorCode::Unavailable, msg)
    })?;
    let (node_id, ws_url) = (placement.node_id, placement.ws_url);
    // A new secret for every token: the secret of the token this rejoin
    // presented is spent with it.
    let rejoin_secret = encode_secret(crate::random_bytes());
    let claims = JoinClaims {
        room_id: room.id,
        room_slug: room.slug.clone(),
        room_name: room.name.clone(),
        participant_id: rejoining
            .clone()
            .unwrap_or_else(|| ParticipantId::from_random(crate::random_bytes())),
        display_name,
        node_id,
        issued_at_ms: now,
        expires_at_ms: now + cp.config.token_ttl.as_millis() as u64,
        room_nodes: placement.room_nodes,
        rejoin: rejoining.is_some(),
        seat: Some(token::seat_of(&rejoin_secret)),
    };
    let token = token::sign(&claims, &signing_key);
    cp.metrics.joins.inc();
    Ok(Json(JoinResponse {
        token,
        ws_url,
        participant_id: claims.participant_id,
        node_id,
        expires_at_ms: claims.expires_at_ms,
        room: view(&cp, &headers, &room),
        rejoin_secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_header_wins_over_the_body_and_must_be_a_plain_label() {
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(REGION_HEADER, v.parse().unwrap());
            h
        };
        let none = HeaderMap::new();
        assert_eq!(join_region(&none, None).unwrap(), None);
        assert_eq!(join_region(&none, Some("")).unwrap(), None);
        assert_eq!(
            join_region(&none, Some("us")).unwrap().as_deref(),
            Some("us")
        );
        assert_eq!(
            join_region(&headers("eu"), Some("us")).unwrap().as_deref(),
            Some("eu")
        );
        assert_eq!(
            join_region(&headers(""), Some("us")).unwrap().as_deref(),
            Some("us")
        );
        let ok = "a".repeat(MAX_REGION_CHARS);
        assert!(join_region(&none, Some(&ok)).is_ok());
        for bad in ["eu west", "eu/1", "ü", &"a".repeat(MAX_REGION_CHARS + 1)] {
            let e = join_region(&none, Some(bad)).unwrap_err();
            assert_eq!(e.0.code, ErrorCode::BadRequest, "{bad:?}");
        }
        let e = join_region(&headers("eu west"), None).unwrap_err();
        assert!(e.0.message.contains(REGION_HEADER), "{e:?}");
    }
}
