//! End-to-end encrypted rooms over real HTTP: the flag from creation to
//! the room view and the join token, the delivery service's RPC
//! (`RPC_E2EE`: authorization, malformed and oversize bodies, plain and
//! unknown rooms, first commit per epoch wins), sealed chat, and the
//! recording refusal. Run with
//! `cargo test -p veche-control-plane --lib access_tests::e2ee`.

use super::harness::{room_id, As, Cp, SECRET};
use crate::admission::RoomCreation;
use crate::store::{E2eeStore, PolicyStore, RecordingStore, Store};
use serde_json::json;
use veche_protocol::e2ee::{CommitLabels, DeliveryService, DsOp, DsReply, DsRequest, RPC_E2EE};
use veche_protocol::error::ErrorBody;
use veche_protocol::limits::moderation::MAX_RPC_BODY_BYTES;
use veche_protocol::moderation::ModAction;
use veche_protocol::moderation_rules::E2EE_NOT_RECORDABLE;
use veche_protocol::rpc::{CommitChat, RPC_COMMIT_CHAT, RPC_MODERATE};
use veche_protocol::{ErrorCode, ParticipantId, RoomId, UserId};

/// Creates a room, encrypted or not; its create response.
async fn room(cp: &Cp, e2ee: bool) -> serde_json::Value {
    cp.json(
        "POST",
        "/api/rooms",
        &As::anonymous(),
        json!({"name": "Sealed", "e2ee": e2ee}),
    )
    .await
    .ok(201)
    .clone()
}

fn step_req(room: RoomId, who: &str, op: DsOp) -> DsRequest {
    DsRequest {
        room_id: room,
        participant_id: ParticipantId(who.into()),
        op,
    }
}

fn commit(group: u32, epoch: u64, added: &[&str]) -> DsOp {
    DsOp::Commit(CommitLabels {
        group,
        epoch,
        added: added.iter().map(|p| ParticipantId((*p).into())).collect(),
        removed: Vec::new(),
    })
}

/// Posts `body` to `path` as a media node: the status, and the reply or
/// the error body.
async fn rpc<T: serde::de::DeserializeOwned>(
    cp: &Cp,
    path: &str,
    body: Vec<u8>,
) -> (u16, Result<T, ErrorBody>) {
    let (status, bytes) = cp.rpc(path, Some(SECRET), body).await;
    let decoded = if status == 200 {
        Ok(veche_protocol::msgpack::from_slice(&bytes).expect("a reply"))
    } else {
        Err(
            veche_protocol::msgpack::from_slice(&bytes).unwrap_or_else(|_| {
                ErrorBody::new(ErrorCode::Internal, String::from_utf8_lossy(&bytes))
            }),
        )
    };
    (status, decoded)
}

async fn step(cp: &Cp, req: &DsRequest) -> (u16, Result<DsReply, ErrorBody>) {
    rpc(cp, RPC_E2EE, rmp_serde::to_vec_named(req).unwrap()).await
}

#[tokio::test]
async fn the_e2ee_flag_reaches_the_view_and_the_join_token_and_is_off_by_default() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let enc = room(&cp, true).await;
    assert_eq!(enc["e2ee"], true);
    let slug = enc["slug"].as_str().unwrap();
    let anyone = As::anonymous();
    let view = cp
        .send("GET", &format!("/api/rooms/{slug}"), &anyone, None)
        .await;
    assert_eq!(view.ok(200)["e2ee"], true);
    let joined = cp.join(slug, &As::anonymous(), json!({})).await;
    let token = joined.ok(200)["token"].as_str().unwrap().to_owned();
    assert!(cp.claims(&token).await.e2ee);
    assert_eq!(joined.body["room"]["e2ee"], true);

    let plain = cp.room(&As::anonymous(), "open").await;
    assert_eq!(plain["e2ee"], false, "off unless asked for");
    let joined = cp
        .join(plain["slug"].as_str().unwrap(), &anyone, json!({}))
        .await;
    let token = joined.ok(200)["token"].as_str().unwrap().to_owned();
    assert!(!cp.claims(&token).await.e2ee);
}

