//! Helpers of the moderation tests (issue 12): rooms with an owner key,
//! joins as host and rejoins, the owner's settings route, `moderate`
//! frames, the media node's per-track forwarded-packet counter (read from
//! its Prometheus metrics) and a stopwatch on it, and the load-test bots
//! as publishers that keep sending. Scripted signalling members are in
//! `moderation_member.rs`.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The request header that carries a room's owner key.
pub const OWNER_KEY: &str = veche_protocol::pass::OWNER_KEY_HEADER;

/// The media node's per-track counter of RTP packets forwarded (each
/// packet once, to local subscribers and other nodes alike), labelled
/// `room`, `track` and `source`, on the publisher's node's
/// `/media/metrics`; dropped when the track is unpublished. Nothing
/// counts while the track is withheld.
pub const FORWARDED_METRIC: &str = "veche_node_track_packets_forwarded_total";

/// A room made by an anonymous creator, with the owner key its create
/// response carried (shown once).
pub struct OwnedRoom {
    /// The create response (`id`, `slug`, `name`, `link`, ...).
    pub room: Value,
    /// The owner key: presented as [`OWNER_KEY`], its holder joins as host.
    pub owner_key: String,
}

impl OwnedRoom {
    /// The room's slug.
    pub fn slug(&self) -> String {
        str_field(&self.room, "slug").to_owned()
    }
}

/// `POST /api/rooms` as an anonymous creator; panics unless the response
/// carries an owner key.
pub async fn create_owned_room(base: &str, name: &str) -> OwnedRoom {
    let room = create_room(base, name).await;
    let owner_key = room["owner_key"]
        .as_str()
        .unwrap_or_else(|| panic!("an anonymous creator gets an owner_key: {room}"))
        .to_owned();
    OwnedRoom { room, owner_key }
}

/// `POST /api/rooms/{slug}/join` with `body`, presenting `owner_key` if
/// given. Returns the reply whatever its status.
pub async fn join_reply(base: &str, slug: &str, body: &Value, owner_key: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = owner_key.map(|k| (OWNER_KEY, k)).into_iter().collect();
    http_post_json_with_headers(&format!("{base}/api/rooms/{slug}/join"), body, &headers).await
}

/// Panics unless `reply` is a success; returns its JSON.
pub fn ok_json(reply: &Reply, what: &str) -> Value {
    assert!(
        (200..300).contains(&reply.status),
        "{what} failed with {}: {}",
        reply.status,
        reply.body
    );
    reply.json()
}

/// Joins `room` as its host (presenting the owner key); returns the join
/// response.
pub async fn join_as_host(base: &str, room: &OwnedRoom, name: &str) -> Value {
    let r = join_reply(
        base,
        &room.slug(),
        &json!({ "display_name": name }),
        Some(&room.owner_key),
    )
    .await;
    ok_json(&r, &format!("joining as host {name}"))
}

/// Joins `slug` as `name` in `region` (placement of a cluster).
pub async fn join_in_region(base: &str, slug: &str, name: &str, region: &str) -> Value {
    let r = join_reply(
        base,
        slug,
        &json!({ "display_name": name, "region": region }),
        None,
    )
    .await;
    ok_json(&r, &format!("joining as {name} in {region}"))
}

/// `POST /api/rooms/{slug}/join` with the rejoin token and secret of an
/// earlier join response, as a client whose node was lost does.
pub async fn rejoin_reply(base: &str, slug: &str, name: &str, earlier: &Value) -> Reply {
    join_reply(
        base,
        slug,
        &json!({
            "display_name": name,
            "rejoin_token": str_field(earlier, "token"),
            "rejoin_secret": str_field(earlier, "rejoin_secret"),
        }),
        None,
    )
    .await
}

/// `PUT /api/rooms/{slug}/settings` with `change` (e.g. `{"lobby":true}`),
/// presenting `owner_key` if given.
pub async fn put_settings(
    base: &str,
    slug: &str,
    owner_key: Option<&str>,
    change: &Value,
) -> Reply {
    let headers: Vec<(&str, &str)> = owner_key.map(|k| (OWNER_KEY, k)).into_iter().collect();
    http_put_json_with_headers(
        &format!("{base}/api/rooms/{slug}/settings"),
        change,
        &headers,
    )
    .await
}

