//! Managing users: the administrators' routes (`/api/admin/users`, for a
//! signed-in administrator) and the operator's (`POST
//! /api/admin/cluster/users`, behind the cluster secret), which is how
//! `veche admin create-user` makes the first administrator before anyone
//! can sign in. There is no default account and no default password.

use super::account::{account_write_error, forget_avatar, new_password_hash, Accounts};
use super::auth::{user_view, RequireAdmin};
use super::edge::Body;
use super::{clean_name, parse_json};
use crate::error::ApiError;
use crate::store::accounts::{AccountCommand, AccountOutput};
use crate::store::AccountStore;
use crate::ControlPlane;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use std::sync::Arc;
use veche_protocol::account::{NewUser, Removed, UserList, UserUpdate, UserView};
use veche_protocol::limits::accounts::MAX_EMAIL_BYTES;
use veche_protocol::rpc::MAX_DISPLAY_NAME_CHARS;
use veche_protocol::{ErrorCode, UserId};

/// Checks an email's shape: one `@` with something on both sides, no
/// spaces or control characters, at most [`MAX_EMAIL_BYTES`]. Whether it
/// receives mail is not Veche's to check.
pub(crate) fn valid_email(email: &str) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::new(ErrorCode::BadRequest, format!("invalid email: {why}"));
    if email.len() > MAX_EMAIL_BYTES {
        return Err(bad(&format!("longer than {MAX_EMAIL_BYTES} bytes")));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains spaces"));
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(())
        }
        _ => Err(bad("it must look like name@example.com")),
    }
}

/// Creates a password account: email shape, name, strength, hash, write.
async fn create_user(
    cp: &Arc<ControlPlane>,
    acc: &Accounts,
    req: NewUser,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let email = super::account::normalize_email(&req.email);
    valid_email(&email)?;
    let raw_name = req
        .display_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
    let display_name = clean_name(&raw_name, "display name", MAX_DISPLAY_NAME_CHARS)?;
    if cp.replicated().user_by_email(&email).await?.is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            "an account with this email already exists",
        ));
    }
    let hash = new_password_hash(acc, &req.password, &email, &display_name).await?;
    let user = cp
        .replicated()
        .account_user(AccountCommand::CreateUser {
            email,
            display_name,
            is_admin: req.is_admin,
            password_hash: Some(hash),
            oidc: None,
            created_at_ms: crate::now_ms(),
        })
        .await
        .map_err(account_write_error)?;
    tracing::info!(user = %user.id, is_admin = user.is_admin, "account created");
    Ok((StatusCode::CREATED, Json(user_view(&user))))
}

/// `POST /api/admin/cluster/users` (cluster secret): the operator creates
/// an account, typically the first administrator.
pub(super) async fn operator_create_user(
    State(cp): State<Arc<ControlPlane>>,
    Extension(acc): Extension<Arc<Accounts>>,
    Body(body): Body,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    create_user(&cp, &acc, parse_json(&body)?).await
}

/// `POST /api/admin/users`: an administrator creates an account.
pub(super) async fn admin_create_user(
    State(cp): State<Arc<ControlPlane>>,
    Extension(acc): Extension<Arc<Accounts>>,
    RequireAdmin(_): RequireAdmin,
    Body(body): Body,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    create_user(&cp, &acc, parse_json(&body)?).await
}

/// `GET /api/admin/users`: every user, by id.
pub(super) async fn list_users(
    State(cp): State<Arc<ControlPlane>>,
    RequireAdmin(_): RequireAdmin,
) -> Result<Json<UserList>, ApiError> {
    let users = cp.replicated().users().await?;
    Ok(Json(UserList {
        users: users.iter().map(user_view).collect(),
    }))
}

fn parse_user_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse()
        .map(UserId)
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "a user id is a number"))
}

/// `PUT /api/admin/users/{id}`: grant or withdraw administration. An
/// administrator cannot withdraw their own, so the last one cannot lock
/// everyone out by a slip of the mouse.
pub(super) async fn update_user(
    State(cp): State<Arc<ControlPlane>>,
    RequireAdmin(me): RequireAdmin,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Json<UserView>, ApiError> {
    let id = parse_user_id(&id)?;
    let req: UserUpdate = parse_json(&body)?;
    if id == me.user.id && !req.is_admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "you cannot withdraw your own administration; ask another administrator",
        ));
    }
    let user = cp
        .replicated()
        .account_user(AccountCommand::SetAdmin {
            user_id: id,
            is_admin: req.is_admin,
        })
        .await
        .map_err(account_write_error)?;
    tracing::info!(user = %id, is_admin = req.is_admin, by = %me.user.id, "administration changed");
    Ok(Json(user_view(&user)))
}

/// `DELETE /api/admin/users/{id}`: delete an account; its sessions end
/// with it. Deleting a deleted account answers `removed: false`.
pub(super) async fn delete_user(
    State(cp): State<Arc<ControlPlane>>,
    Extension(acc): Extension<Arc<Accounts>>,
    RequireAdmin(me): RequireAdmin,
    Path(id): Path<String>,
) -> Result<Json<Removed>, ApiError> {
    let id = parse_user_id(&id)?;
    if id == me.user.id {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "you cannot delete your own account; ask another administrator",
        ));
    }
    let store = cp.replicated();
    let old = store.user(id).await?;
    let removed = matches!(
        store
            .account(AccountCommand::DeleteUser { user_id: id })
            .await
            .map_err(account_write_error)?,
        AccountOutput::Removed(n) if n > 0
    );
    if let (Some(old), Ok(avatars)) = (old, acc.avatars()) {
        forget_avatar(avatars, &old).await;
    }
    tracing::info!(user = %id, by = %me.user.id, removed, "account deleted");
    Ok(Json(Removed { removed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_needs_one_at_sign_with_both_sides_and_no_spaces() {
        assert!(valid_email("ada@example.com").is_ok());
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a da@example.com",
            "a@b@c",
        ] {
            assert!(valid_email(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(valid_email(&format!("{}@x.org", "a".repeat(MAX_EMAIL_BYTES))).is_err());
    }
}
