//! The room's recorder hooks, with participants in memory and a real
//! recorder writing to a local object store.

use super::tests::{camera, join, pid, room};
use super::*;
use crate::recorder::reporter::Reporter;
use crate::recorder::room::RecorderEnv;
use crate::recorder::testmedia::arrivals;
use crate::recorder::RecordingStorage;
use crate::test_support::eventually;
use crate::track::testing::{local_track, RecordingUpstream};
use crate::track::Sink;
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt};
use std::time::Duration;
use veche_protocol::recording::{segment_key, ActiveRecording, RecordedSource, RecordingId};
use veche_protocol::signal::{MediaKind, TrackInfo, TrackSource};

struct Setup {
    room: Arc<Room>,
    reporter: Reporter,
    store: Arc<dyn ObjectStore>,
    _dir: tempfile::TempDir,
}

fn setup(restart_grace: Duration) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("objects")).unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path().join("objects")).unwrap());
    let reporter = Reporter::default();
    let room = room();
    room.enable_recording(RecorderEnv {
        node_id: NodeId(7),
        storage: Some(RecordingStorage {
            store: store.clone(),
            spool_dir: dir.path().join("spool"),
        }),
        reporter: reporter.clone(),
        metrics: Metrics::new().recorder,
        restart_grace,
    });
    Setup {
        room,
        reporter,
        store,
        _dir: dir,
    }
}

fn recording() -> ActiveRecording {
    ActiveRecording {
        id: RecordingId::from_random([9; 8]),
        started_at_ms: 1_000,
        started_by: pid(1),
        started_by_name: "P1".into(),
    }
}

fn policy(version: u64, rec: Option<ActiveRecording>) -> RoomPolicy {
    RoomPolicy {
        version,
        recording: rec,
        ..Default::default()
    }
}

fn mic(n: u8, publisher: u8, origin: Origin) -> Arc<UpTrack> {
    let info = TrackInfo {
        id: TrackId::from_random([n; 8]),
        kind: MediaKind::Audio,
        source: TrackSource::Microphone,
        stream_id: pid(publisher).to_string(),
    };
    if origin == Origin::Local {
        return local_track(info, pid(publisher)).0;
    }
    UpTrack::new(
        info,
        pid(publisher),
        crate::track::testing::vp8(),
        String::new(),
        origin,
        Arc::new(RecordingUpstream::default()),
        Metrics::new(),
    )
}

fn recorded(up: &UpTrack) -> Vec<Sink> {
    up.sinks()
        .into_iter()
        .filter(|s| matches!(s, Sink::Recorder(_)))
        .collect()
}

/// The reports queued for files (not the `done` ones).
fn file_reports(r: &Reporter) -> Vec<veche_protocol::recording::FileReport> {
    r.queued().into_iter().flat_map(|r| r.files).collect()
}

/// Positions of the `done` reports in the queue.
fn dones(r: &Reporter) -> Vec<usize> {
    let q = r.queued();
    q.iter()
        .enumerate()
        .filter(|(_, r)| r.done)
        .map(|(i, _)| i)
        .collect()
}

/// Checks the queue of one recording that this node finished: `files`
/// files, each announced (description, no segments, no end) before any
/// of its segments, each ended, and one `done` after every end, with no
/// files of its own.
fn check_finished(r: &Reporter, files: usize) {
    let q = r.queued();
    assert_eq!(dones(r), vec![q.len() - 1], "one done, last");
    assert!(q.last().unwrap().files.is_empty());
    assert!(q.iter().all(|r| r.recording_id == recording().id));
    let mut seen = Vec::new();
    for f in q.iter().flat_map(|r| &r.files) {
        if !seen.contains(&f.file_id) {
            assert!(
                f.segments.is_empty() && f.end.is_none(),
                "a file's first report announces it, without segments"
            );
            seen.push(f.file_id.clone());
        }
    }
    assert_eq!(seen.len(), files, "files reported");
    let ended = q
        .iter()
        .flat_map(|r| &r.files)
        .filter(|f| f.end.is_some())
        .count();
    assert_eq!(ended, files, "every file ended before done");
}

