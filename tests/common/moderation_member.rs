//! A scripted participant of the moderation tests (issue 12): a
//! signalling socket that stays alive while the test does other things
//! ([`Line`]), and a [`Member`] that keeps the room as its messages
//! describe it (participants, policy, lobby, notices), so a test waits for
//! a condition on that view.

use crate::common::moderation::moderate_frame;
use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

// ---------------------------------------------------------------------------
// A signalling socket that stays alive while the test does other things
// ---------------------------------------------------------------------------

/// How often a [`Line`] pings: the node drops a socket after 4.5 s
/// without traffic, and a test may not read a member's socket for longer
/// than that (while it polls a node's metrics, say).
const KEEPALIVE: Duration = Duration::from_millis(1500);

/// A signalling WebSocket served by a task of its own, which reads every
/// frame as it comes and sends a `ping` every [`KEEPALIVE`], as a browser
/// does; `pong`s are not passed on. The same `send`/`recv`/`seen` as
/// [`Signal`].
pub struct Line {
    out: tokio::sync::mpsc::UnboundedSender<String>,
    inbox: tokio::sync::mpsc::UnboundedReceiver<Result<Value, WsEnd>>,
    /// Every message received so far (`pong`s aside), for failure messages.
    pub seen: Vec<Value>,
    task: tokio::task::JoinHandle<()>,
}

impl Line {
    /// Opens the socket named by a join response's `ws_url`.
    pub async fn connect(base: &str, join_response: &Value) -> Line {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let url = resolve_ws_url(base, str_field(join_response, "ws_url"));
        let mut ws =
            match tokio::time::timeout(secs(10), tokio_tungstenite::connect_async(&url)).await {
                Err(_) => panic!("connecting to {url} timed out"),
                Ok(Err(e)) => panic!("connecting to {url} failed: {e}"),
                Ok(Ok((ws, _response))) => ws,
            };
        let (out, mut outgoing) = tokio::sync::mpsc::unbounded_channel::<String>();
        let (deliver, inbox) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            // Not at once: `join` must be the first frame.
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
            let mut seq = 0u64;
            loop {
                tokio::select! {
                    text = outgoing.recv() => {
                        let Some(text) = text else { break };
                        if let Err(e) = ws.send(Message::text(text)).await {
                            let _ = deliver.send(Err(WsEnd::Broken(e.to_string())));
                            break;
                        }
                    }
                    _ = tick.tick() => {
                        seq += 1;
                        let ping = json!({ "type": "ping", "seq": seq }).to_string();
                        if ws.send(Message::text(ping)).await.is_err() {
                            // The reader below reports how the socket ended.
                        }
                    }
                    frame = ws.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            let v: Value = serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                                panic!("the server sent a non-JSON text frame ({e}): {text}")
                            });
                            if v["type"] != "pong" {
                                let _ = deliver.send(Ok(v));
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let end = match frame {
                                Some(f) => WsEnd::Closed(u16::from(f.code), f.reason.as_str().to_owned()),
                                None => WsEnd::Closed(1005, String::new()),
                            };
                            let _ = deliver.send(Err(end));
                            break;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            let _ = deliver.send(Err(WsEnd::Broken(e.to_string())));
                            break;
                        }
                        None => {
                            let _ = deliver.send(Err(WsEnd::Broken("the stream ended".into())));
                            break;
                        }
                    }
                }
            }
        });
        Line {
            out,
            inbox,
            seen: Vec::new(),
            task,
        }
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, msg: &Value) {
        self.out
            .send(msg.to_string())
            .unwrap_or_else(|_| panic!("the socket is closed; could not send {msg}"));
    }

    /// The next JSON text message, or why there is none.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Value, WsEnd> {
        match tokio::time::timeout(timeout, self.inbox.recv()).await {
            Err(_) => Err(WsEnd::Timeout),
            Ok(None) => Err(WsEnd::Broken("the socket ended earlier".into())),
            Ok(Some(Ok(v))) => {
                self.seen.push(v.clone());
                Ok(v)
            }
            Ok(Some(Err(end))) => Err(end),
        }
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------
// A scripted participant that keeps the room as its messages describe it
// ---------------------------------------------------------------------------

