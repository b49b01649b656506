//! The up track's fan-out and feedback, with a publisher in memory.

use super::testing::{vp8, RecordingUpstream};
use super::{Origin, Sink, UpTrack};
use crate::metrics::Metrics;
use bytes::Bytes;
use rtc::rtp;
use std::sync::Arc;
use tokio::sync::mpsc;
use veche_protocol::signal::{MediaKind, TrackInfo, TrackSource};
use veche_protocol::{ParticipantId, TrackId};

fn track(kind: MediaKind, origin: Origin) -> (Arc<UpTrack>, Arc<RecordingUpstream>) {
    let upstream = Arc::new(RecordingUpstream::default());
    let up = track_counted(kind, origin, upstream.clone(), Metrics::new());
    (up, upstream)
}

/// A track of `kind` (camera or microphone) from `origin`, whose
/// feedback goes to `upstream` and whose counts go into `metrics`.
fn track_counted(
    kind: MediaKind,
    origin: Origin,
    upstream: Arc<RecordingUpstream>,
    metrics: Metrics,
) -> Arc<UpTrack> {
    let info = TrackInfo {
        id: TrackId::from_random([1; 8]),
        kind,
        source: match kind {
            MediaKind::Audio => TrackSource::Microphone,
            MediaKind::Video => TrackSource::Camera,
        },
        stream_id: "s".into(),
    };
    UpTrack::new(
        info,
        ParticipantId::from_random([2; 8]),
        vp8(),
        String::new(),
        origin,
        upstream,
        metrics,
    )
}

fn packet(seq: u16) -> rtp::Packet {
    rtp::Packet {
        header: rtp::header::Header {
            version: 2,
            sequence_number: seq,
            ..Default::default()
        },
        payload: Bytes::from_static(b"x"),
    }
}

#[test]
fn a_relayed_track_nacks_the_gaps_upstream_and_forwards_what_arrives() {
    let (up, publisher) = track(MediaKind::Video, Origin::Relayed);
    let (tx, mut rx) = mpsc::channel(16);
    up.attach(Sink::Node(veche_protocol::NodeId(3)), tx);
    for seq in [1, 2, 5, 4, 6] {
        up.relayed_packet(packet(seq));
    }
    assert_eq!(publisher.nacked(), vec![3, 4], "late 4 is not NACKed again");
    let got: Vec<u16> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|p| p.header.sequence_number)
        .collect();
    assert_eq!(got, vec![1, 2, 5, 4, 6]);
}

#[test]
fn a_detached_receiver_gets_nothing_more_and_a_full_one_does_not_stall_others() {
    let (up, _) = track(MediaKind::Video, Origin::Local);
    let (slow_tx, _slow_rx) = mpsc::channel(1);
    let (fast_tx, mut fast_rx) = mpsc::channel(16);
    let slow = Sink::Participant(ParticipantId::from_random([7; 8]));
    up.attach(slow.clone(), slow_tx);
    up.attach(
        Sink::Participant(ParticipantId::from_random([8; 8])),
        fast_tx,
    );
    for seq in 0..4 {
        up.fan_out(packet(seq));
    }
    assert_eq!(std::iter::from_fn(|| fast_rx.try_recv().ok()).count(), 4);
    up.detach(&Sink::Participant(ParticipantId::from_random([8; 8])));
    up.fan_out(packet(9));
    assert!(fast_rx.try_recv().is_err());
}

#[tokio::test]
async fn keyframe_requests_are_coalesced_and_never_sent_for_audio() {
    let (video, publisher) = track(MediaKind::Video, Origin::Local);
    for _ in 0..5 {
        video.request_keyframe().await;
    }
    assert_eq!(publisher.keyframes(), 1, "a burst reaches the encoder once");
    let (audio, publisher) = track(MediaKind::Audio, Origin::Local);
    audio.request_keyframe().await;
    assert_eq!(publisher.keyframes(), 0);
}

#[test]
fn a_held_track_forwards_nothing_to_participants_or_nodes_and_counts_it() {
    let metrics = Metrics::new();
    let up = track_counted(
        MediaKind::Audio,
        Origin::Local,
        Arc::new(RecordingUpstream::default()),
        metrics.clone(),
    );
    let labelled = metrics
        .track_packets_forwarded
        .with_label_values(&["1", "t", "microphone"]);
    up.count_into(labelled.clone());
    let (ptx, mut prx) = mpsc::channel(16);
    let (ntx, mut nrx) = mpsc::channel(16);
    up.attach(Sink::Participant(ParticipantId::from_random([8; 8])), ptx);
    up.attach(Sink::Node(veche_protocol::NodeId(3)), ntx);
    up.fan_out(packet(1));
    assert!(up.set_withheld(true), "the switch changed");
    assert!(!up.set_withheld(true), "setting it again changes nothing");
    for seq in 2..6 {
        up.fan_out(packet(seq));
    }
    assert_eq!(up.forwarded(), 1);
    assert_eq!(labelled.get(), 1);
    assert_eq!(metrics.packets_withheld.get(), 4);
    assert_eq!(std::iter::from_fn(|| prx.try_recv().ok()).count(), 1);
    assert_eq!(std::iter::from_fn(|| nrx.try_recv().ok()).count(), 1);
    up.set_withheld(false);
    up.fan_out(packet(6));
    assert_eq!(up.forwarded(), 2);
    assert_eq!(prx.try_recv().unwrap().header.sequence_number, 6);
}

#[test]
fn a_closing_connection_does_not_detach_the_queue_of_its_seats_new_connection() {
    // A resume: the seat's new connection attaches under the same sink,
    // then the old one closes and detaches its own queue.
    let (up, _) = track(MediaKind::Video, Origin::Local);
    let sink = Sink::Participant(ParticipantId::from_random([3; 8]));
    let (old_tx, _old_rx) = mpsc::channel::<rtp::Packet>(4);
    let (new_tx, _new_rx) = mpsc::channel::<rtp::Packet>(4);
    up.attach(sink.clone(), old_tx.clone());
    up.attach(sink.clone(), new_tx.clone());
    up.detach_queue(&sink, &old_tx);
    assert_eq!(
        up.sinks(),
        vec![sink.clone()],
        "the new connection's queue was detached"
    );
    up.detach_queue(&sink, &new_tx);
    assert!(up.sinks().is_empty(), "its own queue is detached");
}
