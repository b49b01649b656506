//! Up tracks (one per published track) and down tracks (one per
//! published track and subscriber): the forwarding data path.
//!
//! Each up track has one reader task that fans packets out to its down
//! tracks with `try_send` into bounded queues, so a stalled subscriber
//! loses its own packets rather than delaying everyone else's. Each down
//! track has one writer task that rewrites the header for its leg and
//! hands the packet to the subscriber's connection.

use crate::forward::{negotiated_pt, DownLeg, GapDetector, KeyframeGate, Verdict};
use crate::metrics::Metrics;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, Instrument};
use veche_protocol::relay::DatagramKind;
use veche_protocol::signal::TrackInfo;
use veche_protocol::{NodeId, ParticipantId};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::rtp_transceiver::RtpSender;

/// Packets queued per down track before the newest are dropped. About a
/// third of a second of 1.5 Mbps video: enough to absorb scheduling jitter,
/// small enough that a stuck subscriber doesn't hoard memory.
const DOWN_QUEUE: usize = 128;

/// Who receives an up track's packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// A participant on this node (one down track).
    Participant(ParticipantId),
    /// Another media node, which fans the track out to its own
    /// participants. At most one per node, however many subscribers it has.
    Node(NodeId),
}

/// Where an up track's packets come from.
pub enum UpSource {
    /// A participant's browser on this node.
    Local {
        /// The browser's track.
        remote: Arc<dyn TrackRemote>,
        /// Its SSRC, for keyframe requests.
        media_ssrc: u32,
    },
    /// The publisher's node, over the relay.
    Relayed(Feedback),
    /// Packets fed in by a unit test through [`UpTrack::fan_out`]; counts
    /// keyframe requests instead of sending them.
    #[cfg(test)]
    Test(std::sync::atomic::AtomicU32),
}

/// How a relayed track asks the publisher's node for keyframes and
/// retransmissions.
#[derive(Clone)]
pub struct Feedback {
    /// The relay.
    pub relay: crate::relay::Relay,
    /// The publisher's node.
    pub peer: NodeId,
    /// The slot the track has on the link from that node.
    pub slot: u16,
}

/// A published track as this node's subscribers see it: either received
/// from a browser here, or relayed from the publisher's node.
pub struct UpTrack {
    /// Public description (id, kind, source, stream id).
    pub info: TrackInfo,
    /// Who publishes it.
    pub publisher: ParticipantId,
    /// The publisher's codec, which every down track announces.
    pub codec: RTCRtpCodec,
    /// The msid track id the publisher's browser used, to notice when the
    /// browser stops sending it (empty for a relayed track).
    pub remote_msid: String,
    source: UpSource,
    /// Current receivers' queues. Read on every packet, written on
    /// (un)subscribe, hence a read-write lock.
    subscribers: RwLock<Vec<(Sink, mpsc::Sender<rtp::Packet>)>>,
    keyframes: Mutex<KeyframeGate>,
    /// Loss on the relay hop, for a relayed track.
    gaps: Mutex<GapDetector>,
    metrics: Metrics,
}

impl UpTrack {
    /// Wraps a browser's track.
    pub fn new(
        info: TrackInfo,
        publisher: ParticipantId,
        codec: RTCRtpCodec,
        remote_msid: String,
        remote: Arc<dyn TrackRemote>,
        media_ssrc: u32,
        metrics: Metrics,
    ) -> Arc<Self> {
        Self::build(
            info,
            publisher,
            codec,
            remote_msid,
            UpSource::Local { remote, media_ssrc },
            KeyframeGate::default(),
            metrics,
        )
    }

    /// A track relayed from the publisher's node; packets arrive through
    /// [`UpTrack::relayed_packet`].
    pub fn relayed(
        info: TrackInfo,
        publisher: ParticipantId,
        codec: RTCRtpCodec,
        feedback: Feedback,
        metrics: Metrics,
    ) -> Arc<Self> {
        Self::build(
            info,
            publisher,
            codec,
            String::new(),
            UpSource::Relayed(feedback),
            KeyframeGate::default(),
            metrics,
        )
    }

