//! The recordings index as the state machine applies it: started and
//! stopped with the policy, reports applied once, ready and its webhook,
//! the bounds, a meeting's end and a lost node. Through the capabilities'
//! dispatch, so the same entry's couplings are what is tested.

use super::*;
use crate::store::capabilities;
use crate::store::conformance_kit::host_acts;
use crate::store::docs::MemDocs;
use crate::store::model::{Command, CommandOutput};
use crate::store::outbox::OUTBOX;
use crate::store::policy_model::PolicyCommand;
use crate::store::stats::StatsCommand;
use veche_protocol::moderation::ModAction;
use veche_protocol::recording::{
    FileEnd, FileId, FileReport, FileState, RecordedSource, RecordingState, SegmentInfo,
};
use veche_protocol::stats::{EventKind, ParticipantEvent};
use veche_protocol::ParticipantId;

const ROOM: RoomId = RoomId(7);

fn rid(n: u8) -> RecordingId {
    RecordingId::from_random([n; 8])
}

fn fid(n: u8) -> FileId {
    FileId::from_random([n; 8])
}

fn run(d: &mut MemDocs, cmd: Command) -> CommandOutput {
    capabilities::apply(d, cmd).unwrap().unwrap()
}

fn act(action: ModAction, at_ms: u64) -> Command {
    Command::Policies(PolicyCommand::Act(host_acts(
        ROOM,
        UserId(5),
        "Ann",
        action,
        at_ms,
    )))
}

fn start(d: &mut MemDocs, n: u8, at_ms: u64) {
    run(
        d,
        act(ModAction::StartRecording { id: Some(rid(n)) }, at_ms),
    );
}

fn stop(d: &mut MemDocs, at_ms: u64) {
    run(d, act(ModAction::StopRecording, at_ms));
}

fn seg(seq: u32) -> SegmentInfo {
    SegmentInfo {
        seq,
        bytes: 1_000,
        start_ms: u64::from(seq) * 10_000,
        end_ms: u64::from(seq + 1) * 10_000,
    }
}

fn file(n: u8, segs: &[u32], end: bool) -> FileReport {
    FileReport {
        file_id: fid(n),
        participant_id: ParticipantId(format!("p{n}")),
        display_name: format!("Person {n}"),
        source: RecordedSource::Camera,
        offset_ms: u64::from(n) * 100,
        segments: segs.iter().map(|s| seg(*s)).collect(),
        // The whole file: every segment up to the last one reported.
        end: end.then(|| {
            let n = segs.iter().max().map_or(0, |s| u64::from(*s) + 1);
            FileEnd {
                bytes: n * 1_000,
                duration_ms: n * 10_000,
                rewritten: vec![0],
            }
        }),
    }
}

fn report(d: &mut MemDocs, rec: u8, node: u64, files: Vec<FileReport>) -> RecordingReportReply {
    report_with(d, rec, node, files, false)
}

/// Node `node`'s last report of `rec`, with these files' news.
fn done(d: &mut MemDocs, rec: u8, node: u64, files: Vec<FileReport>) -> RecordingReportReply {
    report_with(d, rec, node, files, true)
}

