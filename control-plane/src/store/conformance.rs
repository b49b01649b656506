//! The Veche store conformance suite: every sentence of the [`Store`]
//! contract as a check, run against each implementation.
//!
//! `cargo test -p veche-control-plane --lib conformance` runs it on
//! [`MemStore`], on a single-node [`RaftStore`] in a temporary directory,
//! and on [`crate::leader::Replicated`] over a one-node control plane. A new implementation gets a [`StoreFactory`] and one test
//! calling [`run_all`].

use super::conformance_kit::{Case, StoreFactory};
use super::error::StoreError;
use super::model::{CommandError, MediaNodeRecord};
use super::seam::{NewMessage, Store};
use super::{default_raft_config, MemStore, RaftStore};
use std::path::Path;
use veche_protocol::chat::ChatMessage;
use veche_protocol::rpc::{MediaNodeInfo, HISTORY_PAGE};
use veche_protocol::{NodeId, ParticipantId, RoomId, RoomSlug};

/// Runs every case, each on a fresh store in a fresh directory, and names
/// the failing case in the panic.
pub async fn run_all<F: StoreFactory>(factory: &F) {
    let cases: [(&str, Case<F>); 11] = [
        ("creating a room again returns the same room", |f, d| {
            Box::pin(creating_a_room_again_returns_the_same_room(f, d))
        }),
        ("an unknown slug or id is none", |f, d| {
            Box::pin(an_unknown_slug_or_id_is_none(f, d))
        }),
        ("message ids strictly increase", |f, d| {
            Box::pin(message_ids_strictly_increase(f, d))
        }),
        ("history pages back with before", |f, d| {
            Box::pin(history_pages_back_with_before(f, d))
        }),
        (
            "a room and its history read together match the two reads",
            |f, d| {
                Box::pin(a_room_and_its_history_read_together_match_the_two_reads(
                    f, d,
                ))
            },
        ),
        (
            "an idempotency key replay returns the first message",
            |f, d| Box::pin(an_idempotency_key_replay_returns_the_first_message(f, d)),
        ),
        ("idempotency keys are per room and participant", |f, d| {
            Box::pin(idempotency_keys_are_per_room_and_participant(f, d))
        }),
        ("chat to an unknown room is refused", |f, d| {
            Box::pin(chat_to_an_unknown_room_is_refused(f, d))
        }),
        ("the signing key is set once", |f, d| {
            Box::pin(the_signing_key_is_set_once(f, d))
        }),
        ("media nodes register, re-register and drain", |f, d| {
            Box::pin(media_nodes_register_reregister_and_drain(f, d))
        }),
        ("everything survives a reopen", |f, d| {
            Box::pin(everything_survives_a_reopen(f, d))
        }),
    ];
    for (name, case) in cases
        .into_iter()
        .chain(super::conformance_accounts::cases::<F>())
        .chain(super::conformance_passes::cases::<F>())
        .chain(super::conformance_policies::cases::<F>())
        .chain(super::conformance_stats::cases::<F>())
        .chain(super::conformance_covers::cases::<F>())
        .chain(super::conformance_recordings::cases::<F>())
        .chain(super::conformance_e2ee::cases::<F>())
    {
        let dir = tempfile::tempdir().expect("temporary directory");
        eprintln!("store conformance: {name}");
        case(factory, dir.path()).await;
    }
}

// ---- helpers --------------------------------------------------------------

fn slug(n: u8) -> RoomSlug {
    RoomSlug::from_random([n; 16])
}

fn participant(n: u8) -> ParticipantId {
    ParticipantId::from_random([n; 8])
}

fn msg(room: RoomId, who: &ParticipantId, text: &str, key: Option<&str>) -> NewMessage {
    NewMessage {
        room_id: room,
        participant_id: who.clone(),
        display_name: "Ada".into(),
        text: text.into(),
        sent_at_ms: 1_700_000_000_000,
        client_msg_id: key.map(str::to_owned),
    }
}

fn media_node(id: u64) -> MediaNodeInfo {
    MediaNodeInfo {
        node_id: NodeId(id),
        region: "eu".into(),
        ws_url: format!("wss://m{id}/media/ws"),
        capacity: 60,
        relay_addr: Some(format!("10.0.0.{id}:4433")),
    }
}

