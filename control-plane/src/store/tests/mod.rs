//! Behaviour tests of the replicated store: openraft's storage conformance
//! suite, restarts, snapshots, idempotent chat, and Raft over HTTP.

use super::db;
use super::log_store::LogStore;
use super::model::{
    Command, CommandError, CommandOutput, CommandResult, MediaNodeRecord, NewRoom, Room,
};
use super::queries;
use super::state_machine::StateMachine;
use super::types::{Raft, TypeConfig};
use super::{default_raft_config, open_storage, raft_router, RaftStore, Store};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    BasicNode, RaftLogReader, RaftMetrics, SnapshotPolicy, StorageError, StorageIOError,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;
use veche_protocol::chat::ChatMessage;
use veche_protocol::{ParticipantId, RoomId, RoomSlug};

/// Upper bound for anything a test waits for. Generous: CI disks fsync
/// slowly and elections take up to `election_timeout_max`.
const WAIT: Duration = Duration::from_secs(20);

struct RedbBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for RedbBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let (log, sm) =
            open_storage(&dir.path().join("raft.redb")).map_err(|e| StorageIOError::write(&e))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn redb_storage_passes_openraft_conformance_suite() {
    // `Suite` runs each case on its own runtime, so this is a plain test.
    Suite::test_all(RedbBuilder).expect("conformance suite");
}

// ---- helpers ------------------------------------------------------------

async fn open_single(dir: &Path) -> RaftStore {
    open_single_with(dir, default_raft_config()).await
}

async fn open_single_with(dir: &Path, config: openraft::Config) -> RaftStore {
    let store = RaftStore::open(1, "http://127.0.0.1:9".to_owned(), dir, config)
        .await
        .expect("open store");
    store
        .initialize_single_if_new()
        .await
        .expect("initialize single node");
    store
}

/// Waits until `pred` holds for `raft`'s metrics; on timeout, fails naming
/// what did not happen and showing the metrics as they were.
async fn wait_for(
    raft: &Raft,
    what: &str,
    pred: impl Fn(&RaftMetrics<u64, BasicNode>) -> bool + Send,
) -> RaftMetrics<u64, BasicNode> {
    match raft.wait(Some(WAIT)).metrics(pred, what).await {
        Ok(m) => m,
        Err(e) => {
            let m = raft.metrics().borrow().clone();
            panic!("timed out waiting for: {what} ({e}); metrics now: {m:?}");
        }
    }
}

/// Triggers a snapshot and waits until it covers everything applied so
/// far; returns the snapshot's last log id. (Metrics are published after
/// a write returns, so "applied so far" is read from the same report.)
async fn snapshot_now(raft: &Raft) -> openraft::LogId<u64> {
    raft.trigger().snapshot().await.unwrap();
    let m = wait_for(raft, "snapshot covers every applied entry", |m| {
        m.snapshot.is_some() && m.snapshot == m.last_applied
    })
    .await;
    m.snapshot.unwrap()
}

fn slug(n: u8) -> RoomSlug {
    RoomSlug::from_random([n; 16])
}

fn participant(n: u8) -> ParticipantId {
    ParticipantId::from_random([n; 8])
}

async fn create_room(store: &RaftStore, slug: RoomSlug, name: &str) -> Room {
    let out = store
        .write(Command::create_room(NewRoom::open(
            slug,
            name.to_owned(),
            1_700_000_000_000,
        )))
        .await
        .expect("write CreateRoom");
    match out {
        Ok(CommandOutput::Room(room)) => room,
        other => panic!("CreateRoom returned {other:?}"),
    }
}

fn post(room: RoomId, who: &ParticipantId, text: &str, client_msg_id: Option<&str>) -> Command {
    Command::PostChat {
        room_id: room,
        participant_id: who.clone(),
        display_name: "Ada".to_owned(),
        text: text.to_owned(),
        sent_at_ms: 1_700_000_000_001,
        client_msg_id: client_msg_id.map(str::to_owned),
    }
}

async fn post_ok(store: &RaftStore, cmd: Command) -> ChatMessage {
    match store.write(cmd).await.expect("write PostChat") {
        Ok(CommandOutput::Chat(m)) => m,
        other => panic!("PostChat returned {other:?}"),
    }
}

/// Creates room "standup" and posts `n` messages "m0".."m{n-1}".
async fn room_with_messages(store: &RaftStore, n: usize) -> (Room, Vec<ChatMessage>) {
    let room = create_room(store, slug(7), "standup").await;
    let who = participant(1);
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        sent.push(post_ok(store, post(room.id, &who, &format!("m{i}"), None)).await);
    }
    (room, sent)
}

/// Checks that the store holds exactly `room` and `sent`, paging by 100.
async fn assert_history(store: &RaftStore, room: &Room, sent: &[ChatMessage]) {
    assert_eq!(
        store.room_by_slug(&room.slug).await.unwrap().as_ref(),
        Some(room)
    );
    assert_eq!(
        store.room_by_id(room.id).await.unwrap().as_ref(),
        Some(room)
    );

    let (newest, has_more) = store.messages(room.id, None, 100).await.unwrap();
    let split = sent.len().saturating_sub(100);
    assert_eq!(newest, sent[split..], "newest page, oldest-first");
    assert_eq!(has_more, split > 0);
    if let Some(first) = newest.first() {
        let (older, has_more) = store.messages(room.id, Some(first.id), 100).await.unwrap();
        assert_eq!(older, sent[..split], "second page");
        assert!(!has_more);
    }
}

// ---- single node ----------------------------------------------------------

