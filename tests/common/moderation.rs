//! Helpers of the moderation tests (issue 12): rooms with an owner key,
//! joins as host and rejoins, the owner's settings route, `moderate`
//! frames and their refusals, and the media node's per-track
//! forwarded-packet counter, read from its Prometheus metrics.
//!
//! Included with `#[path]` by the tests that use it (like `windows.rs`),
//! so it reaches the shared harness as `crate::common`.
#![allow(dead_code)]

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The request header that carries a room's owner key.
pub const OWNER_KEY: &str = veche_protocol::pass::OWNER_KEY_HEADER;

/// The media node's per-track counter of RTP packets forwarded (each
/// packet once, to local subscribers and other nodes alike), labelled
/// `room`, `track` and `source`, on the publisher's node's
/// `/media/metrics`; dropped when the track is unpublished. Nothing
/// counts while the track is withheld.
pub const FORWARDED_METRIC: &str = "veche_node_track_packets_forwarded_total";

/// A room made by an anonymous creator, with the owner key its create
/// response carried (shown once).
pub struct OwnedRoom {
    /// The create response (`id`, `slug`, `name`, `link`, ...).
    pub room: Value,
    /// The owner key: presented as [`OWNER_KEY`], its holder joins as host.
    pub owner_key: String,
}

impl OwnedRoom {
    /// The room's slug.
    pub fn slug(&self) -> String {
        str_field(&self.room, "slug").to_owned()
    }

    /// The room's link (`{base}/r/{slug}`).
    pub fn link(&self) -> String {
        str_field(&self.room, "link").to_owned()
    }
}

/// `POST /api/rooms` as an anonymous creator; panics unless the response
/// carries an owner key.
pub async fn create_owned_room(base: &str, name: &str) -> OwnedRoom {
    let room = create_room(base, name).await;
    let owner_key = room["owner_key"]
        .as_str()
        .unwrap_or_else(|| panic!("an anonymous creator gets an owner_key: {room}"))
        .to_owned();
    OwnedRoom { room, owner_key }
}

/// `POST /api/rooms/{slug}/join` with `body`, presenting `owner_key` if
/// given. Returns the reply whatever its status.
pub async fn join_reply(base: &str, slug: &str, body: &Value, owner_key: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = owner_key.map(|k| (OWNER_KEY, k)).into_iter().collect();
    http_post_json_with_headers(&format!("{base}/api/rooms/{slug}/join"), body, &headers).await
}

/// Panics unless `reply` is a success; returns its JSON.
pub fn ok_json(reply: &Reply, what: &str) -> Value {
    assert!(
        (200..300).contains(&reply.status),
        "{what} failed with {}: {}",
        reply.status,
        reply.body
    );
    reply.json()
}

/// Joins `room` as its host (presenting the owner key); returns the join
/// response.
pub async fn join_as_host(base: &str, room: &OwnedRoom, name: &str) -> Value {
    let r = join_reply(
        base,
        &room.slug(),
        &json!({ "display_name": name }),
        Some(&room.owner_key),
    )
    .await;
    ok_json(&r, &format!("joining as host {name}"))
}

/// Joins `slug` as `name` in `region` (placement of a cluster).
pub async fn join_in_region(base: &str, slug: &str, name: &str, region: &str) -> Value {
    let r = join_reply(
        base,
        slug,
        &json!({ "display_name": name, "region": region }),
        None,
    )
    .await;
    ok_json(&r, &format!("joining as {name} in {region}"))
}

/// `POST /api/rooms/{slug}/join` with the rejoin token and secret of an
/// earlier join response, as a client whose node was lost does.
pub async fn rejoin_reply(base: &str, slug: &str, name: &str, earlier: &Value) -> Reply {
    join_reply(
        base,
        slug,
        &json!({
            "display_name": name,
            "rejoin_token": str_field(earlier, "token"),
            "rejoin_secret": str_field(earlier, "rejoin_secret"),
        }),
        None,
    )
    .await
}

/// `PUT /api/rooms/{slug}/settings` with `change` (e.g. `{"lobby":true}`),
/// presenting `owner_key` if given.
pub async fn put_settings(
    base: &str,
    slug: &str,
    owner_key: Option<&str>,
    change: &Value,
) -> Reply {
    let url = format!("{base}/api/rooms/{slug}/settings");
    let mut req = http().put(&url).json(change);
    if let Some(k) = owner_key {
        req = req.header(OWNER_KEY, k);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().await.expect("read response body");
    Reply {
        status,
        content_type,
        body,
    }
}

/// The signalling frame of a moderation action: `action` is the
/// `ModAction` JSON (`{"action":"mute","participant_id":..,"group":..}`).
pub fn moderate_frame(action: &Value) -> Value {
    let mut frame = action.clone();
    frame["type"] = json!("moderate");
    frame
}

/// The participant with id `id` in a `joined` message's list.
pub fn participant_in<'a>(joined: &'a Value, id: &str) -> Option<&'a Value> {
    joined["participants"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["id"] == id))
}

