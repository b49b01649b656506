//! `veche control-plane`, `veche media-node` and `veche cluster`: the parts
//! of a multi-machine deployment, and the operator's client for the
//! cluster admin API.

use crate::config::{base_url, parse_peer, Config};
use crate::serve::{serve_until_signal, shutdown_signal, Serving};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use veche_control_plane::{Bootstrap, ControlPlane, ControlPlaneConfig};
use veche_node::{MediaNode, NodeConfig, RtcConfig};
use veche_protocol::admin::{
    drain_path, AddMemberRequest, ClusterStatus, MediaNodeStatus, ADMIN_CLUSTER, ADMIN_MEMBERS,
};
use veche_protocol::error::ErrorBody;
use veche_protocol::NodeId;

/// The cluster secret: flag, then environment, then config file. `Debug`
/// prints it as `<redacted>`.
#[derive(Args, Clone)]
pub struct SecretArg {
    /// Cluster secret; prefer the environment variable, which does not
    /// show up in `ps`.
    #[arg(long, env = "VECHE_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: Option<String>,
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretArg")
            .field(
                "cluster_secret",
                &self.cluster_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

fn secret(arg: &SecretArg, cfg: &Config) -> anyhow::Result<String> {
    arg.cluster_secret
        .clone()
        .or_else(|| cfg.control_plane.cluster_secret.clone())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "a cluster secret is required: set VECHE_CLUSTER_SECRET (the same on every node), \
                 or cluster_secret in the config file"
            )
        })
}

fn load_config(path: &Option<PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Config::load(p),
        None => Ok(Config::default()),
    }
}

/// `veche control-plane` arguments.
#[derive(Args, Debug)]
pub struct ControlPlaneArgs {
    /// Config file (see deploy/veche.sample.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Raft node id, unique in the cluster; overrides the config file.
    #[arg(long)]
    id: Option<u64>,
    /// Listen address for the API, the web client and Raft.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Initial voters of a new cluster, `ID=ADDRESS,...` (this node
    /// included), the same on every initial member. Omit on a node that
    /// will be added to a running cluster with `veche cluster add`.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    /// Data directory; overrides the config file.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The URL other nodes reach this one at; default `http://<listen>`.
    #[arg(long)]
    advertise: Option<String>,
    #[command(flatten)]
    secret: SecretArg,
}

