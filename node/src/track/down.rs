//! Down tracks: one per (published track, subscriber) pair. Each has one
//! writer task that rewrites the header for its leg and hands the packet
//! to the subscriber's WebRTC connection, and one task that turns the
//! subscriber's PLI/FIR into a keyframe request on the up track.

use super::up::{Sink, UpTrack};
use crate::forward::{negotiated_pt, DownLeg, Verdict};
use crate::metrics::Metrics;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::Instrument;
use veche_protocol::ParticipantId;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::rtp_transceiver::RtpSender;

/// Packets queued per down track before the newest are dropped. About a
/// third of a second of 1.5 Mbps video: enough to absorb scheduling jitter,
/// small enough that a stuck subscriber doesn't hoard memory.
const DOWN_QUEUE: usize = 128;

/// A running down track: dropping it stops the tasks.
pub struct DownTrack {
    /// The subscriber connection's sender for this track.
    pub sender: Arc<dyn RtpSender>,
    /// The queue this down track attached to its up track, so that it
    /// detaches only that queue (see [`DownTrack::detach`]).
    queue: mpsc::Sender<rtp::Packet>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl DownTrack {
    /// Stops `up` feeding this down track. Detaching by sink alone would
    /// be wrong on a resume: the seat's new connection attaches under the
    /// same participant sink, and the old connection, closing a moment
    /// later, would remove the new one's queue and leave it without
    /// media.
    pub fn detach(&self, up: &UpTrack, sink: &Sink) {
        up.detach_queue(sink, &self.queue);
    }
}

impl Drop for DownTrack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Builds the local track a subscriber's connection sends for `up`.
pub fn local_track_for(up: &UpTrack, out_ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    use rtc::media_stream::MediaStreamTrack;
    use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters};
    let kind = match up.info.kind {
        veche_protocol::signal::MediaKind::Audio => {
            rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Audio
        }
        veche_protocol::signal::MediaKind::Video => {
            rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video
        }
    };
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        up.info.stream_id.clone(),
        up.info.id.to_string(),
        up.info.id.to_string(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(out_ssrc),
                ..Default::default()
            },
            codec: up.codec.clone(),
            ..Default::default()
        }],
    )))
}

/// Starts the writer and RTCP tasks of a down track.
pub fn start_down_track(
    up: Arc<UpTrack>,
    subscriber: ParticipantId,
    local: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    out_ssrc: u32,
    connected: tokio::sync::watch::Receiver<bool>,
    metrics: Metrics,
) -> DownTrack {
    let (tx, mut rx) = mpsc::channel::<rtp::Packet>(DOWN_QUEUE);
    let span = tracing::debug_span!("down_track", track = %up.info.id, subscriber = %subscriber);
    let writer = {
        let up = up.clone();
        let local = local.clone();
        let sender = sender.clone();
        tokio::spawn(
            async move {
                let mut leg = DownLeg::new(out_ssrc);
                let mut last_pt_query: Option<Instant> = None;
                while let Some(mut pkt) = rx.recv().await {
                    if !*connected.borrow() {
                        // SRTP keys don't exist before DTLS completes;
                        // webrtc-rs would drop the packet with a warning.
                        metrics
                            .packets_dropped
                            .with_label_values(&["not_connected"])
                            .inc();
                        continue;
                    }
                    if leg.out_pt.is_none() {
                        let due =
                            last_pt_query.is_none_or(|t| t.elapsed() >= Duration::from_millis(50));
                        if due {
                            last_pt_query = Some(Instant::now());
                            if let Ok(params) = sender.get_parameters().await {
                                leg.out_pt = negotiated_pt(
                                    &up.codec.mime_type,
                                    up.codec.clock_rate,
                                    params.rtp_parameters.codecs.iter().map(|c| {
                                        (
                                            c.rtp_codec.mime_type.as_str(),
                                            c.rtp_codec.clock_rate,
                                            c.payload_type,
                                        )
                                    }),
                                );
                            }
                        }
                    }
                    let len = pkt.payload.len() as u64;
                    match leg.rewrite(&mut pkt.header) {
                        Verdict::Drop => {
                            metrics
                                .packets_dropped
                                .with_label_values(&["not_negotiated"])
                                .inc();
                            continue;
                        }
                        Verdict::ForwardFirst => {
                            if local.write_rtp(pkt).await.is_err() {
                                // Not bound yet: let the next packet try again
                                // as the "first", so the keyframe request is
                                // made once the leg really carries media.
                                leg.first_not_delivered();
                                continue;
                            }
                            up.request_keyframe().await;
                        }
                        Verdict::Forward => {
                            if local.write_rtp(pkt).await.is_err() {
                                metrics
                                    .packets_dropped
                                    .with_label_values(&["write_failed"])
                                    .inc();
                                continue;
                            }
                        }
                    }
                    metrics.packets_out.inc();
                    metrics.bytes_out.inc_by(len);
                }
            }
            .instrument(span.clone()),
        )
    };
    let rtcp = {
        let up = up.clone();
        tokio::spawn(
            async move {
                while let Some(evt) = local.poll().await {
                    let TrackLocalEvent::OnRtcpPacket(pkts) = evt else {
                        continue;
                    };
                    let wants_keyframe = pkts.iter().any(|p| {
                        p.as_any().is::<PictureLossIndication>()
                            || p.as_any().is::<FullIntraRequest>()
                    });
                    if wants_keyframe {
                        up.request_keyframe().await;
                    }
                }
            }
            .instrument(span),
        )
    };
    up.attach(Sink::Participant(subscriber), tx.clone());
    DownTrack {
        sender,
        queue: tx,
        tasks: vec![writer, rtcp],
    }
}
