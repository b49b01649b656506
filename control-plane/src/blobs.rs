//! Files kept outside Raft (avatars, room covers): an [`ObjectStore`] (a
//! local directory by default), of which each capability keeps only keys
//! in its replicated records. Keys are unique per upload, so an object
//! never changes once written and caches may keep its URL forever. In a
//! cluster of several control-plane nodes every node must see the same
//! store (a shared mount). Recordings, which may use S3, have their own
//! store (`recording_store`).

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::path::Path;
use std::sync::Arc;

/// A store of immutable objects under string keys.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobStore({})", self.store)
    }
}

/// The store failed (a disk error, a missing directory).
#[derive(Debug, thiserror::Error)]
#[error("object store: {0}")]
pub struct StoreFailed(String);

impl BlobStore {
    /// A store in the local directory `dir`, created if missing.
    pub fn local(dir: &Path) -> Result<Self, StoreFailed> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreFailed(format!("cannot create {}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| StoreFailed(e.to_string()))?;
        Ok(BlobStore {
            store: Arc::new(fs),
        })
    }

    /// A fresh key under `prefix` (`prefix/<24 random hex digits>`), so
    /// each upload has its own key and URL.
    pub fn random_key(prefix: &str) -> String {
        let r: [u8; 12] = crate::random_bytes();
        let r: String = r.iter().map(|b| format!("{b:02x}")).collect();
        format!("{prefix}/{r}")
    }

    fn path(key: &str) -> Result<ObjectPath, StoreFailed> {
        ObjectPath::parse(key).map_err(|e| StoreFailed(e.to_string()))
    }

    /// Stores `bytes` under `key`.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreFailed> {
        self.store
            .put(&Self::path(key)?, PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| StoreFailed(e.to_string()))
    }

    /// The bytes under `key`, `None` if there are none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreFailed> {
        match self.store.get(&Self::path(key)?).await {
            Ok(r) => r
                .bytes()
                .await
                .map(Some)
                .map_err(|e| StoreFailed(e.to_string())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreFailed(e.to_string())),
        }
    }

    /// Removes `key`; removing a missing key is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreFailed> {
        match self.store.delete(&Self::path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreFailed(e.to_string())),
        }
    }
}
