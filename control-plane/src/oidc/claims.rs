//! Who a verified ID token says the user is. Pure: the token's signature,
//! issuer, audience, expiry and nonce were checked by [`super::client`]
//! before its claims get here.

use super::{OidcConfig, SsoError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

/// Longest display name kept from a provider, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A user as the provider vouches for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The provider's issuer URL; with `subject`, the user's stable key.
    pub issuer: String,
    /// The `sub` claim: stable at this issuer, unlike the email.
    pub subject: String,
    /// From the configured email claim.
    pub email: String,
    /// From the configured name claim, else `preferred_username`, else the
    /// email's local part.
    pub name: String,
    /// From the configured groups claim; empty when absent.
    pub groups: Vec<String>,
    /// The provider's `email_verified` claim: whether it vouches that the
    /// address is the user's (absent: no).
    pub email_verified: bool,
}

impl Identity {
    /// Whether membership of `admin_group` makes this user an
    /// administrator. Keycloak's group mapper sends full paths
    /// (`/veche-admins`, `/org/veche-admins`) unless told otherwise, so a
    /// group matches by its full path or by its last segment.
    pub fn is_admin(&self, admin_group: Option<&str>) -> bool {
        let Some(admin) = admin_group.map(str::trim).filter(|a| !a.is_empty()) else {
            return false;
        };
        self.groups.iter().any(|g| {
            g == admin || g.trim_start_matches('/') == admin.trim_start_matches('/') || {
                !admin.contains('/') && g.rsplit('/').next() == Some(admin)
            }
        })
    }
}

/// The claims of a compact JWT (its middle part), for a token whose
/// signature was already verified.
pub fn jwt_claims(jwt: &str) -> Result<Map<String, Value>, SsoError> {
    let payload = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| SsoError::InvalidResponse("the ID token is not a JWT".into()))?;
    let raw = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| SsoError::InvalidResponse("the ID token's claims are not base64url".into()))?;
    serde_json::from_slice(&raw).map_err(|_| {
        SsoError::InvalidResponse("the ID token's claims are not a JSON object".into())
    })
}

/// Reads an [`Identity`] from verified ID-token claims with the claim names
/// of `config`. The email is required (it is how people are shown and
/// found); a missing name falls back as [`Identity::name`] says; groups
/// may be a list or a single string.
pub fn identity(
    issuer: &str,
    claims: &Map<String, Value>,
    config: &OidcConfig,
) -> Result<Identity, SsoError> {
    let text = |key: &str| {
        claims
            .get(key)
            .and_then(Value::as_str)
            .map(|s| s.chars().filter(|c| !c.is_control()).collect::<String>())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let subject = text("sub")
        .ok_or_else(|| SsoError::InvalidResponse("the ID token has no `sub` claim".into()))?;
    let email = text(&config.email_claim).ok_or_else(|| {
        SsoError::InvalidResponse(format!(
            "the ID token has no `{}` claim (ask for the `email` scope, or set [oidc] email_claim)",
            config.email_claim
        ))
    })?;
    let name = text(&config.name_claim)
        .or_else(|| text("preferred_username"))
        .unwrap_or_else(|| email.split('@').next().unwrap_or(&email).to_owned());
    let name: String = name.chars().take(MAX_NAME_CHARS).collect();
    let groups = match claims.get(&config.groups_claim) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        // Some providers send it as a string.
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    Ok(Identity {
        issuer: issuer.to_owned(),
        subject,
        email: email.to_lowercase(),
        name,
        groups,
        email_verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> OidcConfig {
        OidcConfig::new("https://sso.example", "veche", "s")
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_identity_is_read_from_the_configured_claims() {
        let c = claims(json!({
            "sub": "u-1", "email": "Alice@Example.test", "name": "Alice A.", "email_verified": true,
            "groups": ["veche-admins", "staff"]
        }));
        let id = identity("https://sso.example", &c, &config()).unwrap();
        assert_eq!(
            id,
            Identity {
                issuer: "https://sso.example".into(),
                subject: "u-1".into(),
                email: "alice@example.test".into(),
                name: "Alice A.".into(),
                groups: vec!["veche-admins".into(), "staff".into()],
                email_verified: true,
            }
        );
    }

    #[test]
    fn claim_names_come_from_the_config() {
        let mut cfg = config();
        cfg.email_claim = "mail".into();
        cfg.name_claim = "display".into();
        cfg.groups_claim = "roles".into();
        let c = claims(json!({"sub": "u", "mail": "m@x", "display": "D", "roles": "ops"}));
        let id = identity("i", &c, &cfg).unwrap();
        assert_eq!((id.email.as_str(), id.name.as_str()), ("m@x", "D"));
        assert_eq!(id.groups, vec!["ops".to_owned()]);
    }

    #[test]
    fn a_missing_email_or_subject_is_refused_and_a_missing_name_falls_back() {
        let no_email = claims(json!({"sub": "u", "name": "N"}));
        assert!(matches!(
            identity("i", &no_email, &config()),
            Err(SsoError::InvalidResponse(m)) if m.contains("email")
        ));
        let no_sub = claims(json!({"email": "a@b"}));
        assert!(identity("i", &no_sub, &config()).is_err());
        let no_name = claims(json!({"sub": "u", "email": "carol@b"}));
        assert_eq!(identity("i", &no_name, &config()).unwrap().name, "carol");
        let username = claims(json!({"sub": "u", "email": "c@b", "preferred_username": "cz"}));
        assert_eq!(identity("i", &username, &config()).unwrap().name, "cz");
    }

    #[test]
    fn control_characters_and_overlong_names_are_cleaned() {
        let c = claims(
            json!({"sub": "u", "email": "a@b", "name": format!("A\u{7}{}", "x".repeat(500))}),
        );
        let name = identity("i", &c, &config()).unwrap().name;
        assert!(name.starts_with("Ax") && name.chars().count() == MAX_NAME_CHARS);
    }

    #[test]
    fn the_admin_group_makes_an_administrator_and_nothing_else_does() {
        let user = |groups: &[&str]| Identity {
            issuer: "i".into(),
            subject: "s".into(),
            email: "e".into(),
            name: "n".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            email_verified: false,
        };
        assert!(user(&["staff", "veche-admins"]).is_admin(Some("veche-admins")));
        assert!(user(&["/veche-admins"]).is_admin(Some("veche-admins")));
        assert!(user(&["/org/veche-admins"]).is_admin(Some("veche-admins")));
        assert!(!user(&["staff"]).is_admin(Some("veche-admins")));
        assert!(!user(&["veche-admins-not"]).is_admin(Some("veche-admins")));
        assert!(!user(&[]).is_admin(Some("veche-admins")));
        assert!(!user(&["veche-admins"]).is_admin(None));
        assert!(!user(&[""]).is_admin(Some("")));
    }

    #[test]
    fn a_jwt_payload_is_decoded() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
        let m = jwt_claims(&format!("h.{payload}.s")).unwrap();
        assert_eq!(m["sub"], "x");
        assert!(jwt_claims("nodots").is_err());
        assert!(jwt_claims("h.!!!.s").is_err());
    }
}
