//! End to end across media nodes: one control plane and three media nodes
//! in three regions, cascading over QUIC. Three browsers, each placed on a
//! different node by its region, see and hear each other; each track
//! crosses each node pair exactly once and the relays go when the last
//! person on a node leaves; a drained node's participant moves without
//! doing anything; a node added while the meeting runs takes a newcomer;
//! and a killed node's participant is back, with video, on another node
//! within seconds while the others see them reconnect.
//!
//! Needs Debian's `chromium` and `chromium-driver`, and runs in the
//! loopback-only namespace `scripts/test.sh` creates.

use crate::common::cluster::{Cluster, MediaNodeOpts};
use crate::common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);

/// How many of `b`'s video tracks decode new frames within 300 ms.
async fn live_video_tracks(b: &Chrome) -> usize {
    let Ok(first) = b.frames_decoded_per_track().await else {
        return 0;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let Ok(now) = b.frames_decoded_per_track().await else {
        return 0;
    };
    now.iter()
        .filter(|(mid, f)| first.get(*mid).is_some_and(|g| *f > g))
        .count()
}

/// The media node `b` is connected to, once it is joined.
async fn node_of(b: &Chrome) -> u64 {
    wait_for(
        &format!("{} is joined to a media node", b.label),
        MEDIA_TIMEOUT,
        async || {
            let s = b.state().await?;
            match (s["connected"].as_bool(), s["nodeId"].as_u64()) {
                (Some(true), Some(n)) => Ok(n),
                _ => Err(format!("state {s}")),
            }
        },
    )
    .await
}

/// `metric{label="value"}` values of one metric family on a media node.
async fn metric_by_label(base: &str, metric: &str) -> BTreeMap<String, f64> {
    let text = http_get(&format!("{base}/media/metrics")).await.body;
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter_map(|l| {
            let label = l.split('"').nth(1)?.to_owned();
            let value = l.rsplit(' ').next()?.parse().ok()?;
            Some((label, value))
        })
        .collect()
}

/// Starts the control plane and three media nodes `r1`..`r3` with relays.
async fn three_regions() -> Cluster {
    let mut cluster = Cluster::start(1).await;
    cluster.start_relay_regions(3).await;
    cluster
}

/// Opens the room in three browsers, one per region, and checks each
/// landed on its region's node.
async fn three_browsers(base: &str, slug: &str) -> [Chrome; 3] {
    let (a, b, c) = tokio::join!(
        Chrome::start("Alice"),
        Chrome::start("Bob"),
        Chrome::start("Carol")
    );
    for (i, x) in [&a, &b, &c].into_iter().enumerate() {
        x.goto(&format!(
            "{base}/r/{slug}?name={}&skipPrejoin=1&region=r{}",
            x.label,
            i + 1
        ))
        .await;
    }
    for (i, x) in [&a, &b, &c].into_iter().enumerate() {
        assert_eq!(
            node_of(x).await,
            i as u64 + 1,
            "{} should be placed in its region r{}",
            x.label,
            i + 1
        );
    }
    [a, b, c]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_three_people_on_three_media_nodes_see_each_other_and_a_drained_node_empties() {
    let mut cluster = three_regions().await;
    let base = cluster.base(1);
    let room = create_room(&base, "Across regions").await;
    let slug = str_field(&room, "slug").to_owned();
    let [alice, bob, carol] = three_browsers(&base, &slug).await;
    dump_on_failure(&[&alice, &bob, &carol], async {
        for b in [&alice, &bob, &carol] {
            assert_video_flows(b, 2, MEDIA_TIMEOUT).await;
        }
        // Each browser publishes audio and video; each node relays both
        // to each of the two other nodes, once, however many people there
        // receive them.
        for id in 1..=3u64 {
            let media = cluster.media_base(id);
            let out = metric_by_label(&media, "veche_node_relay_tracks_out").await;
            let inn = metric_by_label(&media, "veche_node_relay_tracks_in").await;
            for peer in (1..=3u64).filter(|p| *p != id) {
                assert_eq!(
                    out.get(&peer.to_string()).copied(),
                    Some(2.0),
                    "node {id} relays its 2 tracks to node {peer} once each: {out:?}"
                );
                assert_eq!(
                    inn.get(&peer.to_string()).copied(),
                    Some(2.0),
                    "node {id} receives node {peer}'s 2 tracks once each: {inn:?}"
                );
            }
        }
        // Chat crosses nodes too.
        alice.send_chat("hello from r1").await;
        assert_chat_shows(&carol, "hello from r1", secs(10)).await;
        carol.send_chat("hello from r3").await;
        assert_chat_shows(&bob, "hello from r3", secs(10)).await;

        // Drain Bob's node: he moves without doing anything, the node
        // exits, and everyone keeps decoding.
        let t0 = Instant::now();
        cluster.cli_ok(&["drain", "2"]);
        let moved_to = node_of(&bob).await;
        assert_ne!(moved_to, 2, "Bob moved off the drained node");
        eprintln!(
            "[test] drain of node 2 finished in {:?}; Bob is on node {moved_to}",
            t0.elapsed()
        );
        cluster
            .wait_media_node_exit(2, secs(15))
            .await
            .expect("the drained node exits by itself");
        for b in [&alice, &bob, &carol] {
            assert_video_flows(b, 2, MEDIA_TIMEOUT).await;
        }
        // Bob never left as far as the others are concerned.
        let seen = alice.participant_state("Bob").await.unwrap();
        assert_eq!(seen["status"], "connected", "{seen}");

        // Carol, the last one on node 3, leaves: node 1 stops relaying to
        // node 3, and node 3 stops relaying to node 1.
        carol.click_button("Leave").await;
        let (one, three) = (cluster.media_base(1), cluster.media_base(3));
        wait_for(
            "the relays between nodes 1 and 3 are torn down",
            secs(10),
            async || {
                let out1 = metric_by_label(&one, "veche_node_relay_tracks_out").await;
                let in1 = metric_by_label(&one, "veche_node_relay_tracks_in").await;
                let out3 = metric_by_label(&three, "veche_node_relay_tracks_out").await;
                let busy = [out1.get("3"), in1.get("3"), out3.get("1")]
                    .into_iter()
                    .any(|v| v.copied().unwrap_or(0.0) > 0.0);
                if busy {
                    Err(format!(
                        "node 1 out {out1:?} in {in1:?}; node 3 out {out3:?}"
                    ))
                } else {
                    Ok(())
                }
            },
        )
        .await;
        wait_for("Alice sees Carol leave", secs(10), async || {
            match alice.participant_state("Carol").await {
                Err(_) => Ok(()),
                Ok(p) => Err(format!("still there: {p}")),
            }
        })
        .await;
    })
    .await;
    for b in [alice, bob, carol] {
        b.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_participant_whose_media_node_dies_is_back_with_video_on_another_node() {
    // Two nodes to begin with; the third is added while the meeting runs.
    let mut cluster = Cluster::start(1).await;
    cluster.start_relay_regions(2).await;
    let base = cluster.base(1);
    let room = create_room(&base, "Node loss").await;
    let slug = str_field(&room, "slug").to_owned();
    let (alice, bob) = tokio::join!(Chrome::start("Alice"), Chrome::start("Bob"));
    for (i, x) in [&alice, &bob].into_iter().enumerate() {
        x.goto(&format!(
            "{base}/r/{slug}?name={}&skipPrejoin=1&region=r{}",
            x.label,
            i + 1
        ))
        .await;
    }
    let carol = Chrome::start("Carol").await;
    dump_on_failure(&[&alice, &bob, &carol], async {
        assert_video_flows(&alice, 1, MEDIA_TIMEOUT).await;
        assert_video_flows(&bob, 1, MEDIA_TIMEOUT).await;
        cluster
            .start_media_node_with(3, MediaNodeOpts::region_with_relay(3))
            .await;
        carol
            .goto(&format!("{base}/r/{slug}?name=Carol&skipPrejoin=1&region=r3"))
            .await;
        assert_eq!(node_of(&carol).await, 3, "Carol joins on the added node");
        for b in [&alice, &bob, &carol] {
            assert_video_flows(b, 2, MEDIA_TIMEOUT).await;
        }
        cluster.kill_media_node(3);
        let t0 = Instant::now();
        // Carol is back once she is on another node, decoding both others,
        // and decoded by Alice. Meanwhile, watch her status as Alice sees
        // it, often enough to catch a short "reconnecting".
        let done = std::sync::atomic::AtomicBool::new(false);
        let watch = async {
            let mut statuses: Vec<String> = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(p) = alice.participant_state("Carol").await {
                    let s = p["status"].as_str().unwrap_or("?").to_owned();
                    if statuses.last() != Some(&s) {
                        statuses.push(s);
                    }
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            statuses
        };
        let back = async {
            let mut last = String::new();
            let r = loop {
                if t0.elapsed() > secs(10) {
                    break Err(last);
                }
                let carol_state = carol.state().await.unwrap_or_default();
                let on_new_node = carol_state["connected"] == true
                    && carol_state["nodeId"].as_u64().is_some_and(|n| n != 3);
                let (carol_live, alice_live) =
                    tokio::join!(live_video_tracks(&carol), live_video_tracks(&alice));
                last = format!(
                    "Carol on node {} (connected {}), Carol decodes {carol_live} live video \
                     tracks, Alice {alice_live}",
                    carol_state["nodeId"], carol_state["connected"]
                );
                if on_new_node && carol_live >= 2 && alice_live >= 2 {
                    break Ok(t0.elapsed());
                }
            };
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            r
        };
        let (statuses, back) = tokio::join!(watch, back);
        let back_at = back.unwrap_or_else(|last| {
            panic!("Carol not back within 10 s; Alice saw {statuses:?}; last check: {last}")
        });
        eprintln!(
            "[test] Carol back with video {back_at:?} after her node was killed; Alice saw her {statuses:?}"
        );
        assert!(
            statuses.iter().any(|s| s == "reconnecting"),
            "Alice saw Carol as reconnecting at some point: {statuses:?}"
        );
        wait_for("Alice sees Carol connected again", secs(10), async || {
            let p = alice.participant_state("Carol").await?;
            if p["status"] == "connected" {
                Ok(())
            } else {
                Err(format!("{p}"))
            }
        })
        .await;
        assert_video_flows(&carol, 2, MEDIA_TIMEOUT).await;
        assert_video_flows(&alice, 2, MEDIA_TIMEOUT).await;
        assert_video_flows(&bob, 2, MEDIA_TIMEOUT).await;
        // Carol is one person throughout: nobody sees two of her.
        let names: Vec<String> = alice
            .state()
            .await
            .unwrap()["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["display_name"].as_str().unwrap_or("").to_owned())
            .collect();
        assert_eq!(names.iter().filter(|n| *n == "Carol").count(), 1, "{names:?}");
    })
    .await;
    for b in [alice, bob, carol] {
        b.close().await;
    }
}
