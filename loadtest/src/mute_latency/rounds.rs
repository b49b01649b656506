//! The bots of a mute-latency run while they run, and one round: the
//! host mutes a publisher's camera, every other bot's receive records are
//! watched until the camera has been silent for the settle time, and the
//! publisher lifts the hold itself (`unmute_self`, which the room's
//! `allow_self_unmute` permits) until the camera reaches everyone again.
//!
//! Times are taken from the bots' own records (the instant each packet
//! reached a receiver, the instant each video frame left the publisher),
//! not from the polls, so the poll interval does not blur the stop time;
//! only the resume time is known to within one poll. Video goes out in
//! frames 33 ms apart (30 fps), so a receiver's last camera packet only
//! says the mute was not in force when that frame passed; the next frame
//! the publisher sent, which never arrived, says it was by then. Both are
//! reported.

use super::report::{ReceiverSample, RoundResult};
use crate::client::Shared;
use crate::scenario::BotResult;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use veche_protocol::moderation::{MediaGroup, ModAction, PolicyView, SettingsChange};
use veche_protocol::signal::{ClientMessage, ServerMessage};
use veche_protocol::ParticipantId;

/// How often the round looks at the receive records and the frames.
const POLL: Duration = Duration::from_millis(2);
/// How long a mute may take to silence the camera everywhere before the
/// round fails (well above anything a working node needs).
const STOP_BUDGET: Duration = Duration::from_secs(10);
/// How long the camera may take to reach everyone again after the
/// unmute, or everyone to receive everything at the start.
const FLOW_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the host may take to see a settings change it made.
const POLICY_TIMEOUT: Duration = Duration::from_secs(10);
/// A receiver whose last packet of the publisher's microphone is older
/// than this, when the camera has gone quiet, has lost the microphone too.
const AUDIO_GAP: Duration = Duration::from_millis(500);
/// Time between the camera reaching everyone again and the next mute, so
/// each mute hits a steadily flowing track (its keyframe included).
const BETWEEN_ROUNDS: Duration = Duration::from_millis(500);
/// Up to this much more, at random: the round's start follows a frame's
/// arrival, so without it every click would fall at the same point
/// between two frames (500 ms is exactly 15 frames) and every round would
/// measure the same phase. Three frame intervals spread the click evenly.
const PHASE_SPREAD_US: u32 = 100_000;

/// A bot of the run, with what it has recorded so far and, for the host
/// and the publishers, its signalling socket.
pub(crate) struct LiveBot {
    /// `host`, `pub-0`, `sub-0`, ...
    pub(crate) name: String,
    /// Its receive records, participant id and node, read while it runs.
    pub(crate) shared: Arc<Mutex<Shared>>,
    /// Frames for its signalling socket (host and publishers).
    pub(crate) send: Option<mpsc::UnboundedSender<Value>>,
    /// Every frame it received (host and publishers).
    pub(crate) frames: Option<mpsc::UnboundedReceiver<Value>>,
    /// The bot's task.
    pub(crate) handle: JoinHandle<BotResult>,
}

impl LiveBot {
    /// The participant id its join response granted, once it has one.
    pub(crate) fn participant(&self) -> Option<String> {
        self.shared
            .lock()
            .expect("lock poisoned")
            .participant_id
            .clone()
    }

    /// The media node its join response placed it on.
    pub(crate) fn node(&self) -> Option<u64> {
        self.shared.lock().expect("lock poisoned").node_id
    }

    /// When the latest packet of `kind` ("video"/"audio") from participant
    /// `from` reached it.
    fn last(&self, from: &str, kind: &str) -> Option<Instant> {
        self.shared
            .lock()
            .expect("lock poisoned")
            .received
            .get(&format!("{from}/{kind}"))
            .and_then(|s| s.last_packet())
    }

    /// When the first video frame it sent after `t` went out.
    fn frame_sent_after(&self, t: Instant) -> Option<Instant> {
        let s = self.shared.lock().expect("lock poisoned");
        let frames = &s.video_frames_sent;
        let i = frames.partition_point(|(_, at)| *at <= t);
        frames.get(i).map(|(_, at)| *at)
    }

