//! A signalling WebSocket client for tests: join, send, and wait for messages by type.

use super::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Resolves the `ws_url` of a join response against the server's base URL:
/// absolute `ws(s)://` URLs are kept, `http(s)://` become `ws(s)://`, and a
/// path such as `/media/ws` is put on the base's origin.
pub fn resolve_ws_url(base: &str, ws_url: &str) -> String {
    if ws_url.starts_with("ws://") || ws_url.starts_with("wss://") {
        ws_url.to_owned()
    } else if let Some(rest) = ws_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = ws_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if ws_url.starts_with('/') {
        let origin = base
            .strip_prefix("http://")
            .map(|h| format!("ws://{h}"))
            .or_else(|| base.strip_prefix("https://").map(|h| format!("wss://{h}")))
            .unwrap_or_else(|| panic!("base URL {base} is not http(s)"));
        format!("{}{ws_url}", origin.trim_end_matches('/'))
    } else {
        panic!("cannot resolve ws_url {ws_url:?} against {base}");
    }
}

/// What a signalling socket delivered instead of the expected message.
#[derive(Debug)]
pub enum WsEnd {
    /// A close frame: code and reason.
    Closed(u16, String),
    /// The connection ended without a close frame, or failed: why, which
    /// tests read only through `Debug`, in their panic messages.
    Broken(#[allow(dead_code)] String),
    /// Nothing arrived in time.
    Timeout,
}

/// A signalling WebSocket, as a browser would hold it, speaking JSON text
/// frames.
pub struct Signal {
    ws: Ws,
    /// Every message received so far, for failure messages.
    pub seen: Vec<Value>,
}

impl Signal {
    /// Opens the socket named by a join response's `ws_url`.
    pub async fn connect(base: &str, join_response: &Value) -> Signal {
        let url = resolve_ws_url(base, str_field(join_response, "ws_url"));
        let ws = match tokio::time::timeout(secs(10), tokio_tungstenite::connect_async(&url)).await
        {
            Err(_) => panic!("connecting to {url} timed out"),
            Ok(Err(e)) => panic!("connecting to {url} failed: {e}"),
            Ok(Ok((ws, _response))) => ws,
        };
        Signal {
            ws,
            seen: Vec::new(),
        }
    }

    /// Opens the socket, sends `join` with the response's token and waits for
    /// `joined`, which it returns.
    pub async fn join(base: &str, join_response: &Value) -> (Signal, Value) {
        let mut s = Signal::connect(base, join_response).await;
        s.send(&json!({ "type": "join", "token": str_field(join_response, "token") }))
            .await;
        let joined = s.recv_type("joined", secs(10)).await;
        (s, joined)
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, msg: &Value) {
        self.send_text(&msg.to_string()).await;
    }

    /// Sends a raw text frame, which need not be valid JSON.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("sending a signalling frame failed: {e}"));
    }

    /// The next JSON text message, or why there is none.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Value, WsEnd> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err(WsEnd::Timeout),
                Ok(next) => next,
            };
            match next {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                        panic!("the server sent a non-JSON text frame ({e}): {text}")
                    });
                    self.seen.push(v.clone());
                    return Ok(v);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(match frame {
                        Some(f) => WsEnd::Closed(u16::from(f.code), f.reason.as_str().to_owned()),
                        None => WsEnd::Closed(1005, String::new()),
                    })
                }
                Some(Ok(_)) => continue, // ping/pong/binary
                Some(Err(e)) => return Err(WsEnd::Broken(e.to_string())),
                None => return Err(WsEnd::Broken("the stream ended".into())),
            }
        }
    }

    /// The next message of type `ty`, skipping others (candidates,
    /// participant updates). Panics on close or timeout, listing what came.
    pub async fn recv_type(&mut self, ty: &str, timeout: Duration) -> Value {
        self.recv_matching(&format!("a {ty:?} message"), timeout, |v| v["type"] == ty)
            .await
    }

    /// The next message for which `pred` holds, skipping others. Panics on
    /// close or timeout with `what` and the types of the messages skipped.
    pub async fn recv_matching(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                Ok(v) if pred(&v) => return v,
                Ok(v) => skipped.push(v),
                Err(end) => panic!(
                    "waiting for {what}, the socket gave {end:?}; it sent before that: {}",
                    summarize(&skipped)
                ),
            }
        }
    }

    /// Waits for the server to close the socket, skipping any messages, and
    /// returns the close code and reason.
    pub async fn expect_close(&mut self, timeout: Duration) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                Ok(v) => skipped.push(v),
                Err(WsEnd::Closed(code, reason)) => return (code, reason),
                Err(end) => panic!(
                    "expected the server to close the socket with a close frame, got {end:?}; \
                     it sent: {}",
                    summarize(&skipped)
                ),
            }
        }
    }

    /// Sends `ping` with `seq` and waits for the matching `pong`, proving
    /// the connection is alive and still being served.
    pub async fn ping(&mut self, seq: u64) {
        self.send(&json!({ "type": "ping", "seq": seq })).await;
        self.recv_matching(&format!("pong {seq}"), secs(10), |v| {
            v["type"] == "pong" && v["seq"] == seq
        })
        .await;
    }

    /// Posts a chat message and waits for its committed echo, which it
    /// returns.
    pub async fn chat(&mut self, text: &str) -> Value {
        self.send(&json!({ "type": "chat", "text": text })).await;
        self.recv_matching(&format!("the chat echo of {text:?}"), secs(10), |v| {
            v["type"] == "chat" && v["message"]["text"] == text
        })
        .await
    }
}

/// A short summary of messages, for failure output: whole messages, with
/// long strings (SDP) cut.
fn summarize(msgs: &[Value]) -> String {
    if msgs.is_empty() {
        return "nothing".into();
    }
    msgs.iter()
        .map(|m| {
            let s = m.to_string();
            if s.chars().count() > 300 {
                format!("{}…", s.chars().take(300).collect::<String>())
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
