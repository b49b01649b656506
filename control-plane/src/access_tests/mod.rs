//! Who may do what, over real HTTP against a one-node control plane: room
//! creation policy, room owners, access rules, signed-in names, and guest
//! passes (create, list, revoke, join, rejoin). Run with
//! `cargo test -p veche-control-plane --lib access_tests`.

mod covers;
mod e2ee;
mod harness;
mod moderation;
mod recording_files;
mod recordings;
mod turn;

use crate::admission::RoomCreation;
use crate::store::passes::PassCommand;
use crate::store::PassStore;
use harness::{token_of, As, Cp};
use serde_json::json;
use veche_protocol::pass::format_utc;
use veche_protocol::RoomId;

const HOUR: u64 = 3_600_000;

fn slug(room: &serde_json::Value) -> String {
    room["slug"].as_str().unwrap().to_owned()
}

/// The body of a rejoin: the token and secret of the `earlier` join's
/// response, as a client that lost its connection presents them.
fn rejoin_with(earlier: &serde_json::Value) -> serde_json::Value {
    json!({
        "rejoin_token": earlier["token"],
        "rejoin_secret": earlier["rejoin_secret"],
    })
}

#[tokio::test]
async fn an_anonymous_create_is_refused_with_401_where_creation_needs_an_account() {
    let cp = Cp::start(RoomCreation::SignedIn).await;
    let before = cp.applied();
    let reply = cp
        .json(
            "POST",
            "/api/rooms",
            &As::anonymous(),
            json!({"name": "Nope"}),
        )
        .await;
    let msg = reply.error(401, "unauthorized");
    assert!(msg.contains("sign in"), "{msg}");
    assert_eq!(cp.applied(), before, "a refused create writes nothing");

    let (_, ada) = cp.user("ada@example.test", "Ada Lovelace").await;
    let room = cp.room(&ada, "open").await;
    assert_eq!(room["you_own"], true);
    assert_eq!(room["owner_name"], "Ada Lovelace");
    assert!(
        room.get("owner_key").is_none(),
        "a signed-in owner needs no key"
    );
    let seen = cp
        .send(
            "GET",
            &format!("/api/rooms/{}", slug(&room)),
            &As::anonymous(),
            None,
        )
        .await;
    let seen = seen.ok(200);
    assert_eq!(seen["you_own"], false);
    assert_eq!(seen["owner_name"], "Ada Lovelace");
    assert_eq!(seen["access"], "open");
}

#[tokio::test]
async fn an_anonymous_creator_owns_the_room_by_the_key_shown_once() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let room = cp.room(&As::anonymous(), "signed_in_or_pass").await;
    let key = room["owner_key"].as_str().expect("an owner key").to_owned();
    assert_eq!(room["you_own"], true);
    assert_eq!(room["access"], "signed_in_or_pass");
    let path = format!("/api/rooms/{}", slug(&room));
    let again = cp.send("GET", &path, &As::key(&key), None).await;
    assert_eq!(again.ok(200)["you_own"], true);
    assert!(
        again.body.get("owner_key").is_none(),
        "the key is shown once"
    );
    let other = cp.send("GET", &path, &As::key("not-the-key"), None).await;
    assert_eq!(other.ok(200)["you_own"], false);
    // The key holder joins their own room, which admits no anonymous guest.
    let joined = cp.join(&slug(&room), &As::key(&key), json!({})).await;
    let claims = cp.claims(joined.ok(200)["token"].as_str().unwrap()).await;
    assert!(!claims.guest && claims.user.is_none());
}

#[tokio::test]
async fn an_anonymous_join_to_a_members_only_room_is_refused_with_a_clear_message() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (_, ada) = cp.user("ada@example.test", "Ada").await;
    let room = cp.room(&ada, "signed_in").await;
    let msg = cp
        .join(&slug(&room), &As::anonymous(), json!({}))
        .await
        .error(401, "unauthorized");
    assert_eq!(
        msg,
        "This meeting is for signed-in members of the organisation. Sign in to join."
    );
    let (_, bob) = cp.user("bob@example.test", "Bob").await;
    cp.join(&slug(&room), &bob, json!({})).await.ok(200);
}

