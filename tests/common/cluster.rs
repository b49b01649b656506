//! A multi-process Veche cluster for tests: `veche control-plane` nodes,
//! `veche media-node`s and the `veche cluster` CLI, with real processes,
//! real SIGKILLs and real packet loss.
//!
//! - **Addresses.** Each [`Cluster`] claims its own loopback /24,
//!   `127.A.B.0/24` (never `127.0.0.0/24`), so that tests running at the
//!   same time in one network namespace cannot partition each other's
//!   nodes. Control-plane node `id` listens on `127.A.B.{id}`, media node
//!   `id` on `127.A.B.{100+id}`. A control-plane node binds its outgoing
//!   peer connections to its own address, so its Raft traffic is
//!   identifiable by source address.
//! - **Processes.** Started, watched and stopped with `veche-harness`
//!   (the same code `veche loadtest` uses), which is ready when the node
//!   prints its "running at" line.
//! - **Logs.** Every process's stdout and stderr go to
//!   `<root>/cp-{id}.log` or `<root>/media-{id}.log` (restarts append, after
//!   a `[harness] start #N` line). If the test fails, the root directory is
//!   kept and each log's path and last lines are printed.
//! - **Partitions.** [`Cluster::partition`] drops, with nftables, every
//!   packet between a node's address and the rest of the cluster's /24
//!   (other control-plane nodes and media nodes). The test process itself
//!   and the CLI connect from 127.0.0.1, outside the /24, so they can still
//!   observe a partitioned node, as an operator on a management network
//!   could. Needs `nft` and root in the test's network namespace (which
//!   `scripts/test.sh` provides).
//! - **Stand-in media nodes.** [`Cluster::fake_media_node`] registers a
//!   media node through the internal RPC and sends its heartbeats from the
//!   test, with whatever region, capacity, relay address and load the test
//!   sets: placement and draining are about what the control plane decides,
//!   and a stand-in shows those decisions (and every heartbeat reply)
//!   without WebRTC.
//! - **Blocking calls.** [`Cluster::restart`] and [`Cluster::cli`] block
//!   the calling thread (a restart until the node prints that it runs, an
//!   `add` until the node votes); use a multi-threaded runtime
//!   (`#[tokio::test(flavor = "multi_thread")]`) if tasks must make
//!   progress meanwhile.
//!
//! This file starts, stops and watches the control-plane nodes;
//! `cluster/cli.rs` runs `veche cluster`, `cluster/media.rs` starts media
//! nodes (real and stand-in), and `cluster/partition.rs` cuts nodes off.

mod cli;
mod media;
mod partition;

pub use super::fake_media::{token_claims, FakeMediaNode};
use super::{TempDir, SERVER_START_TIMEOUT, VECHE};
pub use media::MediaNodeOpts;
use media::MediaProc;
use partition::{claim_subnet, nft_path};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use veche_harness::{Launch, Process, Ready};

/// How often [`Cluster::wait_for_leader`] polls: finer than
/// `POLL_INTERVAL`, since its duration is itself a measurement.
const LEADER_POLL: Duration = Duration::from_millis(50);
/// Timeout of one admin status request.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long [`Cluster::start`] waits for the first leader.
const FIRST_LEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// One `veche control-plane` node: its process while running, and what is
/// needed to start it again.
struct CpNode {
    port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    /// `--peers` of its first start; empty for a node started to join.
    peers: Option<String>,
    /// True while it is a member (initial, or added with `cli add`); false
    /// after `cli remove` or while waiting to be added. Atomic because
    /// `cli` takes `&self`.
    member: AtomicBool,
    /// Its process; `None` until first started.
    proc: Option<Process>,
}

impl CpNode {
    fn running(&self) -> bool {
        self.proc.as_ref().is_some_and(Process::is_running)
    }
}

/// A control-plane cluster of `veche` processes (see the module docs).
/// Dropping it kills every process it started, heals every partition it
/// made, and removes its directory unless the test failed.
pub struct Cluster {
    secret: String,
    /// The claimed /24: `127.{net.0}.{net.1}.0/24`.
    net: (u8, u8),
    nodes: BTreeMap<u64, CpNode>,
    media: BTreeMap<u64, MediaProc>,
    partitioned: Mutex<BTreeSet<u64>>,
    /// `--config` of every control-plane node, if set
    /// ([`Cluster::start_with_config`]).
    config: Option<PathBuf>,
    http: reqwest::Client,
    // Held for the cluster's lifetime; see `claim_subnet`.
    _claim: TcpListener,
    // Dropped last, so the directory outlives the processes.
    root: TempDir,
}

impl Cluster {
    /// Starts control-plane nodes `1..=n`, all with the same `--peers`, and
    /// waits until they agree on a leader.
    pub async fn start(n: u64) -> Cluster {
        Cluster::start_with_config(n, None).await
    }