#[tokio::test]
async fn rooms_and_messages_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_single(dir.path()).await;
    let (room, sent) = room_with_messages(&store, 150).await;
    // Ids are commit-ordered log indexes.
    assert!(sent.windows(2).all(|w| w[0].id < w[1].id));
    assert!(sent[0].id.0 > room.id.0);
    let before = store.raft().metrics().borrow().clone();
    store.shutdown().await.unwrap();
    drop(store);

    let store = RaftStore::open(
        1,
        "http://127.0.0.1:9".to_owned(),
        dir.path(),
        default_raft_config(),
    )
    .await
    .unwrap();
    store.initialize_single_if_new().await.unwrap();
    let after = store.raft().metrics().borrow().clone();
    // Not re-initialized: the membership is still the one from the first
    // start's initialization entry, and at most the new term's blank
    // entry was appended.
    assert_eq!(after.membership_config, before.membership_config);
    assert_eq!(
        after
            .membership_config
            .membership()
            .voter_ids()
            .collect::<Vec<_>>(),
        vec![1]
    );
    let last = before.last_log_index.unwrap();
    assert!((last..=last + 1).contains(&after.last_log_index.unwrap()));

    let (newest, has_more) = store.messages(room.id, None, 100).await.unwrap();
    assert_eq!(newest.len(), 100);
    assert!(has_more);
    assert_eq!(newest, sent[50..]);
    let (older, has_more) = store
        .messages(room.id, Some(newest[0].id), 100)
        .await
        .unwrap();
    assert_eq!(older.len(), 50);
    assert!(!has_more);
    assert_eq!(older, sent[..50]);
    assert_eq!(store.room_by_slug(&room.slug).await.unwrap(), Some(room));
    store.shutdown().await.unwrap();
}

fn media_node(id: u64, relay_addr: Option<&str>) -> veche_protocol::rpc::MediaNodeInfo {
    veche_protocol::rpc::MediaNodeInfo {
        node_id: veche_protocol::NodeId(id),
        region: "eu".into(),
        ws_url: format!("wss://m{id}/media/ws"),
        capacity: 60,
        relay_addr: relay_addr.map(str::to_owned),
    }
}

fn set_draining(id: u64, draining: bool) -> Command {
    Command::SetMediaNodeDraining {
        node_id: veche_protocol::NodeId(id),
        draining,
    }
}

fn record(info: &veche_protocol::rpc::MediaNodeInfo, draining: bool) -> MediaNodeRecord {
    MediaNodeRecord {
        info: info.clone(),
        draining,
    }
}

#[test]
fn a_media_node_stored_before_the_drain_flag_existed_reads_as_not_draining() {
    let info = media_node(5, Some("10.0.0.5:4433"));
    let old_bytes = db::encode(&info).unwrap();
    let read: MediaNodeRecord = db::decode(&old_bytes).unwrap();
    assert_eq!(read, record(&info, false));
    // And a record round-trips with its flag.
    let bytes = db::encode(&record(&info, true)).unwrap();
    assert_eq!(
        db::decode::<MediaNodeRecord>(&bytes).unwrap(),
        record(&info, true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_entries_yet_every_message_gets_its_own_increasing_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open_single(dir.path()).await);
    let room = create_room(&store, slug(7), "busy").await;
    let before = store.raft().metrics().borrow().last_log_index.unwrap();
    let writers: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let who = participant((i % 7) as u8);
                let key = format!("k{i}");
                post_ok(&store, post(room.id, &who, &format!("m{i}"), Some(&key))).await
            })
        })
        .collect();
    let mut sent = Vec::new();
    for w in writers {
        sent.push(w.await.unwrap());
    }
    let entries = store.raft().metrics().borrow().last_log_index.unwrap() - before;
    assert!(
        entries < 200,
        "200 concurrent writes took {entries} log entries; they should share some"
    );
    let mut ids: Vec<u64> = sent.iter().map(|m| m.id.0).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200, "message ids are unique");
    assert!(ids[0] > room.id.0, "ids increase in commit order");
    // History is in id order and holds each message once.
    let (all, _) = store.messages(room.id, None, 100).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    // Ids keep increasing across a restart (the counter is durable).
    let max_before = *ids.last().unwrap();
    std::sync::Arc::into_inner(store)
        .unwrap()
        .shutdown()
        .await
        .unwrap();
    let store = open_single(dir.path()).await;
    let after = post_ok(&store, post(room.id, &participant(1), "later", None)).await;
    assert!(after.id.0 > max_before, "{} <= {max_before}", after.id.0);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_batch_applies_each_command_with_its_own_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_single(dir.path()).await;
    let room = create_room(&store, slug(8), "batch").await;
    let ada = participant(1);
    let out = store
        .write(Command::Batch(vec![
            post(room.id, &ada, "one", Some("b1")),
            post(RoomId(999_999), &ada, "nowhere", None),
            post(room.id, &ada, "two", Some("b2")),
            Command::Batch(vec![]),
        ]))
        .await
        .unwrap();
    let Ok(CommandOutput::Batch(results)) = out else {
        panic!("batch answered {out:?}");
    };
    assert_eq!(results.len(), 4);
    let id = |r: &CommandResult| match r {
        Ok(CommandOutput::Chat(m)) => m.id.0,
        other => panic!("{other:?}"),
    };
    assert!(id(&results[0]) < id(&results[2]));
    assert_eq!(results[1], Err(CommandError::NoSuchRoom));
    assert_eq!(results[3], Err(CommandError::NestedBatch));
    store.shutdown().await.unwrap();
}

mod http;
mod reference;
mod snapshots;
