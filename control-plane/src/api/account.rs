//! A person's own account over HTTP: signing in with a password, signing
//! out everywhere, and the profile (name, password, avatar).
//!
//! Sign-in answers a wrong email and a wrong password with the same words
//! and in the same time (an unknown email is verified against a dummy
//! hash), so the form does not tell a guesser which emails have accounts.
//! Failures are counted per account and per address
//! ([`crate::accounts::login_limits`]); over the limit the answer is `429`
//! with `Retry-After`, even for the right password.

use super::auth::{
    clear_session_cookie, same_origin, start_session, user_view, RequireUser, SignedIn,
};
use super::edge::{Body, ClientAddr};
use super::{clean_name, parse_json, write_error};
use crate::accounts::login_limits::{Blocked, LoginLimiter};
use crate::accounts::passwords::{check_strength, user_inputs, Hasher};
use crate::avatars::{detect, AvatarStore, NotAnAvatar};
use crate::error::ApiError;
use crate::store::accounts::{AccountCommand, AccountOutput, AvatarRef, SessionSource, User};
use crate::store::AccountStore;
use crate::ControlPlane;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use prometheus::{IntCounterVec, Opts, Registry};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use veche_protocol::account::{
    LoginRequest, Me, PasswordChange, ProfileUpdate, SignedOutEverywhere, UserView,
};
use veche_protocol::limits::accounts::MAX_AVATAR_BYTES;
use veche_protocol::rpc::MAX_DISPLAY_NAME_CHARS;
use veche_protocol::{ErrorCode, UserId};

/// What the account routes share beyond the control plane: the hasher,
/// this node's sign-in failure counts, the avatar store and metrics.
pub(crate) struct Accounts {
    pub(crate) hasher: Hasher,
    login: Mutex<LoginLimiter>,
    /// The avatar store, or why it could not be opened (then avatar
    /// routes answer 503 and everything else works).
    avatars: Result<AvatarStore, String>,
    sign_ins: IntCounterVec,
    registry: Registry,
}

impl Accounts {
    /// The state for `cp`, with avatars in `cp`'s configured directory.
    pub(crate) fn new(cp: &ControlPlane) -> Self {
        let dir = cp
            .config
            .avatar_dir
            .clone()
            .unwrap_or_else(|| cp.config.data_dir.join("avatars"));
        let avatars = AvatarStore::local(&dir).map_err(|e| {
            tracing::error!("avatars are unavailable: {e}");
            e.to_string()
        });
        let registry =
            Registry::new_custom(Some("veche_cp".into()), None).expect("static prefix is valid");
        let sign_ins = IntCounterVec::new(
            Opts::new(
                "sign_ins_total",
                "Password sign-in attempts on this node, by result (ok, wrong, blocked)",
            ),
            &["result"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(sign_ins.clone()))
            .expect("unique metric");
        Accounts {
            hasher: Hasher::default(),
            login: Mutex::new(LoginLimiter::default()),
            avatars,
            sign_ins,
            registry,
        }
    }

    /// The metrics of the account routes, to serve at `/metrics`.
    pub(crate) fn metrics_registry(&self) -> Registry {
        self.registry.clone()
    }

    pub(crate) fn avatars(&self) -> Result<&AvatarStore, ApiError> {
        self.avatars.as_ref().map_err(|e| {
            ApiError::new(
                ErrorCode::Unavailable,
                format!("profile pictures are unavailable on this server: {e}"),
            )
        })
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, LoginLimiter> {
        self.login.lock().expect("lock poisoned")
    }
}

/// An email as stored: trimmed and lower-cased.
pub(crate) fn normalize_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// `429` for a blocked sign-in, with the reason and `Retry-After`.
fn blocked(b: Blocked) -> Response {
    let secs = b.retry_after_ms().div_ceil(1000).max(1);
    let mut resp = ApiError::new(ErrorCode::RateLimited, b.message()).into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
    resp
}

fn wrong_credentials() -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, "Wrong email or password")
}

fn client(addr: Option<Extension<ClientAddr>>) -> IpAddr {
    addr.map(|Extension(ClientAddr(a))| a)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// A response carrying `body` as JSON and a `Set-Cookie`.
fn with_cookie(body: impl IntoResponse, cookie: HeaderValue) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    resp
}

