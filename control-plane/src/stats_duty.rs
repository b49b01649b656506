//! The leader's statistics duty: a media node that dies cannot report its
//! participants' leaves, so the leader closes that node's open participant
//! sessions once its liveness table declares the node dead (no heartbeat
//! for [`LIVENESS_TTL`]), at the time of its last heartbeat. Without this
//! a crashed node's meetings would stay "online" forever.
//!
//! The time is the best the leader knows: the last beat it received, or,
//! for a node that has not beaten since this leader took over (it died
//! during the failover), the end of the new leader's grace period minus
//! the TTL. A node that was only cut off and comes back reports leaves of
//! sessions already closed; those are skipped (`store::stats`).
//!
//! The same command interrupts the recorded files the dead node was still
//! writing (`store::recordings`, through `store::capabilities`): the
//! segments it uploaded stay indexed and play.

use crate::media_registry::LIVENESS_TTL;
use crate::store::stats::{StatsCommand, StatsOutput};
use crate::store::{RecordingStore, StatsStore};
use crate::ControlPlane;
use std::collections::BTreeSet;
use std::sync::Weak;
use std::time::{Duration, Instant};
use veche_protocol::rpc::HEARTBEAT_INTERVAL_MS;
use veche_protocol::{NodeId, UnixMillis};

/// Runs until the control plane is dropped: once a heartbeat interval, on
/// the leader only. The statistics are read (a linearizable read) only
/// when a node has died since the last pass, not every second.
pub(crate) async fn run(cp: Weak<ControlPlane>) {
    let mut tick = tokio::time::interval(Duration::from_millis(HEARTBEAT_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Dead nodes already handled in this term of leadership.
    let mut handled: BTreeSet<NodeId> = BTreeSet::new();
    loop {
        tick.tick().await;
        let Some(cp) = cp.upgrade() else { return };
        if !cp.is_leader() {
            handled.clear();
            continue;
        }
        match close_dead_nodes(&cp, &mut handled).await {
            Ok(()) => {}
            Err(e) => {
                handled.clear();
                tracing::debug!("statistics duty: {e}");
            }
        }
    }
}

/// Which of `nodes` are dead at `now`, with the wall-clock time each was
/// last heard from. `last_beat_ago` is the liveness table's answer for a
/// node: `None` if it is alive, `Some(None)` if dead with no beat this
/// term, `Some(Some(ms))` if dead, last heard `ms` ago.
fn dead_since(
    nodes: &[NodeId],
    last_beat_ago: impl Fn(NodeId) -> Option<Option<u64>>,
    now_ms: UnixMillis,
) -> Vec<(NodeId, UnixMillis)> {
    nodes
        .iter()
        .filter_map(|n| {
            let ago = last_beat_ago(*n)?.unwrap_or(LIVENESS_TTL.as_millis() as u64);
            Some((*n, now_ms.saturating_sub(ago)))
        })
        .collect()
}

async fn close_dead_nodes(
    cp: &ControlPlane,
    handled: &mut BTreeSet<NodeId>,
) -> Result<(), crate::store::StoreError> {
    let registered = cp.store.local().media_nodes()?;
    let now = Instant::now();
    let status = {
        let mut l = cp.liveness.lock().expect("lock poisoned");
        l.observe_term(cp.store.current_term(), now);
        l.status(&registered, now)
    };
    let dead_now: BTreeSet<NodeId> = status
        .iter()
        .filter(|s| !s.alive)
        .map(|s| s.info.node_id)
        .collect();
    handled.retain(|n| dead_now.contains(n));
    if dead_now.is_subset(handled) {
        return Ok(());
    }
    let mut candidates = cp.store.stats_read(|q| q.nodes_with_open_seats()).await?;
    // A node may be writing recorded files with nobody seated on it any
    // more (finishing them after the last leave): its death interrupts
    // them, through the same command.
    for n in cp.store.recording_nodes().await? {
        if !candidates.contains(&n) {
            candidates.push(n);
        }
    }
    let dead = dead_since(
        &candidates,
        |n| match status.iter().find(|s| s.info.node_id == n) {
            Some(s) if s.alive => None,
            Some(s) => Some(s.last_heartbeat_ms_ago),
            // Not registered at all: nobody will ever report for it.
            None => Some(None),
        },
        crate::now_ms(),
    );
    for (node, at_ms) in dead {
        if let StatsOutput::Closed(n) = cp
            .store
            .stats(StatsCommand::NodeLost {
                node_id: node,
                at_ms,
                webhooks: cp.webhooks_enabled(),
            })
            .await?
        {
            if n > 0 {
                tracing::info!(%node, closed = n, "media node is dead; closed its participant sessions");
                cp.metrics.stats_sessions_closed_lost.inc_by(n);
            }
        }
    }
    *handled = dead_now;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_nodes_are_closed_at_their_last_beat() {
        let nodes = [NodeId(1), NodeId(2), NodeId(3)];
        let dead = dead_since(
            &nodes,
            |n| match n.0 {
                1 => None,
                2 => Some(Some(4_000)),
                _ => Some(None),
            },
            100_000,
        );
        assert_eq!(
            dead,
            vec![
                (NodeId(2), 96_000),
                (NodeId(3), 100_000 - LIVENESS_TTL.as_millis() as u64)
            ]
        );
    }
}
