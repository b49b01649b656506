//! Presence over broken connections: a participant whose connection drops
//! is shown as reconnecting to everyone within 5 s, can take their seat
//! back with the resume token, and is removed if they do not return within
//! the grace period.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Instant;

/// The participant entry for `id` in a participant_* message.
fn is_update_for(v: &Value, id: &str, status: &str) -> bool {
    v["type"] == "participant_updated"
        && v["participant"]["id"] == id
        && v["participant"]["status"] == status
}

async fn two_in_a_room(server: &Server) -> (String, Signal, Signal, Value, Value) {
    let room = create_room(server.base(), "Presence").await;
    let slug = str_field(&room, "slug").to_owned();
    let ja = join(server.base(), &slug, "Alice").await;
    let (mut alice, _) = Signal::join(server.base(), &ja).await;
    let jb = join(server.base(), &slug, "Bob").await;
    let (bob, bob_joined) = Signal::join(server.base(), &jb).await;
    alice
        .recv_matching("Bob's arrival", secs(5), |v| {
            v["type"] == "participant_joined" && v["participant"]["display_name"] == "Bob"
        })
        .await;
    (slug, alice, bob, bob_joined, jb)
}

#[tokio::test]
async fn a_dropped_connection_shows_as_reconnecting_to_others_within_5_s() {
    let server = Server::start();
    let (_slug, mut alice, bob, bob_joined, _) = two_in_a_room(&server).await;
    let bob_id = str_field(&bob_joined, "participant_id").to_owned();
    let dropped_at = Instant::now();
    drop(bob); // TCP closed without a WebSocket close frame
    alice
        .recv_matching("Bob shown as reconnecting", secs(5), |v| {
            is_update_for(v, &bob_id, "reconnecting")
        })
        .await;
    eprintln!("drop seen as reconnecting after {:?}", dropped_at.elapsed());
}

#[tokio::test]
async fn a_silent_connection_is_shown_as_reconnecting_within_5_s() {
    let server = Server::start();
    let (_slug, mut alice, mut bob, bob_joined, _) = two_in_a_room(&server).await;
    let bob_id = str_field(&bob_joined, "participant_id").to_owned();
    // Bob's socket stays open but he stops answering anything, as when a
    // laptop lid closes or Wi-Fi dies: the node's pings go unanswered.
    bob.ping(1).await;
    let silent_since = Instant::now();
    alice
        .recv_matching("Bob shown as reconnecting", secs(8), |v| {
            is_update_for(v, &bob_id, "reconnecting")
        })
        .await;
    let took = silent_since.elapsed();
    eprintln!("silence seen as reconnecting after {took:?}");
    assert!(
        took <= secs(5) + std::time::Duration::from_millis(500),
        "others learnt of the silent connection only after {took:?}"
    );
    drop(bob);
}

#[tokio::test]
async fn resuming_within_the_grace_period_keeps_the_same_participant() {
    let server = Server::start();
    let (slug, mut alice, bob, bob_joined, _) = two_in_a_room(&server).await;
    let bob_id = str_field(&bob_joined, "participant_id").to_owned();
    let resume_token = str_field(&bob_joined, "resume_token").to_owned();
    drop(bob);
    alice
        .recv_matching("Bob shown as reconnecting", secs(5), |v| {
            is_update_for(v, &bob_id, "reconnecting")
        })
        .await;

    // Bob's page gets a fresh token and presents the resume credentials.
    let fresh = join(server.base(), &slug, "Bob").await;
    let mut bob2 = Signal::connect(server.base(), &fresh).await;
    bob2.send(&json!({
        "type": "join",
        "token": str_field(&fresh, "token"),
        "resume": { "participant_id": bob_id, "resume_token": resume_token },
    }))
    .await;
    let joined = bob2.recv_type("joined", secs(5)).await;
    assert_eq!(joined["participant_id"], bob_id.as_str(), "{joined}");
    assert_eq!(joined["resumed"], true, "{joined}");
    let me = joined["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == bob_id.as_str())
        .cloned()
        .expect("Bob is in his own snapshot");
    assert_eq!(me["status"], "connected");

    alice
        .recv_matching("Bob connected again", secs(5), |v| {
            is_update_for(v, &bob_id, "connected")
        })
        .await;
    assert!(
        !alice.seen.iter().any(|v| v["type"] == "participant_left"
            || (v["type"] == "participant_joined"
                && v["participant"]["display_name"] == "Bob"
                && v["participant"]["id"] != bob_id.as_str())),
        "Alice saw Bob leave or a second Bob join: {:?}",
        alice.seen
    );
    // Chat from the resumed session carries the same identity.
    let echo = bob2.chat("back again").await;
    assert_eq!(echo["message"]["participant_id"], bob_id.as_str());
}

#[tokio::test]
async fn a_wrong_resume_token_is_refused_and_the_seat_is_untouched() {
    let server = Server::start();
    let (slug, mut alice, bob, bob_joined, _) = two_in_a_room(&server).await;
    let bob_id = str_field(&bob_joined, "participant_id").to_owned();
    let fresh = join(server.base(), &slug, "Mallory").await;
    let mut mallory = Signal::connect(server.base(), &fresh).await;
    mallory
        .send(&json!({
            "type": "join",
            "token": str_field(&fresh, "token"),
            "resume": { "participant_id": bob_id, "resume_token": "0".repeat(32) },
        }))
        .await;
    let (code, reason) = mallory.expect_close(secs(5)).await;
    assert_eq!(code, 4009, "closed with {code} {reason:?}");
    // Bob is still there and connected: Alice can still ping, and saw no
    // change to Bob.
    alice.ping(7).await;
    assert!(
        !alice.seen.iter().any(|v| v["participant"]["id"] == bob_id.as_str()
            && v["type"] != "participant_joined"),
        "Bob's seat changed: {:?}",
        alice.seen
    );
    drop(bob);
}

#[tokio::test]
async fn a_participant_who_does_not_return_is_removed_after_the_grace_period() {
    let server = Server::start_with_config("[media]\nreconnect_grace_secs = 1\n");
    let (_slug, mut alice, bob, bob_joined, _) = two_in_a_room(&server).await;
    let bob_id = str_field(&bob_joined, "participant_id").to_owned();
    drop(bob);
    let left = alice
        .recv_matching("Bob removed", secs(5), |v| {
            v["type"] == "participant_left" && v["participant_id"] == bob_id.as_str()
        })
        .await;
    assert_eq!(left["reason"], "disconnected", "{left}");
}
