//! The E2EE delivery service on a three-node control plane, as separate
//! `veche control-plane` processes: handshake steps sent to any node
//! (followers forward them to the leader) are ordered once, and a commit
//! the delivery service accepted survives the leader's SIGKILL: on every
//! surviving node the same commit again is stale, and the group moves on
//! from the accepted epoch.
//!
//! The steps go through the internal RPC (`RPC_E2EE`, MessagePack) as a
//! media node sends them; the single-node checks of the RPC (authorization,
//! malformed and oversize bodies, plain rooms) are in the control-plane
//! crate (`access_tests/e2ee.rs`).

use crate::common::cluster::Cluster;
use crate::common::cluster_chat::{client, COMMIT_TIMEOUT};
use crate::common::*;
use serde_json::json;
use veche_protocol::e2ee::{CommitLabels, DsOp, DsReply, DsRequest, RPC_E2EE};
use veche_protocol::error::ErrorBody;
use veche_protocol::{ErrorCode, ParticipantId, RoomId};

/// One step through `base`: the reply, or the error body.
async fn step(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    req: &DsRequest,
) -> Result<DsReply, ErrorBody> {
    let resp = http
        .post(format!("{base}{RPC_E2EE}"))
        .bearer_auth(secret)
        .header("content-type", "application/msgpack")
        .body(rmp_serde::to_vec_named(req).unwrap())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {base}{RPC_E2EE}: {e}"));
    let ok = resp.status().is_success();
    let bytes = resp.bytes().await.unwrap();
    if ok {
        Ok(rmp_serde::from_slice(&bytes).expect("a DsReply"))
    } else {
        Err(rmp_serde::from_slice(&bytes).expect("an error body"))
    }
}

fn req(room: RoomId, who: &str, op: DsOp) -> DsRequest {
    DsRequest {
        room_id: room,
        participant_id: ParticipantId(who.into()),
        op,
    }
}

fn commit(group: u32, epoch: u64, added: &[&str]) -> DsOp {
    DsOp::Commit(CommitLabels {
        group,
        epoch,
        added: added.iter().map(|p| ParticipantId((*p).into())).collect(),
        removed: Vec::new(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_accepted_commit_survives_the_leaders_death_on_every_surviving_node() {
    let mut cluster = Cluster::start(3).await;
    let created = http_post_json(
        &format!("{}/api/rooms", cluster.base(1)),
        &json!({"name": "Sealed", "e2ee": true}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let room = RoomId(created.json()["id"].as_u64().unwrap());
    assert_eq!(created.json()["e2ee"], true, "{}", created.body);
    let http = client(COMMIT_TIMEOUT);
    let secret = cluster.secret().to_owned();
    let leader = cluster.wait_for_leader(secs(5)).await;
    let via = cluster.base(cluster.a_follower(leader));

    // Through a follower, which forwards each step to the leader.
    let a = step(&http, &via, &secret, &req(room, "p-a", DsOp::KeyPackage)).await;
    assert_eq!(a, Ok(DsReply::Found { group: 1 }));
    let b = step(&http, &via, &secret, &req(room, "p-b", DsOp::KeyPackage)).await;
    assert_eq!(b, Ok(DsReply::Queued { group: 1, epoch: 0 }));
    let won = req(room, "p-a", commit(1, 0, &["p-b"]));
    let accepted = step(&http, &via, &secret, &won).await;
    assert_eq!(accepted, Ok(DsReply::Accepted { group: 1, epoch: 1 }));

    cluster.kill(leader);
    let new = cluster.wait_for_leader(secs(10)).await;
    assert_ne!(new, leader);
    for id in cluster.ids() {
        let base = cluster.base(id);
        // Retried until this node reaches the new leader; then the commit
        // the dead leader accepted is there: the same one again is stale.
        let again = wait_for(
            &format!("node {id} answers the accepted commit again"),
            secs(20),
            async || match step(&http, &base, &secret, &won).await {
                Err(e) if e.code == ErrorCode::Unavailable => Err(e.message),
                other => Ok(other),
            },
        )
        .await;
        let e = again.expect_err("a second commit from epoch 0");
        assert_eq!(e.code, ErrorCode::InvalidState, "node {id}: {e:?}");
        assert!(e.message.contains("group 1 epoch 1"), "node {id}: {e:?}");
    }
    // And the group goes on from there, b now a member.
    let next = req(room, "p-b", commit(1, 1, &[]));
    let base = cluster.base(cluster.a_follower(new));
    assert_eq!(
        step(&http, &base, &secret, &next).await,
        Ok(DsReply::Accepted { group: 1, epoch: 2 })
    );
}
