//! Accounts, sessions, room owners and guest passes on a three-node
//! control plane: written through one node, read through another, and
//! still there after the leader is SIGKILLed. What a user sees: still
//! signed in, still the owner, the pass still listed and active.

use crate::common::accounts::{Visitor, GOOD_PASSWORD};
use crate::common::cluster::Cluster;
use crate::common::http::http;
use crate::common::*;
use serde_json::json;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accounts_sessions_owners_and_passes_survive_a_leader_kill() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(secs(5)).await;
    let others: Vec<u64> = cluster.ids().into_iter().filter(|i| *i != leader).collect();

    // The first administrator, made through a follower's operator route
    // (as `veche admin create-user` does), so the write is forwarded.
    let created = http()
        .post(format!(
            "{}/api/admin/cluster/users",
            cluster.base(others[0])
        ))
        .bearer_auth(cluster.secret())
        .json(&json!({"email": "ada@example.test", "password": GOOD_PASSWORD, "is_admin": true}))
        .send()
        .await
        .expect("create the administrator");
    assert_eq!(created.status().as_u16(), 201, "{:?}", created.text().await);

    // Signed in, a room and a pass made through the node about to die.
    let mut ada = Visitor::new(&cluster.base(leader));
    ada.sign_in_ok("ada@example.test", GOOD_PASSWORD).await;
    let room = ada
        .post(
            "/api/rooms",
            &json!({"name": "Board", "access": "signed_in_or_pass"}),
        )
        .await;
    assert_eq!(
        room.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&room.body)
    );
    let slug = room.json()["slug"].as_str().unwrap().to_owned();
    let now = now_ms();
    let pass = ada
        .post(
            &format!("/api/rooms/{slug}/passes"),
            &json!({"label": "Visitor", "valid_from_ms": now - 60_000, "valid_until_ms": now + 3_600_000}),
        )
        .await;
    assert!(
        (200..300).contains(&pass.status),
        "{:?}",
        String::from_utf8_lossy(&pass.body)
    );

    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader(secs(10)).await;
    assert_ne!(new_leader, leader);

    for id in others {
        // The same cookie, presented to a survivor: still signed in.
        let mut there = Visitor::new(&cluster.base(id));
        there.session = ada.session.clone();
        let me = there.me().await;
        assert_eq!(me["email"], "ada@example.test", "node {id}: {me}");
        assert_eq!(me["is_admin"], true);
        // Still the owner, and the pass is still there and active.
        let view = there.get(&format!("/api/rooms/{slug}")).await.json();
        assert_eq!(view["you_own"], true, "node {id}: {view}");
        assert_eq!(view["access"], "signed_in_or_pass");
        let list = there.get(&format!("/api/rooms/{slug}/passes")).await.json();
        let passes = list["passes"].as_array().expect("a pass list");
        assert_eq!(passes.len(), 1, "node {id}: {list}");
        assert_eq!(passes[0]["status"], "active");
        // The password hash was replicated too: a fresh sign-in works.
        Visitor::new(&cluster.base(id))
            .sign_in_ok("ada@example.test", GOOD_PASSWORD)
            .await;
    }
}
