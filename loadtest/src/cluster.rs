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
//! end, on Ctrl-C and on error; dropping [`Cluster`] kills whatever is left.
//!
//! Bots join through the control plane naming a region: publishers and
//! subscribers are each spread round-robin over `r1..rN`, so a webinar's
//! publisher is on node 1 and its subscribers on every node. Each bot
//! records the node its join response placed it on. A received track is
//! then 0 hops away (the subscriber is on its publisher's node) or 1 hop
//! (relayed once: every pair of media nodes has its own link, so no track
//! crosses more than one). The report splits latency by hops; "added per
//! hop" is the 1-hop percentile minus the 0-hop one.

use crate::bot::{self, BotResult, BotSpec, Target};
use crate::proc::ProcSample;
use crate::report::{summarize_tracks, MediaSummary, Report, ServerCost};
use crate::scenario::{measure_bots, Options, ProcWindow};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use veche_protocol::admin::{ClusterStatus, ADMIN_CLUSTER};

/// The per-hop latency the cascade is meant to stay under at p99.
pub const ADDED_P99_TARGET_MS: f64 = 3.0;

/// The error of a run stopped by Ctrl-C.
const INTERRUPTED: &str = "interrupted";

/// How long a process may take to print that it is up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the media nodes may take to show up alive at the control plane
/// once they are running.
const ALIVE_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The distance of every received track, keyed by (receiving bot index,
/// track key): 0 if the receiver is on the node of the publisher whose
/// participant id is the track's stream id, else 1. Tracks whose receiver
/// or publisher placement is unknown are left out.
fn track_hops(bots: &[BotResult]) -> HashMap<(usize, &str), u32> {
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

/// A process the harness started, with where its log goes.
struct Proc {
    role: Role,
    id: u64,
    region: Option<String>,
    /// HTTP base URL, `http://127.0.0.2:PORT`.
    base: String,
    child: Child,
    log: PathBuf,
}

/// What to start: a node's command line, and the stdout line that says it
/// is up.
struct NodeSpec {
    role: Role,
    id: u64,
    region: Option<String>,
    base: String,
    args: Vec<String>,
    ready: String,
}

/// The running cluster. Dropping it kills every process left and removes
/// the temporary directory (certificates, data, logs).
pub struct Cluster {
    root: PathBuf,
    secret: String,
    /// The control plane first, then media nodes in id order.
    procs: Vec<Proc>,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("OS RNG available");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A free port on `ip` for TCP or UDP (bound and released; the node binds it
/// again a moment later).
fn free_port(ip: &str, udp: bool) -> Result<u16, String> {
    let port = if udp {
        std::net::UdpSocket::bind((ip, 0)).and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind((ip, 0)).and_then(|l| l.local_addr())
    };
    port.map(|a| a.port()).map_err(|e| {
        format!(
            "cannot bind {ip}: {e} (every media node needs its own loopback address; \
             Linux routes all of 127.0.0.0/8 to lo)"
        )
    })
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Cluster {
    fn new() -> Result<Cluster, String> {
        let root = std::env::temp_dir().join(format!(
            "veche-loadtest-cluster-{}-{}",
            std::process::id(),
            random_hex(4)
        ));
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        Ok(Cluster {
            root,
            secret: random_hex(16),
            procs: Vec::new(),
        })
    }

    fn command(&self, exe: &Path) -> Command {
        let mut cmd = Command::new(exe);
        cmd.env("VECHE_CLUSTER_SECRET", &self.secret)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of
        // ours. With PR_SET_PDEATHSIG the node is killed if the thread that
        // started it dies, so a harness killed by SIGKILL leaves no
        // orphans. That thread is a tokio worker or the `block_on` thread,
        // both of which live as long as the run.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd
    }

    /// Runs a one-shot `veche` command (certificates) to completion.
    fn run_once(&self, exe: &Path, args: &[&str]) -> Result<(), String> {
        let out = self
            .command(exe)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "`veche {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }

    /// Makes the relay CA and one certificate per media node; returns each
    /// node's certificate directory.
    fn make_certs(&self, exe: &Path, media_nodes: usize) -> Result<Vec<PathBuf>, String> {
        let ca = self.root.join("ca");
        let ca_s = ca.display().to_string();
        self.run_once(exe, &["cluster", "ca", "--out", &ca_s])?;
        (1..=media_nodes)
            .map(|i| {
                let dir = self.root.join(format!("n{i}"));
                let dir_s = dir.display().to_string();
                let node = i.to_string();
                self.run_once(
                    exe,
                    &[
                        "cluster", "cert", "--ca", &ca_s, "--node", &node, "--out", &dir_s,
                    ],
                )?;
                Ok(dir)
            })
            .collect()
    }

    /// Starts a long-running node and waits until its stdout has a line
    /// containing `spec.ready` (its stderr goes to its log file).
    async fn spawn(&mut self, exe: &Path, spec: NodeSpec) -> Result<(), String> {
        let NodeSpec {
            role,
            id,
            region,
            base,
            args,
            ready,
        } = spec;
        let name = match role {
            Role::ControlPlane => format!("control-plane-{id}"),
            Role::MediaNode => format!("media-node-{id}"),
        };
        let log = self.root.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut child = self
            .command(exe)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let stdout = child.stdout.take().expect("piped");
        self.procs.push(Proc {
            role,
            id,
            region,
            base,
            child,
            log: log.clone(),
        });
        // Read stdout on a thread of its own, which keeps draining it after
        // the ready line so the node never blocks on a full pipe.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains(&ready) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        let why = match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(_)) => "exited during start-up".to_owned(),
            Err(_) => format!("did not start within {} s", START_TIMEOUT.as_secs()),
        };
        Err(format!(
            "{name} ({}) {why}; its log ({}):\n{}",
            args.join(" "),
            log.display(),
            tail(&log, 15)
        ))
    }

    /// Starts the control plane and `media_nodes` media nodes and waits
    /// until the control plane sees them all alive with a relay endpoint.
    async fn start(
        &mut self,
        exe: &Path,
        media_nodes: usize,
        http: &reqwest::Client,
        note: &dyn Fn(&str),
    ) -> Result<(), String> {
        note(&format!(
            "making relay certificates in {}",
            self.root.display()
        ));
        let certs = self.make_certs(exe, media_nodes)?;

        let cp_addr = format!("127.0.0.1:{}", free_port("127.0.0.1", false)?);
        let cp_base = format!("http://{cp_addr}");
        note(&format!("starting the control plane at {cp_base}"));
        let args = vec![
            "control-plane".to_owned(),
            "--id".to_owned(),
            "1".to_owned(),
            "--listen".to_owned(),
            cp_addr.clone(),
            "--peers".to_owned(),
            format!("1={cp_base}"),
            "--data-dir".to_owned(),
            self.root.join("cp").display().to_string(),
        ];
        let spec = NodeSpec {
            role: Role::ControlPlane,
            id: 1,
            region: None,
            base: cp_base.clone(),
            args,
            ready: "is running at".to_owned(),
        };
        self.spawn(exe, spec).await?;

        for (i, cert_dir) in (1..=media_nodes).zip(certs) {
            let ip = format!("127.0.0.{}", i + 1);
            let listen = format!("{ip}:{}", free_port(&ip, false)?);
            let relay = format!("{ip}:{}", free_port(&ip, true)?);
            let region = format!("r{i}");
            note(&format!(
                "starting media node {i} at {listen} (region {region}, relay {relay})"
            ));
            let args = vec![
                "media-node".to_owned(),
                "--id".to_owned(),
                i.to_string(),
                "--listen".to_owned(),
                listen.clone(),
                "--control-plane".to_owned(),
                cp_base.clone(),
                "--region".to_owned(),
                region.clone(),
                "--relay-listen".to_owned(),
                relay,
                "--relay-tls".to_owned(),
                cert_dir.display().to_string(),
            ];
            let spec = NodeSpec {
                role: Role::MediaNode,
                id: i as u64,
                region: Some(region),
                base: format!("http://{listen}"),
                args,
                ready: format!("Media node {i} is running at"),
            };
            self.spawn(exe, spec).await?;
        }
        self.wait_alive(http, &cp_base, media_nodes).await
    }

    /// Polls the admin API until `n` media nodes are alive, each with a
    /// relay endpoint; explains what it last saw if they never are.
    async fn wait_alive(
        &self,
        http: &reqwest::Client,
        cp_base: &str,
        n: usize,
    ) -> Result<(), String> {
        let deadline = Instant::now() + ALIVE_TIMEOUT;
        loop {
            let status = http
                .get(format!("{cp_base}{ADMIN_CLUSTER}"))
                .bearer_auth(&self.secret)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            let last = match status {
                Ok(r) if r.status().is_success() => match r.json::<ClusterStatus>().await {
                    Ok(s) => {
                        let nodes = s.media_nodes.unwrap_or_default();
                        let alive = nodes.iter().filter(|m| m.alive).count();
                        let no_relay: Vec<u64> = nodes
                            .iter()
                            .filter(|m| m.info.relay_addr.is_none())
                            .map(|m| m.info.node_id.0)
                            .collect();
                        if alive >= n && no_relay.is_empty() {
                            return Ok(());
                        }
                        format!(
                            "{alive} of {n} media nodes alive; registered without a relay \
                             endpoint: {no_relay:?}"
                        )
                    }
                    Err(e) => format!("unreadable cluster status: {e}"),
                },
                Ok(r) => format!("{ADMIN_CLUSTER} answered {}", r.status()),
                Err(e) => format!("{ADMIN_CLUSTER}: {e}"),
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "the cluster was not ready after {} s: {last}",
                    ALIVE_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn control_plane(&self) -> &str {
        &self.procs[0].base
    }

    fn media(&self) -> impl Iterator<Item = &Proc> {
        self.procs.iter().filter(|p| p.role == Role::MediaNode)
    }

    /// The last lines of every process's log, to explain a failed run.
    fn log_tails(&self) -> String {
        let mut out = String::new();
        for p in &self.procs {
            let _ = writeln!(
                out,
                "--- {:?} {} ({}), last log lines:\n{}",
                p.role,
                p.id,
                p.log.display(),
                tail(&p.log, 10)
            );
        }
        out
    }

    /// SIGTERM to the media nodes, then to the control plane; up to 5 s
    /// each to exit, then SIGKILL.
    async fn stop(&mut self) {
        for role in [Role::MediaNode, Role::ControlPlane] {
            for p in self.procs.iter().filter(|p| p.role == role) {
                // SAFETY: kill(2) on a child we started; no memory is involved.
                unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline
                && !self
                    .procs
                    .iter_mut()
                    .filter(|p| p.role == role)
                    .all(|p| matches!(p.child.try_wait(), Ok(Some(_))))
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for p in self.procs.iter_mut().filter(|p| p.role == role) {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // After `stop` these have exited and kill is a no-op; on an early
        // return or a panic this is what leaves no process behind.
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn scrape(http: &reqwest::Client, base: &str) -> Option<NodeMetrics> {
    let text = http
        .get(format!("{base}{}", veche_node::METRICS_PATH))
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

/// Runs `opts.scenario` against a cluster of `media_nodes` media nodes
/// started from `exe`, and stops it again.
pub async fn run_scenario(
    opts: &Options,
    exe: &Path,
    media_nodes: usize,
) -> Result<Report, String> {
    if media_nodes == 0 || media_nodes > 250 {
        return Err("--nodes must be between 1 and 250".into());
    }
    let note = |msg: &str| {
        if opts.progress {
            eprintln!("{msg}");
        }
    };
    let http = reqwest::Client::new();
    let mut cluster = Cluster::new()?;
    // Ctrl-C still stops every node and removes the temporary directory.
    let result = tokio::select! {
        r = async {
            cluster.start(exe, media_nodes, &http, &note).await?;
            run_against(opts, &cluster, &http).await
        } => r,
        _ = tokio::signal::ctrl_c() => Err(INTERRUPTED.to_owned()),
    };
    note("stopping the cluster");
    // The nodes' logs explain a failure, not a Ctrl-C.
    let result = result.map_err(|e| match e.as_str() {
        INTERRUPTED => e,
        _ => format!("{e}\n{}", cluster.log_tails()),
    });
    cluster.stop().await;
    result
}

async fn run_against(
    opts: &Options,
    cluster: &Cluster,
    http: &reqwest::Client,
) -> Result<Report, String> {
    let base = cluster.control_plane().to_owned();
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
    let target = Target {
        base,
        slug,
        epoch: Instant::now(),
        receiving: Default::default(),
    };
    let specs = opts.scenario.bots(opts.video_bps);
    let media: Vec<&Proc> = cluster.media().collect();
    let bot_regions = regions(&specs, media.len());
    let mut next_region = bot_regions.clone().into_iter();
    let pids: Vec<u32> = cluster.procs.iter().map(|p| p.child.id()).collect();
    let media_bases: Vec<String> = media.iter().map(|p| p.base.clone()).collect();
    let receiving = target.receiving.clone();
    let m = measure_bots(
        opts,
        specs,
        &pids,
        receiving,
        |spec, stop| {
            let region = next_region.next();
            tokio::spawn(bot::run_in_region(spec, target.clone(), region, stop))
        },
        || {
            let http = http.clone();
            let bases = media_bases.clone();
            async move {
                let mut out = Vec::new();
                for b in &bases {
                    out.push(scrape(&http, b).await);
                }
                out
            }
        },
    )
    .await;

    let built = cluster_report(cluster, &m.bots, &bot_regions, &m.procs, &m.probe);
    // The report's `server` is the media nodes together: their CPU, their
    // memory and the packets they forwarded to subscribers.
    let media_costs: Vec<Option<ServerCost>> = cluster
        .procs
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
    Ok(report)
}

/// The cluster report, plus each received track's distance for the
/// per-subscriber list.
struct Built {
    report: ClusterReport,
    track_hops: HashMap<(String, String), u32>,
}

fn cluster_report(
    cluster: &Cluster,
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
    for (p, w) in cluster.procs.iter().zip(windows) {
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
            pid: p.child.id(),
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
    use crate::media::ReceiveStats;

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