#[tokio::test]
async fn the_delivery_rpc_needs_the_cluster_secret_and_refuses_bad_bodies_writing_nothing() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let enc = room_id(&room(&cp, true).await);
    let body = rmp_serde::to_vec_named(&step_req(enc, "p-a", DsOp::KeyPackage)).unwrap();
    let before = cp.applied();
    for secret in [None, Some("not-the-cluster-secret")] {
        let (status, _) = cp.rpc(RPC_E2EE, secret, body.clone()).await;
        assert_eq!(status, 401, "with {secret:?}");
    }
    let (status, reply) = rpc::<DsReply>(&cp, RPC_E2EE, b"\x93not a request".to_vec()).await;
    let e = reply.unwrap_err();
    assert_eq!((status, e.code), (400, ErrorCode::BadRequest), "{e:?}");
    assert!(e.message.contains("undecodable RPC body"), "{e:?}");
    let (status, _) = cp
        .rpc(RPC_E2EE, Some(SECRET), vec![0; MAX_RPC_BODY_BYTES + 1])
        .await;
    assert_eq!(status, 413);
    let long = "p".repeat(1000);
    let (status, reply) = step(&cp, &step_req(enc, &long, DsOp::KeyPackage)).await;
    assert_eq!(status, 400, "{reply:?}");
    let (status, reply) = step(&cp, &step_req(enc, "p-a", commit(1, 0, &["p-b", "p-b"]))).await;
    assert_eq!(status, 400, "a participant listed twice: {reply:?}");
    assert_eq!(cp.applied(), before, "nothing was written");
    let ds = cp.cp.replicated().delivery_service(enc).await.unwrap();
    assert_eq!(ds, Some(DeliveryService::default()));
}

#[tokio::test]
async fn the_delivery_rpc_refuses_plain_and_unknown_rooms() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let plain = room_id(&room(&cp, false).await);
    let before = cp.applied();
    let (status, reply) = step(&cp, &step_req(plain, "p-a", DsOp::KeyPackage)).await;
    let e = reply.unwrap_err();
    assert_eq!((status, e.code), (409, ErrorCode::InvalidState), "{e:?}");
    assert_eq!(e.message, "this room is not end-to-end encrypted");
    let (status, reply) = step(&cp, &step_req(RoomId(9999), "p-a", DsOp::KeyPackage)).await;
    assert_eq!(
        (status, reply.unwrap_err().code),
        (404, ErrorCode::RoomNotFound)
    );
    assert_eq!(cp.applied(), before, "nothing was written");
}

#[tokio::test]
async fn the_first_commit_of_an_epoch_wins_and_the_second_is_stale() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let enc = room_id(&room(&cp, true).await);
    let kp = |who| step_req(enc, who, DsOp::KeyPackage);
    assert_eq!(
        step(&cp, &kp("p-a")).await.1,
        Ok(DsReply::Found { group: 1 })
    );
    assert_eq!(
        step(&cp, &kp("p-b")).await.1,
        Ok(DsReply::Queued { group: 1, epoch: 0 })
    );
    // a and b both commit from epoch 0 (b's never could: it is not a
    // member yet), then a again: only the first lands.
    let first = step(&cp, &step_req(enc, "p-a", commit(1, 0, &["p-b"]))).await;
    assert_eq!(first.1, Ok(DsReply::Accepted { group: 1, epoch: 1 }));
    let after = cp.cp.replicated().delivery_service(enc).await.unwrap();
    for who in ["p-a", "p-b"] {
        let (status, reply) = step(&cp, &step_req(enc, who, commit(1, 0, &["p-b"]))).await;
        let e = reply.unwrap_err();
        assert_eq!(
            (status, e.code),
            (409, ErrorCode::InvalidState),
            "{who}: {e:?}"
        );
        assert!(e.message.contains("group 1 epoch 1"), "{who}: {e:?}");
    }
    assert_eq!(
        cp.cp.replicated().delivery_service(enc).await.unwrap(),
        after
    );
    let text = cp.send("GET", "/metrics", &As::anonymous(), None).await;
    let text = text.body.as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains(r#"veche_cp_e2ee_steps_total{op="commit",outcome="refused"} 2"#),
        "{text}"
    );
}

