//! Peer-to-peer calls for two: what the browsers report of their direct
//! connection (`p2p_state`), against a real `veche serve` with scripted
//! clients (helpers from `p2p_signalling.rs`).
//!
//! - A `failed` report turns the pair to the SFU with a new pairing, the
//!   node counts the fallback, and the two are not paired again while the
//!   membership stays the same.
//! - A pair that never reports `connected` is turned to the SFU after
//!   [`P2P_CONNECT_TIMEOUT_MS`]; one that reports it from both sides stays
//!   direct.
//! - Reports outside the current pair get `invalid_state`, malformed ones
//!   `bad_request`, a frame over the frame limit (a report has no text of
//!   its own, so the frame limit is its size limit) `too_large`, a flood `rate_limited`,
//!   and none of them changes the path.
//!
//! That two browsers whose direct path cannot connect still see each other
//! through the SFU is shown in `browser_p2p.rs`.

use crate::common::moderation_member::*;
use crate::common::*;
use crate::p2p_signalling::{metric, pair, path_of};
use serde_json::{json, Value};
use std::time::Duration;
use veche_protocol::limits::signal::{P2P_CONNECT_TIMEOUT_MS, P2P_STATE};
use veche_protocol::signal::MAX_FRAME_BYTES;

fn report(pairing: u64, state: &str) -> Value {
    json!({ "type": "p2p_state", "pairing": pairing, "state": state })
}

/// The next `media_path` `m` gets within `within`, or `None`.
async fn any_path(m: &mut Member, within: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match m.sig.recv(left).await {
            Ok(v) if v["type"] == "media_path" => return Some(v),
            Ok(v) => m.apply(&v),
            Err(WsEnd::Timeout) => return None,
            Err(end) => panic!("{}: the socket gave {end:?}", m.name),
        }
    }
}

/// The code of the next error `m` gets for a `p2p_state` (or for a frame
/// too large to tell).
async fn refusal(m: &mut Member, what: &str) -> String {
    let e = m
        .next_matching(what, secs(10), |v| {
            v["type"] == "error" && (v["request"] == "p2p_state" || v["request"].is_null())
        })
        .await;
    assert!(
        !e["message"].as_str().unwrap_or_default().trim().is_empty(),
        "{what}: a refusal says why: {e}"
    );
    e["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_direct_path_turns_the_pair_to_the_sfu_and_they_are_not_paired_again() {
    let server = Server::start();
    let base = server.base();
    let before = metric(base, "veche_node_p2p_fallbacks_total").await;
    let (_room, mut alice, mut bob, pairing) = pair(base).await;
    bob.sig.send(&report(pairing, "failed")).await;
    for m in [&mut alice, &mut bob] {
        let v = path_of(m, "sfu", secs(5)).await;
        assert!(v["pairing"].as_u64() > Some(pairing), "a new pairing: {v}");
        assert!(v["peer"].is_null(), "{v}");
    }
    assert_eq!(
        metric(base, "veche_node_p2p_fallbacks_total").await - before,
        1.0,
        "the fallback is counted"
    );
    // Device changes of the same two do not pair them again.
    alice
        .sig
        .send(&json!({"type":"media","mic_muted":true}))
        .await;
    let again = any_path(&mut bob, Duration::from_millis(1_500)).await;
    assert_eq!(again, None, "the two were paired again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_that_never_connects_times_out_to_the_sfu_and_a_connected_one_stays_direct() {
    let server = Server::start();
    let base = server.base();
    let (_r1, mut silent, _silent_peer, _) = pair(base).await;
    let (_r2, mut alice, mut bob, pairing) = pair(base).await;
    let started = std::time::Instant::now();
    alice.sig.send(&report(pairing, "connected")).await;
    bob.sig.send(&report(pairing, "connected")).await;
    let timeout = Duration::from_millis(P2P_CONNECT_TIMEOUT_MS);
    let v = path_of(&mut silent, "sfu", timeout + secs(3)).await;
    let took = started.elapsed();
    assert!(
        took + secs(2) >= timeout,
        "fell back after {took:?}, before the {timeout:?} timeout: {v}"
    );
    eprintln!("[test] a silent pair fell back to the SFU after {took:?}");
    assert!(metric(base, "veche_node_p2p_fallbacks_total").await >= 1.0);
    let moved = any_path(&mut alice, secs(1)).await;
    assert_eq!(moved, None, "a connected pair stays direct");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_outside_the_pair_malformed_oversize_or_flooding_are_refused_and_change_nothing() {
    let server = Server::start();
    let base = server.base();
    let (_room, mut alice, mut bob, pairing) = pair(base).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "of a wrong pairing",
            report(pairing + 7, "failed"),
            "invalid_state",
        ),
        (
            "of an older pairing",
            report(pairing - 1, "failed"),
            "invalid_state",
        ),
        (
            "of an unknown state",
            report(pairing, "maybe"),
            "bad_request",
        ),
        (
            "without a pairing",
            json!({"type":"p2p_state","state":"failed"}),
            "bad_request",
        ),
        (
            "with an extra field",
            json!({"type":"p2p_state","pairing":pairing,"state":"failed","why":"x"}),
            "bad_request",
        ),
        (
            "over the frame limit",
            json!({"type":"p2p_state","pairing":pairing,"state":"failed","pad":"x".repeat(MAX_FRAME_BYTES + 16)}),
            "too_large",
        ),
    ];
    for (what, frame, code) in cases {
        alice.sig.send(&frame).await;
        assert_eq!(refusal(&mut alice, what).await, code, "{what}");
    }
    // A flood of (valid) reports: about the burst is taken, then refused.
    for _ in 0..P2P_STATE.burst as usize + 5 {
        alice.sig.send(&report(pairing, "connected")).await;
    }
    assert_eq!(refusal(&mut alice, "a flood").await, "rate_limited");
    assert_eq!(any_path(&mut bob, secs(1)).await, None, "nothing changed");

    // Someone who is not in the pair (a third joiner turns the room to the
    // SFU, so nobody is paired) may not report.
    let carol = join(base, &_room.slug(), "Carol").await;
    let mut carol = crate::p2p_signalling::enter_p2p(base, "Carol", carol).await;
    let sfu = path_of(&mut carol, "sfu", secs(5)).await;
    carol
        .sig
        .send(&report(sfu["pairing"].as_u64().unwrap(), "failed"))
        .await;
    assert_eq!(refusal(&mut carol, "not paired").await, "invalid_state");
    assert!(
        metric(base, "veche_node_p2p_states_total").await >= 3.0,
        "reports are counted"
    );
}
