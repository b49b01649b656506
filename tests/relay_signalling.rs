//! A room spanning two media nodes, seen through signalling alone (no
//! browsers, no media): `veche serve` with a relay, plus a `veche
//! media-node` added to it in another region. People placed on different
//! nodes see each other join, chat and leave, exactly as if they shared a
//! node. This is how one machine grows: start `veche serve`, then add
//! media nodes to it.

use crate::common::cluster::token_claims;
use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;
use veche_harness::{Launch, Ready};

/// At least 32 bytes: the control plane refuses a shorter cluster secret.
const SECRET: &str = "relay-signalling-test-secret-of-at-least-32-bytes";

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
    let dir = TempDir::new("relay-signalling");
    let ca = dir.path().join("ca");
    let (n1, n2) = (dir.path().join("n1"), dir.path().join("n2"));
    veche_ok(&[
        "cluster".as_ref(),
        "ca".as_ref(),
        "--out".as_ref(),
        ca.as_os_str(),
    ]);
    for (id, out) in [("1", &n1), ("2", &n2)] {
        veche_ok(&[
            "cluster".as_ref(),
            "cert".as_ref(),
            "--ca".as_ref(),
            ca.as_os_str(),
            "--node".as_ref(),
            id.as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
    }
    let server = Server::start_with_config(&format!(
        r#"
[control_plane]
cluster_secret = "{SECRET}"

[media]
region = "a"
relay_listen = "127.0.0.1:0"
relay_tls_dir = "{}"
"#,
        n1.display()
    ));
    let base = server.base().to_owned();
    let port = free_port();
    // Killed when the test ends, however it ends.
    let mut media = Launch::new("media-2", VECHE)
        .args(["media-node", "--id", "2", "--region", "b"])
        .args(["--listen".to_owned(), format!("127.0.0.1:{port}")])
        .args(["--control-plane", &base])
        .args(["--relay-listen", "127.0.0.1:0", "--relay-tls"])
        .arg(&n2)
        .env("VECHE_CLUSTER_SECRET", SECRET)
        .ready(Ready::Line("Media node 2 is running at".into()))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    media
        .ready(SERVER_START_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        "both media nodes are alive with relays",
        secs(30),
        async || {
            let status = http()
                .get(format!("{base}/api/admin/cluster"))
                .bearer_auth(SECRET)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json::<Value>()
                .await
                .map_err(|e| e.to_string())?;
            let ready = status["media_nodes"]
                .as_array()
                .map(|ns| {
                    ns.iter()
                        .filter(|n| n["alive"] == true && n["relay_addr"].is_string())
                        .count()
                })
                .unwrap_or(0);
            if ready == 2 {
                Ok(())
            } else {
                Err(format!("{status}"))
            }
        },
    )
    .await;

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
