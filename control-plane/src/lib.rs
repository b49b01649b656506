//! The Veche control plane: rooms, chat history and join authorization,
//! replicated with Raft (openraft) on embedded storage (redb), served over
//! HTTP (axum).
//!
//! [`ControlPlane::open`] brings up the store; [`ControlPlane::router`]
//! returns the HTTP routes, which the caller serves on a listener it bound
//! itself (so tests use port 0 and `veche serve` can share one listener
//! with a media node).

pub mod accounts;
pub mod admission;
pub mod api;
pub mod avatars;
pub mod blobs;
pub mod covers;
pub mod error;
pub mod leader;
pub mod media_registry;
pub mod oidc;
pub mod recording_export;
pub mod recording_files;
pub mod recording_header;
pub mod recording_retention;
mod recording_retention_run;
#[cfg(test)]
mod recording_s3_tests;
pub mod recording_store;
mod recording_wait_duty;
mod rejoin;
pub mod secret;
mod stats_duty;
pub mod store;
#[cfg(test)]
mod test_support;
mod web;
pub mod webhooks;

#[cfg(test)]
mod access_tests;

use error::ApiError;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use ring::signature::Ed25519KeyPair;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::{RaftStore, Store, StoreError};
use veche_protocol::ErrorCode;

/// How a node becomes part of a cluster the first time it starts. On every
/// later start the stored membership wins and this is ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// A cluster of this node alone (`veche serve`).
    Single,
    /// A cluster of these voters, id to base URL, this node included. Every
    /// initial member is started with the same list.
    Members(BTreeMap<u64, String>),
    /// No cluster of its own: wait until an operator adds this node to an
    /// existing cluster (`veche cluster add`).
    Join,
}

/// Control-plane settings. `Debug` prints every field but the cluster
/// secret.
#[derive(Clone)]
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
    /// How to form or join a cluster on first start.
    pub bootstrap: Bootstrap,
    /// Source address for connections to other control-plane nodes; `None`
    /// lets the OS choose.
    pub bind_ip: Option<IpAddr>,
    /// The public HTTP edge: room creation policy, trusted proxy, rate
    /// limits, framing.
    pub http: admission::HttpConfig,
    /// Single sign-on through an OpenID Connect provider; `None` (the
    /// default) offers none.
    pub oidc: Option<oidc::OidcConfig>,
    /// Where profile pictures are kept; `None` is `<data_dir>/avatars`.
    /// Every control-plane node of a cluster must see the same store.
    pub avatar_dir: Option<PathBuf>,
    /// Where room cover images are kept; `None` is `<data_dir>/covers`.
    /// Every control-plane node of a cluster must see the same store.
    pub cover_dir: Option<PathBuf>,
    /// Where recordings are kept, and for how long.
    pub recordings: RecordingsConfig,
    /// The TURN server each join token carries a credential of its own
    /// for; `None` without TURN. Its secret lives here only: media nodes
    /// hand on what the token carries. `Debug` redacts the secret.
    pub turn: Option<veche_protocol::turn::TurnConfig>,
}

/// Recordings' storage and retention. `Default`: the local directory
/// `<data_dir>/recordings`, kept [`DEFAULT_RETENTION_DAYS`] days.
///
/// [`DEFAULT_RETENTION_DAYS`]: veche_protocol::limits::recording::DEFAULT_RETENTION_DAYS
#[derive(Clone)]
pub struct RecordingsConfig {
    /// The store media nodes write segments to and this node reads,
    /// exports and deletes from; `None` is the local directory
    /// `<data_dir>/recordings`. Every node of a cluster must see the same
    /// store (S3, or a shared mount).
    pub objects: Option<Arc<dyn object_store::ObjectStore>>,
    /// Recordings stopped more than this many days ago are deleted by the
    /// leader, objects first; 0 keeps them forever.
    pub retention_days: u32,
}

impl Default for RecordingsConfig {
    fn default() -> Self {
        RecordingsConfig {
            objects: None,
            retention_days: veche_protocol::limits::recording::DEFAULT_RETENTION_DAYS,
        }
    }
}