fn refusal<T: std::fmt::Debug>(r: Result<T, StoreError>) -> CommandError {
    match r {
        Err(StoreError::Refused(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn post(store: &impl Store, m: NewMessage) -> ChatMessage {
    store.post_chat(m).await.expect("post_chat")
}

// ---- cases ----------------------------------------------------------------

async fn creating_a_room_again_returns_the_same_room<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let room = s.create_room(slug(1), "standup".into(), 42).await.unwrap();
    assert_eq!(
        (room.slug.clone(), room.name.as_str()),
        (slug(1), "standup")
    );
    let again = s.create_room(slug(1), "standup".into(), 42).await.unwrap();
    assert_eq!(again, room, "a retry of the same creation");
    let other = s.create_room(slug(1), "retro".into(), 43).await;
    assert_eq!(refusal(other), CommandError::SlugTaken);
    assert_eq!(s.room_by_slug(&slug(1)).await.unwrap(), Some(room.clone()));
    assert_eq!(s.room_by_id(room.id).await.unwrap(), Some(room.clone()));
    let second = s.create_room(slug(2), "retro".into(), 43).await.unwrap();
    assert!(second.id > room.id, "room ids increase");
    f.close(s).await;
}

async fn an_unknown_slug_or_id_is_none<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    assert_eq!(s.room_by_slug(&slug(9)).await.unwrap(), None);
    assert_eq!(s.room_by_id(RoomId(12345)).await.unwrap(), None);
    s.create_room(slug(1), "x".into(), 1).await.unwrap();
    assert_eq!(s.room_by_slug(&slug(9)).await.unwrap(), None);
    let (page, more) = s.messages(RoomId(12345), None, 10).await.unwrap();
    assert!(page.is_empty() && !more, "an unknown room has no history");
    f.close(s).await;
}

async fn message_ids_strictly_increase<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let a = s.create_room(slug(1), "a".into(), 1).await.unwrap();
    let b = s.create_room(slug(2), "b".into(), 1).await.unwrap();
    let mut last = None;
    for i in 0..20 {
        let room = if i % 3 == 0 { b.id } else { a.id };
        let m = post(&s, msg(room, &participant(1), &format!("m{i}"), None)).await;
        assert_eq!(
            (m.room_id, m.text.as_str()),
            (room, format!("m{i}").as_str())
        );
        assert!(last < Some(m.id), "{:?} after {last:?}", m.id);
        last = Some(m.id);
    }
    f.close(s).await;
}

async fn history_pages_back_with_before<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let room = s.create_room(slug(1), "busy".into(), 1).await.unwrap();
    let other = s.create_room(slug(2), "quiet".into(), 1).await.unwrap();
    let n = HISTORY_PAGE + 30;
    let mut sent = Vec::new();
    for i in 0..n {
        sent.push(post(&s, msg(room.id, &participant(1), &format!("m{i}"), None)).await);
        if i % 50 == 0 {
            post(&s, msg(other.id, &participant(2), "elsewhere", None)).await;
        }
    }
    let (newest, more) = s.messages(room.id, None, HISTORY_PAGE).await.unwrap();
    assert_eq!(newest, sent[30..], "the newest page, oldest first");
    assert!(more);
    let (older, more) = s
        .messages(room.id, Some(newest[0].id), HISTORY_PAGE)
        .await
        .unwrap();
    assert_eq!(older, sent[..30]);
    assert!(!more, "nothing is older than the first message");
    // Exactly `limit` left: no more.
    let (exact, more) = s.messages(room.id, Some(sent[10].id), 10).await.unwrap();
    assert_eq!(exact, sent[..10]);
    assert!(!more);
    let (small, more) = s.messages(room.id, Some(sent[10].id), 3).await.unwrap();
    assert_eq!(small, sent[7..10]);
    assert!(more);
    let (none, more) = s.messages(room.id, Some(sent[0].id), 5).await.unwrap();
    assert!(none.is_empty() && !more);
    f.close(s).await;
}

