//! Hostile or broken input on the signalling WebSocket: bad tokens end the
//! session with close code 4001 and a reason; bad messages after a good
//! join get an `error` reply and the session carries on.

use crate::common::*;
use serde_json::{json, Value};

/// Close code for `token_invalid` (docs/protocol.md, `ErrorCode::ws_close_code`).
const CLOSE_TOKEN_INVALID: u16 = 4001;

/// A server, a room, and a join response for "Mallory" in it.
async fn room_with_a_join() -> (Server, Value, Value) {
    let server = Server::start();
    let room = create_room(server.base(), "Bad input").await;
    let join = join(server.base(), str_field(&room, "slug"), "Mallory").await;
    (server, room, join)
}

/// Presents `token` in a `join` and asserts that the server closes the
/// socket with 4001 and a reason.
async fn assert_token_refused(server: &Server, join_response: &Value, token: &str, what: &str) {
    let mut ws = Signal::connect(server.base(), join_response).await;
    ws.send(&json!({ "type": "join", "token": token })).await;
    let (code, reason) = ws.expect_close(secs(10)).await;
    assert_eq!(
        code, CLOSE_TOKEN_INVALID,
        "{what}: closed with {code} {reason:?}, expected {CLOSE_TOKEN_INVALID}"
    );
    assert!(
        !reason.trim().is_empty(),
        "{what}: close frame without a reason"
    );
    assert!(
        !ws.seen.iter().any(|m| m["type"] == "joined"),
        "{what}: the server said joined: {:?}",
        ws.seen
    );
}

#[tokio::test]
async fn token_with_claims_from_another_join_is_refused_with_4001() {
    let (server, room, join_a) = room_with_a_join().await;
    let join_b = join(server.base(), str_field(&room, "slug"), "Bob").await;
    // Mallory's claims under Bob's signature: every part is well-formed and
    // came from the server, but they were never signed together.
    let (claims_a, _) = str_field(&join_a, "token")
        .rsplit_once('.')
        .expect("token has a signature");
    let (_, sig_b) = str_field(&join_b, "token")
        .rsplit_once('.')
        .expect("token has a signature");
    let forged = format!("{claims_a}.{sig_b}");
    assert_token_refused(&server, &join_a, &forged, "forged token").await;
}

#[tokio::test]
async fn token_with_one_character_changed_is_refused_with_4001() {
    let (server, _room, join) = room_with_a_join().await;
    let token = str_field(&join, "token");
    let sig_start = token.rfind('.').expect("token has a signature") + 1;
    // Change a character well inside the signature (the last one may only
    // carry padding bits).
    let at = sig_start + 10;
    let mut bytes = token.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).expect("ascii");
    assert_token_refused(&server, &join, &flipped, "token with a flipped character").await;

    // The claims part too.
    let mut bytes = token.as_bytes().to_vec();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).expect("ascii");
    assert_token_refused(&server, &join, &flipped, "token with changed claims").await;
}

#[tokio::test]
async fn garbage_token_is_refused_with_4001() {
    let (server, _room, join) = room_with_a_join().await;
    for garbage in ["", "hello", "v1.", "v1.!!!.???", &"x".repeat(5000)] {
        let what = format!("token {:?}", garbage.chars().take(20).collect::<String>());
        assert_token_refused(&server, &join, garbage, &what).await;
    }
}

#[tokio::test]
async fn malformed_frame_after_join_gets_bad_request_and_the_session_stays_up() {
    let (server, _room, join) = room_with_a_join().await;
    let (mut ws, _joined) = Signal::join(server.base(), &join).await;

    ws.send_text("{not json").await;
    let err = ws.recv_type("error", secs(10)).await;
    assert_eq!(err["code"], "bad_request", "{err}");
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{err}"
    );

    ws.send_text(r#"{"type":"warp","speed":9}"#).await;
    let err = ws.recv_type("error", secs(10)).await;
    assert_eq!(err["code"], "bad_request", "{err}");

    ws.ping(1).await;
    // Still a full participant: chat works.
    ws.chat("still here").await;
}

