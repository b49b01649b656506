//! `POST /api/rooms/{slug}/join`: who may join (the room's access rule,
//! guest passes), a join token for a media node, a fresh rejoin secret,
//! and (with `rejoin_token` and `rejoin_secret`) the same participant id as
//! before.
//!
//! Admission, in order:
//! - a signed-in user joins any room under their profile's name (the
//!   body's `display_name` is ignored, so no one can pose as a member);
//! - the owner-key holder (an anonymous creator) joins their own room;
//! - anyone else is anonymous. A guest pass they present (the link's
//!   `pass`, or the one their rejoin token was issued with) must admit at
//!   this instant: a scheduled, expired or revoked pass refuses the join
//!   with its window in words, even where the room is open. Then `open`
//!   admits, `signed_in` refuses (401), and `signed_in_or_pass` admits
//!   only with the pass.
//!
//! A participant is a guest (marked "(guest)" to others) when they joined
//! without an account and without the owner key in a room whose owner has
//! an account: the room belongs to the organisation and they are not of
//! it. Pass holders are always guests. In a room of an anonymous creator
//! (the quick-start case) no one is marked.
//!
//! Then the room's moderation policy has its say (`join_policy.rs`): the
//! token's role, the lobby, and refusals of the removed, the denied and,
//! in a locked meeting, of anyone new.

use super::auth::Viewer;
use super::edge::Body;
use super::join_policy::{self, Joiner};
use super::owner::owns;
use super::passes::presented_pass;
use super::rooms::view_for;
use super::{clean_name, parse_json, parse_slug, room_or_404};
use crate::error::ApiError;
use crate::leader::{LeaderReply, LeaderRequest};
use crate::rejoin::{encode_secret, rejoining_participant};
use crate::store::accounts::User;
use crate::store::model::Room;
use crate::ControlPlane;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use std::sync::Arc;
use veche_protocol::pass::{PassId, RoomAccess};
use veche_protocol::rpc::{
    JoinRequest, JoinResponse, RoomView, MAX_DISPLAY_NAME_CHARS, REGION_HEADER,
};
use veche_protocol::token::{self, JoinClaims};
use veche_protocol::{ErrorCode, ParticipantId, UnixMillis, UserId};

/// The refusal of an anonymous join to a `signed_in` room. The web client
/// shows it on a refusal page with a "Sign in" link.
pub(crate) const MEMBERS_ONLY: &str =
    "This meeting is for signed-in members of the organisation. Sign in to join.";
/// The refusal of an anonymous join without a pass to a
/// `signed_in_or_pass` room.
pub(crate) const MEMBERS_OR_PASS: &str = "This meeting is for signed-in members of the \
     organisation and guests with a pass. Sign in, or ask the organiser for a guest pass.";

/// Who a joiner turned out to be.
struct Admitted {
    display_name: String,
    user: Option<UserId>,
    guest: bool,
    pass: Option<PassId>,
}

/// A signed-in user's name as others see it: the profile's, cut to the
/// longest display name a token carries.
fn profile_name(user: &User) -> String {
    let name: String = user
        .display_name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DISPLAY_NAME_CHARS)
        .collect();
    match name.trim() {
        "" => "Member".to_owned(),
        n => n.to_owned(),
    }
}

/// The decision for an anonymous joiner who is not the owner, once any
/// pass they presented has been found (`pass`: its id and why it does not
/// admit now, if it does not). I/O-free.
fn admit_anonymous(
    room: &Room,
    pass: Option<(PassId, Option<String>)>,
) -> Result<(bool, Option<PassId>), ApiError> {
    if room.access == RoomAccess::SignedIn {
        return Err(ApiError::new(ErrorCode::Unauthorized, MEMBERS_ONLY));
    }
    match pass {
        Some((_, Some(why))) => Err(ApiError::new(ErrorCode::Forbidden, why)),
        Some((id, None)) => Ok((true, Some(id))),
        None if room.access == RoomAccess::SignedInOrPass => {
            Err(ApiError::new(ErrorCode::Unauthorized, MEMBERS_OR_PASS))
        }
        None => Ok((room.owner.is_some(), None)),
    }
}