async fn a_room_and_its_history_read_together_match_the_two_reads<F: StoreFactory>(
    f: &F,
    dir: &Path,
) {
    let s = f.open(dir).await;
    assert_eq!(s.room_history(&slug(1), None, 10).await.unwrap(), None);
    let room = s.create_room(slug(1), "busy".into(), 1).await.unwrap();
    let other = s.create_room(slug(2), "quiet".into(), 1).await.unwrap();
    assert_eq!(
        s.room_history(&slug(1), None, 10).await.unwrap(),
        Some((room.clone(), (Vec::new(), false))),
        "a new room, no history yet"
    );
    let mut sent = Vec::new();
    for i in 0..12 {
        sent.push(post(&s, msg(room.id, &participant(1), &format!("m{i}"), None)).await);
        post(&s, msg(other.id, &participant(2), "elsewhere", None)).await;
    }
    for (before, limit) in [
        (None, 5),
        (None, 50),
        (Some(sent[6].id), 4),
        (Some(sent[3].id), 5),
    ] {
        let together = s.room_history(&slug(1), before, limit).await.unwrap();
        let apart = s.messages(room.id, before, limit).await.unwrap();
        assert_eq!(
            together,
            Some((room.clone(), apart)),
            "before {before:?}, limit {limit}"
        );
    }
    let (_, (newest, more)) = s.room_history(&slug(1), None, 5).await.unwrap().unwrap();
    assert_eq!((newest.as_slice(), more), (&sent[7..], true));
    assert_eq!(s.room_history(&slug(9), None, 10).await.unwrap(), None);
    f.close(s).await;
}

async fn an_idempotency_key_replay_returns_the_first_message<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let room = s.create_room(slug(1), "r".into(), 1).await.unwrap();
    let ada = participant(1);
    let first = post(&s, msg(room.id, &ada, "hello", Some("c-1"))).await;
    assert_eq!(first.client_msg_id.as_deref(), Some("c-1"));
    let replay = post(&s, msg(room.id, &ada, "hello, edited", Some("c-1"))).await;
    assert_eq!(replay, first, "a replay returns the stored message");
    // Without a key, the same text twice is two messages.
    let p1 = post(&s, msg(room.id, &ada, "again", None)).await;
    let p2 = post(&s, msg(room.id, &ada, "again", None)).await;
    assert_ne!(p1.id, p2.id);
    let (all, _) = s.messages(room.id, None, HISTORY_PAGE).await.unwrap();
    assert_eq!(all, vec![first, p1, p2], "the replay appended nothing");
    f.close(s).await;
}

async fn idempotency_keys_are_per_room_and_participant<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let a = s.create_room(slug(1), "a".into(), 1).await.unwrap();
    let b = s.create_room(slug(2), "b".into(), 1).await.unwrap();
    let (ada, bob) = (participant(1), participant(2));
    let ada_a = post(&s, msg(a.id, &ada, "hi", Some("k"))).await;
    let bob_a = post(&s, msg(a.id, &bob, "hi", Some("k"))).await;
    let ada_b = post(&s, msg(b.id, &ada, "hi", Some("k"))).await;
    assert_ne!(
        ada_a.id, bob_a.id,
        "another participant's key never matches"
    );
    assert_ne!(ada_a.id, ada_b.id, "another room's key never matches");
    assert_eq!(post(&s, msg(b.id, &ada, "hi", Some("k"))).await, ada_b);
    let (in_a, _) = s.messages(a.id, None, 10).await.unwrap();
    assert_eq!(in_a, vec![ada_a, bob_a]);
    f.close(s).await;
}

async fn chat_to_an_unknown_room_is_refused<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let r = s
        .post_chat(msg(RoomId(4242), &participant(1), "anyone?", Some("c")))
        .await;
    assert_eq!(refusal(r), CommandError::NoSuchRoom);
    let (page, more) = s.messages(RoomId(4242), None, 10).await.unwrap();
    assert!(page.is_empty() && !more);
    f.close(s).await;
}

async fn the_signing_key_is_set_once<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    // A store may open with a key installed (a control plane makes one as
    // it starts); then that one is the first.
    let before = s.signing_key().await.unwrap();
    let first = s.init_signing_key(vec![1, 2, 3]).await.unwrap();
    assert_eq!(first, before.unwrap_or_else(|| vec![1, 2, 3]));
    assert_eq!(
        s.init_signing_key(vec![9, 9]).await.unwrap(),
        first,
        "the first writer wins"
    );
    assert_eq!(s.signing_key().await.unwrap(), Some(first));
    f.close(s).await;
}

