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

use super::fake_media::FakeState;
mod partition;

#[allow(unused_imports)]
pub use super::fake_media::{token_claims, FakeMediaNode};
use super::{TempDir, SERVER_START_TIMEOUT, VECHE};
use partition::{claim_subnet, nft_path};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use veche_harness::{Certs, Launch, Process, Ready};
use veche_protocol::rpc::RegisterNode;
use veche_protocol::NodeId;

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

/// How to start a media node.
#[derive(Clone, Debug, Default)]
pub struct MediaNodeOpts {
    /// `--region`.
    pub region: Option<String>,
    /// Start its QUIC relay (with a certificate from the cluster's CA).
    pub relay: bool,
}

/// One `veche media-node`.
struct MediaProc {
    base: String,
    log: PathBuf,
    proc: Process,
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
        assert!((1..100).contains(&n), "a cluster has 1 to 99 nodes");
        let (claim, net) = claim_subnet();
        let root = TempDir::new("cluster");
        // Random and 64 characters: the control plane refuses a secret
        // shorter than 32 bytes.
        let secret = veche_harness::cluster_secret();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(STATUS_TIMEOUT)
            .build()
            .expect("reqwest client");
        let mut cluster = Cluster {
            secret,
            net,
            nodes: BTreeMap::new(),
            media: BTreeMap::new(),
            partitioned: Mutex::new(BTreeSet::new()),
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

    /// [`Cluster::cli`] that must succeed: panics with its output if it
    /// failed, else returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "`veche cluster {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `veche cluster ARGS...` (blocking) with the secret in the
    /// environment and `--control-plane` defaulting to the first running
    /// member, and returns its output. A successful `add ID ..` makes the
    /// node a member in [`Cluster::ids`]; a successful `remove ID` makes it
    /// no longer one (its process keeps running until killed).
    pub fn cli(&self, args: &[&str]) -> Output {
        let default_cp = self
            .ids()
            .first()
            .map(|id| self.base(*id))
            .unwrap_or_default();
        let started = Instant::now();
        let out = Command::new(VECHE)
            .arg("cluster")
            .args(args)
            .env("VECHE_CLUSTER_SECRET", &self.secret)
            .env("VECHE_CONTROL_PLANE", default_cp)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY")
            .stdin(Stdio::null())
            .output()
            .expect("cannot run the veche binary");
        eprintln!(
            "[harness] veche cluster {} -> {} in {} ms\n[cli stdout] {}\n[cli stderr] {}",
            args.join(" "),
            out.status,
            started.elapsed().as_millis(),
            String::from_utf8_lossy(&out.stdout).trim_end(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
        let id = args.get(1).and_then(|s| s.parse::<u64>().ok());
        let node = id.and_then(|id| self.nodes.get(&id));
        match (args.first().copied(), node) {
            (Some("add"), Some(n)) if out.status.success() => {
                n.member.store(true, Ordering::Relaxed)
            }
            (Some("remove"), Some(n)) if out.status.success() => {
                n.member.store(false, Ordering::Relaxed)
            }
            _ => {}
        }
        out
    }

    /// Starts `veche media-node --id {id}` on `127.A.B.{100+id}` with
    /// `--control-plane` listing every control-plane node, waits until it
    /// has registered, and returns its base URL. Killed on drop.
    pub async fn start_media_node(&mut self, id: u64) -> String {
        self.start_media_node_with(id, MediaNodeOpts::default())
            .await
    }

    /// The base URL of media node `id`.
    pub fn media_base(&self, id: u64) -> String {
        self.media
            .get(&id)
            .unwrap_or_else(|| panic!("no media node {id}"))
            .base
            .clone()
    }

    /// Waits until media node `id` exits by itself (after a drain).
    pub async fn wait_media_node_exit(&mut self, id: u64, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let m = self
                .media
                .get_mut(&id)
                .unwrap_or_else(|| panic!("no media node {id}"));
            if let Some(status) = m.proc.try_exit() {
                eprintln!("[harness] media node {id} exited: {status}");
            }
            match m.proc.is_running() {
                false => return Ok(()),
                true if start.elapsed() >= timeout => {
                    return Err(format!(
                        "media node {id} still running after {timeout:?}; log {}",
                        m.log.display()
                    ))
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Makes the cluster's relay CA on first use and issues media node
    /// `id` its certificate; returns the directory to pass as
    /// `--relay-tls`.
    fn relay_tls_dir(&self, id: u64) -> PathBuf {
        let ca = self.root.path().join("relay-ca");
        let dir = self.root.path().join(format!("relay-{id}"));
        Certs::make(Path::new(VECHE), &ca)
            .and_then(|certs| certs.node(id, &dir))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Cluster::start_media_node`] with a region and, optionally, a QUIC
    /// relay on `127.A.B.{100+id}` (so rooms can span media nodes).
    pub async fn start_media_node_with(&mut self, id: u64, opts: MediaNodeOpts) -> String {
        assert!(id < 150, "media node ids go up to 149");
        assert!(
            self.media.get(&id).is_none_or(|m| !m.proc.is_running()),
            "media node {id} is already running"
        );
        let ip = self.ip(100 + id);
        let port = free_port_on(ip);
        let base = format!("http://{ip}:{port}");
        let control_planes = self
            .nodes
            .keys()
            .map(|cp| self.base(*cp))
            .collect::<Vec<_>>()
            .join(",");
        let mut extra: Vec<String> = Vec::new();
        if let Some(r) = &opts.region {
            extra.extend(["--region".into(), r.clone()]);
        }
        if opts.relay {
            let dir = self.relay_tls_dir(id);
            let udp = veche_harness::free_udp_port(ip).unwrap_or_else(|e| panic!("{e}"));
            let relay = format!("{ip}:{udp}");
            extra.extend([
                "--relay-listen".into(),
                relay,
                "--relay-tls".into(),
                dir.display().to_string(),
            ]);
        }
        let log = self.root.path().join(format!("media-{id}.log"));
        let needle = format!("Media node {id} is running at");
        let mut proc = self
            .launch(&format!("media-{id}"), &log)
            .arg("media-node")
            .args(["--id".to_owned(), id.to_string()])
            .args(["--listen".to_owned(), format!("{ip}:{port}")])
            .args(["--control-plane".to_owned(), control_planes])
            .args(extra)
            .ready(Ready::Line(needle))
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "[harness] media node {id} (pid {}) at {base}, log {}",
            proc.pid().unwrap_or(0),
            log.display()
        );
        let ready = proc.ready(SERVER_START_TIMEOUT).await;
        self.media.insert(
            id,
            MediaProc {
                base: base.clone(),
                log,
                proc,
            },
        );
        if let Err(e) = ready {
            panic!("media node {id} did not register: {e}");
        }
        base
    }

    /// Kills media node `id` with SIGKILL.
    pub fn kill_media_node(&mut self, id: u64) {
        let m = self
            .media
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no media node {id}"));
        let status = m
            .proc
            .kill()
            .unwrap_or_else(|| panic!("media node {id} is not running"));
        eprintln!("[harness] killed media node {id} at {}: {status:?}", m.base);
    }

    /// Registers a stand-in media node `id` (see the module docs) with
    /// `region`, `capacity` and, if `relay`, a relay address, through the
    /// internal RPC on any control-plane node, then heartbeats for it every
    /// 250 ms with the load set by [`FakeMediaNode::set_load`] (initially
    /// none) until it is stopped or dropped.
    pub async fn fake_media_node(
        &self,
        id: u64,
        region: &str,
        capacity: u32,
        relay: bool,
    ) -> FakeMediaNode {
        let ip = self.ip(100 + id);
        let register = RegisterNode {
            node_id: NodeId(id),
            ws_url: format!("ws://{ip}:9/media/ws"),
            region: region.to_owned(),
            capacity,
            relay_addr: relay.then(|| format!("{ip}:4433")),
        };
        let node = FakeMediaNode {
            id,
            register,
            bases: self.nodes.keys().map(|cp| self.base(*cp)).collect(),
            secret: self.secret.clone(),
            http: self.http.clone(),
            state: Arc::new(Mutex::new(FakeState::default())),
            beats: Mutex::new(None),
        };
        node.register_again().await;
        node.start_beating();
        node
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
