//! Admission at the control plane's HTTP edge, as a client sees it:
//! per-address rate limits (429 `rate_limited` with `Retry-After`), the
//! body limit (413), restricted room creation (403, nothing written), the
//! web client's security headers, and the refusal of a weak cluster secret
//! at start-up.

use crate::common::*;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use veche_protocol::limits::http::{CREATE_ROOM, JOIN, MAX_BODY_BYTES, READ};

/// A room creation secret long enough to be accepted.
const CREATE_SECRET: &str = "create-secret-0123456789abcdef0123456789";

/// A response's status, `Retry-After` header and JSON body.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|v| v.to_str().expect("ASCII").parse().expect("whole seconds"));
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

/// Sends `request()` up to `burst` times, each admitted, then once more,
/// and asserts that the last one is refused with 429 `rate_limited`, a
/// message and a `Retry-After` of at least one second.
async fn assert_limited_after(
    what: &str,
    burst: u32,
    mut request: impl FnMut() -> reqwest::RequestBuilder,
) {
    for i in 0..burst {
        let a = send(request()).await;
        assert!(
            (200..300).contains(&a.status),
            "{what}: request {i} of the burst of {burst} was refused: {} {}",
            a.status,
            a.body
        );
    }
    let a = send(request()).await;
    assert_eq!(a.status, 429, "{what}: over the burst: {}", a.body);
    assert_eq!(a.body["code"], "rate_limited", "{what}: {}", a.body);
    assert!(
        a.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("retry in")),
        "{what}: {}",
        a.body
    );
    let after = a
        .retry_after
        .unwrap_or_else(|| panic!("{what}: no Retry-After"));
    assert!(after >= 1, "{what}: Retry-After {after}");
    eprintln!("{what}: 429 after {burst}, Retry-After {after} s");
}

#[tokio::test]
async fn each_public_route_class_answers_429_with_retry_after_past_its_burst() {
    let server = Server::start();
    let client = http();
    let room = create_room(server.base(), "Joinable").await;
    let rooms = server.url("/api/rooms");
    // The room above took the first token of the creation burst.
    assert_limited_after("room creation", CREATE_ROOM.burst - 1, || {
        client.post(&rooms).json(&json!({ "name": "Burst" }))
    })
    .await;

    // Each route class has its own bucket: joining still works here.
    let slug = str_field(&room, "slug");
    let join_url = server.url(&format!("/api/rooms/{slug}/join"));
    assert_limited_after("joining", JOIN.burst, || {
        client
            .post(&join_url)
            .json(&json!({ "display_name": "Guest" }))
    })
    .await;

    let room_url = server.url(&format!("/api/rooms/{slug}"));
    let history_url = server.url(&format!("/api/rooms/{slug}/messages"));
    let mut n = 0;
    // Lookups and history share one bucket.
    assert_limited_after("room lookups and history", READ.burst, || {
        n += 1;
        if n % 2 == 0 {
            client.get(&room_url)
        } else {
            client.get(&history_url)
        }
    })
    .await;
    let a = send(client.get(&room_url)).await;
    assert_eq!(a.status, 429, "lookups share the read limit: {}", a.body);
}

/// Exhausts room creation as client `xff` (an `X-Forwarded-For` value),
/// then says whether another `X-Forwarded-For` address may still create.
async fn another_forwarded_address_may_create(server: &Server, xff: &str, other: &str) -> bool {
    let client = http();
    let url = server.url("/api/rooms");
    let create = |from: &str| {
        client
            .post(&url)
            .header("x-forwarded-for", from)
            .json(&json!({ "name": "Proxied" }))
    };
    assert_limited_after(&format!("creation from {xff}"), CREATE_ROOM.burst, || {
        create(xff)
    })
    .await;
    let a = send(create(other)).await;
    a.status == 201
}

#[tokio::test]
async fn x_forwarded_for_counts_only_when_a_trusted_proxy_is_configured() {
    let direct = Server::start();
    assert!(
        !another_forwarded_address_may_create(&direct, "203.0.113.1", "203.0.113.2").await,
        "without trust_forwarded_for, a client must not pick its own address"
    );
    let proxied = Server::start_with_config("[http]\ntrust_forwarded_for = true\n");
    // The proxy appends the client's address; what the client sent before
    // it is ignored.
    assert!(
        another_forwarded_address_may_create(
            &proxied,
            "198.51.100.7, 203.0.113.1",
            "198.51.100.7, 203.0.113.2"
        )
        .await,
        "behind a trusted proxy, each forwarded client has its own limit"
    );
}

#[tokio::test]
async fn rate_limits_can_be_turned_off_for_load_tests() {
    let server = Server::start_with_config("[http]\nrate_limits = false\n");
    let client = http();
    for i in 0..=CREATE_ROOM.burst + 2 {
        let a = send(
            client
                .post(server.url("/api/rooms"))
                .json(&json!({ "name": "Load" })),
        )
        .await;
        assert_eq!(a.status, 201, "creation {i}: {}", a.body);
    }
}

