//! Webhooks end to end: a three-node control plane with one webhook
//! endpoint, a real media node, participants joining and leaving through
//! signalling, and a receiver in this process. The control-plane leader is
//! killed in the middle. The receiver must get every event (room started,
//! two joins, two leaves, room finished), each id always with the same
//! body, every delivery with a valid signature.
//!
//! Run inside a loopback-only namespace (the media node opens WebRTC
//! sockets):
//!
//! ```text
//! unshare -rn bash -c 'ip link set lo up; cargo test --test it webhooks:: -- --nocapture'
//! ```

use crate::common::stats_site::*;
use crate::common::*;
use axum::http::HeaderMap;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use veche_control_plane::webhooks::{verify, WebhookEndpoint};

const HOOK_SECRET: &str = "webhook-test-secret-of-at-least-32-bytes";

/// What the receiver got: (signature valid, body).
type Received = Arc<Mutex<Vec<(bool, Value)>>>;

async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let sig = headers
                    .get("veche-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let valid = verify(HOOK_SECRET, sig, &body);
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                sink.lock().unwrap().push((valid, v));
                "ok"
            }
        }),
    );
    let l = listener().await;
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, got)
}

/// The distinct events received so far, by id, with every body each id
/// came with.
fn by_id(got: &Received) -> BTreeMap<String, Vec<Value>> {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (_, v) in got.lock().unwrap().iter() {
        m.entry(v["id"].as_str().unwrap_or("?").to_owned())
            .or_default()
            .push(v.clone());
    }
    m
}

fn count(got: &Received, kind: &str) -> usize {
    by_id(got)
        .values()
        .filter(|bodies| bodies[0]["type"] == kind)
        .count()
}

async fn leave(mut s: Signal) {
    s.send(&json!({ "type": "leave" })).await;
    while s.recv(secs(10)).await.is_ok() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_meeting_event_reaches_the_receiver_signed_and_under_one_id_across_a_leader_kill() {
    let (url, got) = receiver().await;
    let dir = veche_harness::TempDir::new("webhooks");
    let mut cps = cluster(dir.path(), 3).await;
    for n in &cps {
        n.cp.enable_webhooks(vec![WebhookEndpoint {
            url: url.clone(),
            secret: HOOK_SECRET.into(),
        }])
        .expect("enable webhooks");
    }
    let first = leader_index(&cps).await;
    let bases: Vec<String> = cps.iter().map(|n| n.base.clone()).collect();
    let (_media, _, _task) = media_node(1, bases.clone()).await;
    let base = bases[first].clone();
    let room = create_room(&base, "Hooked").await;
    let slug = str_field(&room, "slug").to_owned();
    let (ann, _) = Signal::join(&base, &join(&base, &slug, "Ann").await).await;
    let (bob, _) = Signal::join(&base, &join(&base, &slug, "Bob").await).await;
    wait_for(
        "the start and both joins are delivered",
        secs(20),
        async || {
            let (s, j) = (
                count(&got, "room_started"),
                count(&got, "participant_joined"),
            );
            (s == 1 && j == 2)
                .then_some(())
                .ok_or(format!("{s} room_started, {j} participant_joined"))
        },
    )
    .await;

    // The leader dies; the leaves happen while another is elected.
    cps.remove(first).kill().await;
    leave(bob).await;
    leave(ann).await;
    wait_for(
        "the leaves and the end are delivered",
        secs(30),
        async || {
            let (l, f) = (
                count(&got, "participant_left"),
                count(&got, "room_finished"),
            );
            (l == 2 && f == 1)
                .then_some(())
                .ok_or(format!("{l} participant_left, {f} room_finished"))
        },
    )
    .await;

    let events = by_id(&got);
    let deliveries = got.lock().unwrap().len();
    println!(
        "webhooks: {} events, {deliveries} deliveries ({} repeated after the leader kill)",
        events.len(),
        deliveries - events.len()
    );
    assert_eq!(events.len(), 6, "six events: {events:?}");
    assert!(
        got.lock().unwrap().iter().all(|(valid, _)| *valid),
        "every delivery carries a valid signature"
    );
    for (id, bodies) in &events {
        assert!(
            bodies.iter().all(|b| b == &bodies[0]),
            "{id} came with different bodies: {bodies:?}"
        );
    }
    let joined: Vec<&str> = events
        .values()
        .filter(|b| b[0]["type"] == "participant_joined")
        .map(|b| b[0]["participant"]["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(joined, ["Ann", "Bob"]);
    for n in cps {
        n.kill().await;
    }
}
