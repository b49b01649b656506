//! Veche on one process as a [`Target`]: a `veche serve` the harness
//! starts (on a free loopback port, with a temporary data directory), or
//! one already running at a URL.

use crate::bot::{self, create_room, Room};
use crate::report::Report;
use crate::scenario::{BotResult, BotSpec, Options};
use crate::target::{Measured, Target};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use veche_harness::{Launch, Output, Process, Ready, TempDir};
use veche_protocol::admin::MEDIA_METRICS_PATH;

/// How long `veche serve` may take to print its URL.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to exit after SIGTERM.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A Veche server under load.
pub struct VecheServer {
    /// The binary to start, or `None` for a server already running.
    exe: Option<PathBuf>,
    base: String,
    pid: Option<u32>,
    proc: Option<Process>,
    dir: Option<TempDir>,
    room: Option<Room>,
    receiving: Arc<AtomicUsize>,
    http: reqwest::Client,
}

impl VecheServer {
    /// `veche serve` started from `exe` when the run is prepared.
    pub fn spawn(exe: PathBuf) -> VecheServer {
        VecheServer::new(Some(exe), String::new(), None)
    }

    /// A server already running at `base`, with process id `pid` for CPU
    /// and memory figures, if known.
    pub fn external(base: &str, pid: Option<u32>) -> VecheServer {
        VecheServer::new(None, base.trim_end_matches('/').to_owned(), pid)
    }

    fn new(exe: Option<PathBuf>, base: String, pid: Option<u32>) -> VecheServer {
        VecheServer {
            exe,
            base,
            pid,
            proc: None,
            dir: None,
            room: None,
            receiving: Arc::default(),
            http: crate::target::http_client(),
        }
    }
}

/// Starts `veche serve` from `exe` on a free loopback port, with a
/// temporary data directory and the load config
/// ([`crate::target::write_load_config`]), and waits until it prints its
/// URL. Returns the process, its directory (keep it alive as long as the
/// process) and its base URL.
pub(crate) async fn start_serve(
    exe: &std::path::Path,
) -> Result<(Process, TempDir, String), String> {
    let dir = TempDir::scratch("loadtest");
    let config = crate::target::write_load_config(dir.path())?;
    let mut proc = Launch::new("veche", exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .output(Output::Log(dir.path().join("veche.log")))
        .ready(Ready::Url)
        .die_with_parent()
        .spawn()?;
    // On an error, `proc` is dropped here, which kills it.
    let base = proc.ready(START_TIMEOUT).await?;
    Ok((proc, dir, base))
}

/// The value of the counter `name` on a media node's metrics page.
async fn scrape_counter(http: &reqwest::Client, base: &str, name: &str) -> Option<u64> {
    let text = http
        .get(format!("{base}{MEDIA_METRICS_PATH}"))
        .timeout(Duration::from_secs(5))
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

impl Target for VecheServer {
    type Probe = Option<u64>;

    async fn prepare(&mut self, _opts: &Options) -> Result<(), String> {
        if let Some(exe) = &self.exe {
            let (proc, dir, base) = start_serve(exe).await?;
            self.dir = Some(dir);
            self.base = base;
            self.pid = proc.pid();
            self.proc = Some(proc);
        }
        let slug = create_room(&self.http, &self.base).await?;
        self.room = Some(Room {
            base: self.base.clone(),
            slug,
            epoch: Instant::now(),
            receiving: self.receiving.clone(),
        });
        Ok(())
    }

    fn pids(&self) -> Vec<u32> {
        self.pid.into_iter().collect()
    }

    fn receiving(&self) -> Arc<AtomicUsize> {
        self.receiving.clone()
    }

    fn spawn_bot(&mut self, spec: BotSpec, stop: watch::Receiver<bool>) -> JoinHandle<BotResult> {
        let room = self.room.clone().expect("prepared before bots start");
        tokio::spawn(bot::run(spec, room, stop))
    }

    async fn probe(&self) -> Option<u64> {
        scrape_counter(&self.http, &self.base, "veche_node_rtp_packets_out_total").await
    }

    fn report(&self, opts: &Options, measured: Measured<Option<u64>>) -> Report {
        measured.single_process_report(opts, "veche")
    }

    fn explain(&self, error: String) -> String {
        match &self.proc {
            Some(p) => format!("{error}\n--- veche serve, last log lines:\n{}", p.tail(15)),
            None => error,
        }
    }

    async fn shut_down(&mut self) {
        if let Some(p) = &mut self.proc {
            // SIGTERM first so the server shuts down cleanly.
            Process::stop_all(&mut [p], STOP_TIMEOUT).await;
        }
    }
}
