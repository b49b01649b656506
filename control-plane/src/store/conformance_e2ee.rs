//! Conformance cases for [`E2eeStore`]: every sentence of the delivery
//! service's contract (`e2ee.rs`), and what an encrypted room refuses, on
//! every store `conformance::run_all` runs (MemStore, Raft, and the
//! forwarding layer).

use super::conformance_kit::{host_acts, Case, StoreFactory};
use super::e2ee::E2eeStore;
use super::e2ee_model::E2eeRefusal;
use super::error::StoreError;
use super::model::{CommandError, NewRoom, Room};
use super::policies::{PolicyCommand, PolicyRefusal, PolicyStore};
use super::seam::{NewMessage, Store};
use super::stats::StatsCommand;
use super::stats_read::StatsStore;
use std::collections::BTreeSet;
use std::path::Path;
use veche_protocol::e2ee::{CommitLabels, DsOp, DsReply, DsRequest};
use veche_protocol::moderation::ModAction;
use veche_protocol::stats::{EventKind, ParticipantEvent};
use veche_protocol::{NodeId, ParticipantId, RoomId, RoomSlug, UserId};

/// The E2EE cases, named.
pub(crate) fn cases<F: StoreFactory>() -> [(&'static str, Case<F>); 4] {
    [
        (
            "an encrypted room founds, queues and orders commits; a plain room refuses",
            |f, d| Box::pin(founds_queues_and_orders(f, d)),
        ),
        (
            "the first commit per epoch wins and a refused step changes nothing",
            |f, d| Box::pin(first_commit_wins(f, d)),
        ),
        (
            "leaves for good and the meeting's end reach the delivery service",
            |f, d| Box::pin(leaves_and_meeting_end(f, d)),
        ),
        (
            "an encrypted room stores only sealed chat and refuses to record",
            |f, d| Box::pin(sealed_chat_and_no_recording(f, d)),
        ),
    ]
}

fn pid(s: &str) -> ParticipantId {
    ParticipantId(s.into())
}

async fn room<S: Store>(s: &S, n: u8, e2ee: bool) -> Room {
    let new = NewRoom {
        e2ee,
        ..NewRoom::open(RoomSlug::from_random([n; 16]), format!("Room {n}"), 5)
    };
    s.create_room_as(new).await.unwrap()
}

fn kp(room: RoomId, who: &str) -> DsRequest {
    DsRequest {
        room_id: room,
        participant_id: pid(who),
        op: DsOp::KeyPackage,
    }
}

fn commit(room: RoomId, who: &str, group: u32, epoch: u64, added: &[&str]) -> DsRequest {
    DsRequest {
        room_id: room,
        participant_id: pid(who),
        op: DsOp::Commit(CommitLabels {
            group,
            epoch,
            added: added.iter().map(|p| pid(p)).collect(),
            removed: Vec::new(),
        }),
    }
}

fn refused<T: std::fmt::Debug>(r: Result<T, StoreError>) -> E2eeRefusal {
    match r {
        Err(StoreError::Refused(CommandError::E2ee(e))) => e,
        other => panic!("expected an e2ee refusal, got {other:?}"),
    }
}

async fn founds_queues_and_orders<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let plain = room(&s, 1, false).await;
    let enc = room(&s, 2, true).await;
    assert!(enc.e2ee && !plain.e2ee);
    assert_eq!(s.room_by_id(enc.id).await.unwrap().unwrap(), enc);
    assert_eq!(
        refused(s.e2ee_step(kp(plain.id, "p-a")).await),
        E2eeRefusal::NotEncryptedRoom
    );
    assert_eq!(s.delivery_service(plain.id).await.unwrap(), None);
    assert_eq!(
        refused(s.e2ee_step(kp(RoomId(999), "p-a")).await),
        E2eeRefusal::NotEncryptedRoom,
        "an unknown room has no delivery service either"
    );
    let fresh = s
        .delivery_service(enc.id)
        .await
        .unwrap()
        .expect("created with the room");
    assert_eq!((fresh.group, fresh.epoch), (0, 0));
    let found = s.e2ee_step(kp(enc.id, "p-a")).await.unwrap();
    assert_eq!(found, DsReply::Found { group: 1 });
    let queued = s.e2ee_step(kp(enc.id, "p-b")).await.unwrap();
    assert_eq!(queued, DsReply::Queued { group: 1, epoch: 0 });
    let accepted = s.e2ee_step(commit(enc.id, "p-a", 1, 0, &["p-b"])).await;
    assert_eq!(accepted.unwrap(), DsReply::Accepted { group: 1, epoch: 1 });
    let ds = s.delivery_service(enc.id).await.unwrap().unwrap();
    assert_eq!(ds.members, BTreeSet::from([pid("p-a"), pid("p-b")]));
    assert!(ds.waiting.is_empty());
    if F::DURABLE {
        f.close(s).await;
        let s = f.open(dir).await;
        assert_eq!(s.delivery_service(enc.id).await.unwrap(), Some(ds));
        assert!(s.room_by_id(enc.id).await.unwrap().unwrap().e2ee);
        f.close(s).await;
    } else {
        f.close(s).await;
    }
}

