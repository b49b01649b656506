//! Starting and stopping the processes of a load-test cluster, with
//! `veche-harness`: relay certificates, one control plane, N media nodes,
//! and the wait until the control plane sees them all alive.

use crate::report::cluster::Role;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};
use veche_harness::{Certs, Launch, Output, Process, Ready, TempDir};
use veche_protocol::admin::{ClusterStatus, ADMIN_CLUSTER};

/// How long a process may take to print that it is up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the media nodes may take to show up alive at the control plane
/// once they are running.
const ALIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long each role may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A process the harness started.
pub(crate) struct Node {
    pub(crate) role: Role,
    pub(crate) id: u64,
    pub(crate) region: Option<String>,
    /// HTTP base URL, `http://127.0.0.2:PORT`.
    pub(crate) base: String,
    pub(crate) proc: Process,
}

/// The running cluster. Dropping it kills every process left and removes
/// the temporary directory (certificates, data, logs).
pub(crate) struct Procs {
    secret: String,
    /// The control plane first, then media nodes in id order.
    pub(crate) nodes: Vec<Node>,
    // Dropped after the processes (fields drop in order).
    root: TempDir,
}

impl Procs {
    /// An empty cluster with a fresh secret and directory.
    pub(crate) fn new() -> Procs {
        Procs {
            secret: veche_harness::cluster_secret(),
            nodes: Vec::new(),
            root: TempDir::scratch("loadtest-cluster"),
        }
    }

    fn launch(&self, exe: &Path, name: &str) -> Launch {
        Launch::new(name, exe)
            .env("VECHE_CLUSTER_SECRET", &self.secret)
            .env("RUST_LOG", "warn")
            .output(Output::Log(self.root.path().join(format!("{name}.log"))))
            .die_with_parent()
    }

    /// Starts `launch`, waits until it prints `ready`, and keeps it.
    async fn spawn(
        &mut self,
        launch: Launch,
        role: Role,
        id: u64,
        region: Option<String>,
        base: String,
    ) -> Result<(), String> {
        let mut proc = launch.spawn()?;
        proc.ready(START_TIMEOUT).await?;
        self.nodes.push(Node {
            role,
            id,
            region,
            base,
            proc,
        });
        Ok(())
    }

    /// Starts the control plane and `media_nodes` media nodes (node `i` on
    /// `127.0.0.(i+1)` in region `r<i>`, with a relay) and waits until the
    /// control plane sees them all alive with a relay endpoint.
    pub(crate) async fn start(
        &mut self,
        exe: &Path,
        media_nodes: usize,
        http: &reqwest::Client,
        note: &dyn Fn(&str),
    ) -> Result<(), String> {
        note(&format!(
            "making relay certificates in {}",
            self.root.path().display()
        ));
        let certs = Certs::make(exe, &self.root.path().join("ca"))?;

        let cp_ip = Ipv4Addr::LOCALHOST;
        let cp_addr = format!("{cp_ip}:{}", veche_harness::free_port(cp_ip)?);
        let cp_base = format!("http://{cp_addr}");
        note(&format!("starting the control plane at {cp_base}"));
        let data = self.root.path().join("cp");
        let config = crate::target::write_load_config(self.root.path())?;
        let launch = self
            .launch(exe, "control-plane-1")
            .args(["control-plane", "--id", "1", "--listen", &cp_addr])
            .arg("--config")
            .arg(config)
            .args(["--peers".to_owned(), format!("1={cp_base}")])
            .arg("--data-dir")
            .arg(data)
            .ready(Ready::Line("is running at".into()));
        self.spawn(launch, Role::ControlPlane, 1, None, cp_base.clone())
            .await?;

        for i in 1..=media_nodes {
            let ip = Ipv4Addr::new(127, 0, 0, u8::try_from(i + 1).expect("at most 250 nodes"));
            let listen = format!("{ip}:{}", veche_harness::free_port(ip)?);
            let relay = format!("{ip}:{}", veche_harness::free_udp_port(ip)?);
            let region = format!("r{i}");
            note(&format!(
                "starting media node {i} at {listen} (region {region}, relay {relay})"
            ));
            let cert_dir = certs.node(i as u64, &self.root.path().join(format!("n{i}")))?;
            let launch = self
                .launch(exe, &format!("media-node-{i}"))
                .args(["media-node", "--id", &i.to_string(), "--listen", &listen])
                .args(["--control-plane", &cp_base, "--region", &region])
                .args(["--relay-listen", &relay, "--relay-tls"])
                .arg(cert_dir)
                .ready(Ready::Line(format!("Media node {i} is running at")));
            let base = format!("http://{listen}");
            self.spawn(launch, Role::MediaNode, i as u64, Some(region), base)
                .await?;
        }
        self.wait_alive(http, &cp_base, media_nodes).await
    }

    /// Polls the admin API until `n` media nodes are alive, each with a
    /// relay endpoint; explains what it last saw if they never are.
    async fn wait_alive(
        &self,
        http: &reqwest::Client,
        cp_base: &str,
        n: usize,
    ) -> Result<(), String> {
        let deadline = Instant::now() + ALIVE_TIMEOUT;
        loop {
            let status = http
                .get(format!("{cp_base}{ADMIN_CLUSTER}"))
                .bearer_auth(&self.secret)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            let last = match status {
                Ok(r) if r.status().is_success() => match r.json::<ClusterStatus>().await {
                    Ok(s) => {
                        let nodes = s.media_nodes.unwrap_or_default();
                        let alive = nodes.iter().filter(|m| m.alive).count();
                        let no_relay: Vec<u64> = nodes
                            .iter()
                            .filter(|m| m.info.relay_addr.is_none())
                            .map(|m| m.info.node_id.0)
                            .collect();
                        if alive >= n && no_relay.is_empty() {
                            return Ok(());
                        }
                        format!(
                            "{alive} of {n} media nodes alive; registered without a relay \
                             endpoint: {no_relay:?}"
                        )
                    }
                    Err(e) => format!("unreadable cluster status: {e}"),
                },
                Ok(r) => format!("{ADMIN_CLUSTER} answered {}", r.status()),
                Err(e) => format!("{ADMIN_CLUSTER}: {e}"),
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "the cluster was not ready after {} s: {last}",
                    ALIVE_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The control plane's base URL.
    pub(crate) fn control_plane(&self) -> &str {
        &self.nodes[0].base
    }

    /// The media nodes, in id order.
    pub(crate) fn media(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|p| p.role == Role::MediaNode)
    }

    /// The last lines of every process's log, to explain a failed run.
    pub(crate) fn log_tails(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let log = n.proc.log_path().map(Path::display);
            let _ = writeln!(
                out,
                "--- {:?} {} ({}), last log lines:\n{}",
                n.role,
                n.id,
                log.map(|l| l.to_string()).unwrap_or_default(),
                n.proc.tail(10)
            );
        }
        out
    }

    /// SIGTERM to the media nodes, then to the control plane; up to 5 s
    /// each to exit, then SIGKILL.
    pub(crate) async fn stop(&mut self) {
        for role in [Role::MediaNode, Role::ControlPlane] {
            let mut procs: Vec<&mut Process> = self
                .nodes
                .iter_mut()
                .filter(|n| n.role == role)
                .map(|n| &mut n.proc)
                .collect();
            Process::stop_all(&mut procs, STOP_TIMEOUT).await;
        }
    }
}
