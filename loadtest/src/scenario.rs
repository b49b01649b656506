//! What a load run is: the scenario (who publishes, who subscribes), each
//! bot's part in it, what a bot measured, and the run's options. Plain
//! data, shared by the runner, every target and the report, so it imports
//! nothing of theirs.

use crate::media::stats::ReceiveStats;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The shape of a load run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "scenario", rename_all = "snake_case")]
pub enum Scenario {
    /// `publishers` bots each publish audio and video; everyone receives
    /// everyone.
    Meeting {
        /// Participants, all publishing.
        publishers: usize,
    },
    /// One bot publishes audio and video; `subscribers` bots receive it.
    Webinar {
        /// Receivers.
        subscribers: usize,
    },
    /// `publishers` bots publish audio only; `subscribers` more receive.
    Audio {
        /// Audio publishers.
        publishers: usize,
        /// Receive-only bots.
        subscribers: usize,
    },
}

impl Scenario {
    /// The bots this scenario runs, publishers first.
    pub fn bots(&self, video_bps: u32) -> Vec<BotSpec> {
        let others_publish = match *self {
            Scenario::Meeting { publishers } | Scenario::Audio { publishers, .. } => publishers > 1,
            Scenario::Webinar { .. } => false,
        };
        let publisher = |i: usize, video: bool| BotSpec {
            name: format!("pub-{i}"),
            video_bps: video.then_some(video_bps),
            audio: true,
            expects_media: others_publish,
        };
        let subscriber = |i: usize| BotSpec {
            name: format!("sub-{i}"),
            video_bps: None,
            audio: false,
            expects_media: true,
        };
        match *self {
            Scenario::Meeting { publishers } => {
                (0..publishers).map(|i| publisher(i, true)).collect()
            }
            Scenario::Webinar { subscribers } => std::iter::once(publisher(0, true))
                .chain((0..subscribers).map(subscriber))
                .collect(),
            Scenario::Audio {
                publishers,
                subscribers,
            } => (0..publishers)
                .map(|i| publisher(i, false))
                .chain((0..subscribers).map(subscriber))
                .collect(),
        }
    }

    /// Tracks each bot should end up receiving, for the "media flows" wait
    /// and for the subscription count.
    pub fn expected_subscriptions(&self) -> usize {
        match *self {
            Scenario::Meeting { publishers } => publishers * (publishers.saturating_sub(1)) * 2,
            Scenario::Webinar { subscribers } => subscribers * 2,
            Scenario::Audio {
                publishers,
                subscribers,
            } => publishers * (publishers.saturating_sub(1) + subscribers),
        }
    }
}

/// Which server to load.
#[derive(Clone, Debug)]
pub enum ServerTarget {
    /// Start `veche serve` from this executable on a free loopback port and
    /// a temporary data directory, and stop it afterwards.
    Spawn {
        /// The `veche` binary.
        exe: PathBuf,
    },
    /// Start Janus 1.1 (VideoRoom) with its own config and load it through
    /// its WebSocket API, for a side-by-side comparison (see
    /// `crate::janus`).
    Janus,
    /// Start a cascading cluster from this executable: one control plane
    /// and `media_nodes` media nodes on loopback, each in a region of its
    /// own (see `crate::cluster`), and stop it afterwards.
    Cluster {
        /// The `veche` binary.
        exe: PathBuf,
        /// Media nodes.
        media_nodes: usize,
    },
    /// A server that is already running.
    External {
        /// Its base URL.
        base: String,
        /// Its process id, for CPU and memory figures (optional).
        pid: Option<u32>,
    },
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Options {
    /// What to run.
    pub scenario: Scenario,
    /// Bots started per second.
    pub ramp_per_sec: f64,
    /// How long to measure once media flows.
    pub duration: Duration,
    /// Video bitrate of publishers.
    pub video_bps: u32,
    /// The server.
    pub target: ServerTarget,
    /// Show progress bars on stderr.
    pub progress: bool,
    /// Record the meeting while it is measured (`--record`; Veche on one
    /// process only): the first bot joins as the room's host and starts a
    /// recording, and the report adds the recorder's cost.
    pub record: bool,
}

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
    /// The media node the join response placed this bot on.
    pub node_id: Option<u64>,
    /// The participant id the join response granted: the stream id other
    /// bots key this bot's tracks by.
    pub participant_id: Option<String>,
    /// Set if the bot failed; the report lists these.
    pub error: Option<String>,
}
