//! The single sign-on routes: `GET /auth/oidc/login` sends the browser to
//! the provider, `GET /auth/oidc/callback` brings it back signed in. The
//! web client learns whether to offer "Sign in with {provider}" from
//! `GET /api/me` (`sign_in.sso_provider`), and the RP-initiated logout URL
//! from sign-out's answer (`api::auth`).
//! The flow itself is in [`crate::oidc`]; what a verified identity becomes
//! (a user, a session) is [`sign_in`]'s one call into the accounts store.
//!
//! Both browser routes answer errors as a short human page (they are
//! top-level navigations), or as the API's JSON `ErrorBody` to a client
//! that asks for JSON. No answer and no log line carries a code, a token or
//! the client secret.

use super::auth::start_session;
use super::edge::{Edge, RouteClass};
use super::public_base;
use crate::error::ApiError;
use crate::oidc::pending::{self, check_return_to};
use crate::oidc::{Identity, Sso, SsoError};
use crate::secret::secrets_match;
use crate::store::accounts::{AccountCommand, OidcLink, SessionSource};
use crate::store::{AccountStore, StoreError};
use crate::ControlPlane;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use axum::Router;
use serde::Deserialize;
use std::sync::Arc;
use veche_protocol::limits::http::SSO_LOGIN_TTL_MS;
use veche_protocol::ErrorCode;

/// The callback path registered at the provider (after the public URL).
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";
/// The path that starts a sign-in.
pub const LOGIN_PATH: &str = "/auth/oidc/login";

/// The SSO routes, behind their own rate limit; none without `[oidc]`, so
/// a server without single sign-on shows nothing of it.
pub(super) fn routes(cp: &ControlPlane, edge: Arc<Edge>) -> Router<Arc<ControlPlane>> {
    if cp.sso.is_none() {
        return Router::new();
    }
    let limited =
        || middleware::from_fn_with_state((edge.clone(), RouteClass::Sso), super::edge::rate_limit);
    Router::new()
        .route(LOGIN_PATH, get(login).layer(limited()))
        .route(CALLBACK_PATH, get(callback).layer(limited()))
}

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    return_to: Option<String>,
}

