//! Media nodes of a test cluster: real `veche media-node` processes, and
//! stand-ins that only register and send heartbeats (see the module docs
//! of `cluster.rs`).

use super::{free_port_on, Cluster, SERVER_START_TIMEOUT, VECHE};
use crate::common::fake_media::{FakeMediaNode, FakeState};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use veche_harness::{Certs, Process, Ready};
use veche_protocol::rpc::RegisterNode;
use veche_protocol::NodeId;

/// How to start a media node.
#[derive(Clone, Debug, Default)]
pub struct MediaNodeOpts {
    /// `--region`.
    pub region: Option<String>,
    /// Start its QUIC relay (with a certificate from the cluster's CA).
    pub relay: bool,
    /// `--config` (e.g. its recordings store and spool directory).
    pub config: Option<PathBuf>,
}

impl MediaNodeOpts {
    /// Node `id` in region `r{id}`, with a relay: the cascade tests'
    /// layout, one region a node, so a room spanning regions spans nodes.
    pub fn region_with_relay(id: u64) -> Self {
        MediaNodeOpts {
            region: Some(format!("r{id}")),
            relay: true,
            config: None,
        }
    }
}

/// One `veche media-node`.
pub(super) struct MediaProc {
    pub(super) base: String,
    pub(super) log: PathBuf,
    pub(super) proc: Process,
}

impl Cluster {
    /// Starts `veche media-node --id {id}` on `127.A.B.{100+id}` with
    /// `--control-plane` listing every control-plane node, waits until it
    /// has registered, and returns its base URL. Killed on drop.
    pub async fn start_media_node(&mut self, id: u64) -> String {
        self.start_media_node_with(id, MediaNodeOpts::default())
            .await
    }

    /// Starts media nodes `1..=n`, each in region `r{id}` with a relay
    /// ([`MediaNodeOpts::region_with_relay`]).
    pub async fn start_relay_regions(&mut self, n: u64) {
        for id in 1..=n {
            self.start_media_node_with(id, MediaNodeOpts::region_with_relay(id))
                .await;
        }
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
        if let Some(config) = &opts.config {
            extra.extend(["--config".into(), config.display().to_string()]);
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
}