/// `POST /api/auth/login`.
#[tracing::instrument(skip_all)]
pub(super) async fn login(
    State(cp): State<Arc<ControlPlane>>,
    Extension(acc): Extension<Arc<Accounts>>,
    addr: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    // No cookie yet, so the session extractors' check does not run; a
    // page of another site must not sign a browser in to an account of
    // the attacker's choosing (login CSRF).
    if !same_origin(&Method::POST, &headers) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this sign-in came from another site; sign in on Veche's own page",
        ));
    }
    let req: LoginRequest = parse_json(&body)?;
    let email = normalize_email(&req.email);
    let address = client(addr);
    if let Err(b) = acc.limiter().check(&email, address, crate::now_ms()) {
        acc.sign_ins.with_label_values(&["blocked"]).inc();
        return Ok(blocked(b));
    }
    let user = cp.replicated().user_by_email(&email).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
    if !acc.hasher.verify(hash, &req.password).await {
        acc.limiter().failed(&email, address, crate::now_ms());
        acc.sign_ins.with_label_values(&["wrong"]).inc();
        return Err(wrong_credentials());
    }
    let user = user.expect("a verified password belongs to a user");
    acc.limiter().succeeded(&email);
    acc.sign_ins.with_label_values(&["ok"]).inc();
    let cookie = start_session(&cp, user.id, SessionSource::Password, crate::now_ms()).await?;
    tracing::info!(user = %user.id, "signed in with a password");
    let me = Me {
        user: Some(user_view(&user)),
        sign_in: super::auth::sign_in_options(&cp),
    };
    Ok(with_cookie(Json(me), cookie))
}

/// `POST /api/auth/logout-all`: ends every session of the user, this
/// browser's included.
pub(super) async fn logout_all(
    State(cp): State<Arc<ControlPlane>>,
    RequireUser(s): RequireUser,
    Body(_): Body,
) -> Result<Response, ApiError> {
    let ended = match cp
        .replicated()
        .account(AccountCommand::RevokeUserSessions { user_id: s.user.id })
        .await
        .map_err(write_error)?
    {
        AccountOutput::Removed(n) => n,
        _ => 0,
    };
    tracing::info!(user = %s.user.id, ended, "signed out everywhere");
    Ok(with_cookie(
        Json(SignedOutEverywhere {
            sessions_ended: ended,
        }),
        clear_session_cookie(&cp),
    ))
}

/// `GET /api/profile`.
pub(super) async fn profile(RequireUser(s): RequireUser) -> Json<UserView> {
    Json(user_view(&s.user))
}

/// Maps a refused account write to its answer: the user was deleted
/// meanwhile, or the email is taken.
pub(crate) fn account_write_error(e: crate::store::StoreError) -> ApiError {
    use crate::store::accounts::AccountRefusal;
    use crate::store::model::CommandError;
    match e {
        crate::store::StoreError::Refused(CommandError::Account(AccountRefusal::NoSuchUser)) => {
            ApiError::new(ErrorCode::BadRequest, "no such user (was it deleted?)")
        }
        crate::store::StoreError::Refused(CommandError::Account(AccountRefusal::EmailTaken)) => {
            ApiError::new(
                ErrorCode::InvalidState,
                "an account with this email already exists",
            )
        }
        e => write_error(e),
    }
}

/// `PUT /api/profile`: change one's display name.
pub(super) async fn update_profile(
    State(cp): State<Arc<ControlPlane>>,
    RequireUser(s): RequireUser,
    Body(body): Body,
) -> Result<Json<UserView>, ApiError> {
    let req: ProfileUpdate = parse_json(&body)?;
    let name = clean_name(&req.display_name, "display name", MAX_DISPLAY_NAME_CHARS)?;
    let user = cp
        .replicated()
        .account_user(AccountCommand::UpdateProfile {
            user_id: s.user.id,
            display_name: Some(name),
            avatar: None,
        })
        .await
        .map_err(account_write_error)?;
    Ok(Json(user_view(&user)))
}

/// Checks a new password and hashes it; the refusal says why.
pub(crate) async fn new_password_hash(
    acc: &Accounts,
    password: &str,
    email: &str,
    display_name: &str,
) -> Result<String, ApiError> {
    check_strength(password, &user_inputs(email, display_name))
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, capitalize(&e.to_string())))?;
    acc.hasher.hash(password).await.map_err(|e| {
        tracing::error!("{e}");
        ApiError::new(ErrorCode::Internal, "the password could not be stored")
    })
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `PUT /api/profile/password`: change one's password, proving the
/// current one. Every other session ends (whoever else was signed in with
/// the old password is out); this browser gets a fresh session.
pub(super) async fn change_password(
    State(cp): State<Arc<ControlPlane>>,
    Extension(acc): Extension<Arc<Accounts>>,
    addr: Option<Extension<ClientAddr>>,
    RequireUser(s): RequireUser,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: PasswordChange = parse_json(&body)?;
    let SignedIn { user, .. } = s;
    let address = client(addr);
    // Guessing the current password from a browser left signed in counts
    // against the same budget as guessing at the sign-in form.
    if let Err(b) = acc.limiter().check(&user.email, address, crate::now_ms()) {
        return Ok(blocked(b));
    }
    if !acc
        .hasher
        .verify(user.password_hash.as_deref(), &req.current)
        .await
    {
        acc.limiter().failed(&user.email, address, crate::now_ms());
        let msg = if user.password_hash.is_some() {
            "The current password is wrong"
        } else {
            "This account signs in through single sign-on and has no password to change"
        };
        return Err(ApiError::new(ErrorCode::Unauthorized, msg));
    }
    let hash = new_password_hash(&acc, &req.new, &user.email, &user.display_name).await?;
    let store = cp.replicated();
    store
        .account(AccountCommand::SetPassword {
            user_id: user.id,
            password_hash: hash,
        })
        .await
        .map_err(account_write_error)?;
    store
        .account(AccountCommand::RevokeUserSessions { user_id: user.id })
        .await
        .map_err(write_error)?;
    let cookie = start_session(&cp, user.id, SessionSource::Password, crate::now_ms()).await?;
    tracing::info!(user = %user.id, "password changed; other sessions ended");
    Ok(with_cookie(Json(user_view(&user)), cookie))
}