fn report_with(
    d: &mut MemDocs,
    rec: u8,
    node: u64,
    files: Vec<FileReport>,
    done: bool,
) -> RecordingReportReply {
    let cmd = Command::Recordings(RecordingCommand::Report {
        report: RecordingReport {
            node_id: NodeId(node),
            room_id: ROOM,
            recording_id: rid(rec),
            files,
            done,
        },
        webhooks: true,
    });
    match run(d, cmd) {
        CommandOutput::Recordings(o) => match *o {
            RecordingOutput::Report(r) => r,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn get(d: &MemDocs, n: u8) -> Recording {
    recording(d, &rid(n)).unwrap().expect("indexed")
}

fn ready_events(d: &MemDocs) -> Vec<WebhookEvent> {
    OUTBOX
        .scan(d, &[], false, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|e: &WebhookEvent| e.kind == WebhookKind::RecordingReady)
        .collect()
}

#[test]
fn a_recording_enters_the_index_with_its_start_and_leaves_running_with_its_stop() {
    let mut d = MemDocs::default();
    start(&mut d, 1, 1_000);
    let r = get(&d, 1);
    assert_eq!(r.room_id, ROOM);
    assert_eq!(r.started_at_ms, 1_000);
    assert_eq!(r.started_by_name, "Ann");
    assert_eq!(r.started_by_user, Some(UserId(5)), "from the present list");
    assert_eq!(r.state(), RecordingState::Recording);
    stop(&mut d, 5_000);
    let r = get(&d, 1);
    assert_eq!(r.stopped_at_ms, Some(5_000));
    assert_eq!(
        r.state(),
        RecordingState::Ready,
        "no files: nothing to wait for"
    );
}

#[test]
fn a_report_is_applied_once_per_segment_and_a_file_ends_complete() {
    let mut d = MemDocs::default();
    start(&mut d, 1, 1_000);
    assert_eq!(
        report(&mut d, 1, 3, vec![file(1, &[0, 1], false)]),
        RecordingReportReply::Stored
    );
    assert_eq!(
        report(&mut d, 1, 3, vec![file(1, &[0, 1], false)]),
        RecordingReportReply::Stored
    );
    assert_eq!(
        report(&mut d, 1, 3, vec![file(1, &[1, 2], true)]),
        RecordingReportReply::Stored
    );
    let r = get(&d, 1);
    let f = r.file(&fid(1)).unwrap();
    let seqs: Vec<u32> = f.segments.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [0, 1, 2], "each seq once, in order");
    assert_eq!(f.state(), FileState::Complete);
    assert_eq!(f.bytes(), 3_000);
    assert_eq!(
        r.duration_ms(),
        100 + 30_000,
        "offset plus the file's duration"
    );
    assert_eq!(r.state(), RecordingState::Recording, "still running");
}

#[test]
fn ready_comes_once_when_stopped_and_every_file_is_finished_with_one_webhook() {
    let mut d = MemDocs::default();
    start(&mut d, 1, 1_000);
    report(
        &mut d,
        1,
        3,
        vec![file(1, &[0], false), file(2, &[0], false)],
    );
    stop(&mut d, 20_000);
    assert_eq!(get(&d, 1).state(), RecordingState::Finishing);
    report(&mut d, 1, 3, vec![file(1, &[0, 1], true)]);
    assert_eq!(
        get(&d, 1).state(),
        RecordingState::Finishing,
        "file 2 still writing"
    );
    assert!(ready_events(&d).is_empty());
    report(&mut d, 1, 3, vec![file(2, &[0], true)]);
    assert_eq!(
        get(&d, 1).state(),
        RecordingState::Finishing,
        "every file ended, but node 3 has not said done"
    );
    done(&mut d, 1, 3, vec![]);
    assert_eq!(get(&d, 1).state(), RecordingState::Ready);
    done(&mut d, 1, 3, vec![file(2, &[0], true)]);
    let events = ready_events(&d);
    assert_eq!(
        events.len(),
        1,
        "one event, however often the end is repeated"
    );
    let rec = events[0].recording.as_ref().unwrap();
    assert_eq!(rec.recording_id, rid(1));
    assert_eq!(rec.files, 2);
    assert_eq!(events[0].room_id, ROOM);
    assert_eq!(events[0].at_ms, 20_000);
}

#[test]
fn a_report_about_an_unknown_or_deleted_recording_is_answered_gone() {
    let mut d = MemDocs::default();
    assert_eq!(
        report(&mut d, 9, 3, vec![file(1, &[0], false)]),
        RecordingReportReply::Gone
    );
    start(&mut d, 1, 1_000);
    let deleted = run(
        &mut d,
        Command::Recordings(RecordingCommand::Delete { id: rid(1) }),
    );
    assert_eq!(
        deleted,
        CommandOutput::Recordings(Box::new(RecordingOutput::Deleted(true)))
    );
    assert_eq!(
        report(&mut d, 1, 3, vec![file(1, &[0], false)]),
        RecordingReportReply::Gone
    );
    assert!(all_recordings(&d, None, 10).unwrap().is_empty());
    assert!(room_recordings(&d, ROOM, None, 10).unwrap().is_empty());
    let again = run(
        &mut d,
        Command::Recordings(RecordingCommand::Delete { id: rid(1) }),
    );
    assert_eq!(
        again,
        CommandOutput::Recordings(Box::new(RecordingOutput::Deleted(false)))
    );
}

#[test]
fn another_nodes_file_id_and_files_past_the_bound_are_not_applied() {
    let mut d = MemDocs::default();
    start(&mut d, 1, 1_000);
    report(&mut d, 1, 3, vec![file(1, &[0], false)]);
    report(&mut d, 1, 4, vec![file(1, &[1], true)]);
    let r = get(&d, 1);
    assert_eq!(
        r.file(&fid(1)).unwrap().segments.len(),
        1,
        "node 4 cannot add to node 3's file"
    );
    assert_eq!(r.file(&fid(1)).unwrap().state(), FileState::Writing);
    // Fill the recording to its bound, then one more.
    let mut rec = get(&d, 1);
    while rec.files.len() < MAX_FILES_PER_RECORDING {
        let mut f = rec.files[0].clone();
        f.file_id = FileId::from_random((rec.files.len() as u64).to_be_bytes());
        rec.files.push(f);
    }
    RECORDINGS.put(&mut d, rid(1).as_str(), &rec).unwrap();
    report(&mut d, 1, 3, vec![file(200, &[0], false)]);
    assert_eq!(get(&d, 1).files.len(), MAX_FILES_PER_RECORDING);
    assert!(get(&d, 1).file(&fid(200)).is_none());
}

#[test]
fn a_file_keeps_at_most_its_bound_of_segments() {
    let mut d = MemDocs::default();
    start(&mut d, 1, 1_000);
    let mut seq = 0u32;
    while (seq as usize) < MAX_SEGMENTS_PER_FILE + 10 {
        let batch: Vec<u32> = (seq..seq + 64).collect();
        report(&mut d, 1, 3, vec![file(1, &batch, false)]);
        seq += 64;
    }
    assert_eq!(get(&d, 1).files[0].segments.len(), MAX_SEGMENTS_PER_FILE);
}

fn stats_event(seq: u64, at_ms: u64, kind: EventKind) -> ParticipantEvent {
    ParticipantEvent {
        seq,
        room_id: ROOM,
        room_name: "Board".into(),
        room_slug: RoomSlug::from_random([3; 16]),
        participant_id: ParticipantId("p-host".into()),
        at_ms,
        kind,
    }
}

fn stats(d: &mut MemDocs, events: Vec<ParticipantEvent>) {
    run(
        d,
        Command::Stats(StatsCommand::Record {
            node_id: NodeId(3),
            boot: 1,
            events,
            received_at_ms: 0,
            webhooks: true,
        }),
    );
}

#[test]
fn the_meetings_end_stops_a_running_recording_in_the_policy_and_the_index() {
    let mut d = MemDocs::default();
    let joined = EventKind::Joined {
        display_name: "Ann".into(),
        user: None,
        guest: false,
    };
    stats(&mut d, vec![stats_event(1, 500, joined)]);
    start(&mut d, 1, 1_000);
    stats(&mut d, vec![stats_event(2, 9_000, EventKind::Left)]);
    let policy = crate::store::policies::policy_of(&d, ROOM).unwrap();
    assert_eq!(policy.recording, None, "nodes stop writing");
    let r = get(&d, 1);
    assert_eq!(r.stopped_at_ms, Some(9_000));
    assert_eq!(
        r.state(),
        RecordingState::Finishing,
        "the node of the last leave is awaited"
    );
    assert_eq!(r.awaiting, [NodeId(3)].into());
    done(&mut d, 1, 3, vec![]);
    assert_eq!(get(&d, 1).state(), RecordingState::Ready);
    let events = ready_events(&d);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].room_name, "Board", "the meeting's room name");
}

