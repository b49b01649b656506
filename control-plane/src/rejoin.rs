//! Coming back as the same participant (`rejoin_token` plus
//! `rejoin_secret` in a join request), and the secret that binds a seat to
//! whoever received its join response.
//!
//! The design is stateless: the control plane stores nothing per seat and
//! media nodes learn nothing new. Each join response carries a fresh random
//! secret; the token carries only its SHA-256 (`seat`). A rejoin must show
//! both the old token (signed, so its claims are ours) and the secret whose
//! hash it names. A token that leaked without its secret takes no seat.

use crate::error::ApiError;
use crate::secret::secrets_match;
use crate::store::model::Room;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::Ed25519KeyPair;
use veche_protocol::rpc::REJOIN_MAX_AGE_MS;
use veche_protocol::token::{self, JoinClaims, TokenError};
use veche_protocol::ErrorCode;

/// A rejoin secret made of 32 random bytes: base64url, no padding.
pub fn encode_secret(random: [u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

/// The claims of the seat a rejoin proves the caller held in `room` (its
/// participant id, and the account or guest pass it joined with, which the
/// join checks again): the token
/// must carry this control plane's signature (expired is fine), name the
/// same room, have been issued at most [`REJOIN_MAX_AGE_MS`] ago, and
/// `secret` must be the one its `seat` claim was made from. Checks the
/// token before the secret, so a client with a stale token is told the
/// token is the problem (and joins without it).
pub fn rejoining_participant(
    rejoin_token: &str,
    secret: Option<&str>,
    key: &Ed25519KeyPair,
    room: &Room,
    now_ms: u64,
) -> Result<JoinClaims, ApiError> {
    let claims = token::verify_ignoring_expiry(rejoin_token, &token::public_key_bytes(key))
        .map_err(|e| {
            let why = match e {
                TokenError::BadSignature => "its signature is not valid",
                _ => "it is malformed",
            };
            ApiError::new(
                ErrorCode::TokenInvalid,
                format!("the rejoin token was refused: {why}"),
            )
        })?;
    if claims.room_id != room.id {
        return Err(ApiError::new(
            ErrorCode::TokenInvalid,
            "the rejoin token was refused: it is for another meeting",
        ));
    }
    if now_ms.saturating_sub(claims.issued_at_ms) > REJOIN_MAX_AGE_MS {
        return Err(ApiError::new(
            ErrorCode::TokenExpired,
            format!(
                "the rejoin token was refused: it is more than {} minutes old; join without it",
                REJOIN_MAX_AGE_MS / 60_000
            ),
        ));
    }
    let Some(seat) = claims.seat.as_deref() else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the rejoin token was refused: it was issued without a rejoin secret; join without it",
        ));
    };
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "a rejoin needs the rejoin_secret that came with the rejoin token's join response",
        ));
    };
    if !secrets_match(token::seat_of(secret).as_bytes(), seat.as_bytes()) {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the rejoin_secret does not belong to the rejoin token",
        ));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veche_protocol::{NodeId, ParticipantId, RoomSlug};

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn room(id: u64) -> Room {
        Room {
            id: veche_protocol::RoomId(id),
            slug: RoomSlug::from_random([id as u8; 16]),
            name: "Standup".into(),
            created_at_ms: 0,
            owner: None,
            owner_key_hash: None,
            access: Default::default(),
            e2ee: false,
        }
    }

    const SECRET: &str = "the-secret-of-the-first-join-response";

    /// A token for `room` issued at `issued_at_ms`, valid for a minute,
    /// bound to `seat`.
    fn token_with(
        key: &Ed25519KeyPair,
        room: &Room,
        issued_at_ms: u64,
        seat: Option<String>,
    ) -> String {
        token::sign(
            &JoinClaims {
                room_id: room.id,
                room_slug: room.slug.clone(),
                room_name: room.name.clone(),
                e2ee: room.e2ee,
                participant_id: ParticipantId::from_random([7; 8]),
                display_name: "Ada".into(),
                node_id: NodeId(1),
                issued_at_ms,
                expires_at_ms: issued_at_ms + 60_000,
                room_nodes: Vec::new(),
                rejoin: false,
                seat,
                user: None,
                guest: false,
                pass: None,
                role: Default::default(),
                lobby: false,
                ice_servers: Vec::new(),
            },
            key,
        )
    }

    fn token(key: &Ed25519KeyPair, room: &Room, issued_at_ms: u64) -> String {
        token_with(key, room, issued_at_ms, Some(token::seat_of(SECRET)))
    }

    #[test]
    fn a_rejoin_token_is_accepted_expired_but_not_older_than_the_limit() {
        let k = key();
        let r = room(1);
        let issued = 1_000_000;
        let t = token(&k, &r, issued);
        let ada = ParticipantId::from_random([7; 8]);
        // Long expired, still within the rejoin age: the same participant.
        let at_limit = issued + REJOIN_MAX_AGE_MS;
        assert_eq!(
            rejoining_participant(&t, Some(SECRET), &k, &r, at_limit)
                .unwrap()
                .participant_id,
            ada
        );
        let too_old = rejoining_participant(&t, Some(SECRET), &k, &r, at_limit + 1).unwrap_err();
        assert_eq!(too_old.0.code, ErrorCode::TokenExpired, "{too_old:?}");
    }

    #[test]
    fn a_rejoin_token_of_another_room_or_key_or_shape_is_invalid() {
        let k = key();
        let r = room(1);
        let now = 2_000_000;
        let cases = [
            ("another room", token(&k, &room(2), now)),
            ("another key", token(&key(), &r, now)),
            ("garbage", "v1.%%%.%%%".to_owned()),
        ];
        for (what, t) in cases {
            let e = rejoining_participant(&t, Some(SECRET), &k, &r, now).unwrap_err();
            assert_eq!(e.0.code, ErrorCode::TokenInvalid, "{what}: {e:?}");
            assert!(e.0.message.contains("rejoin token"), "{what}: {e:?}");
        }
    }

    #[test]
    fn a_leaked_token_without_its_secret_takes_no_seat() {
        let k = key();
        let r = room(1);
        let now = 3_000_000;
        let t = token(&k, &r, now);
        for (what, secret) in [
            ("no secret", None),
            ("an empty secret", Some("")),
            (
                "a wrong secret",
                Some("the-secret-of-the-first-join-responsE"),
            ),
            ("the seat itself", Some(&*token::seat_of(SECRET))),
        ] {
            let e = rejoining_participant(&t, secret, &k, &r, now).unwrap_err();
            assert_eq!(e.0.code, ErrorCode::Unauthorized, "{what}: {e:?}");
            assert!(e.0.message.contains("rejoin_secret"), "{what}: {e:?}");
        }
        assert!(rejoining_participant(&t, Some(SECRET), &k, &r, now).is_ok());
    }

    #[test]
    fn a_token_from_before_rejoin_secrets_cannot_rejoin() {
        let k = key();
        let r = room(1);
        let t = token_with(&k, &r, 0, None);
        let e = rejoining_participant(&t, Some(SECRET), &k, &r, 0).unwrap_err();
        assert_eq!(e.0.code, ErrorCode::Unauthorized, "{e:?}");
        assert!(e.0.message.contains("join without it"), "{e:?}");
    }

    #[test]
    fn secrets_are_32_random_bytes_in_base64url() {
        let s = encode_secret([0xff; 32]);
        assert_eq!(s.len(), 43);
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}
