//! `veche`: the command-line entry point. It only parses arguments and
//! wires the parts together; everything else lives in the crates.

mod admin_cmd;
mod certs_cmd;
mod cluster_cmd;
mod commits_cmd;
mod config;
mod loadtest_cmd;
mod recording_cmd;
mod serve;
mod serving;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Self-hosted video meetings.
#[derive(Parser)]
#[command(name = "veche", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: a one-node control plane, a media
    /// node and the web client, with embedded storage.
    Serve {
        /// Config file (see deploy/veche.sample.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address; overrides the config file.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory; overrides the config file.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run one node of a control-plane cluster (API, web client, Raft).
    ControlPlane(cluster_cmd::ControlPlaneArgs),
    /// Run a media node that registers with a control-plane cluster.
    MediaNode(cluster_cmd::MediaNodeArgs),
    /// Inspect and change the control-plane cluster.
    Cluster(cluster_cmd::ClusterArgs),
    /// Manage accounts on a running server (the first administrator).
    Admin(admin_cmd::AdminArgs),
    /// Work with recordings: `veche recording export ID --out FILE`.
    Recording(recording_cmd::RecordingArgs),
    /// Load a server with WebRTC bots and report what media cost it
    /// (see docs/benchmarks.md).
    Loadtest(loadtest_cmd::LoadtestArgs),
    /// Start a loopback control-plane cluster and measure chat commit
    /// throughput and latency (see docs/benchmarks.md).
    LoadtestCommits(commits_cmd::Args),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webrtc=warn,rtc=warn,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
        } => {
            let mut cfg = match config {
                Some(p) => config::Config::load(&p)?,
                None => config::Config::default(),
            };
            if let Some(l) = listen {
                cfg.server.listen = l;
            }
            if let Some(d) = data_dir {
                cfg.server.data_dir = d;
            }
            rt.block_on(serve::run(cfg))
        }
        Command::ControlPlane(args) => rt.block_on(cluster_cmd::run_control_plane(args)),
        Command::MediaNode(args) => rt.block_on(cluster_cmd::run_media_node(args)),
        Command::Cluster(args) => rt.block_on(cluster_cmd::run_cluster(args)),
        Command::Admin(args) => rt.block_on(admin_cmd::run(args)),
        Command::Recording(args) => rt.block_on(recording_cmd::run(args)),
        Command::Loadtest(args) => rt.block_on(loadtest_cmd::run(args)),
        Command::LoadtestCommits(args) => rt.block_on(commits_cmd::run(args)),
    }
}
