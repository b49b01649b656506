//! Media-node liveness and placement: the leader's in-memory view of which
//! registered media nodes are alive and how loaded they are.
//!
//! Registrations are durable (a Raft entry each, see
//! [`crate::store::model::Command::RegisterMediaNode`]); heartbeats are not.
//! A heartbeat a second from every node through the log would cost an fsync
//! on every control-plane node for information that is stale seconds later,
//! so only the leader keeps it, in this structure, and a new leader starts
//! empty. No I/O and no clock: callers pass `now`.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use veche_protocol::admin::MediaNodeStatus;
use veche_protocol::rpc::{MediaNodeInfo, HEARTBEAT_INTERVAL_MS};
use veche_protocol::NodeId;

/// A node whose last heartbeat is older than this is not given new
/// participants: three missed beats, so one lost packet or a GC pause does
/// not take a node out of rotation.
pub const LIVENESS_TTL: Duration = Duration::from_millis(3 * HEARTBEAT_INTERVAL_MS);

#[derive(Clone, Copy, Debug)]
struct Beat {
    at: Instant,
    participants: u32,
    rooms: u32,
}

/// The leader's liveness table.
#[derive(Debug, Default)]
pub struct Liveness {
    beats: HashMap<NodeId, Beat>,
    /// The term this table belongs to and when this node saw it start. A
    /// table from an earlier term of ours is stale (another leader may have
    /// served in between), so it is cleared when the term changes.
    term: Option<(u64, Instant)>,
}

impl Liveness {
    /// Called before every use on the leader with the current term: a new
    /// term starts an empty table.
    pub fn observe_term(&mut self, term: u64, now: Instant) {
        if self.term.map(|(t, _)| t) != Some(term) {
            self.beats.clear();
            self.term = Some((term, now));
        }
    }

    /// Records a heartbeat.
    pub fn heartbeat(&mut self, node: NodeId, participants: u32, rooms: u32, now: Instant) {
        self.beats.insert(
            node,
            Beat {
                at: now,
                participants,
                rooms,
            },
        );
    }

    /// Whether `node` may receive participants. A node with a recent beat
    /// is alive. So is a registered node that has not had the chance to
    /// beat yet because this leader is new: without that grace, every join
    /// in the first seconds after a failover would be refused.
    pub fn is_alive(&self, node: NodeId, now: Instant) -> bool {
        match self.beats.get(&node) {
            Some(b) => now.saturating_duration_since(b.at) <= LIVENESS_TTL,
            None => self
                .term
                .is_some_and(|(_, since)| now.saturating_duration_since(since) <= LIVENESS_TTL),
        }
    }

    /// Chooses a node for a new participant: alive, under capacity, least
    /// loaded relative to its capacity; ties go to the lowest id so the
    /// choice is deterministic. The chosen node's count goes up by one at
    /// once, so a burst of joins between two heartbeats spreads out
    /// instead of piling onto one node.
    pub fn place<'a>(
        &mut self,
        nodes: &'a [MediaNodeInfo],
        now: Instant,
    ) -> Option<&'a MediaNodeInfo> {
        let load = |n: &MediaNodeInfo| self.beats.get(&n.node_id).map_or(0, |b| b.participants);
        let chosen = nodes
            .iter()
            .filter(|n| self.is_alive(n.node_id, now))
            .filter(|n| n.capacity == 0 || load(n) < n.capacity)
            .min_by(|a, b| {
                // Compare load/capacity as fractions without floats;
                // unlimited capacity counts as u32::MAX.
                let cap = |n: &MediaNodeInfo| {
                    u64::from(if n.capacity == 0 {
                        u32::MAX
                    } else {
                        n.capacity
                    })
                };
                (u64::from(load(a)) * cap(b))
                    .cmp(&(u64::from(load(b)) * cap(a)))
                    .then(a.node_id.cmp(&b.node_id))
            })?;
        if let Some(b) = self.beats.get_mut(&chosen.node_id) {
            b.participants = b.participants.saturating_add(1);
        } else if self.is_alive(chosen.node_id, now) {
            // In the post-election grace: start counting from this join.
            // The node's next heartbeat replaces the estimate.
            let since = self.term.map_or(now, |(_, s)| s);
            self.beats.insert(
                chosen.node_id,
                Beat {
                    at: since,
                    participants: 1,
                    rooms: 0,
                },
            );
        }
        Some(chosen)
    }

    /// Every registered node with its liveness, for the admin view.
    pub fn status(&self, nodes: &[MediaNodeInfo], now: Instant) -> Vec<MediaNodeStatus> {
        nodes
            .iter()
            .map(|n| {
                let beat = self.beats.get(&n.node_id);
                MediaNodeStatus {
                    info: n.clone(),
                    alive: self.is_alive(n.node_id, now),
                    last_heartbeat_ms_ago: beat
                        .map(|b| now.saturating_duration_since(b.at).as_millis() as u64),
                    participants: beat.map_or(0, |b| b.participants),
                    rooms: beat.map_or(0, |b| b.rooms),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, capacity: u32) -> MediaNodeInfo {
        MediaNodeInfo {
            node_id: NodeId(id),
            region: String::new(),
            ws_url: format!("ws://n{id}/media/ws"),
            capacity,
        }
    }

    #[test]
    fn a_new_leader_places_on_registered_nodes_before_their_first_heartbeat() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.observe_term(2, t0);
        let nodes = [node(1, 0)];
        assert_eq!(l.place(&nodes, t0).map(|n| n.node_id), Some(NodeId(1)));
        // After the grace period a node that never beat is dead.
        let later = t0 + LIVENESS_TTL + Duration::from_millis(1);
        let mut l = Liveness::default();
        l.observe_term(2, t0);
        assert!(l.place(&nodes, later).is_none());
    }

    #[test]
    fn a_node_that_stops_beating_gets_no_new_participants() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.observe_term(1, t0);
        l.heartbeat(NodeId(1), 0, 0, t0);
        l.heartbeat(NodeId(2), 5, 1, t0);
        let nodes = [node(1, 0), node(2, 0)];
        let t1 = t0 + LIVENESS_TTL - Duration::from_millis(1);
        l.heartbeat(NodeId(2), 5, 1, t1);
        let t2 = t0 + LIVENESS_TTL + Duration::from_millis(500);
        assert_eq!(l.place(&nodes, t2).map(|n| n.node_id), Some(NodeId(2)));
        assert!(!l.is_alive(NodeId(1), t2));
    }

    #[test]
    fn joins_spread_by_load_relative_to_capacity() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.observe_term(1, t0);
        l.heartbeat(NodeId(1), 0, 0, t0);
        l.heartbeat(NodeId(2), 0, 0, t0);
        let nodes = [node(1, 10), node(2, 30)];
        let mut counts = [0; 2];
        for _ in 0..40 {
            let n = l.place(&nodes, t0).expect("capacity left");
            counts[(n.node_id.0 - 1) as usize] += 1;
        }
        assert_eq!(counts, [10, 30]);
        assert!(l.place(&nodes, t0).is_none(), "both nodes are full");
    }

    #[test]
    fn a_new_term_forgets_heartbeats_from_an_earlier_one() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.observe_term(1, t0);
        l.heartbeat(NodeId(1), 7, 1, t0);
        l.observe_term(3, t0 + Duration::from_secs(60));
        let s = l.status(&[node(1, 0)], t0 + Duration::from_secs(60));
        assert_eq!(s[0].last_heartbeat_ms_ago, None);
        assert!(s[0].alive, "grace period of the new term");
    }
}
