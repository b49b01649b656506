//! `[turn]`: the TURN server (coturn) whose per-participant credentials
//! the control plane puts in each join token. The secret lives with the
//! control plane only; media nodes hand on what the token carries. The
//! media-node keys this replaced (`media.turn_urls`, `media.turn_secret`,
//! `media.turn_ttl_secs`) are refused with a pointer here, so an old
//! config fails loudly instead of starting without TURN.

use serde::{Deserialize, Deserializer};
use veche_protocol::turn::{TurnConfig, TurnSecret, DEFAULT_TTL_SECS};

/// Shortest credential lifetime: a browser must be able to allocate with
/// its credential a while after joining.
const MIN_TTL_SECS: u64 = 60;

/// `[turn]`. `Debug` never prints the secret ([`TurnSecret`] redacts it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnSection {
    /// `turn:`/`turns:` URLs of a TURN server that shares `secret` with
    /// the control plane (coturn's `use-auth-secret`). Default none.
    pub urls: Vec<String>,
    /// The TURN server's `static-auth-secret`: each participant gets a
    /// credential of their own derived from it, never the secret itself.
    /// `VECHE_TURN_SECRET` takes precedence.
    pub secret: Option<TurnSecret>,
    /// Lifetime of an issued credential, in seconds (at least 60).
    /// Default 3600.
    pub ttl_secs: u64,
}

impl Default for TurnSection {
    fn default() -> Self {
        TurnSection {
            urls: Vec::new(),
            secret: None,
            ttl_secs: DEFAULT_TTL_SECS,
        }
    }
}

