//! The browser end of an up track: reading the packets a participant's
//! connection receives, and sending that participant's encoder its
//! keyframe requests as RTCP.

use super::up::{UpTrack, Upstream};
use crate::metrics::Metrics;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::sender_report::SenderReport;
use std::sync::Arc;
use tracing::debug;
use veche_protocol::TrackId;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// Feedback to a publisher whose browser is connected to this node.
pub struct BrowserUpstream {
    remote: Arc<dyn TrackRemote>,
    /// The track's SSRC, which a PLI names.
    media_ssrc: u32,
    /// For logs only.
    track: TrackId,
}

impl BrowserUpstream {
    /// Feedback for the browser track `remote`, whose SSRC is
    /// `media_ssrc`, published here as `track`.
    pub fn new(remote: Arc<dyn TrackRemote>, media_ssrc: u32, track: TrackId) -> Arc<Self> {
        Arc::new(BrowserUpstream {
            remote,
            media_ssrc,
            track,
        })
    }
}

#[async_trait::async_trait]
impl Upstream for BrowserUpstream {
    async fn request_keyframe(&self) {
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: self.media_ssrc,
        };
        if let Err(e) = self.remote.write_rtcp(vec![Box::new(pli)]).await {
            debug!(track = %self.track, "PLI not sent: {e}");
        }
    }

    fn nack(&self, _missing: &[u16]) {
        // The publisher's own connection NACKs loss on its hop through
        // webrtc-rs's interceptors; the up track never sees a gap to fill.
    }
}

/// Reads a browser's packets until its track ends and fans them out.
/// Returns when the publisher's connection closes.
pub async fn forward_browser_track(
    up: Arc<UpTrack>,
    remote: Arc<dyn TrackRemote>,
    metrics: Metrics,
) {
    while let Some(evt) = remote.poll().await {
        match evt {
            TrackRemoteEvent::OnRtpPacket(pkt) => {
                metrics.packets_in.inc();
                metrics.bytes_in.inc_by(pkt.payload.len() as u64);
                up.fan_out(pkt);
            }
            TrackRemoteEvent::OnRtcpPacket(packets) => {
                // Sender reports, marked for us by the interceptor: the
                // recorder maps RTP time to wall-clock time through them.
                for p in packets {
                    if let Some(sr) = p.as_any().downcast_ref::<SenderReport>() {
                        up.sender_report(sr.ntp_time, sr.rtp_time, wall_us());
                    }
                }
            }
            TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
            _ => {}
        }
    }
    debug!(track = %up.info.id, "up track ended");
}

/// The node's wall clock in µs since the Unix epoch.
fn wall_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
