//! Raft over HTTP: a learner catching up, and undecodable RPC bodies.

use super::*;

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
        Err(crate::store::StoreError::NotLeader { leader }) => {
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
            .header("content-type", crate::store::network::MSGPACK)
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
        crate::store::network::MSGPACK
    );
    let answer: Result<openraft::raft::VoteResponse<u64>, openraft::error::RaftError<u64>> =
        rmp_serde::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(answer.unwrap().vote_granted);
    node.stop().await;
}
