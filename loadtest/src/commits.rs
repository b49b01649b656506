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

use crate::proc;
use crate::report::Percentiles;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use veche_protocol::admin::{ClusterStatus, ADMIN_CLUSTER};
use veche_protocol::chat::ChatMessage;
use veche_protocol::rpc::{CommitChat, RoomView, RPC_COMMIT_CHAT};
use veche_protocol::ParticipantId;

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

/// The machine the benchmark ran on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// Where the nodes' data directories were (fsync speed depends on it).
    pub data_dir: String,
}

impl Machine {
    /// Reads the machine's description from `/proc`.
    pub fn detect(data_dir: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
            data_dir: data_dir.display().to_string(),
        }
    }
}

/// One writer count's results.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// Concurrent writers.
    pub writers: usize,
    /// Commits that completed in the window.
    pub commits: u64,
    /// Commits per second.
    pub commits_per_s: f64,
    /// Latency of the commits in the window, ms.
    pub latency_ms: Percentiles,
    /// Requests in the window that failed.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// CPU used in the window by each node, percent of one core, in node
    /// order (node 1 first).
    pub node_cpu_percent: Vec<f64>,
    /// CPU used in the window by the benchmark's own process (the
    /// writers), percent of one core.
    pub bench_cpu_percent: f64,
    /// CPU used in the window by everything else on the machine, percent of
    /// one core (from `/proc/stat`). Far above zero means the figures are
    /// disturbed by other work.
    pub other_cpu_percent: f64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct CommitsReport {
    /// Where it ran.
    pub machine: Machine,
    /// Control-plane nodes.
    pub nodes: usize,
    /// The leader's node id during the runs.
    pub leader: u64,
    /// The node the writers sent to.
    pub target_node: u64,
    /// Leader or follower.
    pub via: Via,
    /// Connection handling of the writers.
    pub client: ClientMode,
    /// Warm-up per writer count, seconds.
    pub warmup_s: f64,
    /// Measurement window per writer count, seconds.
    pub window_s: f64,
    /// One entry per writer count.
    pub runs: Vec<RunResult>,
}

impl CommitsReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let m = &self.machine;
        let _ = writeln!(
            t,
            "machine   {} ({} cores), Linux {}, data in {}",
            m.cpu_model, m.cores, m.kernel, m.data_dir
        );
        let _ = writeln!(
            t,
            "cluster   {} nodes on loopback, leader node {}; writers -> node {} ({:?}), {:?} HTTP client",
            self.nodes, self.leader, self.target_node, self.via, self.client
        );
        let _ = writeln!(
            t,
            "window    {:.0} s after {:.0} s warm-up per writer count\n",
            self.window_s, self.warmup_s
        );
        let _ = writeln!(
            t,
            "{:>7} {:>10} {:>9} {:>9} {:>9} {:>7}   CPU % of a core: nodes 1..{} | bench | other",
            "writers", "commits/s", "p50 ms", "p99 ms", "max ms", "errors", self.nodes
        );
        for r in &self.runs {
            let cpu: Vec<String> = r
                .node_cpu_percent
                .iter()
                .map(|c| format!("{c:.0}"))
                .collect();
            let _ = writeln!(
                t,
                "{:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7}   {} | {:.0} | {:.0}",
                r.writers,
                r.commits_per_s,
                r.latency_ms.p50,
                r.latency_ms.p99,
                r.latency_ms.max,
                r.errors,
                cpu.join(" "),
                r.bench_cpu_percent,
                r.other_cpu_percent
            );
        }
        for r in &self.runs {
            if let Some(e) = &r.first_error {
                let _ = writeln!(t, "first error with {} writers: {e}", r.writers);
            }
        }
        t
    }
}

/// Busy and total jiffies of all CPUs together, from `/proc/stat`.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is
    // already included in user).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("OS RNG available");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A free TCP port on `ip` (bound and released; the node binds it again a
