//! A room spanning two media nodes, seen through signalling alone (no
//! browsers, no media): `veche serve` with a relay, plus a `veche
//! media-node` added to it in another region. People placed on different
//! nodes see each other join, chat and leave, exactly as if they shared a
//! node. This is how one machine grows: start `veche serve`, then add
//! media nodes to it.

use crate::common::cluster::token_claims;
use crate::common::two_nodes::TwoNodes;
use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;

async fn join_in(base: &str, slug: &str, name: &str, region: &str) -> Value {
    let r = http_post_json(
        &format!("{base}/api/rooms/{slug}/join"),
        &json!({ "display_name": name, "region": region }),
    )
    .await;
    assert_eq!(r.status, 200, "join as {name}: {}", r.body);
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_on_serve_and_on_an_added_media_node_share_one_room() {
    let cluster = TwoNodes::start().await;
    let base = cluster.server.base().to_owned();

    let room = create_room(&base, "Grown").await;
    let slug = str_field(&room, "slug").to_owned();
    let ann = join_in(&base, &slug, "Ann", "a").await;
    let ben = join_in(&base, &slug, "Ben", "b").await;
    assert_eq!(ann["node_id"], 1, "Ann is placed in her region: {ann}");
    assert_eq!(ben["node_id"], 2, "Ben is placed in his region: {ben}");
    let claims = token_claims(str_field(&ben, "token"));
    assert_eq!(
        claims["room_nodes"][0]["node_id"], 1,
        "Ben's token names the node already hosting the room: {claims}"
    );

    let (mut sa, _) = Signal::join(&base, &ann).await;
    let (mut sb, joined_b) = Signal::join(&base, &ben).await;
    let named = |v: &Value, name: &str| {
        v["type"] == "participant_joined" && v["participant"]["display_name"] == name
    };
    sa.recv_matching("Ann sees Ben join from the other node", secs(10), |v| {
        named(v, "Ben")
    })
    .await;
    let ann_in_snapshot = joined_b["participants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["display_name"] == "Ann");
    if !ann_in_snapshot {
        sb.recv_matching("Ben sees Ann, who is on the other node", secs(10), |v| {
            named(v, "Ann")
        })
        .await;
    }

    // Chat committed on one node reaches the other.
    sb.chat("hello across nodes").await;
    sa.recv_matching("Ann gets Ben's chat", secs(10), |v| {
        v["type"] == "chat" && v["message"]["text"] == "hello across nodes"
    })
    .await;

    // Ben leaves: Ann sees him leave, not reconnect.
    sb.send(&json!({ "type": "leave" })).await;
    let left = sa
        .recv_matching("Ann sees Ben leave", secs(10), |v| {
            v["type"] == "participant_left"
        })
        .await;
    assert_eq!(left["reason"], "left", "{left}");
    sa.ping(1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
}
