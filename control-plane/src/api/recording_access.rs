//! Who may see and manage a recording, and the signed share links that
//! let anyone holding one play it.
//!
//! - **Manage** (delete, make share links; implies view): the room's owner
//!   (signed in as its owner, or presenting its owner key, as every
//!   owner-only route: `owner::owns`) and administrators.
//! - **View**: the signed-in account that started the recording, and
//!   whoever presents a valid share token (`?share=`).
//! - Anyone else: `401` when anonymous (they may sign in), `403` when
//!   signed in.
//!
//! A share token is `<expiry ms>.<base64url HMAC-SHA256>` over the
//! recording id and the expiry, under a key derived from the cluster
//! secret with HKDF (as the pending-login cookies' key is), so every
//! control-plane node checks what any other minted, and nothing is stored.
//! Compared in constant time (`ring::hmac::verify`). The token never goes
//! into a log line.

use super::auth::Viewer;
use super::owner;
use crate::error::ApiError;
use crate::store::recordings::Recording;
use crate::store::Store;
use crate::ControlPlane;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, Method, Request};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::hmac;
use std::sync::Arc;
use veche_protocol::recording::RecordingId;
use veche_protocol::{ErrorCode, UnixMillis};

/// What a requester may do with a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordingRight {
    /// Play, download, export.
    View,
    /// Also delete it and make share links.
    Manage,
}

/// The refusal of an anonymous requester.
pub(crate) const SIGN_IN: &str =
    "sign in to see this recording, or open it with a share link from the room's owner";
/// The refusal of a signed-in requester with no right.
pub(crate) const NOT_YOURS: &str = "only the room's owner, an administrator or whoever started \
     the recording may see it; ask the owner for a share link";
/// The refusal of a manager-only action to a viewer.
pub(crate) const MANAGERS_ONLY: &str =
    "only the room's owner or an administrator may delete a recording or share it";

const HKDF_SALT: &[u8] = b"veche recording share links";
const HKDF_INFO: &[u8] = b"veche recording share v1";

/// The key share tokens are signed with. The same on every node of a
/// cluster, since it is derived from the cluster secret.
pub struct ShareKey(hmac::Key);

impl ShareKey {
    /// Derives the key from the cluster secret with HKDF-SHA256.
    pub fn derive(cluster_secret: &str) -> Self {
        let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(cluster_secret.as_bytes());
        let okm = prk
            .expand(&[HKDF_INFO], hmac::HMAC_SHA256)
            .expect("one block is a valid HKDF-SHA256 output length");
        ShareKey(hmac::Key::from(okm))
    }

    /// The key of this control plane.
    pub fn of(cp: &ControlPlane) -> Self {
        Self::derive(&cp.config.cluster_secret)
    }
}

/// What a token signs: the recording and the expiry, unambiguously.
fn signed_text(id: &RecordingId, expires_at_ms: UnixMillis) -> String {
    format!("veche-recording-share\0{id}\0{expires_at_ms}")
}

/// A token granting view of `id` until `expires_at_ms`.
pub fn share_token(key: &ShareKey, id: &RecordingId, expires_at_ms: UnixMillis) -> String {
    let tag = hmac::sign(&key.0, signed_text(id, expires_at_ms).as_bytes());
    format!("{expires_at_ms}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Whether `token` grants view of `id` at `now_ms`: well formed, signed
/// by this cluster for this recording, and not expired.
pub fn verify_share(key: &ShareKey, id: &RecordingId, token: &str, now_ms: UnixMillis) -> bool {
    let Some((expiry, tag)) = token.split_once('.') else {
        return false;
    };
    let Ok(expires_at_ms) = expiry.parse::<UnixMillis>() else {
        return false;
    };
    let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
        return false;
    };
    now_ms < expires_at_ms
        && hmac::verify(&key.0, signed_text(id, expires_at_ms).as_bytes(), &tag).is_ok()
}

/// The requester's right on `rec`, from who they are (`viewer`, the owner
/// key in `headers`) and the share token they presented, if any; `401` or
/// `403` with a message saying what would help.
pub(crate) async fn right_of(
    cp: &Arc<ControlPlane>,
    viewer: &Viewer,
    headers: &HeaderMap,
    share: Option<&str>,
    rec: &Recording,
) -> Result<RecordingRight, ApiError> {
    let user = viewer.0.as_ref().map(|s| &s.user);
    if user.is_some_and(|u| u.is_admin) {
        return Ok(RecordingRight::Manage);
    }
    let room = cp.replicated().room_by_id(rec.room_id).await?;
    if room
        .as_ref()
        .is_some_and(|r| owner::owns(r, user.map(|u| u.id), headers))
    {
        return Ok(RecordingRight::Manage);
    }
    if user.is_some_and(|u| rec.started_by_user == Some(u.id)) {
        return Ok(RecordingRight::View);
    }
    if share.is_some_and(|t| verify_share(&ShareKey::of(cp), &rec.id, t, crate::now_ms())) {
        return Ok(RecordingRight::View);
    }
    Err(match user {
        None => ApiError::new(ErrorCode::Unauthorized, SIGN_IN),
        Some(_) => ApiError::new(ErrorCode::Forbidden, NOT_YOURS),
    })
}

/// [`right_of`] for a `GET` whose handler has only the headers (the file
/// and export routes): the session cookie in `headers` is looked up here.
pub async fn recording_right(
    cp: &Arc<ControlPlane>,
    headers: &HeaderMap,
    share: Option<&str>,
    rec: &Recording,
) -> Result<RecordingRight, ApiError> {
    let (mut parts, ()) = Request::builder()
        .method(Method::GET)
        .body(())
        .expect("an empty GET request is valid")
        .into_parts();
    parts.headers = headers.clone();
    let viewer = Viewer::from_request_parts(&mut parts, cp).await?;
    right_of(cp, &viewer, headers, share, rec).await
}

/// `Ok` for a manager, `403` for a viewer.
pub(crate) fn require_manage(right: RecordingRight) -> Result<(), ApiError> {
    match right {
        RecordingRight::Manage => Ok(()),
        RecordingRight::View => Err(ApiError::new(ErrorCode::Forbidden, MANAGERS_ONLY)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_token_grants_its_recording_until_it_expires_and_nothing_else() {
        let key = ShareKey::derive("a-cluster-secret-of-at-least-32-bytes!!");
        let id = RecordingId::from_random([1; 8]);
        let other = RecordingId::from_random([2; 8]);
        let token = share_token(&key, &id, 10_000);
        assert!(verify_share(&key, &id, &token, 9_999));
        assert!(!verify_share(&key, &id, &token, 10_000), "expired");
        assert!(!verify_share(&key, &other, &token, 1), "another recording");
        let (_, tag) = token.split_once('.').unwrap();
        assert!(
            !verify_share(&key, &id, &format!("20000.{tag}"), 1),
            "a longer expiry is not signed"
        );
        let elsewhere = ShareKey::derive("another-cluster-secret-of-32-bytes-or-more");
        assert!(!verify_share(&elsewhere, &id, &token, 1), "another cluster");
        for junk in ["", ".", "x.y", "10000", "10000.", "10000.!!!"] {
            assert!(!verify_share(&key, &id, junk, 1), "{junk:?} was accepted");
        }
    }
}
