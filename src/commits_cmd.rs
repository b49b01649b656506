//! `veche loadtest-commits`: argument parsing for the control-plane commit
//! benchmark, which lives in `veche_loadtest::commits`.

use crate::loadtest_cmd::print_report;
use clap::ValueEnum;
use std::time::Duration;
use veche_loadtest::commits::{ClientMode, Options, Via};

/// Which node the writers send to.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ViaArg {
    /// The Raft leader.
    Leader,
    /// A follower, which forwards every commit to the leader.
    Follower,
}

/// How the writers hold HTTP connections.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ClientArg {
    /// One connection pool for all writers (one media node).
    Shared,
    /// One connection pool per writer (many media nodes).
    PerWriter,
}

/// `veche loadtest-commits` arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Control-plane nodes to start, on 127.0.0.1, 127.0.0.2, ...
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Concurrent writers, each with one commit in flight; repeat the flag
    /// or give a comma list for several runs.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 64])]
    writers: Vec<usize>,
    /// Measurement time per writer count in seconds, after a 1 s warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Send the commits to the leader or to a follower.
    #[arg(long, value_enum, default_value = "leader")]
    via: ViaArg,
    /// HTTP connection handling of the writers.
    #[arg(long, value_enum, default_value = "shared")]
    client: ClientArg,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark and prints the report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let report = veche_loadtest::commits::run(Options {
        exe: std::env::current_exe()?,
        nodes: args.nodes,
        writers: args.writers,
        duration: Duration::from_secs(args.duration),
        warmup: Duration::from_secs(1),
        via: match args.via {
            ViaArg::Leader => Via::Leader,
            ViaArg::Follower => Via::Follower,
        },
        client: match args.client {
            ClientArg::Shared => ClientMode::Shared,
            ClientArg::PerWriter => ClientMode::PerWriter,
        },
        progress: !args.json,
    })
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    print_report(args.json, &report, |r| r.table())
}
