//! The load report: a table for people and JSON for programs.
//!
//! It is built from what the bots measured and what the server processes
//! cost, and knows nothing of how they were started: the targets and the
//! runner depend on it, never the reverse.

pub mod cluster;
pub mod recording;

use crate::media::ReceiveStats;
use crate::scenario::{BotResult, Scenario};
use cluster::ClusterReport;
use recording::RecordingFigures;
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

/// Percentiles of one quantity.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub n: usize,
    /// Minimum.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `v` (unsorted).
    pub fn of(mut v: Vec<f64>) -> Percentiles {
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Percentiles {
            n: v.len(),
            min: v[0],
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: *v.last().expect("non-empty"),
        }
    }
}

/// What the server process spent during the measurement window.
#[derive(Clone, Debug, Serialize)]
pub struct ServerCost {
    /// CPU seconds (user + system) in the window.
    pub cpu_s: f64,
    /// Length of the window in seconds.
    pub window_s: f64,
    /// RTP packets the node forwarded in the window (from its metrics).
    pub packets_forwarded: Option<u64>,
    /// Resident memory before any bot joined.
    pub rss_idle_kib: Option<u64>,
    /// Resident memory at the end of the window.
    pub rss_loaded_kib: u64,
    /// Peak resident memory of the process.
    pub peak_rss_kib: u64,
}

/// Received-media figures for one kind (audio or video), over all
/// subscriber tracks.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MediaSummary {
    /// Subscriber tracks that received anything.
    pub tracks: usize,
    /// Received bitrate per track, kbit/s.
    pub bitrate_kbps: Percentiles,
    /// Packets lost (from sequence gaps) over packets expected, percent.
    pub loss_percent: f64,
    /// RFC 3550 interarrival jitter per track, ms.
    pub jitter_ms: Percentiles,
    /// One-way latency from publisher send to subscriber receive, ms,
    /// pooled over all tracks.
    pub latency_ms: Percentiles,
}

/// One subscriber track's reception, for the JSON report.
#[derive(Clone, Debug, Serialize)]
pub struct SubscriberTrack {
    /// The receiving bot.
    pub bot: String,
    /// `<publisher stream id>/<audio|video>`.
    pub track: String,
    /// Received bitrate, kbit/s.
    pub kbps: f64,
    /// Loss from sequence gaps, percent.
    pub loss_percent: f64,
    /// RFC 3550 jitter, ms.
    pub jitter_ms: f64,
    /// Cluster runs only: 0 if the bot was on the publisher's media node,
    /// 1 if the track was relayed to its node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hops: Option<u32>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Which server was measured: `"veche"` or `"janus"`.
    pub server_kind: &'static str,
    /// What ran.
    #[serde(flatten)]
    pub scenario: Scenario,
    /// Publishers' video bitrate.
    pub video_bps: u32,
    /// Measurement window, seconds.
    pub window_s: f64,
    /// Bots started.
    pub bots: usize,
    /// Bots that failed, with why.
    pub failed: Vec<(String, String)>,
    /// From the join API call to the first RTP packet, ms, per bot.
    pub join_ms: Percentiles,
    /// Bots that never received a packet.
    pub never_received: usize,
    /// Video as received.
    pub video: MediaSummary,
    /// Audio as received.
    pub audio: MediaSummary,
    /// Server cost, when its process could be read.
    pub server: Option<ServerCost>,
    /// Server CPU microseconds per forwarded packet.
    pub cpu_us_per_packet: Option<f64>,
    /// Server CPU use in the window, percent of one core.
    pub cpu_percent: Option<f64>,
    /// (loaded RSS - idle RSS) / subscriptions, KiB.
    pub memory_per_subscription_kib: Option<f64>,
    /// Every subscriber track, for per-subscriber analysis (JSON only).
    pub per_subscriber: Vec<SubscriberTrack>,
    /// CPU the bots themselves used in the window, percent of one core.
    /// When it nears the machine's core count, latency and jitter include
    /// time the bots waited for a CPU.
    pub bots_cpu_percent: Option<f64>,
    /// Cluster runs (`--nodes`) only: latency by cascade hops, the cost of
    /// each process and the media nodes' relay counters. `server` then
    /// sums the media nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
    /// Runs with `--record` only: what recording the meeting cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingFigures>,
}

fn summarize(bots: &[BotResult], kind: &str) -> MediaSummary {
    summarize_tracks(
        bots.iter()
            .flat_map(|b| &b.received)
            .filter(|(key, _)| key.ends_with(kind))
            .map(|(_, s)| s),
    )
}

/// Received-media figures over `tracks` (all of one kind); tracks that
/// received nothing are left out.
pub(crate) fn summarize_tracks<'a>(
    tracks: impl IntoIterator<Item = &'a ReceiveStats>,
) -> MediaSummary {
    let mut bitrate = Vec::new();
    let mut jitter = Vec::new();
    let mut latency = crate::media::LatencyHistogram::new();
    let (mut lost, mut expected) = (0u64, 0u64);
    for s in tracks {
        if s.packets() == 0 {
            continue;
        }
        bitrate.push(s.bitrate_bps() / 1000.0);
        jitter.push(s.jitter_ms());
        lost += s.lost();
        expected += s.expected();
        latency.merge(s.latency());
    }
    MediaSummary {
        tracks: bitrate.len(),
        bitrate_kbps: Percentiles::of(bitrate),
        loss_percent: if expected == 0 {
            0.0
        } else {
            100.0 * lost as f64 / expected as f64
        },
        jitter_ms: Percentiles::of(jitter),
        latency_ms: latency_percentiles(&latency),
    }
}

