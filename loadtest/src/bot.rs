//! A bot: a real WebRTC client (webrtc-rs) that joins a room the way a
//! browser does — `POST /api/rooms/{slug}/join`, the signalling WebSocket,
//! an offer with its own tracks, answers to the node's offers — publishes
//! synthetic media and records what it receives.
//!
//! Nothing here knows about Veche's internals beyond the documented
//! protocol, so the same bot measures any server that speaks it.

use crate::media::stats::ReceiveStats;
use crate::media::{AudioSource, VideoSource};
use futures::{SinkExt, StreamExt};
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};
use webrtc::rtp_transceiver::RtpSender;

/// What one bot does.
#[derive(Clone, Debug)]
pub struct BotSpec {
    /// Display name.
    pub name: String,
    /// Publish VP8 video at this bitrate.
    pub video_bps: Option<u32>,
    /// Publish Opus-sized audio.
    pub audio: bool,
    /// Whether this bot should receive anything (a lone publisher does
    /// not), so the report can tell a failure from an empty room.
    pub expects_media: bool,
}

/// Where the bot joins.
#[derive(Clone, Debug)]
pub struct Target {
    /// Server base URL, `http://127.0.0.1:8080`.
    pub base: String,
    /// Room slug.
    pub slug: String,
    /// The shared clock all bots stamp RTP timestamps against.
    pub epoch: Instant,
    /// Counts bots that have received their first packet, so the runner
    /// can start measuring once media flows everywhere.
    pub receiving: Arc<std::sync::atomic::AtomicUsize>,
}

/// What a bot measured, for the report.
#[derive(Debug, Default)]
pub struct BotResult {
    /// Name.
    pub name: String,
    /// Copied from the spec.
    pub expects_media: bool,
    /// From the join API call to the first RTP packet received, if any
    /// arrived.
    pub join_to_first_rtp: Option<Duration>,
    /// Per received track (keyed by the publisher's stream id and kind).
    pub received: BTreeMap<String, ReceiveStats>,
    /// Packets this bot sent.
    pub packets_sent: u64,
    /// Keyframe requests this bot's video source answered.
    pub keyframes_requested: u64,
    /// Set if the bot failed; the report lists these.
    pub error: Option<String>,
}

/// Shared between the bot's tasks while it runs.
#[derive(Default)]
struct Shared {
    join_started: Option<Instant>,
    first_rtp: Option<Instant>,
    received: BTreeMap<String, ReceiveStats>,
    packets_sent: u64,
    keyframes_requested: u64,
}

struct Handler {
    gathered: watch::Sender<bool>,
    /// Set once DTLS is up: writing RTP before that only produces errors.
    connected: watch::Sender<bool>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self
            .connected
            .send(state == RTCPeerConnectionState::Connected);
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, v: &Value) -> Result<(), String> {
    ws.send(Message::text(v.to_string()))
        .await
        .map_err(|e| format!("signalling send: {e}"))
}

