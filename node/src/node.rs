//! What every session on a media node shares: its configuration, the
//! rooms it hosts, its control-plane client and relay, and the handling of
//! what other nodes send. The process-level pieces (registration,
//! heartbeats, HTTP routes) are in [`crate::media_node`], above this.

use crate::cp_client::ControlPlaneClient;
use crate::events::EventSink;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::peer::RtcConfig;
use crate::relay::{Relay, RelayEvent};
use crate::room::Room;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, Instrument};
use veche_protocol::error::ErrorBody;
use veche_protocol::relay::RelayMsg;
use veche_protocol::signal::{IceServer, RoomInfo, ServerMessage};
use veche_protocol::token::JoinClaims;
use veche_protocol::{NodeId, RoomId};

/// A media node's settings. `Debug` is written by hand so that the
/// cluster secret never reaches a log.
#[derive(Clone)]
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
    /// STUN servers handed to browsers as they are. They carry no
    /// credentials: TURN servers, with a credential for the one
    /// participant, come in each join token from the control plane.
    pub ice_servers: Vec<IceServer>,
    /// How long a room's lobby may have waiters and nobody who moderates
    /// present (on any node) before the node asks the control plane to
    /// let them in. Default
    /// `veche_protocol::limits::moderation::LOBBY_UNATTENDED_MS`; tests
    /// shorten it.
    pub lobby_unattended: Duration,
    /// Where recordings go: the object store segments are uploaded to and
    /// the local spool directory the muxer writes to. `None` on a node
    /// that cannot record (a room's recording is then skipped here, logged
    /// and counted in `veche_node_recordings_refused_total`).
    pub recordings: Option<crate::recorder::RecordingStorage>,
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("node_id", &self.node_id)
            .field("control_plane_urls", &self.control_plane_urls)
            .field("region", &self.region)
            .field("capacity", &self.capacity)
            .field("cluster_secret", &"<redacted>")
            .field("public_ws_url", &self.public_ws_url)
            .field("rtc", &self.rtc)
            .field("reconnect_grace", &self.reconnect_grace)
            .field("ice_servers", &self.ice_servers)
            .field("lobby_unattended", &self.lobby_unattended)
            .field(
                "recordings",
                &self.recordings.as_ref().map(|r| &r.spool_dir),
            )
            .finish()
    }
}

/// Wall-clock time in Unix milliseconds: what tokens, chat and moderation
/// requests carry. Decisions take it as an input.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The node's state, shared by its sessions and background tasks.
pub(crate) struct Shared {
    pub(crate) config: NodeConfig,
    pub(crate) cp: ControlPlaneClient,
    pub(crate) token_key: RwLock<Option<Vec<u8>>>,
    pub(crate) rooms: Mutex<HashMap<RoomId, Arc<Room>>>,
    pub(crate) metrics: Metrics,
    pub(crate) relay: OnceLock<Relay>,
    /// Set when the control plane says an operator is draining this node.
    pub(crate) draining: Mutex<Option<tokio::time::Instant>>,
    /// Woken whenever a participant leaves, so a drain notices the end.
    pub(crate) left: tokio::sync::Notify,
    /// Participant events for the control plane's statistics.
    pub(crate) events: EventSink,
    /// Reports of recorded segments for the control plane.
    pub(crate) recordings: crate::recorder::reporter::Reporter,
    /// Peer connections a resumed session may take back (`resume.rs`).
    pub(crate) peers: crate::resume::PeerRegistry,
}

impl Shared {
    /// Keeps a dropped participant's seat (and its peer connection, which
    /// a resume with `keep_media` takes back) for the grace period,
    /// showing others "reconnecting". A resume within the grace period
    /// takes the seat over; `expire` then does nothing.
    pub(crate) fn keep_seat(
        self: &Arc<Self>,
        room: &Arc<Room>,
        pid: &veche_protocol::ParticipantId,
        generation: u64,
    ) {
        if !room.dropped(pid, generation) {
            return;
        }
        let grace = self.config.reconnect_grace;
        let (room, node, pid) = (room.clone(), self.clone(), pid.clone());
        tokio::spawn(
            async move {
                tokio::time::sleep(grace).await;
                if room.expire(&pid, generation) {
                    info!("did not come back within {grace:?}; removed");
                }
                node.release_room(&room);
            }
            .in_current_span(),
        );
    }

    /// Counts a refused request (`signalling_errors_total`, by code) and
    /// tells the client, as the `error` reply to its `request`. For the
    /// tasks that commit a session's chat and moderation to the control
    /// plane, whose refusals arrive after the frame was read.
    pub(crate) fn reply_error(
        &self,
        out: &Outbox,
        error: ErrorBody,
        request: &str,
        client_msg_id: Option<String>,
    ) {
        self.metrics
            .signalling_errors
            .with_label_values(&[error.code.as_str()])
            .inc();
        let _ = out.send(ServerMessage::Error {
            error,
            request: Some(request.to_owned()),
            client_msg_id,
        });
    }

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
                    Room::with_events(
                        RoomInfo {
                            id: claims.room_id,
                            slug: claims.room_slug.clone(),
                            name: claims.room_name.clone(),
                            e2ee: claims.e2ee,
                        },
                        self.metrics.clone(),
                        self.relay.get().cloned(),
                        self.events.clone(),
                    )
                })
                .clone()
        };
        room.enable_recording(self.recorder_env());
        for peer in &claims.room_nodes {
            if peer.node_id != self.config.node_id {
                room.link_peer(peer);
            }
        }
        room
    }

    /// What a room needs to record (its policy decides when).
    pub(crate) fn recorder_env(&self) -> crate::recorder::room::RecorderEnv {
        crate::recorder::room::RecorderEnv {
            node_id: self.config.node_id,
            storage: self.config.recordings.clone(),
            reporter: self.recordings.clone(),
            metrics: self.metrics.recorder.clone(),
            restart_grace: crate::recorder::file::KEYFRAME_WAIT,
        }
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

    pub(crate) fn room(&self, id: RoomId) -> Option<Arc<Room>> {
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
    pub(crate) async fn relay_events(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<RelayEvent>) {
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
    pub(crate) fn start_drain(&self) {
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
