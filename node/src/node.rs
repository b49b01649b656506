//! The media node as a whole: configuration, rooms, registration with the
//! control plane, and the HTTP routes (signalling WebSocket, metrics).

use crate::cp_client::ControlPlaneClient;
use crate::metrics::Metrics;
use crate::peer::RtcConfig;
use crate::room::Room;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tracing::{info, warn};
use veche_protocol::rpc::{Heartbeat, RegisterNode, HEARTBEAT_INTERVAL_MS};
use veche_protocol::signal::{IceServer, RoomInfo, MAX_FRAME_BYTES};
use veche_protocol::token::JoinClaims;
use veche_protocol::{NodeId, RoomId};

/// Path of the signalling WebSocket.
pub const WS_PATH: &str = "/media/ws";
/// Path of the node's Prometheus metrics.
pub const METRICS_PATH: &str = "/media/metrics";

/// A media node's settings.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id in the cluster.
    pub node_id: NodeId,
    /// Base URLs of control-plane nodes, e.g. `http://127.0.0.1:8080`. One
    /// is enough (the node learns the others when it registers); listing
    /// several lets it start while one is down.
    pub control_plane_urls: Vec<String>,
    /// Region label used for placement; empty for a single-region cluster.
    pub region: String,
    /// Participants this node accepts; 0 means unlimited.
    pub capacity: u32,
    /// Shared secret for the control plane's internal RPC.
    pub cluster_secret: String,
    /// The signalling URL browsers are sent to: absolute
    /// (`wss://media1.example.com/media/ws`) or relative to the control
    /// plane's origin (`/media/ws`) when both share one listener.
    pub public_ws_url: String,
    /// Where media sockets bind.
    pub rtc: RtcConfig,
    /// How long a participant whose connection dropped keeps their seat,
    /// shown as "reconnecting", before others see them leave.
    pub reconnect_grace: Duration,
    /// STUN/TURN servers handed to browsers.
    pub ice_servers: Vec<IceServer>,
}

pub(crate) struct Shared {
    pub(crate) config: NodeConfig,
    pub(crate) cp: ControlPlaneClient,
    token_key: RwLock<Option<Vec<u8>>>,
    rooms: Mutex<HashMap<RoomId, Arc<Room>>>,
    pub(crate) metrics: Metrics,
}

impl Shared {
    pub(crate) fn token_key(&self) -> Option<Vec<u8>> {
        self.token_key.read().expect("lock poisoned").clone()
    }

    /// The room a token names, created on first use.
    pub(crate) fn room_for(&self, claims: &JoinClaims) -> Arc<Room> {
        let mut rooms = self.rooms.lock().expect("lock poisoned");
        let room = rooms.entry(claims.room_id).or_insert_with(|| {
            self.metrics.rooms.inc();
            Room::new(
                RoomInfo {
                    id: claims.room_id,
                    slug: claims.room_slug.clone(),
                    name: claims.room_name.clone(),
                },
                self.metrics.clone(),
            )
        });
        room.clone()
    }

    /// Forgets a room once nobody is in it.
    pub(crate) fn release_room(&self, room: &Arc<Room>) {
        let mut rooms = self.rooms.lock().expect("lock poisoned");
        if room.is_empty() {
            if let Some(r) = rooms.get(&room.id()) {
                if Arc::ptr_eq(r, room) {
                    rooms.remove(&room.id());
                    self.metrics.rooms.dec();
                }
            }
        }
    }
}

/// A media node. Cheap to clone.
#[derive(Clone)]
pub struct MediaNode {
    shared: Arc<Shared>,
}

impl MediaNode {
    /// A node that is not registered yet: it refuses joins with
    /// `unavailable` until [`MediaNode::register`] succeeds.
    pub fn new(config: NodeConfig) -> Self {
        let cp = ControlPlaneClient::new(
            config.control_plane_urls.clone(),
            config.cluster_secret.clone(),
        );
        MediaNode {
            shared: Arc::new(Shared {
                config,
                cp,
                token_key: RwLock::new(None),
                rooms: Mutex::new(HashMap::new()),
                metrics: Metrics::new(),
            }),
        }
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Registers with the control plane, retrying with backoff until it
    /// succeeds or `deadline` passes. The control plane may still be
    /// electing a leader when the node starts.
    pub async fn register(
        &self,
        deadline: Duration,
    ) -> Result<(), veche_protocol::error::ErrorBody> {
        let start = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.register_once().await {
                Ok(()) => return Ok(()),
                Err(e) if start.elapsed() + backoff < deadline => {
                    warn!("registration failed, retrying: {}", e.message);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn register_once(&self) -> Result<(), veche_protocol::error::ErrorBody> {
        let c = &self.shared.config;
        let req = RegisterNode {
            node_id: c.node_id,
            ws_url: c.public_ws_url.clone(),
            region: c.region.clone(),
            capacity: c.capacity,
            relay_addr: None,
        };
        let reply = self.shared.cp.register(&req).await?;
        *self.shared.token_key.write().expect("lock poisoned") = Some(reply.token_public_key);
        info!(node = %req.node_id, control_planes = ?self.shared.cp.bases(), "registered with the control plane");
        Ok(())
    }

    /// Sends a heartbeat every [`HEARTBEAT_INTERVAL_MS`] until `shutdown`
    /// resolves. A failed beat is retried at the next tick against the
    /// next control-plane node; a reply saying the cluster does not know
    /// this node makes it register again.
    pub async fn heartbeat_loop(&self, shutdown: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(Duration::from_millis(HEARTBEAT_INTERVAL_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            let room_ids: Vec<RoomId> = self
                .shared
                .rooms
                .lock()
                .expect("lock poisoned")
                .keys()
                .copied()
                .collect();
            let beat = Heartbeat {
                node_id: self.shared.config.node_id,
                participants: self.shared.metrics.participants.get().max(0) as u32,
                rooms: room_ids.len() as u32,
                room_ids,
            };
            match self.shared.cp.heartbeat(&beat).await {
                Ok(reply) if !reply.registered => {
                    warn!("the control plane does not know this node; registering again");
                    if let Err(e) = self.register_once().await {
                        warn!("re-registration failed: {}", e.message);
                    }
                }
                Ok(_) => {
                    if failing {
                        info!("heartbeats reach the control plane again");
                        failing = false;
                    }
                }
                Err(e) => {
                    if !failing {
                        warn!("heartbeat failed: {}", e.message);
                        failing = true;
                    }
                }
            }
        }
    }

    /// The node's HTTP routes: the signalling WebSocket and metrics.
    pub fn router(&self) -> Router {
        Router::new()
            .route(WS_PATH, get(ws_upgrade))
            .route(METRICS_PATH, get(metrics))
            .with_state(self.shared.clone())
    }
}

async fn ws_upgrade(State(node): State<Arc<Shared>>, ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.max_message_size(MAX_FRAME_BYTES + 1024)
        .max_frame_size(MAX_FRAME_BYTES + 1024)
        .on_upgrade(move |socket| crate::session::run(node, socket))
}

async fn metrics(State(node): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        node.metrics.render(),
    )
}

impl Room {
    /// True when the room has no participants.
    pub fn is_empty(&self) -> bool {
        !self.has_members()
    }
}
