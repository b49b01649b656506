//! The pending login: what the callback needs to finish a sign-in (the
//! CSRF state, the nonce, the PKCE verifier and where to go afterwards),
//! sealed into a short-lived cookie.
//!
//! Why a cookie and not this node's memory: the callback may land on any
//! control-plane node of the cluster, and a Raft write per login attempt
//! would let anyone fill the log by clicking "Sign in". Why sealed: the
//! browser must not read the PKCE verifier (it proves this client started
//! the flow) nor mint a state of its own. AES-256-GCM under a key derived
//! with HKDF from the cluster secret, which every control-plane node holds;
//! the expiry is inside the sealed text, so it cannot be extended.
//!
//! Everything here is I/O-free and takes `now` as an input.

use super::SsoError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf::{Salt, HKDF_SHA256};
use serde::{Deserialize, Serialize};

/// The cookie's name. Its path is [`COOKIE_PATH`], so it travels only to
/// the SSO routes.
pub const COOKIE_NAME: &str = "veche_oidc_pending";
/// The cookie's path.
pub const COOKIE_PATH: &str = "/auth/oidc";
/// Longest `return_to` accepted, in bytes: the cookie must stay small.
pub const MAX_RETURN_TO_BYTES: usize = 512;

/// Binds sealed texts to this use, so a ciphertext made for anything else
/// under a related key never opens here.
const AAD: &[u8] = b"veche oidc pending login v1";
const HKDF_SALT: &[u8] = b"veche oidc pending-login cookie";
const HKDF_INFO: &[u8] = b"aes-256-gcm key v1";

/// A login between the redirect to the provider and its callback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to the provider; the callback must bring it back.
    pub csrf_state: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier for the code exchange.
    pub pkce_verifier: String,
    /// A local path to go to once signed in (checked by [`check_return_to`]).
    pub return_to: String,
    /// Unix milliseconds after which the callback refuses it.
    pub expires_at_ms: u64,
}

/// The key pending-login cookies are sealed under. The same on every node
/// of a cluster, since it is derived from the cluster secret.
pub struct PendingKey(LessSafeKey);

impl PendingKey {
    /// Derives the key from the cluster secret with HKDF-SHA256.
    pub fn derive(cluster_secret: &str) -> Self {
        let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(cluster_secret.as_bytes());
        let mut key = [0u8; 32];
        prk.expand(&[HKDF_INFO], &AES_256_GCM)
            .and_then(|okm| okm.fill(&mut key))
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let unbound = UnboundKey::new(&AES_256_GCM, &key).expect("32-byte AES-256 key");
        PendingKey(LessSafeKey::new(unbound))
    }

    /// Seals `login` with the random `nonce` (never reused: 96 random bits
    /// per login) into a cookie value: base64url(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, login: &PendingLogin, nonce: [u8; NONCE_LEN]) -> String {
        let mut buf = serde_json::to_vec(login).expect("plain struct serializes");
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut buf,
            )
            .expect("in-memory sealing cannot fail for small inputs");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Opens a cookie value sealed by [`PendingKey::seal`] on any node of
    /// the cluster. Anything altered, truncated or sealed under another key
    /// is [`SsoError::BadState`]; a login past its expiry at `now_ms` is
    /// [`SsoError::Expired`].
    pub fn open(&self, cookie: &str, now_ms: u64) -> Result<PendingLogin, SsoError> {
        let raw = URL_SAFE_NO_PAD
            .decode(cookie.trim())
            .map_err(|_| SsoError::BadState)?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SsoError::BadState);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SsoError::BadState)?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(AAD), &mut sealed)
            .map_err(|_| SsoError::BadState)?;
        let login: PendingLogin = serde_json::from_slice(plain).map_err(|_| SsoError::BadState)?;
        if now_ms > login.expires_at_ms {
            return Err(SsoError::Expired);
        }
        Ok(login)
    }
}

