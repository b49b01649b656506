//! Accounts on the wire: who the browser is signed in as.

use crate::ids::UserId;
use serde::{Deserialize, Serialize};

/// `GET`: who this browser is signed in as ([`Me`]).
pub const API_ME: &str = "/api/me";
/// `POST`: end this browser's session ([`SignedOut`]).
pub const API_LOGOUT: &str = "/api/auth/logout";
/// `POST` [`LoginRequest`]: sign in with email and password; sets the
/// session cookie and answers [`Me`].
pub const API_LOGIN: &str = "/api/auth/login";
/// `POST`: end every session of the signed-in user, this one included
/// ([`SignedOutEverywhere`]).
pub const API_LOGOUT_ALL: &str = "/api/auth/logout-all";
/// `GET` ([`UserView`]) and `PUT` [`ProfileUpdate`]: the signed-in user's
/// own profile.
pub const API_PROFILE: &str = "/api/profile";
/// `PUT` [`PasswordChange`]: change one's own password.
pub const API_PROFILE_PASSWORD: &str = "/api/profile/password";
/// `POST` (the image itself as the body) and `DELETE`: one's own avatar.
pub const API_PROFILE_AVATAR: &str = "/api/profile/avatar";
/// `GET` and `POST` [`NewUser`]: the user list and account creation, for
/// signed-in administrators. `/{id}` takes `PUT` [`UserUpdate`] and
/// `DELETE`.
pub const ADMIN_USERS: &str = "/api/admin/users";
/// `POST` [`NewUser`] behind the cluster secret: how `veche admin
/// create-user` makes the first administrator, before anyone can sign in.
pub const ADMIN_CLUSTER_USERS: &str = "/api/admin/cluster/users";

/// Where user `id`'s avatar is served (`GET`).
pub fn avatar_path(id: UserId) -> String {
    format!("/api/users/{id}/avatar")
}

/// The session cookie's name. `HttpOnly`, `SameSite=Lax`, `Path=/`, and
/// `Secure` when Veche is served over https.
pub const SESSION_COOKIE: &str = "veche_session";

/// A user as others (and they themselves) see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    /// Id.
    pub id: UserId,
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Administrator.
    pub is_admin: bool,
    /// Where the avatar image is served, if the user has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// Signs in through the organisation's identity provider.
    #[serde(default)]
    pub sso: bool,
}

/// Reply to [`API_ME`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The signed-in user, or `None` for an anonymous browser.
    pub user: Option<UserView>,
    /// How this server lets people sign in, so the page shows the right
    /// buttons.
    pub sign_in: SignInOptions,
}

/// The ways to sign in that this server offers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInOptions {
    /// Email and password.
    pub password: bool,
    /// The SSO provider's display name ("Sign in with {name}"), if SSO is
    /// configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso_provider: Option<String>,
}

/// Reply to [`API_LOGOUT`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOut {
    /// Where the browser goes next to end the identity provider's session
    /// too (RP-initiated logout), if the session came from SSO and the
    /// provider offers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_url: Option<String>,
}

/// Reply to [`API_LOGOUT_ALL`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOutEverywhere {
    /// How many sessions ended, this browser's included.
    pub sessions_ended: u64,
}

/// Body of [`API_LOGIN`]. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// The account's email (compared case-insensitively).
    pub email: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Body of `PUT` [`API_PROFILE`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileUpdate {
    /// The new display name (1 to `MAX_DISPLAY_NAME_CHARS` characters
    /// after trimming).
    pub display_name: String,
}

/// Body of [`API_PROFILE_PASSWORD`]. `Debug` hides both passwords.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChange {
    /// The password now, proving it is the user at the keyboard and not
    /// someone at a browser they left signed in.
    pub current: String,
    /// The new password; it must pass the strength check.
    pub new: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange { <redacted> }")
    }
}

/// Body of `POST` [`ADMIN_USERS`] and [`ADMIN_CLUSTER_USERS`]: a new
/// account with a password. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// Email, unique among users.
    pub email: String,
    /// Display name; the part of the email before `@` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The password; it must pass the strength check.
    pub password: String,
    /// Make the user an administrator.
    #[serde(default)]
    pub is_admin: bool,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field("password", &"<redacted>")
            .field("is_admin", &self.is_admin)
            .finish()
    }
}

/// Body of `PUT` [`ADMIN_USERS`]`/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdate {
    /// Grant or withdraw administration.
    pub is_admin: bool,
}

/// Reply to `GET` [`ADMIN_USERS`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    /// Every user, by id.
    pub users: Vec<UserView>,
}

/// Reply to `DELETE` [`ADMIN_USERS`]`/{id}` and `DELETE`
/// [`API_PROFILE_AVATAR`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// Whether something was there to remove (deleting twice is not an
    /// error).
    pub removed: bool,
}
