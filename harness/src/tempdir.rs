//! Temporary directories for data, logs and certificates.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory under the system temp dir, removed on drop. One made
/// with [`TempDir::new`] is kept if the thread is panicking (a failing
/// test), and its path is printed, so that the logs and data in it can be
/// inspected.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    keep_on_failure: bool,
}

impl TempDir {
    /// Creates `veche-<label>-<pid>-<n>-<random>` under the temp dir, kept
    /// for inspection if the thread panics.
    pub fn new(label: &str) -> TempDir {
        let mut dir = TempDir::scratch(label);
        dir.keep_on_failure = true;
        dir
    }

    /// Like [`TempDir::new`], but always removed (a browser profile is big
    /// and says nothing about a failure).
    pub fn scratch(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "veche-{label}-{}-{n}-{}",
            std::process::id(),
            crate::random_hex(4)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir {
            path,
            keep_on_failure: false,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep_on_failure && std::thread::panicking() {
            eprintln!("[harness] keeping {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
