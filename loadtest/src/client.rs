//! The WebRTC client kit both bots are built from: a webrtc-rs peer
//! connection set up like a browser's, local tracks, a paced publisher,
//! and a receiver that feeds [`ReceiveStats`].
//!
//! The Veche bot ([`crate::bot`]) and the Janus bot ([`crate::janus`])
//! differ only in signalling and in two hooks: what to note about each
//! packet sent, and how to map a received RTP timestamp back to the
//! publisher's (Janus rewrites timestamps; Veche forwards them unchanged).

use crate::media::stats::ReceiveStats;
use crate::media::{AudioSource, VideoSource};
use crate::scenario::BotResult;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};
use webrtc::rtp_transceiver::RtpSender;

/// What a bot's tasks record while it runs.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) join_started: Option<Instant>,
    pub(crate) first_rtp: Option<Instant>,
    pub(crate) received: BTreeMap<String, ReceiveStats>,
    pub(crate) packets_sent: u64,
    pub(crate) keyframes_requested: u64,
    /// The media node the join placed the bot on (Veche bots only).
    pub(crate) node_id: Option<u64>,
    /// The participant id the join granted (Veche bots only).
    pub(crate) participant_id: Option<String>,
    /// When each video frame (RTP timestamp) started to go out, oldest
    /// first; only bots whose driver asks for it record this.
    pub(crate) video_frames_sent: Vec<(u32, Instant)>,
}

impl Shared {
    /// Notes a video packet with RTP timestamp `ts` sent `at`; the first
    /// packet of each frame is kept.
    pub(crate) fn note_video_sent(&mut self, ts: u32, at: Instant) {
        if self
            .video_frames_sent
            .last()
            .is_none_or(|(last, _)| *last != ts)
        {
            self.video_frames_sent.push((ts, at));
        }
    }
}

/// Tracks arrive tagged with `T`, so a bot with one connection per remote
/// publisher (the Janus bot) knows whose track it is.
struct Handler<T> {
    gathered: watch::Sender<bool>,
    connected: watch::Sender<bool>,
    tag: T,
    tracks: mpsc::UnboundedSender<(T, Arc<dyn TrackRemote>)>,
}

#[async_trait::async_trait]
impl<T: Clone + Send + Sync + 'static> PeerConnectionEventHandler for Handler<T> {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send((self.tag.clone(), track));
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self
            .connected
            .send(state == RTCPeerConnectionState::Connected);
    }
}

/// A peer connection and the two states a bot waits on.
pub(crate) struct Pc {
    pub(crate) pc: Arc<dyn PeerConnection>,
    gathered: watch::Receiver<bool>,
    /// True once DTLS is up: writing RTP before that only produces errors.
    pub(crate) connected: watch::Receiver<bool>,
}

