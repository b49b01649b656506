//! The flags of `veche control-plane` and `veche media-node`, applied over
//! the config file, and the cluster secret every multi-machine command
//! needs.

use crate::config::Config;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

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

/// The cluster secret from `arg`, else from the config file; an error
/// saying how to set one if neither has it.
pub fn secret(arg: &SecretArg, cfg: &Config) -> anyhow::Result<String> {
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

/// The config file at `path`, or the defaults without one.
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

impl ControlPlaneArgs {
    /// The config file (or the defaults) with these flags over it, and
    /// the cluster secret.
    pub fn resolve(self) -> anyhow::Result<(Config, String)> {
        let mut cfg = load_config(&self.config)?;
        if let Some(id) = self.id {
            cfg.control_plane.node_id = id;
        }
        if let Some(l) = self.listen {
            cfg.server.listen = l;
        }
        if let Some(d) = self.data_dir {
            cfg.server.data_dir = d;
        }
        if !self.peers.is_empty() {
            cfg.control_plane.peers = self.peers;
        }
        if let Some(a) = self.advertise {
            cfg.control_plane.advertise_url = Some(a);
        }
        let secret = secret(&self.secret, &cfg)?;
        Ok((cfg, secret))
    }
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

impl MediaNodeArgs {
    /// The config file (or the defaults) with these flags over it, and
    /// the cluster secret.
    pub fn resolve(self) -> anyhow::Result<(Config, String)> {
        let mut cfg = load_config(&self.config)?;
        if let Some(id) = self.id {
            cfg.media.node_id = id;
        }
        if let Some(l) = self.listen {
            cfg.server.listen = l;
        }
        if !self.control_plane.is_empty() {
            cfg.media.control_plane = self.control_plane;
        }
        if let Some(r) = self.region {
            cfg.media.region = r;
        }
        if let Some(c) = self.capacity {
            cfg.media.capacity = c;
        }
        if let Some(u) = self.public_ws_url {
            cfg.media.public_ws_url = Some(u);
        }
        if let Some(a) = self.relay_listen {
            cfg.media.relay_listen = Some(a);
        }
        if let Some(a) = self.relay_advertise {
            cfg.media.relay_advertise = Some(a);
        }
        if let Some(d) = self.relay_tls {
            cfg.media.relay_tls_dir = Some(d);
        }
        if cfg.media.control_plane.is_empty() {
            anyhow::bail!(
                "--control-plane is required: the URL of at least one control-plane node"
            );
        }
        let secret = secret(&self.secret, &cfg)?;
        Ok((cfg, secret))
    }
}
