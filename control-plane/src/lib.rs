//! The Veche control plane: rooms, chat history and join authorization,
//! replicated with Raft (openraft) on embedded storage (redb), served over
//! HTTP (axum).
//!
//! [`ControlPlane::open`] brings up the store; [`ControlPlane::router`]
//! returns the HTTP routes, which the caller serves on a listener it bound
//! itself (so tests use port 0 and `veche serve` can share one listener
//! with a media node).

pub mod api;
pub mod error;
pub mod store;
mod web;

use prometheus::{IntCounter, Registry};
use ring::signature::Ed25519KeyPair;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::model::{Command, CommandOutput};
use store::{RaftStore, StoreError};
use veche_protocol::NodeId;

/// Control-plane settings.
#[derive(Clone, Debug)]
pub struct ControlPlaneConfig {
    /// This node's Raft id.
    pub node_id: u64,
    /// Where the redb files live.
    pub data_dir: PathBuf,
    /// The address other control-plane nodes reach this one at
    /// (`http://host:port`), stored in the Raft membership.
    pub advertise_addr: String,
    /// Base of room links (`https://meet.example.com`). When unset, links
    /// use the `Host` the request came in on.
    pub public_url: Option<String>,
    /// How long a join token stays valid. Short, because it is a bearer
    /// credential: the browser uses it within a second of receiving it.
    pub token_ttl: Duration,
    /// Shared secret that media nodes and peers present on the internal
    /// RPC and Raft routes.
    pub cluster_secret: String,
}

/// Control-plane metrics, namespaced `veche_cp_`.
pub struct CpMetrics {
    registry: Registry,
    /// Other registries served at the same `/metrics` (the media node's,
    /// when both run in one process), so one scrape sees the whole process.
    extra: RwLock<Vec<Registry>>,
    /// Rooms created through this node.
    pub rooms_created: IntCounter,
    /// Join tokens issued by this node.
    pub joins: IntCounter,
    /// Chat messages committed through this node.
    pub chat_messages: IntCounter,
}

impl CpMetrics {
    fn new() -> Self {
        let registry =
            Registry::new_custom(Some("veche_cp".into()), None).expect("static prefix is valid");
        let c = |name: &str, help: &str| {
            let m = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        CpMetrics {
            rooms_created: c("rooms_created_total", "Rooms created"),
            joins: c("join_tokens_issued_total", "Join tokens issued"),
            chat_messages: c("chat_messages_committed_total", "Chat messages committed"),
            registry,
            extra: RwLock::new(Vec::new()),
        }
    }

    fn render(&self) -> String {
        use prometheus::Encoder;
        let mut families = self.registry.gather();
        for r in self.extra.read().expect("lock poisoned").iter() {
            families.extend(r.gather());
        }
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&families, &mut buf)
            .expect("text encoding never fails");
        String::from_utf8(buf).expect("text encoder emits UTF-8")
    }
}

/// Errors starting the control plane.
#[derive(Debug, thiserror::Error)]
pub enum CpError {
    /// The replicated store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The stored signing key is unreadable.
    #[error("join-token signing key is invalid: {0}")]
    BadKey(String),
    /// The state machine answered something unexpected.
    #[error("unexpected state machine output")]
    Unexpected,
}

/// A running control-plane node.
pub struct ControlPlane {
    config: ControlPlaneConfig,
    store: RaftStore,
    signing_key: Ed25519KeyPair,
    /// Registered media nodes and their signalling URLs. Liveness is kept
    /// in memory, not in Raft: only membership changes deserve a log entry.
    media_nodes: RwLock<BTreeMap<NodeId, String>>,
    metrics: CpMetrics,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("OS RNG available");
    b
}

/// Writes a command while the cluster may still be electing its first
/// leader: a freshly started node is briefly leaderless, and the first
/// write must not fail the whole start-up for that.
async fn write_at_startup(
    store: &RaftStore,
    cmd: Command,
) -> Result<store::model::CommandResult, StoreError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match store.write(cmd.clone()).await {
            Err(StoreError::NotLeader { leader: None, .. })
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

impl ControlPlane {
    /// Opens the store in `config.data_dir`, initialises a one-node cluster
    /// on first start, and loads (or creates, through Raft) the join-token
    /// signing key.
    pub async fn open(config: ControlPlaneConfig) -> Result<Arc<Self>, CpError> {
        // Raft peers present the cluster secret too: the /raft routes sit
        // behind the same check as the rest of the internal API.
        let network = store::network::HttpNetworkFactory::new(config.node_id)
            .with_bearer_token(config.cluster_secret.clone());
        let store = RaftStore::open_with_network(
            config.node_id,
            config.advertise_addr.clone(),
            &config.data_dir,
            store::default_raft_config(),
            network,
        )
        .await?;
        store.initialize_single_if_new().await?;
        let pkcs8 = match store.signing_key().await? {
            Some(k) => k,
            None => {
                let fresh = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                    .map_err(|e| CpError::BadKey(e.to_string()))?;
                let cmd = Command::InitSigningKey {
                    pkcs8: fresh.as_ref().to_vec(),
                };
                match write_at_startup(&store, cmd).await? {
                    Ok(CommandOutput::SigningKey(k)) => k,
                    _ => return Err(CpError::Unexpected),
                }
            }
        };
        let signing_key =
            Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|e| CpError::BadKey(e.to_string()))?;
        Ok(Arc::new(ControlPlane {
            config,
            store,
            signing_key,
            media_nodes: RwLock::new(BTreeMap::new()),
            metrics: CpMetrics::new(),
        }))
    }

    /// The HTTP routes: REST API, internal RPC, Raft, web client, metrics.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        api::router(self.clone())
    }

    /// Serves another registry's metrics at this node's `/metrics` too.
    pub fn include_metrics(&self, registry: Registry) {
        self.metrics
            .extra
            .write()
            .expect("lock poisoned")
            .push(registry);
    }

    /// Stops Raft cleanly, flushing storage.
    pub async fn shutdown(&self) -> Result<(), CpError> {
        self.store.shutdown().await?;
        Ok(())
    }

    fn register_media_node(&self, id: NodeId, ws_url: String) {
        tracing::info!(node = %id, %ws_url, "media node registered");
        self.media_nodes
            .write()
            .expect("lock poisoned")
            .insert(id, ws_url);
    }

    /// Placement: with one region and no load reports yet, the lowest id.
    fn pick_media_node(&self) -> Option<(NodeId, String)> {
        self.media_nodes
            .read()
            .expect("lock poisoned")
            .iter()
            .next()
            .map(|(id, url)| (*id, url.clone()))
    }
}