#[tokio::test]
async fn a_signed_in_joiners_name_comes_from_the_profile_whatever_the_body_says() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (ada_id, ada) = cp.user("ada@example.test", "Ada Lovelace").await;
    let room = cp.room(&ada, "open").await;
    let (bob_id, bob) = cp.user("bob@example.test", "Bob Builder").await;
    let joined = cp
        .join(&slug(&room), &bob, json!({"display_name": "Ada Lovelace"}))
        .await;
    let claims = cp.claims(joined.ok(200)["token"].as_str().unwrap()).await;
    assert_eq!(claims.display_name, "Bob Builder");
    assert_eq!(claims.user, Some(bob_id));
    assert!(!claims.guest, "a member is no guest");
    // An anonymous joiner of the organisation's open room is a guest.
    let joined = cp
        .join(
            &slug(&room),
            &As::anonymous(),
            json!({"display_name": "Cy"}),
        )
        .await;
    let claims = cp.claims(joined.ok(200)["token"].as_str().unwrap()).await;
    assert!(claims.guest && claims.user.is_none());
    assert_eq!(claims.display_name, "Cy");
    assert_ne!(ada_id, bob_id);
}

#[tokio::test]
async fn a_valid_pass_admits_a_guest_and_a_pass_outside_its_window_states_it() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (_, ada) = cp.user("ada@example.test", "Ada").await;
    let room = cp.room(&ada, "signed_in_or_pass").await;
    let s = slug(&room);
    let now = crate::now_ms();
    let nobody = As::anonymous();
    cp.join(&s, &nobody, json!({}))
        .await
        .error(401, "unauthorized");

    let created = cp.pass(&s, &ada, "Visitor", now - HOUR, now + HOUR).await;
    let created = created.ok(201);
    assert_eq!(created["pass"]["status"], "active");
    let link = created["link"].as_str().unwrap();
    assert!(link.contains(&format!("/r/{s}?pass=")), "{link}");
    let joined = cp.join(&s, &nobody, json!({"pass": token_of(link)})).await;
    let claims = cp.claims(joined.ok(200)["token"].as_str().unwrap()).await;
    assert!(claims.guest, "a pass holder is a guest");
    assert_eq!(
        claims.pass.map(|p| p.0),
        created["pass"]["id"].as_u64(),
        "the token names the pass, for rejoins"
    );

    let (from, until) = (now + 2 * HOUR, now + 3 * HOUR);
    let later = cp.pass(&s, &ada, "Tomorrow", from, until).await;
    let later = later.ok(201);
    assert_eq!(later["pass"]["status"], "scheduled");
    let msg = cp
        .join(
            &s,
            &nobody,
            json!({"pass": token_of(later["link"].as_str().unwrap())}),
        )
        .await
        .error(403, "forbidden");
    assert_eq!(
        msg,
        format!(
            "This pass is valid from {} to {}.",
            format_utc(from),
            format_utc(until)
        )
    );

    // An expired pass cannot be created through the API; write one as if
    // it had been created a day ago.
    let token = "an-expired-pass-token-of-some-length-000000";
    let until = now - HOUR;
    cp.cp
        .replicated()
        .pass_command(PassCommand::Create {
            room_id: RoomId(room["id"].as_u64().unwrap()),
            label: "Yesterday".into(),
            valid_from_ms: now - 24 * HOUR,
            valid_until_ms: until,
            token_hash: crate::api::auth::token_hash(token.as_bytes()),
            created_at_ms: now - 24 * HOUR,
            created_by: None,
        })
        .await
        .unwrap();
    let msg = cp
        .join(&s, &nobody, json!({"pass": token}))
        .await
        .error(403, "forbidden");
    assert_eq!(msg, format!("This pass expired on {}.", format_utc(until)));
    // The room page learns it before anyone tries to join.
    let looked_up = cp
        .send(
            "GET",
            &format!("/api/rooms/{s}?pass={token}"),
            &nobody,
            None,
        )
        .await;
    assert_eq!(looked_up.ok(200)["pass_refusal"], msg.as_str());
    let fine = cp
        .send(
            "GET",
            &format!("/api/rooms/{s}?pass={}", token_of(link)),
            &nobody,
            None,
        )
        .await;
    assert!(fine.ok(200).get("pass_refusal").is_none(), "{fine:?}");
    let msg = cp
        .join(&s, &nobody, json!({"pass": "no-such-pass"}))
        .await
        .error(403, "forbidden");
    assert!(msg.contains("not valid"), "{msg}");

    let list = cp
        .send("GET", &format!("/api/rooms/{s}/passes"), &ada, None)
        .await;
    let statuses: Vec<_> = list.ok(200)["passes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["label"].clone(), p["status"].clone()))
        .collect();
    assert_eq!(
        statuses,
        [
            (json!("Visitor"), json!("active")),
            (json!("Tomorrow"), json!("scheduled")),
            (json!("Yesterday"), json!("expired")),
        ]
    );
}

