//! `veche loadtest-commits`: control-plane commit throughput and latency.
//!
//! Starts a real multi-node control-plane cluster (child processes of the
//! `veche` binary, each on its own loopback address `127.0.0.N` with its
//! own temporary data directory), creates a room, and then, for each writer
//! count, runs that many concurrent writers that commit chat messages back
//! to back the way media nodes do: `POST /internal/v1/chat` with a
//! MessagePack [`CommitChat`], one request in flight per writer. Writers
//! talk to the leader, or to a follower that forwards to the leader.
//!
//! Every request's latency is recorded from just before it is sent to the
//! decoded reply. After a warm-up, only requests that complete inside the
//! measurement window count, so throughput is completions in the window
//! divided by its length.

//!
//! The processes are started with `veche-harness` ([`cluster`]); the
//! writers are in [`writer`], the report in [`report`].

mod cluster;
pub mod report;
mod writer;

pub use report::{CommitsReport, Machine, RunResult};

use cluster::CpCluster;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;
use veche_protocol::rpc::RoomView;

/// Which node the writers send to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The Raft leader, which commits directly.
    Leader,
    /// A follower, which forwards each commit to the leader (one more HTTP
    /// hop, as for a media node connected to a follower).
    Follower,
}

/// How the writers hold their HTTP connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientMode {
    /// One `reqwest::Client` (one connection pool) for every writer, like
    /// one media node with many rooms. The pool keeps one keep-alive
    /// connection per concurrently busy writer.
    Shared,
    /// One client per writer, like many media nodes.
    PerWriter,
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `veche` binary to start the nodes from.
    pub exe: PathBuf,
    /// Control-plane nodes (voters).
    pub nodes: usize,
    /// Writer counts, one measurement each, in order.
    pub writers: Vec<usize>,
    /// Measurement window per writer count.
    pub duration: Duration,
    /// Load before each window that is not measured.
    pub warmup: Duration,
    /// Where the writers send.
    pub via: Via,
    /// Connection handling of the writers.
    pub client: ClientMode,
    /// Print progress lines on stderr.
    pub progress: bool,
}

/// Starts the cluster, runs every writer count, stops the cluster and
/// removes its data.
pub async fn run(opts: Options) -> Result<CommitsReport, String> {
    if opts.nodes == 0 || opts.nodes > 254 {
        return Err("--nodes must be between 1 and 254".into());
    }
    if opts.via == Via::Follower && opts.nodes < 2 {
        return Err("--via follower needs at least 2 nodes".into());
    }
    if opts.writers.is_empty() || opts.writers.contains(&0) {
        return Err("--writers must be at least 1".into());
    }
    let machine = Machine::detect(&std::env::temp_dir());
    let note = |msg: &str| {
        if opts.progress {
            eprintln!("{msg}");
        }
    };
    let mut cluster = CpCluster::new();
    note(&format!(
        "starting {} control-plane nodes (data in {})",
        opts.nodes,
        cluster.root().display()
    ));
    // Ctrl-C still stops the nodes and removes their data.
    let result = tokio::select! {
        r = async {
            cluster.start(&opts.exe, opts.nodes).await?;
            run_against(&opts, &cluster, machine, &note).await
        } => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
    };
    note("stopping the cluster");
    let result = result.map_err(|e| format!("{e}\n{}", cluster.log_tails()));
    cluster.stop().await;
    result
}

async fn run_against(
    opts: &Options,
    cluster: &CpCluster,
    machine: Machine,
    note: &dyn Fn(&str),
) -> Result<CommitsReport, String> {
    let http = writer::new_client();
    let leader = cluster.wait_for_leader(&http).await?;
    let target_node = match opts.via {
        Via::Leader => leader,
        Via::Follower => (1..=cluster.bases().len() as u64)
            .find(|id| *id != leader)
            .expect("at least 2 nodes"),
    };
    let target = cluster.bases()[target_node as usize - 1].clone();
    note(&format!(
        "leader is node {leader}; writers send to node {target_node} at {target}"
    ));
    let resp = http
        .post(format!("{target}/api/rooms"))
        .json(&serde_json::json!({ "name": "bench" }))
        .send()
        .await
        .map_err(|e| format!("creating a room: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("creating a room: {}", resp.status()));
    }
    let room: RoomView = resp
        .json()
        .await
        .map_err(|e| format!("room response: {e}"))?;
    let mut runs = Vec::new();
    for (run, &writers) in opts.writers.iter().enumerate() {
        note(&format!(
            "{writers} writers: {:.0} s warm-up, {:.0} s measured",
            opts.warmup.as_secs_f64(),
            opts.duration.as_secs_f64()
        ));
        let pids = cluster.pids();
        let secret = cluster.secret();
        runs.push(writer::measure(opts, &pids, secret, &target, &room, run, writers).await);
    }
    Ok(CommitsReport {
        machine,
        nodes: opts.nodes,
        leader,
        target_node,
        via: opts.via,
        client: opts.client,
        warmup_s: opts.warmup.as_secs_f64(),
        window_s: opts.duration.as_secs_f64(),
        runs,
    })
}
