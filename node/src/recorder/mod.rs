//! The recorder: a media node writes the tracks of its own publishers to
//! WebM files in object storage while the room's policy says a recording
//! runs (docs/architecture.md, "Recording").
//!
//! Layers, each only importing those below it:
//! - pure decisions: [`clock`] (RTP → node time), [`segmenter`] (where to
//!   cut), [`jitter`] (reordering, bounded), [`depack`] (frames and the
//!   keyframe discipline);
//! - the file: [`spool`] (the writer that sees settled points), [`mux`]
//!   (libwebm), [`file`] (one file's state machine, driven by `now`);
//! - the edge: [`task`] (one tokio task per file: packets in, uploads
//!   out), [`reporter`] (reports to the control plane until acknowledged),
//!   [`room`] (a room's recorder: which files exist, fed by the room).

pub mod clock;
pub mod depack;
pub mod file;
pub mod jitter;
pub mod mux;
pub mod reporter;
pub mod room;
pub mod segmenter;
pub mod spool;
pub mod task;

use object_store::ObjectStore;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a node's recordings go.
#[derive(Clone)]
pub struct RecordingStorage {
    /// The object store segments are uploaded to (a local directory or
    /// S3-compatible storage).
    pub store: Arc<dyn ObjectStore>,
    /// A local directory for the files being written: libwebm seeks back
    /// to patch sizes, so it writes a seekable local file, and segments
    /// are uploaded from it.
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

#[cfg(test)]
pub(crate) mod testmedia;
#[cfg(test)]
mod tests;