/// `POST /api/profile/avatar`: the body is the image. Its declared type
/// is ignored; [`detect`] decides by content.
pub(super) async fn upload_avatar(
    State(cp): State<Arc<ControlPlane>>,
    Extension(acc): Extension<Arc<Accounts>>,
    RequireUser(s): RequireUser,
    body: Result<Body, ApiError>,
) -> Result<Json<UserView>, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "The image is larger than {} MB",
                MAX_AVATAR_BYTES / (1024 * 1024)
            ),
        )
    };
    let bytes = match body {
        Ok(Body(b)) => b,
        Err(e) if e.0.code == ErrorCode::TooLarge => return Err(too_large()),
        Err(e) => return Err(e),
    };
    let kind = detect(&bytes).map_err(|e| match e {
        NotAnAvatar::TooLarge => too_large(),
        e => ApiError::new(ErrorCode::BadRequest, capitalize(&e.to_string())),
    })?;
    let store = acc.avatars()?;
    let key = crate::avatars::new_key(s.user.id);
    store.put(&key, bytes).await.map_err(avatar_store_error)?;
    let user = cp
        .replicated()
        .account_user(AccountCommand::UpdateProfile {
            user_id: s.user.id,
            display_name: None,
            avatar: Some(Some(AvatarRef {
                key,
                content_type: kind.content_type().to_owned(),
            })),
        })
        .await
        .map_err(account_write_error)?;
    forget_avatar(store, &s.user).await;
    Ok(Json(user_view(&user)))
}

/// `DELETE /api/profile/avatar`.
pub(super) async fn delete_avatar(
    State(cp): State<Arc<ControlPlane>>,
    Extension(acc): Extension<Arc<Accounts>>,
    RequireUser(s): RequireUser,
) -> Result<Json<UserView>, ApiError> {
    let user = cp
        .replicated()
        .account_user(AccountCommand::UpdateProfile {
            user_id: s.user.id,
            display_name: None,
            avatar: Some(None),
        })
        .await
        .map_err(account_write_error)?;
    if let Ok(store) = acc.avatars() {
        forget_avatar(store, &s.user).await;
    }
    Ok(Json(user_view(&user)))
}

/// Removes `old`'s avatar object after the record stopped naming it. A
/// failure leaves an orphan file, logged, never a broken profile.
pub(crate) async fn forget_avatar(store: &AvatarStore, old: &User) {
    if let Some(a) = &old.avatar {
        if let Err(e) = store.delete(&a.key).await {
            tracing::warn!(user = %old.id, "old avatar not removed: {e}");
        }
    }
}

fn avatar_store_error(e: crate::avatars::StoreFailed) -> ApiError {
    tracing::error!("{e}");
    ApiError::new(ErrorCode::Internal, "the picture could not be stored")
}

/// The query of an avatar URL: the upload's key.
#[derive(serde::Deserialize)]
pub(super) struct AvatarQuery {
    v: Option<String>,
}

/// `GET /api/users/{id}/avatar?v=<key>`: the picture, if `v` names the
/// user's current one, else `404`. Asking for the key keeps pictures from
/// being fetched by walking user ids: only someone shown the user's
/// profile (`avatar_url`) has it. Each key is one upload, so the answer
/// never changes and is cached for a year.
pub(super) async fn get_avatar(
    State(cp): State<Arc<ControlPlane>>,
    Extension(acc): Extension<Arc<Accounts>>,
    Path(id): Path<String>,
    Query(q): Query<AvatarQuery>,
) -> Result<Response, ApiError> {
    let not_found = || Ok((StatusCode::NOT_FOUND, "no such picture").into_response());
    let Ok(id) = id.parse::<u64>() else {
        return not_found();
    };
    let Some(avatar) = cp
        .replicated()
        .user(UserId(id))
        .await?
        .and_then(|u| u.avatar)
        .filter(|a| q.v.as_deref() == Some(a.key.as_str()))
    else {
        return not_found();
    };
    let Some(bytes) = acc
        .avatars()?
        .get(&avatar.key)
        .await
        .map_err(avatar_store_error)?
    else {
        return not_found();
    };
    let content_type = crate::avatars::AvatarKind::from_content_type(&avatar.content_type)
        .map(|k| k.content_type())
        .unwrap_or("application/octet-stream");
    Ok(super::stored_image(
        content_type,
        "private, max-age=31536000, immutable",
        bytes,
    ))
}
