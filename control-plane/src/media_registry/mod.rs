//! Media-node liveness and placement: the leader's in-memory view of which
//! registered media nodes are alive, how loaded they are, and which rooms
//! each one hosts.
//!
//! Registrations are durable (a Raft entry each, see
//! [`crate::store::model::Command::RegisterMediaNode`]), and so is an
//! operator's drain flag; heartbeats are not. A heartbeat a second from
//! every node through the log would cost an fsync on every control-plane
//! node for information that is stale seconds later, so only the leader
//! keeps it, in this structure, and a new leader starts empty. No I/O and
//! no clock: callers pass `now`.
//!
//! # Placement
//!
//! A room may span several media nodes, which relay each other's tracks
//! (cascading), so placement balances two wishes: keep a room on as few
//! nodes as possible (every extra node is another relay hop and more
//! inter-node traffic), and put people near them (a `region`). See
//! [`Liveness::place`] for the exact rules.
//!
//! This file holds the table and what keeps it current (terms, heartbeats,
//! liveness, the admin view); `placement.rs` holds the placement policy.

use crate::store::model::MediaNodeRecord;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use veche_protocol::admin::MediaNodeStatus;
use veche_protocol::rpc::{MediaNodeInfo, RelayPeer, HEARTBEAT_INTERVAL_MS};
use veche_protocol::{NodeId, RoomId};

mod placement;
#[cfg(test)]
mod tests;

/// A node whose last heartbeat is older than this is not given new
/// participants: three missed beats, so one lost packet or a GC pause does
/// not take a node out of rotation.
pub const LIVENESS_TTL: Duration = Duration::from_millis(3 * HEARTBEAT_INTERVAL_MS);

#[derive(Clone, Copy, Debug)]
struct Beat {
    at: Instant,
    /// Participants the node reported, plus one for every placement on it
    /// since (the next heartbeat replaces the estimate).
    participants: u32,
    rooms: u32,
}

/// The outcome of [`Liveness::place`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed<'a> {
    /// The chosen node.
    pub node: &'a MediaNodeInfo,
    /// The other alive nodes hosting the room that can relay (those with a
    /// relay address), by id: the new participant's node links to them at
    /// once, without waiting for a heartbeat.
    pub room_nodes: Vec<RelayPeer>,
}

/// The leader's liveness table.
#[derive(Debug, Default)]
pub struct Liveness {
    beats: HashMap<NodeId, Beat>,
    /// Which nodes host each room, and when a placement or a heartbeat last
    /// confirmed each. Learned from placements and from heartbeats, so a
    /// new leader knows it within one heartbeat. A node that stops
    /// reporting a room is forgotten for it once the entry is older than
    /// [`LIVENESS_TTL`] (a participant just placed there may still be
    /// connecting), and a dead node is ignored at once.
    hosts: HashMap<RoomId, BTreeMap<NodeId, Instant>>,
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
    /// node no longer reports is forgotten for it, unless it was placed
    /// there so recently that its first participant may still be
    /// connecting. Entries of nodes that stopped beating age out the same
    /// way.
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
        self.hosts.retain(|_, on| {
            on.retain(|_, seen| now.saturating_duration_since(*seen) <= LIVENESS_TTL);
            !on.is_empty()
        });
        for room in room_ids {
            self.hosts.entry(*room).or_default().insert(node, now);
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

    /// Counts one more participant on `node`, placed just now.
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

    /// Every registered node with its liveness and drain flag, for the
    /// admin view.
    pub fn status(&self, nodes: &[MediaNodeRecord], now: Instant) -> Vec<MediaNodeStatus> {
        nodes
            .iter()
            .map(|n| {
                let beat = self.beats.get(&n.info.node_id);
                MediaNodeStatus {
                    info: n.info.clone(),
                    alive: self.is_alive(n.info.node_id, now),
                    last_heartbeat_ms_ago: beat
                        .map(|b| now.saturating_duration_since(b.at).as_millis() as u64),
                    participants: beat.map_or(0, |b| b.participants),
                    rooms: beat.map_or(0, |b| b.rooms),
                    draining: n.draining,
                }
            })
            .collect()
    }
}
