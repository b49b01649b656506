//! The cluster part of a load report (`veche loadtest --nodes N`): each
//! process's cost, the media nodes' relay counters, and latency split by
//! how many cascade hops a track crossed.

use super::{summarize_tracks, MediaSummary};
use crate::scenario::BotResult;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// The per-hop latency the cascade is meant to stay under at p99.
pub const ADDED_P99_TARGET_MS: f64 = 3.0;

/// Which part of the cluster a process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `veche control-plane`.
    ControlPlane,
    /// `veche media-node`.
    MediaNode,
}

/// A media node's relay and forwarding counters, scraped from its
/// `/media/metrics` (`veche_node_*`). Labelled families are summed over
/// their labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct NodeMetrics {
    /// `participants`: participants connected to the node.
    pub participants: u64,
    /// `rtp_packets_out_total`: packets forwarded to its subscribers.
    pub rtp_packets_out_total: u64,
    /// `relay_rtp_packets_out_total`: packets relayed to other nodes.
    pub relay_rtp_packets_out_total: u64,
    /// `relay_rtp_packets_in_total`: packets relayed from other nodes.
    pub relay_rtp_packets_in_total: u64,
    /// `relay_rtp_bytes_out_total`: bytes relayed to other nodes.
    pub relay_rtp_bytes_out_total: u64,
    /// `relay_tracks_out`: tracks relayed to other nodes, over all peers.
    pub relay_tracks_out: u64,
    /// `relay_tracks_in`: tracks relayed from other nodes, over all peers.
    pub relay_tracks_in: u64,
    /// `relay_links`: relay connections this node dialed that are up.
    pub relay_links: u64,
    /// `relay_nacks_total`: sequence numbers NACKed to a publisher's node.
    pub relay_nacks_total: u64,
    /// `relay_retransmits_total`: packets resent after another node's NACK.
    pub relay_retransmits_total: u64,
    /// `relay_datagrams_dropped_total`: relay datagrams not sent or not
    /// used, over all reasons.
    pub relay_datagrams_dropped_total: u64,
}

impl NodeMetrics {
    /// Reads the counters from a Prometheus text exposition. Missing
    /// families (a labelled family with no series yet) read as 0.
    pub fn parse(text: &str) -> NodeMetrics {
        let mut sums: HashMap<&str, f64> = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // `name{labels} value [timestamp]` or `name value [timestamp]`;
            // label values here are ids and reasons, without spaces.
            let mut parts = line.split_whitespace();
            let (Some(series), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            let name = series.split('{').next().unwrap_or(series);
            let Some(name) = name.strip_prefix("veche_node_") else {
                continue;
            };
            if let Ok(v) = value.parse::<f64>() {
                *sums.entry(name).or_default() += v;
            }
        }
        let get = |name: &str| sums.get(name).map_or(0, |v| v.max(0.0) as u64);
        NodeMetrics {
            participants: get("participants"),
            rtp_packets_out_total: get("rtp_packets_out_total"),
            relay_rtp_packets_out_total: get("relay_rtp_packets_out_total"),
            relay_rtp_packets_in_total: get("relay_rtp_packets_in_total"),
            relay_rtp_bytes_out_total: get("relay_rtp_bytes_out_total"),
            relay_tracks_out: get("relay_tracks_out"),
            relay_tracks_in: get("relay_tracks_in"),
            relay_links: get("relay_links"),
            relay_nacks_total: get("relay_nacks_total"),
            relay_retransmits_total: get("relay_retransmits_total"),
            relay_datagrams_dropped_total: get("relay_datagrams_dropped_total"),
        }
    }
}

