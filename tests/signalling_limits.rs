//! Admission at the signalling edge, against a real `veche serve`: a guest
//! flooding any message kind is refused with `rate_limited`, the others
//! receive at most the budget, a persistent flooder is closed with 4008,
//! the node's memory stays flat and a victim's `ping` is still answered
//! fast. Also: `leave` and a client's close 1000 end with a close frame
//! 1000, and the track and `client_msg_id` caps.
//!
//! The budgets are read from `veche_protocol::limits`, the same table the
//! node uses, so a retuned number cannot make these tests stale.

use crate::common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use veche_protocol::limits::{signal as limits, Rate};
use veche_protocol::signal::{CLOSE_NORMAL, CLOSE_POLICY};

type Raw =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A signalling socket driven frame by frame, for what `Signal` does not
/// do: write without reading, and send close frames.
struct RawSignal {
    ws: Raw,
    participant_id: String,
}

impl RawSignal {
    /// Joins as `name` and waits for `joined`.
    async fn join(server: &Server, slug: &str, name: &str) -> RawSignal {
        let j = join(server.base(), slug, name).await;
        let url = resolve_ws_url(server.base(), str_field(&j, "ws_url"));
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        ws.send(Message::text(
            json!({ "type": "join", "token": str_field(&j, "token") }).to_string(),
        ))
        .await
        .expect("send join");
        let mut raw = RawSignal {
            ws,
            participant_id: String::new(),
        };
        let joined = raw
            .next_json(secs(10))
            .await
            .expect("a joined message, not the end of the socket");
        assert_eq!(joined["type"], "joined", "{joined}");
        raw.participant_id = str_field(&joined, "participant_id").to_owned();
        raw
    }

    /// The next JSON text message, or the close frame's code (`Err`), or
    /// `Err(0)` when the stream broke or nothing came in time.
    async fn next_json(&mut self, timeout: Duration) -> Result<Value, u16> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) | Ok(None) | Ok(Some(Err(_))) => return Err(0),
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Ok(serde_json::from_str(t.as_str()).expect("JSON text frame"))
                }
                Ok(Some(Ok(Message::Close(f)))) => {
                    return Err(f.map(|f| u16::from(f.code)).unwrap_or(1005))
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Reads until the server closes the socket; returns the close code
    /// (0 for a broken stream) and every message before it.
    async fn read_to_close(&mut self, timeout: Duration) -> (u16, Vec<Value>) {
        let mut seen = Vec::new();
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_json(left).await {
                Ok(v) => seen.push(v),
                Err(code) => return (code, seen),
            }
        }
    }
}

/// The most a budget can admit over `elapsed`: its burst plus its refill.
fn budget_over(rate: Rate, elapsed: Duration) -> usize {
    rate.burst as usize + (rate.per_second * elapsed.as_secs_f64()).ceil() as usize
}

