//! Behaviour tests of the replicated store: openraft's storage conformance
//! suite, restarts, snapshots, idempotent chat, and Raft over HTTP.

use super::db;
use super::log_store::LogStore;
use super::model::{Command, CommandError, CommandOutput, CommandResult, MediaNodeRecord, Room};
use super::state_machine::{queries, StateMachine};
use super::types::{Raft, TypeConfig};
use super::{default_raft_config, open_storage, raft_router, RaftStore};
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
        .write(Command::CreateRoom {
            slug,
            name: name.to_owned(),
            created_at_ms: 1_700_000_000_000,
        })
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

#[tokio::test]
async fn post_chat_retry_with_same_client_msg_id_returns_the_stored_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_single(dir.path()).await;
    let room = create_room(&store, slug(1), "retry").await;
    let (ada, bob) = (participant(1), participant(2));

    let first = post_ok(&store, post(room.id, &ada, "hello", Some("c-1"))).await;
    let retry = post_ok(&store, post(room.id, &ada, "hello", Some("c-1"))).await;
    assert_eq!(retry, first, "a retry returns the stored message");
    assert_eq!(first.client_msg_id.as_deref(), Some("c-1"));

    // The key is per participant, and messages without a key never merge.
    let bobs = post_ok(&store, post(room.id, &bob, "hello", Some("c-1"))).await;
    assert_ne!(bobs.id, first.id);
    let plain1 = post_ok(&store, post(room.id, &ada, "again", None)).await;
    let plain2 = post_ok(&store, post(room.id, &ada, "again", None)).await;
    assert_ne!(plain1.id, plain2.id);

    let (all, has_more) = store.messages(room.id, None, 100).await.unwrap();
    assert!(!has_more);
    assert_eq!(all, vec![first, bobs, plain1, plain2]);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn post_chat_to_unknown_room_is_refused_with_no_such_room() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_single(dir.path()).await;
    let result = store
        .write(post(RoomId(4242), &participant(1), "anyone?", Some("c")))
        .await
        .expect("the command commits even though it is refused");
    assert_eq!(result, Err(CommandError::NoSuchRoom));
    let (msgs, has_more) = store.messages(RoomId(4242), None, 10).await.unwrap();
    assert!(msgs.is_empty() && !has_more);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn create_room_with_taken_slug_is_refused_and_first_room_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_single(dir.path()).await;
    let room = create_room(&store, slug(3), "first").await;
    let again = store
        .write(Command::CreateRoom {
            slug: slug(3),
            name: "second".to_owned(),
            created_at_ms: 5,
        })
        .await
        .unwrap();
    assert_eq!(again, Err(CommandError::SlugTaken));
    assert_eq!(store.room_by_slug(&slug(3)).await.unwrap(), Some(room));
    assert_eq!(store.room_by_slug(&slug(4)).await.unwrap(), None);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn create_room_retried_after_a_lost_reply_returns_the_same_room() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_single(dir.path()).await;
    let cmd = Command::CreateRoom {
        slug: slug(5),
        name: "retried".to_owned(),
        created_at_ms: 42,
    };
    assert!(cmd.is_idempotent());
    let first = store.write(cmd.clone()).await.unwrap();
    let again = store.write(cmd).await.unwrap();
    assert_eq!(first, again);
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

