//! Peer-to-peer for two in real Chromium when the direct path does not
//! work (issue 15; helpers from `browser_p2p.rs`).
//!
//! - **No direct route.** Alice's page has the diagnostic switch
//!   `localStorage['veche.p2p.relayOnly'] = '1'`: her direct connection
//!   uses relayed candidates only, and the test server has no TURN, so it
//!   can never connect. That simulates two networks with no route between
//!   them. The two are still paired (the node cannot know), and within
//!   [`FALLBACK_BUDGET`] of being paired they decode each other's video
//!   through the SFU: the node hears `failed` (Alice's page gathers no
//!   candidate at all, so it gives up at once; otherwise the node's
//!   timeout, [`P2P_CONNECT_TIMEOUT_MS`], would), turns the room to the SFU,
//!   counts it in `veche_node_p2p_fallbacks_total`, and does not pair the
//!   two again.
//! - **Back from three, make before break.** Alice and Bob direct, Carol
//!   joins (all on the SFU) and leaves: after the settle time the two are
//!   paired again, and the node keeps forwarding them until both pages
//!   report `connected`: a page-side watch sees the SFU's video of the
//!   peer still decoding until at most [`MAX_SFU_GAP_MS`] before the page
//!   switches to the direct video (had the node stopped forwarding at the
//!   new pairing, it would stop for the whole direct connection's set-up),
//!   and a sampler of each remote tile never sees it blank or frozen for
//!   more than [`MAX_FROZEN_MS`].
//!
//! Run in the loopback-only namespace:
//! `unshare -n bash -c 'ip link set lo up; cargo nextest run -E "test(/^browser_p2p_fallback::/)"'`.

use crate::browser_p2p::{
    assert_direct_video_flows, assert_sfu_video_flows, id_of, p2p_state, packets_out, same_pairing,
    start_sampler, stop_sampler, until_state,
};
use crate::common::moderation::samples;
use crate::common::*;
use std::time::Duration;
use veche_protocol::limits::signal::P2P_CONNECT_TIMEOUT_MS;

/// From both pages being told `p2p` until both decode each other through
/// the SFU: the node's connect timeout, plus the switch (a keyframe
/// through the SFU) and the test's polling.
const FALLBACK_BUDGET: Duration = Duration::from_millis(P2P_CONNECT_TIMEOUT_MS + 5_000);

/// The longest a remote tile may be blank or frozen while the pair goes
/// back to the direct path.
const MAX_FROZEN_MS: f64 = 1000.0;

/// How long before a page switches to the direct video the SFU's video of
/// the peer may have stopped decoding: the peer stops sending to the SFU
/// when its own direct video decodes, at about the same time.
const MAX_SFU_GAP_MS: f64 = 400.0;

/// A page-side watch (every 50 ms) of the SFU's video of participant
/// `arguments[0]`: when its decoded frames last rose, and that time as it
/// was when the page's peer-to-peer side first reached `direct`.
const RETURN_WATCH_JS: &str = r#"
const peer = arguments[0];
const w = { frames: null, lastRise: null, directAt: null, lastRiseAtDirect: null, timer: 0 };
const tick = async () => {
  const h = window.__vecheP2p;
  const pc = window.veche && typeof window.veche.pc === 'function' && window.veche.pc();
  if (!h || !pc) return;
  const sdp = (pc.remoteDescription && pc.remoteDescription.sdp) || '';
  const mids = new Set();
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section);
    const msid = /^a=msid:(\S+)/m.exec(section);
    if (mid && msid && msid[1] === peer) mids.add(mid[1]);
  }
  let f = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video' && mids.has(r.mid)) f = Math.max(f, r.framesDecoded || 0);
  });
  const now = Date.now();
  if (w.frames !== null && f > w.frames) w.lastRise = now;
  w.frames = f;
  if (w.directAt === null && h.state === 'direct') {
    w.directAt = now;
    w.lastRiseAtDirect = w.lastRise;
  }
};
w.timer = setInterval(() => { tick().catch(() => {}); }, 50);
window.__p2pReturnWatch = w;
"#;

