//! The control-plane cluster of `veche loadtest-commits`: `nodes`
//! `veche control-plane` processes, node `i` on its own loopback address
//! `127.0.0.i` with its own data directory, started with `veche-harness`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};
use veche_harness::{Launch, Output, Process, Ready, TempDir};
use veche_protocol::admin::{ClusterStatus, ADMIN_CLUSTER};

/// How long a node may take to print that it runs.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the nodes may take to agree on a leader.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the nodes may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The running cluster: child processes and their data. Dropping it kills
/// the processes and removes the data.
pub(super) struct CpCluster {
    procs: Vec<Process>,
    bases: Vec<String>,
    secret: String,
    // Dropped after the processes.
    root: TempDir,
}

impl CpCluster {
    /// An empty cluster with a fresh secret and data directory.
    pub(super) fn new() -> CpCluster {
        CpCluster {
            procs: Vec::new(),
            bases: Vec::new(),
            secret: veche_harness::cluster_secret(),
            root: TempDir::scratch("loadtest-commits"),
        }
    }

    /// Where the nodes' data and logs are.
    pub(super) fn root(&self) -> &Path {
        self.root.path()
    }

    /// The cluster secret.
    pub(super) fn secret(&self) -> &str {
        &self.secret
    }

    /// Each node's base URL, node 1 first.
    pub(super) fn bases(&self) -> &[String] {
        &self.bases
    }

    /// Starts `nodes` nodes and waits until each prints its address.
    pub(super) async fn start(&mut self, exe: &Path, nodes: usize) -> Result<(), String> {
        let addrs: Vec<String> = (1..=nodes)
            .map(|i| {
                let ip = Ipv4Addr::new(127, 0, 0, u8::try_from(i).expect("at most 254 nodes"));
                veche_harness::free_port(ip).map(|p| format!("{ip}:{p}"))
            })
            .collect::<Result<_, _>>()?;
        let peers: Vec<String> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect();
        let peers = peers.join(",");
        for (i, addr) in addrs.iter().enumerate() {
            let id = i + 1;
            let name = format!("node-{id}");
            // The nodes' logs (elections at start-up, and any trouble) go
            // to a file, shown only if the run fails.
            let mut proc = Launch::new(&name, exe)
                .args(["control-plane", "--id", &id.to_string(), "--listen", addr])
                .args(["--peers", &peers, "--data-dir"])
                .arg(self.root.path().join(&name))
                .env("VECHE_CLUSTER_SECRET", &self.secret)
                .env("RUST_LOG", "warn")
                .output(Output::Log(self.root.path().join(format!("{name}.log"))))
                .ready(Ready::Line("is running at".into()))
                .die_with_parent()
                .spawn()?;
            let base = proc.ready(START_TIMEOUT).await;
            self.procs.push(proc);
            match base {
                Ok(base) if !base.is_empty() => self.bases.push(base),
                Ok(_) => return Err(format!("node {id} printed no URL on its ready line")),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The last lines each node logged, to explain a failed run.
    pub(super) fn log_tails(&self) -> String {
        let mut out = String::new();
        for p in &self.procs {
            let _ = writeln!(out, "--- {}, last log lines:\n{}", p.name(), p.tail(10));
        }
        out
    }

    /// The nodes' process ids, node 1 first.
    pub(super) fn pids(&self) -> Vec<u32> {
        self.procs.iter().filter_map(Process::pid).collect()
    }

    /// Waits until every node names the same leader; returns its id.
    pub(super) async fn wait_for_leader(&self, http: &reqwest::Client) -> Result<u64, String> {
        let deadline = Instant::now() + LEADER_TIMEOUT;
        let mut last = String::from("no answer yet");
        loop {
            let mut seen = Vec::new();
            for base in &self.bases {
                let status = http
                    .get(format!("{base}{ADMIN_CLUSTER}"))
                    .bearer_auth(&self.secret)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await;
                match status {
                    Ok(r) if r.status().is_success() => match r.json::<ClusterStatus>().await {
                        Ok(s) => seen.push(s.leader.map(|l| l.id)),
                        Err(e) => last = format!("{base}: {e}"),
                    },
                    Ok(r) => last = format!("{base} answered {}", r.status()),
                    Err(e) => last = format!("{base}: {e}"),
                }
            }
            if seen.len() == self.bases.len() {
                if let Some(Some(id)) = seen.first() {
                    if seen.iter().all(|s| *s == Some(*id)) {
                        return Ok(*id);
                    }
                }
                last = format!("leaders as seen by each node: {seen:?}");
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no leader after {} s ({last})",
                    LEADER_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, up to 5 s to exit, then SIGKILL.
    pub(super) async fn stop(&mut self) {
        let mut procs: Vec<&mut Process> = self.procs.iter_mut().collect();
        Process::stop_all(&mut procs, STOP_TIMEOUT).await;
    }
}
