//! Peer-to-peer for two in real Chromium when the direct path does not
//! work (issue 15; helpers from `browser_p2p.rs`).
//!
//! - **No direct route.** Alice's page has the diagnostic switch
//!   `localStorage['veche.p2p.relayOnly'] = '1'`: her direct connection
//!   uses relayed candidates only, and the test server has no TURN, so it
//!   can never connect. That simulates two networks with no route between
//!   them. The two are still paired (the node cannot know), and within
//!   [`FALLBACK_BUDGET`] of being paired they decode each other's video
//!   through the SFU: the node hears `failed` or times the attempt out
//!   (`p2p_state`, [`P2P_CONNECT_TIMEOUT_MS`]), turns the room to the SFU,
//!   counts it in `veche_node_p2p_fallbacks_total`, and does not pair the
//!   two again.
//!
//! Run in the loopback-only namespace:
//! `unshare -n bash -c 'ip link set lo up; cargo nextest run -E "test(/^browser_p2p_fallback::/)"'`.

use crate::browser_p2p::{assert_sfu_video_flows, id_of, p2p_state, packets_out, same_pairing};
use crate::common::moderation::samples;
use crate::common::*;
use std::time::{Duration, Instant};
use veche_protocol::limits::signal::P2P_CONNECT_TIMEOUT_MS;

/// From both pages being told `p2p` until both decode each other through
/// the SFU: the node's connect timeout, plus the switch (a keyframe
/// through the SFU) and the test's polling.
const FALLBACK_BUDGET: Duration = Duration::from_millis(P2P_CONNECT_TIMEOUT_MS + 5_000);

/// The node's count of pairs given up for the SFU.
const FALLBACKS: &str = "veche_node_p2p_fallbacks_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_p2p_fallback_two_without_a_direct_route_decode_each_other_through_the_sfu() {
    let server = Server::start();
    let base = server.base().to_owned();
    let room = create_room(&base, "No route").await;
    let link = str_field(&room, "link").to_owned();
    let (alice, bob) = tokio::join!(Chrome::start("Alice"), Chrome::start("Bob"));
    dump_on_failure(&[&alice, &bob], async {
        // The switch, set on the room's origin before the app loads.
        alice.goto(&format!("{base}/")).await;
        alice
            .js("localStorage.setItem('veche.p2p.relayOnly', '1');", vec![])
            .await
            .expect("localStorage is writable");
        for b in [&alice, &bob] {
            b.goto(&format!("{link}?name={}&skipPrejoin=1", b.label))
                .await;
        }
        let pairing = same_pairing(&alice, &bob).await;
        let paired_at = Instant::now();
        eprintln!("[p2p] Alice (no direct route) and Bob are paired ({pairing})");
        let a_id = id_of(&alice, "Alice").await;
        let b_id = id_of(&bob, "Bob").await;
        assert_sfu_video_flows(&alice, &[&b_id], FALLBACK_BUDGET).await;
        assert_sfu_video_flows(&bob, &[&a_id], FALLBACK_BUDGET).await;
        let took = paired_at.elapsed();
        eprintln!("[p2p] paired -> both decode each other through the SFU: {took:?}");
        assert!(
            took <= FALLBACK_BUDGET,
            "both decoded each other through the SFU only {took:?} after pairing (budget {FALLBACK_BUDGET:?})"
        );
        for b in [&alice, &bob] {
            let s = p2p_state(b).await.unwrap();
            assert_eq!(s["path"], "sfu", "{}: {s}", b.label);
            assert!(s["pairing"].as_u64() > Some(pairing), "{}: a new pairing: {s}", b.label);
            assert_eq!(s["sfuSending"], true, "{}: {s}", b.label);
        }
        let metrics = http_get(&format!("{base}/media/metrics")).await.body;
        let fallbacks: f64 = samples(&metrics, FALLBACKS).iter().map(|s| s.value).sum();
        assert_eq!(fallbacks, 1.0, "one fallback counted: {fallbacks}");
        let why: Vec<_> = metrics.lines().filter(|l| l.starts_with(FALLBACKS)).collect();
        eprintln!("[p2p] {why:?}");
        assert!(packets_out(&base).await > 0, "the node forwards again");
        // Not paired again: the same two on the same path a while later.
        tokio::time::sleep(secs(3)).await;
        let later = p2p_state(&bob).await.unwrap();
        assert_eq!(later["path"], "sfu", "paired again: {later}");
        assert_sfu_video_flows(&alice, &[&b_id], secs(5)).await;
    })
    .await;
}
