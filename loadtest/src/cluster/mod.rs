//! Cluster mode of `veche loadtest` (`--nodes N`): the same bots and
//! scenarios against a cascading cluster, to measure what a cascade hop
//! adds to latency.
//!
//! The harness starts the whole cluster itself, on loopback, as child
//! processes of the same `veche` binary:
//!
//! 1. a relay CA and one certificate per media node (`veche cluster ca`,
//!    `veche cluster cert`);
//! 2. one control plane on `127.0.0.1` (`veche control-plane`, a one-voter
//!    Raft cluster);
//! 3. media nodes `1..=N`, node `i` on `127.0.0.(i+1)` in region `r<i>`,
//!    each with a QUIC relay endpoint on the same address
//!    (`veche media-node --relay-listen --relay-tls`);
//!
//! and waits until the control plane sees all N media nodes alive. Every
//! process shares one random cluster secret, logs to a file in the run's
//! temporary directory (shown only when a run fails), and is stopped at the
//! end, on Ctrl-C and on error; dropping [`VecheCluster`] kills whatever is
//! left. The processes are started with `veche-harness` ([`procs`]).
//!
//! Bots join through the control plane naming a region: publishers and
//! subscribers are each spread round-robin over `r1..rN`, so a webinar's
//! publisher is on node 1 and its subscribers on every node. Each bot
//! records the node its join response placed it on. A received track is
//! then 0 hops away (the subscriber is on its publisher's node) or 1 hop
//! (relayed once: every pair of media nodes has its own link, so no track
//! crosses more than one). The report splits latency by hops; "added per
//! hop" is the 1-hop percentile minus the 0-hop one.

pub(crate) mod procs;

use crate::bot::{self, create_room, Room};
use crate::proc::ProcSample;
use crate::report::cluster::{added_per_hop, by_hops, track_hops};
pub use crate::report::cluster::{
    AddedLatency, ClusterReport, HopSummary, NodeMetrics, Placement, ProcessReport, Role,
    ADDED_P99_TARGET_MS,
};
use crate::report::{Report, ServerCost};
use crate::scenario::{BotResult, BotSpec, Options};
use crate::target::{Measured, ProcWindow, Target};
use procs::Procs;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use veche_protocol::admin::MEDIA_METRICS_PATH;

/// The region of each bot, in `specs` order: publishers round-robin over
/// `r1..=rN`, and subscribers (bots that publish nothing) round-robin on
/// their own, so a webinar's lone publisher lands in `r1` and its
/// subscribers on every node.
pub fn regions(specs: &[BotSpec], media_nodes: usize) -> Vec<String> {
    let n = media_nodes.max(1);
    let (mut publishers, mut subscribers) = (0usize, 0usize);
    specs
        .iter()
        .map(|s| {
            let counter = if s.video_bps.is_some() || s.audio {
                &mut publishers
            } else {
                &mut subscribers
            };
            let region = format!("r{}", *counter % n + 1);
            *counter += 1;
            region
        })
        .collect()
}
/// A Veche cluster under load (see the module docs).
pub struct VecheCluster {
    exe: PathBuf,
    media_nodes: usize,
    procs: Procs,
    http: reqwest::Client,
    room: Option<Room>,
    /// The region each bot joins in, in start order.
    bot_regions: Vec<String>,
    next_bot: usize,
    receiving: Arc<AtomicUsize>,
    /// Whether to say what is being started and stopped.
    progress: bool,
}

impl VecheCluster {
    /// A cluster of `media_nodes` media nodes started from `exe` when the
    /// run is prepared.
    pub fn new(exe: PathBuf, media_nodes: usize) -> Result<VecheCluster, String> {
        if media_nodes == 0 || media_nodes > 250 {
            return Err("--nodes must be between 1 and 250".into());
        }
        Ok(VecheCluster {
            exe,
            media_nodes,
            procs: Procs::new(),
            http: crate::target::http_client(),
            room: None,
            bot_regions: Vec::new(),
            next_bot: 0,
            receiving: Arc::default(),
            progress: false,
        })
    }
}

impl Target for VecheCluster {
    /// Each media node's counters, in id order (`None` where the scrape
    /// failed).
    type Probe = Vec<Option<NodeMetrics>>;