/// The signalling frame of a moderation action: `action` is the
/// `ModAction` JSON (`{"action":"mute","participant_id":..,"group":..}`).
pub fn moderate_frame(action: &Value) -> Value {
    let mut frame = action.clone();
    frame["type"] = json!("moderate");
    frame
}

/// The id of `participant`'s track of `source`, if it publishes one.
pub fn track_id(participant: &Value, source: &str) -> Option<String> {
    participant["tracks"]
        .as_array()?
        .iter()
        .find(|t| t["source"] == source)
        .and_then(|t| t["id"].as_str())
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------
// The node's per-track forwarded-packet counter
// ---------------------------------------------------------------------------

/// One sample of a metric: its labels and value.
#[derive(Clone, Debug)]
pub struct Sample {
    /// `name="value"` pairs.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Parses `name{a="x",b="y"} 12` lines of a Prometheus text page.
pub fn samples(text: &str, name: &str) -> Vec<Sample> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = if let Some(inner) = rest.strip_prefix('{') {
                let (l, v) = inner.split_once('}')?;
                (l, v)
            } else if rest.starts_with(' ') {
                ("", rest)
            } else {
                return None; // another metric whose name starts with `name`
            };
            let value = value.split_whitespace().next()?.parse().ok()?;
            let labels = labels
                .split("\",")
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((
                        k.trim().trim_start_matches(',').to_owned(),
                        v.trim().trim_matches('"').to_owned(),
                    ))
                })
                .collect();
            Some(Sample { labels, value })
        })
        .collect()
}

/// The forwarded-packet counters of every track on the media node at
/// `media_base` (`veche serve` or `veche media-node`), keyed by track id.
pub async fn forwarded_per_track(media_base: &str) -> Result<BTreeMap<String, u64>, String> {
    let url = format!("{media_base}/media/metrics");
    let resp = http()
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let text = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    let mut out = BTreeMap::new();
    for s in samples(&text, FORWARDED_METRIC) {
        if let Some(track) = s.labels.get("track") {
            *out.entry(track.clone()).or_insert(0) += s.value as u64;
        }
    }
    Ok(out)
}

/// The forwarded-packet count of `track` on the node at `media_base`
/// (0 while the node has no sample for it).
pub async fn forwarded(media_base: &str, track: &str) -> Result<u64, String> {
    Ok(forwarded_per_track(media_base)
        .await?
        .get(track)
        .copied()
        .unwrap_or(0))
}

/// Waits until the node at `media_base` has forwarded at least `more`
/// packets of `track` beyond what it had when called: the track flows.
pub async fn assert_forwarding(media_base: &str, track: &str, more: u64, what: &str) {
    let start = forwarded(media_base, track).await.unwrap_or(0);
    wait_for(what, secs(30), async || {
        let now = forwarded(media_base, track).await?;
        if now >= start + more {
            Ok(())
        } else {
            Err(format!(
                "{FORWARDED_METRIC} of track {track} on {media_base}: {start} then {now}; every \
                 track there: {:?}",
                forwarded_per_track(media_base).await
            ))
        }
    })
    .await;
}

/// Asserts that the node at `media_base` forwards no packet of `track`
/// for `during` (the counter does not move).
pub async fn assert_not_forwarding(media_base: &str, track: &str, during: Duration, what: &str) {
    let before = forwarded(media_base, track)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let t0 = Instant::now();
    while t0.elapsed() < during {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = forwarded(media_base, track)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            now,
            before,
            "{what}: the node forwarded {} packets of track {track} within {:?}",
            now.saturating_sub(before),
            t0.elapsed()
        );
    }
}

/// The forwarded counter of one track, read right before a moderator's
/// action, to time how long after the action the track's last packet was
/// forwarded.
pub struct StopWatch {
    media_base: String,
    track: String,
    before: u64,
    /// Right after the baseline read: the action follows at once.
    pub since: Instant,
}

/// When a track's last packet was forwarded after an action.
#[derive(Clone, Copy, Debug)]
pub struct LastPacket {
    /// From the action to the poll that last saw the counter rise (an
    /// upper bound, to within one 10 ms poll and a metrics scrape); zero
    /// when nothing was forwarded after the action.
    pub after: Duration,
    /// Whether anything was forwarded after the action at all.
    pub rose: bool,
    /// From the action to the first poll: the resolution of `after`.
    pub first_poll: Duration,
}

