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

use crate::store::model::MediaNodeRecord;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use veche_protocol::admin::MediaNodeStatus;
use veche_protocol::rpc::{MediaNodeInfo, RelayPeer, HEARTBEAT_INTERVAL_MS};
use veche_protocol::{NodeId, RoomId};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, capacity: u32) -> MediaNodeRecord {
        MediaNodeRecord {
            info: MediaNodeInfo {
                node_id: NodeId(id),
                region: String::new(),
                ws_url: format!("ws://n{id}/media/ws"),
                capacity,
                relay_addr: Some(format!("10.0.0.{id}:4433")),
            },
            draining: false,
        }
    }

    fn in_region(mut n: MediaNodeRecord, region: &str) -> MediaNodeRecord {
        n.info.region = region.into();
        n
    }

    fn no_relay(mut n: MediaNodeRecord) -> MediaNodeRecord {
        n.info.relay_addr = None;
        n
    }

    fn peer(id: u64) -> RelayPeer {
        RelayPeer {
            node_id: NodeId(id),
            relay_addr: format!("10.0.0.{id}:4433"),
        }
    }

    /// A table of term 1 in which every node in `beats` (id, participants,
    /// rooms) has just beaten.
    fn table(t0: Instant, beats: &[(u64, u32, &[u64])]) -> Liveness {
        let mut l = Liveness::default();
        l.observe_term(1, t0);
        for (id, participants, rooms) in beats {
            let rooms: Vec<RoomId> = rooms.iter().map(|r| RoomId(*r)).collect();
            l.heartbeat(NodeId(*id), *participants, &rooms, t0);
        }
        l
    }

    /// The chosen node's id, or `None`.
    fn place_id(
        l: &mut Liveness,
        room: u64,
        nodes: &[MediaNodeRecord],
        region: Option<&str>,
        avoid: Option<u64>,
        now: Instant,
    ) -> Option<u64> {
        l.place(RoomId(room), nodes, region, avoid.map(NodeId), now)
            .map(|p| p.node.node_id.0)
    }

    #[test]
    fn a_new_leader_places_on_registered_nodes_before_their_first_heartbeat() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.observe_term(2, t0);
        let nodes = [node(1, 0)];
        assert_eq!(place_id(&mut l, 1, &nodes, None, None, t0), Some(1));
        // After the grace period a node that never beat is dead.
        let later = t0 + LIVENESS_TTL + Duration::from_millis(1);
        let mut l = Liveness::default();
        l.observe_term(2, t0);
        assert_eq!(place_id(&mut l, 1, &nodes, None, None, later), None);
    }

    #[test]
    fn a_node_that_stops_beating_gets_no_new_participants() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 0, &[]), (2, 5, &[9])]);
        let nodes = [node(1, 0), node(2, 0)];
        let t1 = t0 + LIVENESS_TTL - Duration::from_millis(1);
        l.heartbeat(NodeId(2), 5, &[RoomId(9)], t1);
        let t2 = t0 + LIVENESS_TTL + Duration::from_millis(500);
        assert_eq!(place_id(&mut l, 1, &nodes, None, None, t2), Some(2));
        assert!(!l.is_alive(NodeId(1), t2));
    }

    #[test]
    fn joins_spread_by_load_relative_to_capacity() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 0, &[]), (2, 0, &[])]);
        let nodes = [node(1, 10), node(2, 30)];
        let mut counts = [0; 2];
        for room in 0..40 {
            let id = place_id(&mut l, room, &nodes, None, None, t0).expect("capacity left");
            counts[(id - 1) as usize] += 1;
        }
        assert_eq!(counts, [10, 30]);
        assert_eq!(
            place_id(&mut l, 100, &nodes, None, None, t0),
            None,
            "both nodes are full"
        );
    }

    #[test]
    fn a_new_term_forgets_heartbeats_from_an_earlier_one() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 7, &[1])]);
        l.observe_term(3, t0 + Duration::from_secs(60));
        let s = l.status(&[node(1, 0)], t0 + Duration::from_secs(60));
        assert_eq!(s[0].last_heartbeat_ms_ago, None);
        assert!(s[0].alive, "grace period of the new term");
    }

    #[test]
    fn without_a_region_everyone_in_a_room_goes_to_the_node_that_hosts_it_until_it_dies() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 0, &[]), (2, 0, &[])]);
        let nodes = [node(1, 0), node(2, 0)];
        let first = place_id(&mut l, 5, &nodes, None, None, t0).unwrap();
        for _ in 0..5 {
            assert_eq!(place_id(&mut l, 5, &nodes, None, None, t0), Some(first));
        }
        // Another room goes to the less loaded node.
        let other = place_id(&mut l, 6, &nodes, None, None, t0).unwrap();
        assert_ne!(other, first);
        // The host dies: the room moves to the survivor, and the dead node
        // is not listed as hosting it.
        let t1 = t0 + LIVENESS_TTL + Duration::from_millis(1);
        l.heartbeat(NodeId(other), 1, &[RoomId(6)], t1);
        let placed = l.place(RoomId(5), &nodes, None, None, t1).unwrap();
        assert_eq!(placed.node.node_id.0, other);
        assert_eq!(placed.room_nodes, vec![]);
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
        assert_eq!(place_id(&mut l, 8, &nodes, None, None, t0), Some(2));
        assert_eq!(place_id(&mut l, 9, &nodes, None, None, t0), Some(1));
    }

    #[test]
    fn a_region_is_preferred_even_when_the_room_lives_elsewhere() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 0, &[]), (2, 50, &[]), (3, 0, &[])]);
        let nodes = [
            in_region(node(1, 0), "eu"),
            in_region(node(2, 0), "us"),
            in_region(node(3, 0), "us"),
        ];
        assert_eq!(place_id(&mut l, 7, &nodes, Some("eu"), None, t0), Some(1));
        // A "us" joiner of the same room goes to a "us" node (the least
        // loaded one), and is told about the "eu" node hosting the room.
        let placed = l.place(RoomId(7), &nodes, Some("us"), None, t0).unwrap();
        assert_eq!(placed.node.node_id, NodeId(3));
        assert_eq!(placed.room_nodes, vec![peer(1)]);
    }

    #[test]
    fn within_a_region_a_node_already_hosting_the_room_is_preferred() {
        let t0 = Instant::now();
        // Node 2 hosts room 7 and is busier than node 3, same region.
        let mut l = table(t0, &[(1, 0, &[]), (2, 20, &[7]), (3, 0, &[])]);
        let nodes = [
            in_region(node(1, 0), "eu"),
            in_region(node(2, 0), "us"),
            in_region(node(3, 0), "us"),
        ];
        assert_eq!(place_id(&mut l, 7, &nodes, Some("us"), None, t0), Some(2));
        // A room nobody hosts goes to the least loaded node of the region.
        assert_eq!(place_id(&mut l, 8, &nodes, Some("us"), None, t0), Some(3));
    }

    #[test]
    fn a_region_without_candidates_falls_back_to_every_candidate() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 0, &[]), (2, 3, &[4]), (3, 1, &[])]);
        let nodes = [
            in_region(node(1, 1), "eu"),
            in_region(node(2, 0), "us"),
            in_region(node(3, 0), "us"),
        ];
        // No node in "ap": the host of the room first, as without a region.
        assert_eq!(place_id(&mut l, 4, &nodes, Some("ap"), None, t0), Some(2));
        // "eu" has a node with space for one.
        assert_eq!(place_id(&mut l, 5, &nodes, Some("eu"), None, t0), Some(1));
        // Now it is full: fall back to every candidate. Node 1 hosts room 5
        // but has no space; node 3 is less loaded than node 2.
        let placed = l.place(RoomId(5), &nodes, Some("eu"), None, t0).unwrap();
        assert_eq!(placed.node.node_id, NodeId(3));
        assert_eq!(placed.room_nodes, vec![peer(1)]);
    }

    #[test]
    fn a_room_spills_onto_another_node_when_its_host_is_full() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 1, &[3]), (2, 0, &[])]);
        let nodes = [node(1, 2), node(2, 0)];
        assert_eq!(place_id(&mut l, 3, &nodes, None, None, t0), Some(1));
        let placed = l.place(RoomId(3), &nodes, None, None, t0).unwrap();
        assert_eq!(placed.node.node_id, NodeId(2));
        assert_eq!(placed.room_nodes, vec![peer(1)]);
        // From then on the room lives on both; the next joiner goes to a
        // host with space, and hears of the other.
        let placed = l.place(RoomId(3), &nodes, None, None, t0).unwrap();
        assert_eq!(placed.node.node_id, NodeId(2));
        assert_eq!(placed.room_nodes, vec![peer(1)]);
    }

    #[test]
    fn the_avoided_node_is_never_chosen_but_still_listed_as_hosting() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 0, &[6]), (2, 5, &[])]);
        let nodes = [node(1, 0), node(2, 0)];
        let placed = l
            .place(RoomId(6), &nodes, None, Some(NodeId(1)), t0)
            .unwrap();
        assert_eq!(placed.node.node_id, NodeId(2));
        // The client could not reach node 1, but node 2 may: its people
        // are still in the room.
        assert_eq!(placed.room_nodes, vec![peer(1)]);
        // The only node, avoided: nobody.
        let mut l = table(t0, &[(1, 0, &[])]);
        assert_eq!(place_id(&mut l, 6, &[node(1, 0)], None, Some(1), t0), None);
    }

    #[test]
    fn a_draining_node_gets_no_one_but_is_still_listed_while_it_hosts_the_room() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 0, &[2]), (2, 9, &[])]);
        let mut nodes = [node(1, 0), node(2, 0)];
        nodes[0].draining = true;
        let placed = l.place(RoomId(2), &nodes, None, None, t0).unwrap();
        assert_eq!(placed.node.node_id, NodeId(2));
        assert_eq!(placed.room_nodes, vec![peer(1)]);
        assert_eq!(place_id(&mut l, 3, &nodes, None, None, t0), Some(2));
        nodes[1].draining = true;
        assert_eq!(place_id(&mut l, 4, &nodes, None, None, t0), None);
        let s = l.status(&nodes, t0);
        assert!(s.iter().all(|n| n.draining), "{s:?}");
    }

    #[test]
    fn a_room_on_a_node_without_a_relay_never_spans_nodes() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 1, &[5]), (2, 0, &[])]);
        let nodes = [
            no_relay(in_region(node(1, 2), "eu")),
            in_region(node(2, 0), "us"),
        ];
        // Room 5 lives on node 1, which cannot cascade: a "us" joiner goes
        // there anyway, and no one else is named.
        let placed = l.place(RoomId(5), &nodes, Some("us"), None, t0).unwrap();
        assert_eq!(placed.node.node_id, NodeId(1));
        assert_eq!(placed.room_nodes, vec![]);
        // Now it is full (capacity 2): nobody can join the room.
        assert_eq!(place_id(&mut l, 5, &nodes, None, None, t0), None);
        // And if the client cannot reach it, nobody either.
        assert_eq!(place_id(&mut l, 5, &nodes, None, Some(1), t0), None);
    }

    #[test]
    fn a_node_without_a_relay_is_not_chosen_for_a_room_hosted_elsewhere() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 0, &[]), (2, 30, &[8])]);
        let nodes = [no_relay(in_region(node(1, 0), "eu")), node(2, 0)];
        // Node 1 is in the region and idle, but room 8 is on node 2.
        assert_eq!(place_id(&mut l, 8, &nodes, Some("eu"), None, t0), Some(2));
        // A room hosted nowhere may go to it.
        assert_eq!(place_id(&mut l, 9, &nodes, Some("eu"), None, t0), Some(1));
        // If node 2 is full, room 8 has nowhere to go.
        let nodes = [no_relay(node(1, 0)), node(2, 31)];
        assert_eq!(place_id(&mut l, 8, &nodes, None, None, t0), None);
    }

    #[test]
    fn room_nodes_lists_the_other_alive_hosts_with_a_relay_only() {
        let t0 = Instant::now();
        let mut l = table(
            t0,
            &[(1, 1, &[4]), (2, 1, &[4]), (3, 1, &[4]), (4, 1, &[4])],
        );
        let nodes = [node(1, 0), node(2, 0), no_relay(node(3, 0)), node(4, 0)];
        assert_eq!(
            l.room_nodes(RoomId(4), NodeId(1), &nodes, t0),
            vec![peer(2), peer(4)]
        );
        assert_eq!(l.room_nodes(RoomId(5), NodeId(1), &nodes, t0), vec![]);
        // Node 4 dies: only 1, 2 and 3 beat on, and 4 is no longer listed
        // even before its entry ages out.
        let t1 = t0 + LIVENESS_TTL + Duration::from_millis(1);
        for id in 1..=3 {
            l.heartbeat(NodeId(id), 1, &[RoomId(4)], t1);
        }
        assert_eq!(
            l.room_nodes(RoomId(4), NodeId(1), &nodes, t1),
            vec![peer(2)]
        );
        // An unregistered node's report is ignored too.
        l.heartbeat(NodeId(9), 1, &[RoomId(4)], t1);
        assert_eq!(
            l.room_nodes(RoomId(4), NodeId(2), &nodes, t1),
            vec![peer(1)]
        );
    }

    #[test]
    fn a_node_that_stops_reporting_a_room_is_forgotten_for_it_after_the_ttl() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 1, &[4]), (2, 1, &[4])]);
        let nodes = [node(1, 0), node(2, 0)];
        // Node 2 reports the room no more; within the TTL it still counts
        // (a participant just placed there may be connecting).
        let t1 = t0 + Duration::from_secs(1);
        l.heartbeat(NodeId(1), 1, &[RoomId(4)], t1);
        l.heartbeat(NodeId(2), 0, &[], t1);
        assert_eq!(
            l.room_nodes(RoomId(4), NodeId(1), &nodes, t1),
            vec![peer(2)]
        );
        let t2 = t0 + LIVENESS_TTL + Duration::from_millis(1);
        l.heartbeat(NodeId(1), 1, &[RoomId(4)], t2);
        l.heartbeat(NodeId(2), 0, &[], t2);
        assert_eq!(l.room_nodes(RoomId(4), NodeId(1), &nodes, t2), vec![]);
    }

    #[test]
    fn a_placement_counts_as_hosting_at_once() {
        let t0 = Instant::now();
        let mut l = table(t0, &[(1, 0, &[]), (2, 0, &[])]);
        let nodes = [in_region(node(1, 0), "eu"), in_region(node(2, 0), "us")];
        assert_eq!(place_id(&mut l, 1, &nodes, Some("eu"), None, t0), Some(1));
        assert_eq!(place_id(&mut l, 1, &nodes, Some("us"), None, t0), Some(2));
        assert_eq!(
            l.room_nodes(RoomId(1), NodeId(2), &nodes, t0),
            vec![peer(1)]
        );
        assert_eq!(
            l.room_nodes(RoomId(1), NodeId(1), &nodes, t0),
            vec![peer(2)]
        );
    }
}