/// moment later).
fn free_port(ip: &str) -> Result<u16, String> {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| {
            format!(
                "cannot bind {ip}: {e} (every node needs its own loopback address; \
                 Linux routes all of 127.0.0.0/8 to lo)"
            )
        })
}

/// The running cluster: child processes and their data. Dropping it stops
/// the processes and removes the data.
struct Cluster {
    children: Vec<Child>,
    bases: Vec<String>,
    root: PathBuf,
    secret: String,
}

impl Cluster {
    /// An empty cluster with its data under `root`.
    fn new(root: PathBuf) -> Result<Cluster, String> {
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        Ok(Cluster {
            children: Vec::new(),
            bases: Vec::new(),
            root,
            secret: random_hex(16),
        })
    }

    /// Starts `nodes` nodes and waits until each prints its address.
    fn start(&mut self, exe: &Path, nodes: usize) -> Result<(), String> {
        let cluster = self;
        let addrs: Vec<String> = (1..=nodes)
            .map(|i| {
                let ip = format!("127.0.0.{i}");
                free_port(&ip).map(|p| format!("{ip}:{p}"))
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
            let dir = cluster.root.join(format!("node-{id}"));
            // The nodes' logs (elections at start-up, and any trouble) go to
            // a file, shown only if the run fails.
            let log = std::fs::File::create(cluster.log_path(id)).map_err(|e| {
                format!(
                    "cannot create a log file in {}: {e}",
                    cluster.root.display()
                )
            })?;
            let mut child = Command::new(exe)
                .args(["control-plane", "--id", &id.to_string(), "--listen", addr])
                .args(["--peers", &peers, "--data-dir"])
                .arg(&dir)
                .env("VECHE_CLUSTER_SECRET", &cluster.secret)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
            let stdout = child.stdout.take().expect("piped");
            cluster.children.push(child);
            let mut lines = BufReader::new(stdout).lines();
            let base = loop {
                match lines.next() {
                    Some(Ok(l)) if l.contains("is running at") => match l.find("http://") {
                        Some(at) => break l[at..].trim().trim_end_matches('/').to_owned(),
                        None => return Err(format!("node {id}: unexpected line {l:?}")),
                    },
                    Some(Ok(_)) => {}
                    _ => return Err(format!("control-plane node {id} exited during start-up")),
                }
            };
            // Keep draining stdout so the node never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            cluster.bases.push(base);
        }
        Ok(())
    }

    fn log_path(&self, id: usize) -> PathBuf {
        self.root.join(format!("node-{id}.log"))
    }

    /// The last lines each node logged, to explain a failed run.
    fn log_tails(&self) -> String {
        let mut out = String::new();
        for id in 1..=self.children.len().max(self.bases.len()) {
            let text = std::fs::read_to_string(self.log_path(id)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let _ = writeln!(out, "--- node {id}, last log lines:");
            for l in &lines[lines.len().saturating_sub(10)..] {
                let _ = writeln!(out, "{l}");
            }
        }
        out
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Waits until every node names the same leader; returns its id.
    async fn wait_for_leader(&self, http: &reqwest::Client) -> Result<u64, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
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
                return Err(format!("no leader after 30 s ({last})"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, up to 5 s to exit, then SIGKILL.
    async fn stop(&mut self) {
        for c in &self.children {
            // SAFETY: kill(2) on a child we started; no memory is involved.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self
                .children
                .iter_mut()
                .all(|c| matches!(c.try_wait(), Ok(Some(_))))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Only reached with children left on an early return or a panic;
        // `stop` has drained them otherwise.
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// What one writer saw in the window.
#[derive(Default)]
struct WriterResult {
    latencies_ms: Vec<f64>,
    errors: u64,
    first_error: Option<String>,
}

/// Commits one chat message; returns the committed message.
async fn commit_one(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    body: Vec<u8>,
) -> Result<ChatMessage, String> {
    let resp = http
        .post(url)
        .bearer_auth(secret)
        .header("content-type", "application/msgpack")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the reply: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "{status}: {}",
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    rmp_serde::from_slice(&bytes).map_err(|e| format!("undecodable reply: {e}"))
}

struct Writer {
    http: reqwest::Client,
    url: Arc<str>,
    secret: Arc<str>,
    room: RoomView,
    id: usize,
    run: usize,
    window_start: Instant,
    window_end: Instant,
}

impl Writer {
    async fn run(self) -> WriterResult {
        let mut out = WriterResult::default();
        let participant_id = ParticipantId(format!("pbench{}w{}", self.run, self.id));
        let display_name = format!("bench writer {}", self.id);
        let mut n: u64 = 0;
        loop {
            let started = Instant::now();
            if started >= self.window_end {
                break;
            }
            n += 1;
            let req = CommitChat {
                room_id: self.room.id,
                participant_id: participant_id.clone(),
                display_name: display_name.clone(),
                text: format!("load test message {n} from writer {}", self.id),
                client_msg_id: Some(format!("c{n}")),
                sent_at_ms: now_ms(),
            };
            let body = rmp_serde::to_vec_named(&req).expect("CommitChat always encodes");
            let result = commit_one(&self.http, &self.url, &self.secret, body).await;
            let done = Instant::now();
            let counted = done >= self.window_start && done < self.window_end;
            match result {
                Ok(msg) if msg.room_id == self.room.id => {
                    if counted {
                        out.latencies_ms
                            .push(done.duration_since(started).as_secs_f64() * 1000.0);
                    }
                }
                Ok(msg) => {
                    if counted {
                        out.errors += 1;
                        out.first_error.get_or_insert_with(|| {
                            format!("reply for room {} instead of {}", msg.room_id, self.room.id)
                        });
                    }
                }
                Err(e) => {
                    if counted {
                        out.errors += 1;
                        out.first_error.get_or_insert(e);
                    }
                    // Do not spin on a node that refuses everything.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        out
    }
}

fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("static client config is valid")
}

async fn measure(
    opts: &Options,
    cluster: &Cluster,
    target: &str,
    room: &RoomView,
    run: usize,
    writers: usize,
) -> RunResult {
    let shared = new_client();
    let url: Arc<str> = format!("{target}{RPC_COMMIT_CHAT}").into();
    let secret: Arc<str> = cluster.secret.as_str().into();
    let window_start = Instant::now() + opts.warmup;
    let window_end = window_start + opts.duration;
    let handles: Vec<_> = (0..writers)
        .map(|id| {
            let http = match opts.client {
                ClientMode::Shared => shared.clone(),
                ClientMode::PerWriter => new_client(),
            };
            tokio::spawn(
                Writer {
                    http,
                    url: url.clone(),
                    secret: secret.clone(),
                    room: room.clone(),
                    id,
                    run,
                    window_start,
                    window_end,
                }
                .run(),
            )
        })
        .collect();
    tokio::time::sleep_until(window_start.into()).await;
    let sample_all = || {
        let nodes: Vec<_> = cluster
            .pids()
            .into_iter()
            .map(|p| proc::sample(p).ok())
            .collect();
        (
            nodes,
            proc::sample(std::process::id()).ok(),
            machine_jiffies(),
        )
    };
    let (nodes_before, bench_before, machine_before) = sample_all();
    tokio::time::sleep_until(window_end.into()).await;
    let (nodes_after, bench_after, machine_after) = sample_all();
    let cpu_percent = |b: Option<proc::ProcSample>, a: Option<proc::ProcSample>| match (b, a) {
        (Some(b), Some(a)) => {
            100.0 * (a.cpu_s - b.cpu_s) / a.at.duration_since(b.at).as_secs_f64().max(1e-9)
        }
        _ => f64::NAN,
    };
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for h in handles {
        match h.await {
            Ok(r) => {
                latencies.extend(r.latencies_ms);
                errors += r.errors;
                if first_error.is_none() {
                    first_error = r.first_error;
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("writer task failed: {e}"));
            }
        }
    }
    let commits = latencies.len() as u64;
    let node_cpu_percent: Vec<f64> = nodes_before
        .into_iter()
        .zip(nodes_after)
        .map(|(b, a)| cpu_percent(b, a))
        .collect();
    let bench_cpu_percent = cpu_percent(bench_before, bench_after);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let other_cpu_percent = match (machine_before, machine_after) {
        (Some((b_busy, b_total)), Some((a_busy, a_total))) if a_total > b_total => {
            let all =
                100.0 * cores * a_busy.saturating_sub(b_busy) as f64 / (a_total - b_total) as f64;
            (all - node_cpu_percent.iter().sum::<f64>() - bench_cpu_percent).max(0.0)
        }
        _ => f64::NAN,
    };
    RunResult {
        writers,
        commits,
        commits_per_s: commits as f64 / opts.duration.as_secs_f64().max(1e-9),
        latency_ms: Percentiles::of(latencies),
        errors,
        first_error,
        node_cpu_percent,
        bench_cpu_percent,
        other_cpu_percent,
    }
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
    let root = std::env::temp_dir().join(format!(
        "veche-loadtest-commits-{}-{}",
        std::process::id(),
        random_hex(4)
    ));
    let machine = Machine::detect(&std::env::temp_dir());
    let note = |msg: &str| {
        if opts.progress {
            eprintln!("{msg}");
        }
    };
    note(&format!(
        "starting {} control-plane nodes (data in {})",
        opts.nodes,
        root.display()
    ));
    let mut cluster = Cluster::new(root)?;
    let result = match cluster.start(&opts.exe, opts.nodes) {
        // Ctrl-C still stops the nodes and removes their data.
        Ok(()) => tokio::select! {
            r = run_against(&opts, &cluster, machine, &note) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
        },
        Err(e) => Err(e),
    };
    note("stopping the cluster");
    cluster.stop().await;
    let result = result.map_err(|e| format!("{e}\n{}", cluster.log_tails()));
    drop(cluster);
    result
}

async fn run_against(
    opts: &Options,
    cluster: &Cluster,
    machine: Machine,
    note: &dyn Fn(&str),
) -> Result<CommitsReport, String> {
    let http = new_client();
    let leader = cluster.wait_for_leader(&http).await?;
    let target_node = match opts.via {
        Via::Leader => leader,
        Via::Follower => (1..=cluster.bases.len() as u64)
            .find(|id| *id != leader)
            .expect("at least 2 nodes"),
    };
    let target = cluster.bases[target_node as usize - 1].clone();
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
        runs.push(measure(opts, cluster, &target, &room, run, writers).await);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_is_described() {
        let m = Machine::detect(Path::new("/tmp"));
        assert!(m.cores >= 1);
        assert!(!m.cpu_model.is_empty());
    }

    #[test]
    fn table_lists_every_run() {
        let report = CommitsReport {
            machine: Machine::detect(Path::new("/tmp")),
            nodes: 3,
            leader: 1,
            target_node: 1,
            via: Via::Leader,
            client: ClientMode::Shared,
            warmup_s: 1.0,
            window_s: 10.0,
            runs: [1, 64]
                .into_iter()
                .map(|w| RunResult {
                    writers: w,
                    commits: 100,
                    commits_per_s: 10.0,
                    latency_ms: Percentiles::of(vec![1.0, 2.0]),
                    errors: 0,
                    first_error: None,
                    node_cpu_percent: vec![50.0, 20.0, 20.0],
                    bench_cpu_percent: 10.0,
                    other_cpu_percent: 0.0,
                })
                .collect(),
        };
        let t = report.table();
        assert!(t.contains("commits/s"));
        assert_eq!(t.lines().filter(|l| l.contains("50 20 20")).count(), 2);
    }
}