/// The role of `id` in a `joined` message's list ("host", ...).
pub fn role_in(joined: &Value, id: &str) -> String {
    participant_in(joined, id)
        .and_then(|p| p["role"].as_str())
        .unwrap_or_else(|| panic!("{id} has no role in {joined}"))
        .to_owned()
}

/// The id of `participant`'s track of `source`, if it publishes one.
pub fn track_id(participant: &Value, source: &str) -> Option<String> {
    participant["tracks"]
        .as_array()?
        .iter()
        .find(|t| t["source"] == source)
        .and_then(|t| t["id"].as_str())
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------
// The node's per-track forwarded-packet counter
// ---------------------------------------------------------------------------

/// One sample of a metric: its labels and value.
#[derive(Clone, Debug)]
pub struct Sample {
    /// `name="value"` pairs.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Parses `name{a="x",b="y"} 12` lines of a Prometheus text page.
pub fn samples(text: &str, name: &str) -> Vec<Sample> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = if let Some(inner) = rest.strip_prefix('{') {
                let (l, v) = inner.split_once('}')?;
                (l, v)
            } else if rest.starts_with(' ') {
                ("", rest)
            } else {
                return None; // another metric whose name starts with `name`
            };
            let value = value.split_whitespace().next()?.parse().ok()?;
            let labels = labels
                .split("\",")
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((
                        k.trim().trim_start_matches(',').to_owned(),
                        v.trim().trim_matches('"').to_owned(),
                    ))
                })
                .collect();
            Some(Sample { labels, value })
        })
        .collect()
}

/// The forwarded-packet counters of every track on the media node at
/// `media_base` (`veche serve` or `veche media-node`), keyed by track id.
pub async fn forwarded_per_track(media_base: &str) -> Result<BTreeMap<String, u64>, String> {
    let url = format!("{media_base}/media/metrics");
    let resp = http()
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let text = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    let mut out = BTreeMap::new();
    for s in samples(&text, FORWARDED_METRIC) {
        if let Some(track) = s.labels.get("track") {
            *out.entry(track.clone()).or_insert(0) += s.value as u64;
        }
    }
    Ok(out)
}

/// The forwarded-packet count of `track` on the node at `media_base`
/// (0 while the node has no sample for it).
pub async fn forwarded(media_base: &str, track: &str) -> Result<u64, String> {
    Ok(forwarded_per_track(media_base)
        .await?
        .get(track)
        .copied()
        .unwrap_or(0))
}

/// Waits until the node at `media_base` has forwarded at least `more`
/// packets of `track` beyond what it had when called: the track flows.
pub async fn assert_forwarding(media_base: &str, track: &str, more: u64, what: &str) {
    let start = forwarded(media_base, track).await.unwrap_or(0);
    wait_for(what, secs(30), async || {
        let now = forwarded(media_base, track).await?;
        if now >= start + more {
            Ok(())
        } else {
            Err(format!(
                "{FORWARDED_METRIC} of track {track} on {media_base}: {start} then {now}; every \
                 track there: {:?}",
                forwarded_per_track(media_base).await
            ))
        }
    })
    .await;
}

/// Asserts that the node at `media_base` forwards no packet of `track`
/// for `during` (the counter does not move).
pub async fn assert_not_forwarding(media_base: &str, track: &str, during: Duration, what: &str) {
    let before = forwarded(media_base, track)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let t0 = Instant::now();
    while t0.elapsed() < during {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = forwarded(media_base, track)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            now,
            before,
            "{what}: the node forwarded {} packets of track {track} within {:?}",
            now.saturating_sub(before),
            t0.elapsed()
        );
    }
}

/// The forwarded counter of one track, read right before a moderator's
/// action, to time how long after the action the track's last packet was
/// forwarded.
pub struct StopWatch {
    media_base: String,
    track: String,
    before: u64,
    /// Right after the baseline read: the action follows at once.
    pub since: Instant,
}

/// When a track's last packet was forwarded after an action.
#[derive(Clone, Copy, Debug)]
pub struct LastPacket {
    /// From the action to the poll that last saw the counter rise (an
    /// upper bound, to within one 10 ms poll and a metrics scrape); zero
    /// when nothing was forwarded after the action.
    pub after: Duration,
    /// Whether anything was forwarded after the action at all.
    pub rose: bool,
    /// From the action to the first poll: the resolution of `after`.
    pub first_poll: Duration,
}