impl std::fmt::Display for LastPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.rose {
            write!(
                f,
                "{} ms (the last poll that saw the forwarded counter rise; polls every 10 ms, the \
                 first {} ms after the action)",
                self.after.as_millis(),
                self.first_poll.as_millis()
            )
        } else {
            write!(
                f,
                "0 ms (nothing forwarded after the action; the first poll was {} ms after it)",
                self.first_poll.as_millis()
            )
        }
    }
}

impl StopWatch {
    /// Reads the counter of `track` on the node at `media_base`; send the
    /// action right after this returns.
    pub async fn arm(media_base: &str, track: &str) -> StopWatch {
        let before = forwarded(media_base, track)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        StopWatch {
            media_base: media_base.to_owned(),
            track: track.to_owned(),
            before,
            since: Instant::now(),
        }
    }

    /// Polls the counter every 10 ms until it has not risen for `quiet`.
    /// Panics if it still rises `budget` after the action.
    pub async fn last_packet(&self, quiet: Duration, budget: Duration) -> LastPacket {
        let (base, track, since) = (&self.media_base, &self.track, self.since);
        let mut last = self.before;
        let mut last_rise: Option<Instant> = None;
        let mut first_poll = None;
        loop {
            if first_poll.is_some() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let now = forwarded(base, track)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let at = Instant::now();
            first_poll.get_or_insert(at.duration_since(since));
            if now > last {
                last = now;
                last_rise = Some(at);
            }
            if at.duration_since(last_rise.unwrap_or(since)) >= quiet {
                return LastPacket {
                    after: last_rise.map_or(Duration::ZERO, |t| t.duration_since(since)),
                    rose: last_rise.is_some(),
                    first_poll: first_poll.unwrap_or_default(),
                };
            }
            assert!(
                at.duration_since(since) < budget + quiet,
                "track {track} on {base} was still forwarded {:?} after the action (counter \
                 {} before it, {now} now)",
                at.duration_since(since),
                self.before
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Scripted WebRTC publishers and receivers: the load-test bots
// ---------------------------------------------------------------------------

/// Bots of `veche loadtest` (real WebRTC clients that publish synthetic
/// VP8 and Opus and record what they receive) in one room. A bot keeps
/// sending whatever the node tells it, which is what a client that
/// ignores a moderator's mute does.
pub struct Bots {
    room: veche_loadtest::bot::Room,
    stop: tokio::sync::watch::Sender<bool>,
    running: Vec<tokio::task::JoinHandle<veche_loadtest::bot::BotResult>>,
}

impl Bots {
    /// No bots yet, in room `slug` of the server at `base`.
    pub fn new(base: &str, slug: &str) -> Bots {
        let (stop, _) = tokio::sync::watch::channel(false);
        Bots {
            room: veche_loadtest::bot::Room {
                base: base.to_owned(),
                slug: slug.to_owned(),
                epoch: Instant::now(),
                receiving: Default::default(),
            },
            stop,
            running: Vec::new(),
        }
    }

    /// Starts a bot named `name` that publishes video (and audio) if
    /// `publish`, receives everything, and joins in `region` if given.
    pub fn add(&mut self, name: &str, publish: bool, region: Option<&str>) {
        let spec = veche_loadtest::bot::BotSpec {
            name: name.to_owned(),
            video_bps: publish.then_some(300_000),
            audio: publish,
            expects_media: true,
        };
        let room = self.room.clone();
        let stop = self.stop.subscribe();
        let region = region.map(str::to_owned);
        self.running
            .push(tokio::spawn(veche_loadtest::bot::run_in_region(
                spec, room, region, stop,
            )));
    }

    /// Stops every bot and returns their results by name.
    pub async fn stop(self) -> BTreeMap<String, veche_loadtest::bot::BotResult> {
        let _ = self.stop.send(true);
        let mut out = BTreeMap::new();
        for h in self.running {
            let r = h.await.expect("a bot task panicked");
            out.insert(r.name.clone(), r);
        }
        out
    }
}

/// When `receiver` last received a packet of `kind` ("video"/"audio") from
/// the participant `from` (their id), relative to `since`; `None` if it
/// never did or only before `since`.
pub fn last_packet_after(
    receiver: &veche_loadtest::bot::BotResult,
    from: &str,
    kind: &str,
    since: Instant,
) -> Option<Duration> {
    let stats = receiver.received.get(&format!("{from}/{kind}"))?;
    stats.last_packet()?.checked_duration_since(since)
}