#[tokio::test]
async fn an_over_size_body_is_413_too_large_and_malformed_json_is_still_400() {
    let server = Server::start();
    let client = http();
    let big = json!({ "name": "x".repeat(MAX_BODY_BYTES) }).to_string();
    let room = create_room(server.base(), "Small bodies").await;
    let join_url = server.url(&format!("/api/rooms/{}/join", str_field(&room, "slug")));
    for url in [server.url("/api/rooms"), join_url.clone()] {
        let a = send(
            client
                .post(&url)
                .header("content-type", "application/json")
                .body(big.clone()),
        )
        .await;
        assert_eq!(a.status, 413, "{url}: {}", a.body);
        assert_eq!(a.body["code"], "too_large", "{url}: {}", a.body);
        assert!(a.body["message"].is_string(), "{url}: {}", a.body);
    }
    let a = send(
        client
            .post(&join_url)
            .header("content-type", "application/json")
            .body("{\"display_name\":"),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.body["code"], "bad_request", "{}", a.body);
}

/// The last applied Raft index from `/metrics`: it moves on every write.
async fn last_applied(server: &Server) -> u64 {
    let text = http()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .find_map(|l| l.strip_prefix("veche_cp_raft_last_applied_index "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no last applied index in /metrics:\n{text}"))
}

#[tokio::test]
async fn restricted_creation_refuses_without_the_secret_writes_nothing_and_allows_with_it() {
    let server = Server::start_with_config(&format!(
        "[rooms]\ncreate = \"secret\"\ncreate_secret = \"{CREATE_SECRET}\"\n"
    ));
    let client = http();
    let url = server.url("/api/rooms");
    // The node's registration is the last write of start-up; wait for it.
    let before = wait_for("the start-up writes are applied", secs(10), async || {
        let a = last_applied(&server).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let b = last_applied(&server).await;
        if a == b && a > 0 {
            Ok(a)
        } else {
            Err(format!("last applied moved from {a} to {b}"))
        }
    })
    .await;
    for (what, req) in [
        (
            "no secret",
            client.post(&url).json(&json!({ "name": "Mine" })),
        ),
        (
            "a wrong secret",
            client
                .post(&url)
                .bearer_auth("create-secret-0123456789abcdef012345678X")
                .json(&json!({ "name": "Mine" })),
        ),
    ] {
        let a = send(req).await;
        assert_eq!(a.status, 403, "{what}: {}", a.body);
        assert_eq!(a.body["code"], "forbidden", "{what}: {}", a.body);
        assert!(
            a.body["message"]
                .as_str()
                .is_some_and(|m| m.contains("create secret")),
            "{what}: {}",
            a.body
        );
    }
    assert_eq!(
        last_applied(&server).await,
        before,
        "a refused creation wrote to the log"
    );
    let a = send(
        client
            .post(&url)
            .bearer_auth(CREATE_SECRET)
            .json(&json!({ "name": "Mine" })),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert!(last_applied(&server).await > before);
    // Joining the room needs no secret: the link is the guest's credential.
    join(server.base(), str_field(&a.body, "slug"), "Guest").await;
}

#[tokio::test]
async fn web_pages_carry_a_strict_content_security_policy_nosniff_and_no_referrer() {
    let server = Server::start();
    let room = create_room(server.base(), "Headers").await;
    let client = http();
    for path in [
        "/".to_owned(),
        format!("/r/{}", str_field(&room, "slug")),
        "/static/room.js".to_owned(),
    ] {
        let resp = client.get(server.url(&path)).send().await.expect("GET");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let h = resp.headers();
        let header = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path} has no {name}"))
                .to_owned()
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self';",
            "connect-src 'self' ws: wss:",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} not in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn frame_ancestors_follow_the_configuration() {
    let server = Server::start_with_config(
        "[http]\nframe_ancestors = \"'self' https://intranet.example\"\n",
    );
    let resp = http().get(server.url("/")).send().await.expect("GET /");
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.ends_with("frame-ancestors 'self' https://intranet.example"),
        "{csp}"
    );
}

/// Runs `veche serve` with `toml` as its config and returns its exit status
/// and everything it printed; it must exit by itself.
fn serve_expecting_exit(toml: &str) -> (bool, String) {
    let dir = TempDir::new("weak-secret");
    let config = dir.path().join("veche.toml");
    std::fs::write(&config, toml).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_veche"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("VECHE_CLUSTER_SECRET")
        .stdin(Stdio::null())
        .output()
        .expect("run veche serve");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn a_cluster_secret_shorter_than_32_bytes_is_refused_at_start_up() {
    let (ok, text) = serve_expecting_exit("[control_plane]\ncluster_secret = \"short-secret\"\n");
    assert!(!ok, "veche serve started with a 12-byte secret: {text}");
    assert!(
        text.contains("32 bytes") && text.contains("openssl rand -hex 32"),
        "the refusal should say how long and how to make one: {text}"
    );
    assert!(
        !text.contains("short-secret"),
        "the refusal must not print the secret: {text}"
    );
    let (ok, text) = serve_expecting_exit("[rooms]\ncreate = \"secret\"\n");
    assert!(!ok, "restricted creation started without a secret: {text}");
    assert!(text.contains("create_secret"), "{text}");
}