impl Pc {
    /// Builds a connection on 127.0.0.1 with the default codecs and
    /// interceptors, plus the keyframe-request forwarder so PLI/FIR reach
    /// the publisher.
    pub(crate) async fn new<T: Clone + Send + Sync + 'static>(
        tag: T,
        tracks: mpsc::UnboundedSender<(T, Arc<dyn TrackRemote>)>,
    ) -> Result<Pc, String> {
        let (gathered_tx, gathered) = watch::channel(false);
        let (connected_tx, connected) = watch::channel(false);
        let handler = Arc::new(Handler {
            gathered: gathered_tx,
            connected: connected_tx,
            tag,
            tracks,
        });
        let mut me = MediaEngine::default();
        me.register_default_codecs()
            .map_err(|e| format!("codecs: {e}"))?;
        let registry = register_default_interceptors(Registry::new(), &mut me)
            .map_err(|e| format!("interceptors: {e}"))?
            .with(
                Slot::from(14_000),
                crate::keyframes::KeyframeRequests::default(),
            );
        let se = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .with_include_loopback_candidate(true)
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(me)
            .with_setting_engine(se)
            .with_interceptor_registry(registry)
            .with_handler(handler as Arc<dyn PeerConnectionEventHandler>)
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .map_err(|e| format!("peer connection: {e}"))?;
        Ok(Pc {
            pc: Arc::new(pc),
            gathered,
            connected,
        })
    }

    /// Creates and applies an offer; returns its SDP with our candidates.
    pub(crate) async fn offer(&mut self) -> Result<String, String> {
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(|e| format!("offer: {e}"))?;
        self.pc
            .set_local_description(offer)
            .await
            .map_err(|e| format!("set local offer: {e}"))?;
        self.local_sdp().await
    }

    /// Applies the server's answer to our offer.
    pub(crate) async fn accept_answer(&self, sdp: &str) -> Result<(), String> {
        let desc =
            RTCSessionDescription::answer(sdp.to_owned()).map_err(|e| format!("answer: {e}"))?;
        self.pc
            .set_remote_description(desc)
            .await
            .map_err(|e| format!("apply answer: {e}"))
    }

    /// Applies the server's offer and answers it; returns the answer's SDP.
    pub(crate) async fn answer_offer(&mut self, sdp: &str) -> Result<String, String> {
        let desc =
            RTCSessionDescription::offer(sdp.to_owned()).map_err(|e| format!("offer: {e}"))?;
        self.pc
            .set_remote_description(desc)
            .await
            .map_err(|e| format!("apply offer: {e}"))?;
        let answer = self
            .pc
            .create_answer(None)
            .await
            .map_err(|e| format!("answer: {e}"))?;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(|e| format!("set answer: {e}"))?;
        self.local_sdp().await
    }

    /// The local description once ICE gathering finished, so it carries
    /// our candidates and no trickle is needed.
    async fn local_sdp(&mut self) -> Result<String, String> {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.gathered.wait_for(|g| *g)).await;
        Ok(self
            .pc
            .local_description()
            .await
            .ok_or("no local description")?
            .sdp)
    }
}

/// A random SSRC.
pub(crate) fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("OS RNG available");
    u32::from_be_bytes(b)
}

/// A local track carrying pre-packetised RTP with our own SSRC.
pub(crate) fn local_track(
    kind: RtpCodecKind,
    mime: &str,
    clock: u32,
    channels: u16,
    ssrc: u32,
    id: &str,
) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "bot".to_owned(),
        id.to_owned(),
        id.to_owned(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate: clock,
                channels,
                ..Default::default()
            },
            ..Default::default()
        }],
    )))
}

/// The negotiated payload type of `sender` for `mime`, once known.
async fn sender_pt(sender: &Arc<dyn RtpSender>, mime: &str) -> Option<u8> {
    let params = sender.get_parameters().await.ok()?;
    params
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
        .map(|c| c.payload_type)
}

/// A source of RTP on a schedule: the synthetic video and audio.
pub(crate) trait Paced: Send + 'static {
    /// Packets due by `now`.
    fn poll(&mut self, now: Instant) -> Vec<Packet>;
    /// When the next packets are due.
    fn next_due(&self) -> Instant;
    /// Answers a keyframe request; sources without keyframes ignore it.
    fn request_keyframe(&mut self) {}
}

impl Paced for VideoSource {
    fn poll(&mut self, now: Instant) -> Vec<Packet> {
        VideoSource::poll(self, now)
    }
    fn next_due(&self) -> Instant {
        VideoSource::next_due(self)
    }
    fn request_keyframe(&mut self) {
        VideoSource::request_keyframe(self)
    }
}

impl Paced for AudioSource {
    fn poll(&mut self, now: Instant) -> Vec<Packet> {
        AudioSource::poll(self, now)
    }
    fn next_due(&self) -> Instant {
        AudioSource::next_due(self)
    }
}

/// A local track, its sender, and the source that feeds it.
pub(crate) struct Publication<S> {
    pub(crate) track: Arc<TrackLocalStaticRTP>,
    pub(crate) sender: Arc<dyn RtpSender>,
    pub(crate) mime: &'static str,
    pub(crate) source: S,
}

