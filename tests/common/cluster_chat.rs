//! Chat written to a control-plane cluster the way media nodes write it,
//! and the checks that every acknowledged message is on every node exactly
//! once: what the cluster tests (`cluster_failover.rs`,
//! `cluster_membership.rs`) write while they kill, cut off and add nodes.
//!
//! Chat goes through the internal RPC (`POST /internal/v1/chat`,
//! MessagePack), with a `client_msg_id` per message so that a retry after a
//! lost reply is safe. Every check reads history back through the public
//! API of every node.

use super::cluster::Cluster;
use super::{create_room, now_ms, str_field, wait_for};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use veche_protocol::chat::ChatMessage;
use veche_protocol::error::ErrorBody;
use veche_protocol::rpc::{CommitChat, MessagesPage, RPC_COMMIT_CHAT};
use veche_protocol::{ParticipantId, RoomId};

/// Timeout of one chat commit. The control plane itself looks for a leader
/// for up to 10 s before giving up, so this is longer.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(12);
/// How long a node may take to answer reads again after a restart or a
/// healed partition.
pub const CATCH_UP: Duration = Duration::from_secs(20);

/// An HTTP client that ignores proxy settings, with `timeout` per request.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .pool_idle_timeout(std::time::Duration::from_millis(
            veche_protocol::limits::http::CLIENT_POOL_IDLE_MS,
        ))
        .build()
        .expect("reqwest client")
}

/// A room: its internal id (for the chat RPC) and its slug (for the API).
#[derive(Clone)]
pub struct Room {
    /// Its internal id, for the chat RPC.
    pub id: RoomId,
    /// Its slug, for the public API.
    pub slug: String,
    /// The name it was created with.
    pub name: String,
}

pub async fn new_room(base: &str, name: &str) -> Room {
    let room = create_room(base, name).await;
    Room {
        id: RoomId(room["id"].as_u64().expect("room id")),
        slug: str_field(&room, "slug").to_owned(),
        name: name.to_owned(),
    }
}

/// The chat message `client_msg_id` as a media node would commit it.
pub fn chat(room: &Room, client_msg_id: &str) -> CommitChat {
    CommitChat {
        room_id: room.id,
        participant_id: ParticipantId("p-cluster-test".into()),
        display_name: "Writer".into(),
        text: format!("message {client_msg_id}"),
        client_msg_id: Some(client_msg_id.to_owned()),
        sent_at_ms: now_ms(),
    }
}

/// The innermost cause of an error ("Connection refused (os error 111)").
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut e = e;
    while let Some(source) = e.source() {
        e = source;
    }
    e.to_string()
}

/// `POST {base}/internal/v1/chat`: the committed message, or why not, as
/// `"<gist> [<details>]"`.
pub async fn commit(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    req: &CommitChat,
) -> Result<ChatMessage, String> {
    let url = format!("{base}{RPC_COMMIT_CHAT}");
    let body = rmp_serde::to_vec_named(req).expect("encode CommitChat");
    let resp = http
        .post(&url)
        .bearer_auth(secret)
        .header("content-type", "application/msgpack")
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let gist = if e.is_connect() {
                "not sent (connect failed)"
            } else if e.is_timeout() {
                "sent, timed out"
            } else {
                "sent, no reply"
            };
            format!("{gist}: {} [POST {url}: {e}]", root_cause(&e))
        })?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("sent, reply cut off: {} [POST {url}: {e}]", root_cause(&e)))?;
    if status.is_success() {
        return rmp_serde::from_slice(&bytes)
            .map_err(|e| format!("undecodable reply [POST {url}: {e}]"));
    }
    match rmp_serde::from_slice::<ErrorBody>(&bytes) {
        Ok(e) => Err(format!(
            "{status} {} [POST {url}: {}]",
            e.code.as_str(),
            e.message
        )),
        Err(_) => Err(format!(
            "{status} [POST {url}: {}]",
            String::from_utf8_lossy(&bytes)
        )),
    }
}

