//! A three-node control plane as separate `veche control-plane` processes,
//! changed and used by an operator: a fourth node added and an old one
//! removed while chat is written, public writes sent to a follower and
//! forwarded to the leader, and the cluster secret the admin API, the
//! internal RPC and `veche cluster` require.

use crate::common::cluster::Cluster;
use crate::common::cluster_chat::*;
use crate::common::*;
use serde_json::json;
use veche_protocol::rpc::RPC_COMMIT_CHAT;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fourth_node_joins_and_an_old_one_leaves_while_writes_continue() {
    let mut cluster = Cluster::start(3).await;
    let room = new_room(&cluster.base(1), "Membership").await;
    let writer = Writer::start(&cluster, &room);
    writer.wait_for_more(20, secs(20)).await;

    cluster.start_joining(4).await;
    let base4 = cluster.base(4);
    let add = cluster.cli_ok(&["add", "4", &base4]);
    assert!(
        add.contains("Node 4 is now a voter"),
        "`veche cluster add` did not confirm: {add}"
    );
    writer.set_targets(&cluster);
    writer.wait_for_more(20, secs(20)).await;

    let leader = cluster.wait_for_leader(secs(10)).await;
    let gone = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a non-leader");
    // The operator stops sending traffic to the node before removing it.
    let remaining: Vec<String> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != gone)
        .map(|id| cluster.base(id))
        .collect();
    *writer.targets.lock().expect("lock") = remaining;
    cluster.cli_ok(&["remove", &gone.to_string()]);
    cluster.kill(gone);
    writer.set_targets(&cluster);
    writer.wait_for_more(20, secs(20)).await;

    let mut expected: Vec<u64> = vec![1, 2, 3, 4];
    expected.retain(|id| *id != gone);
    for id in cluster.ids() {
        wait_for(
            &format!("node {id} lists members {expected:?}, all voters"),
            secs(10),
            async || {
                let s = cluster.status(id).await?;
                let members: Vec<(u64, bool)> = s["members"]
                    .as_array()
                    .ok_or_else(|| format!("no members in {s}"))?
                    .iter()
                    .map(|m| (m["id"].as_u64().unwrap_or(0), m["voter"] == true))
                    .collect();
                let ids: Vec<u64> = members.iter().map(|(id, _)| *id).collect();
                if ids == expected && members.iter().all(|(_, voter)| *voter) {
                    Ok(())
                } else {
                    Err(format!("members (id, voter) = {members:?}"))
                }
            },
        )
        .await;
    }
    let status_text = cluster.cli_ok(&["status"]);
    assert!(
        status_text.contains(&base4) && !status_text.contains(&cluster.base(gone)),
        "`veche cluster status` should list node 4 and not node {gone}:\n{status_text}"
    );

    let written = writer.stop().await;
    assert_eq!(cluster.ids(), expected, "running members");
    assert_every_node_has_exactly(&cluster, &room, &written.acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_created_through_a_follower_is_readable_on_every_node() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(secs(5)).await;
    let follower = *cluster
        .ids()
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    let reply = http_post_json(
        &format!("{}/api/rooms", cluster.base(follower)),
        &json!({ "name": "Made on a follower" }),
    )
    .await;
    assert_eq!(
        reply.status, 201,
        "POST /api/rooms on follower {follower}: {}",
        reply.body
    );
    let slug = str_field(&reply.json(), "slug").to_owned();
    // Reads are linearizable: no node may miss the acknowledged room.
    for id in cluster.ids() {
        let reply = http_get(&format!("{}/api/rooms/{slug}", cluster.base(id))).await;
        assert_eq!(reply.status, 200, "node {id}: GET the room: {}", reply.body);
        assert_eq!(reply.json()["name"], "Made on a follower", "node {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_and_the_cli_refuse_a_missing_or_wrong_cluster_secret() {
    let cluster = Cluster::start(3).await;
    let http = client(secs(10));
    let base = cluster.base(1);
    let admin = format!("{base}/api/admin/cluster");
    let members = format!("{admin}/members");
    for (label, auth) in [
        ("no secret", None),
        ("a wrong secret", Some("wrong-secret")),
    ] {
        let with = |req: reqwest::RequestBuilder| match auth {
            Some(s) => req.bearer_auth(s),
            None => req,
        };
        let requests = [
            ("GET /api/admin/cluster", with(http.get(&admin))),
            (
                "POST /api/admin/cluster/members",
                with(
                    http.post(&members)
                        .json(&json!({ "id": 9, "addr": "http://127.0.0.9:1" })),
                ),
            ),
            (
                "DELETE /api/admin/cluster/members/2",
                with(http.delete(format!("{members}/2"))),
            ),
            (
                "POST /internal/v1/chat",
                with(http.post(format!("{base}{RPC_COMMIT_CHAT}"))),
            ),
        ];
        for (what, req) in requests {
            let status = req.send().await.expect("request").status();
            assert_eq!(status, 401, "{what} with {label}");
        }
    }
    // The refused removal did nothing.
    let view = cluster.status(1).await.expect("status with the secret");
    assert_eq!(
        view["members"].as_array().map(Vec::len),
        Some(3),
        "members: {view}"
    );

    let out = cluster.cli(&["--cluster-secret", "wrong-secret", "status"]);
    assert!(!out.status.success(), "the CLI accepted a wrong secret");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused the cluster secret"),
        "the CLI should say the secret was refused: {stderr}"
    );
    cluster.cli_ok(&["status"]);
}
