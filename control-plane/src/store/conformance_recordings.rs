//! Conformance cases for [`RecordingStore`]: the recordings index contract
//! (`recordings.rs`), on every store `conformance::run_all` runs (MemStore,
//! Raft, and the forwarding layer): a recording started and stopped with
//! the policy, reports applied once and answered `Gone` when it is not
//! indexed, ready, deletion, the lists, a dead node's files.

use super::conformance_kit::host_acts;
use super::conformance_kit::{Case, StoreFactory};
use super::policies::{PolicyCommand, PolicyStore};
use super::recordings::{Recording, RecordingStore};
use super::stats::StatsCommand;
use super::StatsStore;
use std::path::Path;
use veche_protocol::moderation::ModAction;
use veche_protocol::recording::{
    FileEnd, FileId, FileReport, FileState, RecordedSource, RecordingId, RecordingReport,
    RecordingReportReply, RecordingState, SegmentInfo,
};
use veche_protocol::{NodeId, ParticipantId, RoomId, UserId};

/// The recordings cases, named.
pub(crate) fn cases<F: StoreFactory>() -> [(&'static str, Case<F>); 5] {
    [
        (
            "a recording starts and stops with the policy, reports apply once, then it is ready",
            |f, d| Box::pin(a_recording_is_indexed_reported_and_ready(f, d)),
        ),
        (
            "recordings are listed newest first, deleted, and answered gone afterwards",
            |f, d| Box::pin(recordings_are_listed_and_deleted(f, d)),
        ),
        (
            "a dead node's writing files are interrupted, and the index survives a reopen",
            |f, d| Box::pin(a_dead_nodes_files_are_interrupted(f, d)),
        ),
        (
            "a stop awaits the done of every node hosting the room, and keeps files announced after it",
            |f, d| Box::pin(a_stop_awaits_the_hosting_nodes(f, d)),
        ),
        (
            "a node that never says done is given up on after the wait, and a dead one at once",
            |f, d| Box::pin(the_wait_for_a_silent_node_ends(f, d)),
        ),
    ]
}

const ROOM: RoomId = RoomId(11);

fn rid(n: u8) -> RecordingId {
    RecordingId::from_random([n; 8])
}

fn act(action: ModAction, at_ms: u64) -> PolicyCommand {
    PolicyCommand::Act(host_acts(ROOM, UserId(9), "Ann", action, at_ms))
}

fn start(n: u8, at_ms: u64) -> PolicyCommand {
    act(ModAction::StartRecording { id: Some(rid(n)) }, at_ms)
}

fn report(rec: u8, node: u64, file: u8, seqs: &[u32], end: bool) -> RecordingReport {
    RecordingReport {
        node_id: NodeId(node),
        room_id: ROOM,
        recording_id: rid(rec),
        files: vec![FileReport {
            file_id: FileId::from_random([file; 8]),
            participant_id: ParticipantId(format!("p{file}")),
            display_name: "Ann".into(),
            source: RecordedSource::Camera,
            offset_ms: 0,
            segments: seqs
                .iter()
                .map(|&seq| SegmentInfo {
                    seq,
                    bytes: 100,
                    start_ms: u64::from(seq) * 10_000,
                    end_ms: u64::from(seq + 1) * 10_000,
                })
                .collect(),
            end: end.then(|| FileEnd {
                bytes: 300,
                duration_ms: 30_000,
                rewritten: vec![0],
            }),
        }],
        done: false,
    }
}

/// Node `node`'s last report of recording `rec`, with no file news.
fn done(rec: u8, node: u64) -> RecordingReport {
    RecordingReport {
        node_id: NodeId(node),
        room_id: ROOM,
        recording_id: rid(rec),
        files: Vec::new(),
        done: true,
    }
}

/// Stops `ROOM`'s recording at `at_ms`.
async fn stop<S: PolicyStore>(s: &S, at_ms: u64) {
    s.policy_command(act(ModAction::StopRecording, at_ms))
        .await
        .unwrap();
}

/// Media node `node` is lost at `at_ms`.
async fn lose<S: StatsStore>(s: &S, node: u64, at_ms: u64) {
    s.stats(StatsCommand::NodeLost {
        node_id: NodeId(node),
        at_ms,
        webhooks: false,
    })
    .await
    .unwrap();
}

/// Recording `n` as the index has it now.
async fn indexed<S: RecordingStore>(s: &S, n: u8) -> Recording {
    s.recording(rid(n)).await.unwrap().expect("indexed")
}

/// Participant `who` joins `ROOM` on `node` (boot 1, event `seq`).
async fn join<S: StatsStore>(s: &S, node: u64, seq: u64, who: &str) {
    use veche_protocol::stats::{EventKind, ParticipantEvent};
    s.stats(StatsCommand::Record {
        node_id: NodeId(node),
        boot: 1,
        events: vec![ParticipantEvent {
            seq,
            room_id: ROOM,
            room_name: "Board".into(),
            room_slug: veche_protocol::RoomSlug::from_random([4; 16]),
            participant_id: ParticipantId(who.into()),
            at_ms: 500,
            kind: EventKind::Joined {
                display_name: who.into(),
                user: None,
                guest: false,
            },
        }],
        received_at_ms: 500,
        webhooks: false,
    })
    .await
    .unwrap();
}

async fn a_stop_awaits_the_hosting_nodes<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    join(&s, 3, 1, "ann").await;
    join(&s, 4, 1, "bob").await;
    s.policy_command(start(1, 1_000)).await.unwrap();
    stop(&s, 10_000).await;
    let rec = indexed(&s, 1).await;
    assert_eq!(
        rec.state(),
        RecordingState::Finishing,
        "no file yet, but nodes 3 and 4 host the room"
    );
    assert_eq!(rec.awaiting.iter().map(|n| n.0).collect::<Vec<_>>(), [3, 4]);
    // Node 4's file is announced only now, and ended with its done.
    s.report_recording(report(1, 4, 1, &[0], true), false)
        .await
        .unwrap();
    s.report_recording(done(1, 4), false).await.unwrap();
    let rec = indexed(&s, 1).await;
    assert_eq!(
        rec.files.len(),
        1,
        "a file announced after the stop is kept"
    );
    assert_eq!(rec.state(), RecordingState::Finishing, "node 3 is awaited");
    s.report_recording(done(1, 3), false).await.unwrap();
    let rec = indexed(&s, 1).await;
    assert_eq!(rec.state(), RecordingState::Ready);
    // A late file still joins the ready recording.
    s.report_recording(report(1, 3, 2, &[0], true), false)
        .await
        .unwrap();
    let rec = indexed(&s, 1).await;
    assert_eq!(rec.files.len(), 2, "never dropped");
    assert_eq!(rec.state(), RecordingState::Ready);
    f.close(s).await;
}