#[test]
fn a_lost_node_leaves_its_writing_files_interrupted_and_the_recording_ready() {
    let mut d = MemDocs::default();
    start(&mut d, 1, 1_000);
    report(&mut d, 1, 3, vec![file(1, &[0, 1], false)]);
    report(&mut d, 1, 4, vec![file(2, &[0], true)]);
    assert_eq!(writing_nodes(&d).unwrap(), [NodeId(3)]);
    stop(&mut d, 30_000);
    run(
        &mut d,
        Command::Stats(StatsCommand::NodeLost {
            node_id: NodeId(3),
            at_ms: 31_000,
            webhooks: false,
        }),
    );
    let r = get(&d, 1);
    assert_eq!(r.file(&fid(1)).unwrap().state(), FileState::Interrupted);
    assert_eq!(
        r.file(&fid(1)).unwrap().segments.len(),
        2,
        "its segments stay"
    );
    assert_eq!(r.file(&fid(2)).unwrap().state(), FileState::Complete);
    assert_eq!(r.state(), RecordingState::Ready);
    assert!(writing_nodes(&d).unwrap().is_empty());
    assert!(ready_events(&d).is_empty(), "webhooks are off now");
}

#[test]
fn lists_are_newest_first_per_room_and_overall_and_retention_sees_the_stopped() {
    let mut d = MemDocs::default();
    for (n, at) in [(1u8, 1_000u64), (2, 2_000), (3, 3_000)] {
        start(&mut d, n, at);
        stop(&mut d, at + 500);
    }
    let ids = |v: Vec<Recording>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(all_recordings(&d, None, 10).unwrap()),
        [rid(3), rid(2), rid(1)]
    );
    assert_eq!(ids(all_recordings(&d, Some(3_000), 1).unwrap()), [rid(2)]);
    assert_eq!(
        ids(room_recordings(&d, ROOM, Some(2_000), 10).unwrap()),
        [rid(1)]
    );
    assert!(room_recordings(&d, RoomId(8), None, 10).unwrap().is_empty());
    assert_eq!(
        ids(rooms_recordings(&d, &[RoomId(8), ROOM], None, 2).unwrap()),
        [rid(3), rid(2)]
    );
    assert_eq!(expired(&d, 2_600, 10).unwrap(), [rid(1), rid(2)]);
    assert_eq!(expired(&d, 10_000, 1).unwrap(), [rid(1)]);
}