/// Runs one control-plane node until a shutdown signal.
pub async fn run_control_plane(args: ControlPlaneArgs) -> anyhow::Result<()> {
    let mut cfg = load_config(&args.config)?;
    if let Some(id) = args.id {
        cfg.control_plane.node_id = id;
    }
    if let Some(l) = args.listen {
        cfg.server.listen = l;
    }
    if let Some(d) = args.data_dir {
        cfg.server.data_dir = d;
    }
    if !args.peers.is_empty() {
        cfg.control_plane.peers = args.peers;
    }
    if let Some(a) = args.advertise {
        cfg.control_plane.advertise_url = Some(a);
    }
    let secret = secret(&args.secret, &cfg)?;
    let id = cfg.control_plane.node_id;
    let listener = TcpListener::bind(cfg.server.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    let advertise = cfg
        .control_plane
        .advertise_url
        .as_deref()
        .map(base_url)
        .unwrap_or_else(|| format!("http://{addr}"));
    let bootstrap = if cfg.control_plane.peers.is_empty() {
        Bootstrap::Join
    } else {
        let mut members = BTreeMap::new();
        for p in &cfg.control_plane.peers {
            let (pid, url) = parse_peer(p)?;
            if members.insert(pid, url).is_some() {
                anyhow::bail!("--peers names node {pid} twice");
            }
        }
        match members.get(&id) {
            Some(url) if *url != advertise => anyhow::bail!(
                "--peers gives this node ({id}) the address {url}, but it advertises {advertise}; \
                 pass --advertise {url} or fix --peers"
            ),
            Some(_) => {}
            None => anyhow::bail!("--peers must include this node ({id}={advertise})"),
        }
        Bootstrap::Members(members)
    };
    let cp = ControlPlane::open(ControlPlaneConfig {
        node_id: id,
        data_dir: cfg.server.data_dir.clone(),
        advertise_addr: advertise.clone(),
        public_url: cfg.server.public_url.clone(),
        token_ttl: Duration::from_secs(cfg.control_plane.token_ttl_secs),
        cluster_secret: secret,
        bootstrap: bootstrap.clone(),
        bind_ip: (!addr.ip().is_unspecified()).then_some(addr.ip()),
        http: cfg.http_config(crate::serve::create_secret_from_env())?,
    })
    .await
    .map_err(|e| anyhow::anyhow!("control plane failed to start: {e}"))?;
    match bootstrap {
        Bootstrap::Join => println!(
            "Control-plane node {id} is listening at {advertise}; add it to the cluster with\n  \
             veche cluster add {id} {advertise} --control-plane <a member's URL>"
        ),
        _ => println!("Control-plane node {id} is running at {advertise}"),
    }
    serve_until_signal(listener, cp.router()).await;
    cp.shutdown()
        .await
        .map_err(|e| anyhow::anyhow!("control plane shutdown: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

/// `veche media-node` arguments.
#[derive(Args, Debug)]
pub struct MediaNodeArgs {
    /// Config file (see deploy/veche.sample.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Media node id, unique among media nodes; overrides the config file.
    #[arg(long)]
    id: Option<u64>,
    /// Listen address for the signalling WebSocket and metrics.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Control-plane base URLs, comma-separated.
    #[arg(long, value_delimiter = ',')]
    control_plane: Vec<String>,
    /// Region label for placement.
    #[arg(long)]
    region: Option<String>,
    /// Participants this node accepts (0: unlimited).
    #[arg(long)]
    capacity: Option<u32>,
    /// The signalling URL browsers are given; default
    /// `ws://<listen>/media/ws`.
    #[arg(long)]
    public_ws_url: Option<String>,
    /// UDP address of the QUIC relay through which rooms span media nodes.
    #[arg(long)]
    relay_listen: Option<SocketAddr>,
    /// `host:port` other media nodes dial; default `--relay-listen`.
    #[arg(long)]
    relay_advertise: Option<String>,
    /// Directory with this node's relay certificate (`veche cluster cert`).
    #[arg(long)]
    relay_tls: Option<PathBuf>,
    #[command(flatten)]
    secret: SecretArg,
}

/// Runs one media node until a shutdown signal.
pub async fn run_media_node(args: MediaNodeArgs) -> anyhow::Result<()> {
    let mut cfg = load_config(&args.config)?;
    if let Some(id) = args.id {
        cfg.media.node_id = id;
    }
    if let Some(l) = args.listen {
        cfg.server.listen = l;
    }
    if !args.control_plane.is_empty() {
        cfg.media.control_plane = args.control_plane;
    }
    if let Some(r) = args.region {
        cfg.media.region = r;
    }
    if let Some(c) = args.capacity {
        cfg.media.capacity = c;
    }
    if let Some(u) = args.public_ws_url {
        cfg.media.public_ws_url = Some(u);
    }
    if let Some(a) = args.relay_listen {
        cfg.media.relay_listen = Some(a);
    }
    if let Some(a) = args.relay_advertise {
        cfg.media.relay_advertise = Some(a);
    }
    if let Some(d) = args.relay_tls {
        cfg.media.relay_tls_dir = Some(d);
    }
    if cfg.media.control_plane.is_empty() {
        anyhow::bail!("--control-plane is required: the URL of at least one control-plane node");
    }
    let secret = secret(&args.secret, &cfg)?;
    veche_control_plane::secret::check_secret("the cluster secret", &secret)
        .map_err(|e| anyhow::anyhow!(e))?;
    let listener = TcpListener::bind(cfg.server.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    if addr.ip().is_unspecified() && cfg.media.public_ws_url.is_none() {
        anyhow::bail!(
            "listening on {addr}, browsers need a real address: pass --public-ws-url \
             (e.g. wss://media1.example.com/media/ws)"
        );
    }
    let node = MediaNode::new(NodeConfig {
        node_id: NodeId(cfg.media.node_id),
        control_plane_urls: cfg
            .media
            .control_plane
            .iter()
            .map(|u| base_url(u))
            .collect(),
        cluster_secret: secret,
        public_ws_url: cfg
            .media
            .public_ws_url
            .clone()
            .unwrap_or_else(|| format!("ws://{addr}{}", veche_node::WS_PATH)),
        region: cfg.media.region.clone(),
        capacity: cfg.media.capacity,
        rtc: RtcConfig {
            bind_ip: cfg.media.rtc_ip.unwrap_or(addr.ip()),
        },
        reconnect_grace: Duration::from_secs(cfg.media.reconnect_grace_secs),
        ice_servers: crate::serve::ice_servers(&cfg)?,
        turn: crate::serve::turn(&cfg)?,
    });
    let relay = crate::serve::enable_relay(&node, &cfg)?;
    let router = node.router();
    // The node stops on a signal, or by itself once an operator's drain
    // has moved everyone off it.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = {
        let node = node.clone();
        async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = node.drained() => println!("Drained: no participants left; exiting"),
            }
            let _ = stop_tx.send(true);
        }
    };
    tokio::spawn(stopping);
    let serving = Serving::spawn(listener, router);
    node.register(Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("media node could not register: {}", e.message))?;
    println!(
        "Media node {} is running at {addr}, registered with {}{}",
        cfg.media.node_id,
        cfg.media.control_plane.join(", "),
        relay
            .map(|a| format!("; relay at {a}"))
            .unwrap_or_else(|| "; no relay (rooms stay on this node)".into())
    );
    let beats = node.clone();
    let mut rx = stop_rx.clone();
    tokio::spawn(async move {
        beats
            .heartbeat_loop(async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
    });
    let mut rx = stop_rx;
    let _ = rx.wait_for(|s| *s).await;
    serving.stop().await;
    node.close_relay();
    tracing::info!("stopped");
    Ok(())
}

/// `veche cluster` subcommands.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
    /// Any control-plane node's base URL.
    #[arg(
        long,
        global = true,
        env = "VECHE_CONTROL_PLANE",
        default_value = "http://127.0.0.1:8080"
    )]
    control_plane: String,
    #[command(flatten)]
    secret: SecretArg,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Make the media relay CA (local files; needs no cluster).
    Ca(crate::certs_cmd::CaArgs),
    /// Issue a media node its relay certificate (local files; needs no
    /// cluster).
    Cert(crate::certs_cmd::CertArgs),
    /// Show the leader, the members and their replication, and media nodes.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a control-plane node (started with no --peers) as a voter.
    Add {
        /// Its Raft id.
        id: u64,
        /// Its address (`10.0.0.4:8080` or a URL).
        addr: String,
    },
    /// Remove a control-plane node from the cluster.
    Remove {
        /// Its Raft id.
        id: u64,
    },
    /// Drain a media node: place no one new on it, tell it to move its
    /// participants to other nodes, and wait until it is empty (or has
    /// stopped). Refused if no other media node is in service.
    Drain {
        /// The media node's id.
        node: u64,
        /// Give up waiting after this many seconds (exit status 1); the
        /// node stays draining.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Put a drained media node back in service. (A media node that
    /// restarts is back in service by itself.)
    Undrain {
        /// The media node's id.
        node: u64,
    },
}

struct AdminClient {
    http: reqwest::Client,
    secret: String,
}

impl AdminClient {
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let resp = req
            .bearer_auth(&self.secret)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the control plane: {e}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if status.is_success() {
            return Ok(serde_json::from_slice(&bytes)?);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            anyhow::bail!("the control plane refused the cluster secret");
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => anyhow::bail!("{} ({})", e.message, e.code.as_str()),
            Err(_) => anyhow::bail!("the control plane answered {status}"),
        }
    }

    async fn status(&self, base: &str) -> anyhow::Result<ClusterStatus> {
        self.send(self.http.get(format!("{base}{ADMIN_CLUSTER}")))
            .await
    }

    /// The leader's view if `base` can point to it (only the leader has
    /// replication progress and media nodes), else `base`'s own.
    async fn leader_status(&self, base: &str) -> anyhow::Result<ClusterStatus> {
        let status = self.status(base).await?;
        if let Some(leader) = status.leader.clone() {
            if leader.id != status.node_id {
                if let Ok(s) = self.status(&leader.addr).await {
                    return Ok(s);
                }
            }
        }
        Ok(status)
    }
}

