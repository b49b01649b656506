//! Single sign-on over OpenID Connect: the authorization code flow with
//! PKCE, state and nonce, through the `openidconnect` crate.
//!
//! The parts:
//! - [`pending`]: the state of a login between the redirect to the provider
//!   and its callback, sealed into a short-lived cookie. It lives in the
//!   browser, not in this node's memory, because the callback may land on
//!   another control-plane node of the cluster; it is encrypted and
//!   authenticated under a key derived from the cluster secret, so the
//!   browser can neither read the PKCE verifier nor forge a state.
//! - [`claims`]: who the verified ID token says the user is, by the
//!   configured claim names, and whether the admin group makes them an
//!   administrator. Pure.
//! - [`client`]: the provider itself: discovery (lazy, retried, since the
//!   provider may start after Veche), the authorization URL, the code
//!   exchange and ID-token verification, the RP-initiated logout URL.
//!
//! The HTTP routes are in `api::oidc`; what a verified [`Identity`] becomes
//! (a user and a session) is the accounts store's business.

pub mod claims;
pub mod client;
pub mod pending;

pub use claims::Identity;
pub use client::Sso;

use veche_protocol::ErrorCode;

/// The `[oidc]` settings: which provider, which client, and how to read its
/// claims. `Debug` never prints the client secret.
#[derive(Clone)]
pub struct OidcConfig {
    /// The provider's issuer URL (`https://sso.example.com/realms/acme`);
    /// discovery reads `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The confidential client's secret.
    pub client_secret: String,
    /// Scopes to ask for besides `openid` (e.g. `email`, `profile`,
    /// `groups`).
    pub scopes: Vec<String>,
    /// The provider's name as users know it: the web client shows "Sign in
    /// with {provider_name}".
    pub provider_name: String,
    /// The ID-token claim holding the email address.
    pub email_claim: String,
    /// The ID-token claim holding the display name.
    pub name_claim: String,
    /// The ID-token claim holding the list of groups.
    pub groups_claim: String,
    /// Members of this group are Veche administrators; `None`: no one
    /// becomes an administrator through SSO.
    pub admin_group: Option<String>,
}

impl OidcConfig {
    /// The settings most providers need: `email profile` scopes, the
    /// standard claim names and a `groups` claim, no admin group.
    pub fn new(issuer: &str, client_id: &str, client_secret: &str) -> Self {
        OidcConfig {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            scopes: vec!["email".into(), "profile".into()],
            provider_name: "single sign-on".into(),
            email_claim: "email".into(),
            name_claim: "name".into(),
            groups_claim: "groups".into(),
            admin_group: None,
        }
    }

    /// Refuses settings that cannot work, with a message naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let issuer = self.issuer.trim();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(format!(
                "[oidc] issuer must be an http(s) URL, not {issuer:?}"
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err("[oidc] client_id must not be empty".into());
        }
        if self.client_secret.is_empty() {
            return Err(
                "[oidc] client_secret is missing (set it in the file or in VECHE_OIDC_CLIENT_SECRET)"
                    .into(),
            );
        }
        for (key, v) in [
            ("email_claim", &self.email_claim),
            ("name_claim", &self.name_claim),
            ("groups_claim", &self.groups_claim),
            ("provider_name", &self.provider_name),
        ] {
            if v.trim().is_empty() {
                return Err(format!("[oidc] {key} must not be empty"));
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("provider_name", &self.provider_name)
            .field("email_claim", &self.email_claim)
            .field("name_claim", &self.name_claim)
            .field("groups_claim", &self.groups_claim)
            .field("admin_group", &self.admin_group)
            .finish()
    }
}

/// Why a sign-in through the provider failed. Messages are for the person
/// signing in; none holds a code, a token or a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SsoError {
    /// Discovery or the token endpoint could not be reached, or answered
    /// something unusable.
    #[error("the sign-in provider is not reachable at the moment ({0}); try again shortly")]
    ProviderUnavailable(String),
    /// The provider answered the callback with an error (the user denied
    /// consent, or their account may not use this client).
    #[error("the sign-in provider refused the sign-in: {0}")]
    Refused(String),
    /// The pending-login cookie is missing, unreadable, forged, or its
    /// state does not match the callback's.
    #[error("this sign-in attempt is not valid here (it was started in another browser, or tampered with); start again")]
    BadState,
    /// The pending-login cookie is older than its time limit.
    #[error("this sign-in attempt took too long and has expired; start again")]
    Expired,
    /// The provider's answer did not verify (signature, issuer, audience,
    /// nonce, expiry), or lacks a claim Veche needs.
    #[error("the sign-in provider's answer could not be verified: {0}")]
    InvalidResponse(String),
    /// `return_to` is not a path on this site.
    #[error("return_to must be a path on this site (starting with a single /)")]
    BadReturnTo,
}

impl SsoError {
    /// The API error code it is answered with.
    pub fn code(&self) -> ErrorCode {
        match self {
            SsoError::ProviderUnavailable(_) => ErrorCode::Unavailable,
            SsoError::Refused(_) => ErrorCode::Forbidden,
            SsoError::BadState | SsoError::Expired | SsoError::InvalidResponse(_) => {
                ErrorCode::Unauthorized
            }
            SsoError::BadReturnTo => ErrorCode::BadRequest,
        }
    }
}
