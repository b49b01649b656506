//! The retention duty's loop: on the leader, at start and every
//! [`PERIOD_MS`], [`sweep`] over the replicated recordings index
//! (`store::recordings`). The decisions are in [`crate::recording_retention`].

use crate::recording_retention::{sweep, RetentionIndex, BATCH, PERIOD_MS};
use crate::store::{RecordingStore, StoreError};
use crate::ControlPlane;
use std::sync::Weak;
use std::time::Duration;
use veche_protocol::recording::RecordingId;

/// How soon a new leader (or a process that just started) sweeps: soon,
/// but after the store has settled.
const FIRST_PASS_AFTER: Duration = Duration::from_secs(30);

impl RetentionIndex for crate::leader::Replicated {
    async fn expired(&self, before_ms: u64, limit: usize) -> Result<Vec<RecordingId>, String> {
        self.expired_recordings(before_ms, limit)
            .await
            .map_err(|e: StoreError| e.to_string())
    }

    async fn remove(&self, id: &RecordingId) -> Result<(), String> {
        self.delete_recording(id.clone())
            .await
            .map(|_| ())
            .map_err(|e: StoreError| e.to_string())
    }
}

/// Runs until the control plane is dropped. A pass that deleted a full
/// batch is followed by another at once; otherwise the next is a day
/// later. Only the leader sweeps: the writes would be forwarded to it
/// anyway, and one sweeper never races another.
pub(crate) async fn run(cp: Weak<ControlPlane>) {
    tokio::time::sleep(FIRST_PASS_AFTER).await;
    loop {
        let Some(strong) = cp.upgrade() else { return };
        let days = strong.config.recordings.retention_days;
        let mut next = Duration::from_millis(PERIOD_MS);
        if days > 0 && strong.is_leader() {
            let store = strong.recording_objects();
            match sweep(&strong.replicated(), store.as_ref(), crate::now_ms(), days).await {
                Ok(n) if n >= BATCH => next = Duration::from_secs(1),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("recording retention: {e}");
                    next = Duration::from_secs(600);
                }
            }
        } else if days > 0 {
            // Not the leader now; look again soon, in case it becomes one.
            next = Duration::from_secs(600);
        }
        drop(strong);
        tokio::time::sleep(next).await;
    }
}
