//! Test doubles for the data path, shared by the unit tests of the
//! modules above it: a publisher in memory instead of a browser or a node.

use super::up::{Origin, UpTrack, Upstream};
use crate::metrics::Metrics;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use veche_protocol::signal::TrackInfo;
use veche_protocol::ParticipantId;

/// A publisher in memory: records the keyframe requests and NACKs that
/// reach it.
#[derive(Default)]
pub(crate) struct RecordingUpstream {
    keyframes: AtomicU32,
    nacked: Mutex<Vec<u16>>,
}

impl RecordingUpstream {
    /// Keyframe requests received so far.
    pub(crate) fn keyframes(&self) -> u32 {
        self.keyframes.load(Ordering::Relaxed)
    }

    /// Sequence numbers NACKed so far, in order.
    pub(crate) fn nacked(&self) -> Vec<u16> {
        self.nacked.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Upstream for RecordingUpstream {
    async fn request_keyframe(&self) {
        self.keyframes.fetch_add(1, Ordering::Relaxed);
    }

    fn nack(&self, missing: &[u16]) {
        self.nacked.lock().unwrap().extend_from_slice(missing);
    }
}

/// VP8 at 90 kHz, as browsers send it.
pub(crate) fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "video/VP8".into(),
        clock_rate: 90_000,
        ..Default::default()
    }
}

/// A track published on this node by `publisher`, fed by the test through
/// [`UpTrack::fan_out`], whose every keyframe request reaches the returned
/// recorder (no coalescing).
pub(crate) fn local_track(
    info: TrackInfo,
    publisher: ParticipantId,
) -> (Arc<UpTrack>, Arc<RecordingUpstream>) {
    let upstream = Arc::new(RecordingUpstream::default());
    let up = UpTrack::new(
        info,
        publisher,
        vp8(),
        String::new(),
        Origin::Local,
        upstream.clone(),
        Metrics::new(),
    );
    up.set_keyframe_interval(Duration::ZERO);
    (up, upstream)
}