/// The TURN secret from `VECHE_TURN_SECRET`, which takes precedence over
/// `turn.secret`: the deploy files keep it out of the config file and give
/// coturn the same variable.
pub fn turn_secret_from_env() -> Option<TurnSecret> {
    std::env::var("VECHE_TURN_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .map(TurnSecret::new)
}

impl TurnSection {
    /// The TURN server the control plane issues credentials for, if `urls`
    /// and a secret (`env_secret`, from `VECHE_TURN_SECRET`, or `secret`)
    /// are set; both or neither.
    pub fn to_config(&self, env_secret: Option<TurnSecret>) -> anyhow::Result<Option<TurnConfig>> {
        match (
            env_secret.or_else(|| self.secret.clone()),
            self.urls.is_empty(),
        ) {
            (None, true) => Ok(None),
            (Some(secret), false) => Ok(Some(TurnConfig {
                urls: self.urls.clone(),
                secret,
                ttl_secs: self.ttl_secs.max(MIN_TTL_SECS),
            })),
            (None, false) => anyhow::bail!(
                "turn.urls is set but no TURN secret is: set VECHE_TURN_SECRET (or \
                 turn.secret) to coturn's static-auth-secret"
            ),
            (Some(_), true) => anyhow::bail!("a TURN secret is set but turn.urls is empty"),
        }
    }
}

/// What every refusal of a moved key says, so [`is_moved_key`] knows one.
const MOVED: &str = "moved to the [turn] section";

/// True for the message of a moved key's refusal, which
/// [`super::Config::load`] prints without the quoted line of the file: that
/// line may hold the old secret.
pub(super) fn is_moved_key(message: &str) -> bool {
    message.starts_with("media.turn_") && message.contains(MOVED)
}

/// The error for a `[media]` TURN key that moved to `[turn]`.
fn moved<E: serde::de::Error>(old: &str, new: &str) -> E {
    E::custom(format!(
        "media.{old} {MOVED} as `{new}`: the control plane issues TURN \
         credentials now, so the secret is set there (and VECHE_TURN_SECRET goes to the \
         control plane, not the media nodes); see docs/configuration.md"
    ))
}

/// Refuses `media.turn_urls` (see [`moved`]).
pub(super) fn refuse_turn_urls<'de, D: Deserializer<'de>>(_: D) -> Result<(), D::Error> {
    Err(moved("turn_urls", "urls"))
}

/// Refuses `media.turn_secret` (see [`moved`]). The value is never read,
/// so it cannot reach the error.
pub(super) fn refuse_turn_secret<'de, D: Deserializer<'de>>(_: D) -> Result<(), D::Error> {
    Err(moved("turn_secret", "secret"))
}

/// Refuses `media.turn_ttl_secs` (see [`moved`]).
pub(super) fn refuse_turn_ttl_secs<'de, D: Deserializer<'de>>(_: D) -> Result<(), D::Error> {
    Err(moved("turn_ttl_secs", "ttl_secs"))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn config(toml: &str) -> Config {
        toml::from_str(toml).expect("config parses")
    }

    #[test]
    fn turn_needs_urls_and_a_secret_together_and_lives_at_least_a_minute() {
        assert!(config("").turn.to_config(None).unwrap().is_none());
        assert!(config("[turn]\nsecret = \"s\"\n")
            .turn
            .to_config(None)
            .is_err());
        let cfg = config("[turn]\nurls = [\"turn:t.example\"]\nsecret = \"s\"\n");
        assert_eq!(cfg.turn.to_config(None).unwrap().unwrap().ttl_secs, 3600);
        let cfg = config("[turn]\nurls = [\"turn:t.example\"]\nsecret = \"s\"\nttl_secs = 5\n");
        assert_eq!(cfg.turn.to_config(None).unwrap().unwrap().ttl_secs, 60);
    }

    #[test]
    fn the_environments_turn_secret_wins_over_the_files_and_suffices_alone() {
        let from_env = veche_protocol::turn::TurnSecret::new("from-env");
        let cfg = config("[turn]\nurls = [\"turn:t.example\"]\nsecret = \"file\"\n");
        let t = cfg.turn.to_config(Some(from_env.clone())).unwrap().unwrap();
        assert_eq!(t.secret, from_env);
        let cfg = config("[turn]\nurls = [\"turn:t.example\"]\n");
        let t = cfg.turn.to_config(Some(from_env.clone())).unwrap().unwrap();
        assert_eq!(t.secret, from_env);
        let e = cfg.turn.to_config(None).unwrap_err().to_string();
        assert!(e.contains("VECHE_TURN_SECRET"), "{e}");
    }

    #[test]
    fn the_turn_secret_is_read_but_never_printed() {
        let c = config("[turn]\nurls = [\"turn:t.example:3478\"]\nsecret = \"hush-hush\"\n");
        assert!(c.turn.secret.is_some());
        assert_eq!(c.turn.ttl_secs, 3600);
        assert!(!format!("{c:?}").contains("hush-hush"));
        let t = c.turn.to_config(None).unwrap().unwrap();
        assert!(!format!("{t:?}").contains("hush-hush"));
    }

    #[test]
    fn the_old_media_keys_are_refused_with_a_pointer_to_the_turn_section() {
        for (key, value, new) in [
            ("turn_urls", "[\"turn:t.example:3478\"]", "`urls`"),
            ("turn_secret", "\"old-secret-value\"", "`secret`"),
            ("turn_ttl_secs", "600", "`ttl_secs`"),
        ] {
            let e = toml::from_str::<Config>(&format!("[media]\n{key} = {value}\n"))
                .err()
                .unwrap_or_else(|| panic!("media.{key} was accepted"));
            // The message alone: `Display` adds the quoted line, which
            // `Config::load` leaves out for these (the next test).
            let e = e.message();
            assert!(
                e.starts_with(&format!("media.{key} moved to the [turn] section as {new}")),
                "{e}"
            );
            assert!(super::is_moved_key(e), "{e}");
            assert!(!e.contains("old-secret-value"), "the error repeats it: {e}");
        }
    }

    #[test]
    fn loading_an_old_config_names_the_moved_key_but_never_shows_the_old_secret() {
        let path = std::env::temp_dir().join(format!(
            "veche-moved-turn-{}-{:?}.toml",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(
            &path,
            "[media]\nturn_secret = \"old-secret-value\"\nturn_urls = [\"turn:t\"]\n",
        )
        .unwrap();
        let e = Config::load(&path).expect_err("refused").to_string();
        let _ = std::fs::remove_file(&path);
        assert!(
            e.contains("media.turn_secret moved to the [turn] section"),
            "{e}"
        );
        assert!(!e.contains("old-secret-value"), "the error shows it: {e}");
    }
}