/// The server's resident memory in KiB, from /proc.
fn rss_kib(server: &Server) -> u64 {
    let pid = server.pid().expect("server running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// One frame of `kind`, number `i`, as a flooding script would send it.
fn flood_frame(kind: &str, i: usize) -> String {
    match kind {
        "media" => json!({ "type": "media", "mic_muted": i % 2 == 0, "camera_muted": false, "screen_sharing": false }),
        "offer" => json!({ "type": "offer", "sdp": "v=0\r\n" }),
        "candidate" => json!({ "type": "candidate", "candidate": null }),
        "chat" => json!({ "type": "chat", "text": format!("spam {i}"), "client_msg_id": format!("c{i}") }),
        "ping" => json!({ "type": "ping", "seq": i }),
        other => panic!("no flood frame for {other}"),
    }
    .to_string()
}

/// Sends up to `n` frames of `kind` as fast as the socket takes them,
/// without reading. Returns how many were written before the node closed
/// the connection.
async fn flood(ws: &mut RawSignal, kind: &str, n: usize) -> usize {
    for i in 0..n {
        if ws
            .ws
            .send(Message::text(flood_frame(kind, i)))
            .await
            .is_err()
        {
            return i;
        }
    }
    n
}

/// What a flood of one kind did.
struct Flood {
    sent: usize,
    refusals: usize,
    close: u16,
    elapsed: Duration,
}

/// Floods `kind` from a new guest and checks what the guest saw: at least
/// one `rate_limited` naming the kind, then close 4008.
async fn flood_as_new_guest(server: &Server, slug: &str, kind: &str, n: usize) -> (Flood, String) {
    let mut flooder = RawSignal::join(server, slug, &format!("Flooder {kind}")).await;
    let id = flooder.participant_id.clone();
    let t0 = Instant::now();
    let sent = flood(&mut flooder, kind, n).await;
    let (close, seen) = flooder.read_to_close(secs(20)).await;
    let elapsed = t0.elapsed();
    let refusals: Vec<&Value> = seen
        .iter()
        .filter(|m| m["type"] == "error" && m["code"] == "rate_limited")
        .collect();
    assert!(
        !refusals.is_empty(),
        "{kind} flood: no rate_limited error among {} messages",
        seen.len()
    );
    for r in &refusals {
        assert_eq!(r["request"], kind, "{kind} flood: refusal {r}");
        if kind == "chat" {
            assert!(
                r["client_msg_id"].is_string(),
                "a chat refusal names the message: {r}"
            );
        }
    }
    assert_eq!(
        close, CLOSE_POLICY,
        "{kind} flood: a persistent flooder is closed with {CLOSE_POLICY}"
    );
    (
        Flood {
            sent,
            refusals: refusals.len(),
            close,
            elapsed,
        },
        id,
    )
}

/// Reads the victim's messages until the flooder `id` has left, and
/// counts those about the flooder of `ty` (`participant_updated`, `chat`).
async fn victim_count_until_left(victim: &mut Signal, id: &str, ty: &str) -> usize {
    let mut count = 0;
    loop {
        let m = victim
            .recv(secs(20))
            .await
            .unwrap_or_else(|e| panic!("the victim's socket ended: {e:?}"));
        let about = |v: &Value| v.as_str() == Some(id);
        if m["type"] == "participant_left" && about(&m["participant_id"]) {
            return count;
        }
        let is_theirs = match ty {
            "participant_updated" => about(&m["participant"]["id"]),
            "chat" => about(&m["message"]["participant_id"]),
            _ => false,
        };
        if m["type"] == ty && is_theirs {
            count += 1;
        }
    }
}

/// How many messages in the room's chat history `participant` sent.
async fn committed_by(server: &Server, slug: &str, participant: &str) -> usize {
    let history = http_get(&server.url(&format!("/api/rooms/{slug}/messages"))).await;
    history.json()["messages"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["participant_id"].as_str() == Some(participant))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_guest_flooding_each_message_kind_is_throttled_and_then_closed() {
    let server = Server::start();
    let room = create_room(server.base(), "Flood").await;
    let slug = str_field(&room, "slug");
    let victim_join = join(server.base(), slug, "Victim").await;
    let (mut victim, _) = Signal::join(server.base(), &victim_join).await;

    for (kind, rate) in [
        ("media", limits::MEDIA),
        ("offer", limits::OFFER),
        ("candidate", limits::CANDIDATE),
        ("chat", limits::CHAT),
        ("ping", limits::PING),
    ] {
        let (f, id) = flood_as_new_guest(&server, slug, kind, 2_000).await;
        // What reached the other participant: media updates are
        // rebroadcast, chat is committed and delivered; offers,
        // candidates and pings reach nobody else at all.
        let relayed = match kind {
            "media" => victim_count_until_left(&mut victim, &id, "participant_updated").await,
            "chat" => {
                victim_count_until_left(&mut victim, &id, "chat").await;
                // Commits may still be landing after the flooder left:
                // what reached anyone is what was committed.
                wait_for(
                    "the flooder's admitted chat is committed",
                    secs(10),
                    async || {
                        let n = committed_by(&server, slug, &id).await;
                        if n > 0 {
                            Ok(n)
                        } else {
                            Err("no message committed yet".into())
                        }
                    },
                )
                .await
            }
            _ => victim_count_until_left(&mut victim, &id, "none").await,
        };
        let cap = budget_over(rate, f.elapsed);
        eprintln!(
            "flood {kind}: {} frames sent, {} refused with rate_limited, closed {} after {:?}, \
             {relayed} rebroadcast to the victim (budget {cap})",
            f.sent, f.refusals, f.close, f.elapsed
        );
        assert!(
            relayed <= cap,
            "{kind} flood: the victim received {relayed}, over the budget {cap}"
        );
        if kind == "media" {
            assert!(relayed > 0, "{kind} flood: the budget admitted nothing");
        }
    }
    // The victim is still a full participant.
    victim.ping(1).await;
}

#[tokio::test]
async fn memory_stays_flat_and_a_victims_ping_is_answered_fast_during_a_flood() {
    let server = Server::start();
    let room = create_room(server.base(), "Flood memory").await;
    let slug = str_field(&room, "slug").to_owned();
    let victim_join = join(server.base(), &slug, "Victim").await;
    let (mut victim, _) = Signal::join(server.base(), &victim_join).await;
    victim.ping(1).await;
    let rss_before = rss_kib(&server);

    // Flooders one after another, each writing 20,000 media frames as
    // fast as it can, until the node cuts it off (its writes then fail).
    let flooders = 20;
    let base = server.base().to_owned();
    let flood_task = {
        let slug = slug.clone();
        let server_base = base.clone();
        tokio::spawn(async move {
            let mut sent = 0;
            for i in 0..flooders {
                let j = join(&server_base, &slug, &format!("Flooder {i}")).await;
                let url = resolve_ws_url(&server_base, str_field(&j, "ws_url"));
                let (mut ws, _) = tokio_tungstenite::connect_async(&url)
                    .await
                    .expect("connect");
                ws.send(Message::text(
                    json!({ "type": "join", "token": str_field(&j, "token") }).to_string(),
                ))
                .await
                .expect("join");
                for n in 0..20_000 {
                    if ws
                        .send(Message::text(flood_frame("media", n)))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    sent += 1;
                }
                // Drain until the node closes it.
                while let Ok(Some(Ok(m))) = tokio::time::timeout(secs(10), ws.next()).await {
                    if m.is_close() {
                        break;
                    }
                }
            }
            sent
        })
    };

    // The victim pings within its own budget while the flood runs.
    let mut worst = Duration::ZERO;
    let mut seq = 100;
    let mut pings = 0;
    let mut rebroadcast = 0;
    while !flood_task.is_finished() && pings < limits::PING.burst as u64 - 1 {
        seq += 1;
        pings += 1;
        let t0 = Instant::now();
        victim.send(&json!({ "type": "ping", "seq": seq })).await;
        loop {
            let m = victim
                .recv(secs(5))
                .await
                .unwrap_or_else(|e| panic!("the victim's socket ended: {e:?}"));
            if m["type"] == "participant_updated" {
                rebroadcast += 1;
            }
            if m["type"] == "pong" && m["seq"] == seq {
                break;
            }
        }
        worst = worst.max(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(30)).await; // pacing, not a wait for correctness
    }
    let sent = flood_task.await.expect("flood task");
    let rss_after = rss_kib(&server);
    eprintln!(
        "flood of media by {flooders} guests: {sent} frames sent, {rebroadcast} participant_updated \
         seen by the victim while pinging; {pings} victim pings, slowest pong {worst:?}; \
         server RSS {rss_before} KiB before, {rss_after} KiB after"
    );
    assert!(pings > 0, "the flood ended before the victim could ping");
    assert!(
        worst < Duration::from_millis(100),
        "a victim's ping took {worst:?} during the flood"
    );
    assert!(
        rss_after < rss_before + 64 * 1024,
        "server memory grew from {rss_before} KiB to {rss_after} KiB during the flood"
    );
}

#[tokio::test]
async fn leave_ends_with_close_1000_and_a_clients_close_1000_is_answered_with_1000() {
    let server = Server::start();
    let room = create_room(server.base(), "Goodbyes").await;
    let slug = str_field(&room, "slug");

    let mut leaver = RawSignal::join(&server, slug, "Leaver").await;
    leaver
        .ws
        .send(Message::text(r#"{"type":"leave"}"#))
        .await
        .expect("send leave");
    let (code, _) = leaver.read_to_close(secs(10)).await;
    assert_eq!(code, CLOSE_NORMAL, "leave ends with a close frame 1000");

    let mut closer = RawSignal::join(&server, slug, "Closer").await;
    closer
        .ws
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .expect("send close");
    let (code, _) = closer.read_to_close(secs(10)).await;
    assert_eq!(
        code, CLOSE_NORMAL,
        "the node answers a client's close 1000 with a close frame 1000"
    );
}

#[tokio::test]
async fn too_many_tracks_and_an_over_long_client_msg_id_are_refused_with_bad_request() {
    let server = Server::start();
    let room = create_room(server.base(), "Caps").await;
    let slug = str_field(&room, "slug");
    let j = join(server.base(), slug, "Greedy").await;
    let (mut ws, _) = Signal::join(server.base(), &j).await;

    let tracks: serde_json::Map<String, Value> = (0..=limits::MAX_TRACKS)
        .map(|i| (format!("track-{i}"), json!("camera")))
        .collect();
    ws.send(&json!({ "type": "offer", "sdp": "v=0\r\n", "tracks": tracks }))
        .await;
    let err = ws.recv_type("error", secs(10)).await;
    assert_eq!(err["code"], "bad_request", "{err}");
    assert_eq!(err["request"], "offer", "{err}");

    // The same count of sending sections without a `tracks` map.
    let mut sdp = String::from("v=0\r\n");
    for i in 0..=limits::MAX_TRACKS {
        sdp.push_str(&format!(
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{i}\r\na=sendrecv\r\na=msid:s t{i}\r\n\
             a=rtpmap:96 VP8/90000\r\n"
        ));
    }
    ws.send(&json!({ "type": "offer", "sdp": sdp })).await;
    let err = ws.recv_type("error", secs(10)).await;
    assert_eq!(err["code"], "bad_request", "{err}");
    assert!(
        err["message"].as_str().unwrap_or("").contains("tracks"),
        "{err}"
    );

    let long_id = "x".repeat(limits::MAX_CLIENT_MSG_ID_BYTES + 1);
    ws.send(&json!({ "type": "chat", "text": "hello", "client_msg_id": long_id }))
        .await;
    let err = ws.recv_type("error", secs(10)).await;
    assert_eq!(err["code"], "bad_request", "{err}");
    assert_eq!(err["request"], "chat", "{err}");
    // Not committed: a chat sent after it is the only one in history.
    ws.chat("after the refusal").await;
    let history = http_get(&server.url(&format!("/api/rooms/{slug}/messages"))).await;
    let history = history.json();
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["text"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(texts, vec!["after the refusal"], "history: {history}");
}

/// A complete offer as a browser that can only encode H264 video would
/// send it: audio in Opus, video in H264 only.
fn h264_only_offer() -> String {
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=msid-semantic: WMS s",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=msid:s mic",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=ssrc:1111 cname:x",
        "m=video 9 UDP/TLS/RTP/SAVPF 102",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
        "a=setup:actpass",
        "a=mid:1",
        "a=sendrecv",
        "a=msid:s cam",
        "a=rtcp-mux",
        "a=rtpmap:102 H264/90000",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "a=ssrc:2222 cname:x",
        "",
    ]
    .join("\r\n")
}

#[tokio::test]
async fn an_h264_only_publisher_is_told_the_node_accepts_vp8_and_its_video_is_not_taken() {
    let server = Server::start();
    let room = create_room(server.base(), "Codecs").await;
    let j = join(server.base(), str_field(&room, "slug"), "Old phone").await;
    let (mut ws, _) = Signal::join(server.base(), &j).await;

    ws.send(&json!({ "type": "offer", "sdp": h264_only_offer() }))
        .await;
    let err = ws.recv_type("error", secs(10)).await;
    assert_eq!(err["code"], "bad_request", "{err}");
    assert_eq!(err["request"], "offer", "{err}");
    let message = err["message"].as_str().unwrap_or("");
    assert!(
        message.contains("VP8") && message.contains("H264"),
        "the error names what is accepted and what was not: {err}"
    );
    // The rest of the offer is applied: an answer comes, with the video
    // section rejected (port 0).
    let answer = ws.recv_type("answer", secs(10)).await;
    let sdp = str_field(&answer, "sdp");
    let video = sdp
        .split("m=")
        .find(|s| s.starts_with("video"))
        .unwrap_or("");
    eprintln!("the node's answer to an H264-only video section: m={video}");
    assert!(
        video.starts_with("video 0 ") && !video.contains("H264"),
        "the node's answer does not reject the H264 video section: {sdp}"
    );
    assert!(sdp.contains("opus"), "the audio is accepted: {sdp}");
}
