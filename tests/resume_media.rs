//! A resume that keeps the seat's peer connection (`resume.keep_media`,
//! answered by `joined.media_kept`): who may ask for it, what a malformed
//! request gets, and what the others see. The media side (the same
//! connection carrying video again after an ICE restart) is in
//! `browser_strict_networks.rs`'s network-change test.

use crate::common::*;
use serde_json::{json, Value};

/// Alice and Bob in a room; Bob's socket then breaks. Returns the server,
/// the room's slug, Alice's socket, and Bob's id and resume token.
async fn bob_drops_out() -> (Server, String, Signal, String, String) {
    let server = Server::start();
    let room = create_room(server.base(), "Kept media").await;
    let slug = str_field(&room, "slug").to_owned();
    let (mut alice, _) =
        Signal::join(server.base(), &join(server.base(), &slug, "Alice").await).await;
    let (bob, joined) = Signal::join(server.base(), &join(server.base(), &slug, "Bob").await).await;
    let bob_id = str_field(&joined, "participant_id").to_owned();
    let token = str_field(&joined, "resume_token").to_owned();
    drop(bob);
    alice
        .recv_matching("Bob shown as reconnecting", secs(6), |v| {
            status_of(v, &bob_id, "reconnecting")
        })
        .await;
    (server, slug, alice, bob_id, token)
}

/// Whether `v` shows participant `id` with `status`.
fn status_of(v: &Value, id: &str, status: &str) -> bool {
    v["type"] == "participant_updated"
        && v["participant"]["id"] == id
        && v["participant"]["status"] == status
}

/// A new socket for `name` presenting `resume` in its `join`.
async fn resume_as(server: &Server, slug: &str, name: &str, resume: Value) -> Signal {
    let fresh = join(server.base(), slug, name).await;
    let mut ws = Signal::connect(server.base(), &fresh).await;
    ws.send(&json!({ "type": "join", "token": str_field(&fresh, "token"), "resume": resume }))
        .await;
    ws
}

#[tokio::test]
async fn a_resume_that_keeps_its_media_is_told_so_and_others_see_only_reconnecting() {
    let (server, slug, mut alice, bob_id, token) = bob_drops_out().await;
    let resume = json!({ "participant_id": bob_id, "resume_token": token, "keep_media": true });
    let mut bob = resume_as(&server, &slug, "Bob", resume).await;
    let joined = bob.recv_type("joined", secs(5)).await;
    assert_eq!(joined["resumed"], true, "{joined}");
    assert_eq!(joined["media_kept"], true, "{joined}");
    alice
        .recv_matching("Bob connected again", secs(5), |v| {
            status_of(v, &bob_id, "connected")
        })
        .await;
    assert!(
        !alice.seen.iter().any(|v| v["type"] == "participant_left"),
        "Alice saw someone leave: {:?}",
        alice.seen
    );
}

#[tokio::test]
async fn a_plain_resume_is_not_told_media_kept() {
    let (server, slug, _alice, bob_id, token) = bob_drops_out().await;
    let resume = json!({ "participant_id": bob_id, "resume_token": token });
    let mut bob = resume_as(&server, &slug, "Bob", resume).await;
    let joined = bob.recv_type("joined", secs(5)).await;
    assert_eq!(joined["resumed"], true, "{joined}");
    assert!(joined.get("media_kept").is_none(), "{joined}");
}

#[tokio::test]
async fn a_wrong_token_asking_to_keep_media_is_refused_and_the_owner_still_gets_the_connection_back(
) {
    let (server, slug, mut alice, bob_id, token) = bob_drops_out().await;
    let before = alice.seen.len();
    let stolen =
        json!({ "participant_id": bob_id, "resume_token": "0".repeat(32), "keep_media": true });
    let mut mallory = resume_as(&server, &slug, "Mallory", stolen).await;
    let (code, reason) = mallory.expect_close(secs(5)).await;
    assert_eq!(code, 4009, "closed with {code} {reason:?}");
    assert!(
        !mallory.seen.iter().any(|m| m["type"] == "joined"),
        "{:?}",
        mallory.seen
    );
    alice.ping(3).await;
    let since = &alice.seen[before..];
    assert!(
        !since
            .iter()
            .any(|v| v["participant"]["id"] == bob_id.as_str()),
        "Bob's seat changed: {since:?}"
    );
    // The refusal neither handed over nor closed Bob's connection.
    let resume = json!({ "participant_id": bob_id, "resume_token": token, "keep_media": true });
    let mut bob = resume_as(&server, &slug, "Bob", resume).await;
    let joined = bob.recv_type("joined", secs(5)).await;
    assert_eq!(joined["media_kept"], true, "{joined}");
}

#[tokio::test]
async fn keep_media_that_is_not_a_boolean_is_refused_as_bad_request() {
    let (server, slug, _alice, bob_id, token) = bob_drops_out().await;
    let resume = json!({ "participant_id": bob_id, "resume_token": token, "keep_media": "yes" });
    let mut bob = resume_as(&server, &slug, "Bob", resume).await;
    let (code, reason) = bob.expect_close(secs(5)).await;
    assert_eq!(code, 4000, "closed with {code} {reason:?}");
    assert!(
        reason.contains("expected a boolean"),
        "the reason says what is wrong: {reason:?}"
    );
}
