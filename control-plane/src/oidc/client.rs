//! The provider, over the network: discovery, the authorization URL, the
//! code exchange with ID-token verification, and the RP-initiated logout
//! URL. The decisions around them are in [`super::pending`] and
//! [`super::claims`].

use super::claims::{self, Identity};
use super::pending::{PendingKey, PendingLogin};
use super::{OidcConfig, SsoError};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient};

/// A client built from discovered metadata: the authorization endpoint is
/// set, the token and user-info endpoints are whatever the provider
/// published.
type LoginClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl,
    RequestTokenError, Scope, TokenResponse,
};
use prometheus::{IntCounterVec, Opts, Registry};
use std::time::Duration;
use veche_protocol::limits::http::{SSO_LOGIN_TTL_MS, SSO_PROVIDER_TIMEOUT_MS};

/// How long discovered metadata (and the provider's signing keys) is used
/// before it is fetched again. A token signed by a key not yet seen
/// triggers a fetch sooner.
const METADATA_TTL_MS: u64 = 60 * 60 * 1000;

/// The provider as this node knows it.
struct Discovered {
    metadata: ProviderMetadataWithLogout,
    fetched_at_ms: u64,
}

/// Single sign-on against one OpenID Connect provider. One per control-plane
/// node; holds no per-login state (that is in the sealed cookie).
pub struct Sso {
    config: OidcConfig,
    key: PendingKey,
    http: reqwest::Client,
    discovered: tokio::sync::Mutex<Option<Discovered>>,
    registry: Registry,
    outcomes: IntCounterVec,
}

/// Where to send the browser to sign in, and what its callback will need.
pub struct LoginStart {
    /// The provider's authorization URL with state, nonce and PKCE
    /// challenge.
    pub authorize_url: String,
    /// The sealed [`PendingLogin`], for [`super::pending::set_cookie`].
    pub sealed_pending: String,
}

