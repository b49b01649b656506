//! A real OpenID Connect provider on loopback: panva's `oidc-provider`
//! (npm), started by `tests/oidc-provider/provider.mjs` with one confidential
//! client for Veche and two accounts:
//!
//! - `alice@example.test` / `alice-password`, "Alice Admin", in the groups
//!   `veche-admins` and `staff`;
//! - `bob@example.test` / `bob-password`, "Bob Builder", in no group.
//!
//! Its dependencies are installed by `scripts/test.sh` (`npm ci` in
//! `tests/oidc-provider`, from its lock file).

use crate::common::*;
use std::path::PathBuf;
use veche_harness::{Launch, Process, Ready};

/// The client id the provider registers for Veche.
pub const CLIENT_ID: &str = "veche-test";
/// Alice: in the admin group.
pub const ALICE: (&str, &str, &str) = ("alice@example.test", "alice-password", "Alice Admin");
/// Bob: in no group.
pub const BOB: (&str, &str, &str) = ("bob@example.test", "bob-password", "Bob Builder");
/// The group that makes an administrator.
pub const ADMIN_GROUP: &str = "veche-admins";

/// A running provider. Dropping it stops the node process.
pub struct OidcProvider {
    /// Held only to be dropped with the provider.
    _proc: Process,
}

impl OidcProvider {
    /// The folder holding `provider.mjs` and its `node_modules`.
    pub fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
    }

    /// A free port for a provider that starts later, so Veche can be
    /// configured with its issuer first (and must cope with it being down).
    pub fn pick_port() -> u16 {
        free_port()
    }

    /// Starts the provider on `port` with Veche's client: its secret, the
    /// callback it redirects to and where it may send the browser after
    /// logout. Waits for its `listening on` line.
    pub fn start(
        port: u16,
        client_secret: &str,
        redirect_uri: &str,
        post_logout_uri: &str,
    ) -> Self {
        let dir = Self::dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the test OIDC provider is not installed: run `npm ci` in {} (scripts/test.sh does)",
            dir.display()
        );
        let launch = Launch::new("oidc-provider", "node")
            .arg(dir.join("provider.mjs"))
            .args(["--port", &port.to_string(), "--client-id", CLIENT_ID])
            .args(["--redirect-uri", redirect_uri])
            .args(["--post-logout-redirect-uri", post_logout_uri])
            // Through the environment, so it is not in the logged command line.
            .env("OIDC_TEST_CLIENT_SECRET", client_secret)
            .ready(Ready::Line("listening on".into()));
        let mut proc = launch.spawn().unwrap_or_else(|e| panic!("{e}"));
        let issuer = proc
            .ready_blocking(secs(30))
            .unwrap_or_else(|e| panic!("the OIDC provider did not come up: {e}"));
        eprintln!("[harness] oidc-provider is at {issuer}");
        OidcProvider { _proc: proc }
    }
}

/// The `[oidc]` section of a Veche config for this provider.
pub fn oidc_config_toml(issuer: &str, client_secret: &str, provider_name: &str) -> String {
    format!(
        "[oidc]\n\
         issuer = \"{issuer}\"\n\
         client_id = \"{CLIENT_ID}\"\n\
         client_secret = \"{client_secret}\"\n\
         scopes = [\"email\", \"profile\", \"groups\"]\n\
         provider_name = \"{provider_name}\"\n\
         admin_group = \"{ADMIN_GROUP}\"\n"
    )
}
