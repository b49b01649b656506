//! A bot: a real WebRTC client (webrtc-rs) that joins a room the way a
//! browser does — `POST /api/rooms/{slug}/join`, the signalling WebSocket,
//! an offer with its own tracks, answers to the node's offers — publishes
//! synthetic media and records what it receives.
//!
//! Nothing here knows about Veche's internals beyond the documented
//! protocol, so the same bot measures any server that speaks it. The
//! WebRTC parts are in [`crate::client`], shared with the Janus bot.

use crate::client::{self, Pc, Publication, Shared};
use crate::media::{AudioSource, VideoSource};
pub use crate::scenario::{BotResult, BotSpec};
use futures::{SinkExt, StreamExt};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

/// Where the bot joins: a room on a Veche server.
#[derive(Clone, Debug)]
pub struct Room {
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

/// Creates a room named `loadtest` at `base` and returns its slug.
pub async fn create_room(http: &reqwest::Client, base: &str) -> Result<String, String> {
    Ok(create_owned_room(http, base).await?.0)
}

/// Creates a room named `loadtest` at `base` as an anonymous creator and
/// returns its slug and the owner key the response carried, if any (a bot
/// that presents it with [`Tap::owner_key`] joins as the room's host).
pub async fn create_owned_room(
    http: &reqwest::Client,
    base: &str,
) -> Result<(String, Option<String>), String> {
    let resp = http
        .post(format!("{base}/api/rooms"))
        .json(&serde_json::json!({ "name": "loadtest" }))
        .send()
        .await
        .map_err(|e| format!("creating a room: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("creating a room: {}", resp.status()));
    }
    let room: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| format!("room response: {e}"))?;
    let slug = room["slug"].as_str().ok_or("room without slug")?.to_owned();
    let owner_key = room["owner_key"].as_str().map(str::to_owned);
    Ok((slug, owner_key))
}

/// A bot's signalling socket opened to whoever drives the bot (the
/// mute-latency run, [`crate::mute_latency`]): frames it should send, and
/// a copy of every frame it receives. A tapped bot does not stop on an
/// `error` frame; it passes it on, and the driver decides.
pub struct Tap {
    /// Presented as `X-Veche-Owner-Key` on join, so the bot joins as host.
    pub owner_key: Option<String>,
    /// Frames to send on the signalling socket, as they come.
    pub outgoing: mpsc::UnboundedReceiver<Value>,
    /// Every frame the bot receives, in order.
    pub incoming: mpsc::UnboundedSender<Value>,
}

/// Runs one bot until `stop` turns true. Errors are reported in the
/// result, not returned, so one failing bot doesn't abort a load run.
pub async fn run(spec: BotSpec, room: Room, stop: watch::Receiver<bool>) -> BotResult {
    run_in_region(spec, room, None, stop).await
}

/// [`run`], with the join request naming `region` (the body's `region`
/// field), so a cluster's control plane places the bot on a media node of
/// that region.
pub async fn run_in_region(
    spec: BotSpec,
    room: Room,
    region: Option<String>,
    stop: watch::Receiver<bool>,
) -> BotResult {
    let shared = Arc::new(Mutex::new(Shared::default()));
    run_tapped(spec, room, region, None, shared, stop).await
}

/// [`run`] with the signalling socket tapped by the caller (`--record`'s
/// host, which joins with the owner key and starts the recording).
pub async fn run_with_tap(
    spec: BotSpec,
    room: Room,
    tap: Tap,
    stop: watch::Receiver<bool>,
) -> BotResult {
    let shared = Arc::new(Mutex::new(Shared::default()));
    run_tapped(spec, room, None, Some(tap), shared, stop).await
}

/// [`run_in_region`] with the signalling socket opened to the caller
/// through `tap`, recording into `shared`, which the caller may read while
/// the bot runs (what it has received so far, its participant id).
pub(crate) async fn run_tapped(
    spec: BotSpec,
    room: Room,
    region: Option<String>,
    tap: Option<Tap>,
    shared: Arc<Mutex<Shared>>,
    stop: watch::Receiver<bool>,
) -> BotResult {
    let name = spec.name.clone();
    let expects_media = spec.expects_media;
    let error = run_inner(spec, room, region, tap, stop, shared.clone())
        .await
        .err();
    BotResult::from_shared(name, expects_media, &shared, error)
}

async fn recvonly(pc: &Pc, kind: RtpCodecKind) -> Result<(), String> {
    pc.pc
        .add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("recvonly {kind}: {e}"))
}

