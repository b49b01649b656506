//! The client of Janus's WebSocket JSON API: sessions, handles, requests
//! matched to replies by transaction, and VideoRoom room creation.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One Janus session over one WebSocket. Requests are matched to their
/// final reply by `transaction` (an `ack` is skipped, and may arrive after
/// the `event` it acknowledges); everything else is an asynchronous event,
/// delivered on the channel returned by [`Session::connect`].
pub(crate) struct Session {
    tx: mpsc::UnboundedSender<Message>,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>,
    next: AtomicU64,
    id: u64,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.tx.send(Message::text(
            json!({ "janus": "destroy", "session_id": self.id, "transaction": "bye" }).to_string(),
        ));
        // The reader task sends that, then ends and closes the socket once
        // `tx` is gone.
    }
}

pub(crate) fn plugin_data(v: &Value) -> &Value {
    &v["plugindata"]["data"]
}

/// A VideoRoom error in an `event`/`success`, or a Janus core `error`.
pub(crate) fn janus_error(v: &Value) -> Option<String> {
    if v["janus"] == "error" {
        return Some(format!("janus error: {}", v["error"]));
    }
    let d = plugin_data(v);
    if d["error_code"].is_number() || d["error"].is_string() {
        return Some(format!(
            "videoroom error {}: {}",
            d["error_code"], d["error"]
        ));
    }
    None
}

impl Session {
    pub(crate) async fn connect(
        url: &str,
    ) -> Result<(Session, mpsc::UnboundedReceiver<Value>), String> {
        let mut req = url
            .into_client_request()
            .map_err(|e| format!("janus url: {e}"))?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "janus-protocol".parse().expect("static header"),
        );
        let (ws, _): (Ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| format!("janus connect: {e}"))?;
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let pending: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>> = Default::default();
        let p = pending.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    out = rx.recv() => {
                        let Some(m) = out else { break };
                        if sink.send(m).await.is_err() { break; }
                    }
                    inc = stream.next() => {
                        let text = match inc {
                            Some(Ok(Message::Text(t))) => t,
                            Some(Ok(_)) => continue,
                            _ => break,
                        };
                        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                        if v["janus"] == "ack" {
                            continue;
                        }
                        let waiter = v["transaction"]
                            .as_str()
                            .and_then(|t| p.lock().expect("lock poisoned").remove(t));
                        match waiter {
                            Some(w) => { let _ = w.send(v); }
                            None => { let _ = events_tx.send(v); }
                        }
                    }
                }
            }
            let _ = sink.close().await;
        });
        let mut s = Session {
            tx,
            pending,
            next: AtomicU64::new(1),
            id: 0,
        };
        let r = s.request(json!({ "janus": "create" })).await?;
        s.id = r["data"]["id"].as_u64().ok_or("create: no session id")?;
        Ok((s, events_rx))
    }

    fn transaction(&self) -> String {
        format!("t{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends `body` (plus `transaction` and `session_id`) and waits for the
    /// first reply that isn't an `ack`.
    async fn request(&self, mut body: Value) -> Result<Value, String> {
        let t = self.transaction();
        body["transaction"] = json!(t);
        if self.id != 0 {
            body["session_id"] = json!(self.id);
        }
        let (w_tx, w_rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("lock poisoned")
            .insert(t.clone(), w_tx);
        self.tx
            .send(Message::text(body.to_string()))
            .map_err(|_| "janus connection closed")?;
        let reply = tokio::time::timeout(Duration::from_secs(20), w_rx)
            .await
            .map_err(|_| {
                self.pending.lock().expect("lock poisoned").remove(&t);
                format!("janus: no reply to {}", body["body"]["request"])
            })?
            .map_err(|_| "janus connection closed".to_owned())?;
        match janus_error(&reply) {
            Some(e) => Err(e),
            None => Ok(reply),
        }
    }

    /// Fire-and-forget (keepalive, trickle): their only reply is an `ack`.
    pub(crate) fn notify(&self, mut body: Value) {
        body["transaction"] = json!(self.transaction());
        body["session_id"] = json!(self.id);
        let _ = self.tx.send(Message::text(body.to_string()));
    }

    pub(crate) async fn attach(&self) -> Result<u64, String> {
        let r = self
            .request(json!({ "janus": "attach", "plugin": "janus.plugin.videoroom" }))
            .await?;
        r["data"]["id"]
            .as_u64()
            .ok_or("attach: no handle id".into())
    }

    pub(crate) async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<Value, String> {
        let mut m = json!({ "janus": "message", "handle_id": handle, "body": body });
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.request(m).await
    }
}

/// Creates VideoRoom `room` on the Janus at `ws_url` for up to `publishers`
/// publishers (the plugin's default is 3).
pub async fn create_room(ws_url: &str, room: u64, publishers: usize) -> Result<(), String> {
    let (s, _events) = Session::connect(ws_url).await?;
    let h = s.attach().await?;
    let r = s
        .message(
            h,
            json!({
                "request": "create",
                "room": room,
                "description": "veche loadtest",
                "publishers": publishers,
                "bitrate": 3_000_000,
                "videocodec": "vp8",
                "audiocodec": "opus",
                "fir_freq": 0,
            }),
            None,
        )
        .await?;
    match plugin_data(&r)["videoroom"].as_str() {
        Some("created") => Ok(()),
        _ => Err(format!("create room: unexpected reply {r}")),
    }
}
