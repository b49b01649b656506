//! The target interface: what the runner ([`crate::runner`]) needs of a
//! server under load, whatever it is. Veche on one process
//! ([`crate::veche`]), a Veche cluster ([`crate::cluster`]) and Janus
//! ([`crate::janus`]) implement [`Target`]; the runner depends only on this
//! trait, and the report on neither.

use crate::proc::ProcSample;
use crate::report::{Report, ServerCost};
use crate::scenario::{BotResult, BotSpec, Options};
use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A server the bots load.
///
/// The runner calls [`Target::prepare`] once, then starts the bots with
/// [`Target::spawn_bot`], reads [`Target::probe`] just before and just
/// after the measurement window, hands what it measured to
/// [`Target::report`], and finally calls [`Target::shut_down`], also after
/// an error or Ctrl-C.
pub trait Target {
    /// What the target reads around the window (e.g. its metrics).
    type Probe: Send;

    /// Starts what must run (processes) and makes a room for the bots.
    fn prepare(&mut self, opts: &Options) -> impl Future<Output = Result<(), String>>;

    /// The processes whose CPU and memory the runner reads, in the order
    /// [`Measured::procs`] reports them.
    fn pids(&self) -> Vec<u32>;

    /// Counts bots that have received their first packet, so the runner can
    /// start measuring once media flows everywhere.
    fn receiving(&self) -> Arc<AtomicUsize>;

    /// Starts one bot, which runs until `stop` turns true.
    fn spawn_bot(&mut self, spec: BotSpec, stop: watch::Receiver<bool>) -> JoinHandle<BotResult>;

    /// Reads the target's counters while every bot is connected.
    fn probe(&self) -> impl Future<Output = Self::Probe>;

    /// Turns what the runner measured into the report.
    fn report(&self, opts: &Options, measured: Measured<Self::Probe>) -> Report;

    /// `error` with what explains it (the processes' last log lines).
    fn explain(&self, error: String) -> String {
        error
    }

    /// Stops everything [`Target::prepare`] started.
    fn shut_down(&mut self) -> impl Future<Output = ()>;
}

/// Readings of one watched process around a load run.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcWindow {
    /// Before any bot joined.
    pub idle: Option<ProcSample>,
    /// At the start of the measurement window.
    pub before: Option<ProcSample>,
    /// At its end.
    pub after: Option<ProcSample>,
}

impl ProcWindow {
    /// CPU use in the window, percent of one core.
    pub fn cpu_percent(&self) -> Option<f64> {
        let (b, a) = (self.before?, self.after?);
        Some(100.0 * (a.cpu_s - b.cpu_s) / a.at.duration_since(b.at).as_secs_f64().max(1e-9))
    }

    /// What the process spent in the window; `forwarded` is its packet
    /// counter at the window's start and end.
    pub fn cost(&self, forwarded: Option<(u64, u64)>) -> Option<ServerCost> {
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
#[derive(Debug)]
pub struct Measured<P> {
    /// Every bot's result, in the order they were started.
    pub bots: Vec<BotResult>,
    /// The measurement window.
    pub window: Duration,
    /// One entry per process of [`Target::pids`], in that order.
    pub procs: Vec<ProcWindow>,
    /// The probe's readings at the window's start and end.
    pub probe: (P, P),
    /// CPU the bots' own process used in the window, percent of one core.
    pub bots_cpu_percent: Option<f64>,
}

impl Measured<Option<u64>> {
    /// The report of a target that is one process whose probe reads its
    /// running total of forwarded packets.
    pub fn single_process_report(self, opts: &Options, server_kind: &'static str) -> Report {
        let forwarded = self.probe.0.zip(self.probe.1);
        let server = self.procs.first().and_then(|w| w.cost(forwarded));
        let mut report = Report::build(
            opts.scenario,
            opts.video_bps,
            self.window,
            self.bots,
            server,
        );
        report.bots_cpu_percent = self.bots_cpu_percent;
        report.server_kind = server_kind;
        report
    }
}

/// Writes the config every Veche process the harness starts is given, and
/// returns its path. It turns off the control plane's per-address rate
/// limits: every bot comes from 127.0.0.1, where real guests come from
/// many addresses, so the limits (`veche_protocol::limits::http`) would
/// measure themselves instead of the server.
pub(crate) fn write_load_config(dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    let path = dir.join("veche-loadtest.toml");
    std::fs::write(
        &path,
        "# Written by veche loadtest: every bot shares one address.\n[http]\nrate_limits = false\n",
    )
    .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// The HTTP client of the harness and its bots. Like Veche's own clients,
/// it drops a pooled connection before the server's header-read timeout
/// could close it under a request (`limits::http::CLIENT_POOL_IDLE_MS`).
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_millis(
            veche_protocol::limits::http::CLIENT_POOL_IDLE_MS,
        ))
        .build()
        .expect("an HTTP client with default TLS-free settings")
}