fn resolve_ws(base: &str, ws_url: &str) -> String {
    if ws_url.starts_with("ws://") || ws_url.starts_with("wss://") {
        ws_url.to_owned()
    } else {
        let origin = base
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        format!("{}{ws_url}", origin.trim_end_matches('/'))
    }
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("OS RNG available");
    u32::from_be_bytes(b)
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

fn local_track(
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

/// Runs one bot until `stop` turns true. Errors are reported in the
/// result, not returned, so one failing bot doesn't abort a load run.
pub async fn run(spec: BotSpec, target: Target, stop: watch::Receiver<bool>) -> BotResult {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let name = spec.name.clone();
    let expects_media = spec.expects_media;
    let error = run_inner(spec, target, stop, shared.clone()).await.err();
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
        error,
    }
}

async fn build_pc(handler: Arc<Handler>) -> Result<Arc<dyn PeerConnection>, webrtc::error::Error> {
    let mut me = MediaEngine::default();
    me.register_default_codecs()?;
    let registry = register_default_interceptors(Registry::new(), &mut me)?.with(
        Slot::from(14_000),
        veche_node::interceptor::KeyframeRequestForwarder::default(),
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
        .await?;
    Ok(Arc::new(pc))
}

async fn run_inner(
    spec: BotSpec,
    target: Target,
    mut stop: watch::Receiver<bool>,
    shared: Arc<Mutex<Shared>>,
) -> Result<(), String> {
    let http = reqwest::Client::new();
    shared.lock().expect("lock poisoned").join_started = Some(Instant::now());
    let join: Value = http
        .post(format!("{}/api/rooms/{}/join", target.base, target.slug))
        .json(&json!({ "display_name": spec.name }))
        .send()
        .await
        .map_err(|e| format!("join request: {e}"))?
        .error_for_status()
        .map_err(|e| format!("join refused: {e}"))?
        .json()
        .await
        .map_err(|e| format!("join response: {e}"))?;
    let token = join["token"]
        .as_str()
        .ok_or("join response without token")?;
    let ws_url = resolve_ws(&target.base, join["ws_url"].as_str().ok_or("no ws_url")?);
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .map_err(|e| format!("signalling connect: {e}"))?;
    send(&mut ws, &json!({ "type": "join", "token": token })).await?;

    let (gathered_tx, mut gathered_rx) = watch::channel(false);
    let (connected_tx, connected_rx) = watch::channel(false);
    let (tracks_tx, mut tracks_rx) = mpsc::unbounded_channel();
    let pc = build_pc(Arc::new(Handler {
        gathered: gathered_tx,
        connected: connected_tx,
        tracks: tracks_tx,
    }))
    .await
    .map_err(|e| format!("peer connection: {e}"))?;

    // Our own tracks, or receive-only sections so the offer has media.
    let mut declared = serde_json::Map::new();
    let video = match spec.video_bps {
        Some(bps) => {
            let ssrc = random_u32();
            let t = local_track(
                RtpCodecKind::Video,
                MIME_TYPE_VP8,
                90_000,
                0,
                ssrc,
                "bot-video",
            );
            let sender = pc
                .add_track(t.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(|e| format!("add video: {e}"))?;
            declared.insert("bot-video".into(), json!("camera"));
            Some((t, sender, VideoSource::new(bps, ssrc, 96, target.epoch)))
        }
        None => {
            pc.add_transceiver_from_kind(
                RtpCodecKind::Video,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| format!("recvonly video: {e}"))?;
            None
        }
    };
    let audio = if spec.audio {
        let ssrc = random_u32();
        let t = local_track(
            RtpCodecKind::Audio,
            MIME_TYPE_OPUS,
            48_000,
            2,
            ssrc,
            "bot-audio",
        );
        let sender = pc
            .add_track(t.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| format!("add audio: {e}"))?;
        declared.insert("bot-audio".into(), json!("microphone"));
        Some((t, sender, AudioSource::new(ssrc, 111, target.epoch)))
    } else {
        pc.add_transceiver_from_kind(
            RtpCodecKind::Audio,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| format!("recvonly audio: {e}"))?;
        None
    };

    let offer = pc
        .create_offer(None)
        .await
        .map_err(|e| format!("offer: {e}"))?;
    pc.set_local_description(offer)
        .await
        .map_err(|e| format!("set local offer: {e}"))?;
    let _ = tokio::time::timeout(Duration::from_secs(2), gathered_rx.wait_for(|g| *g)).await;
    let sdp = pc
        .local_description()
        .await
        .ok_or("no local description")?
        .sdp;
    send(
        &mut ws,
        &json!({ "type": "offer", "sdp": sdp, "tracks": declared }),
    )
    .await?;

    // Publishing tasks.
    let mut tasks = Vec::new();
    if let Some((track, sender, source)) = video {
        tasks.push(tokio::spawn(publish_video(
            track,
            sender,
            source,
            shared.clone(),
            stop.clone(),
            connected_rx.clone(),
        )));
    }
    if let Some((track, sender, source)) = audio {
        tasks.push(tokio::spawn(publish_audio(
            track,
            sender,
            source,
            shared.clone(),
            stop.clone(),
            connected_rx.clone(),
        )));
    }

    // Signalling and incoming tracks until told to stop.
    let result = loop {
        tokio::select! {
            _ = stop.changed() => break Ok(()),
            track = tracks_rx.recv() => {
                if let Some(track) = track {
                    tasks.push(tokio::spawn(receive(track, target.clone(), shared.clone())));
                }
            }
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(c))) => break Err(format!("signalling closed: {c:?}")),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break Err(format!("signalling: {e}")),
                    None => break Err("signalling ended".into()),
                };
                let v: Value = serde_json::from_str(text.as_str()).map_err(|e| format!("bad frame: {e}"))?;
                match v["type"].as_str() {
                    Some("answer") => {
                        let desc = RTCSessionDescription::answer(v["sdp"].as_str().unwrap_or_default().to_owned())
                            .map_err(|e| format!("answer: {e}"))?;
                        pc.set_remote_description(desc).await.map_err(|e| format!("apply answer: {e}"))?;
                    }
                    Some("offer") => {
                        let desc = RTCSessionDescription::offer(v["sdp"].as_str().unwrap_or_default().to_owned())
                            .map_err(|e| format!("offer: {e}"))?;
                        pc.set_remote_description(desc).await.map_err(|e| format!("apply offer: {e}"))?;
                        let answer = pc.create_answer(None).await.map_err(|e| format!("answer: {e}"))?;
                        pc.set_local_description(answer).await.map_err(|e| format!("set answer: {e}"))?;
                        let sdp = pc.local_description().await.ok_or("no local answer")?.sdp;
                        send(&mut ws, &json!({ "type": "answer", "sdp": sdp })).await?;
                    }
                    Some("error") => break Err(format!("server error: {v}")),
                    _ => {}
                }
            }
        }
    };
    let _ = send(&mut ws, &json!({ "type": "leave" })).await;
    for t in tasks {
        t.abort();
    }
    let _ = pc.close().await;
    result
}