async fn first_commit_wins<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let enc = room(&s, 2, true).await.id;
    s.e2ee_step(kp(enc, "p-a")).await.unwrap();
    s.e2ee_step(kp(enc, "p-b")).await.unwrap();
    s.e2ee_step(commit(enc, "p-a", 1, 0, &["p-b"]))
        .await
        .unwrap();
    s.e2ee_step(kp(enc, "p-c")).await.unwrap();
    let before = s.delivery_service(enc).await.unwrap();
    // Both members commit c from epoch 1: a's lands first, b's is stale.
    let a = s.e2ee_step(commit(enc, "p-a", 1, 1, &["p-c"])).await;
    assert_eq!(a.unwrap(), DsReply::Accepted { group: 1, epoch: 2 });
    let after = s.delivery_service(enc).await.unwrap();
    assert_ne!(after, before);
    let b = s.e2ee_step(commit(enc, "p-b", 1, 1, &["p-c"])).await;
    assert_eq!(refused(b), E2eeRefusal::Stale { group: 1, epoch: 2 });
    let outsider = s.e2ee_step(commit(enc, "p-x", 1, 2, &[])).await;
    assert_eq!(refused(outsider), E2eeRefusal::NotMember);
    let unasked = s.e2ee_step(commit(enc, "p-b", 1, 2, &["p-y"])).await;
    assert_eq!(refused(unasked), E2eeRefusal::NotWaiting(pid("p-y")));
    assert_eq!(
        s.delivery_service(enc).await.unwrap(),
        after,
        "refusals change nothing"
    );
    f.close(s).await;
}

fn event(seq: u64, room: RoomId, who: &str, at: u64, joined: bool) -> ParticipantEvent {
    ParticipantEvent {
        seq,
        room_id: room,
        room_name: "Room".into(),
        room_slug: RoomSlug::from_random([room.0 as u8; 16]),
        participant_id: pid(who),
        at_ms: at,
        kind: if joined {
            EventKind::Joined {
                display_name: who.into(),
                user: None,
                guest: false,
            }
        } else {
            EventKind::Left
        },
    }
}

fn report(node: u64, events: Vec<ParticipantEvent>) -> StatsCommand {
    StatsCommand::Record {
        node_id: NodeId(node),
        boot: 1,
        events,
        received_at_ms: 10_000,
        webhooks: false,
    }
}

async fn leaves_and_meeting_end<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let enc = room(&s, 2, true).await.id;
    // a on node 1; b on node 1, then also on node 2 (a move).
    let joins = vec![
        event(1, enc, "p-a", 100, true),
        event(2, enc, "p-b", 101, true),
    ];
    s.stats(report(1, joins)).await.unwrap();
    s.stats(report(2, vec![event(1, enc, "p-b", 102, true)]))
        .await
        .unwrap();
    s.e2ee_step(kp(enc, "p-a")).await.unwrap();
    s.e2ee_step(kp(enc, "p-b")).await.unwrap();
    s.e2ee_step(commit(enc, "p-a", 1, 0, &["p-b"]))
        .await
        .unwrap();
    s.e2ee_step(kp(enc, "p-c")).await.unwrap();
    // b's old seat closes while the new one is open: not a leave.
    s.stats(report(1, vec![event(3, enc, "p-b", 103, false)]))
        .await
        .unwrap();
    let ds = s.delivery_service(enc).await.unwrap().unwrap();
    assert!(ds.members.contains(&pid("p-b")), "{ds:?}");
    s.stats(report(2, vec![event(2, enc, "p-b", 104, false)]))
        .await
        .unwrap();
    let ds = s.delivery_service(enc).await.unwrap().unwrap();
    assert_eq!(ds.members, BTreeSet::from([pid("p-a")]), "b left for good");
    assert_eq!(ds.waiting, BTreeSet::from([pid("p-c")]));
    // a, the last one in the room, leaves: the meeting ends.
    s.stats(report(1, vec![event(4, enc, "p-a", 105, false)]))
        .await
        .unwrap();
    let ds = s.delivery_service(enc).await.unwrap().unwrap();
    assert!(ds.members.is_empty() && ds.waiting.is_empty(), "{ds:?}");
    assert_eq!(ds.group, 1, "the group number stays");
    let next = s.e2ee_step(kp(enc, "p-c")).await.unwrap();
    assert_eq!(next, DsReply::Found { group: 2 }, "and only grows");
    f.close(s).await;
}

async fn sealed_chat_and_no_recording<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let plain = room(&s, 1, false).await.id;
    let enc = room(&s, 2, true).await.id;
    let chat = |room, text: &str| NewMessage {
        room_id: room,
        participant_id: pid("p-a"),
        display_name: "Ada".into(),
        text: text.into(),
        sent_at_ms: 7,
        client_msg_id: None,
    };
    let sealed = format!("e2ee1:1:0:{}", "A".repeat(40));
    let r = s.post_chat(chat(enc, "hello")).await;
    assert_eq!(refused(r), E2eeRefusal::ChatNotSealed);
    assert!(s.messages(enc, None, 10).await.unwrap().0.is_empty());
    assert_eq!(s.post_chat(chat(enc, &sealed)).await.unwrap().text, sealed);
    assert_eq!(
        s.post_chat(chat(plain, "hello")).await.unwrap().text,
        "hello"
    );
    let start = |room| {
        PolicyCommand::Act(host_acts(
            room,
            UserId(1),
            "Bob",
            ModAction::StartRecording {
                id: Some(veche_protocol::recording::RecordingId::from_random([3; 8])),
            },
            9,
        ))
    };
    match s.policy_command(start(enc)).await {
        Err(StoreError::Refused(CommandError::Policy(PolicyRefusal::Encrypted))) => {}
        other => panic!("expected the e2ee refusal, got {other:?}"),
    }
    let policy = s.room_policy(enc).await.unwrap();
    assert_eq!((policy.version, policy.recording), (0, None));
    let p = s.policy_command(start(plain)).await.unwrap();
    assert!(p.recording.is_some(), "a plain room records");
    f.close(s).await;
}
