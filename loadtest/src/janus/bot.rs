//! One Janus bot: a publisher handle (`join` as publisher, then `publish`
//! with our offer) and one subscriber handle *per remote publisher* (`join`
//! as subscriber with `streams: [{feed}]`, Janus offers, we `start` with
//! the answer). Each handle has its own webrtc-rs peer connection.

use super::api::{plugin_data, Session};
use crate::client::{self, Pc, Publication, Shared};
use crate::media::{AudioSource, VideoSource};
use crate::scenario::{BotResult, BotSpec};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::PeerConnection;

/// Where a Janus bot joins and what it shares with the runner.
#[derive(Clone, Debug)]
pub struct JanusRoom {
    /// `ws://127.0.0.1:PORT` of Janus's WebSocket transport.
    pub ws_url: String,
    /// VideoRoom id (created with [`create_room`]).
    pub room: u64,
    /// The shared clock all bots stamp RTP timestamps against.
    pub epoch: Instant,
    /// Bots that have received their first packet.
    pub receiving: Arc<AtomicUsize>,
    /// RTP packets received by all bots so far: Janus has no metrics
    /// endpoint, so the runner counts "packets forwarded" here.
    pub packets_received: Arc<AtomicU64>,
    /// What our publishers sent, so receivers can undo Janus's timestamp
    /// rewriting (see [`SentTimestamps`]).
    pub sent: Arc<SentTimestamps>,
}

/// Janus rewrites each subscriber's RTP timestamps (and sequence numbers)
/// to start near zero, which would break the one-way latency the harness
/// carries in the timestamp ([`crate::media::latency`]). The offset is
/// constant per subscription and the payload is forwarded untouched, so
/// publishers record `payload hash -> RTP timestamp` here and a receiver
/// learns the offset from its first matching packet. A looping clip repeats
/// payloads, so only the latest timestamp per payload is kept; that is the
/// right one as long as the clip is longer than the latency.
#[derive(Default)]
pub struct SentTimestamps(Mutex<HashMap<(u64, bool), HashMap<u64, u32>>>);

impl std::fmt::Debug for SentTimestamps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SentTimestamps")
    }
}

