//! Recording (issue 13). PLACEHOLDER from helper `files` so that the
//! storage wiring compiles before helper `rec`'s recorder is merged: the
//! lead keeps `rec`'s version of this file, which defines the same type.

use std::path::PathBuf;
use std::sync::Arc;

/// Where a node's recordings go: the object store segments are uploaded
/// to (the same one the control plane reads), and the local spool
/// directory the muxer writes to before a segment is uploaded.
#[derive(Clone)]
pub struct RecordingStorage {
    /// The object store.
    pub store: Arc<dyn object_store::ObjectStore>,
    /// The local spool directory.
    pub spool_dir: PathBuf,
}

impl std::fmt::Debug for RecordingStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingStorage")
            .field("store", &self.store.to_string())
            .field("spool_dir", &self.spool_dir)
            .finish()
    }
}
