//! `[oidc]`: the single sign-on section of `veche.toml`, and how it
//! becomes the control plane's [`OidcConfig`].

use serde::Deserialize;
use veche_control_plane::oidc::OidcConfig;

/// `[oidc]`: single sign-on through an OpenID Connect provider (Keycloak,
/// Authentik, Entra ID, Google...). See docs/configuration.md.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcSection {
    /// The provider's issuer URL; discovery reads
    /// `{issuer}/.well-known/openid-configuration`. Required.
    pub issuer: String,
    /// The client id registered at the provider. Required.
    pub client_id: String,
    /// The confidential client's secret. `VECHE_OIDC_CLIENT_SECRET` takes
    /// precedence.
    pub client_secret: Option<String>,
    /// Scopes besides `openid`. Default `["email", "profile"]`.
    pub scopes: Vec<String>,
    /// Shown on the button: "Sign in with {provider_name}". Default
    /// "single sign-on".
    pub provider_name: String,
    /// The ID-token claim with the email. Default `email`.
    pub email_claim: String,
    /// The ID-token claim with the display name. Default `name`.
    pub name_claim: String,
    /// The ID-token claim with the user's groups. Default `groups`.
    pub groups_claim: String,
    /// Members of this group are administrators. Default: none.
    pub admin_group: Option<String>,
}

impl Default for OidcSection {
    fn default() -> Self {
        let d = OidcConfig::new("", "", "");
        OidcSection {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: None,
            scopes: d.scopes,
            provider_name: d.provider_name,
            email_claim: d.email_claim,
            name_claim: d.name_claim,
            groups_claim: d.groups_claim,
            admin_group: d.admin_group,
        }
    }
}

impl std::fmt::Debug for OidcSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSection")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("scopes", &self.scopes)
            .field("provider_name", &self.provider_name)
            .field("admin_group", &self.admin_group)
            .finish_non_exhaustive()
    }
}

impl OidcSection {
    /// The control plane's SSO settings from this section, with the client
    /// secret from `env_client_secret` (`VECHE_OIDC_CLIENT_SECRET`) before
    /// the file's. Refuses a section that cannot work.
    pub fn to_config(&self, env_client_secret: Option<String>) -> anyhow::Result<OidcConfig> {
        let secret = env_client_secret
            .filter(|s| !s.is_empty())
            .or_else(|| self.client_secret.clone())
            .unwrap_or_default();
        let mut c = OidcConfig::new(&self.issuer, &self.client_id, &secret);
        c.scopes = self.scopes.clone();
        c.provider_name = self.provider_name.clone();
        c.email_claim = self.email_claim.clone();
        c.name_claim = self.name_claim.clone();
        c.groups_claim = self.groups_claim.clone();
        c.admin_group = self.admin_group.clone().filter(|g| !g.trim().is_empty());
        c.validate().map_err(|e| anyhow::anyhow!(e))?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn an_oidc_section_is_read_with_defaults_and_its_secret_never_printed() {
        let c: Config = toml::from_str(
            "[oidc]\nissuer = \"https://sso.example/realms/acme\"\nclient_id = \"veche\"\n\
             client_secret = \"hush-hush\"\nadmin_group = \"veche-admins\"\n",
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hush-hush"));
        let o = c.oidc_config(None).unwrap().expect("configured");
        assert_eq!(o.client_secret, "hush-hush");
        assert_eq!(
            (o.email_claim.as_str(), o.groups_claim.as_str()),
            ("email", "groups")
        );
        assert_eq!(o.admin_group.as_deref(), Some("veche-admins"));
        assert!(!format!("{o:?}").contains("hush-hush"));
        let from_env = c.oidc_config(Some("from-env".into())).unwrap().unwrap();
        assert_eq!(from_env.client_secret, "from-env");
        let none: Config = toml::from_str("").unwrap();
        assert!(none.oidc_config(None).unwrap().is_none());
    }

    #[test]
    fn an_oidc_section_without_a_secret_or_issuer_is_refused_by_key() {
        let c: Config =
            toml::from_str("[oidc]\nissuer = \"https://i\"\nclient_id = \"v\"\n").unwrap();
        let e = c.oidc_config(None).unwrap_err().to_string();
        assert!(e.contains("VECHE_OIDC_CLIENT_SECRET"), "{e}");
        let c: Config = toml::from_str("[oidc]\nclient_id = \"v\"\n").unwrap();
        let e = c.oidc_config(Some("s".into())).unwrap_err().to_string();
        assert!(e.contains("issuer"), "{e}");
    }
}