impl std::fmt::Debug for RecordingsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingsConfig")
            .field("objects", &self.objects.as_ref().map(|o| o.to_string()))
            .field("retention_days", &self.retention_days)
            .finish()
    }
}

impl ControlPlaneConfig {
    /// A one-node control plane (`veche serve`'s shape) in `data_dir`,
    /// with every other setting at its default: no public URL, one-minute
    /// join tokens, the default HTTP edge, no SSO, avatars in the data
    /// directory. Embedders and tests set the fields they care about on
    /// the result, so a new setting is one default here, not an edit of
    /// every caller.
    pub fn single_node(data_dir: PathBuf, cluster_secret: String) -> Self {
        ControlPlaneConfig {
            node_id: 1,
            data_dir,
            advertise_addr: "http://127.0.0.1:9".into(),
            public_url: None,
            token_ttl: Duration::from_secs(60),
            cluster_secret,
            bootstrap: Bootstrap::Single,
            bind_ip: None,
            http: admission::HttpConfig::default(),
            oidc: None,
            avatar_dir: None,
            cover_dir: None,
            recordings: RecordingsConfig::default(),
            turn: None,
        }
    }
}

impl std::fmt::Debug for ControlPlaneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlaneConfig")
            .field("node_id", &self.node_id)
            .field("data_dir", &self.data_dir)
            .field("advertise_addr", &self.advertise_addr)
            .field("public_url", &self.public_url)
            .field("token_ttl", &self.token_ttl)
            .field("cluster_secret", &"<redacted>")
            .field("bootstrap", &self.bootstrap)
            .field("bind_ip", &self.bind_ip)
            .field("http", &self.http)
            .field("oidc", &self.oidc)
            .field("avatar_dir", &self.avatar_dir)
            .field("cover_dir", &self.cover_dir)
            .field("recordings", &self.recordings)
            .field("turn", &self.turn)
            .finish()
    }
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
    /// Participant-event reports from media nodes stored through this node
    /// (one Raft entry each).
    pub stats_reports: IntCounter,
    /// New participant events in those reports (repeats excluded).
    pub stats_events: IntCounter,
    /// Participant sessions the leader closed because their media node
    /// died without reporting the leaves.
    pub stats_sessions_closed_lost: IntCounter,
    /// Recording reports from media nodes stored through this node (one
    /// Raft entry each).
    pub recording_reports: IntCounter,
    /// Requests this node sent on to the leader, by kind.
    pub forwarded: IntCounterVec,
    /// Moderation actions and owner settings changes handled by this node,
    /// by action and outcome (`applied`, `unchanged`, `refused`, `failed`).
    pub moderation_actions: IntCounterVec,
    /// E2EE handshake steps (`RPC_E2EE`) handled by this node, by op
    /// (`key_package`, `commit`) and outcome (the reply, or `refused`,
    /// `failed`).
    pub e2ee_steps: IntCounterVec,
    /// 1 on the leader, 0 elsewhere (refreshed at scrape time).
    pub is_leader: IntGauge,
    /// Current Raft term (refreshed at scrape time).
    pub term: IntGauge,
    /// Last applied log index (refreshed at scrape time).
    pub last_applied: IntGauge,
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
        let g = |name: &str, help: &str| {
            let m = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let forwarded = IntCounterVec::new(
            Opts::new(
                "forwarded_to_leader_total",
                "Requests sent on to the Raft leader, by kind",
            ),
            &["kind"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(forwarded.clone()))
            .expect("unique metric");
        let moderation_actions = IntCounterVec::new(
            Opts::new(
                "moderation_actions_total",
                "Moderation actions and owner settings changes, by action and outcome",
            ),
            &["action", "outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(moderation_actions.clone()))
            .expect("unique metric");
        let e2ee_steps = IntCounterVec::new(
            Opts::new(
                "e2ee_steps_total",
                "E2EE handshake steps ordered for media nodes, by op and outcome",
            ),
            &["op", "outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(e2ee_steps.clone()))
            .expect("unique metric");
        CpMetrics {
            rooms_created: c("rooms_created_total", "Rooms created"),
            joins: c("join_tokens_issued_total", "Join tokens issued"),
            chat_messages: c("chat_messages_committed_total", "Chat messages committed"),
            stats_reports: c(
                "participant_event_reports_total",
                "Participant-event reports from media nodes stored (one Raft entry each)",
            ),
            stats_events: c(
                "participant_events_stored_total",
                "New participant events stored (repeats excluded)",
            ),
            stats_sessions_closed_lost: c(
                "participant_sessions_closed_node_lost_total",
                "Participant sessions closed because their media node died",
            ),
            recording_reports: c(
                "recording_reports_total",
                "Recording reports from media nodes stored (one Raft entry each)",
            ),
            forwarded,
            moderation_actions,
            e2ee_steps,
            is_leader: g("raft_is_leader", "1 if this node is the Raft leader"),
            term: g("raft_term", "Current Raft term"),
            last_applied: g("raft_last_applied_index", "Last applied log index"),
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
    /// The join-token signing key could neither be read nor created
    /// (no leader, or the stored key is unreadable).
    #[error("join-token signing key could not be set up: {0}")]
    SigningKey(String),
    /// A setting is unsafe or malformed (a short secret, a bad header
    /// value); the message names it and says how to fix it.
    #[error("{0}")]
    Config(String),
}

/// A running control-plane node.
pub struct ControlPlane {
    config: ControlPlaneConfig,
    store: RaftStore,
    /// The join-token signing key, loaded (or created through Raft) on
    /// first use: a node of a new cluster starts before there is a leader
    /// to create it with.
    signing_key: RwLock<Option<Arc<Ed25519KeyPair>>>,
    /// Media-node liveness; meaningful on the leader only.
    liveness: Mutex<media_registry::Liveness>,
    /// Held by the leader across a drain's check and write, so that
    /// concurrent drains cannot take the last nodes out of service.
    drain_lock: tokio::sync::Mutex<()>,
    /// Client for requests to other control-plane nodes.
    peers: leader::PeerClient,
    metrics: CpMetrics,
    /// The webhook endpoints, once [`ControlPlane::enable_webhooks`] ran.
    webhooks: std::sync::OnceLock<Vec<webhooks::WebhookEndpoint>>,
    /// Single sign-on, when `[oidc]` is configured.
    sso: Option<oidc::Sso>,
    /// Where recordings' segments and exports are (the store media nodes
    /// write to).
    recording_objects: Arc<dyn object_store::ObjectStore>,
    /// The one-file export (ffmpeg), one run at a time.
    exporter: recording_export::Exporter,
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

impl ControlPlane {
    /// Opens the store in `config.data_dir` and forms or joins a cluster as
    /// `config.bootstrap` says (first start only). Returns without waiting
    /// for a quorum, except in [`Bootstrap::Single`] mode, where the node
    /// waits to become leader so `veche serve` is usable the moment it
    /// says so.
    pub async fn open(config: ControlPlaneConfig) -> Result<Arc<Self>, CpError> {
        secret::check_secret("the cluster secret", &config.cluster_secret)
            .and_then(|()| config.http.validate())
            .map_err(CpError::Config)?;
        // Raft peers present the cluster secret too: the /raft routes sit
        // behind the same check as the rest of the internal API.
        let mut network = store::network::HttpNetworkFactory::new(config.node_id)
            .with_bearer_token(config.cluster_secret.clone());
        if let Some(ip) = config.bind_ip {
            network = network.with_local_address(ip);
        }
        let store = RaftStore::open_with_network(
            config.node_id,
            config.advertise_addr.clone(),
            &config.data_dir,
            store::default_raft_config(),
            network,
        )
        .await?;
        match &config.bootstrap {
            Bootstrap::Single => store.initialize_single_if_new().await?,
            Bootstrap::Members(m) => store.initialize_if_new(m.clone()).await?,
            Bootstrap::Join => {}
        }
        let sso = match &config.oidc {
            Some(o) => {
                Some(oidc::Sso::new(o.clone(), &config.cluster_secret).map_err(CpError::Config)?)
            }
            None => None,
        };
        let recording_objects = match &config.recordings.objects {
            Some(o) => o.clone(),
            None => recording_store::local(&config.data_dir.join("recordings"))
                .map_err(CpError::Config)?,
        };
        let cp = Arc::new(ControlPlane {
            sso,
            recording_objects,
            exporter: recording_export::Exporter::default(),
            peers: leader::PeerClient::new(&config.cluster_secret, config.bind_ip),
            config,
            store,
            signing_key: RwLock::new(None),
            liveness: Mutex::new(media_registry::Liveness::default()),
            drain_lock: tokio::sync::Mutex::new(()),
            metrics: CpMetrics::new(),
            webhooks: std::sync::OnceLock::new(),
        });
        tokio::spawn(stats_duty::run(Arc::downgrade(&cp)));
        tokio::spawn(recording_retention_run::run(Arc::downgrade(&cp)));
        tokio::spawn(recording_wait_duty::run(Arc::downgrade(&cp)));
        if cp.config.bootstrap == Bootstrap::Single {
            // Fail start-up loudly if the key cannot be made, rather than
            // on the first join.
            cp.signing_key()
                .await
                .map_err(|e| CpError::SigningKey(e.0.message))?;
        }
        Ok(cp)
    }

    /// The HTTP routes: REST API, internal RPC, Raft, web client, metrics.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        api::router(self.clone())
    }

    /// The store recordings are kept in.
    pub fn recording_objects(&self) -> Arc<dyn object_store::ObjectStore> {
        self.recording_objects.clone()
    }

    /// The one-file exporter (ffmpeg), which the recordings API also asks
    /// whether an export can be made here.
    pub fn exporter(&self) -> &recording_export::Exporter {
        &self.exporter
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

    /// The join-token signing key: this node's copy in memory if it has
    /// one, otherwise read through [`store::Store`] and, if the cluster has
    /// none yet, created through it. Concurrent first callers on different
    /// nodes converge on one key: the first committed wins. The key never
    /// changes once installed, so after the first call no request pays for
    /// it; that call comes with a join or a registration, which need the
    /// leader anyway.
    pub(crate) async fn signing_key(self: &Arc<Self>) -> Result<Arc<Ed25519KeyPair>, ApiError> {
        if let Some(k) = self.signing_key.read().expect("lock poisoned").as_ref() {
            return Ok(k.clone());
        }
        let store = self.replicated();
        let pkcs8 = match store.signing_key().await? {
            Some(k) => k,
            None => {
                let fresh = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
                store.init_signing_key(fresh.as_ref().to_vec()).await?
            }
        };
        let key = Arc::new(Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|e| {
            tracing::error!(error = %e, "stored join-token signing key is invalid");
            ApiError::new(ErrorCode::Internal, "the join-token signing key is invalid")
        })?);
        *self.signing_key.write().expect("lock poisoned") = Some(key.clone());
        Ok(key)
    }

    /// Whether this node believes it is the Raft leader: whether to serve
    /// a leader RPC or answer `NotLeader`. Leadership, like membership
    /// below, is Raft's own state, not a table; tables are reached through
    /// [`store::Store`] only.
    pub(crate) fn is_leader(&self) -> bool {
        self.store.is_leader()
    }

    /// Whether `id` is a member (voter or learner) of the control-plane
    /// cluster, as this node knows it.
    pub(crate) fn is_member(&self, id: u64) -> bool {
        self.store.member_addrs().contains_key(&id)
    }

    /// The routes Raft peers send their RPCs to.
    pub(crate) fn raft_routes(&self) -> axum::Router {
        store::raft_router(self.store.raft().clone())
    }

    fn refresh_raft_gauges(&self) {
        let m = self.store.raft().metrics().borrow().clone();
        self.metrics
            .is_leader
            .set(i64::from(m.state == openraft::ServerState::Leader));
        self.metrics.term.set(m.current_term as i64);
        self.metrics
            .last_applied
            .set(m.last_applied.map_or(0, |l| l.index) as i64);
    }
}
