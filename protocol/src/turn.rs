//! Short-lived TURN credentials, per participant, in the "TURN REST API"
//! scheme that coturn implements as `use-auth-secret` /
//! `static-auth-secret`.
//!
//! A static TURN username and password handed to every guest would let
//! anyone with a room link relay traffic through the operator's TURN server
//! for ever. Instead the control plane and the TURN server share a secret,
//! and each participant gets, in their join token, a username
//! `"<expiry unix seconds>:<participant id>"` with the password
//! `base64(HMAC-SHA1(secret, username))`, which the media node hands on in
//! `joined`. The TURN server recomputes the password and refuses the
//! username after its expiry, so a leaked credential is good for one
//! participant for [`TurnConfig::ttl_secs`] at most. HMAC-SHA1 is what
//! the scheme specifies; it is used as a MAC, where SHA-1's collision
//! weakness does not apply.

use crate::ids::ParticipantId;
use crate::signal::IceServer;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hmac;

/// Default lifetime of an issued credential: one hour. A call that lasts
/// longer keeps its allocation (TURN refreshes an existing allocation
/// with the same credentials, which coturn accepts past the expiry), and a
/// reconnect gets a fresh credential in its new `joined`.
pub const DEFAULT_TTL_SECS: u64 = 3600;

/// The shared secret of the TURN server. Its `Debug` output is redacted,
/// so that it can sit in a config struct that is logged; it deserialises
/// from a plain string.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct TurnSecret(String);

impl TurnSecret {
    /// Wraps a secret read from the config.
    pub fn new(secret: impl Into<String>) -> Self {
        TurnSecret(secret.into())
    }
}

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret(<redacted>)")
    }
}

/// A TURN server the control plane issues credentials for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnConfig {
    /// `turn:`/`turns:` URLs, as handed to browsers.
    pub urls: Vec<String>,
    /// The secret shared with the TURN server (coturn's
    /// `static-auth-secret`).
    pub secret: TurnSecret,
    /// How long an issued credential is valid, in seconds.
    pub ttl_secs: u64,
}

impl TurnConfig {
    /// The `ice_servers` entry for `participant`, valid from `now_secs`
    /// (Unix seconds) for [`TurnConfig::ttl_secs`].
    pub fn ice_server_for(&self, participant: &ParticipantId, now_secs: u64) -> IceServer {
        let username = format!("{}:{participant}", now_secs.saturating_add(self.ttl_secs));
        let credential = credential(&self.secret, &username);
        IceServer {
            urls: self.urls.clone(),
            username: Some(username),
            credential: Some(credential),
        }
    }
}

/// The password for `username`: `base64(HMAC-SHA1(secret, username))`.
pub fn credential(secret: &TurnSecret, username: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.0.as_bytes());
    STANDARD.encode(hmac::sign(&key, username.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_matches_the_turn_rest_scheme() {
        // Computed independently: python3 -c "import hmac,hashlib,base64;
        // print(base64.b64encode(hmac.new(b'north-wind-secret',
        // b'1700003600:p-abc', hashlib.sha1).digest()).decode())"
        let secret = TurnSecret::new("north-wind-secret");
        assert_eq!(
            credential(&secret, "1700003600:p-abc"),
            "HkOAgjx81ueG6ltJiibwDFGvw2o="
        );
    }

    #[test]
    fn each_participant_gets_a_username_that_expires() {
        let turn = TurnConfig {
            urls: vec!["turn:turn.example.com:3478".into()],
            secret: TurnSecret::new("s3cret"),
            ttl_secs: 600,
        };
        let a = ParticipantId("p-a".into());
        let b = ParticipantId("p-b".into());
        let ia = turn.ice_server_for(&a, 1_000);
        let ib = turn.ice_server_for(&b, 1_000);
        assert_eq!(ia.username.as_deref(), Some("1600:p-a"));
        assert_ne!(ia.credential, ib.credential);
        assert_eq!(
            ia.credential.as_deref(),
            Some(credential(&turn.secret, "1600:p-a").as_str())
        );
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let turn = TurnConfig {
            urls: vec![],
            secret: TurnSecret::new("do-not-print-me"),
            ttl_secs: 1,
        };
        assert!(!format!("{turn:?}").contains("do-not-print-me"));
    }
}