/// How often `veche cluster drain` looks at the node's participant count.
const DRAIN_POLL: Duration = Duration::from_secs(1);

/// Why a media node counts as drained, if it does.
fn drained(n: &MediaNodeStatus) -> Option<&'static str> {
    if !n.alive {
        Some("has stopped sending heartbeats")
    } else if n.participants == 0 {
        Some("has no participants left")
    } else {
        None
    }
}

/// `veche cluster drain`: asks for the drain, then polls the leader's view
/// once a second until the node is empty or gone, or `timeout` passes.
async fn drain(client: &AdminClient, base: &str, node: u64, timeout: u64) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(timeout);
    let url = format!("{base}{}", drain_path(NodeId(node)));
    let first: MediaNodeStatus = client.send(client.http.post(&url)).await?;
    println!("Media node {node} is draining: no new participants are placed on it.");
    let mut last = Some(first.participants);
    let mut current = first;
    loop {
        if let Some(why) = drained(&current) {
            println!(
                "Media node {node} {why}; drained after {} s.",
                started.elapsed().as_secs()
            );
            return Ok(());
        }
        if last != Some(current.participants) || started.elapsed() < DRAIN_POLL {
            println!("node {node}: {} participants left", current.participants);
            last = Some(current.participants);
        }
        if std::time::Instant::now() >= deadline {
            anyhow::bail!(
                "media node {node} still has {} participants after {timeout} s; it stays \
                 draining (wait longer with `veche cluster drain {node}`, or put it back in \
                 service with `veche cluster undrain {node}`)",
                current.participants
            );
        }
        tokio::time::sleep(DRAIN_POLL).await;
        // A failed poll (a leader change, a node restarting) is not the end
        // of the drain: say so and look again.
        match client.leader_status(base).await {
            Ok(status) => match status.media_nodes {
                Some(nodes) => match nodes.into_iter().find(|n| n.info.node_id == NodeId(node)) {
                    Some(n) => current = n,
                    None => anyhow::bail!("media node {node} is no longer registered"),
                },
                None => eprintln!("no control-plane leader to ask right now; retrying"),
            },
            Err(e) => eprintln!("could not read the cluster status ({e}); retrying"),
        }
    }
}