fn latency_percentiles(h: &crate::media::LatencyHistogram) -> Percentiles {
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0);
    Percentiles {
        n: h.count() as usize,
        min: ms(h.min()),
        p50: ms(h.quantile(0.50)),
        p95: ms(h.quantile(0.95)),
        p99: ms(h.quantile(0.99)),
        max: ms(h.max()),
    }
}

impl Report {
    /// Builds the report from the bots' results and the server's cost.
    pub fn build(
        scenario: Scenario,
        video_bps: u32,
        window: Duration,
        bots: Vec<BotResult>,
        server: Option<ServerCost>,
    ) -> Report {
        let join: Vec<f64> = bots
            .iter()
            .filter(|b| b.expects_media)
            .filter_map(|b| b.join_to_first_rtp)
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        let never_received = bots
            .iter()
            .filter(|b| b.expects_media && b.join_to_first_rtp.is_none())
            .count();
        let failed = bots
            .iter()
            .filter_map(|b| b.error.clone().map(|e| (b.name.clone(), e)))
            .collect();
        let subs = scenario.expected_subscriptions();
        let cpu_us_per_packet = server.as_ref().and_then(|s| {
            s.packets_forwarded
                .filter(|p| *p > 0)
                .map(|p| s.cpu_s * 1e6 / p as f64)
        });
        let cpu_percent = server
            .as_ref()
            .map(|s| 100.0 * s.cpu_s / s.window_s.max(1e-9));
        let memory_per_subscription_kib = server.as_ref().and_then(|s| {
            s.rss_idle_kib
                .filter(|_| subs > 0)
                .map(|idle| (s.rss_loaded_kib as f64 - idle as f64) / subs as f64)
        });
        let per_subscriber = bots
            .iter()
            .flat_map(|b| {
                b.received.iter().map(|(track, s)| SubscriberTrack {
                    bot: b.name.clone(),
                    track: track.clone(),
                    kbps: s.bitrate_bps() / 1000.0,
                    loss_percent: if s.expected() == 0 {
                        0.0
                    } else {
                        100.0 * s.lost() as f64 / s.expected() as f64
                    },
                    jitter_ms: s.jitter_ms(),
                    hops: None,
                })
            })
            .collect();
        Report {
            server_kind: "veche",
            bots_cpu_percent: None,
            cluster: None,
            recording: None,
            per_subscriber,
            scenario,
            video_bps,
            window_s: window.as_secs_f64(),
            bots: bots.len(),
            failed,
            join_ms: Percentiles::of(join),
            never_received,
            video: summarize(&bots, "video"),
            audio: summarize(&bots, "audio"),
            server,
            cpu_us_per_packet,
            cpu_percent,
            memory_per_subscription_kib,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "server              {}", self.server_kind);
        let _ = writeln!(t, "scenario            {:?}", self.scenario);
        let _ = writeln!(
            t,
            "bots                {} started, {} failed, {} received nothing",
            self.bots,
            self.failed.len(),
            self.never_received
        );
        let _ = writeln!(t, "window              {:.1} s", self.window_s);
        let j = &self.join_ms;
        let _ = writeln!(
            t,
            "join -> first RTP   p50 {:.0} ms   p95 {:.0} ms   max {:.0} ms",
            j.p50, j.p95, j.max
        );
        for (kind, m) in [("video", &self.video), ("audio", &self.audio)] {
            if m.tracks == 0 {
                continue;
            }
            let _ = writeln!(
                t,
                "{kind:<5} received     {} tracks, bitrate p50 {:.0} kbps (min {:.0}), loss {:.3} %, jitter p50 {:.2} ms (max {:.2})",
                m.tracks,
                m.bitrate_kbps.p50,
                m.bitrate_kbps.min,
                m.loss_percent,
                m.jitter_ms.p50,
                m.jitter_ms.max
            );
            let l = &m.latency_ms;
            let _ = writeln!(
                t,
                "{kind:<5} latency      p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms   ({} samples)",
                l.p50, l.p99, l.max, l.n
            );
        }
        if let Some(s) = &self.server {
            let _ = writeln!(
                t,
                "server CPU          {:.2} s over {:.1} s ({:.0} % of a core)",
                s.cpu_s,
                s.window_s,
                self.cpu_percent.unwrap_or(0.0)
            );
            if let Some(p) = s.packets_forwarded {
                let _ = writeln!(
                    t,
                    "packets forwarded   {p} ({:.0}/s)",
                    p as f64 / s.window_s
                );
            }
            if let Some(us) = self.cpu_us_per_packet {
                let _ = writeln!(t, "CPU per packet      {us:.1} µs");
            }
            let _ = writeln!(
                t,
                "server memory       {} MiB now, {} MiB peak{}",
                s.rss_loaded_kib / 1024,
                s.peak_rss_kib / 1024,
                self.memory_per_subscription_kib
                    .map(|m| format!(", {:.0} KiB per subscription", m))
                    .unwrap_or_default()
            );
        }
        if let Some(b) = self.bots_cpu_percent {
            let _ = writeln!(t, "bots' own CPU       {b:.0} % of a core (same machine)");
        }
        if let Some(c) = &self.cluster {
            t.push_str(&c.table());
        }
        if let Some(r) = &self.recording {
            t.push_str(&r.lines());
        }
        for (name, e) in &self.failed {
            let _ = writeln!(t, "FAILED {name}: {e}");
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!(
            (p.min, p.p50, p.p95, p.p99, p.max),
            (1.0, 50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(Percentiles::of(vec![]).n, 0);
        assert_eq!(Percentiles::of(vec![7.0]).p99, 7.0);
    }
}
