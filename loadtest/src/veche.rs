//! Veche on one process as a [`Target`]: a `veche serve` the harness
//! starts (on a free loopback port, with a temporary data directory), or
//! one already running at a URL.

use crate::bot::{self, create_owned_room, create_room, Room};
use crate::record::{RecordingHost, RecordingSeen};
use crate::report::recording::{RecorderCounters, RecordingFigures};
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
    /// With `--record`: the host bot that starts the recording.
    recording: Option<RecordingHost>,
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
            recording: None,
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

/// A media node's metrics page.
async fn scrape(http: &reqwest::Client, base: &str) -> Option<String> {
    http.get(format!("{base}{MEDIA_METRICS_PATH}"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// The value of the counter `name` on a media node's metrics page.
fn counter(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name).map(str::trim))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

/// What [`VecheServer`] reads around the window: forwarded packets, and
/// the recorder's counters on a recorded run.
pub type VecheProbe = (Option<u64>, Option<RecorderCounters>);

impl Target for VecheServer {
    type Probe = VecheProbe;

    async fn prepare(&mut self, opts: &Options) -> Result<(), String> {
        if let Some(exe) = &self.exe {
            let (proc, dir, base) = start_serve(exe).await?;
            self.dir = Some(dir);
            self.base = base;
            self.pid = proc.pid();
            self.proc = Some(proc);
        }
        let slug = if opts.record {
            let (slug, key) = create_owned_room(&self.http, &self.base).await?;
            let key = key.ok_or("--record: the create-room response carried no owner key")?;
            self.recording = Some(RecordingHost::new(key));
            slug
        } else {
            create_room(&self.http, &self.base).await?
        };
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
        match self.recording.as_mut().and_then(RecordingHost::take_tap) {
            Some(tap) => tokio::spawn(bot::run_with_tap(spec, room, tap, stop)),
            None => tokio::spawn(bot::run(spec, room, stop)),
        }
    }

    async fn probe(&self) -> VecheProbe {
        let Some(text) = scrape(&self.http, &self.base).await else {
            return (None, None);
        };
        let recorder = self
            .recording
            .as_ref()
            .and_then(|_| RecorderCounters::parse(&text));
        (counter(&text, "veche_node_rtp_packets_out_total"), recorder)
    }

    fn report(&self, opts: &Options, measured: Measured<VecheProbe>) -> Report {
        let ((out0, rec0), (out1, rec1)) = measured.probe;
        let window_s = measured.window.as_secs_f64();
        let measured = Measured {
            bots: measured.bots,
            window: measured.window,
            procs: measured.procs,
            probe: (out0, out1),
            bots_cpu_percent: measured.bots_cpu_percent,
        };
        let mut report = measured.single_process_report(opts, "veche");
        if let Some(host) = &self.recording {
            match host.seen() {
                RecordingSeen::Refused(why) => report
                    .failed
                    .push(("recording".into(), format!("the start was refused: {why}"))),
                RecordingSeen::Waiting => report.failed.push((
                    "recording".into(),
                    "the host never saw the recording start".into(),
                )),
                RecordingSeen::Running => {}
            }
            match rec0.zip(rec1) {
                Some((a, b)) => {
                    report.recording = Some(RecordingFigures::between(a, b, window_s));
                }
                None => report.failed.push((
                    "recording".into(),
                    "the node's metrics have no recorder counters".into(),
                )),
            }
        }
        report
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