/// Sends `p.source` on `p.track` from the moment the connection is up
/// until `stop`, answering keyframe requests. `on_send` sees every packet
/// just before it goes out.
pub(crate) async fn publish<S: Paced>(
    p: Publication<S>,
    shared: Arc<Mutex<Shared>>,
    mut stop: watch::Receiver<bool>,
    mut connected: watch::Receiver<bool>,
    on_send: impl Fn(&Packet) + Send + 'static,
) {
    let Publication {
        track,
        sender,
        mime,
        mut source,
    } = p;
    if connected.wait_for(|c| *c).await.is_err() {
        return;
    }
    // Keyframe requests (PLI/FIR) from the server arrive on the local
    // track's event stream.
    let (kf_tx, mut kf_rx) = mpsc::unbounded_channel::<()>();
    let rtcp_track = track.clone();
    let rtcp = tokio::spawn(async move {
        while let Some(evt) = rtcp_track.poll().await {
            let TrackLocalEvent::OnRtcpPacket(pkts) = evt else {
                continue;
            };
            if pkts.iter().any(|p| {
                p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>()
            }) {
                let _ = kf_tx.send(());
            }
        }
    });
    let mut pt = None;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(()) = kf_rx.recv() => {
                source.request_keyframe();
                shared.lock().expect("lock poisoned").keyframes_requested += 1;
            }
            _ = tokio::time::sleep_until(source.next_due().into()) => {
                if pt.is_none() {
                    pt = sender_pt(&sender, mime).await;
                }
                let packets = source.poll(Instant::now());
                let Some(pt) = pt else { continue };
                let n = packets.len() as u64;
                for mut packet in packets {
                    packet.header.payload_type = pt;
                    on_send(&packet);
                    let _ = track.write_rtp(packet).await;
                }
                shared.lock().expect("lock poisoned").packets_sent += n;
            }
        }
    }
    rtcp.abort();
}

/// Records every packet of `track` under `<key>/<audio|video>`.
/// `publisher_ts` maps a received packet to the RTP timestamp its
/// publisher stamped, or `None` while that is not known yet (the packet is
/// then not recorded). `receiving` counts bots with media.
pub(crate) async fn receive(
    track: Arc<dyn TrackRemote>,
    key: String,
    epoch: Instant,
    receiving: Arc<AtomicUsize>,
    shared: Arc<Mutex<Shared>>,
    mut publisher_ts: impl FnMut(&Packet, bool) -> Option<u32> + Send,
) {
    let Some(&ssrc) = track.ssrcs().await.first() else {
        return;
    };
    let codec = track.codec(ssrc).await;
    let (clock, kind) = match &codec {
        Some(c) if c.mime_type.to_ascii_lowercase().starts_with("audio") => (c.clock_rate, "audio"),
        Some(c) => (c.clock_rate, "video"),
        None => (90_000, "video"),
    };
    let key = format!("{key}/{kind}");
    let video = kind == "video";
    while let Some(evt) = track.poll().await {
        if let TrackRemoteEvent::OnRtpPacket(p) = evt {
            let now = Instant::now();
            let Some(ts) = publisher_ts(&p, video) else {
                continue;
            };
            let mut s = shared.lock().expect("lock poisoned");
            if s.first_rtp.is_none() {
                s.first_rtp = Some(now);
                receiving.fetch_add(1, Ordering::Relaxed);
            }
            s.received
                .entry(key.clone())
                .or_insert_with(|| ReceiveStats::new(clock, epoch))
                .record(p.header.sequence_number, ts, p.payload.len(), now);
        }
    }
}

/// Adds `track` as a published track on `pc`.
pub(crate) async fn add_track(
    pc: &Arc<dyn PeerConnection>,
    track: &Arc<TrackLocalStaticRTP>,
) -> Result<Arc<dyn RtpSender>, String> {
    pc.add_track(track.clone() as Arc<dyn TrackLocal>)
        .await
        .map_err(|e| format!("add track: {e}"))
}

impl BotResult {
    /// Collects what a bot's tasks recorded.
    pub(crate) fn from_shared(
        name: String,
        expects_media: bool,
        shared: &Mutex<Shared>,
        error: Option<String>,
    ) -> BotResult {
        let s = std::mem::take(&mut *shared.lock().expect("lock poisoned"));
        BotResult {
            name,
            expects_media,
            join_to_first_rtp: match (s.join_started, s.first_rtp) {
                (Some(j), Some(f)) => Some(f.saturating_duration_since(j)),
                _ => None,
            },
            received: s.received,
            packets_sent: s.packets_sent,
            keyframes_requested: s.keyframes_requested,
            node_id: s.node_id,
            participant_id: s.participant_id,
            error,
        }
    }
}
