//! Sessions on the HTTP edge: the cookie, the extractors that say who a
//! request comes from, `GET /api/me` and sign-out.
//!
//! The cookie holds 32 random bytes; the store keeps only their SHA-256
//! (`store::accounts`), so the cookie is the only copy of the credential.
//! It is `HttpOnly` (no script reads it, so an injected script cannot
//! steal it), `SameSite=Lax` (a cross-site form post carries no cookie, the
//! CSRF defence, with the `Origin` check below as a second one), and
//! `Secure` when Veche is served over https.

use super::edge::Body;
use crate::error::ApiError;
pub(crate) use crate::secret::token_hash;
use crate::store::accounts::{AccountCommand, Session, SessionSource, User};
use crate::store::AccountStore;
use crate::ControlPlane;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use std::sync::Arc;
use veche_protocol::account::{Me, SignInOptions, SignedOut, UserView, SESSION_COOKIE};
use veche_protocol::limits::accounts::SESSION_TTL_MS;
use veche_protocol::{ErrorCode, UnixMillis, UserId};

/// The value of `name` in a `Cookie` header, if present. Several `Cookie`
/// headers are allowed (HTTP/2 splits them).
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether cookies must carry `Secure`: when the public URL is https.
fn secure(cp: &ControlPlane) -> bool {
    cp.config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
}

/// A `Set-Cookie` value for the session cookie.
fn session_cookie(cp: &ControlPlane, token: &str, max_age_s: u64) -> HeaderValue {
    let secure = if secure(cp) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    ))
    .expect("the cookie is ASCII without control characters")
}

/// Starts a session for `user` and returns the `Set-Cookie` header value
/// that hands it to the browser.
pub(crate) async fn start_session(
    cp: &Arc<ControlPlane>,
    user: UserId,
    source: SessionSource,
    now_ms: UnixMillis,
) -> Result<HeaderValue, ApiError> {
    let token: [u8; 32] = crate::random_bytes();
    let session = Session {
        token_hash: token_hash(&token),
        user_id: user,
        source,
        created_at_ms: now_ms,
        expires_at_ms: now_ms + SESSION_TTL_MS,
    };
    cp.replicated()
        .account(AccountCommand::CreateSession(session))
        .await?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token);
    Ok(session_cookie(cp, &token, SESSION_TTL_MS / 1000))
}

/// A `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_session_cookie(cp: &ControlPlane) -> HeaderValue {
    session_cookie(cp, "", 0)
}

/// A signed-in request: the user and the session it came with.
#[derive(Clone, Debug)]
pub(crate) struct SignedIn {
    /// Who.
    pub user: User,
    /// The session the cookie named.
    pub session: Session,
}

/// Who a request comes from: a signed-in user, or nobody. A cookie that
/// names no live session (expired, signed out, account deleted) is
/// anonymous, not an error: the page then offers to sign in.
#[derive(Clone, Debug)]
pub(crate) struct Viewer(pub Option<SignedIn>);

impl FromRequestParts<Arc<ControlPlane>> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        cp: &Arc<ControlPlane>,
    ) -> Result<Self, ApiError> {
        let Some(raw) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Ok(Viewer(None));
        };
        let Ok(token) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw) else {
            return Ok(Viewer(None));
        };
        if !same_origin(&parts.method, &parts.headers) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this request came from another site; Veche only accepts it from its own pages",
            ));
        }
        let found = cp
            .replicated()
            .session(token_hash(&token), crate::now_ms())
            .await?;
        Ok(Viewer(
            found.map(|(session, user)| SignedIn { user, session }),
        ))
    }
}

/// A request that must come from a signed-in user: anonymous requests are
/// refused with `401 unauthorized`.
pub(crate) struct RequireUser(pub SignedIn);

impl FromRequestParts<Arc<ControlPlane>> for RequireUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        cp: &Arc<ControlPlane>,
    ) -> Result<Self, ApiError> {
        match Viewer::from_request_parts(parts, cp).await?.0 {
            Some(s) => Ok(RequireUser(s)),
            None => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "sign in first: this needs an account",
            )),
        }
    }
}