    async fn prepare(&mut self, opts: &Options) -> Result<(), String> {
        let progress = opts.progress;
        self.progress = progress;
        let note = |msg: &str| {
            if progress {
                eprintln!("{msg}");
            }
        };
        self.procs
            .start(&self.exe, self.media_nodes, &self.http, &note)
            .await?;
        let base = self.procs.control_plane().to_owned();
        let slug = create_room(&self.http, &base).await?;
        self.room = Some(Room {
            base,
            slug,
            epoch: Instant::now(),
            receiving: self.receiving.clone(),
        });
        let specs = opts.scenario.bots(opts.video_bps);
        self.bot_regions = regions(&specs, self.media_nodes);
        Ok(())
    }

    fn pids(&self) -> Vec<u32> {
        self.procs
            .nodes
            .iter()
            .map(|n| n.proc.pid().unwrap_or(0))
            .collect()
    }

    fn receiving(&self) -> Arc<AtomicUsize> {
        self.receiving.clone()
    }

    fn spawn_bot(&mut self, spec: BotSpec, stop: watch::Receiver<bool>) -> JoinHandle<BotResult> {
        let room = self.room.clone().expect("prepared before bots start");
        let region = self.bot_regions.get(self.next_bot).cloned();
        self.next_bot += 1;
        tokio::spawn(bot::run_in_region(spec, room, region, stop))
    }

    async fn probe(&self) -> Vec<Option<NodeMetrics>> {
        let mut out = Vec::new();
        for n in self.procs.media() {
            out.push(scrape(&self.http, &n.base).await);
        }
        out
    }

    fn report(&self, opts: &Options, m: Measured<Vec<Option<NodeMetrics>>>) -> Report {
        let built = cluster_report(&self.procs, &m.bots, &self.bot_regions, &m.procs, &m.probe);
        // The report's `server` is the media nodes together: their CPU, their
        // memory and the packets they forwarded to subscribers.
        let media_costs: Vec<Option<ServerCost>> = self
            .procs
            .nodes
            .iter()
            .zip(&m.procs)
            .filter(|(p, _)| p.role == Role::MediaNode)
            .enumerate()
            .map(|(i, (_, w))| {
                let fwd = match (&m.probe.0[i], &m.probe.1[i]) {
                    (Some(b), Some(a)) => Some((b.rtp_packets_out_total, a.rtp_packets_out_total)),
                    _ => None,
                };
                w.cost(fwd)
            })
            .collect();
        let mut report = Report::build(
            opts.scenario,
            opts.video_bps,
            m.window,
            m.bots,
            sum_costs(&media_costs),
        );
        report.bots_cpu_percent = m.bots_cpu_percent;
        for t in &mut report.per_subscriber {
            t.hops = built
                .track_hops
                .get(&(t.bot.clone(), t.track.clone()))
                .copied();
        }
        report.cluster = Some(built.report);
        report
    }

    fn explain(&self, error: String) -> String {
        format!("{error}\n{}", self.procs.log_tails())
    }

    async fn shut_down(&mut self) {
        if self.progress && !self.procs.nodes.is_empty() {
            eprintln!("stopping the cluster");
        }
        self.procs.stop().await;
    }
}

async fn scrape(http: &reqwest::Client, base: &str) -> Option<NodeMetrics> {
    let text = http
        .get(format!("{base}{}", MEDIA_METRICS_PATH))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .text()
        .await
        .ok()?;
    Some(NodeMetrics::parse(&text))
}

/// Sums per-process costs into one, for the report's `server` figures.
fn sum_costs(costs: &[Option<ServerCost>]) -> Option<ServerCost> {
    let costs: Vec<&ServerCost> = costs.iter().map(Option::as_ref).collect::<Option<_>>()?;
    let first = costs.first()?;
    Some(ServerCost {
        cpu_s: costs.iter().map(|c| c.cpu_s).sum(),
        window_s: first.window_s,
        packets_forwarded: costs.iter().map(|c| c.packets_forwarded).sum(),
        rss_idle_kib: costs.iter().map(|c| c.rss_idle_kib).sum(),
        rss_loaded_kib: costs.iter().map(|c| c.rss_loaded_kib).sum(),
        peak_rss_kib: costs.iter().map(|c| c.peak_rss_kib).sum(),
    })
}

/// The cluster report, plus each received track's distance for the
/// per-subscriber list.
struct Built {
    report: ClusterReport,
    track_hops: HashMap<(String, String), u32>,
}