/// Runs a `veche cluster` subcommand.
pub async fn run_cluster(args: ClusterArgs) -> anyhow::Result<()> {
    // The certificate commands work on local files: no secret, no cluster.
    let command = match args.command {
        ClusterCommand::Ca(a) => return crate::certs_cmd::run_ca(a),
        ClusterCommand::Cert(a) => return crate::certs_cmd::run_cert(a),
        other => other,
    };
    let cfg = Config::default();
    let client = AdminClient {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(70))
            .build()?,
        secret: secret(&args.secret, &cfg)?,
    };
    let base = base_url(&args.control_plane);
    let status = match command {
        ClusterCommand::Ca(_) | ClusterCommand::Cert(_) => unreachable!("handled above"),
        ClusterCommand::Status { json } => {
            let status = client.leader_status(&base).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
                return Ok(());
            }
            status
        }
        ClusterCommand::Add { id, addr } => {
            let body = AddMemberRequest {
                id,
                addr: base_url(&addr),
            };
            let s = client
                .send(
                    client
                        .http
                        .post(format!("{base}{ADMIN_MEMBERS}"))
                        .json(&body),
                )
                .await?;
            println!("Node {id} is now a voter.");
            s
        }
        ClusterCommand::Remove { id } => {
            let s = client
                .send(client.http.delete(format!("{base}{ADMIN_MEMBERS}/{id}")))
                .await?;
            println!("Node {id} is no longer a member.");
            s
        }
        ClusterCommand::Drain { node, timeout } => {
            return drain(&client, &base, node, timeout).await;
        }
        ClusterCommand::Undrain { node } => {
            let url = format!("{base}{}", drain_path(NodeId(node)));
            let _: MediaNodeStatus = client.send(client.http.delete(&url)).await?;
            println!("Media node {node} is back in service.");
            return Ok(());
        }
    };
    print_status(&status);
    Ok(())
}

fn print_status(s: &ClusterStatus) {
    println!(
        "answered by node {} ({}), term {}, leader: {}",
        s.node_id,
        s.state,
        s.term,
        s.leader
            .as_ref()
            .map_or("none".to_owned(), |l| format!("{} at {}", l.id, l.addr))
    );
    println!(
        "last log index {}, applied {}",
        s.last_log_index.map_or("-".into(), |i| i.to_string()),
        s.last_applied.map_or("-".into(), |i| i.to_string())
    );
    println!("\n{:<6} {:<8} {:<10} ADDRESS", "ID", "ROLE", "MATCHED");
    for m in &s.members {
        let role = if Some(m.id) == s.leader.as_ref().map(|l| l.id) {
            "leader"
        } else if m.voter {
            "voter"
        } else {
            "learner"
        };
        println!(
            "{:<6} {:<8} {:<10} {}",
            m.id,
            role,
            m.matched_index.map_or("-".into(), |i| i.to_string()),
            m.addr
        );
    }
    if let Some(nodes) = &s.media_nodes {
        println!(
            "\n{:<6} {:<6} {:<9} {:<12} {:<8} {:<10} SIGNALLING",
            "MEDIA", "ALIVE", "DRAINING", "REGION", "PEOPLE", "LAST BEAT"
        );
        for n in nodes {
            println!(
                "{:<6} {:<6} {:<9} {:<12} {:<8} {:<10} {}",
                n.info.node_id.0,
                if n.alive { "yes" } else { "no" },
                if n.draining { "yes" } else { "no" },
                if n.info.region.is_empty() {
                    "-"
                } else {
                    &n.info.region
                },
                n.participants,
                n.last_heartbeat_ms_ago
                    .map_or("-".into(), |ms| format!("{ms} ms")),
                n.info.ws_url
            );
        }
    }
}
