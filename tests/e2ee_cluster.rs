//! The MLS handshake in an encrypted room that spans two media nodes
//! (`veche serve` plus a `veche media-node`, relaying to each other), with
//! scripted signalling clients: key packages, `e2ee_found` and commits
//! reach the participants on the other node, the commits of members on
//! both nodes arrive everywhere in the order the control plane accepted
//! them, and of two commits racing from one epoch on different nodes
//! everyone sees the same winner and nobody the loser. A commit the
//! control plane accepted through a media node stays accepted when the
//! leader that accepted it dies.

use crate::common::cluster::Cluster;
use crate::common::e2ee::*;
use crate::common::*;
use serde_json::Value;

/// Waits until `s` has seen each of `ids` in the room (in its `joined`
/// snapshot or a later `participant_joined`).
async fn sees(s: &mut Signal, ids: &[&str]) {
    let present = |seen: &[Value], id: &str| {
        seen.iter().any(|v| {
            (v["type"] == "joined"
                && v["participants"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["id"] == id)))
                || (v["type"] == "participant_joined" && v["participant"]["id"] == id)
        })
    };
    for id in ids {
        if !present(&s.seen, id) {
            let id = id.to_string();
            s.recv_matching(&format!("{id} in the room"), secs(10), |v| {
                v["type"] == "participant_joined" && v["participant"]["id"] == id.as_str()
            })
            .await;
        }
    }
}