#[tokio::test]
async fn a_policy_with_recording_records_local_tracks_only_and_one_without_it_finalizes() {
    let s = setup(Duration::ZERO);
    let _seat = join(&s.room, 1);
    let cam = camera(1, 1);
    s.room.publish(cam.clone()).unwrap();
    // A stand-in of a track published elsewhere: its own node records it.
    let relayed = mic(2, 1, Origin::Relayed);
    s.room.publish(relayed.clone()).unwrap();
    assert!(
        recorded(&cam).is_empty(),
        "nothing recorded before the policy says so"
    );

    assert!(s
        .room
        .apply_policy(policy(1, Some(recording())), PolicySource::Fetched));
    assert_eq!(
        recorded(&cam).len(),
        1,
        "the local camera feeds the recorder"
    );
    assert!(
        recorded(&relayed).is_empty(),
        "a relayed track is not recorded here"
    );
    let files = s.room.recorded_files();
    assert_eq!(files.len(), 1);
    assert_eq!(
        (files[0].0.clone(), files[0].1),
        (pid(1), RecordedSource::Camera)
    );

    for a in arrivals(0, &[])
        .into_iter()
        .filter(|a| a.track == 0)
        .take(120)
    {
        cam.fan_out(a.pkt);
    }
    eventually("the file is announced while it records", || {
        file_reports(&s.reporter)
            .iter()
            .any(|f| f.segments.is_empty() && f.end.is_none())
    })
    .await;
    assert!(dones(&s.reporter).is_empty(), "no done while recording");
    assert!(s.room.apply_policy(policy(2, None), PolicySource::Fetched));
    assert!(
        recorded(&cam).is_empty(),
        "the recorder let go of the track"
    );
    assert!(s.room.recorded_files().is_empty());
    eventually("the recording's done report is queued", || {
        !dones(&s.reporter).is_empty()
    })
    .await;
    check_finished(&s.reporter, 1);
    let file = file_reports(&s.reporter).pop().unwrap();
    assert_eq!(file.display_name, "P1");
    let key = segment_key(&recording().id, &file.file_id, 0);
    let head = s
        .store
        .head(&key.as_str().into())
        .await
        .expect("segment 0 stored");
    assert_eq!(head.size, file.end.as_ref().unwrap().bytes);
}

#[tokio::test]
async fn a_camera_turned_on_mid_file_starts_a_new_file_and_a_track_turned_off_leaves_a_gap() {
    let s = setup(Duration::ZERO);
    let _seat = join(&s.room, 1);
    assert!(s
        .room
        .apply_policy(policy(1, Some(recording())), PolicySource::Fetched));
    let m = mic(3, 1, Origin::Local);
    s.room.publish(m.clone()).unwrap();
    let first = s.room.recorded_files();
    assert_eq!(first.len(), 1);

    let cam = camera(4, 1);
    s.room.publish(cam.clone()).unwrap();
    let second = s.room.recorded_files();
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].2, second[0].2, "a new file for the new track set");
    assert_eq!(recorded(&m), vec![Sink::Recorder(second[0].2.clone())]);
    assert_eq!(recorded(&cam), vec![Sink::Recorder(second[0].2.clone())]);

    s.room.unpublish(&cam.info.id);
    assert_eq!(
        s.room.recorded_files(),
        second,
        "turning the camera off keeps the file"
    );
    assert!(recorded(&cam).is_empty());
    assert_eq!(recorded(&m).len(), 1);
}

#[tokio::test]
async fn a_participant_leaving_ends_their_files_and_a_node_without_storage_records_nothing() {
    let s = setup(Duration::ZERO);
    let (_seat, generation) = join(&s.room, 1);
    assert!(s
        .room
        .apply_policy(policy(1, Some(recording())), PolicySource::Fetched));
    let cam = camera(5, 1);
    s.room.publish(cam.clone()).unwrap();
    assert_eq!(s.room.recorded_files().len(), 1);
    s.room.leave(&pid(1), generation, LeaveReason::Left);
    assert!(s.room.recorded_files().is_empty());

    let bare = room();
    let metrics = Metrics::new();
    bare.enable_recording(RecorderEnv {
        node_id: NodeId(7),
        storage: None,
        reporter: Reporter::default(),
        metrics: metrics.recorder.clone(),
        restart_grace: Duration::ZERO,
    });
    let _seat = join(&bare, 2);
    let cam = camera(6, 2);
    bare.publish(cam.clone()).unwrap();
    assert!(bare.apply_policy(policy(1, Some(recording())), PolicySource::Fetched));
    assert!(bare.apply_policy(policy(2, Some(recording())), PolicySource::Fetched));
    assert!(recorded(&cam).is_empty());
    assert_eq!(
        metrics.recorder.refused.get(),
        1,
        "refused once, not on every change"
    );
}

