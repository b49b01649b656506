//! Janus 1.1 (VideoRoom plugin) as a comparison target for the load
//! harness: the same bots, media sources and receive-side measurement as
//! [`crate::bot`], speaking Janus's WebSocket JSON API instead of Veche's
//! signalling.
//!
//! - [`JanusServer`] writes a private config folder, starts `janus` on a
//!   free loopback port and stops it on drop.
//! - [`run_bot`] is one participant: a publisher handle (`join` as
//!   publisher, then `publish` with our offer) and one subscriber handle
//!   *per remote publisher* (`join` as subscriber with `streams: [{feed}]`,
//!   Janus offers, we `start` with the answer). Each handle has its own
//!   webrtc-rs peer connection.
//! - [`run_scenario`] mirrors [`crate::scenario::run`] for Janus.
//!
//! ## Why an `LD_PRELOAD` shim
//!
//! Janus and its libnice skip every interface flagged `IFF_LOOPBACK` when
//! gathering candidates, so in a loopback-only network namespace (where all
//! our WebRTC benchmarks run) Janus offers no usable candidate and ICE
//! fails; `ice_enforce_list = "lo"` does not help. [`JanusServer::start`]
//! therefore compiles a ten-line C library at run time (`cc`, no workspace
//! changes) that wraps `getifaddrs()` and clears `IFF_LOOPBACK`, and
//! preloads it into the Janus process only.

use crate::bot::{BotResult, BotSpec};
use crate::client::{self, Pc, Publication, Shared};
use crate::media::{AudioSource, VideoSource};
use crate::report::Report;
use futures::{SinkExt, StreamExt};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::PeerConnection;

/// The `getifaddrs()` wrapper preloaded into Janus (see the module docs).
const SHIM_C: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>
int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **) = NULL;
    if (!real) real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    if (!real) return -1;
    int r = real(ifap);
    if (r == 0)
        for (struct ifaddrs *i = *ifap; i; i = i->ifa_next)
            i->ifa_flags &= ~IFF_LOOPBACK;
    return r;
}
"#;

/// Where Debian (and a source build) put Janus's modules.
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/janus",
    "/usr/lib/aarch64-linux-gnu/janus",
    "/usr/lib/janus",
    "/usr/local/lib/janus",
    "/opt/janus/lib/janus",
];

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A Janus process with its own config folder, killed on drop.
pub struct JanusServer {
    child: Child,
    port: u16,
    config_dir: PathBuf,
}

fn on_path(exe: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(exe))
        .find(|p| p.is_file())
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// `.so` files in `dir` except `keep`, comma-separated, for `disable`.
fn disable_list(dir: &Path, keep: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".so") && n != keep)
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.join(",")
}