/// One process of the cluster: what it cost in the window and, for a media
/// node, its counters at the end of the window.
#[derive(Clone, Debug, Serialize)]
pub struct ProcessReport {
    /// Control plane or media node.
    pub role: Role,
    /// Its `--id`.
    pub id: u64,
    /// Its region (media nodes).
    pub region: Option<String>,
    /// Its HTTP address.
    pub addr: String,
    /// Its process id.
    pub pid: u32,
    /// Bots whose join placed them here (media nodes).
    pub bots: Option<usize>,
    /// CPU in the window, percent of one core.
    pub cpu_percent: Option<f64>,
    /// Resident memory before any bot joined, KiB.
    pub rss_idle_kib: Option<u64>,
    /// Resident memory at the end of the window, KiB.
    pub rss_kib: Option<u64>,
    /// Peak resident memory, KiB.
    pub peak_rss_kib: Option<u64>,
    /// Packets relayed to other nodes per second in the window (media
    /// nodes).
    pub relay_packets_out_per_s: Option<f64>,
    /// Counters at the end of the window, while every bot was still
    /// connected (media nodes; `None` if the scrape failed).
    pub metrics: Option<NodeMetrics>,
}

/// Received media of the tracks at one distance from their publisher.
#[derive(Clone, Debug, Serialize)]
pub struct HopSummary {
    /// 0: the subscriber is on the publisher's node; 1: the track was
    /// relayed once.
    pub hops: u32,
    /// Bots receiving at least one track at this distance.
    pub receivers: usize,
    /// Video tracks at this distance.
    pub video: MediaSummary,
    /// Audio tracks at this distance.
    pub audio: MediaSummary,
}

/// What one cascade hop adds: the 1-hop latency percentile minus the
/// 0-hop one, ms. `None` where either side has no samples.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AddedLatency {
    /// Video, at the median.
    pub video_p50_ms: Option<f64>,
    /// Video, at p99.
    pub video_p99_ms: Option<f64>,
    /// Audio, at the median.
    pub audio_p50_ms: Option<f64>,
    /// Audio, at p99.
    pub audio_p99_ms: Option<f64>,
    /// The p99 target ([`ADDED_P99_TARGET_MS`]).
    pub target_p99_ms: f64,
    /// Whether every p99 figure present is under the target.
    pub p99_met: bool,
}

/// Where one bot was placed.
#[derive(Clone, Debug, Serialize)]
pub struct Placement {
    /// The bot.
    pub bot: String,
    /// The region its join request named.
    pub region: String,
    /// The media node the join response named.
    pub node_id: Option<u64>,
    /// The participant id it was granted.
    pub participant_id: Option<String>,
}

/// The cluster part of a report.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterReport {
    /// Media nodes in the cluster.
    pub media_nodes: usize,
    /// Media nodes the publishers were placed on.
    pub publisher_nodes: Vec<u64>,
    /// Every bot's placement, in start order.
    pub placements: Vec<Placement>,
    /// Latency and reception by distance from the publisher, 0 hops first.
    pub by_hops: Vec<HopSummary>,
    /// What one hop adds, when both distances were measured.
    pub added_per_hop_ms: Option<AddedLatency>,
    /// The control plane, then the media nodes in id order.
    pub processes: Vec<ProcessReport>,
    /// Things that make the figures mean less than they seem.
    pub warnings: Vec<String>,
}
/// The distance of every received track, keyed by (receiving bot index,
/// track key): 0 if the receiver is on the node of the publisher whose
/// participant id is the track's stream id, else 1. Tracks whose receiver
/// or publisher placement is unknown are left out.
pub(crate) fn track_hops(bots: &[BotResult]) -> HashMap<(usize, &str), u32> {
    let node_of: HashMap<&str, u64> = bots
        .iter()
        .filter_map(|b| Some((b.participant_id.as_deref()?, b.node_id?)))
        .collect();
    let mut out = HashMap::new();
    for (i, b) in bots.iter().enumerate() {
        let Some(here) = b.node_id else { continue };
        for key in b.received.keys() {
            let publisher = key.rsplit_once('/').map_or(key.as_str(), |(p, _)| p);
            if let Some(there) = node_of.get(publisher) {
                out.insert((i, key.as_str()), u32::from(*there != here));
            }
        }
    }
    out
}

