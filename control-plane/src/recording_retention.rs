//! Retention: the leader deletes recordings stopped more than
//! `retention_days` ago (`[recordings] retention_days`; 0 keeps them
//! forever), at start and then daily. Objects go first, the index entry
//! after: an index entry whose objects are gone is impossible to reach
//! only if the deletion of the objects finished, so a failure in between
//! leaves a recording that is still listed and is deleted again on the
//! next pass, never unlisted objects nobody would find.
//!
//! The decisions ([`cutoff_ms`]) take `now`; [`sweep`] works on any
//! [`RetentionIndex`] (the replicated recordings index, in
//! `recording_retention_run.rs`) and any object store.

use crate::recording_files::delete_objects;
use object_store::ObjectStore;
use std::future::Future;
use veche_protocol::recording::RecordingId;

/// How often the leader looks for expired recordings.
pub const PERIOD_MS: u64 = 24 * 3600 * 1000;
/// Recordings deleted per pass at most; the next pass (or the one after
/// a full batch, immediately) takes the rest.
pub const BATCH: usize = 100;

/// Recordings stopped before this instant are expired at `now_ms`;
/// `None` when retention is off (0 days).
pub fn cutoff_ms(now_ms: u64, retention_days: u32) -> Option<u64> {
    if retention_days == 0 {
        return None;
    }
    Some(now_ms.saturating_sub(u64::from(retention_days) * 24 * 3600 * 1000))
}

/// What retention needs from the recordings index.
pub trait RetentionIndex {
    /// Recordings stopped before `stopped_before_ms`, at most `limit`.
    fn expired(
        &self,
        stopped_before_ms: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordingId>, String>> + Send;
    /// Removes the recording from the index (its objects are gone).
    fn remove(&self, id: &RecordingId) -> impl Future<Output = Result<(), String>> + Send;
}

/// One pass: deletes up to [`BATCH`] expired recordings, objects then
/// index. Returns how many were deleted; a recording whose objects could
/// not be deleted is skipped (logged) and tried again next pass.
pub async fn sweep(
    index: &impl RetentionIndex,
    store: &dyn ObjectStore,
    now_ms: u64,
    retention_days: u32,
) -> Result<usize, String> {
    let Some(cutoff) = cutoff_ms(now_ms, retention_days) else {
        return Ok(0);
    };
    let mut deleted = 0;
    for id in index.expired(cutoff, BATCH).await? {
        if let Err(e) = delete_objects(store, &id).await {
            tracing::warn!(recording = %id, "retention: objects not deleted, kept for now: {e}");
            continue;
        }
        index.remove(&id).await?;
        tracing::info!(recording = %id, retention_days, "recording deleted by retention");
        deleted += 1;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording_files::tests::put_segments;
    use futures::TryStreamExt;
    use object_store::local::LocalFileSystem;
    use std::sync::Mutex;
    use veche_protocol::recording::FileId;

    const DAY: u64 = 24 * 3600 * 1000;

    /// The index part as a list of (id, stopped at): retention's contract
    /// with the index, not the index (its conformance cases are its own).
    struct Stopped(Mutex<Vec<(RecordingId, Option<u64>)>>);

    impl RetentionIndex for Stopped {
        async fn expired(&self, before: u64, limit: usize) -> Result<Vec<RecordingId>, String> {
            let list = self.0.lock().unwrap();
            Ok(list
                .iter()
                .filter(|(_, s)| s.is_some_and(|s| s < before))
                .take(limit)
                .map(|(id, _)| id.clone())
                .collect())
        }
        async fn remove(&self, id: &RecordingId) -> Result<(), String> {
            self.0.lock().unwrap().retain(|(r, _)| r != id);
            Ok(())
        }
    }

    #[test]
    fn recording_retention_of_zero_days_keeps_everything() {
        assert_eq!(cutoff_ms(100 * DAY, 0), None);
        assert_eq!(cutoff_ms(100 * DAY, 30), Some(70 * DAY));
        assert_eq!(cutoff_ms(DAY, 30), Some(0));
    }

    #[tokio::test]
    async fn recording_retention_deletes_old_recordings_objects_then_index_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let old = RecordingId::from_random([1; 8]);
        let recent = RecordingId::from_random([2; 8]);
        let running = RecordingId::from_random([3; 8]);
        let f = FileId::from_random([9; 8]);
        for r in [&old, &recent, &running] {
            put_segments(&store, r, &f, &[10]).await;
        }
        let now = 100 * DAY;
        let index = Stopped(Mutex::new(vec![
            (old.clone(), Some(now - 31 * DAY)),
            (recent.clone(), Some(now - 29 * DAY)),
            (running.clone(), None),
        ]));
        assert_eq!(sweep(&index, &store, now, 0).await.unwrap(), 0);
        assert_eq!(sweep(&index, &store, now, 30).await.unwrap(), 1);
        let left: Vec<RecordingId> = index
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _)| r.clone())
            .collect();
        assert_eq!(left, vec![recent.clone(), running.clone()]);
        let objects: Vec<String> = object_store::ObjectStore::list(&store, None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(objects.len(), 2, "{objects:?}");
        assert!(
            !objects.iter().any(|o| o.contains(old.as_str())),
            "{objects:?}"
        );
    }
}