impl std::fmt::Display for LastPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.rose {
            write!(
                f,
                "{} ms (the last poll that saw the forwarded counter rise; polls every 10 ms, the \
                 first {} ms after the action)",
                self.after.as_millis(),
                self.first_poll.as_millis()
            )
        } else {
            write!(
                f,
                "0 ms (nothing forwarded after the action; the first poll was {} ms after it)",
                self.first_poll.as_millis()
            )
        }
    }
}

impl StopWatch {
    /// Reads the counter of `track` on the node at `media_base`; send the
    /// action right after this returns.
    pub async fn arm(media_base: &str, track: &str) -> StopWatch {
        let before = forwarded(media_base, track)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        StopWatch {
            media_base: media_base.to_owned(),
            track: track.to_owned(),
            before,
            since: Instant::now(),
        }
    }

    /// Polls the counter every 10 ms until it has not risen for `quiet`.
    /// Panics if it still rises `budget` after the action.
    pub async fn last_packet(&self, quiet: Duration, budget: Duration) -> LastPacket {
        let (base, track, since) = (&self.media_base, &self.track, self.since);
        let mut last = self.before;
        let mut last_rise: Option<Instant> = None;
        let mut first_poll = None;
        loop {
            if first_poll.is_some() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let now = forwarded(base, track)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let at = Instant::now();
            first_poll.get_or_insert(at.duration_since(since));
            if now > last {
                last = now;
                last_rise = Some(at);
            }
            if at.duration_since(last_rise.unwrap_or(since)) >= quiet {
                return LastPacket {
                    after: last_rise.map_or(Duration::ZERO, |t| t.duration_since(since)),
                    rose: last_rise.is_some(),
                    first_poll: first_poll.unwrap_or_default(),
                };
            }
            assert!(
                at.duration_since(since) < budget + quiet,
                "track {track} on {base} was still forwarded {:?} after the action (counter \
                 {} before it, {now} now)",
                at.duration_since(since),
                self.before
            );
        }
    }
}

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
        let mut sig = Line::connect(base, &join).await;
        sig.send(&json!({ "type": "join", "token": str_field(&join, "token") }))
            .await;
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

// ---------------------------------------------------------------------------
// Scripted WebRTC publishers and receivers: the load-test bots
// ---------------------------------------------------------------------------

/// Bots of `veche loadtest` (real WebRTC clients that publish synthetic
/// VP8 and Opus and record what they receive) in one room. A bot keeps
/// sending whatever the node tells it, which is what a client that
/// ignores a moderator's mute does.
pub struct Bots {
    room: veche_loadtest::bot::Room,
    stop: tokio::sync::watch::Sender<bool>,
    running: Vec<tokio::task::JoinHandle<veche_loadtest::bot::BotResult>>,
    /// When the bots' clock started: `ReceiveStats` instants compare with
    /// the test's own `Instant::now()`.
    pub epoch: Instant,
}

impl Bots {
    /// No bots yet, in room `slug` of the server at `base`.
    pub fn new(base: &str, slug: &str) -> Bots {
        let epoch = Instant::now();
        let (stop, _) = tokio::sync::watch::channel(false);
        Bots {
            room: veche_loadtest::bot::Room {
                base: base.to_owned(),
                slug: slug.to_owned(),
                epoch,
                receiving: Default::default(),
            },
            stop,
            running: Vec::new(),
            epoch,
        }
    }

    /// Starts a bot named `name` that publishes video (and audio) if
    /// `publish`, receives everything, and joins in `region` if given.
    pub fn add(&mut self, name: &str, publish: bool, region: Option<&str>) {
        let spec = veche_loadtest::bot::BotSpec {
            name: name.to_owned(),
            video_bps: publish.then_some(300_000),
            audio: publish,
            expects_media: true,
        };
        let room = self.room.clone();
        let stop = self.stop.subscribe();
        let region = region.map(str::to_owned);
        self.running
            .push(tokio::spawn(veche_loadtest::bot::run_in_region(
                spec, room, region, stop,
            )));
    }

    /// Stops every bot and returns their results by name.
    pub async fn stop(self) -> BTreeMap<String, veche_loadtest::bot::BotResult> {
        let _ = self.stop.send(true);
        let mut out = BTreeMap::new();
        for h in self.running {
            let r = h.await.expect("a bot task panicked");
            out.insert(r.name.clone(), r);
        }
        out
    }
}

/// When `receiver` last received a packet of `kind` ("video"/"audio") from
/// the participant `from` (their id), relative to `since`; `None` if it
/// never did or only before `since`.
pub fn last_packet_after(
    receiver: &veche_loadtest::bot::BotResult,
    from: &str,
    kind: &str,
    since: Instant,
) -> Option<Duration> {
    let stats = receiver.received.get(&format!("{from}/{kind}"))?;
    stats.last_packet()?.checked_duration_since(since)
}
