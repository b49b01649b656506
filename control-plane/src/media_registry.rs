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
use veche_protocol::{NodeId, RoomId};

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

/// Where a room's participants are sent, and since when.
#[derive(Clone, Copy, Debug)]
struct Host {
    node: NodeId,
    /// When a placement or a heartbeat last confirmed it.
    seen: Instant,
}

/// The leader's liveness table.
#[derive(Debug, Default)]
pub struct Liveness {
    beats: HashMap<NodeId, Beat>,
    /// Which node hosts each room. Until rooms can span media nodes
    /// (cascading), everyone in a room must be on the same node, so a room
    /// stays where its first participant went for as long as that node is
    /// alive. Learned from placements and from heartbeats, so a new leader
    /// knows it within one heartbeat.
    hosts: HashMap<RoomId, Host>,
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
            self.hosts.clear();
            self.term = Some((term, now));
        }
    }

    /// Records a heartbeat: load, and the rooms the node hosts. A room the
    /// node no longer reports is forgotten, unless it was placed there so
    /// recently that its first participant may still be connecting.
    pub fn heartbeat(
        &mut self,
        node: NodeId,
        participants: u32,
        room_ids: &[RoomId],
        now: Instant,
    ) {
        self.beats.insert(
            node,
            Beat {
                at: now,
                participants,
                rooms: room_ids.len() as u32,
            },
        );
        self.hosts.retain(|room, h| {
            h.node != node
                || room_ids.contains(room)
                || now.saturating_duration_since(h.seen) <= LIVENESS_TTL
        });
        for room in room_ids {
            self.hosts.insert(*room, Host { node, seen: now });
        }
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

    /// Chooses a node for a new participant of `room`. If the room already
    /// lives on an alive node, that node (a room cannot span nodes yet).
    /// Otherwise: alive, under capacity, least loaded relative to its
    /// capacity; ties go to the lowest id so the choice is deterministic.
    /// The chosen node's count goes up by one at once, so a burst of joins
    /// between two heartbeats spreads out instead of piling onto one node.
    pub fn place<'a>(
        &mut self,
        room: RoomId,
        nodes: &'a [MediaNodeInfo],
        now: Instant,
    ) -> Option<&'a MediaNodeInfo> {
        let hosted = self
            .hosts
            .get(&room)
            .filter(|h| self.is_alive(h.node, now))
            .and_then(|h| nodes.iter().find(|n| n.node_id == h.node));
        let chosen = match hosted {
            Some(n) => n,
            None => self.least_loaded(nodes, now)?,
        };
        self.hosts.insert(
            room,
            Host {
                node: chosen.node_id,
                seen: now,
            },
        );
        self.count_one_more(chosen.node_id, now);
        Some(chosen)
    }

    fn least_loaded<'a>(
        &self,
        nodes: &'a [MediaNodeInfo],
        now: Instant,
    ) -> Option<&'a MediaNodeInfo> {
        let load = |n: &MediaNodeInfo| self.beats.get(&n.node_id).map_or(0, |b| b.participants);
        nodes
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
            })
    }

    fn count_one_more(&mut self, node: NodeId, now: Instant) {
        if let Some(b) = self.beats.get_mut(&node) {
            b.participants = b.participants.saturating_add(1);
        } else if self.is_alive(node, now) {
            // In the post-election grace: start counting from this join.
            // The node's next heartbeat replaces the estimate.
            let since = self.term.map_or(now, |(_, s)| s);
            self.beats.insert(
                node,
                Beat {
                    at: since,
                    participants: 1,
                    rooms: 0,
                },
            );
        }
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
                    draining: false,
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
            relay_addr: None,
        }
    }

    #[test]
    fn a_new_leader_places_on_registered_nodes_before_their_first_heartbeat() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.observe_term(2, t0);
        let nodes = [node(1, 0)];
        assert_eq!(
            l.place(RoomId(1), &nodes, t0).map(|n| n.node_id),
            Some(NodeId(1))
        );
        // After the grace period a node that never beat is dead.
        let later = t0 + LIVENESS_TTL + Duration::from_millis(1);
        let mut l = Liveness::default();
        l.observe_term(2, t0);
        assert!(l.place(RoomId(1), &nodes, later).is_none());
    }

    #[test]
    fn a_node_that_stops_beating_gets_no_new_participants() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.observe_term(1, t0);
        l.heartbeat(NodeId(1), 0, &[], t0);
        l.heartbeat(NodeId(2), 5, &[RoomId(9)], t0);
        let nodes = [node(1, 0), node(2, 0)];
        let t1 = t0 + LIVENESS_TTL - Duration::from_millis(1);
        l.heartbeat(NodeId(2), 5, &[RoomId(9)], t1);
        let t2 = t0 + LIVENESS_TTL + Duration::from_millis(500);
        assert_eq!(
            l.place(RoomId(1), &nodes, t2).map(|n| n.node_id),
            Some(NodeId(2))
        );
        assert!(!l.is_alive(NodeId(1), t2));
    }

    #[test]
    fn joins_spread_by_load_relative_to_capacity() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.observe_term(1, t0);
        l.heartbeat(NodeId(1), 0, &[], t0);
        l.heartbeat(NodeId(2), 0, &[], t0);
        let nodes = [node(1, 10), node(2, 30)];
        let mut counts = [0; 2];
        for room in 0..40 {
            let n = l.place(RoomId(room), &nodes, t0).expect("capacity left");
            counts[(n.node_id.0 - 1) as usize] += 1;
        }
        assert_eq!(counts, [10, 30]);
        assert!(
            l.place(RoomId(100), &nodes, t0).is_none(),
            "both nodes are full"
        );
    }

    #[test]
    fn a_new_term_forgets_heartbeats_from_an_earlier_one() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.observe_term(1, t0);
        l.heartbeat(NodeId(1), 7, &[RoomId(1)], t0);
        l.observe_term(3, t0 + Duration::from_secs(60));
        let s = l.status(&[node(1, 0)], t0 + Duration::from_secs(60));
        assert_eq!(s[0].last_heartbeat_ms_ago, None);
        assert!(s[0].alive, "grace period of the new term");
    }

    #[test]
    fn everyone_in_a_room_goes_to_the_node_that_hosts_it_until_it_dies() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.observe_term(1, t0);
        l.heartbeat(NodeId(1), 0, &[], t0);
        l.heartbeat(NodeId(2), 0, &[], t0);
        let nodes = [node(1, 0), node(2, 0)];
        let first = l.place(RoomId(5), &nodes, t0).unwrap().node_id;
        for _ in 0..5 {
            assert_eq!(l.place(RoomId(5), &nodes, t0).unwrap().node_id, first);
        }
        // Another room goes to the less loaded node.
        let other = l.place(RoomId(6), &nodes, t0).unwrap().node_id;
        assert_ne!(other, first);
        // The host dies: the room moves to the survivor.
        let t1 = t0 + LIVENESS_TTL + Duration::from_millis(1);
        l.heartbeat(other, 1, &[RoomId(6)], t1);
        assert_eq!(l.place(RoomId(5), &nodes, t1).unwrap().node_id, other);
    }

    #[test]
    fn a_new_leader_learns_where_rooms_live_from_heartbeats() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.observe_term(4, t0);
        l.heartbeat(NodeId(2), 30, &[RoomId(8)], t0);
        l.heartbeat(NodeId(1), 0, &[], t0);
        let nodes = [node(1, 0), node(2, 0)];
        // Node 1 is far less loaded, but room 8 lives on node 2.
        assert_eq!(l.place(RoomId(8), &nodes, t0).unwrap().node_id, NodeId(2));
        assert_eq!(l.place(RoomId(9), &nodes, t0).unwrap().node_id, NodeId(1));
    }
}