#[tokio::test]
async fn chat_longer_than_4000_characters_is_refused_as_too_long() {
    let (server, _room, join) = room_with_a_join().await;
    let (mut ws, _joined) = Signal::join(server.base(), &join).await;

    ws.send(&json!({ "type": "chat", "text": "a".repeat(4001), "client_msg_id": "long-1" }))
        .await;
    let err = ws.recv_type("error", secs(10)).await;
    assert_eq!(err["code"], "chat_too_long", "{err}");
    assert_eq!(err["client_msg_id"], "long-1", "{err}");

    // Exactly 4000 is fine, and the session carries on after the refusal.
    let max = "b".repeat(4000);
    ws.chat(&max).await;
    ws.ping(2).await;
}

#[tokio::test]
async fn empty_chat_is_refused_as_empty() {
    let (server, _room, join) = room_with_a_join().await;
    let (mut ws, _joined) = Signal::join(server.base(), &join).await;

    for text in ["", "   \n\t ", "\u{0007}\u{0000}"] {
        ws.send(&json!({ "type": "chat", "text": text })).await;
        let err = ws.recv_type("error", secs(10)).await;
        assert_eq!(err["code"], "chat_empty", "text {text:?}: {err}");
    }
    ws.ping(3).await;
}

#[tokio::test]
async fn refused_chat_is_not_stored() {
    let (server, room, join) = room_with_a_join().await;
    let (mut ws, _joined) = Signal::join(server.base(), &join).await;
    ws.send(&json!({ "type": "chat", "text": "c".repeat(4001) }))
        .await;
    ws.recv_type("error", secs(10)).await;
    ws.chat("the only message").await;

    let slug = str_field(&room, "slug");
    let page = http_get(&server.url(&format!("/api/rooms/{slug}/messages"))).await;
    assert_eq!(page.status, 200, "body: {}", page.body);
    let texts: Vec<Value> = page.json()["messages"]
        .as_array()
        .expect("messages array")
        .iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(texts, vec![json!("the only message")]);
}

#[tokio::test]
async fn expired_token_is_refused_with_4002_and_says_so() {
    // A zero lifetime makes every token expire the moment it is issued:
    // the only way to get a genuinely signed, genuinely expired token
    // without waiting out the default 60 s.
    let server = Server::start_with_config("[control_plane]\ntoken_ttl_secs = 0\n");
    let room = create_room(server.base(), "Expiry").await;
    let join_response = join(server.base(), str_field(&room, "slug"), "Late").await;
    let mut ws = Signal::connect(server.base(), &join_response).await;
    ws.send(&json!({ "type": "join", "token": str_field(&join_response, "token") }))
        .await;
    let (code, reason) = ws.expect_close(secs(10)).await;
    assert_eq!(code, 4002, "closed with {code} {reason:?}, expected 4002");
    assert!(
        reason.contains("expired"),
        "reason {reason:?} does not say expired"
    );
}

#[tokio::test]
async fn chat_flood_is_refused_as_rate_limited_and_the_session_stays_up() {
    let (server, _room, join_response) = room_with_a_join().await;
    let (mut ws, _) = Signal::join(server.base(), &join_response).await;
    // Thirty messages back to back: far past the burst of 10 at 2/s.
    for i in 0..30 {
        ws.send(&json!({ "type": "chat", "text": format!("flood {i}"), "client_msg_id": format!("f{i}") }))
            .await;
    }
    let refused = ws
        .recv_matching("a rate_limited error", secs(10), |v| {
            v["type"] == "error" && v["code"] == "rate_limited"
        })
        .await;
    assert_eq!(refused["request"], "chat", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("try again")),
        "{refused}"
    );
    ws.ping(99).await;
}
