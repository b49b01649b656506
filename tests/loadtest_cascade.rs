//! A short cluster run of the webinar scenario (`veche loadtest --nodes 3`):
//! one control plane and three media nodes in regions r1..r3, the
//! publisher in r1 and three subscribers spread over all three regions.
//! It checks that every subscriber received video, that media crossed a
//! cascade hop to reach some of them, and that the media nodes counted the
//! relayed packets, not how fast anything is (the benchmark in
//! docs/benchmarks.md does that).

use std::time::Duration;
use veche_loadtest::cluster::Role;
use veche_loadtest::scenario::{Options, Scenario, ServerTarget};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_cascade_webinar_subscribers_on_other_nodes_receive_relayed_video() {
    let report = veche_loadtest::run(Options {
        scenario: Scenario::Webinar { subscribers: 3 },
        ramp_per_sec: 10.0,
        duration: Duration::from_secs(3),
        video_bps: 1_500_000,
        target: ServerTarget::Cluster {
            exe: env!("CARGO_BIN_EXE_veche").into(),
            media_nodes: 3,
        },
        progress: false,
        record: false,
    })
    .await
    .unwrap_or_else(|e| panic!("the cluster webinar did not run: {e}"));
    eprintln!("{}", report.table());
    assert!(report.failed.is_empty(), "bots failed: {:?}", report.failed);
    assert_eq!(report.never_received, 0, "some bots received nothing");
    let cluster = report.cluster.as_ref().expect("a cluster section");

    // Every subscriber received the publisher's video.
    for sub in cluster
        .placements
        .iter()
        .filter(|p| p.bot.starts_with("sub-"))
    {
        let video = report
            .per_subscriber
            .iter()
            .find(|t| t.bot == sub.bot && t.track.ends_with("/video"));
        assert!(
            video.is_some_and(|t| t.kbps > 100.0),
            "{} (region {}, node {:?}) received video {video:?}",
            sub.bot,
            sub.region,
            sub.node_id
        );
    }

    // The publisher is in r1; the subscribers in r2 and r3 are a hop away.
    assert_eq!(cluster.publisher_nodes, [1], "{:?}", cluster.placements);
    let relayed = cluster
        .by_hops
        .iter()
        .find(|h| h.hops == 1)
        .unwrap_or_else(|| {
            panic!(
                "no subscriber is a cascade hop from the publisher: placements {:?}",
                cluster.placements
            )
        });
    assert!(
        relayed.receivers >= 1 && relayed.video.tracks >= 1,
        "{relayed:?}"
    );
    assert!(relayed.video.latency_ms.n > 0, "{relayed:?}");
    assert!(cluster.added_per_hop_ms.is_some(), "{:?}", cluster.by_hops);

    // The publisher's node relayed packets and the others received them.
    let media: Vec<_> = cluster
        .processes
        .iter()
        .filter(|p| p.role == Role::MediaNode)
        .collect();
    assert_eq!(media.len(), 3);
    let metrics = |id: u64| {
        media
            .iter()
            .find(|p| p.id == id)
            .and_then(|p| p.metrics)
            .unwrap_or_else(|| panic!("media node {id}'s metrics were not read"))
    };
    let origin = metrics(1);
    assert!(origin.relay_rtp_packets_out_total > 0, "node 1: {origin:?}");
    assert!(origin.relay_tracks_out > 0, "node 1: {origin:?}");
    let relayed_in: u64 = [2, 3]
        .into_iter()
        .map(|id| metrics(id).relay_rtp_packets_in_total)
        .sum();
    assert!(relayed_in > 0, "nodes 2 and 3 received no relayed packet");
    for p in &cluster.processes {
        assert!(
            p.cpu_percent.is_some() && p.rss_kib.is_some(),
            "{:?} {}: CPU and memory were not read",
            p.role,
            p.id
        );
    }
}