/// The room's whole history as `base` serves it, oldest first, read page
/// by page with `before`.
pub async fn history(base: &str, slug: &str) -> Result<Vec<ChatMessage>, String> {
    let http = client(Duration::from_secs(10));
    let mut all: Vec<ChatMessage> = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut url = format!("{base}/api/rooms/{slug}/messages?limit=100");
        if let Some(b) = before {
            url.push_str(&format!("&before={b}"));
        }
        let resp = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
        if status != 200 {
            return Err(format!("GET {url}: {status} {body}"));
        }
        let page: MessagesPage =
            serde_json::from_str(&body).map_err(|e| format!("GET {url}: {e}: {body}"))?;
        let mut messages = page.messages;
        messages.extend(all);
        all = messages;
        match (page.has_more, all.first()) {
            (true, Some(first)) => before = Some(first.id.0),
            _ => return Ok(all),
        }
    }
}

/// Waits until node `id` serves the room's history (a node that has just
/// restarted or healed answers 503 while it catches up) and returns it.
pub async fn history_of(cluster: &Cluster, id: u64, room: &Room) -> Vec<ChatMessage> {
    let base = cluster.base(id);
    wait_for(
        &format!("node {id} serves the history of room {}", room.slug),
        CATCH_UP,
        async || history(&base, &room.slug).await,
    )
    .await
}

/// The ids and `client_msg_id`s of `messages`, for failure messages.
pub fn summary(messages: &[ChatMessage]) -> String {
    let ids: Vec<String> = messages
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m.id.0,
                m.client_msg_id.as_deref().unwrap_or("<none>")
            )
        })
        .collect();
    format!("{} messages [{}]", messages.len(), ids.join(", "))
}

/// Asserts that `history`, as node `node` serves it, holds every
/// acknowledged message exactly once, as acknowledged, in strictly
/// increasing id order, and nothing else.
pub fn assert_exactly_once(node: u64, history: &[ChatMessage], acked: &[ChatMessage]) {
    for pair in history.windows(2) {
        assert!(
            pair[0].id < pair[1].id,
            "node {node}: ids are not strictly increasing at {} then {}; history: {}",
            pair[0].id,
            pair[1].id,
            summary(history)
        );
    }
    let mut stored: BTreeMap<&str, Vec<&ChatMessage>> = BTreeMap::new();
    for m in history {
        let key = m.client_msg_id.as_deref().unwrap_or("<none>");
        stored.entry(key).or_default().push(m);
    }
    for ack in acked {
        let key = ack
            .client_msg_id
            .as_deref()
            .expect("sent with a client_msg_id");
        match stored.get(key).map(Vec::as_slice) {
            Some([m]) => assert_eq!(
                *m, ack,
                "node {node}: message {key} differs from what its commit acknowledged"
            ),
            Some(copies) => panic!(
                "node {node}: acknowledged message {key} is stored {} times: {copies:?}",
                copies.len()
            ),
            None => panic!(
                "node {node}: acknowledged message {key} (id {}) is missing; history: {}",
                ack.id,
                summary(history)
            ),
        }
    }
    assert_eq!(
        history.len(),
        acked.len(),
        "node {node}: the history has messages nobody acknowledged: {}",
        summary(history)
    );
}

// ---------------------------------------------------------------------------
// A continuous writer
// ---------------------------------------------------------------------------

/// What a [`Writer`] did.
#[derive(Default)]
pub struct Written {
    /// Every acknowledged message.
    pub acked: Vec<ChatMessage>,
    /// Failed attempts (each was retried).
    pub failed_attempts: usize,
    /// Why attempts failed, with counts.
    pub failures: BTreeMap<String, usize>,
    /// The longest time from first sending a message to its acknowledgement.
    pub slowest_ack: Duration,
}

/// Commits chat messages continuously in [`WRITER_LANES`] concurrent
/// lanes, each one message after another with a fresh `client_msg_id`,
/// sending each attempt to the next node of `targets` in turn. A failed
/// attempt is retried, with the same `client_msg_id`, until acknowledged:
/// nothing it sends is abandoned, even when asked to stop. Several lanes
/// keep requests in flight on every node, so a killed node takes some
/// with it whose outcome the sender cannot know.
pub struct Writer {
    /// The base URLs it writes to, in turn; a test may narrow them.
    pub targets: Arc<Mutex<Vec<String>>>,
    acked: Arc<Mutex<Vec<ChatMessage>>>,
    stop: Arc<AtomicBool>,
    lanes: Vec<tokio::task::JoinHandle<Written>>,
}

const WRITER_LANES: usize = 3;
/// How long a lane waits between two messages, and before a retry.
const WRITER_PACE: Duration = Duration::from_millis(10);
const WRITER_RETRY_PAUSE: Duration = Duration::from_millis(50);