impl Sso {
    /// Sets up the client. Does no I/O: the provider is discovered on first
    /// use and again after a failure, so Veche starts even when the
    /// provider is down or starts later.
    pub fn new(config: OidcConfig, cluster_secret: &str) -> Result<Self, String> {
        config.validate()?;
        IssuerUrl::new(config.issuer.trim().to_owned())
            .map_err(|e| format!("[oidc] issuer is not a valid URL: {e}"))?;
        let http = reqwest::Client::builder()
            // The token endpoint must not redirect the client secret and the
            // code elsewhere (the crate's own advice).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_millis(SSO_PROVIDER_TIMEOUT_MS))
            .build()
            .map_err(|e| format!("HTTP client for [oidc]: {e}"))?;
        let registry =
            Registry::new_custom(Some("veche_cp".into()), None).expect("static prefix is valid");
        let outcomes = IntCounterVec::new(
            Opts::new(
                "sso_logins_total",
                "Single sign-on attempts by outcome (started, signed_in, refused, bad_state, ...)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(outcomes.clone()))
            .expect("unique metric");
        Ok(Sso {
            registry,
            outcomes,
            key: PendingKey::derive(cluster_secret),
            config,
            http,
            discovered: tokio::sync::Mutex::new(None),
        })
    }

    /// The settings.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Counts a sign-in step or outcome in `veche_cp_sso_logins_total`.
    pub fn count(&self, outcome: &str) {
        self.outcomes.with_label_values(&[outcome]).inc();
    }

    /// The SSO metrics, to serve at `/metrics`.
    pub fn metrics_registry(&self) -> Registry {
        self.registry.clone()
    }

    /// The key pending logins are sealed under.
    pub fn pending_key(&self) -> &PendingKey {
        &self.key
    }

    /// The provider's metadata: cached, or discovered now (first use,
    /// older than [`METADATA_TTL_MS`], or `refresh`).
    async fn metadata(
        &self,
        now_ms: u64,
        refresh: bool,
    ) -> Result<ProviderMetadataWithLogout, SsoError> {
        let mut cached = self.discovered.lock().await;
        if let Some(d) = cached.as_ref() {
            if !refresh && now_ms.saturating_sub(d.fetched_at_ms) < METADATA_TTL_MS {
                return Ok(d.metadata.clone());
            }
        }
        let issuer = IssuerUrl::new(self.config.issuer.trim().to_owned())
            .map_err(|e| SsoError::ProviderUnavailable(e.to_string()))?;
        match ProviderMetadataWithLogout::discover_async(issuer, &self.http).await {
            Ok(metadata) => {
                tracing::info!(issuer = %self.config.issuer, "OIDC provider discovered");
                *cached = Some(Discovered {
                    metadata: metadata.clone(),
                    fetched_at_ms: now_ms,
                });
                Ok(metadata)
            }
            Err(e) => {
                tracing::warn!(issuer = %self.config.issuer, error = %e, "OIDC discovery failed");
                // Metadata that worked before beats none: keep serving it.
                match cached.as_ref() {
                    Some(d) if !refresh => Ok(d.metadata.clone()),
                    _ => Err(SsoError::ProviderUnavailable("discovery failed".into())),
                }
            }
        }
    }

    /// The provider's client for one login step, built from its (cached)
    /// discovery document, with this deployment's credentials and
    /// `redirect_uri`: the start and the finish of a login must agree on
    /// all three.
    async fn client(&self, redirect_uri: &str, now_ms: u64) -> Result<LoginClient, SsoError> {
        let metadata = self.metadata(now_ms, false).await?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(redirect_url(redirect_uri)?))
    }

    /// Starts a login that comes back to `redirect_uri` and then goes to
    /// `return_to` (already checked). State, nonce and PKCE verifier are
    /// fresh and random; they travel to the callback sealed.
    pub async fn begin(
        &self,
        redirect_uri: &str,
        return_to: String,
        now_ms: u64,
    ) -> Result<LoginStart, SsoError> {
        let client = self.client(redirect_uri, now_ms).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let pending = PendingLogin {
            csrf_state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            return_to,
            expires_at_ms: now_ms + SSO_LOGIN_TTL_MS,
        };
        Ok(LoginStart {
            authorize_url: url.to_string(),
            sealed_pending: self.key.seal(&pending, crate::random_bytes()),
        })
    }

    /// Finishes a login: exchanges `code` with the PKCE verifier, verifies
    /// the ID token (signature by the provider's published keys, issuer,
    /// audience, expiry, the pending nonce) and reads the identity from it.
    /// The caller checked the state already.
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        code: &str,
        redirect_uri: &str,
        now_ms: u64,
    ) -> Result<Identity, SsoError> {
        let client = self.client(redirect_uri, now_ms).await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| {
                SsoError::ProviderUnavailable("the provider has no token endpoint".into())
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                // The error names the provider's error code (or that the
                // answer did not parse), never the code, the secret or a
                // token.
                tracing::warn!(error = %e, "OIDC code exchange failed");
                match e {
                    RequestTokenError::Request(_) => {
                        SsoError::ProviderUnavailable("the token request failed".into())
                    }
                    _ => SsoError::InvalidResponse("the code exchange failed".into()),
                }
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SsoError::InvalidResponse("the provider sent no ID token".into()))?;
        let nonce = Nonce::new(pending.nonce.clone());
        let verified = id_token.claims(&client.id_token_verifier(), &nonce);
        if let Err(e) = verified {
            // A key rotated since discovery: fetch the keys once more and
            // verify again before refusing.
            tracing::info!(error = %e, "ID token did not verify; refreshing the provider's keys");
            let metadata = self.metadata(now_ms, true).await?;
            let client = CoreClient::from_provider_metadata(
                metadata,
                ClientId::new(self.config.client_id.clone()),
                Some(ClientSecret::new(self.config.client_secret.clone())),
            );
            id_token
                .claims(&client.id_token_verifier(), &nonce)
                .map_err(|e| {
                    tracing::warn!(error = %e, "ID token refused");
                    SsoError::InvalidResponse("the ID token did not verify".into())
                })?;
        }
        let claims = claims::jwt_claims(&id_token.to_string())?;
        claims::identity(self.config.issuer.trim(), &claims, &self.config)
    }

    /// The provider's RP-initiated logout URL, when it offers one: its
    /// `end_session_endpoint` with our client id and, if given, where to
    /// come back to. `None` when the provider has no such endpoint or
    /// cannot be reached (signing out of Veche goes on regardless).
    pub async fn logout_url(
        &self,
        post_logout_redirect: Option<&str>,
        now_ms: u64,
    ) -> Option<String> {
        let metadata = self.metadata(now_ms, false).await.ok()?;
        let end = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut request = openidconnect::LogoutRequest::from(end)
            .set_client_id(ClientId::new(self.config.client_id.clone()));
        if let Some(uri) = post_logout_redirect {
            if let Ok(uri) = PostLogoutRedirectUrl::new(uri.to_owned()) {
                request = request.set_post_logout_redirect_uri(uri);
            }
        }
        Some(request.http_get_url().to_string())
    }
}

fn redirect_url(uri: &str) -> Result<RedirectUrl, SsoError> {
    RedirectUrl::new(uri.to_owned())
        .map_err(|e| SsoError::InvalidResponse(format!("the callback URL is invalid: {e}")))
}
