//! Accounts on the wire: who the browser is signed in as.

use crate::ids::UserId;
use serde::{Deserialize, Serialize};

/// `GET`: who this browser is signed in as ([`Me`]).
pub const API_ME: &str = "/api/me";
/// `POST`: end this browser's session ([`SignedOut`]).
pub const API_LOGOUT: &str = "/api/auth/logout";
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