#[tokio::test]
async fn a_recorded_camera_and_microphone_are_stored_as_segments_that_concatenate_to_one_playable_file(
) {
    let s = setup(Duration::ZERO);
    let _seat = join(&s.room, 1);
    let cam = camera(7, 1);
    let m = mic(8, 1, Origin::Local);
    s.room.publish(cam.clone()).unwrap();
    s.room.publish(m.clone()).unwrap();
    assert!(s
        .room
        .apply_policy(policy(1, Some(recording())), PolicySource::Fetched));
    for a in arrivals(0, &[]) {
        let up = if a.track == 0 { &cam } else { &m };
        up.fan_out(a.pkt);
        // Stay within the recorder's queue, as real time would.
        tokio::task::yield_now().await;
    }
    assert!(s.room.apply_policy(policy(2, None), PolicySource::Fetched));
    eventually("the recording's done report is queued", || {
        !dones(&s.reporter).is_empty()
    })
    .await;
    check_finished(&s.reporter, 1);
    let reports = file_reports(&s.reporter);
    let file_id = reports[0].file_id.clone();
    let segments: Vec<_> = reports.iter().flat_map(|r| r.segments.clone()).collect();
    let end = reports.last().unwrap().end.clone().unwrap();
    assert!(segments.len() >= 2, "13 s make at least two segments");
    assert_eq!(
        end.rewritten,
        vec![0],
        "finalize rewrote the header in segment 0"
    );
    let mut whole = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        assert_eq!(seg.seq, i as u32);
        let key = segment_key(&recording().id, &file_id, seg.seq);
        let bytes = s
            .store
            .get(&key.as_str().into())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len() as u64, seg.bytes);
        whole.extend_from_slice(&bytes);
    }
    assert_eq!(whole.len() as u64, end.bytes);
    let path = crate::recorder::testmedia::path("stored.webm");
    std::fs::write(&path, &whole).unwrap();
    let (duration, codecs) = crate::recorder::testmedia::probe(&path);
    assert_eq!(codecs, vec!["opus", "vp8"]);
    let want = crate::recorder::testmedia::SECONDS as f64;
    assert!((duration - want).abs() < 0.6, "duration {duration}");
    assert!((end.duration_ms as f64 / 1000.0 - want).abs() < 0.6);
    let errors = crate::recorder::testmedia::decode_errors(&path);
    assert!(errors.is_empty(), "ffmpeg decoding errors: {errors}");
    let spool_left = s
        ._dir
        .path()
        .join("spool")
        .join(recording().id.as_str())
        .join(format!("{file_id}.webm"));
    assert!(
        spool_left.exists(),
        "the spool stays until the final report is acknowledged"
    );
}

#[tokio::test]
async fn a_node_that_recorded_nothing_still_says_done_once_when_the_recording_stops() {
    let s = setup(Duration::ZERO);
    let _seat = join(&s.room, 1);
    assert!(s
        .room
        .apply_policy(policy(1, Some(recording())), PolicySource::Fetched));
    assert!(
        s.reporter.queued().is_empty(),
        "nothing to say while it runs"
    );
    assert!(s.room.apply_policy(policy(2, None), PolicySource::Fetched));
    // No file was running, so nothing is left to wait for.
    check_finished(&s.reporter, 0);
    assert!(s.room.apply_policy(policy(3, None), PolicySource::Fetched));
    s.room.close_links();
    assert_eq!(dones(&s.reporter).len(), 1, "done is said once");
}

#[tokio::test]
async fn a_room_closing_here_ends_every_file_and_then_says_done() {
    let s = setup(Duration::ZERO);
    let _one = join(&s.room, 1);
    let _two = join(&s.room, 2);
    let cams = [camera(10, 1), camera(11, 2)];
    for c in &cams {
        s.room.publish(c.clone()).unwrap();
    }
    assert!(s
        .room
        .apply_policy(policy(1, Some(recording())), PolicySource::Fetched));
    assert_eq!(s.room.recorded_files().len(), 2);
    for a in arrivals(0, &[])
        .into_iter()
        .filter(|a| a.track == 0)
        .take(120)
    {
        for c in &cams {
            c.fan_out(a.pkt.clone());
        }
    }
    eventually("both files are announced", || {
        file_reports(&s.reporter).len() == 2
    })
    .await;
    s.room.close_links();
    eventually("the recording's done report is queued", || {
        !dones(&s.reporter).is_empty()
    })
    .await;
    check_finished(&s.reporter, 2);
}

#[tokio::test]
async fn a_file_dropped_for_a_new_track_set_at_a_join_was_never_announced() {
    let s = setup(Duration::from_secs(60));
    let _seat = join(&s.room, 1);
    assert!(s
        .room
        .apply_policy(policy(1, Some(recording())), PolicySource::Fetched));
    let m = mic(12, 1, Origin::Local);
    s.room.publish(m.clone()).unwrap();
    let first = s.room.recorded_files();
    for a in arrivals(0, &[])
        .into_iter()
        .filter(|a| a.track == 1)
        .take(50)
    {
        m.fan_out(a.pkt);
    }
    let spool = s
        ._dir
        .path()
        .join("spool")
        .join(recording().id.as_str())
        .join(format!("{}.webm", first[0].2));
    eventually("the microphone-only file's muxer started", || {
        std::fs::metadata(&spool).is_ok_and(|m| m.len() > 0)
    })
    .await;
    // The camera comes within the grace: the microphone-only file goes.
    s.room.publish(camera(13, 1)).unwrap();
    assert_ne!(s.room.recorded_files(), first);
    assert!(s.room.apply_policy(policy(2, None), PolicySource::Fetched));
    eventually("the recording's done report is queued", || {
        !dones(&s.reporter).is_empty()
    })
    .await;
    assert!(
        file_reports(&s.reporter)
            .iter()
            .all(|f| f.file_id != first[0].2),
        "the dropped file left no trace in the index"
    );
}
