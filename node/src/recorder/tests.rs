//! The file recorder with real VP8 and Opus, checked by ffprobe/ffmpeg.

use super::file::{FileAction, FileRecorder};
use super::segmenter::Upload;
use super::testmedia::{self, a_video_packet_near, decode_errors, probe};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use veche_protocol::signal::MediaKind;
use veche_protocol::TrackId;

const T0: i64 = 1_800_000_000_000_000;
/// Matroska's Cluster element id.
const CLUSTER_ID: [u8; 4] = [0x1f, 0x43, 0xb6, 0x75];

fn tid(s: &str) -> TrackId {
    TrackId::from_random([s.len() as u8; 8])
}

/// What a run produced: segments as first uploaded, segments after the
/// re-uploads, the spool path, and whether a keyframe was asked for
/// after the start.
struct Run {
    first: BTreeMap<u32, Vec<u8>>,
    last: BTreeMap<u32, Vec<u8>>,
    cuts: Vec<Upload>,
    spool: std::path::PathBuf,
    late_keyframe_asks: usize,
    /// Uploads before the file said it started, and how often it did.
    uploads_before_start: usize,
    starts: usize,
    dropped: u64,
    rewritten: Vec<u32>,
}

fn record(lose: &[usize]) -> Run {
    record_until(lose, i64::MAX, false)
}

/// Records, with the video stopping after `video_until_us`.
fn record_until(lose: &[usize], video_until_us: i64, padding: bool) -> Run {
    record_media(testmedia::media(), lose, video_until_us, padding)
}

/// [`record_until`] of media `m`.
fn record_media(m: &testmedia::Media, lose: &[usize], video_until_us: i64, padding: bool) -> Run {
    let spool = testmedia::path("f.webm");
    let base = Instant::now();
    let tracks = [
        (tid("cam"), MediaKind::Video),
        (tid("mic"), MediaKind::Audio),
    ];
    let (mut rec, first_asks) = FileRecorder::new(spool.clone(), &tracks, base);
    assert_eq!(first_asks, vec![FileAction::RequestKeyframe(tid("cam"))]);
    let mut run = Run {
        first: BTreeMap::new(),
        last: BTreeMap::new(),
        cuts: Vec::new(),
        spool: spool.clone(),
        late_keyframe_asks: 0,
        uploads_before_start: 0,
        starts: 0,
        dropped: 0,
        rewritten: Vec::new(),
    };
    let read = |r: &std::ops::Range<u64>| {
        let all = std::fs::read(&spool).unwrap();
        all[r.start as usize..r.end as usize].to_vec()
    };
    let all = testmedia::arrivals_of(m, u32::MAX - 20_000, lose, padding);
    for a in all
        .into_iter()
        .filter(|a| a.track == 1 || a.at_us < video_until_us)
    {
        let now = base + Duration::from_micros(a.at_us as u64);
        for act in rec.push(a.track, a.pkt, now, T0 + a.at_us).unwrap() {
            match act {
                FileAction::Started => run.starts += 1,
                FileAction::RequestKeyframe(_) => run.late_keyframe_asks += 1,
                FileAction::Upload(up) => {
                    if run.starts == 0 {
                        run.uploads_before_start += 1;
                    }
                    let bytes = read(&up.range);
                    run.first.insert(up.seq, bytes.clone());
                    run.last.insert(up.seq, bytes);
                    run.cuts.push(up);
                }
            }
        }
    }
    run.dropped = rec.dropped;
    let end = base + Duration::from_secs(testmedia::SECONDS + 1);
    let fin = rec.finish(end).unwrap().expect("a file");
    for up in fin.uploads {
        if up.rewrite {
            run.rewritten.push(up.seq);
        } else {
            run.first.insert(up.seq, read(&up.range));
        }
        run.last.insert(up.seq, read(&up.range));
    }
    assert_eq!(fin.bytes, std::fs::metadata(&spool).unwrap().len());
    run
}

fn concat(segs: &BTreeMap<u32, Vec<u8>>) -> Vec<u8> {
    let keys: Vec<u32> = segs.keys().copied().collect();
    assert_eq!(
        keys,
        (0..keys.len() as u32).collect::<Vec<_>>(),
        "no seq missing"
    );
    segs.values().flatten().copied().collect()
}