/// When `b`'s peer-to-peer side first went `connecting` (it was paired),
/// in page wall-clock ms.
async fn paired_since(b: &Chrome) -> Result<f64, String> {
    let h = b
        .js(
            "return (window.__vecheP2p && window.__vecheP2p.history) || [];",
            vec![],
        )
        .await?;
    h.as_array()
        .and_then(|h| h.iter().find(|e| e["state"] == "connecting"))
        .and_then(|e| e["at"].as_f64())
        .ok_or_else(|| format!("{}: not paired yet: {h}", b.label))
}

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
        // The fallback can come before a poll would see the pair, so the
        // pages' own history (wall clock, `Date.now()`) tells when they
        // were paired.
        let paired_at = wait_for("both pages were paired", secs(30), async || {
            let (a, b) = (paired_since(&alice).await?, paired_since(&bob).await?);
            Ok::<_, String>(a.min(b))
        })
        .await;
        eprintln!("[p2p] Alice (no direct route) and Bob were paired at {paired_at}");
        let a_id = id_of(&alice, "Alice").await;
        let b_id = id_of(&bob, "Bob").await;
        assert_sfu_video_flows(&alice, &[&b_id], FALLBACK_BUDGET).await;
        assert_sfu_video_flows(&bob, &[&a_id], FALLBACK_BUDGET).await;
        let took = Duration::from_millis((now_ms() as f64 - paired_at).max(0.0) as u64);
        eprintln!("[p2p] paired -> both decode each other through the SFU: {took:?}");
        assert!(
            took <= FALLBACK_BUDGET,
            "both decoded each other through the SFU only {took:?} after pairing (budget {FALLBACK_BUDGET:?})"
        );
        let pairing = 1; // Alice alone: 0; the pair: 1; the fallback: 2.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_p2p_fallback_a_pair_back_from_three_is_forwarded_until_both_decode_directly() {
    let server = Server::start();
    let base = server.base().to_owned();
    let room = create_room(&base, "Back to two").await;
    let link = str_field(&room, "link").to_owned();
    let (alice, bob, carol) = tokio::join!(
        Chrome::start("Alice"),
        Chrome::start("Bob"),
        Chrome::start("Carol")
    );
    dump_on_failure(&[&alice, &bob, &carol], async {
        for b in [&alice, &bob] {
            b.goto(&format!("{link}?name={}&skipPrejoin=1", b.label))
                .await;
        }
        let first = same_pairing(&alice, &bob).await;
        assert_direct_video_flows(&alice, &bob).await;
        let a_id = id_of(&alice, "Alice").await;
        let b_id = id_of(&bob, "Bob").await;
        carol
            .goto(&format!("{link}?name=Carol&skipPrejoin=1"))
            .await;
        for b in [&alice, &bob] {
            until_state(b, "sfu").await;
        }
        assert_sfu_video_flows(&alice, &[&b_id], secs(10)).await;
        assert_sfu_video_flows(&bob, &[&a_id], secs(10)).await;
        start_sampler(&alice, &b_id).await;
        start_sampler(&bob, &a_id).await;
        for (b, peer) in [(&alice, &b_id), (&bob, &a_id)] {
            b.js(RETURN_WATCH_JS, vec![serde_json::json!(peer)])
                .await
                .expect("the return watch starts");
        }
        carol.goto("about:blank").await;
        let again = same_pairing(&alice, &bob).await;
        assert!(again > first, "a new pairing ({again}) after {first}");
        eprintln!("[p2p] Carol left; Alice and Bob are paired again ({again})");
        for b in [&alice, &bob] {
            let s = until_state(b, "direct").await;
            eprintln!("[p2p] {}: SFU -> P2P took {} ms", b.label, s["lastSwitchMs"]);
        }
        for b in [&alice, &bob] {
            let w = b
                .js(
                    "const w = window.__p2pReturnWatch; clearInterval(w.timer); \
                     return {directAt: w.directAt, lastRiseAtDirect: w.lastRiseAtDirect};",
                    vec![],
                )
                .await
                .expect("the return watch answers");
            let gap = match (w["directAt"].as_f64(), w["lastRiseAtDirect"].as_f64()) {
                (Some(d), Some(r)) => d - r,
                _ => f64::MAX,
            };
            eprintln!(
                "[p2p] {}: the SFU's video of the peer last decoded {gap:.0} ms before the page switched to direct",
                b.label
            );
            assert!(
                gap <= MAX_SFU_GAP_MS,
                "{}: the SFU's video of the peer stopped {gap:.0} ms before the direct video took over \
                 (at most {MAX_SFU_GAP_MS} ms): the node stopped forwarding too early ({w})",
                b.label
            );
        }
        tokio::time::sleep(secs(1)).await;
        for (b, peer) in [(&alice, "Bob"), (&bob, "Alice")] {
            let s = stop_sampler(b).await;
            eprintln!("[p2p] {}'s tile of {peer} going back to P2P: {s}", b.label);
            let blank = s["maxBlankMs"].as_f64().unwrap_or(f64::MAX);
            let frozen = s["maxFrameGapMs"].as_f64().unwrap_or(f64::MAX);
            assert!(
                blank <= MAX_FROZEN_MS && frozen <= MAX_FROZEN_MS,
                "{}'s tile of {peer} was blank for {blank} ms or frozen for {frozen} ms (at most {MAX_FROZEN_MS} ms): {s}",
                b.label
            );
            assert!(s["frames"].as_u64().unwrap_or(0) > 10, "the sampler saw no frames: {s}");
        }
        // Both pages said `connected`, for each of the two pairings (that
        // is what let the node stop forwarding them), and nothing fell back.
        let metrics = http_get(&format!("{base}/media/metrics")).await.body;
        let connected: Vec<_> = metrics
            .lines()
            .filter(|l| l.starts_with("veche_node_p2p_states_total{state=\"connected\"}"))
            .collect();
        eprintln!("[p2p] {connected:?}");
        let reports: f64 = connected.iter().filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum();
        assert!(reports >= 4.0, "both reported connected on both pairings: {connected:?}");
        let fallbacks: f64 = samples(&metrics, FALLBACKS).iter().map(|s| s.value).sum();
        assert_eq!(fallbacks, 0.0, "a working pair fell back");
        let before = packets_out(&base).await;
        tokio::time::sleep(secs(2)).await;
        assert_eq!(before, packets_out(&base).await, "the node forwards a direct pair");
        assert_direct_video_flows(&alice, &bob).await;
    })
    .await;
}
