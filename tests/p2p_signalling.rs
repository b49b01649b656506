//! Peer-to-peer calls for two (issue 15), through signalling, against a
//! real `veche serve`, with scripted clients that join with `p2p: true`:
//!
//! - Two joiners get `media_path` `p2p` with the same pairing and one
//!   offerer (the earlier joiner); their `peer_signal`s are relayed; a third
//!   joiner turns everyone to `sfu`; back to two, they are paired again
//!   only after the settle time.
//! - What the node refuses: signals outside the current pair (a non-peer,
//!   a stale pairing, a room on the SFU) with `invalid_state`, malformed
//!   ones with `bad_request`, oversize ones with `too_large`, a flood with
//!   `rate_limited`, and none of them reaches the peer.
//! - `p2p_state`: a `failed` report turns the pair to the SFU with a new
//!   pairing and they are not paired again; a pair that never reports
//!   `connected` is turned to the SFU after the connect timeout, one that
//!   does stays direct; reports outside the pair, malformed, oversize or
//!   flooding ones are refused (tests/p2p_state.rs).
//! - The room's `p2p` setting: the host turning it off moves the pair to
//!   the SFU, a participant or a guest (on a pass) may not change it, and a
//!   recording forces the SFU too.
//!
//! That the SFU then forwards nothing between the two is shown with real
//! browsers in `browser_p2p.rs`; the gate itself is unit-tested in the
//! node (`room/tests_p2p.rs`).

use crate::common::moderation::*;
use crate::common::moderation_member::*;
use crate::common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Connects `join` (a join response) as `name` with `p2p: true` and waits
/// until seated.
pub(crate) async fn enter_p2p(base: &str, name: &str, join: Value) -> Member {
    let frame = json!({ "type": "join", "token": str_field(&join, "token"), "p2p": true });
    let mut m = Member::connect_with(base, name, join, frame).await;
    m.until("joined", secs(10), |m| m.joined.is_some()).await;
    m
}

/// The next `media_path` of `m` whose path is `path`.
pub(crate) async fn path_of(m: &mut Member, path: &str, within: Duration) -> Value {
    let what = format!("media_path {path}");
    m.next_matching(&what, within, |v| {
        v["type"] == "media_path" && v["path"] == path
    })
    .await
}

/// A `peer_signal` frame.
fn signal(to: &str, pairing: u64, signal: Value) -> Value {
    json!({ "type": "peer_signal", "to": to, "pairing": pairing, "signal": signal })
}

fn offer(sdp: &str) -> Value {
    json!({ "kind": "offer", "sdp": sdp })
}

/// The next error `m` gets for a `peer_signal`; returns its code.
async fn refusal(m: &mut Member, what: &str) -> String {
    let e = m
        .next_matching(what, secs(10), |v| {
            v["type"] == "error" && v["request"] == "peer_signal"
        })
        .await;
    let message = e["message"].as_str().unwrap_or_default();
    assert!(
        !message.trim().is_empty(),
        "{what}: a refusal says why: {e}"
    );
    e["code"].as_str().unwrap_or_default().to_owned()
}

/// The next `peer_signal` `m` receives.
async fn relayed(m: &mut Member, what: &str) -> Value {
    m.next_matching(what, secs(10), |v| v["type"] == "peer_signal")
        .await
}

/// The sum of a metric's samples on the node of `base`.
pub(crate) async fn metric(base: &str, name: &str) -> f64 {
    let text = http_get(&format!("{base}/media/metrics")).await.body;
    samples(&text, name).iter().map(|s| s.value).sum()
}

