//! The MLS handshake through one media node and the real control plane,
//! with scripted signalling clients standing in for browsers (the MLS
//! bytes are opaque to the server, so any base64url does):
//!
//! - A plain room refuses handshake messages, and nobody hears of them.
//! - Malformed, oversized and too frequent handshake messages are refused
//!   to their sender with `bad_request`, `too_large`, `rate_limited`.
//! - The delivery service's order reaches the room: a key package to a
//!   room without a group founds one (`e2ee_found` to everyone); the next
//!   joiner's key package reaches the members, not its sender; a commit
//!   is echoed to everyone, its committer included; a second commit from
//!   the same epoch is refused to its sender alone and nobody sees it, as
//!   is a commit from someone outside the group.
//! - Chat in an encrypted room must be sealed: unsealed text is refused,
//!   neither stored nor relayed.

use crate::common::e2ee::*;
use crate::common::*;
use serde_json::{json, Value};
use veche_protocol::limits::e2ee as lim;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_room_refuses_handshake_messages_and_nobody_hears_of_them() {
    let server = Server::start();
    let base = server.base();
    let room = create_room(base, "Plain").await;
    let slug = str_field(&room, "slug");
    let (mut ann, ann_id) = enter(base, slug, "Ann", false).await;
    let (mut ben, _) = enter(base, slug, "Ben", false).await;

    ann.send(&key_package_frame(&opaque("annkp", 200))).await;
    let e = refusal(&mut ann, "e2ee_key_package").await;
    assert_eq!(e["code"], "invalid_state", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("not end-to-end encrypted"),
        "{e}"
    );
    ann.send(&commit_frame(1, 0, &[], &opaque("c", 100))).await;
    let e = refusal(&mut ann, "e2ee_commit").await;
    assert_eq!(e["code"], "invalid_state", "{e}");

    let ben_saw = marker(&mut ann, &ann_id, &mut ben, true).await;
    assert_no_handshake(&ben_saw, "Ben, in a plain room");
    assert_no_handshake(&ann.seen, "Ann, in a plain room");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_too_frequent_handshake_messages_are_refused_to_their_sender() {
    let server = Server::start();
    let base = server.base();
    let room = create_e2ee_room(base, "Refusals").await;
    let slug = str_field(&room, "slug");
    let (mut ann, _) = enter(base, slug, "Ann", true).await;
    let (mut ben, _) = enter(base, slug, "Ben", true).await;

    let bad: Vec<(&str, Value, &str)> = vec![
        (
            "a key package that is not base64url",
            key_package_frame("not base64!"),
            "bad_request",
        ),
        ("an empty key package", key_package_frame(""), "bad_request"),
        (
            "a key package over its limit",
            key_package_frame(&opaque("kp", lim::MAX_KEY_PACKAGE_BYTES + 1)),
            "too_large",
        ),
        (
            "a commit adding someone twice",
            commit_frame(1, 0, &["pX", "pX"], &opaque("c", 10)),
            "bad_request",
        ),
        (
            "a commit without its commit bytes",
            json!({"type": "e2ee_commit", "group": 1, "epoch": 0}),
            "bad_request",
        ),
        (
            "a commit that is not base64url",
            commit_frame(1, 0, &[], "a commit?"),
            "bad_request",
        ),
        (
            "a commit over its limit",
            commit_frame(1, 0, &[], &opaque("c", lim::MAX_COMMIT_BYTES + 1)),
            "too_large",
        ),
        (
            "a welcome over its limit",
            {
                let mut f = commit_frame(1, 0, &["pX"], &opaque("c", 10));
                f["welcome"] = json!(opaque("w", lim::MAX_WELCOME_BYTES + 1));
                f
            },
            "too_large",
        ),
    ];
    for (what, frame, code) in &bad {
        let request = frame["type"].as_str().unwrap();
        ann.send(frame).await;
        let e = refusal(&mut ann, request).await;
        assert_eq!(e["code"], *code, "{what}: {e}");
    }

    // The key-package budget: a burst, then refusals until it refills.
    // (Refused key packages cost their sender's budget too, so Cy, with a
    // full one, sends these.)
    let (mut cy, cy_id) = enter(base, slug, "Cy", true).await;
    let sent = 4 * lim::KEY_PACKAGE.burst as usize;
    for i in 0..sent {
        cy.send(&key_package_frame(&opaque(&format!("kp{i}"), 100)))
            .await;
    }
    let (mut ordered, mut limited) = (0, 0);
    while ordered + limited < sent {
        let v = cy
            .recv_matching("an answer to each key package", secs(10), |v| {
                v["type"] == "e2ee_found" || v["type"] == "error"
            })
            .await;
        match v["type"].as_str() {
            Some("e2ee_found") => ordered += 1,
            _ if v["code"] == "rate_limited" && v["request"] == "e2ee_key_package" => limited += 1,
            _ => panic!("unexpected answer to a key package: {v}"),
        }
    }
    assert!(
        ordered >= lim::KEY_PACKAGE.burst as usize
            && ordered <= lim::KEY_PACKAGE.burst as usize + 2,
        "the burst is ordered, and little more: {ordered} of {sent}"
    );
    assert!(
        limited >= sent - lim::KEY_PACKAGE.burst as usize - 2,
        "{limited} refused"
    );

    // Ben heard of the ordered key packages only (each founded a group,
    // since the founder asking again gives up its group).
    let ben_saw = marker(&mut cy, &cy_id, &mut ben, true).await;
    let found = ben_saw.iter().filter(|v| v["type"] == "e2ee_found").count();
    assert_eq!(found, ordered, "Ben hears each ordered key package once");
    assert!(
        ben_saw
            .iter()
            .all(|v| v["type"] != "e2ee_commit" && v["type"] != "e2ee_key_package"),
        "nothing refused reached Ben: {ben_saw:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_service_order_reaches_the_room_and_a_losing_commit_reaches_nobody() {
    let server = Server::start();
    let base = server.base();
    let room = create_e2ee_room(base, "Handshake").await;
    let slug = str_field(&room, "slug");
    let (mut ann, ann_id) = enter(base, slug, "Ann", true).await;
    let (mut ben, ben_id) = enter(base, slug, "Ben", true).await;
    let (mut cy, cy_id) = enter(base, slug, "Cy", true).await;

    // Ann's key package in a room without a group: she founds one, and
    // everyone hears so (so other waiters resend at once).
    ann.send(&key_package_frame(&opaque("annkp", 300))).await;
    let mut group = None;
    for (s, who) in [(&mut ann, "Ann"), (&mut ben, "Ben"), (&mut cy, "Cy")] {
        let f = s.recv_type("e2ee_found", secs(10)).await;
        assert_eq!(f["participant_id"], ann_id.as_str(), "{who}: {f}");
        group.get_or_insert(f["group"].as_u64().unwrap());
        assert_eq!(f["group"].as_u64(), group, "{who}: {f}");
    }
    let group = group.unwrap();

    // Ben's key package is queued: the others get it, Ben does not.
    let ben_kp = opaque("benkp", 300);
    ben.send(&key_package_frame(&ben_kp)).await;
    for (s, who) in [(&mut ann, "Ann"), (&mut cy, "Cy")] {
        let k = s.recv_type("e2ee_key_package", secs(10)).await;
        assert_eq!(k["participant_id"], ben_id.as_str(), "{who}: {k}");
        assert_eq!(k["group"], group, "{who}: {k}");
        assert_eq!(k["key_package"], ben_kp.as_str(), "{who}: {k}");
    }
    let ben_saw = marker(&mut cy, &cy_id, &mut ben, true).await;
    assert!(
        ben_saw.iter().all(|v| v["type"] != "e2ee_key_package"),
        "Ben does not get his own key package back: {ben_saw:?}"
    );

    // Ann commits Ben in: everyone gets it, Ann included (her acceptance),
    // labelled with the epoch it starts from.
    let c1 = opaque("commitone", 500);
    ann.send(&commit_frame(group, 0, &[&ben_id], &c1)).await;
    for (s, who) in [(&mut ann, "Ann"), (&mut ben, "Ben"), (&mut cy, "Cy")] {
        let c = s.recv_type("e2ee_commit", secs(10)).await;
        assert_eq!(c["participant_id"], ann_id.as_str(), "{who}: {c}");
        assert_eq!(
            (c["group"].as_u64(), c["epoch"].as_u64()),
            (Some(group), Some(0)),
            "{who}: {c}"
        );
        assert_eq!(c["added"], json!([ben_id]), "{who}: {c}");
        assert_eq!(c["commit"], c1.as_str(), "{who}: {c}");
        assert!(c["welcome"].is_string(), "the welcome travels with it: {c}");
    }

    // Ben, now a member, commits from epoch 0 too: that epoch is gone.
    // Only Ben hears, and nothing changes: Ann's commit from epoch 1 wins.
    let (a0, c0) = (ann.seen.len(), cy.seen.len());
    ben.send(&commit_frame(group, 0, &[], &opaque("late", 100)))
        .await;
    let e = refusal(&mut ben, "e2ee_commit").await;
    assert_eq!(e["code"], "invalid_state", "{e}");
    // Cy, who is not in the group, may not commit even from its epoch.
    cy.send(&commit_frame(group, 1, &[], &opaque("outsider", 100)))
        .await;
    let e = refusal(&mut cy, "e2ee_commit").await;
    assert_eq!(e["code"], "invalid_state", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("only a member"),
        "{e}"
    );
    let seen_by = |s: &Signal, from: usize| s.seen[from..].to_vec();
    let c2 = opaque("committwo", 200);
    ann.send(&commit_frame(group, 1, &[], &c2)).await;
    for (s, who) in [(&mut ann, "Ann"), (&mut ben, "Ben"), (&mut cy, "Cy")] {
        let c = s.recv_type("e2ee_commit", secs(10)).await;
        assert_eq!(
            c["epoch"], 1,
            "{who} gets the commit from epoch 1 next: {c}"
        );
        assert_eq!(c["commit"], c2.as_str(), "{who}: {c}");
    }
    for (s, from, who) in [(&ann, a0, "Ann"), (&cy, c0, "Cy")] {
        let late: Vec<Value> = seen_by(s, from)
            .into_iter()
            .filter(|v| v["type"] == "e2ee_commit" && v["participant_id"] != ann_id.as_str())
            .collect();
        assert!(
            late.is_empty(),
            "{who} never sees Ben's losing commit: {late:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsealed_chat_in_an_encrypted_room_is_refused_and_neither_stored_nor_relayed() {
    let server = Server::start();
    let base = server.base();
    let room = create_e2ee_room(base, "Sealed").await;
    let slug = str_field(&room, "slug");
    let (mut ann, _) = enter(base, slug, "Ann", true).await;
    let (mut ben, _) = enter(base, slug, "Ben", true).await;

    ann.send(&json!({"type": "chat", "text": "the plan is at 10", "client_msg_id": "m1"}))
        .await;
    let e = ann
        .recv_matching("the refusal of the unsealed chat", secs(10), |v| {
            v["type"] == "error" || v["type"] == "chat"
        })
        .await;
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["code"], "bad_request", "{e}");
    assert_eq!(e["request"], "chat", "{e}");
    assert_eq!(e["client_msg_id"], "m1", "{e}");

    // A sealed message goes through, and is all Ben ever sees.
    let sealed = format!("e2ee1:1:0:{}", opaque("nonceandciphertext", 60));
    let echo = ann.chat(&sealed).await;
    assert_eq!(echo["message"]["text"], sealed.as_str());
    let got = ben.recv_type("chat", secs(10)).await;
    assert_eq!(
        got["message"]["text"],
        sealed.as_str(),
        "Ben's first chat is the sealed one"
    );

    let history = http_get(&format!("{base}/api/rooms/{slug}/messages")).await;
    assert_eq!(history.status, 200, "{}", history.body);
    let texts: Vec<Value> = history.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(
        texts,
        vec![json!(sealed)],
        "only the sealed message is stored"
    );
}
