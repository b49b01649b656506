//! `[recordings]`: where recordings are kept and for how long. The store
//! is a local directory by default (`<data_dir>/recordings`, so `veche
//! serve` needs nothing) or an S3-compatible bucket; a media node writes
//! segments to it through a local spool directory, and the control plane
//! reads, exports and deletes from the same store.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use veche_control_plane::recording_store::{self, S3Settings};
use veche_control_plane::RecordingsConfig;

/// `[recordings]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingsSection {
    /// Recordings stopped more than this many days ago are deleted with
    /// their objects; 0 keeps them forever. Default 30.
    pub retention_days: u32,
    /// Media node: where recordings are written before each segment is
    /// uploaded. Default `<data_dir>/recording-spool`.
    pub spool_dir: Option<PathBuf>,
    /// `[recordings.store]`: the object store.
    pub store: StoreSection,
}

impl Default for RecordingsSection {
    fn default() -> Self {
        RecordingsSection {
            retention_days: veche_protocol::limits::recording::DEFAULT_RETENTION_DAYS,
            spool_dir: None,
            store: StoreSection::default(),
        }
    }
}

/// `[recordings.store]`. `Debug` never prints the secret access key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `"local"` (default) or `"s3"`.
    pub kind: String,
    /// Local: the directory. Default `<data_dir>/recordings`.
    pub dir: Option<PathBuf>,
    /// S3: the server's base URL (`https://s3.example.com`).
    pub endpoint: Option<String>,
    /// S3: the bucket (it must exist).
    pub bucket: Option<String>,
    /// S3: the region. Default `us-east-1`.
    pub region: Option<String>,
    /// S3: access key id.
    pub access_key_id: Option<String>,
    /// S3: secret access key; `VECHE_S3_SECRET_ACCESS_KEY` takes
    /// precedence, so the file need hold no secret.
    pub secret_access_key: Option<String>,
    /// S3: allow a plain `http://` endpoint. Default false.
    pub allow_http: bool,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            kind: "local".into(),
            dir: None,
            endpoint: None,
            bucket: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
        }
    }
}

impl std::fmt::Debug for StoreSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSection")
            .field("kind", &self.kind)
            .field("dir", &self.dir)
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// The S3 secret from `VECHE_S3_SECRET_ACCESS_KEY`, which keeps it out of
/// the config file.
pub fn s3_secret_from_env() -> Option<String> {
    std::env::var("VECHE_S3_SECRET_ACCESS_KEY")
        .ok()
        .filter(|s| !s.is_empty())
}

impl RecordingsSection {
    /// The object store, checked: an unknown kind, S3 settings on a local
    /// store or a missing S3 setting fail start-up naming the key.
    pub fn object_store(
        &self,
        data_dir: &Path,
        env_secret: Option<String>,
    ) -> anyhow::Result<Arc<dyn object_store::ObjectStore>> {
        let s = &self.store;
        match s.kind.as_str() {
            "local" => {
                let s3_only = [
                    ("endpoint", s.endpoint.is_some()),
                    ("bucket", s.bucket.is_some()),
                    ("region", s.region.is_some()),
                    ("access_key_id", s.access_key_id.is_some()),
                    ("secret_access_key", s.secret_access_key.is_some()),
                    ("allow_http", s.allow_http),
                ];
                if let Some((key, _)) = s3_only.iter().find(|(_, set)| *set) {
                    anyhow::bail!(
                        "recordings.store.{key} is an S3 setting, but recordings.store.kind is \
                         \"local\": set kind = \"s3\" or remove it"
                    );
                }
                let dir = s.dir.clone().unwrap_or_else(|| data_dir.join("recordings"));
                recording_store::local(&dir).map_err(|e| anyhow::anyhow!(e))
            }
            "s3" => {
                if s.dir.is_some() {
                    anyhow::bail!(
                        "recordings.store.dir is for kind = \"local\"; an S3 store has a bucket"
                    );
                }
                let need = |v: &Option<String>, key: &str| {
                    v.clone().filter(|v| !v.is_empty()).ok_or_else(|| {
                        anyhow::anyhow!(
                            "recordings.store.kind = \"s3\" needs recordings.store.{key}"
                        )
                    })
                };
                let settings = S3Settings {
                    endpoint: need(&s.endpoint, "endpoint")?,
                    bucket: need(&s.bucket, "bucket")?,
                    region: s.region.clone().unwrap_or_else(|| "us-east-1".into()),
                    access_key_id: need(&s.access_key_id, "access_key_id")?,
                    secret_access_key: match env_secret {
                        Some(secret) => secret,
                        None => need(
                            &s.secret_access_key,
                            "secret_access_key (or VECHE_S3_SECRET_ACCESS_KEY)",
                        )?,
                    },
                    allow_http: s.allow_http,
                };
                recording_store::s3(&settings).map_err(|e| anyhow::anyhow!(e))
            }
            other => anyhow::bail!(
                "recordings.store.kind = {other:?} is not a store kind: use \"local\" or \"s3\""
            ),
        }
    }