async fn run_inner(
    spec: BotSpec,
    room: Room,
    region: Option<String>,
    tap: Option<Tap>,
    mut stop: watch::Receiver<bool>,
    shared: Arc<Mutex<Shared>>,
) -> Result<(), String> {
    let http = crate::target::http_client();
    shared.lock().expect("lock poisoned").join_started = Some(Instant::now());
    let mut body = json!({ "display_name": spec.name });
    if let Some(region) = &region {
        body["region"] = json!(region);
    }
    let (mut outgoing, incoming) = match tap {
        Some(t) => (Some(t.outgoing), Some((t.incoming, t.owner_key))),
        None => (None, None),
    };
    let mut request = http
        .post(format!("{}/api/rooms/{}/join", room.base, room.slug))
        .json(&body);
    if let Some(key) = incoming.as_ref().and_then(|(_, k)| k.as_deref()) {
        request = request.header(veche_protocol::pass::OWNER_KEY_HEADER, key);
    }
    let join: Value = request
        .send()
        .await
        .map_err(|e| format!("join request: {e}"))?
        .error_for_status()
        .map_err(|e| format!("join refused: {e}"))?
        .json()
        .await
        .map_err(|e| format!("join response: {e}"))?;
    {
        let mut s = shared.lock().expect("lock poisoned");
        s.node_id = join["node_id"].as_u64();
        s.participant_id = join["participant_id"].as_str().map(str::to_owned);
    }
    let token = join["token"]
        .as_str()
        .ok_or("join response without token")?;
    let ws_url = resolve_ws(&room.base, join["ws_url"].as_str().ok_or("no ws_url")?);
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .map_err(|e| format!("signalling connect: {e}"))?;
    send(&mut ws, &json!({ "type": "join", "token": token })).await?;

    let (tracks_tx, mut tracks_rx) = mpsc::unbounded_channel();
    let mut pc = Pc::new((), tracks_tx).await?;

    // Our own tracks, or receive-only sections so the offer has media.
    let mut declared = serde_json::Map::new();
    let video = match spec.video_bps {
        Some(bps) => {
            let ssrc = client::random_u32();
            let track = client::local_track(
                RtpCodecKind::Video,
                MIME_TYPE_VP8,
                90_000,
                0,
                ssrc,
                "bot-video",
            );
            let sender = client::add_track(&pc.pc, &track).await?;
            declared.insert("bot-video".into(), json!("camera"));
            Some(Publication {
                track,
                sender,
                mime: MIME_TYPE_VP8,
                source: VideoSource::new(bps, ssrc, 96, room.epoch),
            })
        }
        None => {
            recvonly(&pc, RtpCodecKind::Video).await?;
            None
        }
    };
    let audio = if spec.audio {
        let ssrc = client::random_u32();
        let track = client::local_track(
            RtpCodecKind::Audio,
            MIME_TYPE_OPUS,
            48_000,
            2,
            ssrc,
            "bot-audio",
        );
        let sender = client::add_track(&pc.pc, &track).await?;
        declared.insert("bot-audio".into(), json!("microphone"));
        Some(Publication {
            track,
            sender,
            mime: MIME_TYPE_OPUS,
            source: AudioSource::new(ssrc, 111, room.epoch),
        })
    } else {
        recvonly(&pc, RtpCodecKind::Audio).await?;
        None
    };

    let sdp = pc.offer().await?;
    send(
        &mut ws,
        &json!({ "type": "offer", "sdp": sdp, "tracks": declared }),
    )
    .await?;

    // Publishing tasks. Veche forwards RTP timestamps unchanged, so nothing
    // needs noting per packet sent.
    let mut tasks = Vec::new();
    if let Some(p) = video {
        // A tapped bot's driver may ask when each video frame went out
        // (the mute-latency run: which frame was the first withheld).
        let frames = incoming.is_some().then(|| shared.clone());
        tasks.push(tokio::spawn(client::publish(
            p,
            shared.clone(),
            stop.clone(),
            pc.connected.clone(),
            move |packet| {
                if let Some(shared) = &frames {
                    shared
                        .lock()
                        .expect("lock poisoned")
                        .note_video_sent(packet.header.timestamp, Instant::now());
                }
            },
        )));
    }
    if let Some(p) = audio {
        tasks.push(tokio::spawn(client::publish(
            p,
            shared.clone(),
            stop.clone(),
            pc.connected.clone(),
            |_| {},
        )));
    }

    // Signalling and incoming tracks until told to stop.
    let result = loop {
        tokio::select! {
            _ = stop.changed() => break Ok(()),
            frame = async {
                match outgoing.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => match frame {
                Some(frame) => send(&mut ws, &frame).await?,
                // The driver is gone; keep running until told to stop.
                None => outgoing = None,
            },
            track = tracks_rx.recv() => {
                if let Some(((), track)) = track {
                    // Keyed by the publisher's stream id, i.e. its participant.
                    let key = track.stream_id().await;
                    tasks.push(tokio::spawn(client::receive(
                        track,
                        key,
                        room.epoch,
                        room.receiving.clone(),
                        shared.clone(),
                        |p, _| Some(p.header.timestamp),
                    )));
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
                if let Some((tx, _)) = &incoming {
                    let _ = tx.send(v.clone());
                }
                match v["type"].as_str() {
                    Some("answer") => {
                        pc.accept_answer(v["sdp"].as_str().unwrap_or_default()).await?;
                    }
                    Some("offer") => {
                        let sdp = pc.answer_offer(v["sdp"].as_str().unwrap_or_default()).await?;
                        send(&mut ws, &json!({ "type": "answer", "sdp": sdp })).await?;
                    }
                    Some("error") if incoming.is_none() => break Err(format!("server error: {v}")),
                    _ => {}
                }
            }
        }
    };
    let _ = send(&mut ws, &json!({ "type": "leave" })).await;
    for t in tasks {
        t.abort();
    }
    let _ = pc.pc.close().await;
    result
}