async fn publish_video(
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    mut source: VideoSource,
    shared: Arc<Mutex<Shared>>,
    mut stop: watch::Receiver<bool>,
    mut connected: watch::Receiver<bool>,
) {
    if connected.wait_for(|c| *c).await.is_err() {
        return;
    }
    // Keyframe requests (PLI/FIR) from the node arrive on the local
    // track's event stream; the source answers with its next keyframe.
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
                    pt = sender_pt(&sender, MIME_TYPE_VP8).await;
                }
                let packets = source.poll(Instant::now());
                let Some(pt) = pt else { continue };
                let n = packets.len() as u64;
                for mut p in packets {
                    p.header.payload_type = pt;
                    let _ = track.write_rtp(p).await;
                }
                shared.lock().expect("lock poisoned").packets_sent += n;
            }
        }
    }
    rtcp.abort();
}

async fn publish_audio(
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    mut source: AudioSource,
    shared: Arc<Mutex<Shared>>,
    mut stop: watch::Receiver<bool>,
    mut connected: watch::Receiver<bool>,
) {
    if connected.wait_for(|c| *c).await.is_err() {
        return;
    }
    let mut pt = None;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep_until(source.next_due().into()) => {
                if pt.is_none() {
                    pt = sender_pt(&sender, MIME_TYPE_OPUS).await;
                }
                let packets = source.poll(Instant::now());
                let Some(pt) = pt else { continue };
                let n = packets.len() as u64;
                for mut p in packets {
                    p.header.payload_type = pt;
                    let _ = track.write_rtp(p).await;
                }
                shared.lock().expect("lock poisoned").packets_sent += n;
            }
        }
    }
}

async fn receive(track: Arc<dyn TrackRemote>, target: Target, shared: Arc<Mutex<Shared>>) {
    let epoch = target.epoch;
    let stream = track.stream_id().await;
    let Some(&ssrc) = track.ssrcs().await.first() else {
        return;
    };
    let codec = track.codec(ssrc).await;
    let (clock, kind) = match &codec {
        Some(c) if c.mime_type.to_ascii_lowercase().starts_with("audio") => (c.clock_rate, "audio"),
        Some(c) => (c.clock_rate, "video"),
        None => (90_000, "video"),
    };
    let key = format!("{stream}/{kind}");
    while let Some(evt) = track.poll().await {
        if let TrackRemoteEvent::OnRtpPacket(p) = evt {
            let now = Instant::now();
            let mut s = shared.lock().expect("lock poisoned");
            if s.first_rtp.is_none() {
                s.first_rtp = Some(now);
                target
                    .receiving
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            s.received
                .entry(key.clone())
                .or_insert_with(|| ReceiveStats::new(clock, epoch))
                .record(
                    p.header.sequence_number,
                    p.header.timestamp,
                    p.payload.len(),
                    now,
                );
        }
    }
}