    /// [`Cluster::start`], with `--config {config}` given to every
    /// control-plane node (e.g. a shared `[recordings.store]`).
    pub async fn start_with_config(n: u64, config: Option<PathBuf>) -> Cluster {
        assert!((1..100).contains(&n), "a cluster has 1 to 99 nodes");
        let (claim, net) = claim_subnet();
        let root = TempDir::new("cluster");
        // Random and 64 characters: the control plane refuses a secret
        // shorter than 32 bytes.
        let secret = veche_harness::cluster_secret();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(STATUS_TIMEOUT)
            .pool_idle_timeout(std::time::Duration::from_millis(
                veche_protocol::limits::http::CLIENT_POOL_IDLE_MS,
            ))
            .build()
            .expect("reqwest client");
        let mut cluster = Cluster {
            secret,
            net,
            nodes: BTreeMap::new(),
            media: BTreeMap::new(),
            partitioned: Mutex::new(BTreeSet::new()),
            config,
            http,
            _claim: claim,
            root,
        };
        eprintln!(
            "[harness] cluster of {n} in {} on 127.{}.{}.0/24",
            cluster.root.path().display(),
            net.0,
            net.1
        );
        let ports: Vec<(u64, u16)> = (1..=n)
            .map(|id| (id, free_port_on(cluster.ip(id))))
            .collect();
        let peers = ports
            .iter()
            .map(|(id, port)| format!("{id}={}:{port}", cluster.ip(*id)))
            .collect::<Vec<_>>()
            .join(",");
        for (id, port) in ports {
            cluster.add_node(id, port, Some(peers.clone()), true);
            cluster.spawn_node(id);
        }
        for id in 1..=n {
            cluster.await_started(id).await;
        }
        cluster.wait_for_leader(FIRST_LEADER_TIMEOUT).await;
        cluster
    }

    /// The cluster secret every process was started with.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Control-plane node `id`'s base URL, `http://127.A.B.{id}:{port}`.
    pub fn base(&self, id: u64) -> String {
        let node = self.node(id);
        format!("http://{}:{}", self.ip(id), node.port)
    }