/// `GET /auth/oidc/login?return_to=/r/slug`: 303 to the provider, with the
/// sealed pending login in a cookie for the callback.
pub(super) async fn login(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let Some(sso) = cp.sso.as_ref() else {
        return not_configured();
    };
    let return_to = match check_return_to(q.return_to.as_deref()) {
        Ok(r) => r,
        Err(e) => return failure(&headers, &e, false),
    };
    let base = public_base(&cp, &headers);
    let secure = base.starts_with("https://");
    match sso
        .begin(
            &format!("{base}{CALLBACK_PATH}"),
            return_to,
            crate::now_ms(),
        )
        .await
    {
        Ok(start) => {
            sso.count("started");
            let cookie = pending::set_cookie(&start.sealed_pending, SSO_LOGIN_TTL_MS, secure);
            redirect(&start.authorize_url, &[cookie])
        }
        Err(e) => {
            sso.count("provider_unavailable");
            failure(&headers, &e, secure)
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/oidc/callback`: checks the state against the sealed pending
/// login, exchanges the code (PKCE), verifies the ID token and its nonce,
/// signs the user in and sends them to where they started. The pending
/// cookie is cleared whatever the outcome: it is single-use.
pub(super) async fn callback(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(sso) = cp.sso.as_ref() else {
        return not_configured();
    };
    let base = public_base(&cp, &headers);
    let secure = base.starts_with("https://");
    let now = crate::now_ms();
    match finish(&cp, sso, &headers, q, &base, now).await {
        Ok((return_to, session_cookie)) => {
            sso.count("signed_in");
            redirect(&return_to, &[pending::clear_cookie(secure), session_cookie])
        }
        Err(Failure::Sso(e)) => {
            sso.count(outcome(&e));
            tracing::info!(error = %e, "single sign-on refused");
            failure(&headers, &e, secure)
        }
        Err(Failure::Api(e)) => {
            sso.count("session_failed");
            let mut resp = e.into_response();
            add_cookie(&mut resp, &pending::clear_cookie(secure));
            resp
        }
    }
}

enum Failure {
    Sso(SsoError),
    Api(ApiError),
}

impl From<SsoError> for Failure {
    fn from(e: SsoError) -> Self {
        Failure::Sso(e)
    }
}

async fn finish(
    cp: &Arc<ControlPlane>,
    sso: &Sso,
    headers: &HeaderMap,
    q: CallbackQuery,
    base: &str,
    now: u64,
) -> Result<(String, String), Failure> {
    if let Some(error) = q.error {
        let text = provider_error_text(&error, q.error_description.as_deref());
        return Err(SsoError::Refused(text).into());
    }
    let sealed = super::auth::cookie(headers, pending::COOKIE_NAME).ok_or(SsoError::BadState)?;
    let login = sso.pending_key().open(sealed, now)?;
    let state_ok = q
        .state
        .as_deref()
        .is_some_and(|s| secrets_match(s.as_bytes(), login.csrf_state.as_bytes()));
    if !state_ok {
        return Err(SsoError::BadState.into());
    }
    let code = q
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| SsoError::InvalidResponse("the callback carries no code".into()))?;
    let identity = sso
        .finish(&login, &code, &format!("{base}{CALLBACK_PATH}"), now)
        .await?;
    let is_admin = identity.is_admin(sso.config().admin_group.as_deref());
    let cookie = sign_in(cp, &identity, is_admin, now)
        .await
        .map_err(Failure::Api)?;
    Ok((login.return_to, cookie))
}

/// Makes the verified `identity` a Veche user (created on first sign-in,
/// updated on later ones: name, email, administrator or not) and starts
/// their session. Returns the session's `Set-Cookie` value. An existing
/// password account with the same email is linked only when the provider
/// says the email is verified; otherwise the sign-in is refused, so a
/// provider account cannot take over someone else's Veche account.
async fn sign_in(
    cp: &Arc<ControlPlane>,
    identity: &Identity,
    is_admin: bool,
    now: u64,
) -> Result<String, ApiError> {
    let user = cp
        .replicated()
        .account_user(AccountCommand::ProvisionOidcUser {
            link: OidcLink {
                issuer: identity.issuer.clone(),
                subject: identity.subject.clone(),
            },
            email: identity.email.clone(),
            display_name: identity.name.clone(),
            is_admin,
            link_by_email: identity.email_verified,
            now_ms: now,
        })
        .await
        .map_err(|e| match e {
            StoreError::Refused(_) => ApiError::new(
                ErrorCode::Forbidden,
                "another Veche account already uses this email address, and the sign-in \
                 provider does not say the address is verified; ask an administrator",
            ),
            other => super::write_error(other),
        })?;
    tracing::info!(user = %user.id, is_admin, "signed in through SSO");
    let cookie = start_session(cp, user.id, SessionSource::Oidc, now).await?;
    Ok(cookie.to_str().unwrap_or_default().to_owned())
}

/// The provider's `error` (an OAuth code such as `access_denied`) and its
/// description, kept to printable text of a bounded length: it is shown to
/// the user and comes from the query string.
fn provider_error_text(error: &str, description: Option<&str>) -> String {
    let clean = |s: &str, max: usize| -> String {
        s.chars().filter(|c| !c.is_control()).take(max).collect()
    };
    let mut text = if error == "access_denied" {
        "access was denied (access_denied)".to_owned()
    } else {
        clean(error, 64)
    };
    if let Some(d) = description.filter(|d| !d.trim().is_empty()) {
        text.push_str(": ");
        text.push_str(&clean(d, 200));
    }
    text
}

fn outcome(e: &SsoError) -> &'static str {
    match e {
        SsoError::ProviderUnavailable(_) => "provider_unavailable",
        SsoError::Refused(_) => "refused",
        SsoError::BadState => "bad_state",
        SsoError::Expired => "expired",
        SsoError::InvalidResponse(_) => "invalid_response",
        SsoError::BadReturnTo => "bad_return_to",
    }
}

fn redirect(location: &str, cookies: &[String]) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
    // The callback URL holds the code; the next page must not send it on.
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        add_cookie(&mut resp, c);
    }
    resp
}

fn add_cookie(resp: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// Unreachable in practice: the routes are mounted only with `[oidc]`.
fn not_configured() -> Response {
    (StatusCode::NOT_FOUND, "single sign-on is not configured").into_response()
}

/// The answer to a failed sign-in: a page saying what happened and
/// offering to start again, or the JSON error to an API client. The
/// pending cookie is cleared.
fn failure(headers: &HeaderMap, e: &SsoError, secure: bool) -> Response {
    let code = e.code();
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = if wants_json(headers) {
        (status, Json(ApiError::new(code, e.to_string()).0)).into_response()
    } else {
        let retry = !matches!(e, SsoError::BadReturnTo);
        page(status, &e.to_string(), retry.then_some(LOGIN_PATH))
    };
    add_cookie(&mut resp, &pending::clear_cookie(secure));
    resp
}

fn page(status: StatusCode, message: &str, retry: Option<&str>) -> Response {
    let retry = retry
        .map(|href| format!(r#" <a href="{href}">Try again</a> ·"#))
        .unwrap_or_default();
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Sign-in failed · Veche</title></head><body>\
         <h1>Sign-in failed</h1><p role=\"alert\">{}</p>\
         <p>{retry} <a href=\"/\">Back to Veche</a></p></body></html>\n",
        escape_html(message)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_consent_reads_plainly_and_provider_text_is_bounded() {
        assert_eq!(
            provider_error_text("access_denied", None),
            "access was denied (access_denied)"
        );
        let long = "x".repeat(1000);
        let t = provider_error_text("server_error", Some(&format!("bad\n{long}")));
        assert!(t.starts_with("server_error: badx") && t.chars().count() < 300);
    }

    #[test]
    fn provider_text_is_escaped_in_the_page() {
        assert_eq!(
            escape_html(r#"<script>"x"&'y'"#),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;"
        );
    }
}
