//! Media nodes registered with a three-node control plane: a join is placed
//! on a live media node (and refused once it dies), on the node of the
//! joiner's region (a room then spans both regions' nodes), and never on a
//! node an operator drains; `veche cluster drain` waits until the node is
//! empty, or gives up after its timeout. A media node that cannot load a
//! room's moderation policy seats nobody in it.
//!
//! Most of these use stand-in media nodes (`Cluster::fake_media_node`):
//! placement and draining are what the control plane decides, and a
//! stand-in shows those decisions without WebRTC.

use crate::common::cluster::{token_claims, Cluster, FakeMediaNode};
use crate::common::cluster_chat::new_room;
use crate::common::*;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use veche_protocol::RoomId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_are_placed_on_a_registered_media_node_until_it_dies() {
    let mut cluster = Cluster::start(3).await;
    let media = cluster.start_media_node(1).await;
    let leader = cluster.wait_for_leader(secs(5)).await;
    let follower = *cluster
        .ids()
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    let room = new_room(&cluster.base(follower), "Placed").await;

    // A join through any node is sent to the media node's WebSocket.
    let media_ws = format!("{}/media/ws", media.replacen("http://", "ws://", 1));
    for id in cluster.ids() {
        let joined = join(&cluster.base(id), &room.slug, &format!("Guest {id}")).await;
        assert_eq!(
            str_field(&joined, "ws_url"),
            media_ws,
            "join through node {id}"
        );
    }
    let alive = |s: &serde_json::Value| {
        s["media_nodes"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["node_id"] == 1))
            .map(|n| n["alive"] == true)
    };
    let view = cluster.status(leader).await.expect("the leader's status");
    assert_eq!(alive(&view), Some(true), "media nodes: {view}");

    // Once it stops sending heartbeats, the leader stops placing people on
    // it, and a join says so instead of handing out a dead address.
    cluster.kill_media_node(1);
    wait_for("the leader marks media node 1 dead", secs(10), async || {
        let s = cluster.status(leader).await?;
        match alive(&s) {
            Some(false) => Ok(()),
            _ => Err(format!("media nodes: {}", s["media_nodes"])),
        }
    })
    .await;
    let reply = http_post_json(
        &format!("{}/api/rooms/{}/join", cluster.base(follower), room.slug),
        &json!({ "display_name": "Latecomer" }),
    )
    .await;
    reply.assert_error(503, "unavailable");
}

/// `POST {base}/api/rooms/{slug}/join` with `body`, and the
/// `x-veche-region` header if `region` is set.
async fn join_with(base: &str, slug: &str, region: Option<&str>, body: serde_json::Value) -> Reply {
    let headers: Vec<(&str, &str)> = region
        .map(|r| (veche_protocol::rpc::REGION_HEADER, r))
        .into_iter()
        .collect();
    http_post_json_with_headers(&format!("{base}/api/rooms/{slug}/join"), &body, &headers).await
}

/// Joins and checks that the participant was placed on `node`; returns the
/// join response.
async fn join_lands_on(
    base: &str,
    slug: &str,
    region: Option<&str>,
    body: serde_json::Value,
    node: &FakeMediaNode,
) -> serde_json::Value {
    let reply = join_with(base, slug, region, body.clone()).await;
    assert_eq!(
        reply.status, 200,
        "join {body} with region header {region:?}: {}",
        reply.body
    );
    let joined = reply.json();
    assert_eq!(
        joined["node_id"],
        node.id(),
        "join {body} with region header {region:?} went to the wrong node: {joined}"
    );
    assert_eq!(str_field(&joined, "ws_url"), node.ws_url());
    assert_eq!(
        token_claims(str_field(&joined, "token"))["node_id"],
        node.id()
    );
    joined
}

