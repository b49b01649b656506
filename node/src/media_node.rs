//! The media node as a process: registration and heartbeats with the
//! control plane, draining, and the HTTP routes (signalling WebSocket,
//! metrics). This is the top of the crate: it starts sessions
//! ([`crate::session`]) on the state they share ([`crate::node`]).

use crate::cp_client::ControlPlaneClient;
use crate::events::ReportSchedule;
use crate::metrics::Metrics;
use crate::node::{NodeConfig, Shared};
use crate::relay::Relay;
use crate::relay_tls::RelayTls;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;
use tracing::{info, warn};
use veche_protocol::rpc::{Heartbeat, RegisterNode, HEARTBEAT_INTERVAL_MS};
use veche_protocol::signal::MAX_FRAME_BYTES;
use veche_protocol::RoomId;

/// Path of the signalling WebSocket.
pub const WS_PATH: &str = "/media/ws";
/// Path of the node's Prometheus metrics (defined in the protocol crate,
/// which the load harness reads it from).
pub const METRICS_PATH: &str = veche_protocol::admin::MEDIA_METRICS_PATH;

/// How long a drain waits for participants to move before the node exits
/// anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(60);

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
        let metrics = Metrics::new();
        MediaNode {
            shared: Arc::new(Shared {
                config,
                cp,
                token_key: RwLock::new(None),
                rooms: Mutex::new(HashMap::new()),
                relay: OnceLock::new(),
                draining: Mutex::new(None),
                left: tokio::sync::Notify::new(),
                events: crate::events::EventSink::new(&metrics.registry),
                recordings: crate::recorder::reporter::Reporter::default(),
                peers: Default::default(),
                metrics,
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
    ///
    /// The participant-event reporter ([`MediaNode::report_events`]) runs
    /// alongside, for as long as the heartbeats do.
    pub async fn heartbeat_loop(&self, shutdown: impl std::future::Future<Output = ()>) {
        let reporter = tokio::spawn({
            let node = self.clone();
            async move { node.report_events().await }
        });
        let _stop_reporter = AbortOnDrop(reporter);
        // Recording reports go out as long as the heartbeats do, like
        // participant events.
        let _stop_recording_reports = self.shared.config.recordings.as_ref().map(|storage| {
            let reporter = self.shared.recordings.clone();
            let sink: Arc<dyn crate::recorder::reporter::ReportSink> =
                Arc::new(self.shared.cp.clone());
            AbortOnDrop(tokio::spawn(reporter.run(sink, storage.spool_dir.clone())))
        });
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
                    // A newer policy than ours (changed over REST, or a
                    // relay message we missed): fetch it.
                    for (room_id, version) in &reply.policy_versions {
                        if let Some(room) = self.shared.room(*room_id) {
                            if room.policy_version().is_none_or(|mine| mine < *version) {
                                let shared = self.shared.clone();
                                tokio::spawn(async move {
                                    // A failure is logged; the next beat retries.
                                    let _ = crate::moderation::fetch_policy(&shared, &room).await;
                                });
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

    /// Sends the participant events rooms queue ([`crate::events`]) to the
    /// control plane, a batch at a time, each batch until acknowledged: at
    /// most one report per [`ReportSchedule`] interval, so the events of an
    /// interval share one report and one Raft entry. The first report of a
    /// run goes out even if empty: it tells the control plane the node
    /// restarted, which closes the sessions of its previous run.
    pub async fn report_events(&self) {
        let sink = &self.shared.events;
        let mut schedule = ReportSchedule::default();
        let mut announced = false;
        let mut failing = false;
        loop {
            // A wake-up may be stale (its event went out with the last
            // report): only a queue with something in it is worth a report.
            while announced && !sink.has_pending() {
                sink.queued().await;
            }
            let report = sink.next_report(self.shared.config.node_id);
            let wait = match self.shared.cp.node_events(&report).await {
                Ok(reply) => {
                    announced = true;
                    sink.acknowledged(reply.stored_through);
                    if failing {
                        info!("participant events reach the control plane again");
                        failing = false;
                    }
                    schedule.after(true)
                }
                Err(e) => {
                    if !failing {
                        warn!(
                            pending = report.events.len(),
                            "reporting participant events failed: {}", e.message
                        );
                        failing = true;
                    }
                    schedule.after(false)
                }
            };
            tokio::time::sleep(wait).await;
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

/// Aborts a task when dropped, so a loop's helper ends with the loop.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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