async fn the_wait_for_a_silent_node_ends<F: StoreFactory>(f: &F, dir: &Path) {
    use veche_protocol::limits::recording::DONE_WAIT_MS;
    let s = f.open(dir).await;
    join(&s, 3, 1, "ann").await;
    join(&s, 4, 1, "bob").await;
    s.policy_command(start(1, 1_000)).await.unwrap();
    s.report_recording(report(1, 3, 1, &[0], false), false)
        .await
        .unwrap();
    stop(&s, 10_000).await;
    assert_eq!(s.oldest_finishing_recording().await.unwrap(), Some(10_000));
    // Node 4 dies: no longer awaited.
    lose(&s, 4, 12_000).await;
    let rec = indexed(&s, 1).await;
    assert_eq!(rec.awaiting.iter().map(|n| n.0).collect::<Vec<_>>(), [3]);
    // Node 3 is alive and silent.
    assert_eq!(
        s.stop_waiting_for_nodes(10_000 + DONE_WAIT_MS - 1, false)
            .await
            .unwrap(),
        0,
        "not yet"
    );
    assert_eq!(
        s.stop_waiting_for_nodes(10_000 + DONE_WAIT_MS, false)
            .await
            .unwrap(),
        1
    );
    let rec = indexed(&s, 1).await;
    assert_eq!(rec.state(), RecordingState::Ready);
    assert_eq!(rec.files[0].state(), FileState::Interrupted);
    assert_eq!(s.oldest_finishing_recording().await.unwrap(), None);
    assert!(s.recording_nodes().await.unwrap().is_empty());
    f.close(s).await;
}

