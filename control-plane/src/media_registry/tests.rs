//! Liveness and placement, checked as the leader uses them: heartbeats
//! and placements in, choices and listings out, the time passed in.

use super::*;
use veche_protocol::rpc::{MediaNodeInfo, RelayPeer};

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