/// Alice (host, joined first) and Bob, paired: returns them and the pairing.
pub(crate) async fn pair(base: &str) -> (OwnedRoom, Member, Member, u64) {
    let room = create_owned_room(base, "Two").await;
    let mut alice = enter_p2p(base, "Alice", join_as_host(base, &room, "Alice").await).await;
    let alone = path_of(&mut alice, "sfu", secs(5)).await;
    let bob_join = join(base, &room.slug(), "Bob").await;
    let mut bob = enter_p2p(base, "Bob", bob_join).await;
    let a = path_of(&mut alice, "p2p", secs(5)).await;
    let b = path_of(&mut bob, "p2p", secs(5)).await;
    assert_eq!(a["pairing"], b["pairing"], "one pairing for both: {a} {b}");
    assert!(a["pairing"].as_u64() > alone["pairing"].as_u64());
    assert_eq!(a["peer"], bob.id.as_str());
    assert_eq!(b["peer"], alice.id.as_str());
    assert_eq!(
        (a["offerer"].as_bool(), b["offerer"].as_bool()),
        (Some(true), Some(false)),
        "the earlier joiner offers"
    );
    let pairing = a["pairing"].as_u64().expect("a numeric pairing");
    (room, alice, bob, pairing)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_are_paired_and_relayed_a_third_turns_all_to_the_sfu_and_two_pair_again_after_settling()
{
    let server = Server::start();
    let base = server.base();
    let (room, mut alice, mut bob, pairing) = pair(base).await;
    let (a, b) = (alice.id.clone(), bob.id.clone());

    // Offer, answer and candidates go through, verbatim, with the sender.
    alice
        .sig
        .send(&signal(&b, pairing, offer("v=0 alice")))
        .await;
    let got = relayed(&mut bob, "Alice's offer").await;
    assert_eq!(
        got,
        json!({"type":"peer_signal","from":a,"pairing":pairing,"signal":offer("v=0 alice")})
    );
    let answer = json!({"kind":"answer","sdp":"v=0 bob"});
    bob.sig.send(&signal(&a, pairing, answer.clone())).await;
    assert_eq!(relayed(&mut alice, "Bob's answer").await["signal"], answer);
    let candidate = json!({"kind":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 192.0.2.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"u1"}});
    bob.sig.send(&signal(&a, pairing, candidate.clone())).await;
    assert_eq!(
        relayed(&mut alice, "Bob's candidate").await["signal"],
        candidate
    );
    let end = json!({"kind":"candidate","candidate":null});
    alice.sig.send(&signal(&b, pairing, end.clone())).await;
    assert_eq!(
        relayed(&mut bob, "the end of candidates").await["signal"],
        end
    );

    // A third joiner: everyone to the SFU under a new pairing; Carol hears
    // her path right after `joined`.
    let mut carol = enter_p2p(base, "Carol", join(base, &room.slug(), "Carol").await).await;
    let joined_at = carol
        .sig
        .seen
        .iter()
        .position(|v| v["type"] == "joined")
        .expect("joined was seen");
    let c = path_of(&mut carol, "sfu", secs(5)).await;
    let c_at = carol.sig.seen.iter().position(|v| v == &c).unwrap();
    assert_eq!(
        c_at,
        joined_at + 1,
        "media_path follows joined: {:?}",
        carol.sig.seen
    );
    let sfu = c["pairing"].as_u64().unwrap();
    assert!(sfu > pairing);
    for m in [&mut alice, &mut bob] {
        let p = path_of(m, "sfu", secs(5)).await;
        assert_eq!(p["pairing"].as_u64(), Some(sfu), "{}: {p}", m.name);
        assert!(
            p.get("peer").is_none(),
            "{}: no peer on the SFU: {p}",
            m.name
        );
    }
    // The old pairing's signals are refused now.
    alice.sig.send(&signal(&b, pairing, offer("late"))).await;
    assert_eq!(
        refusal(&mut alice, "a signal of the old pairing").await,
        "invalid_state"
    );

    // Back to two: the SFU for the settle time, then a new pair.
    carol.sig.send(&json!({"type":"leave"})).await;
    let left = Instant::now();
    let again = path_of(&mut alice, "p2p", secs(10)).await;
    let waited = left.elapsed();
    assert!(
        waited >= Duration::from_millis(4_500),
        "paired again after only {waited:?}; the settle time is 5 s"
    );
    assert!(again["pairing"].as_u64() > Some(sfu));
    let bob_again = path_of(&mut bob, "p2p", secs(2)).await;
    assert_eq!(bob_again["pairing"], again["pairing"]);
    eprintln!("[test] paired again {waited:?} after the third left");
    assert!(
        !alice
            .sig
            .seen
            .iter()
            .any(|v| v["type"] == "peer_signal" && v["signal"]["sdp"] == "late"),
        "nothing of the old pairing was relayed"
    );
    assert!(!bob.sig.seen.iter().any(|v| v["signal"]["sdp"] == "late"));

    // The node counts it.
    assert!(metric(base, "veche_node_p2p_pairs_started_total").await >= 2.0);
    assert!(metric(base, "veche_node_p2p_signals_relayed_total").await >= 4.0);
    assert!(metric(base, "veche_node_p2p_signals_refused_total").await >= 1.0);
    assert_eq!(metric(base, "veche_node_p2p_rooms").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_outside_the_pair_malformed_oversize_or_flooding_are_refused_and_never_reach_the_peer(
) {
    let server = Server::start();
    let base = server.base();
    let (_room, mut alice, mut bob, pairing) = pair(base).await;
    let (a, b) = (alice.id.clone(), bob.id.clone());

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "to herself",
            signal(&a, pairing, offer("x1")),
            "invalid_state",
        ),
        (
            "to someone not in the pair",
            signal("p0000000000000000", pairing, offer("x2")),
            "invalid_state",
        ),
        (
            "of a wrong pairing",
            signal(&b, pairing + 7, offer("x3")),
            "invalid_state",
        ),
        (
            "of an unknown kind",
            signal(&b, pairing, json!({"kind":"renegotiate","sdp":"x4"})),
            "bad_request",
        ),
        (
            "without a pairing",
            json!({"type":"peer_signal","to":b,"signal":offer("x5")}),
            "bad_request",
        ),
        (
            "over the size limit",
            signal(&b, pairing, offer(&"x".repeat(70 * 1024))),
            "too_large",
        ),
    ];
    for (what, frame, code) in cases {
        alice.sig.send(&frame).await;
        assert_eq!(
            refusal(&mut alice, &format!("a signal {what}")).await,
            code,
            "{what}"
        );
    }

    // A flood: about the burst goes through, the rest is refused.
    let burst = veche_protocol::limits::signal::PEER_SIGNAL.burst as usize;
    for i in 0..burst + 20 {
        let c = json!({"kind":"candidate","candidate":{"candidate":format!("candidate:{i} 1 udp 1 192.0.2.1 5000 typ host")}});
        alice.sig.send(&signal(&b, pairing, c)).await;
    }
    assert_eq!(
        refusal(&mut alice, "a flood of signals").await,
        "rate_limited"
    );

    // Wait out the refill, then a marker. Bob gets the flood's admitted
    // candidates, then the marker, and nothing of the refused signals.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    alice.sig.send(&signal(&b, pairing, offer("marker"))).await;
    let mut candidates = 0;
    loop {
        let v = relayed(&mut bob, "the marker").await;
        if v["signal"]["sdp"] == "marker" {
            break;
        }
        assert_eq!(
            v["signal"]["kind"], "candidate",
            "a refused signal was relayed: {v}"
        );
        candidates += 1;
    }
    assert!(
        (burst - 10..burst + 20).contains(&candidates),
        "{candidates} of {} flooded candidates relayed; the burst is {burst}",
        burst + 20
    );
    eprintln!(
        "[test] {candidates} of {} flooded candidates relayed",
        burst + 20
    );

    // A room on the SFU relays nothing: Bob leaves, Alice is alone.
    bob.sig.send(&json!({"type":"leave"})).await;
    let sfu = path_of(&mut alice, "sfu", secs(5)).await;
    let now = sfu["pairing"].as_u64().unwrap();
    alice.sig.send(&signal(&b, now, offer("alone"))).await;
    assert_eq!(
        refusal(&mut alice, "a signal in an SFU room").await,
        "invalid_state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_turns_p2p_off_and_on_a_participant_may_not_and_a_recording_forces_the_sfu() {
    let server = Server::start();
    let base = server.base();
    let (_room, mut alice, mut bob, pairing) = pair(base).await;

    let reason = bob
        .refused(
            json!({"action":"settings","change":{"p2p":false}}),
            "turning peer-to-peer off",
        )
        .await;
    eprintln!("[test] Bob turning p2p off: forbidden, {reason:?}");

    alice
        .moderate(json!({"action":"settings","change":{"p2p":false}}))
        .await;
    let off = path_of(&mut alice, "sfu", secs(5)).await;
    path_of(&mut bob, "sfu", secs(5)).await;
    assert!(off["pairing"].as_u64() > Some(pairing));
    bob.until("the policy says p2p is off", secs(5), |m| {
        m.policy["settings"]["p2p"] == false
    })
    .await;

    // On again: no settle time (the room never had three), paired at once.
    alice
        .moderate(json!({"action":"settings","change":{"p2p":true}}))
        .await;
    let on = path_of(&mut alice, "p2p", secs(5)).await;
    assert!(on["pairing"].as_u64() > off["pairing"].as_u64());

    // A recording forces the SFU; stopping it pairs them again.
    alice.moderate(json!({"action":"start_recording"})).await;
    let rec = path_of(&mut alice, "sfu", secs(5)).await;
    path_of(&mut bob, "sfu", secs(5)).await;
    alice.moderate(json!({"action":"stop_recording"})).await;
    let after = path_of(&mut alice, "p2p", secs(5)).await;
    assert!(after["pairing"].as_u64() > rec["pairing"].as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_on_a_pass_cannot_change_the_p2p_setting_and_is_paired_like_anyone() {
    let server = Server::start();
    let base = server.base();
    let created = http_post_json(
        &format!("{base}/api/rooms"),
        &json!({"name": "Board", "access": "signed_in_or_pass"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let room: Value = created.json();
    let slug = str_field(&room, "slug").to_owned();
    let owned = OwnedRoom {
        owner_key: str_field(&room, "owner_key").to_owned(),
        room,
    };
    let hour = 3_600_000;
    let now = now_ms();
    let reply = http_post_json_with_headers(
        &format!("{base}/api/rooms/{slug}/passes"),
        &json!({"label": "Visitor", "valid_from_ms": now - hour, "valid_until_ms": now + hour}),
        &[(OWNER_KEY, owned.owner_key.as_str())],
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let link = str_field(&reply.json(), "link").to_owned();
    let token = link.split("pass=").nth(1).expect("a pass link").to_owned();

    let mut host = enter_p2p(base, "Host", join_as_host(base, &owned, "Host").await).await;
    let guest_join = ok_json(
        &join_reply(
            base,
            &slug,
            &json!({"display_name": "Gus", "pass": token}),
            None,
        )
        .await,
        "joining on the pass",
    );
    let mut gus = enter_p2p(base, "Gus", guest_join).await;
    let gus_id = gus.id.clone();
    host.until("Gus shows as a guest", secs(5), |m| {
        m.people.get(&gus_id).is_some_and(|p| p["role"] == "guest")
    })
    .await;
    let paired = path_of(&mut gus, "p2p", secs(5)).await;
    let version = gus.policy["version"].as_u64();

    gus.refused(
        json!({"action":"settings","change":{"p2p":false}}),
        "a guest turning peer-to-peer off",
    )
    .await;
    // Nothing changed: the host's next action is the very next version,
    // and the pair stays paired under the same pairing until then.
    host.moderate(json!({"action":"settings","change":{"p2p":false}}))
        .await;
    gus.until("the host's change arrives", secs(5), |m| {
        m.policy["version"].as_u64() > version
    })
    .await;
    assert_eq!(
        gus.policy["version"].as_u64(),
        version.map(|v| v + 1),
        "the guest's attempt committed nothing"
    );
    let sfu = path_of(&mut gus, "sfu", secs(5)).await;
    assert_eq!(
        sfu["pairing"].as_u64(),
        paired["pairing"].as_u64().map(|p| p + 1),
        "the guest's attempt did not change the path"
    );
}