    /// The media node's spool directory.
    pub fn spool_dir(&self, data_dir: &Path) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("recording-spool"))
    }

    /// What the control plane gets.
    pub fn control_plane(&self, objects: Arc<dyn object_store::ObjectStore>) -> RecordingsConfig {
        RecordingsConfig {
            objects: Some(objects),
            retention_days: self.retention_days,
        }
    }

    /// What the media node gets.
    pub fn media_node(
        &self,
        objects: Arc<dyn object_store::ObjectStore>,
        data_dir: &Path,
    ) -> veche_node::recorder::RecordingStorage {
        veche_node::recorder::RecordingStorage {
            store: objects,
            spool_dir: self.spool_dir(data_dir),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    fn store_error(toml: &str) -> String {
        let c: Config = toml::from_str(toml).expect("parses");
        let dir = std::env::temp_dir();
        match c.recordings.object_store(&dir, None) {
            Ok(_) => panic!("{toml} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn recordings_default_to_a_local_directory_kept_thirty_days() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.recordings.retention_days, 30);
        let dir = tempfile_dir();
        c.recordings.object_store(&dir, None).unwrap();
        assert!(dir.join("recordings").is_dir());
        assert_eq!(c.recordings.spool_dir(&dir), dir.join("recording-spool"));
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "veche-config-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn recordings_store_mistakes_fail_start_up_naming_the_key() {
        let e = store_error("[recordings.store]\nkind = \"gcs\"\n");
        assert!(
            e.contains("recordings.store.kind") && e.contains("gcs"),
            "{e}"
        );
        let e =
            store_error("[recordings.store]\nkind = \"s3\"\nendpoint = \"https://s3.example\"\n");
        assert!(e.contains("recordings.store.bucket"), "{e}");
        let e = store_error("[recordings.store]\nkind = \"s3\"\nbucket = \"b\"\n");
        assert!(e.contains("recordings.store.endpoint"), "{e}");
        let e = store_error("[recordings.store]\nbucket = \"b\"\n");
        assert!(
            e.contains("recordings.store.bucket") && e.contains("local"),
            "{e}"
        );
        let e = store_error(
            "[recordings.store]\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:9000\"\n\
             bucket = \"b\"\naccess_key_id = \"k\"\nsecret_access_key = \"s3-secret-value\"\n",
        );
        assert!(
            e.contains("allow_http") && !e.contains("s3-secret-value"),
            "{e}"
        );
        assert!(toml::from_str::<Config>("[recordings]\nretention = 3\n").is_err());
    }

    #[test]
    fn recordings_s3_store_is_built_and_its_secret_never_printed() {
        let c: Config = toml::from_str(
            "[recordings]\nretention_days = 0\n[recordings.store]\nkind = \"s3\"\n\
             endpoint = \"http://127.0.0.1:9000\"\nbucket = \"veche\"\nregion = \"eu-1\"\n\
             access_key_id = \"key\"\nsecret_access_key = \"s3-secret-value\"\nallow_http = true\n",
        )
        .unwrap();
        assert_eq!(c.recordings.retention_days, 0);
        let store = c.recordings.object_store(&tempfile_dir(), None).unwrap();
        assert!(!format!("{store}").contains("s3-secret-value"));
        assert!(!format!("{c:?}").contains("s3-secret-value"));
    }
}