impl Writer {
    /// Starts the lanes, writing to every running node of `cluster`.
    pub fn start(cluster: &Cluster, room: &Room) -> Writer {
        let targets = Arc::new(Mutex::new(
            cluster.ids().iter().map(|id| cluster.base(*id)).collect(),
        ));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let lanes = (0..WRITER_LANES)
            .map(|lane| {
                tokio::spawn(Writer::lane(
                    lane,
                    targets.clone(),
                    acked.clone(),
                    stop.clone(),
                    cluster.secret().to_owned(),
                    room.clone(),
                ))
            })
            .collect();
        Writer {
            targets,
            acked,
            stop,
            lanes,
        }
    }

    async fn lane(
        lane: usize,
        targets: Arc<Mutex<Vec<String>>>,
        acked: Arc<Mutex<Vec<ChatMessage>>>,
        stop: Arc<AtomicBool>,
        secret: String,
        room: Room,
    ) -> Written {
        let http = client(COMMIT_TIMEOUT);
        let mut out = Written::default();
        let mut turn = lane;
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            seq += 1;
            let id = format!("w{lane}-{seq}");
            let req = chat(&room, &id);
            let first_sent = Instant::now();
            let msg = loop {
                let target = {
                    let t = targets.lock().expect("lock");
                    turn += 1;
                    t[turn % t.len()].clone()
                };
                match commit(&http, &target, &secret, &req).await {
                    Ok(msg) => break msg,
                    Err(e) => {
                        out.failed_attempts += 1;
                        let gist = e.split(" [").next().unwrap_or_default().to_owned();
                        *out.failures.entry(gist).or_default() += 1;
                        assert!(
                            first_sent.elapsed() < Duration::from_secs(30),
                            "message {id} was not acknowledged within 30 s; last error: {e}"
                        );
                        tokio::time::sleep(WRITER_RETRY_PAUSE).await;
                    }
                }
            };
            out.slowest_ack = out.slowest_ack.max(first_sent.elapsed());
            acked.lock().expect("lock").push(msg.clone());
            out.acked.push(msg);
            tokio::time::sleep(WRITER_PACE).await;
        }
        out
    }

    /// How many messages are acknowledged so far.
    pub fn acked(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    /// Writes to every running node of `cluster` from now on.
    pub fn set_targets(&self, cluster: &Cluster) {
        let bases: Vec<String> = cluster.ids().iter().map(|id| cluster.base(*id)).collect();
        assert!(!bases.is_empty(), "no running node to write to");
        *self.targets.lock().expect("lock") = bases;
    }

    /// Waits until `more` further messages are acknowledged.
    pub async fn wait_for_more(&self, more: usize, timeout: Duration) {
        let goal = self.acked() + more;
        wait_for(
            &format!("the writer has {goal} messages acknowledged"),
            timeout,
            async || {
                let n = self.acked();
                if n >= goal {
                    Ok(())
                } else {
                    Err(format!("{n} acknowledged"))
                }
            },
        )
        .await;
    }

    /// Stops once each lane's message in flight is acknowledged.
    pub async fn stop(self) -> Written {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Written::default();
        for lane in self.lanes {
            let w = lane.await.expect("a writer lane panicked");
            all.acked.extend(w.acked);
            all.failed_attempts += w.failed_attempts;
            for (why, n) in w.failures {
                *all.failures.entry(why).or_default() += n;
            }
            all.slowest_ack = all.slowest_ack.max(w.slowest_ack);
        }
        all.acked.sort_by_key(|m| m.id);
        eprintln!(
            "writer: {} messages acknowledged, {} failed attempts retried, slowest \
             acknowledgement {} ms; failures: {:?}",
            all.acked.len(),
            all.failed_attempts,
            all.slowest_ack.as_millis(),
            all.failures
        );
        all
    }
}

/// Asserts that every running node serves the same history, holding every
/// acknowledged message exactly once.
pub async fn assert_every_node_has_exactly(cluster: &Cluster, room: &Room, acked: &[ChatMessage]) {
    let mut first: Option<(u64, Vec<ChatMessage>)> = None;
    for id in cluster.ids() {
        let h = history_of(cluster, id, room).await;
        assert_exactly_once(id, &h, acked);
        match &first {
            None => first = Some((id, h)),
            Some((other, theirs)) => assert!(
                h == *theirs,
                "node {id} and node {other} serve different histories:\n{id}: {}\n{other}: {}",
                summary(&h),
                summary(theirs)
            ),
        }
    }
}
