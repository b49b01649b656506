//! The leader's wait duty: a stopped recording awaits the last report
//! (`done`) of each node that hosted its room (`store::recordings`). A
//! node that is alive but never says done (it has no recording storage, or
//! a bug) would keep the recording "finishing" forever, so once
//! [`DONE_WAIT_MS`] has passed since the oldest such stop the leader
//! commits [`RecordingCommand::StopWaiting`] with its clock: those nodes
//! are no longer awaited, their unended files are interrupted, and the
//! recording becomes ready. Dead nodes are settled sooner, by the
//! statistics duty's `NodeLost`.
//!
//! [`RecordingCommand::StopWaiting`]: crate::store::recordings::RecordingCommand::StopWaiting

use crate::store::RecordingStore;
use crate::ControlPlane;
use std::sync::Weak;
use std::time::Duration;
use veche_protocol::limits::recording::DONE_WAIT_MS;
use veche_protocol::UnixMillis;

/// How often the leader looks: a small share of the wait, so a recording
/// settles at most this late past it, with one cheap read per period.
const PERIOD: Duration = Duration::from_secs(5);

/// Runs until the control plane is dropped; on the leader only.
pub(crate) async fn run(cp: Weak<ControlPlane>) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(cp) = cp.upgrade() else { return };
        if !cp.is_leader() {
            continue;
        }
        if let Err(e) = pass(&cp).await {
            tracing::debug!("recording wait duty: {e}");
        }
    }
}

/// Whether the wait is over for a recording stopped at `oldest_stop_ms`
/// (the oldest one not ready) at `now_ms`.
fn wait_is_over(oldest_stop_ms: Option<UnixMillis>, now_ms: UnixMillis) -> bool {
    oldest_stop_ms.is_some_and(|at| now_ms >= at.saturating_add(DONE_WAIT_MS))
}

async fn pass(cp: &ControlPlane) -> Result<(), crate::store::StoreError> {
    let now = crate::now_ms();
    if !wait_is_over(cp.store.oldest_finishing_recording().await?, now) {
        return Ok(());
    }
    let n = cp
        .store
        .stop_waiting_for_nodes(now, cp.webhooks_enabled())
        .await?;
    if n > 0 {
        tracing::info!(
            recordings = n,
            "stopped waiting for media nodes' last recording reports"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_over_only_once_its_length_has_passed_since_the_oldest_stop() {
        assert!(!wait_is_over(None, 1_000_000));
        assert!(!wait_is_over(Some(10_000), 10_000 + DONE_WAIT_MS - 1));
        assert!(wait_is_over(Some(10_000), 10_000 + DONE_WAIT_MS));
    }
}
