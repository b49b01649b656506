//! Snapshots: built, installed on fresh storage, and surviving a log purge.

use super::*;

/// Snapshots `store` now, shuts it down, installs that snapshot on fresh
/// storage (checking it becomes the current snapshot there) and opens a
/// one-node store on it: what a new follower catching up by snapshot
/// starts from. Returns the new store and its directory.
async fn moved_by_snapshot(store: RaftStore) -> (RaftStore, TempDir) {
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

    let fresh = tempfile::tempdir().unwrap();
    {
        let (_log, mut sm) = open_storage(&fresh.path().join("raft.redb")).unwrap();
        let mut data = sm.begin_receiving_snapshot().await.unwrap();
        *data = *snap.snapshot;
        sm.install_snapshot(&snap.meta, data).await.unwrap();
        let current = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, snap.meta);
    }
    let store = open_single(fresh.path()).await;
    (store, fresh)
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
    // Install a snapshot on fresh storage: the registrations and the
    // drain flag come along.
    let (store, _fresh) = moved_by_snapshot(store).await;
    assert_eq!(store.local().media_nodes().unwrap(), expected);
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
    // A node started on the installed state is initialized already (its
    // membership came with the snapshot), elects itself and serves it all,
    // including the rebuilt slug and idempotency indexes.
    let (store, _dst_dir) = moved_by_snapshot(store).await;
    let mut all = sent.clone();
    all.push(keyed.clone());
    assert_history(&store, &room, &all).await;
    let retry = post_ok(&store, post(room.id, &ada, "keyed", Some("k-1"))).await;
    assert_eq!(retry, keyed);
    assert_eq!(store.signing_key().await.unwrap(), Some(vec![5; 32]));
    store.shutdown().await.unwrap();
}

/// Document tables (accounts here) travel in the snapshot without a field
/// of their own, their indexes included.
#[tokio::test]
async fn document_tables_survive_a_snapshot_install() {
    use crate::store::accounts::AccountCommand;
    use crate::store::AccountStore;
    let dir = tempfile::tempdir().unwrap();
    let store = open_single(dir.path()).await;
    let ada = store
        .account_user(AccountCommand::CreateUser {
            email: "ada@example.test".into(),
            display_name: "Ada".into(),
            is_admin: true,
            password_hash: None,
            oidc: None,
            created_at_ms: 1,
        })
        .await
        .unwrap();
    let (store, _fresh) = moved_by_snapshot(store).await;
    assert_eq!(store.user(ada.id).await.unwrap(), Some(ada.clone()));
    assert_eq!(
        store.user_by_email("ada@example.test").await.unwrap(),
        Some(ada),
        "the indexes came along"
    );
    store.shutdown().await.unwrap();
}

/// Room policies are a document table: they travel in the snapshot.
#[tokio::test]
async fn room_policies_survive_a_snapshot_install() {
    use crate::store::policies::PolicyCommand;
    use crate::store::PolicyStore;
    use veche_protocol::moderation::SettingsChange;
    let dir = tempfile::tempdir().unwrap();
    let store = open_single(dir.path()).await;
    let room = RoomId(4);
    store
        .policy_command(PolicyCommand::RecordHost {
            room_id: room,
            participant_id: ParticipantId("p-host".into()),
        })
        .await
        .unwrap();
    let policy = store
        .policy_command(PolicyCommand::ChangeSettings {
            room_id: room,
            change: SettingsChange {
                locked: Some(true),
                ..Default::default()
            },
        })
        .await
        .unwrap();
    assert_eq!(policy.version, 2);
    let (store, _fresh) = moved_by_snapshot(store).await;
    assert_eq!(store.room_policy(room).await.unwrap(), policy);
    store.shutdown().await.unwrap();
}

/// Covers and each owner's list of rooms are document tables: they travel
/// in the snapshot too.
#[tokio::test]
async fn covers_and_owned_rooms_survive_a_snapshot_install() {
    use crate::store::covers::{CoverCommand, CoverStore};
    use crate::store::model::NewRoom;
    use veche_protocol::{RoomSlug, UserId};
    let dir = tempfile::tempdir().unwrap();
    let store = open_single(dir.path()).await;
    let room = store
        .create_room_as(NewRoom {
            owner: Some(UserId(3)),
            ..NewRoom::open(RoomSlug::from_random([5; 16]), "Board".into(), 1)
        })
        .await
        .unwrap();
    let cover = store
        .cover_command(CoverCommand::SetText {
            room_id: room.id,
            title: "Quarterly review".into(),
            description: String::new(),
            at_ms: 2,
        })
        .await
        .unwrap()
        .cover;
    let (store, _fresh) = moved_by_snapshot(store).await;
    assert_eq!(store.cover(room.id).await.unwrap(), cover);
    assert_eq!(
        store.rooms_owned_by(UserId(3), 10).await.unwrap(),
        vec![(room, cover)]
    );
    store.shutdown().await.unwrap();
}
