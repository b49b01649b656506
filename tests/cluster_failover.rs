//! A three-node control plane as separate `veche control-plane` processes,
//! losing nodes while chat is written: the leader SIGKILLed mid-write (a
//! new leader within 2 s), a follower cut off by a network partition and
//! catching up, and every node crashing and restarting. After each, every
//! acknowledged message is on every node exactly once.
//!
//! Chat is written as media nodes write it, through the internal RPC (see
//! `common/cluster_chat.rs`). The membership tests are in
//! `cluster_membership.rs`, placement and draining of media nodes in
//! `cluster_media_nodes.rs`.
//!
//! The partition test needs `nft` (Debian's nftables) and root in the
//! test's network namespace, which `scripts/test.sh` provides.

use crate::common::cluster::Cluster;
use crate::common::cluster_chat::*;
use crate::common::*;
use std::time::{Duration, Instant};

/// A failover must be over within this long: from the SIGKILL until every
/// surviving node names the same new leader.
const FAILOVER_BUDGET: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_during_chat_writes_a_new_leader_takes_over_within_2s_and_every_acknowledged_message_is_on_every_node_once(
) {
    let mut cluster = Cluster::start(3).await;
    let room = new_room(&cluster.base(1), "Failover").await;
    let writer = Writer::start(&cluster, &room);
    writer.wait_for_more(30, secs(20)).await;

    let old = cluster.wait_for_leader(secs(5)).await;
    cluster.kill(old);
    let killed_at = Instant::now();
    // Until the new leader is known the writer keeps the dead node in its
    // rotation, as a client that has not noticed yet would: attempts on it
    // fail and are retried elsewhere.
    let new = cluster.wait_for_leader(secs(10)).await;
    let failover = killed_at.elapsed();
    writer.set_targets(&cluster);
    eprintln!(
        "FAILOVER: node {old} killed; node {new} leads, as every survivor agrees, after {} ms",
        failover.as_millis()
    );
    assert_ne!(new, old, "the killed node cannot still be the leader");
    assert!(
        failover < FAILOVER_BUDGET,
        "a new leader took {failover:?} to take over; the budget is {FAILOVER_BUDGET:?}"
    );

    // Writes go on under the new leader, then the old one comes back.
    writer.wait_for_more(30, secs(20)).await;
    cluster.restart(old);
    writer.set_targets(&cluster);
    cluster.wait_for_leader(secs(10)).await;
    writer.wait_for_more(30, secs(20)).await;
    let written = writer.stop().await;

    assert_every_node_has_exactly(&cluster, &room, &written.acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_follower_catches_up_after_the_network_heals() {
    let cluster = Cluster::start(3).await;
    let room = new_room(&cluster.base(1), "Partition").await;
    let leader = cluster.wait_for_leader(secs(5)).await;
    let ids = cluster.ids();
    let cut = *ids.iter().find(|id| **id != leader).expect("a follower");
    let others: Vec<u64> = ids.iter().copied().filter(|id| *id != cut).collect();
    // Everything so far has reached the follower.
    history_of(&cluster, cut, &room).await;

    cluster.partition(cut);
    // A reader on the cut-off node must not be served stale history: its
    // read barrier needs the leader, so it waits, then refuses.
    let stale_read = tokio::spawn({
        let url = format!("{}/api/rooms/{}/messages", cluster.base(cut), room.slug);
        async move {
            let started = Instant::now();
            let reply = http_get(&url).await;
            (reply, started.elapsed())
        }
    });
    let http = client(COMMIT_TIMEOUT);
    let mut acked = Vec::new();
    for i in 0..30 {
        let via = others[i % others.len()];
        let msg = commit(
            &http,
            &cluster.base(via),
            cluster.secret(),
            &chat(&room, &format!("p{i}")),
        )
        .await
        .unwrap_or_else(|e| {
            panic!("with node {cut} cut off, a write through node {via} failed: {e}")
        });
        acked.push(msg);
    }
    let applied = |s: &serde_json::Value| s["last_applied"].as_u64().unwrap_or(0);
    let leader_view = cluster.status(leader).await.expect("the leader's status");
    let cut_view = cluster
        .status(cut)
        .await
        .expect("the cut-off node's status");
    assert!(
        applied(&cut_view) < applied(&leader_view),
        "the cut-off node {cut} applied as much as the leader; partition ineffective? \
         cut off: {cut_view}, leader: {leader_view}"
    );
    let before = applied(&cut_view);
    // Long enough for the cut-off node's election timer to fire: it gives
    // up on the old leader, and will come back with a higher term.
    wait_for(
        &format!("the cut-off node {cut} no longer follows leader {leader}"),
        secs(10),
        async || {
            let s = cluster.status(cut).await?;
            if s["state"] != "Follower" || s["leader"]["id"].as_u64() != Some(leader) {
                Ok(())
            } else {
                Err(format!("state {}, leader {}", s["state"], s["leader"]))
            }
        },
    )
    .await;
    let (reply, took) = stale_read.await.expect("the reader task");
    eprintln!(
        "a read on the cut-off node answered {} after {} ms",
        reply.status,
        took.as_millis()
    );
    reply.assert_error(503, "unavailable");

    cluster.heal(cut);
    let healed_at = Instant::now();
    let expected = history_of(&cluster, leader, &room).await;
    assert_exactly_once(leader, &expected, &acked);
    let base = cluster.base(cut);
    wait_for(
        &format!("node {cut} serves the same history as the leader after the heal"),
        CATCH_UP,
        async || {
            let h = history(&base, &room.slug).await?;
            if h == expected {
                Ok(())
            } else {
                Err(format!("node {cut} serves {}", summary(&h)))
            }
        },
    )
    .await;
    eprintln!(
        "node {cut} caught up from applied index {before} within {} ms of the heal",
        healed_at.elapsed().as_millis()
    );
    cluster.wait_for_leader(secs(10)).await;
    assert_every_node_has_exactly(&cluster, &room, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_cluster_restart_keeps_rooms_and_history() {
    let mut cluster = Cluster::start(3).await;
    let room = new_room(&cluster.base(2), "Survives a blackout").await;
    let http = client(COMMIT_TIMEOUT);
    let mut acked = Vec::new();
    for i in 0..20 {
        let via = cluster.ids()[i % 3];
        let msg = commit(
            &http,
            &cluster.base(via),
            cluster.secret(),
            &chat(&room, &format!("r{i}")),
        )
        .await
        .unwrap_or_else(|e| panic!("a write through node {via} failed: {e}"));
        acked.push(msg);
    }
    assert_every_node_has_exactly(&cluster, &room, &acked).await;

    for id in cluster.ids() {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.restart(id);
    }
    cluster.wait_for_leader(secs(15)).await;

    for id in cluster.ids() {
        let reply = http_get(&format!("{}/api/rooms/{}", cluster.base(id), room.slug)).await;
        assert_eq!(
            reply.status, 200,
            "node {id}: the room after restart: {}",
            reply.body
        );
        assert_eq!(
            reply.json()["name"],
            room.name.as_str(),
            "node {id}: {}",
            reply.body
        );
    }
    assert_every_node_has_exactly(&cluster, &room, &acked).await;

    // And the restarted cluster takes writes again.
    let more = commit(
        &http,
        &cluster.base(1),
        cluster.secret(),
        &chat(&room, "after-restart"),
    )
    .await
    .unwrap_or_else(|e| panic!("a write after the restart failed: {e}"));
    acked.push(more);
    assert_every_node_has_exactly(&cluster, &room, &acked).await;
}