#[tokio::test]
async fn media_node_registrations_and_drain_flags_are_stored_and_survive_a_snapshot_install() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_single(dir.path()).await;
    let info = media_node(3, None);
    let out = store
        .write(Command::RegisterMediaNode { info: info.clone() })
        .await
        .unwrap();
    assert_eq!(out, Ok(CommandOutput::MediaNode(record(&info, false))));
    let drained = media_node(4, Some("10.0.0.4:4433"));
    store
        .write(Command::RegisterMediaNode {
            info: drained.clone(),
        })
        .await
        .unwrap()
        .unwrap();
    store.write(set_draining(4, true)).await.unwrap().unwrap();
    let expected = vec![record(&info, false), record(&drained, true)];
    assert_eq!(store.local().media_nodes().unwrap(), expected);
    let snapshot_at = snapshot_now(store.raft()).await;
    let snap = store
        .raft()
        .get_snapshot()
        .await
        .unwrap()
        .expect("a snapshot was built");
    assert_eq!(snap.meta.last_log_id, Some(snapshot_at));
    store.shutdown().await.unwrap();
    drop(store);

    // Install that snapshot on fresh storage: the registrations and the
    // drain flag come along.
    let fresh = tempfile::tempdir().unwrap();
    {
        let (_log, mut sm) = open_storage(&fresh.path().join("raft.redb")).unwrap();
        let mut data = sm.begin_receiving_snapshot().await.unwrap();
        *data = *snap.snapshot;
        sm.install_snapshot(&snap.meta, data).await.unwrap();
    }
    let store = open_single(fresh.path()).await;
    assert_eq!(store.local().media_nodes().unwrap(), expected);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_drain_flag_survives_a_restart_and_is_cleared_by_registering_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_single(dir.path()).await;
    let info = media_node(2, Some("10.0.0.2:4433"));
    store
        .write(Command::RegisterMediaNode { info: info.clone() })
        .await
        .unwrap()
        .unwrap();
    let cmd = set_draining(2, true);
    assert!(cmd.is_idempotent());
    let out = store.write(cmd.clone()).await.unwrap();
    assert_eq!(out, Ok(CommandOutput::MediaNode(record(&info, true))));
    // Again: the same answer, nothing changes.
    assert_eq!(store.write(cmd).await.unwrap(), out);
    // A node that never registered cannot be drained.
    assert_eq!(
        store.write(set_draining(9, true)).await.unwrap(),
        Err(CommandError::NoSuchMediaNode)
    );
    store.shutdown().await.unwrap();
    drop(store);

    let store = open_single(dir.path()).await;
    assert_eq!(
        store.local().media_nodes().unwrap(),
        vec![record(&info, true)],
        "the flag is durable"
    );
    // The node's process starts again and registers: back in service.
    store
        .write(Command::RegisterMediaNode { info: info.clone() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.local().media_nodes().unwrap(),
        vec![record(&info, false)]
    );
    // And an operator may drain and undrain it.
    store.write(set_draining(2, true)).await.unwrap().unwrap();
    store.write(set_draining(2, false)).await.unwrap().unwrap();
    assert_eq!(
        store.local().media_nodes().unwrap(),
        vec![record(&info, false)]
    );
    store.shutdown().await.unwrap();
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

#[tokio::test]
async fn signing_key_first_writer_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_single(dir.path()).await;
    assert_eq!(store.signing_key().await.unwrap(), None);
    let first = store
        .write(Command::InitSigningKey {
            pkcs8: vec![1, 2, 3],
        })
        .await
        .unwrap();
    assert_eq!(first, Ok(CommandOutput::SigningKey(vec![1, 2, 3])));
    let second = store
        .write(Command::InitSigningKey { pkcs8: vec![9, 9] })
        .await
        .unwrap();
    assert_eq!(second, Ok(CommandOutput::SigningKey(vec![1, 2, 3])));
    assert_eq!(store.signing_key().await.unwrap(), Some(vec![1, 2, 3]));
    store.shutdown().await.unwrap();
}

/// Forces a snapshot and purges the whole log, so that after the restart
/// the state can only come from the state-machine tables, not a replay.
#[tokio::test]
async fn snapshot_and_log_purge_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = default_raft_config();
    config.max_in_snapshot_log_to_keep = 0;
    let store = open_single_with(dir.path(), config.clone()).await;
    let (room, sent) = room_with_messages(&store, 120).await;
    store
        .write(Command::InitSigningKey { pkcs8: vec![7; 48] })
        .await
        .unwrap()
        .unwrap();
    let snap = snapshot_now(store.raft()).await;
    store.raft().trigger().purge_log(snap.index).await.unwrap();
    wait_for(store.raft(), "log purged up to the snapshot", |m| {
        m.purged == Some(snap)
    })
    .await;
    store.shutdown().await.unwrap();
    drop(store);

    // Nothing is left in the log to replay.
    {
        let (mut log, _sm) = open_storage(&dir.path().join("raft.redb")).unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(snap));
        assert_eq!(state.last_log_id, Some(snap));
        assert!(log.try_get_log_entries(..).await.unwrap().is_empty());
    }

    let store = open_single_with(dir.path(), config).await;
    assert_history(&store, &room, &sent).await;
    assert_eq!(store.signing_key().await.unwrap(), Some(vec![7; 48]));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn snapshot_installed_on_fresh_storage_restores_all_state() {
    let src_dir = tempfile::tempdir().unwrap();
    let store = open_single(src_dir.path()).await;
    let (room, sent) = room_with_messages(&store, 30).await;
    let ada = participant(1);
    let keyed = post_ok(&store, post(room.id, &ada, "keyed", Some("k-1"))).await;
    store
        .write(Command::InitSigningKey { pkcs8: vec![5; 32] })
        .await
        .unwrap()
        .unwrap();
    let snap = snapshot_now(store.raft()).await;
    let snapshot = store
        .raft()
        .get_snapshot()
        .await
        .unwrap()
        .expect("a current snapshot");
    assert_eq!(snapshot.meta.last_log_id, Some(snap));
    store.shutdown().await.unwrap();
    drop(store);

    let dst_dir = tempfile::tempdir().unwrap();
    {
        let (_log, mut sm) = open_storage(&dst_dir.path().join("raft.redb")).unwrap();
        let mut data = sm.begin_receiving_snapshot().await.unwrap();
        *data = *snapshot.snapshot;
        sm.install_snapshot(&snapshot.meta, data).await.unwrap();
        let current = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, snapshot.meta);
    }

    // A node started on the installed state is initialized already (its
    // membership came with the snapshot), elects itself and serves it all,
    // including the rebuilt slug and idempotency indexes.
    let store = open_single(dst_dir.path()).await;
    let mut all = sent.clone();
    all.push(keyed.clone());
    assert_history(&store, &room, &all).await;
    let retry = post_ok(&store, post(room.id, &ada, "keyed", Some("k-1"))).await;
    assert_eq!(retry, keyed);
    assert_eq!(store.signing_key().await.unwrap(), Some(vec![5; 32]));
    store.shutdown().await.unwrap();
}