/// Asserts that `spool` holds an Opus and a VP8 stream lasting the test
/// media's length (±0.6 s) and that ffmpeg decodes it without an error.
fn assert_whole_recording(spool: &std::path::Path) {
    let (duration, codecs) = probe(spool);
    assert_eq!(codecs, vec!["opus", "vp8"]);
    let want = testmedia::SECONDS as f64;
    assert!(
        (duration - want).abs() < 0.6,
        "duration {duration}, want {want}"
    );
    let errors = decode_errors(spool);
    assert!(errors.is_empty(), "ffmpeg decoding errors: {errors}");
}

#[test]
fn recorded_vp8_and_opus_with_reordering_and_loss_decode_cleanly_at_the_right_length() {
    let lost = a_video_packet_near(5);
    let run = record(&[lost]);
    let whole = concat(&run.last);
    assert_eq!(
        whole,
        std::fs::read(&run.spool).unwrap(),
        "segments = the spool file"
    );
    assert_whole_recording(&run.spool);
    // The loss cost frames up to the next keyframe, and one was asked for.
    assert!(run.dropped > 0, "frames after the loss were dropped");
    assert!(
        run.late_keyframe_asks > 0,
        "a keyframe was requested after loss"
    );
    // Finalize rewrote the header: segment 0 went up again.
    assert_eq!(run.rewritten, vec![0]);
}

#[test]
fn a_resolution_change_keeps_one_file_that_decodes_at_both_sizes() {
    let run = record_media(testmedia::resized(), &[], i64::MAX, false);
    assert_whole_recording(&run.spool);
    assert_eq!(
        testmedia::frame_sizes(&run.spool),
        [(320, 240), (640, 360)].into_iter().collect(),
        "frames of both sizes decode from the one file"
    );
    assert_eq!(run.dropped, 0, "nothing was dropped at the switch");
}

#[test]
fn a_file_says_it_started_once_and_before_its_first_segment() {
    let run = record(&[]);
    assert_eq!(run.starts, 1, "the muxer starts once");
    assert_eq!(
        run.uploads_before_start, 0,
        "no segment before the start (the announcement goes first)"
    );
    assert!(!run.cuts.is_empty(), "there were segments to precede");
}

#[test]
fn segments_are_cut_only_at_cluster_starts_after_the_segment_length() {
    let run = record(&[]);
    assert!(
        !run.cuts.is_empty(),
        "a 13 s file has a segment before its end"
    );
    let spool = std::fs::read(&run.spool).unwrap();
    let mut expect_start = 0;
    for up in &run.cuts {
        assert_eq!(up.range.start, expect_start, "segments are contiguous");
        let at = up.range.end as usize;
        assert_eq!(
            spool[at..at + 4],
            CLUSTER_ID,
            "segment {} ends at a cluster",
            up.seq
        );
        assert!(up.end_ms >= up.start_ms + 10_000);
        expect_start = up.range.end;
    }
}

#[test]
fn the_segments_uploaded_before_finalize_play_on_their_own() {
    let run = record(&[]);
    // A node that died before finalize left only the segments cut so far.
    let cut: BTreeMap<u32, Vec<u8>> = run
        .first
        .iter()
        .filter(|(seq, _)| run.cuts.iter().any(|c| c.seq == **seq))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let prefix = testmedia::path("prefix.webm");
    std::fs::write(&prefix, concat(&cut)).unwrap();
    let (duration, codecs) = probe(&prefix);
    assert_eq!(codecs, vec!["opus", "vp8"]);
    let _ = duration; // unknown-size segment: ffprobe may not know it
    let errors = decode_errors(&prefix);
    assert!(errors.is_empty(), "ffmpeg decoding errors: {errors}");
}

#[test]
fn a_camera_that_goes_silent_leaves_a_gap_and_segments_still_cut() {
    // The camera stops after 3 s; the microphone goes on to 13 s.
    let run = record_until(&[], 3_000_000, false);
    assert!(
        !run.cuts.is_empty(),
        "a segment was cut while the video was silent"
    );
    let (duration, codecs) = probe(&run.spool);
    assert_eq!(codecs, vec!["opus", "vp8"]);
    assert!(
        (duration - testmedia::SECONDS as f64).abs() < 0.6,
        "duration {duration}"
    );
    let errors = decode_errors(&run.spool);
    assert!(errors.is_empty(), "ffmpeg decoding errors: {errors}");
    assert_eq!(concat(&run.last), std::fs::read(&run.spool).unwrap());
}

#[test]
fn padding_packets_between_frames_are_not_taken_for_loss() {
    let run = record_until(&[], i64::MAX, true);
    assert_eq!(run.dropped, 0, "no frame dropped");
    let errors = decode_errors(&run.spool);
    assert!(errors.is_empty(), "ffmpeg decoding errors: {errors}");
}