/// The `Set-Cookie` value that stores a sealed pending login for `ttl_ms`.
/// `HttpOnly` (no script reads it), `SameSite=Lax` (it must travel on the
/// provider's top-level redirect back), `Secure` when the site is https.
pub fn set_cookie(sealed: &str, ttl_ms: u64, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={sealed}; Path={COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite=Lax{}",
        ttl_ms / 1000,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the pending login: it is single-use.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Accepts `return_to` only as a path on this site, so the sign-in cannot
/// be used as an open redirect: it must start with a single `/` (`//host`
/// and `/\host` are other hosts to a browser), hold no backslash or
/// control character, and be at most [`MAX_RETURN_TO_BYTES`]. Absent or
/// empty means `/`.
pub fn check_return_to(return_to: Option<&str>) -> Result<String, SsoError> {
    let Some(path) = return_to.filter(|p| !p.is_empty()) else {
        return Ok("/".to_owned());
    };
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path.len() <= MAX_RETURN_TO_BYTES;
    if ok {
        Ok(path.to_owned())
    } else {
        Err(SsoError::BadReturnTo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a cluster secret of at least thirty-two bytes!";

    fn login(expires_at_ms: u64) -> PendingLogin {
        PendingLogin {
            csrf_state: "state-123".into(),
            nonce: "nonce-456".into(),
            pkce_verifier: "verifier-789".into(),
            return_to: "/r/team-sync".into(),
            expires_at_ms,
        }
    }

    #[test]
    fn a_sealed_login_opens_on_another_node_of_the_same_cluster() {
        let sealed = PendingKey::derive(SECRET).seal(&login(10_000), [7; NONCE_LEN]);
        let other_node = PendingKey::derive(SECRET);
        assert_eq!(other_node.open(&sealed, 9_999), Ok(login(10_000)));
    }

    #[test]
    fn the_browser_cannot_read_the_pkce_verifier_or_the_nonce() {
        let sealed = PendingKey::derive(SECRET).seal(&login(10_000), [7; NONCE_LEN]);
        let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("verifier-789") && !text.contains("nonce-456"));
    }

    #[test]
    fn a_tampered_login_is_refused_as_bad_state() {
        let key = PendingKey::derive(SECRET);
        let sealed = key.seal(&login(10_000), [7; NONCE_LEN]);
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            let mut bad = raw.clone();
            bad[i] ^= 1;
            assert_eq!(
                key.open(&URL_SAFE_NO_PAD.encode(&bad), 0),
                Err(SsoError::BadState),
                "byte {i} flipped"
            );
        }
        raw.truncate(NONCE_LEN + 3);
        assert_eq!(
            key.open(&URL_SAFE_NO_PAD.encode(&raw), 0),
            Err(SsoError::BadState)
        );
        assert_eq!(key.open("not base64 at all!", 0), Err(SsoError::BadState));
        assert_eq!(key.open("", 0), Err(SsoError::BadState));
    }

    #[test]
    fn a_login_sealed_by_another_cluster_is_refused() {
        let sealed = PendingKey::derive(SECRET).seal(&login(10_000), [7; NONCE_LEN]);
        let stranger = PendingKey::derive("another cluster's secret, also long enough");
        assert_eq!(stranger.open(&sealed, 0), Err(SsoError::BadState));
    }

    #[test]
    fn a_login_past_its_expiry_is_refused_as_expired() {
        let key = PendingKey::derive(SECRET);
        let sealed = key.seal(&login(10_000), [7; NONCE_LEN]);
        assert!(key.open(&sealed, 10_000).is_ok());
        assert_eq!(key.open(&sealed, 10_001), Err(SsoError::Expired));
    }

    #[test]
    fn the_cookie_is_http_only_lax_scoped_to_the_sso_routes_and_secure_on_https() {
        let c = set_cookie("abc", 600_000, false);
        assert_eq!(
            c,
            "veche_oidc_pending=abc; Path=/auth/oidc; Max-Age=600; HttpOnly; SameSite=Lax"
        );
        assert!(set_cookie("abc", 600_000, true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn return_to_accepts_local_paths_only() {
        assert_eq!(check_return_to(None).unwrap(), "/");
        assert_eq!(check_return_to(Some("")).unwrap(), "/");
        assert_eq!(check_return_to(Some("/r/abc?x=1")).unwrap(), "/r/abc?x=1");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "evil.example",
            "/r/a\nb",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                check_return_to(Some(bad)),
                Err(SsoError::BadReturnTo),
                "{bad:?}"
            );
        }
        let long = format!("/{}", "a".repeat(MAX_RETURN_TO_BYTES));
        assert_eq!(check_return_to(Some(&long)), Err(SsoError::BadReturnTo));
    }
}