/// Participant `who` joins (or leaves) `ROOM` on `node`, event `seq`.
fn seat(d: &mut MemDocs, node: u64, seq: u64, who: &str, kind: EventKind) {
    let mut ev = stats_event(seq, 500, kind);
    ev.participant_id = ParticipantId(who.into());
    run(
        d,
        Command::Stats(StatsCommand::Record {
            node_id: NodeId(node),
            boot: 1,
            events: vec![ev],
            received_at_ms: 0,
            webhooks: true,
        }),
    );
}

fn joined() -> EventKind {
    EventKind::Joined {
        display_name: "Ann".into(),
        user: None,
        guest: false,
    }
}

fn stop_waiting(d: &mut MemDocs, at_ms: u64) -> u64 {
    let cmd = Command::Recordings(RecordingCommand::StopWaiting {
        at_ms,
        webhooks: true,
    });
    match run(d, cmd) {
        CommandOutput::Recordings(o) => match *o {
            RecordingOutput::WaitsEnded(n) => n,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stop_with_no_file_yet_waits_for_every_hosting_nodes_done() {
    let mut d = MemDocs::default();
    seat(&mut d, 3, 1, "ann", joined());
    seat(&mut d, 4, 1, "bob", joined());
    start(&mut d, 1, 1_000);
    stop(&mut d, 11_000);
    let r = get(&d, 1);
    assert_eq!(
        r.state(),
        RecordingState::Finishing,
        "not ready with zero files"
    );
    assert_eq!(r.awaiting, [NodeId(3), NodeId(4)].into());
    assert_eq!(writing_nodes(&d).unwrap(), [NodeId(3), NodeId(4)]);
    // Files announced after the stop are kept.
    report(&mut d, 1, 3, vec![file(1, &[], false)]);
    done(&mut d, 1, 3, vec![file(1, &[0], true)]);
    assert_eq!(
        get(&d, 1).state(),
        RecordingState::Finishing,
        "node 4 awaited"
    );
    done(&mut d, 1, 4, vec![file(2, &[0], true)]);
    let r = get(&d, 1);
    assert_eq!(r.state(), RecordingState::Ready);
    assert_eq!(r.files.len(), 2);
    let events = ready_events(&d);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].recording.as_ref().unwrap().files, 2);
    assert!(writing_nodes(&d).unwrap().is_empty());
}

#[test]
fn a_file_reported_after_ready_is_kept_without_a_second_webhook() {
    let mut d = MemDocs::default();
    set_webhooks(&mut d, true).unwrap();
    start(&mut d, 1, 1_000);
    stop(&mut d, 5_000);
    assert_eq!(get(&d, 1).state(), RecordingState::Ready);
    assert_eq!(ready_events(&d).len(), 1);
    report(&mut d, 1, 3, vec![file(1, &[0], false)]);
    let r = get(&d, 1);
    assert_eq!(r.files.len(), 1, "never silently dropped");
    assert_eq!(r.state(), RecordingState::Ready);
    done(&mut d, 1, 3, vec![file(1, &[0], true)]);
    assert_eq!(
        get(&d, 1).file(&fid(1)).unwrap().state(),
        FileState::Complete
    );
    assert_eq!(ready_events(&d).len(), 1, "the event is not sent again");
}

#[test]
fn a_done_before_the_stop_is_remembered_until_the_node_records_again() {
    let mut d = MemDocs::default();
    seat(&mut d, 3, 1, "ann", joined());
    seat(&mut d, 4, 1, "bob", joined());
    start(&mut d, 1, 1_000);
    // Node 3 says done before any file (its room closed there); node 4
    // said done, then recorded again.
    done(&mut d, 1, 3, vec![]);
    done(&mut d, 1, 4, vec![]);
    report(&mut d, 1, 4, vec![file(2, &[0], false)]);
    stop(&mut d, 9_000);
    let r = get(&d, 1);
    assert_eq!(r.awaiting, [NodeId(4)].into(), "node 3's done is kept");
    done(&mut d, 1, 4, vec![file(2, &[0], true)]);
    assert_eq!(get(&d, 1).state(), RecordingState::Ready);
}

#[test]
fn a_done_leaves_the_nodes_unended_files_interrupted() {
    let mut d = MemDocs::default();
    start(&mut d, 1, 1_000);
    report(&mut d, 1, 3, vec![file(1, &[0], false)]);
    stop(&mut d, 9_000);
    done(&mut d, 1, 3, vec![]);
    let r = get(&d, 1);
    assert_eq!(r.file(&fid(1)).unwrap().state(), FileState::Interrupted);
    assert_eq!(r.state(), RecordingState::Ready);
}

#[test]
fn an_awaited_node_that_dies_is_no_longer_awaited() {
    let mut d = MemDocs::default();
    seat(&mut d, 3, 1, "ann", joined());
    seat(&mut d, 4, 1, "bob", joined());
    start(&mut d, 1, 1_000);
    stop(&mut d, 9_000);
    done(&mut d, 1, 3, vec![]);
    run(
        &mut d,
        Command::Recordings(RecordingCommand::NodeLost {
            node_id: NodeId(4),
            webhooks: true,
        }),
    );
    assert_eq!(get(&d, 1).state(), RecordingState::Ready);
    assert_eq!(ready_events(&d).len(), 1);
}

#[test]
fn a_node_that_never_says_done_is_given_up_on_after_the_wait() {
    use veche_protocol::limits::recording::DONE_WAIT_MS;
    let mut d = MemDocs::default();
    seat(&mut d, 3, 1, "ann", joined());
    start(&mut d, 1, 1_000);
    report(&mut d, 1, 3, vec![file(1, &[0], false)]);
    stop(&mut d, 9_000);
    start(&mut d, 2, 20_000);
    stop(&mut d, 30_000);
    assert_eq!(oldest_finishing(&d).unwrap(), Some(9_000));
    assert_eq!(stop_waiting(&mut d, 9_000 + DONE_WAIT_MS - 1), 0, "not yet");
    assert_eq!(get(&d, 1).state(), RecordingState::Finishing);
    assert_eq!(stop_waiting(&mut d, 9_000 + DONE_WAIT_MS), 1);
    let r = get(&d, 1);
    assert_eq!(r.state(), RecordingState::Ready);
    assert!(r.awaiting.is_empty());
    assert_eq!(r.file(&fid(1)).unwrap().state(), FileState::Interrupted);
    assert_eq!(
        get(&d, 2).state(),
        RecordingState::Finishing,
        "stopped later"
    );
    assert_eq!(oldest_finishing(&d).unwrap(), Some(30_000));
    assert_eq!(stop_waiting(&mut d, 9_000 + DONE_WAIT_MS), 0, "idempotent");
    assert_eq!(ready_events(&d).len(), 1);
}
