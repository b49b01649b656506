//! Join tokens: short-lived, Ed25519-signed permission to join one room as
//! one participant on one media node.
//!
//! Format: `v1.<base64url(JSON claims)>.<base64url(signature)>`, where the
//! signature covers the ASCII bytes of `v1.<base64url(JSON claims)>`. JSON
//! rather than MessagePack so an operator can decode a token by hand.
//!
//! The control plane holds the private key; media nodes hold only the public
//! key, so a compromised media node cannot mint tokens.

use crate::ids::{NodeId, ParticipantId, RoomId, RoomSlug};
use crate::UnixMillis;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "v1.";

/// Longest token accepted, so a hostile client cannot make the node decode
/// megabytes of base64.
pub const MAX_TOKEN_LEN: usize = 4096;

/// What a join token grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClaims {
    /// The room to join.
    pub room_id: RoomId,
    /// The room's slug, so the node can show the room without another
    /// lookup.
    pub room_slug: RoomSlug,
    /// The room's name at the time of joining.
    pub room_name: String,
    /// True for an end-to-end encrypted room: the node relays the MLS
    /// handshake and refuses plaintext chat there (`crate::e2ee`).
    #[serde(default)]
    pub e2ee: bool,
    /// The participant id the control plane assigned.
    pub participant_id: ParticipantId,
    /// The name to show to others.
    pub display_name: String,
    /// The media node this token is valid on.
    pub node_id: NodeId,
    /// When the token was issued.
    pub issued_at_ms: UnixMillis,
    /// After this instant the token is refused.
    pub expires_at_ms: UnixMillis,
    /// The other media nodes hosting the room when this participant was
    /// placed. The node links to them so the room spans nodes at once,
    /// without waiting for a heartbeat. Nodes placed later link to this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub room_nodes: Vec<crate::rpc::RelayPeer>,
    /// True when the participant comes back after losing their media node
    /// (or being moved off a drained one): others keep seeing them as
    /// reconnecting until their media flows again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rejoin: bool,
    /// [`seat_of`] the `rejoin_secret` handed out with this token
    /// (base64url SHA-256). A later rejoin with this token must present the
    /// secret itself, so a token that leaked (from a log, a screenshot, a
    /// shared device) cannot take the seat over: the secret was only ever
    /// in the join response. Media nodes ignore it. Absent in tokens from
    /// before rejoin secrets existed, which therefore cannot rejoin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
    /// The signed-in account the participant joined as, if any; their
    /// display name is then the profile's, not one they typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<crate::ids::UserId>,
    /// Shown as a guest to others: joined without an account in a room
    /// whose owner has one (a pass holder, or an anonymous joiner of an
    /// open room of the organisation). Media nodes carry it into
    /// [`crate::signal::ParticipantInfo::guest`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guest: bool,
    /// The guest pass that admitted the participant, so that a rejoin with
    /// this token is checked against the pass again (a revoked or expired
    /// pass admits no rejoin). Media nodes ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<crate::pass::PassId>,
    /// The role the control plane determined at issue: host for the owner
    /// (signed in, or presenting the owner key), guest for guests,
    /// participant otherwise. Nodes raise it with the room's policy
    /// ([`crate::moderation::RoomPolicy::role_of`]).
    #[serde(default)]
    pub role: crate::moderation::Role,
    /// The room's lobby is on and this joiner is neither host nor
    /// moderator: the node puts them in the lobby instead of the meeting,
    /// until the room's policy admits them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lobby: bool,
    /// TURN servers with this participant's own short-lived credential
    /// ([`crate::turn::TurnConfig::ice_server_for`]), which the media node
    /// appends to its STUN servers in `joined`. The control plane mints
    /// them as it signs the token, so the TURN secret stays on the control
    /// plane and media nodes need none: the token is already per
    /// participant and signed, and a browser gets a new one (so a fresh
    /// credential) for every join and resume. Empty without TURN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<crate::signal::IceServer>,
}

/// The `seat` claim for a rejoin secret: base64url (no padding) of the
/// SHA-256 of the secret's ASCII bytes. Only the hash goes into the token,
/// which is readable by anyone holding it; the secret stays with the client.
pub fn seat_of(rejoin_secret: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, rejoin_secret.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not in the `v1.<claims>.<sig>` shape, or not valid base64/JSON.
    #[error("token is malformed")]
    Malformed,
    /// The signature does not match the claims under the trusted key.
    #[error("token signature is not valid")]
    BadSignature,
    /// Signed correctly but past `expires_at_ms`.
    #[error("token expired")]
    Expired,
    /// Signed for a different media node.
    #[error("token is for another media node")]
    WrongNode,
}

impl TokenError {
    /// The wire error code for this refusal.
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            TokenError::Expired => crate::ErrorCode::TokenExpired,
            _ => crate::ErrorCode::TokenInvalid,
        }
    }
}

/// Signs claims with a private key. The key pair is passed in so that key
/// generation and storage (which need randomness and disk) stay outside.
pub fn sign(claims: &JoinClaims, key: &Ed25519KeyPair) -> String {
    let json = serde_json::to_vec(claims).expect("claims always serialise");
    let mut out = String::with_capacity(PREFIX.len() + json.len() * 2 + 90);
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(json, &mut out);
    let sig = key.sign(out.as_bytes());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut out);
    out
}

