//! A room on this node: the I/O-free [`RoomCore`] plus the handles needed
//! to carry out its actions.
//!
//! Every action is a non-blocking channel send, so actions run while the
//! room lock is held. That keeps the order in which clients see events
//! equal to the order in which the core decided them: a participant's
//! `joined` snapshot is queued before any later delta.

use crate::core::{Action, CoreError, RoomCore};
use crate::peer::PeerCmd;
use crate::track::UpTrack;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use veche_protocol::signal::{LeaveReason, MediaState, PresenceStatus, RoomInfo, ServerMessage, TrackInfo};
use veche_protocol::{ParticipantId, RoomId, TrackId, UnixMillis};

/// The edge-side handle of one participant.
#[derive(Clone)]
pub struct PeerHandle {
    /// Messages to the participant's WebSocket.
    pub out: mpsc::UnboundedSender<ServerMessage>,
    /// Commands to the participant's connection actor.
    pub cmd: mpsc::UnboundedSender<PeerCmd>,
}

struct Inner {
    core: RoomCore,
    peers: HashMap<ParticipantId, PeerHandle>,
    tracks: HashMap<TrackId, Arc<UpTrack>>,
}

/// One room hosted (at least partly) on this node.
pub struct Room {
    /// The room as the token described it.
    pub info: RoomInfo,
    inner: Mutex<Inner>,
}

impl Room {
    /// An empty room.
    pub fn new(info: RoomInfo) -> Arc<Self> {
        Arc::new(Room {
            info,
            inner: Mutex::new(Inner {
                core: RoomCore::new(),
                peers: HashMap::new(),
                tracks: HashMap::new(),
            }),
        })
    }

    /// The room's id.
    pub fn id(&self) -> RoomId {
        self.info.id
    }

    fn run(inner: &mut Inner, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Broadcast { msg, except } => {
                    for (id, p) in &inner.peers {
                        if Some(id) != except.as_ref() {
                            let _ = p.out.send(msg.clone());
                        }
                    }
                }
                Action::Subscribe { subscriber, track } => {
                    if let (Some(p), Some(t)) = (inner.peers.get(&subscriber), inner.tracks.get(&track)) {
                        let _ = p.cmd.send(PeerCmd::Subscribe(t.clone()));
                    }
                }
                Action::Unsubscribe { subscriber, track } => {
                    if let Some(p) = inner.peers.get(&subscriber) {
                        let _ = p.cmd.send(PeerCmd::Unsubscribe(track));
                    }
                }
            }
        }
    }

    /// Adds a participant and queues their `joined` snapshot.
    pub fn join(
        &self,
        id: ParticipantId,
        display_name: String,
        media: MediaState,
        handle: PeerHandle,
        now_ms: UnixMillis,
        ice_servers: Vec<veche_protocol::signal::IceServer>,
    ) -> Result<(), CoreError> {
        let mut inner = self.inner.lock().expect("room lock poisoned");
        let actions = inner.core.join(id.clone(), display_name, media, now_ms)?;
        let _ = handle.out.send(ServerMessage::Joined {
            participant_id: id.clone(),
            room: self.info.clone(),
            participants: inner.core.snapshot(),
            ice_servers,
        });
        inner.peers.insert(id, handle);
        Self::run(&mut inner, actions);
        Ok(())
    }

    /// Registers a newly received track and subscribes everyone else.
    pub fn publish(&self, track: Arc<UpTrack>) -> Result<(), CoreError> {
        let mut inner = self.inner.lock().expect("room lock poisoned");
        inner.tracks.insert(track.info.id.clone(), track.clone());
        match inner.core.publish(&track.publisher, track.info.clone()) {
            Ok(actions) => {
                Self::run(&mut inner, actions);
                Ok(())
            }
            Err(e) => {
                inner.tracks.remove(&track.info.id);
                Err(e)
            }
        }
    }

    /// Removes a track from everyone.
    pub fn unpublish(&self, track: &TrackId) {
        let mut inner = self.inner.lock().expect("room lock poisoned");
        let actions = inner.core.unpublish(track);
        Self::run(&mut inner, actions);
        inner.tracks.remove(track);
    }

    /// Tracks `publisher` publishes whose browser-side msid is not in
    /// `still_sending`.
    pub fn stale_tracks(
        &self,
        publisher: &ParticipantId,
        still_sending: &std::collections::BTreeSet<String>,
    ) -> Vec<TrackId> {
        let inner = self.inner.lock().expect("room lock poisoned");
        inner
            .tracks
            .values()
            .filter(|t| &t.publisher == publisher && !still_sending.contains(&t.remote_msid))
            .map(|t| t.info.id.clone())
            .collect()
    }

    /// Removes a participant. Returns true if the room is now empty.
    pub fn leave(&self, id: &ParticipantId, reason: LeaveReason) -> bool {
        let mut inner = self.inner.lock().expect("room lock poisoned");
        let actions = inner.core.leave(id, reason);
        Self::run(&mut inner, actions);
        inner.peers.remove(id);
        inner.tracks.retain(|_, t| &t.publisher != id);
        inner.core.is_empty()
    }

    /// Updates device state.
    pub fn set_media(&self, id: &ParticipantId, media: MediaState) -> Result<(), CoreError> {
        let mut inner = self.inner.lock().expect("room lock poisoned");
        let actions = inner.core.set_media(id, media)?;
        Self::run(&mut inner, actions);
        Ok(())
    }

    /// Updates connection status.
    pub fn set_status(&self, id: &ParticipantId, status: PresenceStatus) -> Result<(), CoreError> {
        let mut inner = self.inner.lock().expect("room lock poisoned");
        let actions = inner.core.set_status(id, status)?;
        Self::run(&mut inner, actions);
        Ok(())
    }

    /// Sends a message to everyone in the room.
    pub fn broadcast(&self, msg: ServerMessage) {
        let mut inner = self.inner.lock().expect("room lock poisoned");
        Self::run(&mut inner, vec![Action::Broadcast { msg, except: None }]);
    }

    /// Whether `id` is (still) in the room.
    pub fn contains(&self, id: &ParticipantId) -> bool {
        let inner = self.inner.lock().expect("room lock poisoned");
        inner.core.participant(id).is_some()
    }

    /// Current participant's published track infos (for tests and logs).
    pub fn track_info(&self, id: &TrackId) -> Option<TrackInfo> {
        let inner = self.inner.lock().expect("room lock poisoned");
        inner.tracks.get(id).map(|t| t.info.clone())
    }
}

impl Room {
    /// True while anyone is in the room.
    pub fn has_members(&self) -> bool {
        !self.inner.lock().expect("room lock poisoned").core.is_empty()
    }
}