    /// The ids of control-plane nodes that are members and whose process is
    /// running, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.member.load(Ordering::Relaxed) && n.running())
            .map(|(id, _)| *id)
            .collect()
    }

    /// A running member other than `leader`: where a test points its
    /// browsers or clients so that killing the leader leaves them served,
    /// as a load balancer would once the leader's health check fails.
    pub fn a_follower(&self, leader: u64) -> u64 {
        self.ids()
            .into_iter()
            .find(|id| *id != leader)
            .expect("a follower")
    }

    /// `GET /api/admin/cluster` on node `id`: its view of the cluster.
    pub async fn status(&self, id: u64) -> Result<Value, String> {
        let url = format!("{}/api/admin/cluster", self.base(id));
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.secret)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| format!("GET {url}: reading the body: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url} answered {status}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("GET {url}: {e} in {body}"))
    }

    /// Waits until every running member reports the same leader, that
    /// leader is running and reports itself `Leader`, and returns its id.
    /// Polls every 50 ms, so the time it takes is a fair measure of how
    /// long a failover takes.
    pub async fn wait_for_leader(&self, timeout: Duration) -> u64 {
        let start = Instant::now();
        loop {
            let last = match self.agreed_leader().await {
                Ok(id) => return id,
                Err(observed) => observed,
            };
            if start.elapsed() >= timeout {
                panic!(
                    "timed out after {timeout:?} waiting until every running control-plane \
                     node {:?} reports the same running leader; last observed: {last}",
                    self.ids()
                );
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    async fn agreed_leader(&self) -> Result<u64, String> {
        let ids = self.ids();
        if ids.is_empty() {
            return Err("no control-plane node is running".into());
        }
        let views = futures::future::join_all(ids.iter().map(|id| self.status(*id))).await;
        let mut seen = BTreeMap::new();
        for (id, view) in ids.iter().zip(views) {
            let view = view.map_err(|e| format!("node {id}: {e}"))?;
            let leader = view["leader"]["id"].as_u64();
            seen.insert(
                *id,
                (leader, view["state"].as_str().unwrap_or("?").to_owned()),
            );
        }
        let leaders: BTreeSet<Option<u64>> = seen.values().map(|(l, _)| *l).collect();
        let describe = || format!("(leader, state) per node: {seen:?}");
        match leaders.into_iter().collect::<Vec<_>>()[..] {
            [Some(leader)] if ids.contains(&leader) && seen[&leader].1 == "Leader" => Ok(leader),
            _ => Err(describe()),
        }
    }

    /// Kills control-plane node `id` with SIGKILL (no clean shutdown) and
    /// reaps it. Its data directory and port stay, for [`Cluster::restart`].
    pub fn kill(&mut self, id: u64) {
        let node = self
            .nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no node {id}"));
        let status = node
            .proc
            .as_mut()
            .and_then(Process::kill)
            .unwrap_or_else(|| panic!("control-plane node {id} is not running"));
        eprintln!("[harness] killed control-plane node {id} (SIGKILL): {status:?}");
    }

    /// Starts control-plane node `id` again with the same address, port and
    /// data directory, and waits (blocking) until it says it is running. It
    /// need not have caught up, nor know the leader, when this returns.
    pub fn restart(&mut self, id: u64) {
        self.spawn_node(id);
        let proc = self.nodes.get_mut(&id).and_then(|n| n.proc.as_mut());
        if let Err(e) = proc.expect("spawned").ready_blocking(SERVER_START_TIMEOUT) {
            panic!("control-plane node {id} did not restart: {e}");
        }
    }

    /// Starts a new control-plane node `id` on `127.A.B.{id}` without
    /// `--peers`, so it waits to be added (`cli(&["add", id, base])`).
    /// It is not in [`Cluster::ids`] until that `add` succeeds.
    pub async fn start_joining(&mut self, id: u64) {
        assert!(
            !self.nodes.contains_key(&id),
            "control-plane node {id} already exists"
        );
        let port = free_port_on(self.ip(id));
        self.add_node(id, port, None, false);
        self.spawn_node(id);
        self.await_started(id).await;
    }

    // -- internals ----------------------------------------------------------

    fn ip(&self, host: u64) -> Ipv4Addr {
        let host = u8::try_from(host)
            .ok()
            .filter(|h| (1..=253).contains(h))
            .unwrap_or_else(|| panic!("host number {host} is outside 1..=253"));
        Ipv4Addr::new(127, self.net.0, self.net.1, host)
    }

    fn table(&self, id: u64) -> String {
        format!("veche_test_{}_{}_{id}", self.net.0, self.net.1)
    }

    fn node(&self, id: u64) -> &CpNode {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no control-plane node {id} in this cluster"))
    }

    fn add_node(&mut self, id: u64, port: u16, peers: Option<String>, member: bool) {
        let data_dir = self.root.path().join(format!("cp-{id}"));
        let log = self.root.path().join(format!("cp-{id}.log"));
        self.nodes.insert(
            id,
            CpNode {
                port,
                data_dir,
                log,
                peers,
                member: AtomicBool::new(member),
                proc: None,
            },
        );
    }

    /// How every process of this cluster starts: the `veche` binary with
    /// the cluster secret, its output appended to `log`.
    fn launch(&self, name: &str, log: &Path) -> Launch {
        Launch::new(name, VECHE)
            .env("VECHE_CLUSTER_SECRET", &self.secret)
            .output(veche_harness::Output::Log(log.to_owned()))
    }

    /// Starts (or restarts) node `id`'s process; [`Process::ready`] tells
    /// when it runs.
    fn spawn_node(&mut self, id: u64) {
        let ip = self.ip(id);
        let node = self.node(id);
        let mut launch = self
            .launch(&format!("cp-{id}"), &node.log)
            .arg("control-plane")
            .args(["--id".to_owned(), id.to_string()])
            .args(["--listen".to_owned(), format!("{ip}:{}", node.port)])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .ready(Ready::AnyLine(vec![
                format!("Control-plane node {id} is running at"),
                format!("Control-plane node {id} is listening at"),
            ]));
        if let Some(peers) = &node.peers {
            launch = launch.arg("--peers").arg(peers);
        }
        if let Some(config) = &self.config {
            launch = launch.arg("--config").arg(config);
        }
        let node = self.nodes.get_mut(&id).expect("node exists");
        match &mut node.proc {
            Some(p) => {
                p.try_exit();
                assert!(
                    !p.is_running(),
                    "control-plane node {id} is already running"
                );
                p.restart().unwrap_or_else(|e| panic!("{e}"));
            }
            None => node.proc = Some(launch.spawn().unwrap_or_else(|e| panic!("{e}"))),
        }
        let p = node.proc.as_ref().expect("just started");
        eprintln!(
            "[harness] control-plane node {id} start #{} (pid {}) at {ip}:{}, log {}",
            p.starts(),
            p.pid().unwrap_or(0),
            node.port,
            node.log.display()
        );
    }

    async fn await_started(&mut self, id: u64) {
        let proc = self.nodes.get_mut(&id).and_then(|n| n.proc.as_mut());
        if let Err(e) = proc.expect("spawned").ready(SERVER_START_TIMEOUT).await {
            panic!("control-plane node {id} did not start: {e}");
        }
    }

    fn log_paths(&self) -> Vec<PathBuf> {
        self.nodes
            .values()
            .map(|n| n.log.clone())
            .chain(self.media.values().map(|m| m.log.clone()))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(p) = &mut node.proc {
                p.kill();
            }
        }
        for m in self.media.values_mut() {
            m.proc.kill();
        }
        let partitioned =
            std::mem::take(&mut *self.partitioned.lock().unwrap_or_else(|e| e.into_inner()));
        for id in partitioned {
            let _ = Command::new(nft_path().unwrap_or_else(|| "nft".into()))
                .args(["delete", "table", "ip", &self.table(id)])
                .output();
        }
        if std::thread::panicking() {
            eprintln!("[harness] the cluster's logs (kept with its directory):");
            for log in self.log_paths() {
                let text =
                    String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
                eprintln!("----- {} (last 30 lines) -----", log.display());
                eprintln!("{}", tail(&text, 30));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A free TCP port on `ip` (see [`veche_harness::free_port`]).
fn free_port_on(ip: Ipv4Addr) -> u16 {
    veche_harness::free_port(ip).unwrap_or_else(|e| panic!("{e}"))
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