fn chat(room: RoomId, text: &str) -> Vec<u8> {
    rmp_serde::to_vec_named(&CommitChat {
        room_id: room,
        participant_id: ParticipantId("p-a".into()),
        display_name: "Ada".into(),
        text: text.into(),
        client_msg_id: None,
        sent_at_ms: crate::now_ms(),
    })
    .unwrap()
}

#[tokio::test]
async fn an_encrypted_room_stores_sealed_chat_untouched_and_refuses_plain_text() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let enc = room_id(&room(&cp, true).await);
    let plain = room_id(&room(&cp, false).await);
    for text in [
        "hello",
        "e2ee1:1:0:short",
        "e2ee1:1:0:has space and more than 38 characters",
    ] {
        let (status, reply) =
            rpc::<veche_protocol::chat::ChatMessage>(&cp, RPC_COMMIT_CHAT, chat(enc, text)).await;
        let e = reply.unwrap_err();
        assert_eq!(
            (status, e.code),
            (400, ErrorCode::BadRequest),
            "{text}: {e:?}"
        );
        assert!(e.message.contains("must be encrypted"), "{e:?}");
    }
    assert!(cp
        .cp
        .replicated()
        .messages(enc, None, 10)
        .await
        .unwrap()
        .0
        .is_empty());
    // Longer than plain chat may be (4000 chars): the plain filter would
    // refuse it; sealed, it is stored as sent.
    let sealed = format!("e2ee1:3:7:{}", "A_-z".repeat(1500));
    let (status, reply) =
        rpc::<veche_protocol::chat::ChatMessage>(&cp, RPC_COMMIT_CHAT, chat(enc, &sealed)).await;
    assert_eq!(status, 200, "{reply:?}");
    assert_eq!(reply.unwrap().text, sealed);
    // A plain room filters as ever, whatever the text looks like.
    let (_, reply) =
        rpc::<veche_protocol::chat::ChatMessage>(&cp, RPC_COMMIT_CHAT, chat(plain, " hi\u{7} "))
            .await;
    assert_eq!(reply.unwrap().text, "hi");
}

#[tokio::test]
async fn a_recording_start_in_an_encrypted_room_is_refused_with_the_reason_and_changes_nothing() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let enc = room_id(&room(&cp, true).await);
    let req = crate::store::conformance_kit::host_acts(
        enc,
        UserId(1),
        "Bob",
        ModAction::StartRecording { id: None },
        crate::now_ms(),
    );
    let (status, reply) = rpc::<veche_protocol::moderation::RoomPolicy>(
        &cp,
        RPC_MODERATE,
        rmp_serde::to_vec_named(&req).unwrap(),
    )
    .await;
    let e = reply.unwrap_err();
    assert_eq!((status, e.code), (403, ErrorCode::Forbidden), "{e:?}");
    assert_eq!(e.message, E2EE_NOT_RECORDABLE);
    assert_eq!(
        e.message,
        "This meeting is end-to-end encrypted, so the server cannot record it."
    );
    let policy = cp.cp.replicated().room_policy(enc).await.unwrap();
    assert_eq!((policy.version, policy.recording), (0, None));
    let indexed = cp.cp.replicated().room_recordings(enc, None, 10).await;
    assert!(indexed.unwrap().is_empty(), "no recording is indexed");
}