/// A signalling client that applies every message it reads to its own view
/// of the room (participants, policy, lobby), as a browser's state does, so
/// a test can wait for a condition on that view.
pub struct Member {
    /// The socket.
    pub sig: Line,
    /// Who, for messages.
    pub name: String,
    /// Own participant id (from `joined`; empty while in the lobby).
    pub id: String,
    /// The join response this member joined with.
    pub join: Value,
    /// Participants by id, as the latest message about each says.
    pub people: BTreeMap<String, Value>,
    /// The latest policy view.
    pub policy: Value,
    /// The latest lobby list (hosts and moderators only).
    pub lobby: Vec<Value>,
    /// `moderated` notices received, in order.
    pub notices: Vec<Value>,
    /// `error` messages received, in order.
    pub errors: Vec<Value>,
    /// The `joined` message, once seated.
    pub joined: Option<Value>,
}

impl Member {
    /// Opens the socket of `join` (a join response) and sends `join`; does
    /// not wait for anything.
    pub async fn connect(base: &str, name: &str, join: Value) -> Member {
        let frame = json!({ "type": "join", "token": str_field(&join, "token") });
        Member::connect_with(base, name, join, frame).await
    }

    /// [`Member::connect`], sending `frame` as the `join` (for joins with
    /// extra fields, such as `p2p`).
    pub async fn connect_with(base: &str, name: &str, join: Value, frame: Value) -> Member {
        let mut sig = Line::connect(base, &join).await;
        sig.send(&frame).await;
        Member {
            sig,
            name: name.to_owned(),
            id: String::new(),
            join,
            people: BTreeMap::new(),
            policy: Value::Null,
            lobby: Vec::new(),
            notices: Vec::new(),
            errors: Vec::new(),
            joined: None,
        }
    }

    /// [`Member::connect`], then waits until seated (`joined`).
    pub async fn enter(base: &str, name: &str, join: Value) -> Member {
        let mut m = Member::connect(base, name, join).await;
        m.until("joined", secs(10), |m| m.joined.is_some()).await;
        m
    }

    /// Applies one message to the view.
    pub fn apply(&mut self, v: &Value) {
        match v["type"].as_str().unwrap_or_default() {
            "joined" => {
                self.id = v["participant_id"].as_str().unwrap_or_default().to_owned();
                self.people = v["participants"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| (p["id"].as_str().unwrap_or_default().to_owned(), p.clone()))
                    .collect();
                self.policy = v["policy"].clone();
                self.joined = Some(v.clone());
            }
            "participant_joined" | "participant_updated" => {
                let p = &v["participant"];
                self.people
                    .insert(p["id"].as_str().unwrap_or_default().to_owned(), p.clone());
            }
            "participant_left" => {
                self.people
                    .remove(v["participant_id"].as_str().unwrap_or_default());
            }
            "policy" => {
                let newer = v["policy"]["version"].as_u64() >= self.policy["version"].as_u64();
                if newer || self.policy.is_null() {
                    self.policy = v["policy"].clone();
                }
            }
            "lobby" => {
                self.lobby = v["waiting"].as_array().cloned().unwrap_or_default();
            }
            "moderated" => self.notices.push(v.clone()),
            "error" => self.errors.push(v.clone()),
            _ => {}
        }
    }