#[tokio::test]
async fn a_revoked_pass_stops_a_rejoin_and_any_later_join() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let room = cp.room(&As::anonymous(), "signed_in_or_pass").await;
    let owner = As::key(room["owner_key"].as_str().unwrap());
    let s = slug(&room);
    let now = crate::now_ms();
    let created = cp.pass(&s, &owner, "Visitor", now - HOUR, now + HOUR).await;
    let created = created.ok(201).clone();
    let token = token_of(created["link"].as_str().unwrap());
    let guest = As::anonymous();
    let first = cp.join(&s, &guest, json!({"pass": token})).await;
    let first = first.ok(200).clone();
    let rejoin = rejoin_with(&first);
    let back = cp.join(&s, &guest, rejoin.clone()).await;
    assert_eq!(
        back.ok(200)["participant_id"],
        first["participant_id"],
        "before the revocation the rejoin keeps the seat, without the link"
    );

    let id = created["pass"]["id"].as_u64().unwrap();
    let revoked = cp
        .send(
            "DELETE",
            &format!("/api/rooms/{s}/passes/{id}"),
            &owner,
            None,
        )
        .await;
    assert_eq!(revoked.ok(200)["status"], "revoked");
    let msg = cp.join(&s, &guest, rejoin).await.error(403, "forbidden");
    assert!(msg.contains("revoked"), "{msg}");
    let msg = cp
        .join(&s, &guest, json!({"pass": token}))
        .await
        .error(403, "forbidden");
    assert!(msg.contains("revoked"), "{msg}");
}

