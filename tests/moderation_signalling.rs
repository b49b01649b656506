//! Authority in a room, through signalling, against a real `veche
//! serve`, with scripted signalling clients (`common/moderation_member.rs`
//! `Member`):
//!
//! - A participant trying each moderator action is refused `forbidden`
//!   and nothing is committed; a moderator may not act on the host; a
//!   participant muted by a moderator cannot unmute themselves until asked;
//!   "mute everyone" spares hosts and moderators.
//! - The lobby: an early arrival waits until admitted, a denied waiter is
//!   closed and cannot come back with its token, a participant removed
//!   with "don't let them back" cannot rejoin with a rejoin token, and a
//!   locked meeting refuses newcomers but not a rejoin.
//! - Raised hands carry the node's time, so every list orders them alike.
//!
//! What the media path does (the node withholding tracks) is in
//! `moderation_media.rs`.

use crate::common::cluster::token_claims;
use crate::common::moderation::*;
use crate::common::moderation_member::*;
use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;
use veche_protocol::signal::{CLOSE_DENIED, CLOSE_REMOVED};

/// Joins `name` as an ordinary participant and waits until seated.
async fn enter(base: &str, slug: &str, name: &str) -> Member {
    Member::enter(base, name, join(base, slug, name).await).await
}

/// Waits until `m` sees everyone in `names` in the room.
async fn sees_all(m: &mut Member, names: &[&str]) {
    let what = format!("{} sees {names:?}", m.name);
    m.until(&what, secs(10), |m| {
        names.iter().all(|n| m.person(n).is_some())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_trying_each_moderator_action_is_refused_and_nothing_changes_for_anyone() {
    let server = Server::start();
    let base = server.base();
    let room = create_owned_room(base, "Refusals").await;
    let slug = room.slug();
    let mut alice = Member::enter(base, "Alice", join_as_host(base, &room, "Alice").await).await;
    let mut bob = enter(base, &slug, "Bob").await;
    let mut carol = enter(base, &slug, "Carol").await;
    for m in [&mut alice, &mut bob, &mut carol] {
        sees_all(m, &["Alice", "Bob", "Carol"]).await;
    }
    let (a, b, c) = (alice.id.clone(), bob.id.clone(), carol.id.clone());
    let role = |m: &Member, id: &str| m.people[id]["role"].as_str().unwrap_or("?").to_owned();
    assert_eq!(role(&carol, &a), "host", "the owner key makes Alice host");
    assert_eq!(role(&carol, &b), "participant");
    assert_eq!(role(&alice, &c), "participant");
    let v0 = carol.policy["version"]
        .as_u64()
        .expect("joined carries the policy version");
    let carol_seen_from = carol.sig.seen.len();
    let alice_seen_from = alice.sig.seen.len();

    // Bob, a participant, tries every moderator action, on Carol, on the
    // host, on himself, and on the room.
    let actions: Vec<(&str, Value)> = vec![
        (
            "muting Carol's microphone",
            json!({"action":"mute","participant_id":c,"group":"microphone"}),
        ),
        (
            "turning off Carol's camera",
            json!({"action":"mute","participant_id":c,"group":"camera"}),
        ),
        (
            "stopping Carol's screen share",
            json!({"action":"mute","participant_id":c,"group":"screen"}),
        ),
        (
            "muting the host",
            json!({"action":"mute","participant_id":a,"group":"microphone"}),
        ),
        (
            "asking Carol to unmute",
            json!({"action":"ask_to_unmute","participant_id":c}),
        ),
        ("muting everyone", json!({"action":"mute_everyone"})),
        (
            "making himself a moderator",
            json!({"action":"make_moderator","participant_id":b}),
        ),
        (
            "making Carol a moderator",
            json!({"action":"make_moderator","participant_id":c}),
        ),
        (
            "revoking the host's moderator",
            json!({"action":"revoke_moderator","participant_id":a}),
        ),
        (
            "allowing himself to speak",
            json!({"action":"allow_speak","participant_id":b}),
        ),
        (
            "revoking Carol's speak permission",
            json!({"action":"revoke_speak","participant_id":c}),
        ),
        (
            "removing Carol",
            json!({"action":"remove","participant_id":c,"ban":false}),
        ),
        (
            "removing and banning Carol",
            json!({"action":"remove","participant_id":c,"ban":true}),
        ),
        (
            "admitting Carol",
            json!({"action":"admit","participant_id":c}),
        ),
        ("denying Carol", json!({"action":"deny","participant_id":c})),
        (
            "locking the meeting",
            json!({"action":"settings","change":{"locked":true}}),
        ),
        (
            "turning the lobby on",
            json!({"action":"settings","change":{"lobby":true}}),
        ),
        (
            "turning speak mode on",
            json!({"action":"settings","change":{"speak_mode":true}}),
        ),
        (
            "allowing self-unmute",
            json!({"action":"settings","change":{"allow_self_unmute":true}}),
        ),
    ];
    for (what, action) in actions {
        let reason = bob.refused(action, what).await;
        eprintln!("[test] Bob {what}: forbidden, {reason:?}");
    }

    // The host acts once: that commit is the very next version, so none of
    // Bob's attempts committed anything.
    alice
        .moderate(json!({"action":"mute","participant_id":c,"group":"microphone"}))
        .await;
    for m in [&mut alice, &mut carol] {
        let what = format!("{} gets policy version {}", m.name, v0 + 1);
        m.until(&what, secs(10), |m| {
            m.policy["version"].as_u64() >= Some(v0 + 1)
        })
        .await;
        assert_eq!(
            m.policy["version"].as_u64(),
            Some(v0 + 1),
            "{}: only the host's action was committed: {}",
            m.name,
            m.policy
        );
    }
    carol
        .until("Carol is told Alice muted her microphone", secs(10), |m| {
            !m.notices.is_empty()
        })
        .await;
    let notice = &carol.notices[0];
    assert_eq!(notice["notice"], "muted", "{notice}");
    assert_eq!(notice["group"], "microphone", "{notice}");
    assert_eq!(notice["by"], a.as_str(), "{notice}");
    assert_eq!(notice["by_name"], "Alice", "{notice}");
    // Nothing else reached anyone: no other notice, policy, departure or
    // role change.
    for (m, from) in [(&alice, alice_seen_from), (&carol, carol_seen_from)] {
        for v in &m.sig.seen[from..] {
            let ty = v["type"].as_str().unwrap_or_default();
            assert!(
                ty != "participant_left" && ty != "lobby",
                "{} got {v} after Bob's refused actions",
                m.name
            );
            if ty == "policy" {
                assert_eq!(
                    v["policy"]["version"].as_u64(),
                    Some(v0 + 1),
                    "{}: {v}",
                    m.name
                );
            }
            if ty == "moderated" {
                assert_eq!(
                    v["by"],
                    a.as_str(),
                    "{}: a notice not from Alice: {v}",
                    m.name
                );
            }
            if ty == "participant_updated" {
                let p = &v["participant"];
                let expected = if p["id"] == a.as_str() {
                    "host"
                } else {
                    "participant"
                };
                assert_eq!(p["role"], expected, "{}: a role changed: {v}", m.name);
            }
        }
    }
    assert_eq!(carol.held(&c), ["microphone"], "{}", carol.policy);
    assert_eq!(carol.policy["settings"]["locked"], false);
    assert_eq!(carol.policy["settings"]["lobby"], false);
    assert_eq!(carol.policy["settings"]["speak_mode"], false);

    // Carol, muted by a moderator, cannot lift it herself (the room does
    // not allow self-unmute) until Alice asks her to unmute.
    carol
        .refused(
            json!({"action":"unmute_self","group":"microphone"}),
            "unmuting herself after a moderator muted her",
        )
        .await;
    alice
        .moderate(json!({"action":"ask_to_unmute","participant_id":c}))
        .await;
    carol
        .until(
            "Carol is asked to unmute and her hold is lifted",
            secs(10),
            |m| {
                m.notices
                    .iter()
                    .any(|n| n["notice"] == "asked_to_unmute" && n["by_name"] == "Alice")
                    && m.held(&m.id).is_empty()
            },
        )
        .await;

    // A moderator may act on participants but never on the host. Carol
    // (who has sent one action so far; Bob has used his `moderate` budget)
    // is made one.
    alice
        .moderate(json!({"action":"make_moderator","participant_id":c}))
        .await;
    carol
        .until("Carol is told she is a moderator", secs(10), |m| {
            m.notices.iter().any(|n| n["notice"] == "made_moderator")
                && m.people[&m.id]["role"] == "moderator"
        })
        .await;
    bob.until("Bob sees Carol as a moderator", secs(10), |m| {
        m.people[&c]["role"] == "moderator"
    })
    .await;
    for (what, action) in [
        (
            "a moderator muting the host",
            json!({"action":"mute","participant_id":a,"group":"camera"}),
        ),
        (
            "a moderator revoking the host",
            json!({"action":"revoke_moderator","participant_id":a}),
        ),
        (
            "a moderator removing the host",
            json!({"action":"remove","participant_id":a,"ban":true}),
        ),
    ] {
        carol.refused(action, what).await;
    }
    carol
        .moderate(json!({"action":"mute","participant_id":b,"group":"camera"}))
        .await;
    bob.until("Bob is told Carol turned off his camera", secs(10), |m| {
        m.notices
            .iter()
            .any(|n| n["notice"] == "muted" && n["group"] == "camera" && n["by_name"] == "Carol")
            && m.held(&m.id) == ["camera"]
    })
    .await;
    alice
        .until("Alice, the host, was never held", secs(5), |m| {
            m.held(&a).is_empty()
        })
        .await;
    assert!(
        alice.notices.is_empty(),
        "nobody acted on the host: {:?}",
        alice.notices
    );

    // "Mute everyone" holds the microphone of everyone who does not
    // moderate: Bob, not Carol (a moderator) nor Alice (the host).
    alice.moderate(json!({"action":"mute_everyone"})).await;
    bob.until("Bob is told Alice muted his microphone", secs(10), |m| {
        m.notices.iter().any(|n| {
            n["notice"] == "muted" && n["group"] == "microphone" && n["by_name"] == "Alice"
        }) && m.held(&m.id).contains(&"microphone".to_owned())
    })
    .await;
    let v = bob.policy["version"].as_u64();
    for m in [&mut alice, &mut carol] {
        let what = format!("{} has the policy after mute everyone", m.name);
        m.until(&what, secs(10), |m| m.policy["version"].as_u64() >= v)
            .await;
        assert!(m.held(&a).is_empty(), "the host is not muted: {}", m.policy);
        assert!(
            !m.held(&c).contains(&"microphone".to_owned()),
            "a moderator is not muted: {}",
            m.policy
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_arrival_waits_in_the_lobby_until_admitted_and_denied_or_banned_people_get_no_seat(
) {
    let server = Server::start();
    let base = server.base();
    let room = create_owned_room(base, "Lobby").await;
    let slug = room.slug();

    // Only the owner may switch the lobby on before the meeting.
    put_settings(base, &slug, None, &json!({ "lobby": true }))
        .await
        .assert_error(403, "forbidden");
    let r = put_settings(
        base,
        &slug,
        Some(&room.owner_key),
        &json!({ "lobby": true }),
    )
    .await;
    assert!(
        (200..300).contains(&r.status),
        "owner's settings: {} {}",
        r.status,
        r.body
    );

    // Bob comes before any moderator: his token puts him in the lobby, and
    // the node says so instead of seating him.
    let bob_join = join(base, &slug, "Bob").await;
    assert_eq!(token_claims(str_field(&bob_join, "token"))["lobby"], true);
    let bob_id = str_field(&bob_join, "participant_id").to_owned();
    let mut bob = Member::connect(base, "Bob", bob_join).await;
    let first = bob
        .next_matching("lobby_waiting or joined", secs(10), |v| {
            v["type"] == "lobby_waiting" || v["type"] == "joined"
        })
        .await;
    assert_eq!(
        first["type"], "lobby_waiting",
        "an early arrival waits: {first}"
    );
    assert_eq!(first["room"]["slug"], slug.as_str());

    // The host arrives, is seated, sees Bob waiting and nobody else in.
    let alice_join = join_as_host(base, &room, "Alice").await;
    // (`lobby` is left out of a token when false.)
    assert_ne!(
        token_claims(str_field(&alice_join, "token"))["lobby"],
        true,
        "the owner never waits in the lobby"
    );
    let mut alice = Member::enter(base, "Alice", alice_join).await;
    assert_eq!(
        alice.people.len(),
        1,
        "a waiter has no seat: {}",
        alice.describe()
    );
    alice
        .until("Alice's lobby lists Bob", secs(10), |m| {
            m.lobby
                .iter()
                .any(|w| w["participant_id"] == bob_id.as_str() && w["display_name"] == "Bob")
        })
        .await;

    // Bob waits, with nothing of the meeting, until admitted.
    let waited_from = bob.sig.seen.len();
    let quiet_until = tokio::time::Instant::now() + Duration::from_millis(500);
    loop {
        let left = quiet_until.saturating_duration_since(tokio::time::Instant::now());
        match bob.sig.recv(left).await {
            Ok(_) => continue,
            Err(WsEnd::Timeout) => break,
            Err(end) => panic!("a waiter's socket stays open: {end:?}"),
        }
    }
    for v in &bob.sig.seen[waited_from..] {
        let ty = v["type"].as_str().unwrap_or_default();
        assert!(
            ![
                "joined",
                "participant_joined",
                "participant_updated",
                "chat",
                "offer",
                "policy"
            ]
            .contains(&ty),
            "a waiter gets nothing of the meeting before admission: {v}"
        );
    }
    alice
        .moderate(json!({"action":"admit","participant_id":bob_id}))
        .await;
    bob.until("Bob is seated on the same socket", secs(10), |m| {
        m.joined.is_some()
    })
    .await;
    assert_eq!(
        bob.id, bob_id,
        "admitted with the participant id of his token"
    );
    alice
        .until("Alice sees Bob joined and the lobby empty", secs(10), |m| {
            m.person("Bob").is_some() && m.lobby.is_empty()
        })
        .await;

    // Carol is denied: a clear refusal, the denied close code, no seat,
    // and her token cannot bring her back.
    let carol_join = join(base, &slug, "Carol").await;
    let carol_id = str_field(&carol_join, "participant_id").to_owned();
    let mut carol = Member::connect(base, "Carol", carol_join.clone()).await;
    carol
        .next_matching("lobby_waiting", secs(10), |v| v["type"] == "lobby_waiting")
        .await;
    alice
        .until("Alice's lobby lists Carol", secs(10), |m| {
            m.lobby
                .iter()
                .any(|w| w["participant_id"] == carol_id.as_str())
        })
        .await;
    alice
        .moderate(json!({"action":"deny","participant_id":carol_id}))
        .await;
    let code = carol.closed(secs(10)).await;
    assert_eq!(
        code, CLOSE_DENIED,
        "a denied waiter is closed with {CLOSE_DENIED}"
    );
    assert!(carol.joined.is_none(), "a denied waiter was never seated");
    let refusal = carol
        .errors
        .iter()
        .find(|e| e["code"] == "forbidden")
        .unwrap_or_else(|| panic!("a denied waiter is told why: {}", carol.last_messages(5)));
    assert!(
        refusal["message"]
            .as_str()
            .unwrap_or_default()
            .contains("did not let you in"),
        "{refusal}"
    );
    rejoin_reply(base, &slug, "Carol", &carol_join)
        .await
        .assert_error(403, "forbidden");
    alice
        .until("Alice's lobby is empty again", secs(10), |m| {
            m.lobby.is_empty()
        })
        .await;
    assert!(
        alice.person("Carol").is_none(),
        "Carol never joined: {}",
        alice.describe()
    );

    // Bob is removed with "don't let him back": told by whom, closed with
    // the removed code, gone for the others, and refused a rejoin.
    let bob_joined_with = bob.join.clone();
    alice
        .moderate(json!({"action":"remove","participant_id":bob_id,"ban":true}))
        .await;
    let code = bob.closed(secs(10)).await;
    assert_eq!(code, CLOSE_REMOVED);
    let notice = bob
        .notices
        .iter()
        .find(|n| n["notice"] == "removed")
        .unwrap_or_else(|| panic!("Bob is told he was removed: {}", bob.last_messages(5)));
    assert_eq!(notice["ban"], true, "{notice}");
    assert_eq!(notice["by_name"], "Alice", "{notice}");
    let left = alice
        .next_matching("Bob leaving", secs(10), |v| {
            v["type"] == "participant_left" && v["participant_id"] == bob_id.as_str()
        })
        .await;
    assert_eq!(left["reason"], "removed", "{left}");
    let msg = rejoin_reply(base, &slug, "Bob", &bob_joined_with)
        .await
        .assert_error(403, "forbidden");
    eprintln!("[test] banned rejoin refused: {msg:?}");
    // His old join token does not seat him either.
    let mut again = Member::connect(base, "Bob again", bob_joined_with).await;
    let code = again.closed(secs(10)).await;
    assert!(
        again.joined.is_none(),
        "a banned participant's token seats nobody (closed {code})"
    );

    // Locked: nobody new gets in, but someone already in may reconnect.
    let alice_join = alice.join.clone();
    alice
        .moderate(json!({"action":"settings","change":{"locked":true}}))
        .await;
    alice
        .until("the meeting is locked", secs(10), |m| {
            m.policy["settings"]["locked"] == true
        })
        .await;
    let msg = http_post_json(
        &format!("{base}/api/rooms/{slug}/join"),
        &json!({ "display_name": "Dave" }),
    )
    .await
    .assert_error(403, "forbidden");
    assert!(
        msg.to_lowercase().contains("locked"),
        "the refusal says why: {msg:?}"
    );
    let r = rejoin_reply(base, &slug, "Alice", &alice_join).await;
    ok_json(&r, "the host's rejoin into her locked meeting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raised_hands_are_in_the_same_order_for_everyone() {
    let server = Server::start();
    let base = server.base();
    let room = create_room(base, "Hands").await;
    let slug = str_field(&room, "slug").to_owned();
    let names = ["Ann", "Bo", "Cy", "Di"];
    let mut people = Vec::new();
    for n in names {
        people.push(enter(base, &slug, n).await);
    }
    for m in people.iter_mut() {
        sees_all(m, &names).await;
    }
    // Hands go up in the order Di, Bo, Cy; each after the previous is seen
    // by everyone.
    for raiser in [3usize, 1, 2] {
        let who = names[raiser];
        people[raiser]
            .sig
            .send(&json!({"type":"hand","raised":true}))
            .await;
        for m in people.iter_mut() {
            let what = format!("{} sees {who}'s hand up", m.name);
            m.until(&what, secs(10), |m| {
                m.person(who)
                    .is_some_and(|p| p["hand_raised_at_ms"].is_u64())
            })
            .await;
        }
    }
    let order = people[0].hands();
    for m in &people {
        assert_eq!(
            m.hands(),
            order,
            "{} lists hands as everyone else does",
            m.name
        );
    }
    // Ties in the node's clock are broken by id; apart from those, the
    // order is the order raised.
    let at = |name: &str| {
        people[0].person(name).unwrap()["hand_raised_at_ms"]
            .as_u64()
            .unwrap()
    };
    assert!(
        at("Di") <= at("Bo") && at("Bo") <= at("Cy"),
        "times follow the raises"
    );
    if at("Di") < at("Bo") && at("Bo") < at("Cy") {
        assert_eq!(order, ["Di", "Bo", "Cy"]);
    }
    // Bo lowers his hand: gone from everyone's list, the rest unchanged.
    people[1]
        .sig
        .send(&json!({"type":"hand","raised":false}))
        .await;
    for m in people.iter_mut() {
        let what = format!("{} sees Bo's hand down", m.name);
        m.until(&what, secs(10), |m| {
            m.person("Bo")
                .is_some_and(|p| p["hand_raised_at_ms"].is_null())
        })
        .await;
    }
    let expected: Vec<String> = order.iter().filter(|n| *n != "Bo").cloned().collect();
    for m in &people {
        assert_eq!(m.hands(), expected, "{}", m.name);
    }
}

/// The lobby's answer to "the last moderator left": with nobody who
/// moderates in the meeting for `media.lobby_unattended_secs`, the waiters'
/// node lets them in (the control plane records the admission, so a
/// reconnect does not put them back in the lobby). While the host is
/// there, nobody is let in by the clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lobby_left_without_a_moderator_lets_its_waiters_in_after_the_configured_time() {
    let server = Server::start_with_config("[media]\nlobby_unattended_secs = 2\n");
    let base = server.base();
    let room = create_owned_room(base, "Unattended").await;
    let slug = room.slug();
    let r = put_settings(
        base,
        &slug,
        Some(&room.owner_key),
        &json!({ "lobby": true }),
    )
    .await;
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.body);

    // The host is in the meeting: Dan waits longer than the timeout and
    // stays in the lobby.
    let mut alice = Member::enter(base, "Alice", join_as_host(base, &room, "Alice").await).await;
    let mut dan = Member::connect(base, "Dan", join(base, &slug, "Dan").await).await;
    dan.next_matching("Dan's lobby_waiting", secs(10), |v| {
        v["type"] == "lobby_waiting"
    })
    .await;
    let waited = tokio::time::Instant::now() + Duration::from_millis(3_500);
    while tokio::time::Instant::now() < waited {
        let _ = dan.sig.send(&json!({"type":"ping","seq":1})).await;
        match dan.sig.recv(Duration::from_millis(500)).await {
            Ok(v) => assert_ne!(
                v["type"], "joined",
                "nobody is let in by the clock while the host is there"
            ),
            Err(WsEnd::Timeout) => {}
            Err(end) => panic!("Dan's socket stays open while he waits: {end:?}"),
        }
    }
    assert!(dan.joined.is_none(), "{}", dan.describe());

    // The host leaves: within the timeout (plus a tick) Dan is seated.
    alice.sig.send(&json!({"type":"leave"})).await;
    let left_at = tokio::time::Instant::now();
    dan.until(
        "Dan is let in after the lobby stayed unattended",
        secs(10),
        |m| m.joined.is_some(),
    )
    .await;
    let after = left_at.elapsed();
    assert!(
        after >= Duration::from_millis(1_500),
        "not before the configured 2 s: let in {after:?} after the host left"
    );
}