impl JanusServer {
    /// Writes a config folder, builds the loopback shim, starts `janus` and
    /// waits until its WebSocket port accepts connections.
    pub fn start() -> Result<JanusServer, String> {
        let exe = on_path("janus").ok_or(
            "`janus` is not installed (Debian: `apt-get install -y janus`, version 1.1.x)",
        )?;
        let modules = MODULE_DIRS
            .iter()
            .map(Path::new)
            .find(|d| d.join("plugins/libjanus_videoroom.so").is_file())
            .ok_or("janus is installed but its VideoRoom plugin was not found")?;
        let dir = std::env::temp_dir().join(format!(
            "veche-janus-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
        };

        // The shim.
        write("shim.c", SHIM_C)?;
        let shim = dir.join("loopback-shim.so");
        let cc = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&shim)
            .arg(dir.join("shim.c"))
            .arg("-ldl")
            .output()
            .map_err(|e| format!("cannot run `cc` to build the Janus loopback shim: {e}"))?;
        if !cc.status.success() {
            return Err(format!(
                "building the Janus loopback shim failed: {}",
                String::from_utf8_lossy(&cc.stderr)
            ));
        }

        let port = free_port()?;
        let m = modules.display();
        write(
            "janus.jcfg",
            &format!(
                r#"general: {{
	configs_folder = "{cfg}"
	plugins_folder = "{m}/plugins"
	transports_folder = "{m}/transports"
	events_folder = "{m}/events"
	loggers_folder = "{m}/loggers"
	debug_level = 3
	interface = "127.0.0.1"
	session_timeout = 60
}}
certificates: {{
}}
media: {{
	ipv6 = false
	rtp_port_range = "20000-60000"
}}
nat: {{
	nice_debug = false
	ignore_mdns = true
	ice_enforce_list = "127.0.0.1"
}}
plugins: {{
	disable = "{plugins}"
}}
transports: {{
	disable = "{transports}"
}}
loggers: {{
	disable = "{loggers}"
}}
events: {{
	broadcast = false
	disable = "{events}"
}}
"#,
                cfg = dir.display(),
                plugins = disable_list(&modules.join("plugins"), "libjanus_videoroom.so"),
                transports = disable_list(&modules.join("transports"), "libjanus_websockets.so"),
                loggers = disable_list(&modules.join("loggers"), ""),
                events = disable_list(&modules.join("events"), ""),
            ),
        )?;
        write(
            "janus.transport.websockets.jcfg",
            &format!(
                r#"general: {{
	json = "plain"
	ws = true
	ws_port = {port}
	ws_ip = "127.0.0.1"
	wss = false
}}
admin: {{
	admin_ws = false
	admin_wss = false
}}
"#
            ),
        )?;
        // No sample rooms: the harness creates its own.
        write(
            "janus.plugin.videoroom.jcfg",
            "general: {\n\tstring_ids = false\n}\n",
        )?;

        let log =
            std::fs::File::create(dir.join("janus.log")).map_err(|e| format!("janus.log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("janus.log: {e}"))?;
        let child = Command::new(&exe)
            .arg("-F")
            .arg(&dir)
            .arg("-C")
            .arg(dir.join("janus.jcfg"))
            .arg("-o")
            .env("LD_PRELOAD", &shim)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let mut server = JanusServer {
            child,
            port,
            config_dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(server.config_dir.join("janus.log"))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                return Err(format!(
                    "janus exited ({status}) before listening; log tail:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("janus did not open ws port {port} within 15 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The Janus process id, for CPU and memory figures.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The generated config folder (also holds `janus.log`).
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }
}

impl Drop for JanusServer {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a child we started; no memory is involved.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("VECHE_KEEP_JANUS_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.config_dir);
        }
    }
}

// ---------------------------------------------------------------------------
// The WebSocket JSON API client.

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One Janus session over one WebSocket. Requests are matched to their
/// final reply by `transaction` (an `ack` is skipped, and may arrive after
/// the `event` it acknowledges); everything else is an asynchronous event,
/// delivered on the channel returned by [`Session::connect`].
struct Session {
    tx: mpsc::UnboundedSender<Message>,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>,
    next: AtomicU64,
    id: u64,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.tx.send(Message::text(
            json!({ "janus": "destroy", "session_id": self.id, "transaction": "bye" }).to_string(),
        ));
        // The reader task sends that, then ends and closes the socket once
        // `tx` is gone.
    }
}

fn plugin_data(v: &Value) -> &Value {
    &v["plugindata"]["data"]
}

/// A VideoRoom error in an `event`/`success`, or a Janus core `error`.
fn janus_error(v: &Value) -> Option<String> {
    if v["janus"] == "error" {
        return Some(format!("janus error: {}", v["error"]));
    }
    let d = plugin_data(v);
    if d["error_code"].is_number() || d["error"].is_string() {
        return Some(format!(
            "videoroom error {}: {}",
            d["error_code"], d["error"]
        ));
    }
    None
}

impl Session {
    async fn connect(url: &str) -> Result<(Session, mpsc::UnboundedReceiver<Value>), String> {
        let mut req = url
            .into_client_request()
            .map_err(|e| format!("janus url: {e}"))?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "janus-protocol".parse().expect("static header"),
        );
        let (ws, _): (Ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| format!("janus connect: {e}"))?;
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let pending: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>> = Default::default();
        let p = pending.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    out = rx.recv() => {
                        let Some(m) = out else { break };
                        if sink.send(m).await.is_err() { break; }
                    }
                    inc = stream.next() => {
                        let text = match inc {
                            Some(Ok(Message::Text(t))) => t,
                            Some(Ok(_)) => continue,
                            _ => break,
                        };
                        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                        if v["janus"] == "ack" {
                            continue;
                        }
                        let waiter = v["transaction"]
                            .as_str()
                            .and_then(|t| p.lock().expect("lock poisoned").remove(t));
                        match waiter {
                            Some(w) => { let _ = w.send(v); }
                            None => { let _ = events_tx.send(v); }
                        }
                    }
                }
            }
            let _ = sink.close().await;
        });
        let mut s = Session {
            tx,
            pending,
            next: AtomicU64::new(1),
            id: 0,
        };
        let r = s.request(json!({ "janus": "create" })).await?;
        s.id = r["data"]["id"].as_u64().ok_or("create: no session id")?;
        Ok((s, events_rx))
    }

    fn transaction(&self) -> String {
        format!("t{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends `body` (plus `transaction` and `session_id`) and waits for the
    /// first reply that isn't an `ack`.
    async fn request(&self, mut body: Value) -> Result<Value, String> {
        let t = self.transaction();
        body["transaction"] = json!(t);
        if self.id != 0 {
            body["session_id"] = json!(self.id);
        }
        let (w_tx, w_rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("lock poisoned")
            .insert(t.clone(), w_tx);
        self.tx
            .send(Message::text(body.to_string()))
            .map_err(|_| "janus connection closed")?;
        let reply = tokio::time::timeout(Duration::from_secs(20), w_rx)
            .await
            .map_err(|_| {
                self.pending.lock().expect("lock poisoned").remove(&t);
                format!("janus: no reply to {}", body["body"]["request"])
            })?
            .map_err(|_| "janus connection closed".to_owned())?;
        match janus_error(&reply) {
            Some(e) => Err(e),
            None => Ok(reply),
        }
    }

    /// Fire-and-forget (keepalive, trickle): their only reply is an `ack`.
    fn notify(&self, mut body: Value) {
        body["transaction"] = json!(self.transaction());
        body["session_id"] = json!(self.id);
        let _ = self.tx.send(Message::text(body.to_string()));
    }

    async fn attach(&self) -> Result<u64, String> {
        let r = self
            .request(json!({ "janus": "attach", "plugin": "janus.plugin.videoroom" }))
            .await?;
        r["data"]["id"]
            .as_u64()
            .ok_or("attach: no handle id".into())
    }

    async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<Value, String> {
        let mut m = json!({ "janus": "message", "handle_id": handle, "body": body });
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.request(m).await
    }
}

/// Creates VideoRoom `room` on the Janus at `ws_url` for up to `publishers`
/// publishers (the plugin's default is 3).
pub async fn create_room(ws_url: &str, room: u64, publishers: usize) -> Result<(), String> {
    let (s, _events) = Session::connect(ws_url).await?;
    let h = s.attach().await?;
    let r = s
        .message(
            h,
            json!({
                "request": "create",
                "room": room,
                "description": "veche loadtest",
                "publishers": publishers,
                "bitrate": 3_000_000,
                "videocodec": "vp8",
                "audiocodec": "opus",
                "fir_freq": 0,
            }),
            None,
        )
        .await?;
    match plugin_data(&r)["videoroom"].as_str() {
        Some("created") => Ok(()),
        _ => Err(format!("create room: unexpected reply {r}")),
    }
}

// ---------------------------------------------------------------------------
// The bot.

/// Where a Janus bot joins and what it shares with the runner.
#[derive(Clone, Debug)]
pub struct JanusTarget {
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
pub async fn run_bot(spec: BotSpec, target: JanusTarget, stop: watch::Receiver<bool>) -> BotResult {
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
    target: JanusTarget,
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
    target: JanusTarget,
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

// ---------------------------------------------------------------------------
// The runner.

/// Runs `opts.scenario` against a Janus this function starts and stops
/// (`opts.target` is ignored). Mirrors [`crate::scenario::run`]; "packets
/// forwarded" is the number of RTP packets all bots received during the
/// window, which undercounts Janus's output by the packets lost on the way
/// (about zero on loopback).
pub async fn run_scenario(opts: &crate::scenario::Options) -> Result<Report, String> {
    let server = tokio::task::spawn_blocking(JanusServer::start)
        .await
        .map_err(|e| format!("starting janus: {e}"))??;
    let result = run_against(opts, &server).await;
    drop(server);
    result
}

async fn run_against(
    opts: &crate::scenario::Options,
    server: &JanusServer,
) -> Result<Report, String> {
    let bots = opts.scenario.bots(opts.video_bps).len();
    let room = 1000 + u64::from(client::random_u32() % 1_000_000);
    create_room(&server.ws_url(), room, bots + 1).await?;
    let target = JanusTarget {
        ws_url: server.ws_url(),
        room,
        epoch: Instant::now(),
        receiving: Default::default(),
        packets_received: Default::default(),
        sent: Default::default(),
    };
    let counted = target.packets_received.clone();
    let mut report = crate::scenario::measure(
        opts,
        Some(server.pid()),
        target.receiving.clone(),
        |spec, stop| tokio::spawn(run_bot(spec, target.clone(), stop)),
        // Janus has no metrics: count what the bots received.
        || {
            let n = counted.load(Ordering::Relaxed);
            async move { Some(n) }
        },
    )
    .await;
    report.server_kind = "janus";
    Ok(report)
}
