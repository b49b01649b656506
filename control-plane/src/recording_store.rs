//! The object store recordings live in: a local directory (one machine,
//! `veche serve`), or any S3-compatible server (a cluster, where every
//! media node writes and every control-plane node reads the same bucket).
//! `[recordings.store]` in `veche.toml` picks one; both processes of a
//! `veche serve` share the one store built here.

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use std::path::Path;
use std::sync::Arc;

/// Where an S3-compatible store is and how to sign in to it. `Debug`
/// never prints the secret key.
#[derive(Clone)]
pub struct S3Settings {
    /// Base URL of the server (`https://s3.example.com`,
    /// `http://127.0.0.1:9000`). Requests use path style
    /// (`<endpoint>/<bucket>/<key>`), which every S3-compatible server
    /// understands and which needs no DNS name per bucket.
    pub endpoint: String,
    /// The bucket; it must exist.
    pub bucket: String,
    /// The region the server expects in signatures.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Whether a plain `http://` endpoint is allowed (loopback, a private
    /// network).
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// A store in the local directory `dir`, created if missing.
pub fn local(dir: &Path) -> Result<Arc<dyn ObjectStore>, String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "cannot create the recordings directory {}: {e}",
            dir.display()
        )
    })?;
    let fs = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| format!("recordings directory {}: {e}", dir.display()))?;
    Ok(Arc::new(fs))
}

/// A store in an S3-compatible bucket. Nothing is contacted yet: a wrong
/// endpoint or key shows on the first upload or read.
pub fn s3(s: &S3Settings) -> Result<Arc<dyn ObjectStore>, String> {
    if s.endpoint.starts_with("http://") && !s.allow_http {
        return Err(format!(
            "recordings.store.endpoint {:?} is plain http: set recordings.store.allow_http = \
             true to allow it (loopback or a private network only)",
            s.endpoint
        ));
    }
    let store = AmazonS3Builder::new()
        .with_endpoint(&s.endpoint)
        .with_bucket_name(&s.bucket)
        .with_region(&s.region)
        .with_access_key_id(&s.access_key_id)
        .with_secret_access_key(&s.secret_access_key)
        .with_allow_http(s.allow_http)
        .with_virtual_hosted_style_request(false)
        .build()
        .map_err(|e| format!("recordings.store (s3): {e}"))?;
    Ok(Arc::new(store))
}
