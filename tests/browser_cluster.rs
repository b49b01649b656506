//! End to end across a control-plane failover: two browsers in a meeting
//! served by a three-node control plane and a separate media node keep
//! seeing each other and keep chatting when the Raft leader is killed, and
//! a third person can still join afterwards.
//!
//! Needs Debian's `chromium` and `chromium-driver`, and runs in the
//! loopback-only namespace `scripts/test.sh` creates.

use crate::common::cluster::Cluster;
use crate::common::*;
use std::time::{Duration, Instant};

const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_meeting_and_chat_survive_a_control_plane_leader_kill() {
    let mut cluster = Cluster::start(3).await;
    cluster.start_media_node(1).await;
    let leader = cluster.wait_for_leader(secs(10)).await;
    // The browsers use a node that survives, as a load balancer in front
    // of the control plane would once the leader's health check fails.
    let front = cluster.a_follower(leader);
    let base = cluster.base(front);
    let room = create_room(&base, "Failover meeting").await;
    let link = format!("{base}/r/{}", str_field(&room, "slug"));

    let (alice, bob) = tokio::join!(Chrome::start("Alice"), Chrome::start("Bob"));
    dump_on_failure(&[&alice, &bob], async {
        alice
            .goto(&format!("{link}?name=Alice&skipPrejoin=1"))
            .await;
        bob.goto(&format!("{link}?name=Bob&skipPrejoin=1")).await;
        assert_video_flows(&alice, 1, MEDIA_TIMEOUT).await;
        assert_video_flows(&bob, 1, MEDIA_TIMEOUT).await;
        alice.send_chat("before the failover").await;
        assert_chat_shows(&bob, "before the failover", secs(10)).await;

        // Kill the leader and chat at once: the message waits for the new
        // leader instead of failing.
        cluster.kill(leader);
        let killed_at = Instant::now();
        bob.send_chat("during the failover").await;
        let new_leader = cluster.wait_for_leader(secs(10)).await;
        eprintln!(
            "new leader {new_leader} after {} ms",
            killed_at.elapsed().as_millis()
        );
        assert_ne!(new_leader, leader);
        for b in [&alice, &bob] {
            assert_chat_shows(b, "during the failover", secs(15)).await;
        }
        alice.send_chat("after the failover").await;
        assert_chat_shows(&bob, "after the failover", secs(10)).await;

        // Media never depended on the control plane; it is still flowing.
        assert_video_flows(&alice, 1, MEDIA_TIMEOUT).await;
        assert_video_flows(&bob, 1, MEDIA_TIMEOUT).await;

        // Nothing the others saw was lost: history on every surviving node
        // has all three messages once each, in order.
        for id in cluster.ids() {
            let page = http_get(&format!(
                "{}/api/rooms/{}/messages",
                cluster.base(id),
                str_field(&room, "slug")
            ))
            .await
            .json();
            let texts: Vec<&str> = page["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .filter_map(|m| m["text"].as_str())
                .collect();
            assert_eq!(
                texts,
                [
                    "before the failover",
                    "during the failover",
                    "after the failover"
                ],
                "history on node {id}"
            );
        }
    })
    .await;

    // A newcomer joins after the failover (placement and token come from
    // the new leader) and sees both.
    let carol = Chrome::start("Carol").await;
    dump_on_failure(&[&alice, &bob, &carol], async {
        carol
            .goto(&format!("{link}?name=Carol&skipPrejoin=1"))
            .await;
        assert_video_flows(&carol, 2, MEDIA_TIMEOUT).await;
        assert_chat_shows(&carol, "after the failover", secs(10)).await;
    })
    .await;
    for b in [alice, bob, carol] {
        b.close().await;
    }
}
