//! The media node as a whole: configuration, rooms, registration with the
//! control plane, and the HTTP routes (signalling WebSocket, metrics).

use crate::cp_client::ControlPlaneClient;
use crate::metrics::Metrics;
use crate::peer::RtcConfig;
use crate::relay::{Relay, RelayEvent};
use crate::relay_tls::RelayTls;
use crate::room::Room;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};
use veche_protocol::relay::RelayMsg;
use veche_protocol::rpc::{Heartbeat, RegisterNode, HEARTBEAT_INTERVAL_MS};
use veche_protocol::signal::{IceServer, RoomInfo, ServerMessage, MAX_FRAME_BYTES};
use veche_protocol::token::JoinClaims;
use veche_protocol::{NodeId, RoomId};

/// Path of the signalling WebSocket.
pub const WS_PATH: &str = "/media/ws";
/// Path of the node's Prometheus metrics (defined in the protocol crate,
/// which the load harness reads it from).
pub const METRICS_PATH: &str = veche_protocol::admin::MEDIA_METRICS_PATH;

/// How long a drain waits for participants to move before the node exits
/// anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(60);

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
    relay: OnceLock<Relay>,
    /// Set when the control plane says an operator is draining this node.
    draining: Mutex<Option<tokio::time::Instant>>,
    /// Woken whenever a participant leaves, so a drain notices the end.
    left: tokio::sync::Notify,
}

impl Shared {
    pub(crate) fn token_key(&self) -> Option<Vec<u8>> {
        self.token_key.read().expect("lock poisoned").clone()
    }

    /// The room a token names, created on first use, and linked with the
    /// other nodes the token says host it.
    pub(crate) fn room_for(&self, claims: &JoinClaims) -> Arc<Room> {
        let room = {
            let mut rooms = self.rooms.lock().expect("lock poisoned");
            rooms
                .entry(claims.room_id)
                .or_insert_with(|| {
                    self.metrics.rooms.inc();
                    Room::new(
                        RoomInfo {
                            id: claims.room_id,
                            slug: claims.room_slug.clone(),
                            name: claims.room_name.clone(),
                        },
                        self.metrics.clone(),
                        self.relay.get().cloned(),
                    )
                })
                .clone()
        };
        for peer in &claims.room_nodes {
            if peer.node_id != self.config.node_id {
                room.link_peer(peer);
            }
        }
        room
    }

    /// Forgets a room once nobody is in it here.
    pub(crate) fn release_room(&self, room: &Arc<Room>) {
        let released = {
            let mut rooms = self.rooms.lock().expect("lock poisoned");
            if room.is_empty() && rooms.get(&room.id()).is_some_and(|r| Arc::ptr_eq(r, room)) {
                rooms.remove(&room.id());
                self.metrics.rooms.dec();
                true
            } else {
                false
            }
        };
        if released {
            room.close_links();
        }
        self.left.notify_waiters();
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.lock().expect("lock poisoned").is_some()
    }

    fn room(&self, id: RoomId) -> Option<Arc<Room>> {
        self.rooms.lock().expect("lock poisoned").get(&id).cloned()
    }

    fn all_rooms(&self) -> Vec<Arc<Room>> {
        self.rooms
            .lock()
            .expect("lock poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// Handles what other nodes send, in order.
    async fn relay_events(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<RelayEvent>) {
        while let Some(ev) = rx.recv().await {
            match ev {
                RelayEvent::Message { from, msg } => {
                    let Some(room_id) = msg.room() else { continue };
                    match self.room(room_id) {
                        Some(room) => room.on_relay(from, msg),
                        None => {
                            let Some(relay) = self.relay.get() else {
                                continue;
                            };
                            match msg {
                                // Not (or no longer) hosted here: say so,
                                // so the sender stops counting on this node.
                                RelayMsg::RoomState { .. } | RelayMsg::Upsert { .. } => {
                                    relay.send(from, &RelayMsg::RoomClosed { room: room_id })
                                }
                                // The room went when its last participant
                                // here left; a relay may outlive it by a
                                // moment.
                                RelayMsg::Unsubscribe { track, .. } => relay.stop_leg(from, &track),
                                _ => {}
                            }
                        }
                    }
                }
                RelayEvent::LinkLost(peer) => {
                    if let Some(relay) = self.relay.get() {
                        relay.forget_peer(peer);
                    }
                    for room in self.all_rooms() {
                        let waiting = room.node_lost(peer);
                        if waiting.is_empty() {
                            continue;
                        }
                        info!(%peer, room = %room.id(), waiting = waiting.len(), "media node lost; its participants are reconnecting");
                        let grace = self.config.reconnect_grace;
                        tokio::spawn(async move {
                            tokio::time::sleep(grace).await;
                            for id in waiting {
                                room.expire_remote(peer, &id);
                            }
                        });
                    }
                }
            }
        }
    }

    /// Tells every participant here to move to another node.
    fn start_drain(&self) {
        {
            let mut d = self.draining.lock().expect("lock poisoned");
            if d.is_some() {
                return;
            }
            *d = Some(tokio::time::Instant::now());
        }
        let rooms = self.all_rooms();
        info!(
            rooms = rooms.len(),
            "draining: asking every participant to move"
        );
        for room in rooms {
            room.broadcast(ServerMessage::Move {
                reason: "this media node is being taken out of service".into(),
            });
        }
        self.left.notify_waiters();
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
                relay: OnceLock::new(),
                draining: Mutex::new(None),
                left: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Starts the QUIC relay endpoint on an already-bound UDP socket, so
    /// rooms on this node can span other nodes. Call before
    /// [`MediaNode::register`]: the registration carries `advertise`, the
    /// `host:port` other nodes dial.
    pub fn enable_relay(
        &self,
        socket: std::net::UdpSocket,
        tls: RelayTls,
        advertise: String,
    ) -> std::io::Result<Relay> {
        let (relay, events) = Relay::start(
            self.shared.config.node_id,
            socket,
            tls,
            advertise,
            self.shared.metrics.clone(),
        )?;
        if self.shared.relay.set(relay.clone()).is_err() {
            return Err(std::io::Error::other("the relay is already enabled"));
        }
        tokio::spawn(self.shared.clone().relay_events(events));
        Ok(relay)
    }

    /// Resolves once an operator's drain is complete: nobody is left on
    /// this node, or [`DRAIN_DEADLINE`] passed since it began (clients too
    /// old to understand `move` must not keep the node up forever). The
    /// process exits then.
    pub async fn drained(&self) {
        loop {
            let notified = self.shared.left.notified();
            let started = *self.shared.draining.lock().expect("lock poisoned");
            if let Some(t) = started {
                let left = self.shared.metrics.participants.get();
                if left <= 0 || t.elapsed() >= DRAIN_DEADLINE {
                    info!(participants_left = left, "drain complete");
                    return;
                }
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            } else {
                notified.await;
            }
        }
    }

    /// Closes relay links, so peers notice at once rather than after the
    /// idle timeout.
    pub fn close_relay(&self) {
        if let Some(r) = self.shared.relay.get() {
            r.close();
        }
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
            relay_addr: self.shared.relay.get().map(|r| r.advertise().to_owned()),
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
                Ok(reply) => {
                    if failing {
                        info!("heartbeats reach the control plane again");
                        failing = false;
                    }
                    for rn in &reply.room_nodes {
                        if let Some(room) = self.shared.room(rn.room_id) {
                            for peer in &rn.nodes {
                                if peer.node_id != self.shared.config.node_id {
                                    room.link_peer(peer);
                                }
                            }
                        }
                    }
                    if reply.draining {
                        self.shared.start_drain();
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