fn payload_hash(payload: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    // Skip a VP8 payload descriptor's worth of bytes in case it is rewritten.
    let body = if payload.len() > 16 {
        &payload[6..]
    } else {
        payload
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

impl SentTimestamps {
    fn record(&self, feed: u64, video: bool, payload: &[u8], ts: u32) {
        let mut all = self.0.lock().expect("lock poisoned");
        let m = all.entry((feed, video)).or_default();
        if m.len() > 100_000 {
            m.clear();
        }
        m.insert(payload_hash(payload), ts);
    }

    fn lookup(&self, feed: u64, video: bool, payload: &[u8]) -> Option<u32> {
        let all = self.0.lock().expect("lock poisoned");
        all.get(&(feed, video))?
            .get(&payload_hash(payload))
            .copied()
    }
}

/// Runs one bot against Janus until `stop` turns true. Errors are reported
/// in the result, like [`crate::bot::run`].
pub async fn run_bot(spec: BotSpec, target: JanusRoom, stop: watch::Receiver<bool>) -> BotResult {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let name = spec.name.clone();
    let expects_media = spec.expects_media;
    let error = run_inner(spec, target, stop, shared.clone()).await.err();
    BotResult::from_shared(name, expects_media, &shared, error)
}

/// Feed ids of the publishers listed in a VideoRoom `joined`/`event`.
fn listed_publishers(data: &Value) -> Vec<u64> {
    data["publishers"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["id"].as_u64()).collect())
        .unwrap_or_default()
}

async fn run_inner(
    spec: BotSpec,
    target: JanusRoom,
    mut stop: watch::Receiver<bool>,
    shared: Arc<Mutex<Shared>>,
) -> Result<(), String> {
    shared.lock().expect("lock poisoned").join_started = Some(Instant::now());
    let (session, mut events) = Session::connect(&target.ws_url).await?;
    let session = Arc::new(session);
    let (tracks_tx, mut tracks_rx) = mpsc::unbounded_channel();

    // Every bot joins as a (possibly silent) publisher: that is how Janus
    // tells a participant about publishers, now (`joined`) and later
    // (`event` with `publishers`).
    let handle = session.attach().await?;
    let joined = session
        .message(
            handle,
            json!({
                "request": "join",
                "ptype": "publisher",
                "room": target.room,
                "display": spec.name,
            }),
            None,
        )
        .await?;
    let my_id = plugin_data(&joined)["id"].as_u64().unwrap_or(0);
    let mut feeds: Vec<u64> = listed_publishers(plugin_data(&joined));

    let mut tasks = Vec::new();
    let mut pcs: Vec<Arc<dyn PeerConnection>> = Vec::new();
    if spec.video_bps.is_some() || spec.audio {
        let mut pc = Pc::new(my_id, tracks_tx.clone()).await?;
        let mut video = None;
        if let Some(bps) = spec.video_bps {
            let ssrc = client::random_u32();
            let t = client::local_track(
                RtpCodecKind::Video,
                MIME_TYPE_VP8,
                90_000,
                0,
                ssrc,
                "bot-video",
            );
            let sender = client::add_track(&pc.pc, &t).await?;
            video = Some(Publication {
                track: t,
                sender,
                mime: MIME_TYPE_VP8,
                source: VideoSource::new(bps, ssrc, 96, target.epoch),
            });
        }
        let mut audio = None;
        if spec.audio {
            let ssrc = client::random_u32();
            let t = client::local_track(
                RtpCodecKind::Audio,
                MIME_TYPE_OPUS,
                48_000,
                2,
                ssrc,
                "bot-audio",
            );
            let sender = client::add_track(&pc.pc, &t).await?;
            audio = Some(Publication {
                track: t,
                sender,
                mime: MIME_TYPE_OPUS,
                source: AudioSource::new(ssrc, 111, target.epoch),
            });
        }
        let sdp = pc.offer().await?;
        let r = session
            .message(
                handle,
                json!({ "request": "publish", "audiocodec": "opus", "videocodec": "vp8" }),
                Some(json!({ "type": "offer", "sdp": sdp })),
            )
            .await?;
        let answer = r["jsep"]["sdp"]
            .as_str()
            .ok_or_else(|| format!("publish: no answer in {r}"))?;
        pc.accept_answer(answer).await?;
        session.notify(json!({
            "janus": "trickle", "handle_id": handle, "candidate": { "completed": true }
        }));
        // Janus rewrites RTP timestamps per subscriber, so publishers note
        // which timestamp each payload went out with; receivers recover
        // the offset from the first payload they match (see `SentTimestamps`).
        if let Some(p) = video {
            let sent = target.sent.clone();
            tasks.push(tokio::spawn(client::publish(
                p,
                shared.clone(),
                stop.clone(),
                pc.connected.clone(),
                move |pkt| sent.record(my_id, true, &pkt.payload, pkt.header.timestamp),
            )));
        }
        if let Some(p) = audio {
            let sent = target.sent.clone();
            tasks.push(tokio::spawn(client::publish(
                p,
                shared.clone(),
                stop.clone(),
                pc.connected.clone(),
                move |pkt| sent.record(my_id, false, &pkt.payload, pkt.header.timestamp),
            )));
        }
        pcs.push(pc.pc);
    }

    // One subscriber handle and peer connection per remote publisher.
    let mut subscribed: HashSet<u64> = HashSet::new();
    let (subs_tx, mut subs_rx) =
        mpsc::unbounded_channel::<Result<Arc<dyn PeerConnection>, String>>();
    let mut keepalive = tokio::time::interval(Duration::from_secs(25));
    let result = loop {
        for feed in feeds.drain(..) {
            if feed == my_id || !subscribed.insert(feed) {
                continue;
            }
            let (session, tracks_tx, subs_tx) =
                (session.clone(), tracks_tx.clone(), subs_tx.clone());
            let room = target.room;
            tasks.push(tokio::spawn(async move {
                let _ = subs_tx.send(subscribe(&session, room, feed, tracks_tx).await);
            }));
        }
        tokio::select! {
            _ = stop.changed() => break Ok(()),
            _ = keepalive.tick() => session.notify(json!({ "janus": "keepalive" })),
            sub = subs_rx.recv() => match sub {
                Some(Ok(pc)) => pcs.push(pc),
                Some(Err(e)) => break Err(e),
                None => {}
            },
            track = tracks_rx.recv() => {
                if let Some((feed, track)) = track {
                    tasks.push(tokio::spawn(receive(feed, track, target.clone(), shared.clone())));
                }
            }
            ev = events.recv() => {
                let Some(ev) = ev else { break Err("janus connection closed".into()) };
                match ev["janus"].as_str() {
                    Some("event") => feeds.extend(listed_publishers(plugin_data(&ev))),
                    Some("hangup") if ev["sender"].as_u64() == Some(handle) => {
                        break Err(format!("janus hung up the publisher: {}", ev["reason"]));
                    }
                    Some("timeout") => break Err("janus session timed out".into()),
                    _ => {}
                }
            }
        }
    };
    for t in tasks {
        t.abort();
    }
    for pc in pcs {
        let _ = pc.close().await;
    }
    drop(session);
    result
}

/// Attaches a handle, joins it as a subscriber of `feed` and answers
/// Janus's offer.
async fn subscribe(
    session: &Session,
    room: u64,
    feed: u64,
    tracks: mpsc::UnboundedSender<(u64, Arc<dyn TrackRemote>)>,
) -> Result<Arc<dyn PeerConnection>, String> {
    let handle = session.attach().await?;
    // A publisher listed before its `webrtcup` can answer 428 (no such
    // feed yet): retry for a few seconds.
    let mut tries = 0;
    let attached = loop {
        match session
            .message(
                handle,
                json!({
                    "request": "join",
                    "ptype": "subscriber",
                    "room": room,
                    "streams": [{ "feed": feed }],
                }),
                None,
            )
            .await
        {
            Ok(r) => break r,
            Err(e) if tries < 20 && e.contains("428") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(format!("subscribing to {feed}: {e}")),
        }
    };
    let offer = attached["jsep"]["sdp"]
        .as_str()
        .ok_or_else(|| format!("subscribe: no offer in {attached}"))?;
    let mut pc = Pc::new(feed, tracks).await?;
    let sdp = pc.answer_offer(offer).await?;
    session
        .message(
            handle,
            json!({ "request": "start" }),
            Some(json!({ "type": "answer", "sdp": sdp })),
        )
        .await?;
    session.notify(json!({
        "janus": "trickle", "handle_id": handle, "candidate": { "completed": true }
    }));
    Ok(pc.pc)
}

/// Receives one feed's track. Janus's subscriber SDP uses the same stream
/// id for every feed, so tracks are keyed by feed id; and Janus rewrites
/// RTP timestamps, so the publisher's are recovered through
/// [`SentTimestamps`] before latency is computed.
async fn receive(
    feed: u64,
    track: Arc<dyn TrackRemote>,
    target: JanusRoom,
    shared: Arc<Mutex<Shared>>,
) {
    let mut offset: Option<u32> = None;
    let mut unmatched = 0u32;
    let counted = target.packets_received.clone();
    let sent = target.sent.clone();
    let publisher_ts = move |p: &rtc::rtp::packet::Packet, video: bool| {
        counted.fetch_add(1, Ordering::Relaxed);
        if offset.is_none() {
            match sent.lookup(feed, video, &p.payload) {
                Some(ts) => offset = Some(p.header.timestamp.wrapping_sub(ts)),
                None if unmatched > 500 => {
                    tracing::warn!(
                        feed,
                        video,
                        "janus: cannot map RTP timestamps; latency will be wrong"
                    );
                    offset = Some(0);
                }
                None => unmatched += 1,
            }
        }
        offset.map(|o| p.header.timestamp.wrapping_sub(o))
    };
    client::receive(
        track,
        format!("janus-{feed}"),
        target.epoch,
        target.receiving.clone(),
        shared,
        publisher_ts,
    )
    .await
}
