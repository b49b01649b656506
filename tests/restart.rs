//! Rooms, chat history, room owners and guest passes are durable: they
//! survive a SIGTERM and a start on the same data directory.

use crate::common::*;
use serde_json::Value;

/// The messages of a room, oldest first, from the history API.
async fn history(server: &Server, slug: &str) -> Vec<Value> {
    let reply = http_get(&server.url(&format!("/api/rooms/{slug}/messages"))).await;
    assert_eq!(reply.status, 200, "history of {slug}: {}", reply.body);
    reply.json()["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages array in {}", reply.body))
        .clone()
}

fn texts(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["text"].as_str().unwrap_or("<no text>"))
        .collect()
}

/// Posts `texts` as `name` over signalling, waiting for each echo, and
/// closes the socket.
async fn post_chat(server: &Server, slug: &str, name: &str, texts: &[&str]) {
    let join = join(server.base(), slug, name).await;
    let (mut ws, _joined) = Signal::join(server.base(), &join).await;
    for text in texts {
        let echo = ws.chat(text).await;
        assert_eq!(echo["message"]["display_name"], name, "{echo}");
    }
    ws.send(&serde_json::json!({ "type": "leave" })).await;
}

#[tokio::test]
async fn rooms_and_chat_history_survive_a_restart() {
    let mut server = Server::start();
    let room = create_room(server.base(), "Durable").await;
    let slug = str_field(&room, "slug").to_owned();
    post_chat(&server, &slug, "Ada", &["m1", "m2 ✓ юникод", "m3"]).await;
    let before = history(&server, &slug).await;
    assert_eq!(texts(&before), ["m1", "m2 ✓ юникод", "m3"]);

    let status = server.restart();
    eprintln!("the first server exited with {status}");

    let reply = http_get(&server.url(&format!("/api/rooms/{slug}"))).await;
    assert_eq!(reply.status, 200, "room after restart: {}", reply.body);
    let after_room = reply.json();
    assert_eq!(after_room["id"], room["id"]);
    assert_eq!(after_room["name"], "Durable");
    assert_eq!(after_room["created_at_ms"], room["created_at_ms"]);

    let after = history(&server, &slug).await;
    assert_eq!(
        after, before,
        "history changed across the restart (ids, senders, times and text must all survive)"
    );
}

#[tokio::test]
async fn chat_after_a_restart_continues_the_history_in_order() {
    let mut server = Server::start();
    let room = create_room(server.base(), "Continuity").await;
    let slug = str_field(&room, "slug").to_owned();
    post_chat(&server, &slug, "Ada", &["before 1", "before 2"]).await;

    server.restart();
    post_chat(&server, &slug, "Grace", &["after 1"]).await;

    let all = history(&server, &slug).await;
    assert_eq!(texts(&all), ["before 1", "before 2", "after 1"]);
    let ids: Vec<u64> = all
        .iter()
        .map(|m| {
            m["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("message without a numeric id: {m}"))
        })
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "message ids do not increase in commit order: {ids:?}"
    );
    assert_eq!(all[0]["display_name"], "Ada");
    assert_eq!(all[2]["display_name"], "Grace");
}

#[tokio::test]
async fn server_exits_promptly_on_sigterm() {
    let mut server = Server::start();
    create_room(server.base(), "Shutdown").await;
    // stop() panics unless the process exits within SERVER_STOP_TIMEOUT.
    let status = server.stop();
    assert!(
        status.success(),
        "veche should shut down cleanly on SIGTERM, but exited with {status}"
    );
}

#[tokio::test]
async fn room_owners_access_rules_and_guest_passes_survive_a_restart() {
    let mut server = Server::start();
    let created = http_post_json(
        &server.url("/api/rooms"),
        &serde_json::json!({"name": "Guarded", "access": "signed_in_or_pass"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let room = created.json();
    let slug = str_field(&room, "slug").to_owned();
    let key = str_field(&room, "owner_key").to_owned();
    let now = now_ms();
    let made = http_post_json_with_headers(
        &server.url(&format!("/api/rooms/{slug}/passes")),
        &serde_json::json!({"label": "Visitor", "valid_from_ms": now - 60_000,
                            "valid_until_ms": now + 3_600_000}),
        &[(veche_protocol::pass::OWNER_KEY_HEADER, &key)],
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let link = str_field(&made.json(), "link").to_owned();
    let token = link.split_once("?pass=").unwrap().1.to_owned();

    let status = server.restart();
    eprintln!("the first server exited with {status}");

    let passes = http()
        .get(server.url(&format!("/api/rooms/{slug}/passes")))
        .header(veche_protocol::pass::OWNER_KEY_HEADER, &key)
        .send()
        .await
        .unwrap();
    assert_eq!(passes.status(), 200, "the owner key still owns the room");
    let passes: Value = passes.json().await.unwrap();
    assert_eq!(passes["passes"][0]["label"], "Visitor", "{passes}");
    assert_eq!(passes["passes"][0]["status"], "active", "{passes}");
    let join_url = server.url(&format!("/api/rooms/{slug}/join"));
    let refused = http_post_json(&join_url, &serde_json::json!({"display_name": "Eve"})).await;
    refused.assert_error(401, "unauthorized");
    let admitted = http_post_json(
        &join_url,
        &serde_json::json!({"display_name": "Visitor", "pass": token}),
    )
    .await;
    assert_eq!(
        admitted.status, 200,
        "the pass still admits: {}",
        admitted.body
    );
}
