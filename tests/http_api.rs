//! The room REST API as a client sees it: status codes, and one JSON error
//! shape (`{"code", "message"}`) for every failure.

use crate::common::cluster::token_claims;
use crate::common::*;
use serde_json::{json, Value};

/// A slug of the right shape that no room has.
const UNKNOWN_SLUG: &str = "AAAAAAAAAAAAAAAAAAAAAA";
/// A cluster secret long enough to be accepted (32 bytes or more).
const ADMIN_SECRET: &str = "admin-secret-0123456789abcdef0123456789";

#[tokio::test]
async fn created_room_has_an_unguessable_slug_and_a_shareable_link() {
    let server = Server::start();
    let room = create_room(server.base(), "Weekly sync").await;

    let slug = str_field(&room, "slug");
    assert_eq!(slug.len(), 22, "slug {slug:?} is not 22 characters");
    assert!(
        slug.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "slug {slug:?} is not base64url"
    );
    assert_eq!(room["name"], "Weekly sync");
    let link = str_field(&room, "link");
    assert!(
        link.ends_with(&format!("/r/{slug}")),
        "link {link:?} does not end with /r/{slug}"
    );
    assert!(
        link.starts_with("http://") || link.starts_with("https://"),
        "link {link:?} is not absolute"
    );

    let other = create_room(server.base(), "Weekly sync").await;
    assert_ne!(other["slug"], room["slug"], "two rooms got the same slug");
}

#[tokio::test]
async fn created_room_can_be_fetched_by_its_slug() {
    let server = Server::start();
    let room = create_room(server.base(), "Design review").await;
    let slug = str_field(&room, "slug");

    let reply = http_get(&server.url(&format!("/api/rooms/{slug}"))).await;
    assert_eq!(reply.status, 200, "body: {}", reply.body);
    let fetched = reply.json();
    assert_eq!(fetched["slug"], room["slug"]);
    assert_eq!(fetched["name"], "Design review");
    assert_eq!(fetched["id"], room["id"]);
    assert_eq!(fetched["link"], room["link"]);
}

#[tokio::test]
async fn unknown_room_is_404_room_not_found() {
    let server = Server::start();
    let reply = http_get(&server.url(&format!("/api/rooms/{UNKNOWN_SLUG}"))).await;
    reply.assert_error(404, "room_not_found");
}

#[tokio::test]
async fn malformed_slug_is_refused_with_a_json_error() {
    let server = Server::start();
    for bad in [
        "short",
        "AAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAA%21%21",
    ] {
        let reply = http_get(&server.url(&format!("/api/rooms/{bad}"))).await;
        assert!(
            reply.status == 400 || reply.status == 404,
            "GET /api/rooms/{bad} gave {}: {}",
            reply.status,
            reply.body
        );
        let v = reply.json();
        assert!(v["code"].is_string(), "no error code for {bad}: {v}");
        assert!(v["message"].is_string(), "no error message for {bad}: {v}");
    }
}

#[tokio::test]
async fn invalid_json_body_is_400_with_a_message() {
    let server = Server::start();
    let url = server.url("/api/rooms");
    for body in [r#"{"name":"#, "not json at all", r#"{"title":"x"}"#, "[]"] {
        let reply = http_post_raw(&url, "application/json", body).await;
        let message = reply.assert_error(400, "bad_request");
        eprintln!("POST /api/rooms {body:?} -> 400 {message:?}");
    }
}

#[tokio::test]
async fn room_name_must_not_be_empty_or_longer_than_100_chars() {
    let server = Server::start();
    let url = server.url("/api/rooms");
    for name in [String::new(), "я".repeat(101)] {
        let reply = http_post_json(&url, &json!({ "name": name })).await;
        reply.assert_error(400, "bad_request");
    }
    // The limit counts characters, not bytes: 100 Cyrillic letters fit.
    let ok = http_post_json(&url, &json!({ "name": "я".repeat(100) })).await;
    assert!(
        (200..300).contains(&ok.status),
        "a 100-character name was refused: {} {}",
        ok.status,
        ok.body
    );
}