    /// Reads and applies messages until `cond` holds of the view; panics
    /// after `timeout` with `what`, the view and the last messages.
    pub async fn until(&mut self, what: &str, timeout: Duration, cond: impl Fn(&Member) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !cond(self) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.sig.recv(left).await {
                Ok(v) => self.apply(&v),
                Err(end) => panic!(
                    "{}: waiting until {what}, the socket gave {end:?}; view: {}; last messages: {}",
                    self.name,
                    self.describe(),
                    self.last_messages(8)
                ),
            }
        }
    }

    /// Reads until a message for which `pred` holds, applying everything;
    /// returns it.
    pub async fn next_matching(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.sig.recv(left).await {
                Ok(v) => {
                    self.apply(&v);
                    if pred(&v) {
                        return v;
                    }
                }
                Err(end) => panic!(
                    "{}: waiting for {what}, the socket gave {end:?}; view: {}; last messages: {}",
                    self.name,
                    self.describe(),
                    self.last_messages(8)
                ),
            }
        }
    }

    /// Reads until the server closes the socket; returns the close code,
    /// applying every message before it.
    pub async fn closed(&mut self, timeout: Duration) -> u16 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.sig.recv(left).await {
                Ok(v) => self.apply(&v),
                Err(WsEnd::Closed(code, _)) => return code,
                Err(end) => panic!(
                    "{}: expected the server to close the socket, got {end:?}; last messages: {}",
                    self.name,
                    self.last_messages(8)
                ),
            }
        }
    }

    /// Sends a `moderate` frame.
    pub async fn moderate(&mut self, action: Value) {
        self.sig.send(&moderate_frame(&action)).await;
    }

    /// Sends `action` and waits for its refusal (`forbidden`); returns the
    /// reason.
    pub async fn refused(&mut self, action: Value, what: &str) -> String {
        let before = self.errors.len();
        self.moderate(action).await;
        let e = self
            .next_matching(&format!("the refusal of {what}"), secs(10), |v| {
                v["type"] == "error" && v["request"] == "moderate"
            })
            .await;
        let _ = before;
        assert_eq!(
            e["code"], "forbidden",
            "{}: {what} is refused as forbidden: {e}",
            self.name
        );
        let reason = e["message"].as_str().unwrap_or_default().to_owned();
        assert!(!reason.trim().is_empty(), "{what}: a refusal says why: {e}");
        reason
    }

    /// The participant named `name` in the view, if present.
    pub fn person(&self, name: &str) -> Option<&Value> {
        self.people.values().find(|p| p["display_name"] == name)
    }

    /// The id of the participant named `name`; panics if absent.
    pub fn id_of(&self, name: &str) -> String {
        self.person(name)
            .and_then(|p| p["id"].as_str())
            .unwrap_or_else(|| panic!("{}: nobody named {name} in {}", self.name, self.describe()))
            .to_owned()
    }

    /// The groups the policy holds for `id` (`["camera"]`).
    pub fn held(&self, id: &str) -> Vec<String> {
        self.policy["holds"][id]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect()
    }

    /// Raised hands, in the order every list shows them: by the time raised,
    /// then by id. Returns display names.
    pub fn hands(&self) -> Vec<String> {
        let mut raised: Vec<(u64, String, String)> = self
            .people
            .values()
            .filter_map(|p| {
                Some((
                    p["hand_raised_at_ms"].as_u64()?,
                    p["id"].as_str()?.to_owned(),
                    p["display_name"].as_str()?.to_owned(),
                ))
            })
            .collect();
        raised.sort();
        raised.into_iter().map(|(_, _, name)| name).collect()
    }

    /// A one-line description of the view, for failure messages.
    pub fn describe(&self) -> String {
        let people: Vec<String> = self
            .people
            .values()
            .map(|p| {
                format!(
                    "{}({} {} hand {} tracks {})",
                    p["display_name"].as_str().unwrap_or("?"),
                    p["id"].as_str().unwrap_or("?"),
                    p["role"].as_str().unwrap_or("?"),
                    p["hand_raised_at_ms"],
                    p["tracks"]
                )
            })
            .collect();
        format!(
            "id {} people [{}] policy {} lobby {:?}",
            self.id,
            people.join(", "),
            self.policy,
            self.lobby
        )
    }

    /// The last `n` messages received, for failure output.
    pub fn last_messages(&self, n: usize) -> String {
        let seen = &self.sig.seen;
        seen[seen.len().saturating_sub(n)..]
            .iter()
            .map(|m| {
                let s = m.to_string();
                if s.len() > 300 {
                    format!("{}…", &s[..300])
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