    /// An error if the bot's task has ended (its own error is in its
    /// result, collected when the run stops).
    pub(crate) fn alive(&self) -> Result<(), String> {
        if self.handle.is_finished() {
            Err(format!("bot {} stopped during the run", self.name))
        } else {
            Ok(())
        }
    }

    /// Sends `msg` on its signalling socket.
    fn say(&self, msg: &ClientMessage) -> Result<(), String> {
        let frame = serde_json::to_value(msg).expect("client messages serialise");
        self.send
            .as_ref()
            .ok_or_else(|| format!("bot {} has no signalling tap", self.name))?
            .send(frame)
            .map_err(|_| format!("bot {} stopped during the run", self.name))
    }

    /// Every `policy` it received since the last call, in order; fails on
    /// an `error` that answers a `moderate`.
    fn policies(&mut self) -> Result<Vec<PolicyView>, String> {
        let mut out = Vec::new();
        let Some(rx) = self.frames.as_mut() else {
            return Ok(out);
        };
        while let Ok(frame) = rx.try_recv() {
            match serde_json::from_value::<ServerMessage>(frame.clone()) {
                Ok(ServerMessage::Policy { policy }) => out.push(policy),
                Ok(ServerMessage::Error { error, request, .. })
                    if request.as_deref() == Some("moderate") =>
                {
                    return Err(format!(
                        "{}'s moderate was refused: {} ({:?})",
                        self.name, error.message, error.code
                    ))
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The bots of the run: `host` and `publishers` index into `bots`.
pub(crate) struct RoomBots<'a> {
    pub(crate) bots: &'a mut [LiveBot],
    pub(crate) host: usize,
    pub(crate) publishers: Vec<usize>,
}

fn alive(bots: &[LiveBot]) -> Result<(), String> {
    bots.iter().try_for_each(LiveBot::alive)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl RoomBots<'_> {
    /// Waits until every bot has joined (has a participant id) and
    /// receives every publisher's camera and microphone.
    pub(crate) async fn until_flowing(&self) -> Result<(), String> {
        let since = Instant::now();
        loop {
            alive(self.bots)?;
            let missing = self.missing_media();
            if missing.is_empty() {
                return Ok(());
            }
            if since.elapsed() > FLOW_TIMEOUT {
                return Err(format!(
                    "after {} s, still missing: {}",
                    FLOW_TIMEOUT.as_secs(),
                    missing.join(", ")
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn missing_media(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for p in &self.publishers {
            let Some(pid) = self.bots[*p].participant() else {
                missing.push(format!("{} has not joined", self.bots[*p].name));
                continue;
            };
            for (i, b) in self.bots.iter().enumerate() {
                for kind in ["video", "audio"] {
                    if i != *p && b.last(&pid, kind).is_none() {
                        missing.push(format!("{} <- {} {kind}", b.name, self.bots[*p].name));
                    }
                }
            }
        }
        missing
    }

    /// The host turns on `allow_self_unmute` and waits for the policy
    /// that says so, so publishers can lift their own holds.
    pub(crate) async fn allow_self_unmute(&mut self) -> Result<(), String> {
        let host = &mut self.bots[self.host];
        host.say(&ClientMessage::Moderate(ModAction::Settings {
            change: SettingsChange {
                allow_self_unmute: Some(true),
                ..Default::default()
            },
        }))?;
        let since = Instant::now();
        loop {
            host.alive()?;
            if host
                .policies()?
                .iter()
                .any(|p| p.settings.allow_self_unmute)
            {
                return Ok(());
            }
            if since.elapsed() > POLICY_TIMEOUT {
                return Err("the host never saw allow_self_unmute switched on".into());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One round: mute `self.publishers[which]`'s camera, measure, unmute.
    pub(crate) async fn round(
        &mut self,
        round: usize,
        which: usize,
        settle: Duration,
    ) -> Result<RoundResult, String> {
        let spread =
            Duration::from_micros(u64::from(crate::client::random_u32() % PHASE_SPREAD_US));
        tokio::time::sleep(BETWEEN_ROUNDS + spread).await;
        let p = self.publishers[which];
        let pid = self.bots[p].participant().ok_or("publisher not joined")?;
        let publisher_node = self.bots[p].node();
        let receivers: Vec<usize> = (0..self.bots.len()).filter(|i| *i != p).collect();
        let held = |v: &PolicyView| {
            v.holds
                .get(&ParticipantId(pid.clone()))
                .is_some_and(|h| h.groups.contains(&MediaGroup::Camera))
        };

        // Mute, as a moderator's click sends it.
        let stale = self.bots[self.host].policies()?;
        let newer_than = stale.iter().map(|v| v.version).max().unwrap_or(0);
        let t0 = Instant::now();
        self.bots[self.host].say(&ClientMessage::Moderate(ModAction::Mute {
            participant_id: ParticipantId(pid.clone()),
            group: MediaGroup::Camera,
        }))?;
        let mut policy_at = None;
        loop {
            tokio::time::sleep(POLL).await;
            let now = Instant::now();
            alive(self.bots)?;
            if policy_at.is_none()
                && self.bots[self.host]
                    .policies()?
                    .iter()
                    .any(|v| v.version > newer_than && held(v))
            {
                policy_at = Some(now);
            }
            let noisy: Vec<&str> = receivers
                .iter()
                .filter(|r| {
                    let quiet_since = self.bots[**r].last(&pid, "video").map_or(t0, |l| l.max(t0));
                    now.saturating_duration_since(quiet_since) < settle
                })
                .map(|r| self.bots[*r].name.as_str())
                .collect();
            if noisy.is_empty() && policy_at.is_some() {
                break;
            }
            if now.duration_since(t0) > STOP_BUDGET + settle {
                return Err(format!(
                    "round {round}: {:?} after the mute, {} still received the camera of {}{}",
                    now.duration_since(t0),
                    noisy.join(", "),
                    self.bots[p].name,
                    if policy_at.is_none() {
                        "; the host never received the policy"
                    } else {
                        ""
                    }
                ));
            }
        }
        let policy_ms = ms(policy_at.expect("waited for it").duration_since(t0));
        let quiet_at = Instant::now();
        let mut samples: Vec<ReceiverSample> = receivers
            .iter()
            .map(|r| {
                let b = &self.bots[*r];
                let node = b.node();
                let last = b.last(&pid, "video");
                ReceiverSample {
                    name: b.name.clone(),
                    node,
                    hops: node.zip(publisher_node).map(|(a, b)| u32::from(a != b)),
                    stop_ms: last.filter(|l| *l > t0).map(|l| ms(l.duration_since(t0))),
                    // The next frame after the last one that arrived never
                    // did: the mute was in force on this path by then.
                    withheld_from_ms: last
                        .and_then(|l| self.bots[p].frame_sent_after(l))
                        .map(|s| ms(s.saturating_duration_since(t0))),
                    resume_ms: None,
                    audio_flowing: b
                        .last(&pid, "audio")
                        .is_some_and(|l| quiet_at.saturating_duration_since(l) < AUDIO_GAP),
                }
            })
            .collect();

        // The publisher lifts its own hold; wait for the camera everywhere.
        self.bots[p].policies()?;
        let tu = Instant::now();
        self.bots[p].say(&ClientMessage::Moderate(ModAction::UnmuteSelf {
            group: MediaGroup::Camera,
        }))?;
        loop {
            tokio::time::sleep(POLL).await;
            alive(self.bots)?;
            self.bots[p].policies()?;
            let mut waiting = Vec::new();
            for (s, r) in samples.iter_mut().zip(&receivers) {
                if s.resume_ms.is_some() {
                    continue;
                }
                match self.bots[*r].last(&pid, "video") {
                    Some(l) if l > tu => s.resume_ms = Some(ms(l.duration_since(tu))),
                    _ => waiting.push(s.name.as_str()),
                }
            }
            if waiting.is_empty() {
                break;
            }
            if tu.elapsed() > FLOW_TIMEOUT {
                return Err(format!(
                    "round {round}: {:?} after unmute_self, {} had not received the camera of {} \
                     again",
                    tu.elapsed(),
                    waiting.join(", "),
                    self.bots[p].name
                ));
            }
        }
        Ok(RoundResult {
            round,
            publisher: self.bots[p].name.clone(),
            publisher_node,
            policy_ms,
            receivers: samples,
        })
    }
}