async fn a_recording_is_indexed_reported_and_ready<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let policy = s.policy_command(start(1, 1_000)).await.unwrap();
    assert_eq!(policy.recording.as_ref().unwrap().id, rid(1));
    let rec = s
        .recording(rid(1))
        .await
        .unwrap()
        .expect("indexed by the start");
    assert_eq!(rec.started_by_user, Some(UserId(9)));
    assert_eq!(rec.state(), RecordingState::Recording);
    for _ in 0..2 {
        let reply = s
            .report_recording(report(1, 3, 1, &[0, 1], false), false)
            .await
            .unwrap();
        assert_eq!(reply, RecordingReportReply::Stored);
    }
    let rec = indexed(&s, 1).await;
    assert_eq!(
        rec.files[0].segments.len(),
        2,
        "a repeated report adds nothing"
    );
    stop(&s, 20_000).await;
    let rec = indexed(&s, 1).await;
    assert_eq!(rec.stopped_at_ms, Some(20_000));
    assert_eq!(rec.state(), RecordingState::Finishing);
    s.report_recording(report(1, 3, 1, &[2], true), false)
        .await
        .unwrap();
    let rec = indexed(&s, 1).await;
    assert_eq!(
        rec.state(),
        RecordingState::Finishing,
        "every file ended, but node 3 has not said done"
    );
    s.report_recording(done(1, 3), false).await.unwrap();
    let rec = indexed(&s, 1).await;
    assert_eq!(rec.state(), RecordingState::Ready);
    assert_eq!(rec.bytes(), 300);
    f.close(s).await;
}

async fn recordings_are_listed_and_deleted<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    for (n, at) in [(1u8, 1_000u64), (2, 2_000), (3, 3_000)] {
        s.policy_command(start(n, at)).await.unwrap();
        stop(&s, at + 100).await;
    }
    let ids = |v: Vec<Recording>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.all_recordings(None, 10).await.unwrap()),
        [rid(3), rid(2), rid(1)]
    );
    assert_eq!(
        ids(s.room_recordings(ROOM, Some(3_000), 1).await.unwrap()),
        [rid(2)],
        "the next page starts before the cursor"
    );
    assert_eq!(
        s.expired_recordings(2_500, 10).await.unwrap(),
        [rid(1), rid(2)]
    );
    assert!(s.delete_recording(rid(2)).await.unwrap());
    assert!(!s.delete_recording(rid(2)).await.unwrap(), "deleted once");
    assert_eq!(s.recording(rid(2)).await.unwrap(), None);
    assert_eq!(
        ids(s.room_recordings(ROOM, None, 10).await.unwrap()),
        [rid(3), rid(1)]
    );
    assert_eq!(s.expired_recordings(2_500, 10).await.unwrap(), [rid(1)]);
    let reply = s
        .report_recording(report(2, 3, 1, &[0], false), false)
        .await
        .unwrap();
    assert_eq!(reply, RecordingReportReply::Gone, "a deleted recording");
    let reply = s
        .report_recording(report(9, 3, 1, &[0], false), false)
        .await
        .unwrap();
    assert_eq!(reply, RecordingReportReply::Gone, "one never started");
    f.close(s).await;
}

async fn a_dead_nodes_files_are_interrupted<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    s.policy_command(start(1, 1_000)).await.unwrap();
    s.report_recording(report(1, 5, 1, &[0, 1], false), false)
        .await
        .unwrap();
    s.report_recording(report(1, 6, 2, &[0], true), false)
        .await
        .unwrap();
    assert_eq!(s.recording_nodes().await.unwrap(), [NodeId(5)]);
    lose(&s, 5, 15_000).await;
    let rec = indexed(&s, 1).await;
    let state = |n: u8| {
        rec.file(&FileId::from_random([n; 8]))
            .map(|f| (f.state(), f.segments.len()))
    };
    assert_eq!(
        state(1),
        Some((FileState::Interrupted, 2)),
        "its segments stay"
    );
    assert_eq!(state(2), Some((FileState::Complete, 1)));
    assert_eq!(rec.state(), RecordingState::Recording, "not stopped yet");
    assert!(s.recording_nodes().await.unwrap().is_empty());
    if F::DURABLE {
        f.close(s).await;
        let s = f.open(dir).await;
        assert_eq!(
            s.recording(rid(1)).await.unwrap(),
            Some(rec),
            "the index survives a reopen"
        );
        f.close(s).await;
    } else {
        f.close(s).await;
    }
}