/// Decides who the joiner is, or why they may not join.
async fn admit(
    cp: &Arc<ControlPlane>,
    viewer: &Viewer,
    headers: &HeaderMap,
    room: &Room,
    req: &JoinRequest,
    rejoining: Option<&JoinClaims>,
    now: UnixMillis,
) -> Result<Admitted, ApiError> {
    let account = rejoining.and_then(|c| c.user);
    if let Some(s) = &viewer.0 {
        if account.is_some_and(|u| u != s.user.id) {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "the rejoin token belongs to another account; join without it",
            ));
        }
        return Ok(Admitted {
            display_name: profile_name(&s.user),
            user: Some(s.user.id),
            guest: false,
            pass: None,
        });
    }
    if account.is_some() {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the rejoin token belongs to a signed-in account: sign in again, or join without it",
        ));
    }
    let display_name = clean_name(&req.display_name, "display name", MAX_DISPLAY_NAME_CHARS)?;
    if owns(room, None, headers) {
        return Ok(Admitted {
            display_name,
            user: None,
            guest: false,
            pass: None,
        });
    }
    let pass = presented_pass(
        cp,
        room,
        req.pass.as_deref(),
        rejoining.and_then(|c| c.pass),
        now,
    )
    .await?;
    let (guest, pass) = admit_anonymous(room, pass)?;
    Ok(Admitted {
        display_name,
        user: None,
        guest,
        pass,
    })
}

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
    viewer: Viewer,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Body(body): Body,
) -> Result<Json<JoinResponse>, ApiError> {
    let slug = parse_slug(&slug)?;
    let req: JoinRequest = parse_json(&body)?;
    let region = join_region(&headers, req.region.as_deref())?;
    let room = room_or_404(&cp.replicated(), &slug).await?;
    let signing_key = cp.signing_key().await?;
    let now = crate::now_ms();
    // Checked before placement, so a refused join or rejoin does not count
    // a participant against a node.
    let rejoining = req
        .rejoin_token
        .as_deref()
        .map(|t| rejoining_participant(t, req.rejoin_secret.as_deref(), &signing_key, &room, now))
        .transpose()?;
    let who = admit(&cp, &viewer, &headers, &room, &req, rejoining.as_ref(), now).await?;
    let participant_id = rejoining
        .as_ref()
        .map(|c| c.participant_id.clone())
        .unwrap_or_else(|| ParticipantId::from_random(crate::random_bytes()));
    let placed = join_policy::seat(
        &cp,
        room.id,
        &Joiner {
            participant_id: &participant_id,
            owner: owns(&room, who.user, &headers),
            guest: who.guest,
            user: who.user,
            pass: who.pass,
            rejoining: rejoining.as_ref(),
        },
    )
    .await?;
    let (seat, participant_id) = (placed.seat, placed.participant_id);
    // A rejoin of a removed participant's seat comes back as someone new.
    let rejoin = rejoining.is_some() && !seat.fresh_id;
    let room_view = RoomView {
        settings: placed.settings,
        ..view_for(&cp, &headers, &viewer, &room).await?
    };
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
    let ice_servers = cp
        .config
        .turn
        .iter()
        .map(|t| t.ice_server_for(&participant_id, now / 1000))
        .collect();
    let claims = JoinClaims {
        room_id: room.id,
        room_slug: room.slug.clone(),
        room_name: room.name.clone(),
        e2ee: room.e2ee,
        participant_id,
        display_name: who.display_name,
        node_id,
        issued_at_ms: now,
        expires_at_ms: now + cp.config.token_ttl.as_millis() as u64,
        room_nodes: placement.room_nodes,
        rejoin,
        seat: Some(token::seat_of(&rejoin_secret)),
        user: who.user,
        guest: who.guest,
        pass: who.pass,
        role: seat.role,
        lobby: seat.lobby,
        ice_servers,
    };
    let token = token::sign(&claims, &signing_key);
    cp.metrics.joins.inc();
    tracing::debug!(room = %room.id, signed_in = who.user.is_some(), guest = who.guest, pass = ?who.pass, role = ?seat.role, lobby = seat.lobby, "join token issued");
    Ok(Json(JoinResponse {
        token,
        ws_url,
        participant_id: claims.participant_id,
        node_id,
        expires_at_ms: claims.expires_at_ms,
        room: room_view,
        rejoin_secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::NewRoom;
    use veche_protocol::RoomSlug;

    fn room(access: RoomAccess, owner: Option<UserId>) -> Room {
        NewRoom {
            owner,
            access,
            ..NewRoom::open(RoomSlug::from_random([3; 16]), "r".into(), 1)
        }
        .into_room(veche_protocol::RoomId(3))
    }

    #[test]
    fn anonymous_joiners_are_admitted_by_the_rooms_access_rule_and_their_pass() {
        let org = Some(UserId(1));
        let valid = Some((PassId(5), None));
        let expired = Some((PassId(5), Some("This pass expired on ...".to_owned())));
        // Open: anyone; a guest when the room is the organisation's.
        assert_eq!(
            admit_anonymous(&room(RoomAccess::Open, None), None).unwrap(),
            (false, None)
        );
        assert_eq!(
            admit_anonymous(&room(RoomAccess::Open, org), None).unwrap(),
            (true, None)
        );
        // Members only: no pass helps.
        for pass in [None, valid.clone()] {
            let e = admit_anonymous(&room(RoomAccess::SignedIn, org), pass).unwrap_err();
            assert_eq!(e.0.code, ErrorCode::Unauthorized);
            assert_eq!(e.0.message, MEMBERS_ONLY);
        }
        // Members or pass: only with a pass that admits now.
        let r = room(RoomAccess::SignedInOrPass, org);
        assert_eq!(
            admit_anonymous(&r, valid.clone()).unwrap(),
            (true, Some(PassId(5)))
        );
        let e = admit_anonymous(&r, None).unwrap_err();
        assert_eq!(e.0.code, ErrorCode::Unauthorized);
        let e = admit_anonymous(&r, expired.clone()).unwrap_err();
        assert_eq!(e.0.code, ErrorCode::Forbidden);
        assert!(e.0.message.contains("expired"), "{e:?}");
        // A pass that does not admit refuses even where the room is open.
        let e = admit_anonymous(&room(RoomAccess::Open, org), expired).unwrap_err();
        assert_eq!(e.0.code, ErrorCode::Forbidden);
    }

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