/// Splits received media by distance from the publisher.
pub fn by_hops(bots: &[BotResult]) -> Vec<HopSummary> {
    let hops = track_hops(bots);
    let mut distances: Vec<u32> = hops.values().copied().collect();
    distances.sort_unstable();
    distances.dedup();
    distances
        .into_iter()
        .map(|d| {
            let at = |kind: &'static str| {
                let hops = &hops;
                bots.iter().enumerate().flat_map(move |(i, b)| {
                    b.received.iter().filter_map(move |(key, s)| {
                        (key.ends_with(kind) && hops.get(&(i, key.as_str())) == Some(&d))
                            .then_some(s)
                    })
                })
            };
            let receivers = bots
                .iter()
                .enumerate()
                .filter(|(i, b)| {
                    b.received
                        .keys()
                        .any(|k| hops.get(&(*i, k.as_str())) == Some(&d))
                })
                .count();
            HopSummary {
                hops: d,
                receivers,
                video: summarize_tracks(at("video")),
                audio: summarize_tracks(at("audio")),
            }
        })
        .collect()
}

/// The 1-hop percentiles minus the 0-hop ones.
pub fn added_per_hop(by_hops: &[HopSummary]) -> Option<AddedLatency> {
    let zero = by_hops.iter().find(|h| h.hops == 0)?;
    let one = by_hops.iter().find(|h| h.hops == 1)?;
    let diff = |a: &MediaSummary, b: &MediaSummary, p: fn(&MediaSummary) -> f64| {
        (a.latency_ms.n > 0 && b.latency_ms.n > 0).then(|| p(b) - p(a))
    };
    let video_p99_ms = diff(&zero.video, &one.video, |m| m.latency_ms.p99);
    let audio_p99_ms = diff(&zero.audio, &one.audio, |m| m.latency_ms.p99);
    Some(AddedLatency {
        video_p50_ms: diff(&zero.video, &one.video, |m| m.latency_ms.p50),
        video_p99_ms,
        audio_p50_ms: diff(&zero.audio, &one.audio, |m| m.latency_ms.p50),
        audio_p99_ms,
        target_p99_ms: ADDED_P99_TARGET_MS,
        p99_met: (video_p99_ms.is_some() || audio_p99_ms.is_some())
            && [video_p99_ms, audio_p99_ms]
                .into_iter()
                .flatten()
                .all(|ms| ms < ADDED_P99_TARGET_MS),
    })
}

