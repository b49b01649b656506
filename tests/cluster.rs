//! A three-node control plane as separate `veche control-plane` processes:
//! failover when the leader is SIGKILLed mid-write, a partitioned follower
//! catching up, a full-cluster crash and restart, membership changes under
//! load, forwarding of public writes, the admin API's secret, placement by
//! region across media nodes, and draining a media node.
//!
//! Chat is written the way media nodes write it, through the internal RPC
//! (`POST /internal/v1/chat`, MessagePack), with a `client_msg_id` per
//! message so that a retry after a lost reply is safe. Every check reads
//! history back through the public API of every node.
//!
//! The partition test needs `nft` (Debian's nftables) and root in the
//! test's network namespace, which `scripts/test.sh` provides.

mod common;

use common::cluster::{token_claims, Cluster, FakeMediaNode};
use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use veche_protocol::chat::ChatMessage;
use veche_protocol::error::ErrorBody;
use veche_protocol::rpc::{CommitChat, MessagesPage, RPC_COMMIT_CHAT};
use veche_protocol::{ParticipantId, RoomId};

/// A failover must be over within this long: from the SIGKILL until every
/// surviving node names the same new leader.
const FAILOVER_BUDGET: Duration = Duration::from_secs(2);
/// Timeout of one chat commit. The control plane itself looks for a leader
/// for up to 10 s before giving up, so this is longer.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(12);
/// How long a node may take to answer reads again after a restart or a
/// healed partition.
const CATCH_UP: Duration = Duration::from_secs(20);

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

/// A room: its internal id (for the chat RPC) and its slug (for the API).
#[derive(Clone)]
struct Room {
    id: RoomId,
    slug: String,
    name: String,
}

async fn new_room(base: &str, name: &str) -> Room {
    let room = create_room(base, name).await;
    Room {
        id: RoomId(room["id"].as_u64().expect("room id")),
        slug: str_field(&room, "slug").to_owned(),
        name: name.to_owned(),
    }
}

