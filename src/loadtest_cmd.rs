//! `veche loadtest`: argument parsing for the load harness, which lives in
//! the `veche-loadtest` crate.

use clap::{Args, ValueEnum};
use std::time::Duration;
use veche_loadtest::scenario::{Options, Scenario, ServerTarget};

/// Which scenario to run.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScenarioName {
    /// N publishers; everyone subscribes to everyone.
    Meeting,
    /// 1 publisher, N subscribers.
    Webinar,
    /// M audio publishers, N subscribers.
    Audio,
    /// A host mutes a publisher's camera, again and again: the time to the
    /// last camera packet at every other bot (see docs/benchmarks.md).
    MuteLatency,
}

/// Which server to load.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TargetName {
    /// Veche (default): starts `veche serve`, or loads `--url`.
    Veche,
    /// Janus 1.1 VideoRoom, started and configured by the harness
    /// (`apt-get install -y janus`).
    Janus,
}

/// `veche loadtest` arguments.
#[derive(Args, Debug)]
pub struct LoadtestArgs {
    /// Scenario.
    #[arg(long, value_enum, default_value = "meeting")]
    scenario: ScenarioName,
    /// Bots: publishers in `meeting`, subscribers in `webinar`, `audio`
    /// and `mute-latency`.
    #[arg(short = 'n', long, default_value_t = 4)]
    bots: usize,
    /// Publishers (video and audio) in `mute-latency`, muted in turn.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Mutes to measure in `mute-latency`.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// In `mute-latency`: how long, in ms, the muted camera must stay
    /// silent at every receiver before the round counts it stopped.
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    /// Audio publishers in the `audio` scenario.
    #[arg(long, default_value_t = 2)]
    audio_publishers: usize,
    /// Bots started per second.
    #[arg(long, default_value_t = 5.0)]
    ramp: f64,
    /// Measurement time in seconds, after all bots joined and media settled.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Publishers' video bitrate in kbit/s (nearest shipped encoding).
    #[arg(long, default_value_t = 1500)]
    video_kbps: u32,
    /// Server to load.
    #[arg(long, value_enum, default_value = "veche")]
    target: TargetName,
    /// Load a running server at this URL instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// With --url: the server's process id, for CPU and memory figures.
    #[arg(long)]
    pid: Option<u32>,
    /// Start a cascading cluster instead of `veche serve`: one control
    /// plane and this many media nodes on loopback (node i on 127.0.0.(i+1),
    /// region r<i>), and report latency per cascade hop.
    #[arg(long, value_name = "N", conflicts_with_all = ["url", "pid"])]
    nodes: Option<usize>,
    /// Record the meeting during the run (Veche on one process): the first
    /// bot joins as host and starts a recording; the report adds the
    /// recorder's CPU per recorded packet and the bytes written per minute.
    #[arg(long, conflicts_with_all = ["nodes"])]
    record: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the load test and prints the report.
pub async fn run(args: LoadtestArgs) -> anyhow::Result<()> {
    let target = target(&args)?;
    let scenario = match args.scenario {
        ScenarioName::Meeting => Scenario::Meeting {
            publishers: args.bots,
        },
        ScenarioName::Webinar => Scenario::Webinar {
            subscribers: args.bots,
        },
        ScenarioName::Audio => Scenario::Audio {
            publishers: args.audio_publishers,
            subscribers: args.bots,
        },
        ScenarioName::MuteLatency if args.record => {
            anyhow::bail!("--record is for the meeting, webinar and audio scenarios")
        }
        ScenarioName::MuteLatency => return mute_latency(args, target).await,
    };
    let report = veche_loadtest::run(Options {
        scenario,
        ramp_per_sec: args.ramp,
        duration: Duration::from_secs(args.duration),
        video_bps: args.video_kbps * 1000,
        target,
        progress: !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        record: args.record,
    })
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    print_report(args.json, &report, |r| r.table())
}

/// `--scenario mute-latency`: its own run and report.
async fn mute_latency(args: LoadtestArgs, target: ServerTarget) -> anyhow::Result<()> {
    let report = veche_loadtest::mute_latency::run(veche_loadtest::mute_latency::Options {
        target,
        publishers: args.publishers,
        subscribers: args.bots,
        rounds: args.rounds,
        settle: Duration::from_millis(args.settle_ms),
        video_bps: args.video_kbps * 1000,
        progress: !args.json,
    })
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    print_report(args.json, &report, |r| r.table())
}

/// The server `args` name.
fn target(args: &LoadtestArgs) -> anyhow::Result<ServerTarget> {
    Ok(match (args.target, args.url.clone(), args.nodes) {
        (TargetName::Janus, Some(_), _) => {
            anyhow::bail!("--url cannot be combined with --target janus")
        }
        (TargetName::Janus, None, Some(_)) => {
            anyhow::bail!("--nodes cannot be combined with --target janus")
        }
        (TargetName::Janus, None, None) => ServerTarget::Janus,
        (TargetName::Veche, Some(base), _) => ServerTarget::External {
            base,
            pid: args.pid,
        },
        (TargetName::Veche, None, Some(media_nodes)) => ServerTarget::Cluster {
            exe: std::env::current_exe()?,
            media_nodes,
        },
        (TargetName::Veche, None, None) => ServerTarget::Spawn {
            exe: std::env::current_exe()?,
        },
    })
}

/// Prints a harness report: as JSON with `--json` (for scripts and the
/// figures in docs/benchmarks.md), else as the report's own table.
pub(crate) fn print_report<R: serde::Serialize>(
    json: bool,
    report: &R,
    table: impl FnOnce(&R) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", table(report));
    }
    Ok(())
}