fn cluster_report(
    cluster: &Procs,
    bots: &[BotResult],
    bot_regions: &[String],
    windows: &[ProcWindow],
    probe: &(Vec<Option<NodeMetrics>>, Vec<Option<NodeMetrics>>),
) -> Built {
    let media_nodes = cluster.media().count();
    let placements: Vec<Placement> = bots
        .iter()
        .zip(bot_regions)
        .map(|(b, r)| Placement {
            bot: b.name.clone(),
            region: r.clone(),
            node_id: b.node_id,
            participant_id: b.participant_id.clone(),
        })
        .collect();
    let mut publisher_nodes: Vec<u64> = bots
        .iter()
        .filter(|b| b.packets_sent > 0)
        .filter_map(|b| b.node_id)
        .collect();
    publisher_nodes.sort_unstable();
    publisher_nodes.dedup();
    let by_hops = by_hops(bots);
    let added_per_hop_ms = added_per_hop(&by_hops);
    let track_hops = track_hops(bots)
        .into_iter()
        .map(|((i, key), h)| ((bots[i].name.clone(), key.to_owned()), h))
        .collect();

    let mut processes = Vec::new();
    let mut media_i = 0;
    for (p, w) in cluster.nodes.iter().zip(windows) {
        let (bots_here, metrics, relay_rate) = match p.role {
            Role::ControlPlane => (None, None, None),
            Role::MediaNode => {
                let (b, a) = (probe.0[media_i], probe.1[media_i]);
                media_i += 1;
                let window = w
                    .before
                    .zip(w.after)
                    .map(|(b, a)| a.at.duration_since(b.at).as_secs_f64());
                let rate = match (b, a, window) {
                    (Some(b), Some(a), Some(s)) if s > 0.0 => Some(
                        a.relay_rtp_packets_out_total
                            .saturating_sub(b.relay_rtp_packets_out_total)
                            as f64
                            / s,
                    ),
                    _ => None,
                };
                let here = bots.iter().filter(|b| b.node_id == Some(p.id)).count();
                (Some(here), a, rate)
            }
        };
        let after: Option<ProcSample> = w.after;
        processes.push(ProcessReport {
            role: p.role,
            id: p.id,
            region: p.region.clone(),
            addr: p.base.clone(),
            pid: p.proc.pid().unwrap_or(0),
            bots: bots_here,
            cpu_percent: w.cpu_percent(),
            rss_idle_kib: w.idle.map(|s| s.rss_kib),
            rss_kib: after.map(|s| s.rss_kib),
            peak_rss_kib: after.map(|s| s.peak_rss_kib),
            relay_packets_out_per_s: relay_rate,
            metrics,
        });
    }

    let mut warnings = Vec::new();
    let placed: Vec<u64> = {
        let mut v: Vec<u64> = bots.iter().filter_map(|b| b.node_id).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    if media_nodes > 1 && placed.len() == 1 {
        warnings.push(format!(
            "every bot was placed on media node {}: the control plane did not place joins \
             by region, so no track crossed a cascade hop",
            placed[0]
        ));
    }
    let unplaced = bots.iter().filter(|b| b.node_id.is_none()).count();
    if unplaced > 0 {
        warnings.push(format!(
            "{unplaced} bots have no node_id (join failed, or the join response lacks it)"
        ));
    }
    if media_nodes > 1 && !by_hops.iter().any(|h| h.hops == 1) {
        warnings.push("no track was received across a cascade hop".to_owned());
    }
    let relayed: u64 = processes
        .iter()
        .filter_map(|p| p.metrics)
        .map(|m| m.relay_rtp_packets_out_total)
        .sum();
    if by_hops.iter().any(|h| h.hops == 1) && relayed == 0 {
        warnings.push(
            "tracks were received across nodes but no media node counted a relayed packet"
                .to_owned(),
        );
    }
    Built {
        report: ClusterReport {
            media_nodes,
            publisher_nodes,
            placements,
            by_hops,
            added_per_hop_ms,
            processes,
            warnings,
        },
        track_hops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, publishes: bool) -> BotSpec {
        BotSpec {
            name: name.into(),
            video_bps: publishes.then_some(1_000_000),
            audio: publishes,
            expects_media: !publishes,
        }
    }

    #[test]
    fn webinar_publisher_is_in_r1_and_subscribers_spread_round_robin() {
        let specs = [
            spec("pub-0", true),
            spec("sub-0", false),
            spec("sub-1", false),
            spec("sub-2", false),
            spec("sub-3", false),
        ];
        assert_eq!(regions(&specs, 3), ["r1", "r1", "r2", "r3", "r1"]);
        assert_eq!(regions(&specs, 1), ["r1"; 5]);
    }
}
