//! HTTP helpers: one reqwest client without proxies, replies with status and body, and the
//! room API calls tests make most.

use super::*;
use serde_json::{json, Value};

/// An HTTP response: status and body text.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
}

impl Reply {
    /// The body as JSON; panics, showing the body, if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body with status {}, got {e}: {:?}",
                self.status, self.body
            )
        })
    }

    /// Asserts that this is an error reply in the API's one error shape,
    /// `{"code": .., "message": ..}`, with the given code, and returns the
    /// message.
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "wrong status; body: {}", self.body);
        let v = self.json();
        assert_eq!(v["code"], code, "wrong error code in {v}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(!message.trim().is_empty(), "error without a message: {v}");
        message.to_owned()
    }
}

/// An HTTP client that never uses a proxy (a proxy from the environment
/// could not reach 127.0.0.1 inside the test namespace anyway).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(secs(30))
        // Like Veche's own clients: a pooled connection is dropped before
        // the server's header-read timeout could close it under a request.
        .pool_idle_timeout(std::time::Duration::from_millis(
            veche_protocol::limits::http::CLIENT_POOL_IDLE_MS,
        ))
        .build()
        .expect("reqwest client")
}

async fn into_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("read response body");
    Reply { status, body }
}

/// `GET url`.
pub async fn http_get(url: &str) -> Reply {
    let resp = http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    into_reply(resp).await
}

/// `POST url` with a JSON body.
pub async fn http_post_json(url: &str, body: &Value) -> Reply {
    let resp = http()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    into_reply(resp).await
}

/// `POST url` with a JSON body and extra headers (e.g. the load balancer's
/// region header).
pub async fn http_post_json_with_headers(
    url: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Reply {
    send_json(reqwest::Method::POST, url, body, headers).await
}

/// `PUT url` with a JSON body and extra headers (e.g. a room's owner key).
pub async fn http_put_json_with_headers(
    url: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Reply {
    send_json(reqwest::Method::PUT, url, body, headers).await
}

async fn send_json(
    method: reqwest::Method,
    url: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = http().request(method.clone(), url).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    into_reply(resp).await
}

/// `POST url` with any body and content type, for malformed-input tests.
pub async fn http_post_raw(url: &str, content_type: &str, body: &str) -> Reply {
    let resp = http()
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    into_reply(resp).await
}

/// `POST /api/rooms {"name": name}`; panics unless it succeeds. Returns the
/// room (`id`, `slug`, `name`, `link`, `created_at_ms`).
pub async fn create_room(base: &str, name: &str) -> Value {
    let reply = http_post_json(&format!("{base}/api/rooms"), &json!({ "name": name })).await;
    assert!(
        (200..300).contains(&reply.status),
        "creating room {name:?} failed with {}: {}",
        reply.status,
        reply.body
    );
    reply.json()
}

/// `POST /api/rooms/{slug}/join {"display_name": ..}`; panics unless it
/// succeeds. Returns `token`, `ws_url`, `participant_id`, `expires_at_ms`,
/// `room`.
pub async fn join(base: &str, slug: &str, display_name: &str) -> Value {
    let reply = http_post_json(
        &format!("{base}/api/rooms/{slug}/join"),
        &json!({ "display_name": display_name }),
    )
    .await;
    assert!(
        (200..300).contains(&reply.status),
        "joining room {slug} as {display_name:?} failed with {}: {}",
        reply.status,
        reply.body
    );
    reply.json()
}

/// The text of a JSON string field; panics, showing the object, if absent.
pub fn str_field<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("expected a string field {field:?} in {v}"))
}