/// The raw 32-byte Ed25519 public key of a key pair, as nodes store it.
pub fn public_key_bytes(key: &Ed25519KeyPair) -> Vec<u8> {
    key.public_key().as_ref().to_vec()
}

/// Verifies a token against a trusted public key, the node's own id and the
/// current time, in that order of cheapness after parsing.
pub fn verify(
    token: &str,
    public_key: &[u8],
    node_id: NodeId,
    now_ms: UnixMillis,
) -> Result<JoinClaims, TokenError> {
    let claims = verify_ignoring_expiry(token, public_key)?;
    if claims.node_id != node_id {
        return Err(TokenError::WrongNode);
    }
    if now_ms >= claims.expires_at_ms {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Checks a token's shape and signature only, and returns its claims
/// whatever node they name and however long ago they expired.
///
/// For the control plane, which takes an old token as proof of who a
/// participant was (`JoinRequest::rejoin_token`) and applies its own age
/// limit to `issued_at_ms`. A media node admitting someone must use
/// [`verify`].
pub fn verify_ignoring_expiry(token: &str, public_key: &[u8]) -> Result<JoinClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
    let (claims_b64, sig_b64) = rest.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let signed_len = PREFIX.len() + claims_b64.len();
    let sig = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| TokenError::Malformed)?;
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(&token.as_bytes()[..signed_len], &sig)
        .map_err(|_| TokenError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(claims_b64)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn claims() -> JoinClaims {
        JoinClaims {
            room_id: RoomId(7),
            room_slug: RoomSlug::from_random([1; 16]),
            room_name: "Standup".into(),
            e2ee: false,
            participant_id: ParticipantId::from_random([2; 8]),
            display_name: "Ada".into(),
            node_id: NodeId(1),
            issued_at_ms: 1_000,
            expires_at_ms: 61_000,
            room_nodes: Vec::new(),
            rejoin: false,
            seat: Some(seat_of("s3cret")),
            user: None,
            guest: false,
            pass: None,
            role: Default::default(),
            lobby: false,
            ice_servers: Vec::new(),
        }
    }

    #[test]
    fn a_signed_token_verifies_before_expiry() {
        let k = key();
        let t = sign(&claims(), &k);
        assert_eq!(
            verify(&t, &public_key_bytes(&k), NodeId(1), 60_999),
            Ok(claims())
        );
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let k = key();
        let t = sign(&claims(), &k);
        assert_eq!(
            verify(&t, &public_key_bytes(&k), NodeId(1), 61_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused() {
        let t = sign(&claims(), &key());
        assert_eq!(
            verify(&t, &public_key_bytes(&key()), NodeId(1), 2_000),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_claims_break_the_signature() {
        let k = key();
        let t = sign(&claims(), &k);
        let mut forged = claims();
        forged.expires_at_ms = u64::MAX;
        let forged_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let sig = t.rsplit_once('.').unwrap().1;
        let t2 = format!("v1.{forged_b64}.{sig}");
        assert_eq!(
            verify(&t2, &public_key_bytes(&k), NodeId(1), 2_000),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_and_wrong_node_are_refused() {
        let k = key();
        let pk = public_key_bytes(&k);
        for bad in ["", "v1.", "v1.abc", "v2.a.b", "v1.!!!.???"] {
            assert!(verify(bad, &pk, NodeId(1), 0).is_err(), "{bad}");
        }
        let t = sign(&claims(), &k);
        assert_eq!(
            verify(&t, &pk, NodeId(2), 2_000),
            Err(TokenError::WrongNode)
        );
        assert_eq!(
            verify(&"x".repeat(MAX_TOKEN_LEN + 1), &pk, NodeId(1), 0),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn the_seat_is_the_base64url_sha256_of_the_secret_and_round_trips() {
        // SHA-256("abc"), a published test vector.
        assert_eq!(
            seat_of("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert_ne!(seat_of("abc"), seat_of("abd"));
        let k = key();
        let t = sign(&claims(), &k);
        let back = verify_ignoring_expiry(&t, &public_key_bytes(&k)).unwrap();
        assert_eq!(back.seat, Some(seat_of("s3cret")));
    }

    #[test]
    fn verify_ignoring_expiry_accepts_an_old_token_for_any_node_but_not_a_forged_one() {
        let k = key();
        let pk = public_key_bytes(&k);
        let t = sign(&claims(), &k);
        // Expired long ago and issued for node 1: still its claims.
        assert_eq!(verify_ignoring_expiry(&t, &pk), Ok(claims()));
        assert_eq!(
            verify_ignoring_expiry(&t, &public_key_bytes(&key())),
            Err(TokenError::BadSignature)
        );
        for bad in ["", "v1.", "v1.abc", "v2.a.b", "v1.!!!.???"] {
            assert!(verify_ignoring_expiry(bad, &pk).is_err(), "{bad}");
        }
    }
}