#[tokio::test]
async fn joining_an_unknown_room_is_404() {
    let server = Server::start();
    let reply = http_post_json(
        &server.url(&format!("/api/rooms/{UNKNOWN_SLUG}/join")),
        &json!({ "display_name": "Eve" }),
    )
    .await;
    reply.assert_error(404, "room_not_found");
}

#[tokio::test]
async fn joining_needs_a_display_name() {
    let server = Server::start();
    let room = create_room(server.base(), "Names").await;
    let url = server.url(&format!("/api/rooms/{}/join", str_field(&room, "slug")));
    let reply = http_post_json(&url, &json!({ "display_name": "" })).await;
    reply.assert_error(400, "bad_request");

    let ok = join(server.base(), str_field(&room, "slug"), "Ada").await;
    assert!(str_field(&ok, "token").starts_with("v1."), "token: {ok}");
    assert!(!str_field(&ok, "ws_url").is_empty());
    assert_eq!(ok["room"]["slug"], room["slug"]);
}

#[tokio::test]
async fn metrics_endpoint_serves_control_plane_and_media_node_metrics() {
    let server = Server::start();
    create_room(server.base(), "Metrics").await;
    let text = reqwest::get(server.url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    for name in [
        "veche_cp_rooms_created_total 1",
        "veche_node_rtp_packets_out_total",
        "veche_node_participants",
        "veche_node_subscriptions",
    ] {
        assert!(text.contains(name), "/metrics lacks {name:?}:\n{text}");
    }
}

/// The cluster admin API on `veche serve` (a cluster of one): its status,
/// and a clear `{code, message}` refusal for every malformed request.
#[tokio::test]
async fn the_admin_api_shows_the_one_node_cluster_and_refuses_malformed_requests_clearly() {
    let server = Server::start_with_config(&format!(
        "[control_plane]\ncluster_secret = \"{ADMIN_SECRET}\"\n"
    ));
    let client = http();
    let url = server.url("/api/admin/cluster");
    let status: serde_json::Value = wait_for(
        "the admin status shows this node as leader and the media node alive",
        secs(10),
        async || {
            let resp = client
                .get(&url)
                .bearer_auth(ADMIN_SECRET)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
            let alive = v["media_nodes"][0]["alive"] == true;
            if v["state"] == "Leader" && v["leader"]["id"] == 1 && alive {
                Ok(v)
            } else {
                Err(format!("status = {v}"))
            }
        },
    )
    .await;
    assert_eq!(
        status["members"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );

    let members = server.url("/api/admin/cluster/members");
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req.bearer_auth(ADMIN_SECRET).send().await.unwrap();
        let code = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        (code, body)
    };
    for (what, req) in [
        (
            "a body that is not JSON",
            client.post(&members).body("{oops"),
        ),
        (
            "an address without a scheme",
            client
                .post(&members)
                .json(&json!({"id": 2, "addr": "10.0.0.2:8080"})),
        ),
        (
            "an unknown field",
            client
                .post(&members)
                .json(&json!({"id": 2, "addr": "http://x", "voter": true})),
        ),
        (
            "a member id that is not a number",
            client.delete(format!("{members}/two")),
        ),
        (
            "a member that does not exist",
            client.delete(format!("{members}/7")),
        ),
    ] {
        let (code, body) = send(req).await;
        assert_eq!(code, 400, "{what}: {body}");
        assert_eq!(body["code"], "bad_request", "{what}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }

    // The internal leader RPC refuses an undecodable body with a reason.
    let resp = client
        .post(server.url("/internal/v1/leader"))
        .bearer_auth(ADMIN_SECRET)
        .header("content-type", "application/msgpack")
        .body(vec![0xc1, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

/// `POST /api/rooms/{slug}/join` with `body`, plus headers.
async fn join_raw(server: &Server, slug: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
    http_post_json_with_headers(
        &server.url(&format!("/api/rooms/{slug}/join")),
        body,
        headers,
    )
    .await
}

#[tokio::test]
async fn a_rejoin_token_with_its_secret_brings_the_participant_back_with_the_same_id() {
    let server = Server::start();
    let room = create_room(server.base(), "Comeback").await;
    let slug = str_field(&room, "slug");
    let first = join(server.base(), slug, "Ann").await;
    let claims = token_claims(str_field(&first, "token"));
    assert_eq!(claims["participant_id"], first["participant_id"]);
    assert!(
        claims.get("rejoin").is_none(),
        "a first join is no rejoin: {claims}"
    );
    let secret = str_field(&first, "rejoin_secret");
    assert_eq!(secret.len(), 43, "32 bytes in base64url: {secret:?}");
    assert!(
        !str_field(&first, "token").contains(secret) && !claims.to_string().contains(secret),
        "the token must carry only the secret's hash: {claims}"
    );

    let reply = join_raw(
        &server,
        slug,
        &json!({ "display_name": "Ann", "rejoin_token": str_field(&first, "token"),
                 "rejoin_secret": secret }),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let again = reply.json();
    assert_eq!(again["participant_id"], first["participant_id"]);
    assert_ne!(again["token"], first["token"]);
    assert_ne!(
        again["rejoin_secret"], first["rejoin_secret"],
        "every token gets a new secret"
    );
    let claims = token_claims(str_field(&again, "token"));
    assert_eq!(claims["participant_id"], first["participant_id"]);
    assert_eq!(claims["rejoin"], true, "{claims}");
    assert_eq!(again["node_id"], claims["node_id"]);

    // Without a rejoin token, a new person.
    let other = join(server.base(), slug, "Ann").await;
    assert_ne!(other["participant_id"], first["participant_id"]);
}

#[tokio::test]
async fn a_leaked_rejoin_token_without_its_secret_cannot_take_over_the_seat() {
    let server = Server::start();
    let room = create_room(server.base(), "Guarded seat").await;
    let slug = str_field(&room, "slug");
    let ann = join(server.base(), slug, "Ann").await;
    // Ann is connected and in the call: her seat is live.
    let (_ann_signal, _joined) = Signal::join(server.base(), &ann).await;
    let leaked = str_field(&ann, "token");
    let other = join(server.base(), slug, "Bo").await;
    for (what, secret) in [
        ("no rejoin_secret", None),
        ("an empty rejoin_secret", Some(String::new())),
        (
            "another join's rejoin_secret",
            Some(str_field(&other, "rejoin_secret").to_owned()),
        ),
        ("the token itself", Some(leaked.to_owned())),
    ] {
        let mut body = json!({ "display_name": "Mallory", "rejoin_token": leaked });
        if let Some(s) = secret {
            body["rejoin_secret"] = json!(s);
        }
        let reply = join_raw(&server, slug, &body, &[]).await;
        let message = reply.assert_error(401, "unauthorized");
        assert!(message.contains("rejoin_secret"), "{what}: {message}");
        eprintln!("{what} -> 401 unauthorized {message:?}");
    }
    // With the secret from Ann's own join response: Ann again.
    let reply = join_raw(
        &server,
        slug,
        &json!({ "display_name": "Ann", "rejoin_token": leaked,
                 "rejoin_secret": str_field(&ann, "rejoin_secret") }),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["participant_id"], ann["participant_id"]);
}

#[tokio::test]
async fn forged_foreign_and_garbage_rejoin_tokens_are_refused_with_token_invalid() {
    let server = Server::start();
    let room = create_room(server.base(), "Guarded").await;
    let slug = str_field(&room, "slug");
    let elsewhere = create_room(server.base(), "Elsewhere").await;
    let ann = join(server.base(), slug, "Ann").await;
    let bo = join(server.base(), slug, "Bo").await;
    let foreign = join(server.base(), str_field(&elsewhere, "slug"), "Cy").await;

    // Bo's claims under Ann's signature: a forgery claiming Bo's seat.
    let claims_of = |t: &str| t.split('.').nth(1).expect("claims part").to_owned();
    let signature_of = |t: &str| t.rsplit('.').next().expect("signature").to_owned();
    let forged = format!(
        "v1.{}.{}",
        claims_of(str_field(&bo, "token")),
        signature_of(str_field(&ann, "token"))
    );
    for (what, token) in [
        ("a forged token", forged),
        (
            "a token for another room",
            str_field(&foreign, "token").to_owned(),
        ),
        ("garbage", "not a token".to_owned()),
        ("a malformed v1 token", "v1.e30.AAAA".to_owned()),
        ("an empty token", String::new()),
    ] {
        let reply = join_raw(
            &server,
            slug,
            &json!({ "display_name": "Mallory", "rejoin_token": token,
                     "rejoin_secret": str_field(&bo, "rejoin_secret") }),
            &[],
        )
        .await;
        let message = reply.assert_error(401, "token_invalid");
        assert!(message.contains("rejoin token"), "{what}: {message}");
        eprintln!("{what} -> 401 token_invalid {message:?}");
    }
}

#[tokio::test]
async fn a_region_must_be_a_short_plain_label() {
    let server = Server::start();
    let room = create_room(server.base(), "Regions").await;
    let slug = str_field(&room, "slug");
    let name = json!({ "display_name": "Ann" });
    let long = "e".repeat(65);
    for (what, body, headers) in [
        (
            "a header with a space",
            name.clone(),
            vec![("x-veche-region", "eu west")],
        ),
        (
            "a header with a slash",
            name.clone(),
            vec![("x-veche-region", "eu/west")],
        ),
        (
            "a header of 65 characters",
            name.clone(),
            vec![("x-veche-region", long.as_str())],
        ),
        (
            "a body region with a colon",
            json!({ "display_name": "Ann", "region": "eu:1" }),
            vec![],
        ),
    ] {
        let reply = join_raw(&server, slug, &body, &headers).await;
        let message = reply.assert_error(400, "bad_request");
        eprintln!("{what} -> 400 {message:?}");
    }
    // Good labels, and an empty header (ignored), are fine.
    for (body, headers) in [
        (name.clone(), vec![("x-veche-region", "eu-west.1_a")]),
        (name.clone(), vec![("x-veche-region", "")]),
        (
            json!({ "display_name": "Ann", "region": "e".repeat(64) }),
            vec![],
        ),
    ] {
        let reply = join_raw(&server, slug, &body, &headers).await;
        assert_eq!(reply.status, 200, "{body} {headers:?}: {}", reply.body);
    }
}

#[tokio::test]
async fn draining_the_only_media_node_is_refused_and_unknown_nodes_are_bad_requests() {
    let server = Server::start_with_config(&format!(
        "[control_plane]\ncluster_secret = \"{ADMIN_SECRET}\"\n"
    ));
    let client = http();
    let status: Value = wait_for(
        "the admin status shows the media node alive",
        secs(10),
        async || {
            let v: Value = client
                .get(server.url("/api/admin/cluster"))
                .bearer_auth(ADMIN_SECRET)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            if v["media_nodes"][0]["alive"] == true {
                Ok(v)
            } else {
                Err(format!("status = {v}"))
            }
        },
    )
    .await;
    let id = status["media_nodes"][0]["node_id"]
        .as_u64()
        .expect("node id");
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req.bearer_auth(ADMIN_SECRET).send().await.unwrap();
        let code = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or_default();
        (code, body)
    };
    let drain = |node: &str| server.url(&format!("/api/admin/media-nodes/{node}/drain"));

    let (code, body) = send(client.post(drain(&id.to_string()))).await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["code"], "invalid_state", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("no other media node")),
        "{body}"
    );
    for (what, req) in [
        ("draining an unknown node", client.post(drain("99"))),
        ("undraining an unknown node", client.delete(drain("99"))),
        ("a node id that is not a number", client.post(drain("one"))),
    ] {
        let (code, body) = send(req).await;
        assert_eq!(code, 400, "{what}: {body}");
        assert_eq!(body["code"], "bad_request", "{what}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }
    // Undraining a node in service is a no-op that shows its status.
    let (code, body) = send(client.delete(drain(&id.to_string()))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["node_id"], id);
    assert_eq!(body["draining"], false);
    // And the routes sit behind the cluster secret.
    let resp = client.post(drain(&id.to_string())).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // The node still takes joins.
    let room = create_room(server.base(), "Still open").await;
    join(server.base(), str_field(&room, "slug"), "Ann").await;
}
