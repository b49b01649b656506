//! Placement: which media node a new participant of a room goes to.
//! See [`Liveness::place`] for the rules.

use super::{Liveness, Placed};
use crate::store::model::MediaNodeRecord;
use std::cmp::Ordering;
use std::time::Instant;
use veche_protocol::rpc::{MediaNodeInfo, RelayPeer};
use veche_protocol::{NodeId, RoomId};

impl Liveness {
    /// The registered, alive nodes hosting `room` (draining ones included:
    /// their participants are still there until they move), by id.
    fn hosting<'a>(
        &self,
        room: RoomId,
        nodes: &'a [MediaNodeRecord],
        now: Instant,
    ) -> Vec<&'a MediaNodeRecord> {
        let Some(on) = self.hosts.get(&room) else {
            return Vec::new();
        };
        let mut out: Vec<&MediaNodeRecord> = nodes
            .iter()
            .filter(|n| on.contains_key(&n.info.node_id) && self.is_alive(n.info.node_id, now))
            .collect();
        out.sort_by_key(|n| n.info.node_id);
        out
    }

    fn load(&self, node: NodeId) -> u32 {
        self.beats.get(&node).map_or(0, |b| b.participants)
    }

    /// Whether `n` has room for one more participant.
    fn has_space(&self, n: &MediaNodeInfo) -> bool {
        n.capacity == 0 || self.load(n.node_id) < n.capacity
    }

    /// Orders nodes by load relative to capacity, then by id, without
    /// floats: unlimited capacity counts as `u32::MAX`.
    fn by_relative_load(&self, a: &MediaNodeInfo, b: &MediaNodeInfo) -> Ordering {
        let cap = |n: &MediaNodeInfo| {
            u64::from(if n.capacity == 0 {
                u32::MAX
            } else {
                n.capacity
            })
        };
        (u64::from(self.load(a.node_id)) * cap(b))
            .cmp(&(u64::from(self.load(b.node_id)) * cap(a)))
            .then(a.node_id.cmp(&b.node_id))
    }

    /// Chooses a node for a new participant of `room`, and lists the other
    /// nodes hosting it.
    ///
    /// Candidates are the nodes that are alive, not draining, not `avoid`
    /// (the client could not reach it) and under capacity (0: unlimited),
    /// where load is the last heartbeat's participant count plus the
    /// placements made since. Among them:
    ///
    /// - With a `region`, only candidates in that region are considered,
    ///   unless there are none, when every candidate is.
    /// - A node already hosting the room comes first (fewer nodes per room,
    ///   less relaying), then the least loaded relative to capacity, then
    ///   the lowest id, so the choice is deterministic.
    /// - A node without a relay address cannot cascade. A room it hosts
    ///   (and that it is not draining) stays on it alone: no other node is
    ///   eligible, and if it cannot take the participant (full, or
    ///   `avoid`), nobody can. And it is never chosen for a room another
    ///   node hosts.
    ///
    /// The chosen node's load goes up by one at once, so a burst of joins
    /// between two heartbeats spreads out instead of piling onto one node,
    /// and it counts as hosting the room from now on.
    pub fn place<'a>(
        &mut self,
        room: RoomId,
        nodes: &'a [MediaNodeRecord],
        region: Option<&str>,
        avoid: Option<NodeId>,
        now: Instant,
    ) -> Option<Placed<'a>> {
        let hosting = self.hosting(room, nodes, now);
        let hosts = |id: NodeId| hosting.iter().any(|h| h.info.node_id == id);
        let pinned = hosting
            .iter()
            .find(|h| h.info.relay_addr.is_none() && !h.draining)
            .map(|h| h.info.node_id);
        let candidates: Vec<&MediaNodeInfo> = nodes
            .iter()
            .filter(|n| !n.draining)
            .map(|n| &n.info)
            .filter(|n| Some(n.node_id) != avoid)
            .filter(|n| self.is_alive(n.node_id, now) && self.has_space(n))
            .filter(|n| match pinned {
                Some(p) => n.node_id == p,
                None => {
                    n.relay_addr.is_some() || hosting.iter().all(|h| h.info.node_id == n.node_id)
                }
            })
            .collect();
        let in_region: Vec<&MediaNodeInfo> = match region {
            Some(r) => candidates
                .iter()
                .copied()
                .filter(|n| n.region == r)
                .collect(),
            None => Vec::new(),
        };
        let pool = if in_region.is_empty() {
            candidates
        } else {
            in_region
        };
        let chosen = pool.into_iter().min_by(|a, b| {
            // `true` sorts after `false`: hosting nodes first.
            (!hosts(a.node_id))
                .cmp(&!hosts(b.node_id))
                .then_with(|| self.by_relative_load(a, b))
        })?;
        let room_nodes = relay_peers(&hosting, chosen.node_id);
        self.hosts
            .entry(room)
            .or_default()
            .insert(chosen.node_id, now);
        self.count_one_more(chosen.node_id, now);
        Some(Placed {
            node: chosen,
            room_nodes,
        })
    }

    /// The alive nodes other than `except` hosting `room` that can relay
    /// (have a relay address), by id: for a heartbeat reply, so that a node
    /// links to every node sharing its rooms.
    pub fn room_nodes(
        &self,
        room: RoomId,
        except: NodeId,
        nodes: &[MediaNodeRecord],
        now: Instant,
    ) -> Vec<RelayPeer> {
        relay_peers(&self.hosting(room, nodes, now), except)
    }
}

/// `hosting` minus `except`, as relay peers; nodes without a relay address
/// are left out, since nobody can link to them.
fn relay_peers(hosting: &[&MediaNodeRecord], except: NodeId) -> Vec<RelayPeer> {
    hosting
        .iter()
        .filter(|h| h.info.node_id != except)
        .filter_map(|h| {
            Some(RelayPeer {
                node_id: h.info.node_id,
                relay_addr: h.info.relay_addr.clone()?,
            })
        })
        .collect()
}