// ---- over HTTP ------------------------------------------------------------

/// A node serving `raft_router` on an ephemeral loopback port.
struct HttpNode {
    store: RaftStore,
    addr: String,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl HttpNode {
    async fn start(id: u64, dir: &Path, config: openraft::Config) -> HttpNode {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let store = RaftStore::open(id, addr.clone(), dir, config)
            .await
            .unwrap();
        let router = raft_router(store.raft().clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        HttpNode {
            store,
            addr,
            stop: Some(stop),
            server,
        }
    }

    async fn stop(mut self) -> RaftStore {
        self.store.shutdown().await.unwrap();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.await.unwrap();
        self.store
    }
}

/// The leader purges its log behind a snapshot, so a new learner can only
/// catch up through `/raft/snapshot`, then through `/raft/append`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_catches_up_over_http_via_snapshot_then_appends() {
    let mut config = default_raft_config();
    config.snapshot_policy = SnapshotPolicy::LogsSinceLast(20);
    config.max_in_snapshot_log_to_keep = 0;
    // Several chunks per snapshot, to exercise chunk reassembly.
    config.snapshot_max_chunk_size = 1024;
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    let n1 = HttpNode::start(1, dir1.path(), config.clone()).await;
    n1.store.initialize_single_if_new().await.unwrap();
    let (room, mut sent) = room_with_messages(&n1.store, 40).await;
    wait_for(
        n1.store.raft(),
        "leader snapshotted and purged its log",
        |m| m.purged.is_some() && m.snapshot.is_some(),
    )
    .await;

    let n2 = HttpNode::start(2, dir2.path(), config).await;
    n1.store
        .raft()
        .add_learner(2, BasicNode::new(&n2.addr), true)
        .await
        .expect("add learner");
    // One more entry after the snapshot travels as an append. Its message
    // id is its log index; the leader's metrics may lag behind its reply.
    let late = post_ok(&n1.store, post(room.id, &participant(1), "late", None)).await;
    sent.push(late.clone());
    wait_for(
        n2.store.raft(),
        "learner applied the leader's last entry",
        |m| m.last_applied.map(|l| l.index) >= Some(late.id.0),
    )
    .await;
    assert!(
        n2.store.raft().metrics().borrow().snapshot.is_some(),
        "learner caught up through a snapshot"
    );

    // Reads on a learner are refused with a pointer to the leader.
    match n2.store.room_by_id(room.id).await {
        Err(super::StoreError::NotLeader { leader }) => {
            assert_eq!(leader, Some((1, n1.addr.clone())));
        }
        other => panic!("learner read returned {other:?}"),
    }

    // Promote the learner; the two-voter cluster still commits writes.
    n1.store
        .raft()
        .change_membership(BTreeSet::from([1, 2]), false)
        .await
        .expect("change membership");
    let last = post_ok(&n1.store, post(room.id, &participant(2), "both", None)).await;
    sent.push(last);

    drop(n1.stop().await);
    drop(n2.stop().await);
    // The learner's own tables hold the leader's history.
    let (db2, _released) = db::open(&dir2.path().join("raft.redb")).unwrap();
    let (msgs, has_more) = queries::messages(db2.database(), room.id, None, 1000).unwrap();
    assert!(!has_more);
    assert_eq!(msgs, sent);
    assert_eq!(
        queries::room_by_id(db2.database(), room.id).unwrap(),
        Some(room)
    );
}

#[tokio::test]
async fn raft_rpc_with_undecodable_body_is_rejected_with_400_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let node = HttpNode::start(1, dir.path(), default_raft_config()).await;
    let client = reqwest::Client::new();
    for path in ["append", "vote", "snapshot"] {
        let resp = client
            .post(format!("{}/raft/{path}", node.addr))
            .header("content-type", super::network::MSGPACK)
            .body(vec![0xc1, 0x00, 0xff])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST, "{path}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("not a MessagePack"), "{path}: {text}");
    }
    // A well-formed vote request is answered in MessagePack.
    let vote = openraft::raft::VoteRequest::<u64>::new(openraft::Vote::new(1, 2), None);
    let resp = client
        .post(format!("{}/raft/vote", node.addr))
        .body(rmp_serde::to_vec_named(&vote).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        super::network::MSGPACK
    );
    let answer: Result<openraft::raft::VoteResponse<u64>, openraft::error::RaftError<u64>> =
        rmp_serde::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(answer.unwrap().vote_granted);
    node.stop().await;
}