/// The next commit `s` gets; asserts it is the one from `epoch` by `by`.
async fn commit_from(s: &mut Signal, who: &str, epoch: u64, by: &str) -> Value {
    let c = s.recv_type("e2ee_commit", secs(10)).await;
    assert_eq!(
        (c["epoch"].as_u64(), c["participant_id"].as_str()),
        (Some(epoch), Some(by)),
        "{who} gets the commit from epoch {epoch} by {by} next: {c}"
    );
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_messages_reach_the_other_node_in_the_order_the_control_plane_accepted_them() {
    let cluster = TwoNodes::start().await;
    let base = cluster.server.base();
    let room = create_e2ee_room(base, "Across").await;
    let slug = str_field(&room, "slug");
    let (mut ann, ann_id) = cluster.enter(slug, "Ann", "a").await;
    let (mut ben, ben_id) = cluster.enter(slug, "Ben", "b").await;
    let (mut cy, cy_id) = cluster.enter(slug, "Cy", "b").await;
    let (mut dan, dan_id) = cluster.enter(slug, "Dan", "a").await;
    let ids = [
        ann_id.as_str(),
        ben_id.as_str(),
        cy_id.as_str(),
        dan_id.as_str(),
    ];
    for s in [&mut ann, &mut ben, &mut cy, &mut dan] {
        sees(s, &ids).await;
    }

    // Ann (node 1) founds the group; Ben and Cy on node 2 hear it.
    ann.send(&key_package_frame(&opaque("annkp", 300))).await;
    let mut group = 0;
    for (s, who) in [
        (&mut ann, "Ann"),
        (&mut ben, "Ben"),
        (&mut cy, "Cy"),
        (&mut dan, "Dan"),
    ] {
        let f = s.recv_type("e2ee_found", secs(10)).await;
        assert_eq!(f["participant_id"], ann_id.as_str(), "{who}: {f}");
        group = f["group"].as_u64().unwrap();
    }

    // Ben's key package (node 2) reaches Ann and Dan on node 1 and Cy
    // beside him, not Ben.
    let ben_kp = opaque("benkp", 300);
    ben.send(&key_package_frame(&ben_kp)).await;
    for (s, who) in [(&mut ann, "Ann"), (&mut cy, "Cy"), (&mut dan, "Dan")] {
        let k = s.recv_type("e2ee_key_package", secs(10)).await;
        assert_eq!(k["participant_id"], ben_id.as_str(), "{who}: {k}");
        assert_eq!(k["key_package"], ben_kp.as_str(), "{who}: {k}");
    }
    let ben_saw = marker(&mut cy, &cy_id, &mut ben, true).await;
    assert!(
        ben_saw.iter().all(|v| v["type"] != "e2ee_key_package"),
        "Ben does not get his own key package back: {ben_saw:?}"
    );

    // Ann commits Ben in; the commit and its welcome cross to node 2.
    ann.send(&commit_frame(group, 0, &[&ben_id], &opaque("c0", 400)))
        .await;
    for (s, who) in [
        (&mut ann, "Ann"),
        (&mut ben, "Ben"),
        (&mut cy, "Cy"),
        (&mut dan, "Dan"),
    ] {
        let c = commit_from(s, who, 0, &ann_id).await;
        assert!(c["welcome"].is_string(), "{who}: {c}");
    }

    // From here members on both nodes take turns, each committing as soon
    // as it applied the previous commit, as browsers do. Everyone gets
    // every commit, in epoch order.
    let committers = [(&ann_id, 0usize), (&ben_id, 1usize)];
    for epoch in 1..8u64 {
        let (by, i) = committers[(epoch % 2) as usize];
        let frame = commit_frame(group, epoch, &[], &opaque(&format!("c{epoch}"), 200));
        [&mut ann, &mut ben][i].send(&frame).await;
        for (s, who) in [
            (&mut ann, "Ann"),
            (&mut ben, "Ben"),
            (&mut cy, "Cy"),
            (&mut dan, "Dan"),
        ] {
            commit_from(s, who, epoch, by).await;
        }
    }

    // Two members on different nodes commit from the same epoch at once:
    // one wins, everyone sees that one only, and the loser is told.
    ann.send(&commit_frame(group, 8, &[], &opaque("racea", 100)))
        .await;
    ben.send(&commit_frame(group, 8, &[], &opaque("raceb", 100)))
        .await;
    let mut winners = Vec::new();
    for (s, who) in [
        (&mut ann, "Ann"),
        (&mut ben, "Ben"),
        (&mut cy, "Cy"),
        (&mut dan, "Dan"),
    ] {
        let c = s
            .recv_matching(&format!("{who}'s commit from epoch 8"), secs(10), |v| {
                v["type"] == "e2ee_commit"
            })
            .await;
        assert_eq!(c["epoch"], 8, "{who}: {c}");
        winners.push(c["participant_id"].as_str().unwrap().to_owned());
    }
    winners.dedup();
    assert_eq!(
        winners.len(),
        1,
        "everyone sees the same winner: {winners:?}"
    );
    let (loser, loser_name) = if winners[0] == ann_id {
        (&mut ben, "Ben")
    } else {
        (&mut ann, "Ann")
    };
    // Its refusal may have come before the winner's commit.
    let earlier = loser
        .seen
        .iter()
        .find(|v| v["type"] == "error" && v["request"] == "e2ee_commit")
        .cloned();
    let e = match earlier {
        Some(e) => e,
        None => refusal(loser, "e2ee_commit").await,
    };
    assert_eq!(e["code"], "invalid_state", "{loser_name}: {e}");
    // Nobody sees a second commit from epoch 8.
    let cy_saw = marker(&mut dan, &dan_id, &mut cy, true).await;
    let ann_saw = marker(&mut cy, &cy_id, &mut ann, false).await;
    for (saw, who) in [(cy_saw, "Cy"), (ann_saw, "Ann")] {
        let more: Vec<&Value> = saw.iter().filter(|v| v["type"] == "e2ee_commit").collect();
        assert!(more.is_empty(), "{who} sees no losing commit: {more:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_accepted_before_the_control_plane_leader_dies_stays_accepted_through_the_media_node(
) {
    let mut cluster = Cluster::start(3).await;
    cluster.start_media_node(1).await;
    let leader = cluster.wait_for_leader(secs(10)).await;
    let follower = cluster.a_follower(leader);
    let base = cluster.base(follower);
    let room = create_e2ee_room(&base, "Failover").await;
    let slug = str_field(&room, "slug");
    let (mut ann, ann_id) = enter(&base, slug, "Ann", true).await;
    let (mut ben, ben_id) = enter(&base, slug, "Ben", true).await;

    ann.send(&key_package_frame(&opaque("annkp", 200))).await;
    let group = ann.recv_type("e2ee_found", secs(10)).await["group"]
        .as_u64()
        .unwrap();
    ben.send(&key_package_frame(&opaque("benkp", 200))).await;
    ann.recv_type("e2ee_key_package", secs(10)).await;
    let first = commit_frame(group, 0, &[&ben_id], &opaque("first", 300));
    ann.send(&first).await;
    commit_from(&mut ann, "Ann", 0, &ann_id).await;
    commit_from(&mut ben, "Ben", 0, &ann_id).await;

    // The leader that accepted it dies. The node drops a silent socket
    // after 4.5 s, so both keep pinging until a new leader is agreed.
    cluster.kill(leader);
    let elected = cluster.wait_for_leader(secs(30));
    tokio::pin!(elected);
    let mut seq = 100;
    let new_leader = loop {
        tokio::select! {
            l = &mut elected => break l,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                ann.ping(seq).await;
                ben.ping(seq).await;
                seq += 1;
            }
        }
    };
    assert_ne!(new_leader, leader);

    // The accepted commit survived: the same commit again is stale, to
    // Ann alone, and the group moves on from epoch 1.
    ann.send(&first).await;
    let e = refusal(&mut ann, "e2ee_commit").await;
    assert_eq!(e["code"], "invalid_state", "{e}");
    ben.send(&commit_frame(group, 1, &[], &opaque("second", 300)))
        .await;
    commit_from(&mut ann, "Ann", 1, &ben_id).await;
    commit_from(&mut ben, "Ben", 1, &ben_id).await;
}