#[tokio::test]
async fn only_the_owner_may_create_list_or_revoke_passes() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (_, ada) = cp.user("ada@example.test", "Ada").await;
    let (_, bob) = cp.user("bob@example.test", "Bob").await;
    let room = cp.room(&ada, "signed_in_or_pass").await;
    let s = slug(&room);
    let now = crate::now_ms();
    let made = cp.pass(&s, &ada, "Visitor", now, now + HOUR).await;
    let id = made.ok(201)["pass"]["id"].as_u64().unwrap();
    let keyed = cp.room(&As::anonymous(), "signed_in_or_pass").await;
    let list = |who: As, s: String| {
        let cp = &cp;
        async move {
            cp.send("GET", &format!("/api/rooms/{s}/passes"), &who, None)
                .await
        }
    };
    let before = list(ada.clone(), s.clone()).await.body;
    for (what, who) in [
        ("another user", bob.clone()),
        ("an anonymous visitor", As::anonymous()),
        ("a wrong owner key", As::key("wrong-key")),
        (
            "another room's owner key",
            As::key(keyed["owner_key"].as_str().unwrap()),
        ),
    ] {
        let msg = cp
            .pass(&s, &who, "Mine", now, now + HOUR)
            .await
            .error(403, "forbidden");
        assert!(msg.contains("owner"), "{what}: {msg}");
        list(who.clone(), s.clone()).await.error(403, "forbidden");
        cp.send("DELETE", &format!("/api/rooms/{s}/passes/{id}"), &who, None)
            .await
            .error(403, "forbidden");
    }
    assert_eq!(
        list(ada.clone(), s.clone()).await.body,
        before,
        "nothing changed"
    );
    // The anonymous creator manages their room's passes with the key.
    let owner = As::key(keyed["owner_key"].as_str().unwrap());
    cp.pass(&slug(&keyed), &owner, "Guest", now, now + HOUR)
        .await
        .ok(201);
    assert_eq!(
        list(owner, slug(&keyed)).await.ok(200)["passes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn malformed_pass_requests_are_refused_with_400_and_a_clear_message() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (_, ada) = cp.user("ada@example.test", "Ada").await;
    let room = cp.room(&ada, "signed_in_or_pass").await;
    let s = slug(&room);
    let path = format!("/api/rooms/{s}/passes");
    let now = crate::now_ms();
    let before = cp.applied();
    for (what, body, words) in [
        ("not JSON", "{nope".to_owned(), "invalid request body"),
        (
            "a date as text",
            json!({"label": "x", "valid_from_ms": "tomorrow", "valid_until_ms": 1}).to_string(),
            "invalid request body",
        ),
        (
            "a negative date",
            json!({"label": "x", "valid_from_ms": -1, "valid_until_ms": 1}).to_string(),
            "invalid request body",
        ),
        (
            "from after until",
            json!({"label": "x", "valid_from_ms": now + 2 * HOUR, "valid_until_ms": now + HOUR})
                .to_string(),
            "end after it starts",
        ),
        (
            "a huge label",
            json!({"label": "x".repeat(101), "valid_from_ms": now, "valid_until_ms": now + HOUR})
                .to_string(),
            "longer than 100",
        ),
        (
            "an empty label",
            json!({"label": "  ", "valid_from_ms": now, "valid_until_ms": now + HOUR}).to_string(),
            "must not be empty",
        ),
        (
            "a window of two years",
            json!({"label": "x", "valid_from_ms": now, "valid_until_ms": now + 730 * 24 * HOUR})
                .to_string(),
            "at most 366 days",
        ),
    ] {
        let msg = cp
            .send("POST", &path, &ada, Some(body))
            .await
            .error(400, "bad_request");
        assert!(msg.contains(words), "{what}: {msg}");
    }
    let msg = cp
        .send("DELETE", &format!("{path}/seven"), &ada, None)
        .await
        .error(400, "bad_request");
    assert!(msg.contains("not a pass id"), "{msg}");
    let msg = cp
        .send("DELETE", &format!("{path}/999"), &ada, None)
        .await
        .error(400, "bad_request");
    assert!(msg.contains("no guest pass 999"), "{msg}");
    assert_eq!(cp.applied(), before, "nothing was written");
    let members_only = cp.room(&ada, "signed_in").await;
    let msg = cp
        .pass(&slug(&members_only), &ada, "x", now, now + HOUR)
        .await
        .error(400, "bad_request");
    assert!(msg.contains("signed-in members only"), "{msg}");
}

#[tokio::test]
async fn the_pass_routes_have_a_rate_limit_and_a_body_limit() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (_, ada) = cp.user("ada@example.test", "Ada").await;
    let room = cp.room(&ada, "signed_in_or_pass").await;
    let path = format!("/api/rooms/{}/passes", slug(&room));
    let big = format!(
        "{{\"label\":\"{}\",\"valid_from_ms\":1,\"valid_until_ms\":2}}",
        "x".repeat(20_000)
    );
    cp.send("POST", &path, &ada, Some(big))
        .await
        .error(413, "too_large");
    let burst = veche_protocol::limits::http::PASSES.burst;
    let mut limited = None;
    for n in 0..=burst + 1 {
        let r = cp.send("GET", &path, &ada, None).await;
        if r.status == 429 {
            limited = Some(n);
            break;
        }
        r.ok(200);
    }
    let n = limited.expect("the pass routes are rate limited");
    assert!(n <= burst, "limited after {n} requests, burst {burst}");
    assert!(cp.room_exists(&slug(&room)).await);
}