/// The chat message `client_msg_id` as a media node would commit it.
fn chat(room: &Room, client_msg_id: &str) -> CommitChat {
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
async fn commit(
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
async fn history(base: &str, slug: &str) -> Result<Vec<ChatMessage>, String> {
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
async fn history_of(cluster: &Cluster, id: u64, room: &Room) -> Vec<ChatMessage> {
    let base = cluster.base(id);
    wait_for(
        &format!("node {id} serves the history of room {}", room.slug),
        CATCH_UP,
        async || history(&base, &room.slug).await,
    )
    .await
}

fn summary(messages: &[ChatMessage]) -> String {
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
fn assert_exactly_once(node: u64, history: &[ChatMessage], acked: &[ChatMessage]) {
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
struct Written {
    /// Every acknowledged message.
    acked: Vec<ChatMessage>,
    /// Failed attempts (each was retried).
    failed_attempts: usize,
    /// Why attempts failed, with counts.
    failures: BTreeMap<String, usize>,
    /// The longest time from first sending a message to its acknowledgement.
    slowest_ack: Duration,
}

/// Commits chat messages continuously in [`WRITER_LANES`] concurrent
/// lanes, each one message after another with a fresh `client_msg_id`,
/// sending each attempt to the next node of `targets` in turn. A failed
/// attempt is retried, with the same `client_msg_id`, until acknowledged:
/// nothing it sends is abandoned, even when asked to stop. Several lanes
/// keep requests in flight on every node, so a killed node takes some
/// with it whose outcome the sender cannot know.
struct Writer {
    targets: Arc<Mutex<Vec<String>>>,
    acked: Arc<Mutex<Vec<ChatMessage>>>,
    stop: Arc<AtomicBool>,
    lanes: Vec<tokio::task::JoinHandle<Written>>,
}

const WRITER_LANES: usize = 3;
/// How long a lane waits between two messages, and before a retry.
const WRITER_PACE: Duration = Duration::from_millis(10);
const WRITER_RETRY_PAUSE: Duration = Duration::from_millis(50);

impl Writer {
    fn start(cluster: &Cluster, room: &Room) -> Writer {
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

    fn acked(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    fn set_targets(&self, cluster: &Cluster) {
        let bases: Vec<String> = cluster.ids().iter().map(|id| cluster.base(*id)).collect();
        assert!(!bases.is_empty(), "no running node to write to");
        *self.targets.lock().expect("lock") = bases;
    }

    /// Waits until `more` further messages are acknowledged.
    async fn wait_for_more(&self, more: usize, timeout: Duration) {
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
    async fn stop(self) -> Written {
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
async fn assert_every_node_has_exactly(cluster: &Cluster, room: &Room, acked: &[ChatMessage]) {
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

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_during_chat_writes_a_new_leader_takes_over_within_2s_and_every_acknowledged_message_is_on_every_node_once(
) {
    let mut cluster = Cluster::start(3).await;
    let room = new_room(&cluster.base(1), "Failover").await;
    let writer = Writer::start(&cluster, &room);
    writer.wait_for_more(30, secs(20)).await;

    let old = cluster.wait_for_leader(secs(5)).await;
    cluster.kill(old);
    let killed_at = Instant::now();
    // Until the new leader is known the writer keeps the dead node in its
    // rotation, as a client that has not noticed yet would: attempts on it
    // fail and are retried elsewhere.
    let new = cluster.wait_for_leader(secs(10)).await;
    let failover = killed_at.elapsed();
    writer.set_targets(&cluster);
    eprintln!(
        "FAILOVER: node {old} killed; node {new} leads, as every survivor agrees, after {} ms",
        failover.as_millis()
    );
    assert_ne!(new, old, "the killed node cannot still be the leader");
    assert!(
        failover < FAILOVER_BUDGET,
        "a new leader took {failover:?} to take over; the budget is {FAILOVER_BUDGET:?}"
    );

    // Writes go on under the new leader, then the old one comes back.
    writer.wait_for_more(30, secs(20)).await;
    cluster.restart(old);
    writer.set_targets(&cluster);
    cluster.wait_for_leader(secs(10)).await;
    writer.wait_for_more(30, secs(20)).await;
    let written = writer.stop().await;

    assert_every_node_has_exactly(&cluster, &room, &written.acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_follower_catches_up_after_the_network_heals() {
    let cluster = Cluster::start(3).await;
    let room = new_room(&cluster.base(1), "Partition").await;
    let leader = cluster.wait_for_leader(secs(5)).await;
    let ids = cluster.ids();
    let cut = *ids.iter().find(|id| **id != leader).expect("a follower");
    let others: Vec<u64> = ids.iter().copied().filter(|id| *id != cut).collect();
    // Everything so far has reached the follower.
    history_of(&cluster, cut, &room).await;

    cluster.partition(cut);
    // A reader on the cut-off node must not be served stale history: its
    // read barrier needs the leader, so it waits, then refuses.
    let stale_read = tokio::spawn({
        let url = format!("{}/api/rooms/{}/messages", cluster.base(cut), room.slug);
        async move {
            let started = Instant::now();
            let reply = http_get(&url).await;
            (reply, started.elapsed())
        }
    });
    let http = client(COMMIT_TIMEOUT);
    let mut acked = Vec::new();
    for i in 0..30 {
        let via = others[i % others.len()];
        let msg = commit(
            &http,
            &cluster.base(via),
            cluster.secret(),
            &chat(&room, &format!("p{i}")),
        )
        .await
        .unwrap_or_else(|e| {
            panic!("with node {cut} cut off, a write through node {via} failed: {e}")
        });
        acked.push(msg);
    }
    let applied = |s: &serde_json::Value| s["last_applied"].as_u64().unwrap_or(0);
    let leader_view = cluster.status(leader).await.expect("the leader's status");
    let cut_view = cluster
        .status(cut)
        .await
        .expect("the cut-off node's status");
    assert!(
        applied(&cut_view) < applied(&leader_view),
        "the cut-off node {cut} applied as much as the leader; partition ineffective? \
         cut off: {cut_view}, leader: {leader_view}"
    );
    let before = applied(&cut_view);
    // Long enough for the cut-off node's election timer to fire: it gives
    // up on the old leader, and will come back with a higher term.
    wait_for(
        &format!("the cut-off node {cut} no longer follows leader {leader}"),
        secs(10),
        async || {
            let s = cluster.status(cut).await?;
            if s["state"] != "Follower" || s["leader"]["id"].as_u64() != Some(leader) {
                Ok(())
            } else {
                Err(format!("state {}, leader {}", s["state"], s["leader"]))
            }
        },
    )
    .await;
    let (reply, took) = stale_read.await.expect("the reader task");
    eprintln!(
        "a read on the cut-off node answered {} after {} ms",
        reply.status,
        took.as_millis()
    );
    reply.assert_error(503, "unavailable");

    cluster.heal(cut);
    let healed_at = Instant::now();
    let expected = history_of(&cluster, leader, &room).await;
    assert_exactly_once(leader, &expected, &acked);
    let base = cluster.base(cut);
    wait_for(
        &format!("node {cut} serves the same history as the leader after the heal"),
        CATCH_UP,
        async || {
            let h = history(&base, &room.slug).await?;
            if h == expected {
                Ok(())
            } else {
                Err(format!("node {cut} serves {}", summary(&h)))
            }
        },
    )
    .await;
    eprintln!(
        "node {cut} caught up from applied index {before} within {} ms of the heal",
        healed_at.elapsed().as_millis()
    );
    cluster.wait_for_leader(secs(10)).await;
    assert_every_node_has_exactly(&cluster, &room, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_cluster_restart_keeps_rooms_and_history() {
    let mut cluster = Cluster::start(3).await;
    let room = new_room(&cluster.base(2), "Survives a blackout").await;
    let http = client(COMMIT_TIMEOUT);
    let mut acked = Vec::new();
    for i in 0..20 {
        let via = cluster.ids()[i % 3];
        let msg = commit(
            &http,
            &cluster.base(via),
            cluster.secret(),
            &chat(&room, &format!("r{i}")),
        )
        .await
        .unwrap_or_else(|e| panic!("a write through node {via} failed: {e}"));
        acked.push(msg);
    }
    assert_every_node_has_exactly(&cluster, &room, &acked).await;

    for id in cluster.ids() {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.restart(id);
    }
    cluster.wait_for_leader(secs(15)).await;

    for id in cluster.ids() {
        let reply = http_get(&format!("{}/api/rooms/{}", cluster.base(id), room.slug)).await;
        assert_eq!(
            reply.status, 200,
            "node {id}: the room after restart: {}",
            reply.body
        );
        assert_eq!(
            reply.json()["name"],
            room.name.as_str(),
            "node {id}: {}",
            reply.body
        );
    }
    assert_every_node_has_exactly(&cluster, &room, &acked).await;

    // And the restarted cluster takes writes again.
    let more = commit(
        &http,
        &cluster.base(1),
        cluster.secret(),
        &chat(&room, "after-restart"),
    )
    .await
    .unwrap_or_else(|e| panic!("a write after the restart failed: {e}"));
    acked.push(more);
    assert_every_node_has_exactly(&cluster, &room, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fourth_node_joins_and_an_old_one_leaves_while_writes_continue() {
    let mut cluster = Cluster::start(3).await;
    let room = new_room(&cluster.base(1), "Membership").await;
    let writer = Writer::start(&cluster, &room);
    writer.wait_for_more(20, secs(20)).await;

    cluster.start_joining(4).await;
    let base4 = cluster.base(4);
    let add = cluster.cli_ok(&["add", "4", &base4]);
    assert!(
        add.contains("Node 4 is now a voter"),
        "`veche cluster add` did not confirm: {add}"
    );
    writer.set_targets(&cluster);
    writer.wait_for_more(20, secs(20)).await;

    let leader = cluster.wait_for_leader(secs(10)).await;
    let gone = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a non-leader");
    // The operator stops sending traffic to the node before removing it.
    let remaining: Vec<String> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != gone)
        .map(|id| cluster.base(id))
        .collect();
    *writer.targets.lock().expect("lock") = remaining;
    cluster.cli_ok(&["remove", &gone.to_string()]);
    cluster.kill(gone);
    writer.set_targets(&cluster);
    writer.wait_for_more(20, secs(20)).await;

    let mut expected: Vec<u64> = vec![1, 2, 3, 4];
    expected.retain(|id| *id != gone);
    for id in cluster.ids() {
        wait_for(
            &format!("node {id} lists members {expected:?}, all voters"),
            secs(10),
            async || {
                let s = cluster.status(id).await?;
                let members: Vec<(u64, bool)> = s["members"]
                    .as_array()
                    .ok_or_else(|| format!("no members in {s}"))?
                    .iter()
                    .map(|m| (m["id"].as_u64().unwrap_or(0), m["voter"] == true))
                    .collect();
                let ids: Vec<u64> = members.iter().map(|(id, _)| *id).collect();
                if ids == expected && members.iter().all(|(_, voter)| *voter) {
                    Ok(())
                } else {
                    Err(format!("members (id, voter) = {members:?}"))
                }
            },
        )
        .await;
    }
    let status_text = cluster.cli_ok(&["status"]);
    assert!(
        status_text.contains(&base4) && !status_text.contains(&cluster.base(gone)),
        "`veche cluster status` should list node 4 and not node {gone}:\n{status_text}"
    );

    let written = writer.stop().await;
    assert_eq!(cluster.ids(), expected, "running members");
    assert_every_node_has_exactly(&cluster, &room, &written.acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_created_through_a_follower_is_readable_on_every_node() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(secs(5)).await;
    let follower = *cluster
        .ids()
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    let reply = http_post_json(
        &format!("{}/api/rooms", cluster.base(follower)),
        &json!({ "name": "Made on a follower" }),
    )
    .await;
    assert_eq!(
        reply.status, 201,
        "POST /api/rooms on follower {follower}: {}",
        reply.body
    );
    let slug = str_field(&reply.json(), "slug").to_owned();
    // Reads are linearizable: no node may miss the acknowledged room.
    for id in cluster.ids() {
        let reply = http_get(&format!("{}/api/rooms/{slug}", cluster.base(id))).await;
        assert_eq!(reply.status, 200, "node {id}: GET the room: {}", reply.body);
        assert_eq!(reply.json()["name"], "Made on a follower", "node {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_and_the_cli_refuse_a_missing_or_wrong_cluster_secret() {
    let cluster = Cluster::start(3).await;
    let http = client(secs(10));
    let base = cluster.base(1);
    let admin = format!("{base}/api/admin/cluster");
    let members = format!("{admin}/members");
    for (label, auth) in [
        ("no secret", None),
        ("a wrong secret", Some("wrong-secret")),
    ] {
        let with = |req: reqwest::RequestBuilder| match auth {
            Some(s) => req.bearer_auth(s),
            None => req,
        };
        let requests = [
            ("GET /api/admin/cluster", with(http.get(&admin))),
            (
                "POST /api/admin/cluster/members",
                with(
                    http.post(&members)
                        .json(&json!({ "id": 9, "addr": "http://127.0.0.9:1" })),
                ),
            ),
            (
                "DELETE /api/admin/cluster/members/2",
                with(http.delete(format!("{members}/2"))),
            ),
            (
                "POST /internal/v1/chat",
                with(http.post(format!("{base}{RPC_COMMIT_CHAT}"))),
            ),
        ];
        for (what, req) in requests {
            let status = req.send().await.expect("request").status();
            assert_eq!(status, 401, "{what} with {label}");
        }
    }
    // The refused removal did nothing.
    let view = cluster.status(1).await.expect("status with the secret");
    assert_eq!(
        view["members"].as_array().map(Vec::len),
        Some(3),
        "members: {view}"
    );

    let out = cluster.cli(&["--cluster-secret", "wrong-secret", "status"]);
    assert!(!out.status.success(), "the CLI accepted a wrong secret");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused the cluster secret"),
        "the CLI should say the secret was refused: {stderr}"
    );
    cluster.cli_ok(&["status"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_are_placed_on_a_registered_media_node_until_it_dies() {
    let mut cluster = Cluster::start(3).await;
    let media = cluster.start_media_node(1).await;
    let leader = cluster.wait_for_leader(secs(5)).await;
    let follower = *cluster
        .ids()
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    let room = new_room(&cluster.base(follower), "Placed").await;

    // A join through any node is sent to the media node's WebSocket.
    let media_ws = format!("{}/media/ws", media.replacen("http://", "ws://", 1));
    for id in cluster.ids() {
        let joined = join(&cluster.base(id), &room.slug, &format!("Guest {id}")).await;
        assert_eq!(
            str_field(&joined, "ws_url"),
            media_ws,
            "join through node {id}"
        );
    }
    let alive = |s: &serde_json::Value| {
        s["media_nodes"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["node_id"] == 1))
            .map(|n| n["alive"] == true)
    };
    let view = cluster.status(leader).await.expect("the leader's status");
    assert_eq!(alive(&view), Some(true), "media nodes: {view}");

    // Once it stops sending heartbeats, the leader stops placing people on
    // it, and a join says so instead of handing out a dead address.
    cluster.kill_media_node(1);
    wait_for("the leader marks media node 1 dead", secs(10), async || {
        let s = cluster.status(leader).await?;
        match alive(&s) {
            Some(false) => Ok(()),
            _ => Err(format!("media nodes: {}", s["media_nodes"])),
        }
    })
    .await;
    let reply = http_post_json(
        &format!("{}/api/rooms/{}/join", cluster.base(follower), room.slug),
        &json!({ "display_name": "Latecomer" }),
    )
    .await;
    reply.assert_error(503, "unavailable");
}

/// `POST {base}/api/rooms/{slug}/join` with `body`, and the
/// `x-veche-region` header if `region` is set.
async fn join_with(base: &str, slug: &str, region: Option<&str>, body: serde_json::Value) -> Reply {
    let headers: Vec<(&str, &str)> = region
        .map(|r| (veche_protocol::rpc::REGION_HEADER, r))
        .into_iter()
        .collect();
    http_post_json_with_headers(&format!("{base}/api/rooms/{slug}/join"), &body, &headers).await
}

/// Joins and checks that the participant was placed on `node`; returns the
/// join response.
async fn join_lands_on(
    base: &str,
    slug: &str,
    region: Option<&str>,
    body: serde_json::Value,
    node: &FakeMediaNode,
) -> serde_json::Value {
    let reply = join_with(base, slug, region, body.clone()).await;
    assert_eq!(
        reply.status, 200,
        "join {body} with region header {region:?}: {}",
        reply.body
    );
    let joined = reply.json();
    assert_eq!(
        joined["node_id"],
        node.id(),
        "join {body} with region header {region:?} went to the wrong node: {joined}"
    );
    assert_eq!(str_field(&joined, "ws_url"), node.ws_url());
    assert_eq!(
        token_claims(str_field(&joined, "token"))["node_id"],
        node.id()
    );
    joined
}

/// The relay peers a token names in `room_nodes`, as (id, relay address).
fn token_room_nodes(joined: &serde_json::Value) -> Vec<(u64, String)> {
    let claims = token_claims(str_field(joined, "token"));
    claims["room_nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| {
                    (
                        n["node_id"].as_u64().expect("node_id"),
                        n["relay_addr"].as_str().expect("relay_addr").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_go_to_the_media_node_of_their_region_and_a_room_spans_both() {
    let cluster = Cluster::start(3).await;
    let eu = cluster.fake_media_node(1, "eu", 0, true).await;
    let us = cluster.fake_media_node(2, "us", 0, true).await;
    let leader = cluster.wait_for_leader(secs(5)).await;
    // Placement is the leader's; joining through a follower exercises the
    // region and the avoided node travelling in the leader RPC.
    let follower = *cluster
        .ids()
        .iter()
        .find(|id| **id != leader)
        .expect("a follower");
    let base = cluster.base(follower);
    let room = new_room(&base, "Across the ocean").await;
    let ann = json!({ "display_name": "Ann" });

    let first = join_lands_on(&base, &room.slug, Some("eu"), ann.clone(), &eu).await;
    assert_eq!(
        token_room_nodes(&first),
        vec![],
        "the room was on no node yet"
    );
    let second = join_lands_on(&base, &room.slug, Some("us"), ann.clone(), &us).await;
    assert_eq!(
        token_room_nodes(&second),
        vec![(1, eu.relay_addr().expect("relay").to_owned())],
        "the us node must link to the eu node already hosting the room"
    );
    // The body's region counts when no header is set; the header wins.
    join_lands_on(
        &base,
        &room.slug,
        None,
        json!({ "display_name": "Bo", "region": "eu" }),
        &eu,
    )
    .await;
    join_lands_on(
        &base,
        &room.slug,
        Some("us"),
        json!({ "display_name": "Cy", "region": "eu" }),
        &us,
    )
    .await;
    // A client that cannot reach its region's node goes elsewhere.
    join_lands_on(
        &base,
        &room.slug,
        Some("eu"),
        json!({ "display_name": "Di", "unreachable_node": 1 }),
        &us,
    )
    .await;

    // Both nodes report the room: each heartbeat reply names the other.
    eu.set_load(2, &[room.id]);
    us.set_load(2, &[room.id]);
    let names = |peer: &FakeMediaNode| {
        let (id, relay) = (peer.id(), peer.relay_addr().map(str::to_owned));
        move |r: &veche_protocol::rpc::HeartbeatReply| {
            r.room_nodes.iter().any(|rn| {
                rn.room_id == room.id
                    && rn.nodes.len() == 1
                    && rn.nodes[0].node_id.0 == id
                    && Some(&rn.nodes[0].relay_addr) == relay.as_ref()
            })
        }
    };
    eu.wait_for_reply("room's other node is node 2", names(&us))
        .await;
    us.wait_for_reply("room's other node is node 1", names(&eu))
        .await;
    let reply = eu.last_reply().expect("a reply");
    assert!(reply.registered && !reply.draining, "{reply:?}");
}

/// Node `node`'s entry in the leader's `media_nodes`, as JSON.
async fn media_node_status(cluster: &Cluster, node: u64) -> Result<serde_json::Value, String> {
    let leader = cluster.wait_for_leader(secs(5)).await;
    let s = cluster.status(leader).await?;
    s["media_nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["node_id"] == node).cloned())
        .ok_or_else(|| format!("no media node {node} in {s}"))
}

/// The `veche cluster status` table row of media node `node`, split into
/// columns (MEDIA ALIVE DRAINING REGION PEOPLE ...).
fn status_row(cluster: &Cluster, node: u64) -> Vec<String> {
    let text = cluster.cli_ok(&["status"]);
    let header = text
        .lines()
        .position(|l| l.starts_with("MEDIA"))
        .unwrap_or_else(|| panic!("no media-node table in:\n{text}"));
    assert!(
        text.lines()
            .nth(header)
            .is_some_and(|h| h.contains("DRAINING")),
        "no DRAINING column in:\n{text}"
    );
    text.lines()
        .skip(header + 1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(&node.to_string()))
        .unwrap_or_else(|| panic!("no row for media node {node} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drained_media_node_gets_no_new_joins_and_cluster_drain_waits_until_it_is_empty() {
    let cluster = Arc::new(Cluster::start(3).await);
    let one = cluster.fake_media_node(1, "", 0, true).await;
    let two = cluster.fake_media_node(2, "", 0, true).await;
    let base = cluster.base(1);
    let room = new_room(&base, "Moving house").await;
    // Two people are in the room on node 1, which is the less loaded node
    // otherwise: without draining, the next joiner would go there.
    one.set_load(2, &[room.id]);
    two.set_load(5, &[]);
    wait_for("the leader knows both nodes' load", secs(10), async || {
        let (n1, n2) = (
            media_node_status(&cluster, 1).await?,
            media_node_status(&cluster, 2).await?,
        );
        if n1["participants"] == 2 && n1["rooms"] == 1 && n2["participants"] == 5 {
            Ok(())
        } else {
            Err(format!("node 1: {n1}, node 2: {n2}"))
        }
    })
    .await;
    let hosted = join_with(&base, &room.slug, None, json!({ "display_name": "Ann" })).await;
    assert_eq!(hosted.json()["node_id"], 1, "{}", hosted.body);
    assert_eq!(status_row(&cluster, 1)[2], "no");

    let drain = tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || cluster.cli(&["drain", "1", "--timeout", "20"])
    });
    wait_for(
        "the leader shows media node 1 draining",
        secs(10),
        async || {
            let n = media_node_status(&cluster, 1).await?;
            if n["draining"] == true {
                Ok(())
            } else {
                Err(format!("node 1: {n}"))
            }
        },
    )
    .await;
    one.wait_for_reply("it is draining", |r| r.draining).await;
    assert!(!two.last_reply().expect("a reply").draining);
    assert_eq!(status_row(&cluster, 1)[2], "yes");
    // Node 1 still hosts the room, but joiners go to node 2 now, and are
    // told that node 1 hosts it (its people are still there).
    for name in ["Bo", "Cy"] {
        let reply = join_with(&base, &room.slug, None, json!({ "display_name": name })).await;
        let joined = reply.json();
        assert_eq!(joined["node_id"], 2, "a join while node 1 drains: {joined}");
        assert_eq!(
            token_room_nodes(&joined),
            vec![(1, one.relay_addr().expect("relay").to_owned())]
        );
    }
    assert!(
        !drain.is_finished(),
        "the drain finished with people on node 1"
    );

    // The last participants leave node 1: the drain command succeeds.
    one.set_load(0, &[]);
    let out = tokio::time::timeout(secs(15), drain)
        .await
        .expect("`veche cluster drain 1` did not finish once node 1 was empty")
        .expect("the CLI thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`veche cluster drain 1` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("node 1: ")
            && stdout.contains("participants left")
            && stdout.contains("no participants left"),
        "the drain should report progress and the end:\n{stdout}"
    );

    // Draining the only node left in service is refused.
    let out = cluster.cli(&["drain", "2"]);
    assert!(
        !out.status.success(),
        "draining the last node in service succeeded"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid_state"), "{stderr}");
    assert_eq!(status_row(&cluster, 2)[2], "no");

    // Back in service, node 1 takes joiners again; now node 2, idle,
    // drains at once.
    cluster.cli_ok(&["undrain", "1"]);
    assert_eq!(status_row(&cluster, 1)[2], "no");
    two.set_load(0, &[]);
    wait_for("the leader knows node 2 is idle", secs(10), async || {
        let n = media_node_status(&cluster, 2).await?;
        if n["participants"] == 0 {
            Ok(())
        } else {
            Err(format!("node 2: {n}"))
        }
    })
    .await;
    let started = Instant::now();
    cluster.cli_ok(&["drain", "2", "--timeout", "10"]);
    // No poll needed: the drain's own answer shows the node empty.
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "draining an idle node took {:?}",
        started.elapsed()
    );
    let reply = join_with(&base, &room.slug, None, json!({ "display_name": "Di" })).await;
    assert_eq!(reply.json()["node_id"], 1, "{}", reply.body);

    // A node process that starts again registers again: back in service.
    two.register_again().await;
    wait_for("node 2 is in service again", secs(10), async || {
        let n = media_node_status(&cluster, 2).await?;
        if n["draining"] == false {
            Ok(())
        } else {
            Err(format!("node 2: {n}"))
        }
    })
    .await;
    two.wait_for_reply("it is not draining", |r| !r.draining)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_drain_gives_up_after_its_timeout_and_the_node_stays_draining() {
    let cluster = Cluster::start(1).await;
    let one = cluster.fake_media_node(1, "", 0, true).await;
    let _two = cluster.fake_media_node(2, "", 0, true).await;
    one.set_load(3, &[RoomId(1)]);
    wait_for(
        "the leader knows node 1 has 3 participants",
        secs(10),
        async || {
            let n = media_node_status(&cluster, 1).await?;
            if n["participants"] == 3 {
                Ok(())
            } else {
                Err(format!("node 1: {n}"))
            }
        },
    )
    .await;
    let out = cluster.cli(&["drain", "1", "--timeout", "2"]);
    assert!(!out.status.success(), "the drain of a busy node succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("still has 3 participants") && stderr.contains("undrain"),
        "the timeout should say what is left and how to undo: {stderr}"
    );
    assert_eq!(
        media_node_status(&cluster, 1).await.unwrap()["draining"],
        true
    );
    // A node that stops beating counts as drained.
    one.stop();
    let out = cluster.cli_ok(&["drain", "1", "--timeout", "10"]);
    assert!(out.contains("stopped sending heartbeats"), "{out}");
}