/// A request that must come from an administrator: anonymous requests get
/// `401`, signed-in non-administrators `403`.
pub(crate) struct RequireAdmin(pub SignedIn);

impl FromRequestParts<Arc<ControlPlane>> for RequireAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        cp: &Arc<ControlPlane>,
    ) -> Result<Self, ApiError> {
        let RequireUser(s) = RequireUser::from_request_parts(parts, cp).await?;
        if !s.user.is_admin {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only administrators may do this",
            ));
        }
        Ok(RequireAdmin(s))
    }
}

/// Whether a cookie-carrying request that changes something comes from
/// Veche's own pages: its `Origin`, when the browser sends one, names the
/// host the request was sent to. Safe methods are always allowed.
pub(crate) fn same_origin(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    origin_host.is_some() && origin_host == host
}

/// How a user is shown to themselves and to others.
pub(crate) fn user_view(user: &User) -> UserView {
    UserView {
        id: user.id,
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        is_admin: user.is_admin,
        avatar_url: user
            .avatar
            .as_ref()
            .map(|a| format!("/api/users/{}/avatar?v={}", user.id, a.key)),
        sso: user.oidc.is_some(),
    }
}

/// The sign-in options of this server.
pub(crate) fn sign_in_options(cp: &ControlPlane) -> SignInOptions {
    SignInOptions {
        password: true,
        sso_provider: cp.sso.as_ref().map(|s| s.config().provider_name.clone()),
    }
}

/// `GET /api/me`.
pub(super) async fn me(State(cp): State<Arc<ControlPlane>>, viewer: Viewer) -> Json<Me> {
    Json(Me {
        user: viewer.0.map(|s| user_view(&s.user)),
        sign_in: sign_in_options(&cp),
    })
}

/// `POST /api/auth/logout`: ends this browser's session and clears the
/// cookie. Signing out when not signed in succeeds too (the page's state
/// may be stale), so the answer is always the same.
pub(super) async fn logout(
    State(cp): State<Arc<ControlPlane>>,
    viewer: Viewer,
    headers: HeaderMap,
    Body(_): Body,
) -> Result<Response, ApiError> {
    let mut signed_out = SignedOut::default();
    if let Some(s) = &viewer.0 {
        cp.replicated()
            .account(AccountCommand::RevokeSession {
                token_hash: s.session.token_hash,
            })
            .await?;
        // A session from single sign-on ends the provider's session too
        // (RP-initiated logout), so the next person at this browser is not
        // signed straight back in.
        if let (SessionSource::Oidc, Some(sso)) = (s.session.source, cp.sso.as_ref()) {
            let home = format!("{}/", super::public_base(&cp, &headers));
            signed_out.logout_url = sso.logout_url(Some(&home), crate::now_ms()).await;
        }
    }
    let mut resp = Json(signed_out).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, clear_session_cookie(&cp));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; veche_session=tok".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1".parse().unwrap());
        h.append(header::COOKIE, "veche_session=x".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("x"));
        assert_eq!(cookie(&HeaderMap::new(), SESSION_COOKIE), None);
    }

    #[test]
    fn a_cross_site_post_with_a_cookie_is_not_same_origin() {
        let h = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, "meet.example:8080".parse().unwrap());
            if let Some(o) = origin {
                h.insert(header::ORIGIN, o.parse().unwrap());
            }
            h
        };
        assert!(same_origin(
            &Method::POST,
            &h(Some("https://meet.example:8080"))
        ));
        assert!(same_origin(&Method::POST, &h(None)));
        assert!(!same_origin(
            &Method::POST,
            &h(Some("https://evil.example"))
        ));
        assert!(!same_origin(&Method::POST, &h(Some("null"))));
        assert!(same_origin(&Method::GET, &h(Some("https://evil.example"))));
    }
}
