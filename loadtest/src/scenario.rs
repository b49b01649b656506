//! Scenarios: who publishes, who subscribes, how fast bots arrive and how
//! long the measurement lasts. The runner starts (or attaches to) a
//! server, ramps bots in, waits for media to flow, measures for the
//! duration, and collects everything into a [`Report`].

use crate::bot::{self, BotResult, BotSpec, Target};
use crate::proc::{self, ProcSample};
use crate::report::{Report, ServerCost};
use indicatif::{ProgressBar, ProgressStyle};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
    /// [`crate::janus`]).
    Janus,
    /// Start a cascading cluster from this executable: one control plane
    /// and `media_nodes` media nodes on loopback, each in a region of its
    /// own (see [`crate::cluster`]), and stop it afterwards.
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
}

struct Spawned {
    child: Child,
    _dir: TempDir,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spawn_server(exe: &PathBuf) -> Result<(Spawned, String), String> {
    let dir = std::env::temp_dir().join(format!("veche-loadtest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(i) = l.find("http://") {
                    break l[i..].trim().trim_end_matches('/').to_owned();
                }
            }
            _ => {
                let _ = child.kill();
                return Err("veche serve exited before printing its address".into());
            }
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((
        Spawned {
            child,
            _dir: TempDir(dir),
        },
        base,
    ))
}

async fn scrape_counter(http: &reqwest::Client, base: &str, name: &str) -> Option<u64> {
    let text = http
        .get(format!("{base}/media/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name).map(str::trim))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

pub(crate) fn bar(progress: bool, len: u64, msg: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_owned());
    pb
}

/// Runs a scenario and reports.
pub async fn run(opts: Options) -> Result<Report, String> {
    match &opts.target {
        ServerTarget::Janus => return crate::janus::run_scenario(&opts).await,
        ServerTarget::Cluster { exe, media_nodes } => {
            return crate::cluster::run_scenario(&opts, exe, *media_nodes).await;
        }
        ServerTarget::Spawn { .. } | ServerTarget::External { .. } => {}
    }
    let (spawned, base, pid) = match &opts.target {
        ServerTarget::Spawn { exe } => {
            let (s, base) = spawn_server(exe)?;
            let pid = s.child.id();
            (Some(s), base, Some(pid))
        }
        ServerTarget::External { base, pid } => (None, base.trim_end_matches('/').to_owned(), *pid),
        ServerTarget::Janus | ServerTarget::Cluster { .. } => unreachable!("handled above"),
    };
    let result = run_against(&opts, &base, pid).await;
    if let Some(mut s) = spawned {
        // SIGTERM first so the server shuts down cleanly.
        // SAFETY: kill(2) on a child we started; no memory is involved.
        unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = s.child.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = s.child.kill();
        let _ = s.child.wait();
    }
    result
}

async fn run_against(opts: &Options, base: &str, pid: Option<u32>) -> Result<Report, String> {
    let http = reqwest::Client::new();
    let room: serde_json::Value = http
        .post(format!("{base}/api/rooms"))
        .json(&serde_json::json!({ "name": "loadtest" }))
        .send()
        .await
        .map_err(|e| format!("creating a room: {e}"))?
        .json()
        .await
        .map_err(|e| format!("room response: {e}"))?;
    let slug = room["slug"].as_str().ok_or("room without slug")?.to_owned();
    let target = Target {
        base: base.to_owned(),
        slug,
        epoch: Instant::now(),
        receiving: Default::default(),
    };
    let receiving = target.receiving.clone();
    let report = measure(
        opts,
        pid,
        receiving,
        |spec, stop| tokio::spawn(bot::run(spec, target.clone(), stop)),
        || scrape_counter(&http, base, "veche_node_rtp_packets_out_total"),
    )
    .await;
    Ok(report)
}

/// The part of a load run every target shares: ramp the bots in, wait
/// until every receiver has media, measure for `opts.duration`, stop the
/// bots and build the report.
///
/// `spawn_bot` starts one bot; `receiving` counts bots that have media;
/// `forwarded` reads the target's running total of forwarded packets (from
/// its metrics, or from what the bots received when it has none).
pub(crate) async fn measure<Fwd, FwdFut>(
    opts: &Options,
    pid: Option<u32>,
    receiving: Arc<AtomicUsize>,
    spawn_bot: impl FnMut(BotSpec, watch::Receiver<bool>) -> JoinHandle<BotResult>,
    forwarded: Fwd,
) -> Report
where
    Fwd: FnMut() -> FwdFut,
    FwdFut: Future<Output = Option<u64>>,
{
    let specs = opts.scenario.bots(opts.video_bps);
    let pids: Vec<u32> = pid.into_iter().collect();
    let m = measure_bots(opts, specs, &pids, receiving, spawn_bot, forwarded).await;
    let server = m
        .procs
        .first()
        .and_then(|w| w.cost(m.probe.0.zip(m.probe.1)));
    let mut report = Report::build(opts.scenario, opts.video_bps, m.window, m.bots, server);
    report.bots_cpu_percent = m.bots_cpu_percent;
    report
}

/// Readings of one watched process around a load run.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ProcWindow {
    /// Before any bot joined.
    pub(crate) idle: Option<ProcSample>,
    /// At the start of the measurement window.
    pub(crate) before: Option<ProcSample>,
    /// At its end.
    pub(crate) after: Option<ProcSample>,
}

impl ProcWindow {
    /// CPU use in the window, percent of one core.
    pub(crate) fn cpu_percent(&self) -> Option<f64> {
        let (b, a) = (self.before?, self.after?);
        Some(100.0 * (a.cpu_s - b.cpu_s) / a.at.duration_since(b.at).as_secs_f64().max(1e-9))
    }

    /// What the process spent in the window; `forwarded` is its packet
    /// counter at the window's start and end.
    pub(crate) fn cost(&self, forwarded: Option<(u64, u64)>) -> Option<ServerCost> {
        let (b, a) = (self.before?, self.after?);
        Some(ServerCost {
            cpu_s: a.cpu_s - b.cpu_s,
            window_s: a.at.duration_since(b.at).as_secs_f64(),
            packets_forwarded: forwarded.map(|(x, y)| y.saturating_sub(x)),
            rss_idle_kib: self.idle.map(|i| i.rss_kib),
            rss_loaded_kib: a.rss_kib,
            peak_rss_kib: a.peak_rss_kib,
        })
    }
}

/// What a load run measured, before it becomes a report.
pub(crate) struct Measured<P> {
    /// Every bot's result, in the order they were started.
    pub(crate) bots: Vec<BotResult>,
    /// The measurement window.
    pub(crate) window: Duration,
    /// One entry per watched process, in the order given.
    pub(crate) procs: Vec<ProcWindow>,
    /// The probe's readings at the window's start and end.
    pub(crate) probe: (P, P),
    /// CPU the bots' own process used in the window, percent of one core.
    pub(crate) bots_cpu_percent: Option<f64>,
}

/// Runs `specs` as [`measure`] does, reading the processes `pids` and
/// calling `probe` (e.g. a metrics scrape) just before and just after the
/// window, while every bot is still connected.
pub(crate) async fn measure_bots<P, ProbeFut>(
    opts: &Options,
    specs: Vec<BotSpec>,
    pids: &[u32],
    receiving: Arc<AtomicUsize>,
    mut spawn_bot: impl FnMut(BotSpec, watch::Receiver<bool>) -> JoinHandle<BotResult>,
    mut probe: impl FnMut() -> ProbeFut,
) -> Measured<P>
where
    ProbeFut: Future<Output = P>,
{
    let sample_all =
        || -> Vec<Option<ProcSample>> { pids.iter().map(|p| proc::sample(*p).ok()).collect() };
    let idle = sample_all();
    let receivers = specs.iter().filter(|s| s.expects_media).count();
    let (stop_tx, stop_rx) = watch::channel(false);
    let ramp = bar(opts.progress, specs.len() as u64, "joining");
    let gap = Duration::from_secs_f64(1.0 / opts.ramp_per_sec.max(0.01));
    let mut handles = Vec::new();
    for spec in specs {
        handles.push(spawn_bot(spec, stop_rx.clone()));
        ramp.inc(1);
        tokio::time::sleep(gap).await;
    }
    ramp.finish();

    // Measure only once every receiver has media (bounded, so a broken
    // run still reports what did arrive), plus a moment for the last
    // joiners' renegotiations and first keyframes to settle.
    let settle = bar(opts.progress, receivers as u64, "media flows");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n = receiving.load(Ordering::Relaxed);
        settle.set_position(n as u64);
        if n >= receivers || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    settle.finish();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = sample_all();
    let bots_before = proc::sample(std::process::id()).ok();
    let probe_before = probe().await;
    let progress = bar(opts.progress, opts.duration.as_secs().max(1), "measuring");
    let t0 = Instant::now();
    while t0.elapsed() < opts.duration {
        tokio::time::sleep(Duration::from_millis(250).min(opts.duration)).await;
        progress.set_position(t0.elapsed().as_secs());
    }
    progress.finish();
    let after = sample_all();
    let bots_after = proc::sample(std::process::id()).ok();
    let probe_after = probe().await;
    let window = t0.elapsed();

    let _ = stop_tx.send(true);
    let mut bots: Vec<BotResult> = Vec::new();
    for h in handles {
        match h.await {
            Ok(r) => bots.push(r),
            Err(e) => bots.push(BotResult {
                error: Some(format!("bot task failed: {e}")),
                expects_media: true,
                ..Default::default()
            }),
        }
    }
    let procs = idle
        .into_iter()
        .zip(before)
        .zip(after)
        .map(|((idle, before), after)| ProcWindow {
            idle,
            before,
            after,
        })
        .collect();
    // The bots share the machine with the server; how busy they were
    // tells whether latency and jitter figures include bot-side waiting.
    let bots_cpu_percent = ProcWindow {
        idle: None,
        before: bots_before,
        after: bots_after,
    }
    .cpu_percent();
    Measured {
        bots,
        window,
        procs,
        probe: (probe_before, probe_after),
        bots_cpu_percent,
    }
}