/// The relay peers a token names in `room_nodes`, as (id, relay address).
fn token_room_nodes(joined: &serde_json::Value) -> Vec<(u64, String)> {
    let claims = token_claims(str_field(joined, "token"));
    claims["room_nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| {
                    (
                        n["node_id"].as_u64().expect("node_id"),
                        n["relay_addr"].as_str().expect("relay_addr").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_go_to_the_media_node_of_their_region_and_a_room_spans_both() {
    let cluster = Cluster::start(3).await;
    let eu = cluster.fake_media_node(1, "eu", 0, true).await;
    let us = cluster.fake_media_node(2, "us", 0, true).await;
    let leader = cluster.wait_for_leader(secs(5)).await;
    // Placement is the leader's; joining through a follower exercises the
    // region and the avoided node travelling in the leader RPC.
    let follower = *cluster
        .ids()
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    let base = cluster.base(follower);
    let room = new_room(&base, "Across the ocean").await;
    let ann = json!({ "display_name": "Ann" });

    let first = join_lands_on(&base, &room.slug, Some("eu"), ann.clone(), &eu).await;
    assert_eq!(
        token_room_nodes(&first),
        vec![],
        "the room was on no node yet"
    );
    let second = join_lands_on(&base, &room.slug, Some("us"), ann.clone(), &us).await;
    assert_eq!(
        token_room_nodes(&second),
        vec![(1, eu.relay_addr().expect("relay").to_owned())],
        "the us node must link to the eu node already hosting the room"
    );
    // The body's region counts when no header is set; the header wins.
    join_lands_on(
        &base,
        &room.slug,
        None,
        json!({ "display_name": "Bo", "region": "eu" }),
        &eu,
    )
    .await;
    join_lands_on(
        &base,
        &room.slug,
        Some("us"),
        json!({ "display_name": "Cy", "region": "eu" }),
        &us,
    )
    .await;
    // A client that cannot reach its region's node goes elsewhere.
    join_lands_on(
        &base,
        &room.slug,
        Some("eu"),
        json!({ "display_name": "Di", "unreachable_node": 1 }),
        &us,
    )
    .await;

    // Both nodes report the room: each heartbeat reply names the other.
    eu.set_load(2, &[room.id]);
    us.set_load(2, &[room.id]);
    let names = |peer: &FakeMediaNode| {
        let (id, relay) = (peer.id(), peer.relay_addr().map(str::to_owned));
        move |r: &veche_protocol::rpc::HeartbeatReply| {
            r.room_nodes.iter().any(|rn| {
                rn.room_id == room.id
                    && rn.nodes.len() == 1
                    && rn.nodes[0].node_id.0 == id
                    && Some(&rn.nodes[0].relay_addr) == relay.as_ref()
            })
        }
    };
    eu.wait_for_reply("room's other node is node 2", names(&us))
        .await;
    us.wait_for_reply("room's other node is node 1", names(&eu))
        .await;
    let reply = eu.last_reply().expect("a reply");
    assert!(reply.registered && !reply.draining, "{reply:?}");
}

/// Node `node`'s entry in the leader's `media_nodes`, as JSON.
async fn media_node_status(cluster: &Cluster, node: u64) -> Result<serde_json::Value, String> {
    let leader = cluster.wait_for_leader(secs(5)).await;
    let s = cluster.status(leader).await?;
    s["media_nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["node_id"] == node).cloned())
        .ok_or_else(|| format!("no media node {node} in {s}"))
}

/// The `veche cluster status` table row of media node `node`, split into
/// columns (MEDIA ALIVE DRAINING REGION PEOPLE ...).
fn status_row(cluster: &Cluster, node: u64) -> Vec<String> {
    let text = cluster.cli_ok(&["status"]);
    let header = text
        .lines()
        .position(|l| l.starts_with("MEDIA"))
        .unwrap_or_else(|| panic!("no media-node table in:\n{text}"));
    assert!(
        text.lines()
            .nth(header)
            .is_some_and(|h| h.contains("DRAINING")),
        "no DRAINING column in:\n{text}"
    );
    text.lines()
        .skip(header + 1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(&node.to_string()))
        .unwrap_or_else(|| panic!("no row for media node {node} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drained_media_node_gets_no_new_joins_and_cluster_drain_waits_until_it_is_empty() {
    let cluster = Arc::new(Cluster::start(3).await);
    let one = cluster.fake_media_node(1, "", 0, true).await;
    let two = cluster.fake_media_node(2, "", 0, true).await;
    let base = cluster.base(1);
    let room = new_room(&base, "Moving house").await;
    // Two people are in the room on node 1, which is the less loaded node
    // otherwise: without draining, the next joiner would go there.
    one.set_load(2, &[room.id]);
    two.set_load(5, &[]);
    wait_for("the leader knows both nodes' load", secs(10), async || {
        let (n1, n2) = (
            media_node_status(&cluster, 1).await?,
            media_node_status(&cluster, 2).await?,
        );
        if n1["participants"] == 2 && n1["rooms"] == 1 && n2["participants"] == 5 {
            Ok(())
        } else {
            Err(format!("node 1: {n1}, node 2: {n2}"))
        }
    })
    .await;
    let hosted = join_with(&base, &room.slug, None, json!({ "display_name": "Ann" })).await;
    assert_eq!(hosted.json()["node_id"], 1, "{}", hosted.body);
    assert_eq!(status_row(&cluster, 1)[2], "no");

    let drain = tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || cluster.cli(&["drain", "1", "--timeout", "20"])
    });
    wait_for(
        "the leader shows media node 1 draining",
        secs(10),
        async || {
            let n = media_node_status(&cluster, 1).await?;
            if n["draining"] == true {
                Ok(())
            } else {
                Err(format!("node 1: {n}"))
            }
        },
    )
    .await;
    one.wait_for_reply("it is draining", |r| r.draining).await;
    assert!(!two.last_reply().expect("a reply").draining);
    assert_eq!(status_row(&cluster, 1)[2], "yes");
    // Node 1 still hosts the room, but joiners go to node 2 now, and are
    // told that node 1 hosts it (its people are still there).
    for name in ["Bo", "Cy"] {
        let reply = join_with(&base, &room.slug, None, json!({ "display_name": name })).await;
        let joined = reply.json();
        assert_eq!(joined["node_id"], 2, "a join while node 1 drains: {joined}");
        assert_eq!(
            token_room_nodes(&joined),
            vec![(1, one.relay_addr().expect("relay").to_owned())]
        );
    }
    assert!(
        !drain.is_finished(),
        "the drain finished with people on node 1"
    );

    // The last participants leave node 1: the drain command succeeds.
    one.set_load(0, &[]);
    let out = tokio::time::timeout(secs(15), drain)
        .await
        .expect("`veche cluster drain 1` did not finish once node 1 was empty")
        .expect("the CLI thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`veche cluster drain 1` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("node 1: ")
            && stdout.contains("participants left")
            && stdout.contains("no participants left"),
        "the drain should report progress and the end:\n{stdout}"
    );

    // Draining the only node left in service is refused.
    let out = cluster.cli(&["drain", "2"]);
    assert!(
        !out.status.success(),
        "draining the last node in service succeeded"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid_state"), "{stderr}");
    assert_eq!(status_row(&cluster, 2)[2], "no");

    // Back in service, node 1 takes joiners again; now node 2, idle,
    // drains at once.
    cluster.cli_ok(&["undrain", "1"]);
    assert_eq!(status_row(&cluster, 1)[2], "no");
    two.set_load(0, &[]);
    wait_for("the leader knows node 2 is idle", secs(10), async || {
        let n = media_node_status(&cluster, 2).await?;
        if n["participants"] == 0 {
            Ok(())
        } else {
            Err(format!("node 2: {n}"))
        }
    })
    .await;
    let started = Instant::now();
    cluster.cli_ok(&["drain", "2", "--timeout", "10"]);
    // No poll needed: the drain's own answer shows the node empty.
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "draining an idle node took {:?}",
        started.elapsed()
    );
    let reply = join_with(&base, &room.slug, None, json!({ "display_name": "Di" })).await;
    assert_eq!(reply.json()["node_id"], 1, "{}", reply.body);

    // A node process that starts again registers again: back in service.
    two.register_again().await;
    wait_for("node 2 is in service again", secs(10), async || {
        let n = media_node_status(&cluster, 2).await?;
        if n["draining"] == false {
            Ok(())
        } else {
            Err(format!("node 2: {n}"))
        }
    })
    .await;
    two.wait_for_reply("it is not draining", |r| !r.draining)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_drain_gives_up_after_its_timeout_and_the_node_stays_draining() {
    let cluster = Cluster::start(1).await;
    let one = cluster.fake_media_node(1, "", 0, true).await;
    let _two = cluster.fake_media_node(2, "", 0, true).await;
    one.set_load(3, &[RoomId(1)]);
    wait_for(
        "the leader knows node 1 has 3 participants",
        secs(10),
        async || {
            let n = media_node_status(&cluster, 1).await?;
            if n["participants"] == 3 {
                Ok(())
            } else {
                Err(format!("node 1: {n}"))
            }
        },
    )
    .await;
    let out = cluster.cli(&["drain", "1", "--timeout", "2"]);
    assert!(!out.status.success(), "the drain of a busy node succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("still has 3 participants") && stderr.contains("undrain"),
        "the timeout should say what is left and how to undo: {stderr}"
    );
    assert_eq!(
        media_node_status(&cluster, 1).await.unwrap()["draining"],
        true
    );
    // A node that stops beating counts as drained.
    one.stop();
    let out = cluster.cli_ok(&["drain", "1", "--timeout", "10"]);
    assert!(out.contains("stopped sending heartbeats"), "{out}");
}

/// A media node seats nobody under moderation rules it does not know: a
/// join whose room's policy the node cannot fetch (every control-plane node
/// is down) is refused with `unavailable`, which the client retries,
/// rather than seated unchecked (a banned participant with a fresh token,
/// or a non-speaker's media in speak mode, would get through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_is_refused_unavailable_while_the_rooms_moderation_policy_cannot_be_loaded() {
    let mut cluster = Cluster::start(1).await;
    let media = cluster.start_media_node(1).await;
    cluster.wait_for_leader(secs(5)).await;
    let base = cluster.base(1);
    let room = new_room(&base, "Unchecked").await;
    let joined = join(&base, &room.slug, "Early").await;
    cluster.kill(1);
    let mut sig = Signal::connect(&media, &joined).await;
    sig.send(&json!({ "type": "join", "token": str_field(&joined, "token") }))
        .await;
    let error = sig.recv(secs(30)).await.expect("an error before the close");
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "unavailable", "{error}");
    assert_eq!(error["request"], "join", "{error}");
    assert!(
        str_field(&error, "message").contains("moderation settings could not be loaded"),
        "{error}"
    );
    match sig.recv(secs(10)).await {
        Err(WsEnd::Closed(code, _)) => assert_eq!(code, 4503, "the close code"),
        other => panic!("expected a close with 4503 after the error, got {other:?}"),
    }
}