impl ClusterReport {
    /// The cluster lines of the human-readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let nodes: Vec<String> = self.publisher_nodes.iter().map(u64::to_string).collect();
        let _ = writeln!(
            t,
            "cluster             {} media nodes + 1 control plane on loopback, publishers on node {}",
            self.media_nodes,
            if nodes.is_empty() {
                "?".to_owned()
            } else {
                nodes.join(", ")
            }
        );
        let _ = writeln!(
            t,
            "                    (server CPU, packets and memory above: the media nodes together)"
        );
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for p in &self.placements {
            let node = p.node_id.map_or("none".to_owned(), |n| n.to_string());
            *per_node.entry(node).or_default() += 1;
        }
        let spread: Vec<String> = per_node
            .iter()
            .map(|(n, c)| format!("node {n}: {c}"))
            .collect();
        let _ = writeln!(t, "bots placed         {}", spread.join(", "));
        let _ = writeln!(t, "latency by hops     p50 / p95 / p99 / max ms");
        for h in &self.by_hops {
            for (kind, m) in [("video", &h.video), ("audio", &h.audio)] {
                if m.tracks == 0 {
                    continue;
                }
                let l = &m.latency_ms;
                let _ = writeln!(
                    t,
                    "  {} hop{} {kind:<5}   {:.2} / {:.2} / {:.2} / {:.2}   ({} tracks, {} samples, loss {:.3} %)",
                    h.hops,
                    if h.hops == 1 { " " } else { "s" },
                    l.p50,
                    l.p95,
                    l.p99,
                    l.max,
                    m.tracks,
                    l.n,
                    m.loss_percent
                );
            }
        }
        match &self.added_per_hop_ms {
            Some(a) => {
                let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:+.2} ms"));
                let _ = writeln!(
                    t,
                    "added per hop       video p50 {} p99 {}, audio p50 {} p99 {}; target p99 < {} ms: {}",
                    ms(a.video_p50_ms),
                    ms(a.video_p99_ms),
                    ms(a.audio_p50_ms),
                    ms(a.audio_p99_ms),
                    a.target_p99_ms,
                    if a.p99_met { "met" } else { "NOT met" }
                );
            }
            None => {
                let _ = writeln!(
                    t,
                    "added per hop       not measured (needs receivers at 0 and at 1 hop)"
                );
            }
        }
        let row = |cells: [&str; 13]| {
            format!(
                "{:<16} {:>6} {:>4} {:>5} {:>7} {:>8} {:>9} {:>7} {:>7} {:>6} {:>5} {:>5} {:>7}",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                cells[4],
                cells[5],
                cells[6],
                cells[7],
                cells[8],
                cells[9],
                cells[10],
                cells[11],
                cells[12]
            )
            .trim_end()
            .to_owned()
        };
        let _ = writeln!(
            t,
            "{}",
            row([
                "process", "region", "bots", "CPU %", "RSS MiB", "peak MiB", "fwd pkts", "relay",
                "relay", "tracks", "links", "nacks", "dropped"
            ])
        );
        let _ = writeln!(
            t,
            "{}",
            row(["", "", "", "", "", "", "", "pkts/s", "pkts in", "out/in", "", "", ""])
        );
        for p in &self.processes {
            let name = match p.role {
                Role::ControlPlane => format!("control-plane {}", p.id),
                Role::MediaNode => format!("media-node {}", p.id),
            };
            let mib = |k: Option<u64>| k.map_or("-".to_owned(), |k| format!("{}", k / 1024));
            let m = p.metrics;
            let metric = |f: fn(&NodeMetrics) -> String| m.as_ref().map_or(String::new(), f);
            let cells = [
                name,
                p.region.clone().unwrap_or_default(),
                p.bots.map_or(String::new(), |b| b.to_string()),
                p.cpu_percent.map_or("-".to_owned(), |c| format!("{c:.0}")),
                mib(p.rss_kib),
                mib(p.peak_rss_kib),
                metric(|m| m.rtp_packets_out_total.to_string()),
                p.relay_packets_out_per_s
                    .map_or(String::new(), |r| format!("{r:.0}")),
                metric(|m| m.relay_rtp_packets_in_total.to_string()),
                metric(|m| format!("{}/{}", m.relay_tracks_out, m.relay_tracks_in)),
                metric(|m| m.relay_links.to_string()),
                metric(|m| m.relay_nacks_total.to_string()),
                metric(|m| m.relay_datagrams_dropped_total.to_string()),
            ];
            let _ = writeln!(t, "{}", row(cells.each_ref().map(String::as_str)));
        }
        let _ = writeln!(
            t,
            "                    (fwd pkts, relay pkts in, nacks, dropped: totals since start; relay pkts/s: out, in the window)"
        );
        for w in &self.warnings {
            let _ = writeln!(t, "WARNING {w}");
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ReceiveStats;
    use std::time::{Duration, Instant};

    #[test]
    fn relay_counters_are_read_and_labelled_families_summed() {
        let text = "\
# HELP veche_node_relay_tracks_out Tracks relayed
# TYPE veche_node_relay_tracks_out gauge
veche_node_relay_tracks_out{peer=\"2\"} 2
veche_node_relay_tracks_out{peer=\"3\"} 2
veche_node_relay_rtp_packets_out_total 1234
veche_node_relay_datagrams_dropped_total{reason=\"congested\"} 3
veche_node_relay_datagrams_dropped_total{reason=\"unknown_slot\"} 1
veche_node_rtp_packets_out_total 99
veche_node_participants 5
";
        let m = NodeMetrics::parse(text);
        assert_eq!(m.relay_tracks_out, 4);
        assert_eq!(m.relay_rtp_packets_out_total, 1234);
        assert_eq!(m.relay_datagrams_dropped_total, 4);
        assert_eq!(m.rtp_packets_out_total, 99);
        assert_eq!(m.participants, 5);
        assert_eq!(m.relay_tracks_in, 0, "absent family reads 0");
    }

    /// A bot placed on `node` that received `ms`-late packets of `from`'s
    /// video and audio.
    fn bot(name: &str, pid: &str, node: u64, from: Option<&str>, ms: u64) -> BotResult {
        let epoch = Instant::now();
        let mut received = BTreeMap::new();
        if let Some(from) = from {
            for (kind, clock) in [("video", 90_000u64), ("audio", 48_000)] {
                let mut s = ReceiveStats::new(clock as u32, epoch);
                for i in 0..100u64 {
                    let sent = Duration::from_millis(20 * i);
                    let ts = (sent.as_micros() as u64 * clock / 1_000_000) as u32;
                    s.record(i as u16, ts, 1000, epoch + sent + Duration::from_millis(ms));
                }
                received.insert(format!("{from}/{kind}"), s);
            }
        }
        BotResult {
            name: name.into(),
            expects_media: from.is_some(),
            node_id: Some(node),
            participant_id: Some(pid.into()),
            packets_sent: u64::from(from.is_none()),
            received,
            ..Default::default()
        }
    }

    #[test]
    fn tracks_are_split_by_hops_and_the_hop_adds_the_difference() {
        let bots = [
            bot("pub-0", "P", 1, None, 0),
            bot("sub-0", "A", 1, Some("P"), 2),
            bot("sub-1", "B", 2, Some("P"), 6),
            bot("sub-2", "C", 3, Some("P"), 6),
        ];
        let hops = by_hops(&bots);
        assert_eq!(hops.len(), 2);
        assert_eq!((hops[0].hops, hops[0].receivers), (0, 1));
        assert_eq!((hops[1].hops, hops[1].receivers), (1, 2));
        assert_eq!(hops[1].video.tracks, 2);
        assert_eq!(hops[1].audio.tracks, 2);
        let added = added_per_hop(&hops).expect("both distances measured");
        let v = added.video_p50_ms.unwrap();
        assert!((v - 4.0).abs() < 0.2, "video p50 added {v}");
        let a = added.audio_p99_ms.unwrap();
        assert!((a - 4.0).abs() < 0.2, "audio p99 added {a}");
        assert!(!added.p99_met, "4 ms is over the 3 ms target");
    }

    #[test]
    fn json_and_table_carry_the_hops_and_the_added_latency() {
        let bots = [
            bot("pub-0", "P", 1, None, 0),
            bot("sub-0", "A", 1, Some("P"), 2),
            bot("sub-1", "B", 2, Some("P"), 3),
        ];
        let by_hops = by_hops(&bots);
        let report = ClusterReport {
            media_nodes: 2,
            publisher_nodes: vec![1],
            placements: Vec::new(),
            added_per_hop_ms: added_per_hop(&by_hops),
            by_hops,
            processes: Vec::new(),
            warnings: Vec::new(),
        };
        let t = report.table();
        assert!(t.contains("1 hop  video"), "{t}");
        assert!(t.contains("target p99 < 3 ms: met"), "{t}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["by_hops"][1]["hops"], 1);
        assert_eq!(json["added_per_hop_ms"]["p99_met"], true);
    }

    #[test]
    fn one_node_has_no_added_latency() {
        let bots = [
            bot("pub-0", "P", 1, None, 0),
            bot("sub-0", "A", 1, Some("P"), 2),
        ];
        let hops = by_hops(&bots);
        assert_eq!(hops.len(), 1);
        assert!(added_per_hop(&hops).is_none());
    }
}