async fn media_nodes_register_reregister_and_drain<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let rec = |info: &MediaNodeInfo, draining| MediaNodeRecord {
        info: info.clone(),
        draining,
    };
    assert_eq!(s.media_nodes().await.unwrap(), vec![]);
    let (n3, n2) = (media_node(3), media_node(2));
    assert_eq!(
        s.register_media_node(n3.clone()).await.unwrap(),
        rec(&n3, false)
    );
    s.register_media_node(n2.clone()).await.unwrap();
    assert_eq!(
        s.media_nodes().await.unwrap(),
        vec![rec(&n2, false), rec(&n3, false)],
        "listed by node id"
    );
    // Drain, twice: the same answer.
    assert_eq!(
        s.set_media_node_draining(NodeId(3), true).await.unwrap(),
        rec(&n3, true)
    );
    assert_eq!(
        s.set_media_node_draining(NodeId(3), true).await.unwrap(),
        rec(&n3, true)
    );
    let unknown = s.set_media_node_draining(NodeId(9), true).await;
    assert_eq!(refusal(unknown), CommandError::NoSuchMediaNode);
    // Re-registering (a restarted process, maybe moved) replaces the
    // registration and clears the flag.
    let mut moved = n3.clone();
    moved.ws_url = "wss://elsewhere/media/ws".into();
    assert_eq!(
        s.register_media_node(moved.clone()).await.unwrap(),
        rec(&moved, false)
    );
    s.set_media_node_draining(NodeId(2), true).await.unwrap();
    s.set_media_node_draining(NodeId(2), false).await.unwrap();
    assert_eq!(
        s.media_nodes().await.unwrap(),
        vec![rec(&n2, false), rec(&moved, false)]
    );
    f.close(s).await;
}

async fn everything_survives_a_reopen<F: StoreFactory>(f: &F, dir: &Path) {
    if !F::DURABLE {
        eprintln!("store conformance: skipped, this store keeps nothing across a reopen");
        return;
    }
    let s = f.open(dir).await;
    let room = s.create_room(slug(1), "kept".into(), 1).await.unwrap();
    let ada = participant(1);
    let keyed = post(&s, msg(room.id, &ada, "keyed", Some("k"))).await;
    let plain = post(&s, msg(room.id, &ada, "plain", None)).await;
    let key = s.init_signing_key(vec![7; 32]).await.unwrap();
    s.register_media_node(media_node(1)).await.unwrap();
    s.set_media_node_draining(NodeId(1), true).await.unwrap();
    f.close(s).await;

    let s = f.open(dir).await;
    assert_eq!(s.room_by_slug(&slug(1)).await.unwrap(), Some(room.clone()));
    let (all, _) = s.messages(room.id, None, 10).await.unwrap();
    assert_eq!(all, vec![keyed.clone(), plain.clone()]);
    assert_eq!(s.signing_key().await.unwrap(), Some(key));
    let nodes = s.media_nodes().await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert!(nodes[0].draining, "the drain flag is durable");
    // The idempotency index and the id counter came back too.
    assert_eq!(
        post(&s, msg(room.id, &ada, "keyed", Some("k"))).await,
        keyed
    );
    let later = post(&s, msg(room.id, &ada, "later", None)).await;
    assert!(later.id > plain.id);
    f.close(s).await;
}

// ---- the two stores -------------------------------------------------------

struct Mem;

impl StoreFactory for Mem {
    type Store = MemStore;
    const DURABLE: bool = false;
    async fn open(&self, _dir: &Path) -> MemStore {
        MemStore::new()
    }
    async fn close(&self, _store: MemStore) {}
}

/// A single-node Raft cluster on redb in the directory.
struct Raft;

impl StoreFactory for Raft {
    type Store = RaftStore;
    const DURABLE: bool = true;
    async fn open(&self, dir: &Path) -> RaftStore {
        let store = RaftStore::open(1, "http://127.0.0.1:9".into(), dir, default_raft_config())
            .await
            .expect("open the Raft store");
        store
            .initialize_single_if_new()
            .await
            .expect("become a one-node cluster");
        store
    }
    async fn close(&self, store: RaftStore) {
        store.shutdown().await.expect("shut down");
    }
}

#[tokio::test]
async fn the_mem_store_passes_the_conformance_suite() {
    run_all(&Mem).await;
}

#[tokio::test]
async fn the_raft_store_passes_the_conformance_suite() {
    run_all(&Raft).await;
}