    fn build(
        info: TrackInfo,
        publisher: ParticipantId,
        codec: RTCRtpCodec,
        remote_msid: String,
        source: UpSource,
        keyframes: KeyframeGate,
        metrics: Metrics,
    ) -> Arc<Self> {
        Arc::new(UpTrack {
            info,
            publisher,
            codec,
            remote_msid,
            source,
            subscribers: RwLock::new(Vec::new()),
            keyframes: Mutex::new(keyframes),
            gaps: Mutex::new(GapDetector::default()),
            metrics,
        })
    }

    /// A track fed by a unit test.
    #[cfg(test)]
    pub fn for_test(info: TrackInfo, codec: RTCRtpCodec) -> Arc<Self> {
        Self::build(
            info,
            ParticipantId::from_random([9; 8]),
            codec,
            String::new(),
            UpSource::Test(std::sync::atomic::AtomicU32::new(0)),
            KeyframeGate::new(Duration::ZERO),
            Metrics::new(),
        )
    }

    /// Where the packets come from.
    pub fn source(&self) -> &UpSource {
        &self.source
    }

    /// Hands a packet to every receiver without waiting for any of them.
    pub fn fan_out(&self, pkt: rtp::Packet) {
        let subs = self.subscribers.read().expect("lock poisoned");
        for (_, tx) in subs.iter() {
            if tx.try_send(pkt.clone()).is_err() {
                self.metrics
                    .packets_dropped
                    .with_label_values(&["subscriber_queue_full"])
                    .inc();
            }
        }
    }

    /// A packet of a relayed track arrived from the publisher's node.
    /// Returns sequence numbers skipped just before it, to NACK.
    pub fn relayed_packet(&self, pkt: rtp::Packet) -> Vec<u16> {
        let missing = self
            .gaps
            .lock()
            .expect("lock poisoned")
            .on_packet(pkt.header.sequence_number);
        self.fan_out(pkt);
        missing
    }

    /// Reads a browser's packets until its track ends and fans them out.
    /// Returns when the publisher's connection closes.
    pub async fn run(self: Arc<Self>) {
        let UpSource::Local { remote, .. } = &self.source else {
            return;
        };
        while let Some(evt) = remote.poll().await {
            match evt {
                TrackRemoteEvent::OnRtpPacket(pkt) => {
                    self.metrics.packets_in.inc();
                    self.metrics.bytes_in.inc_by(pkt.payload.len() as u64);
                    self.fan_out(pkt);
                }
                TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
                _ => {}
            }
        }
        debug!(track = %self.info.id, "up track ended");
    }

    /// Adds a receiver's queue, replacing any earlier one of the same sink.
    pub fn attach(&self, sink: Sink, tx: mpsc::Sender<rtp::Packet>) {
        let mut subs = self.subscribers.write().expect("lock poisoned");
        subs.retain(|(s, _)| s != &sink);
        subs.push((sink, tx));
    }

    /// Removes a receiver's queue.
    pub fn detach(&self, sink: &Sink) {
        self.subscribers
            .write()
            .expect("lock poisoned")
            .retain(|(s, _)| s != sink);
    }

    /// Asks the publisher for a keyframe, coalescing bursts. For a relayed
    /// track the request goes to the publisher's node, whose own gate
    /// coalesces again across all the nodes asking.
    pub async fn request_keyframe(&self) {
        if self.info.kind == veche_protocol::signal::MediaKind::Audio {
            return;
        }
        let go = self
            .keyframes
            .lock()
            .expect("lock poisoned")
            .request(Instant::now());
        if !go {
            return;
        }
        self.metrics.keyframe_requests.inc();
        match &self.source {
            UpSource::Local { remote, media_ssrc } => {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc: *media_ssrc,
                };
                if let Err(e) = remote.write_rtcp(vec![Box::new(pli)]).await {
                    debug!(track = %self.info.id, "PLI not sent: {e}");
                }
            }
            UpSource::Relayed(f) => f
                .relay
                .send_feedback(f.peer, f.slot, DatagramKind::Pli, &[]),
            #[cfg(test)]
            UpSource::Test(n) => {
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// A running down track: dropping it stops the tasks.
pub struct DownTrack {
    /// The subscriber connection's sender for this track.
    pub sender: Arc<dyn RtpSender>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
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
    up.attach(Sink::Participant(subscriber), tx);
    DownTrack {
        sender,
        tasks: vec![writer, rtcp],
    }
}
