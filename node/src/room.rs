//! A room on this node: the I/O-free [`RoomCore`] plus the handles needed
//! to carry out its actions.
//!
//! Every action is a non-blocking channel send, so actions run while the
//! room lock is held. That keeps the order in which clients see events
//! equal to the order in which the core decided them: a participant's
//! `joined` snapshot is queued before any later delta.
//!
//! Each seat remembers which session (generation) currently owns it. When a
//! participant resumes after a dropped connection, the new session takes
//! the seat, and anything the old session does afterwards (noticing its
//! socket died, its grace timer firing) is ignored.

use crate::core::{Action, CoreError, RoomCore};
use crate::peer::PeerCmd;
use crate::track::UpTrack;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use veche_protocol::signal::{
    IceServer, LeaveReason, MediaState, PresenceStatus, RoomInfo, ServerMessage,
};
use veche_protocol::{ParticipantId, RoomId, TrackId, UnixMillis};

/// The edge-side handle of one participant's session.
#[derive(Clone)]
pub struct PeerHandle {
    /// Messages to the participant's WebSocket.
    pub out: mpsc::UnboundedSender<ServerMessage>,
    /// Commands to the participant's connection actor.
    pub cmd: mpsc::UnboundedSender<PeerCmd>,
}

struct Seat {
    handle: PeerHandle,
    generation: u64,
    resume_token: String,
}

struct Inner {
    core: RoomCore,
    seats: HashMap<ParticipantId, Seat>,
    tracks: HashMap<TrackId, Arc<UpTrack>>,
}

/// Why a resume was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// The seat is gone (grace period over, or never existed here).
    #[error("that session has ended; join again")]
    NoSeat,
    /// The resume token does not match.
    #[error("resume token does not match")]
    BadToken,
}

/// One room hosted (at least partly) on this node.
pub struct Room {
    /// The room as the token described it.
    pub info: RoomInfo,
    metrics: crate::metrics::Metrics,
    inner: Mutex<Inner>,
    generations: AtomicU64,
}

fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Room {
    /// An empty room.
    pub fn new(info: RoomInfo, metrics: crate::metrics::Metrics) -> Arc<Self> {
        Arc::new(Room {
            info,
            metrics,
            inner: Mutex::new(Inner {
                core: RoomCore::new(),
                seats: HashMap::new(),
                tracks: HashMap::new(),
            }),
            generations: AtomicU64::new(1),
        })
    }

    /// The room's id.
    pub fn id(&self) -> RoomId {
        self.info.id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("room lock poisoned")
    }

    /// Publishes the per-room gauges; called after every change.
    fn observe(&self, inner: &Inner) {
        let room = self.info.id.to_string();
        let participants = inner.core.snapshot().len() as i64;
        if participants == 0 {
            let _ = self.metrics.room_participants.remove_label_values(&[&room]);
            let _ = self.metrics.room_tracks.remove_label_values(&[&room]);
        } else {
            self.metrics
                .room_participants
                .with_label_values(&[&room])
                .set(participants);
            self.metrics
                .room_tracks
                .with_label_values(&[&room])
                .set(inner.tracks.len() as i64);
        }
    }

    fn run(inner: &mut Inner, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Broadcast { msg, except } => {
                    for (id, seat) in &inner.seats {
                        if Some(id) != except.as_ref() {
                            let _ = seat.handle.out.send(msg.clone());
                        }
                    }
                }
                Action::Subscribe { subscriber, track } => {
                    if let (Some(seat), Some(t)) =
                        (inner.seats.get(&subscriber), inner.tracks.get(&track))
                    {
                        let _ = seat.handle.cmd.send(PeerCmd::Subscribe(t.clone()));
                    }
                }
                Action::Unsubscribe { subscriber, track } => {
                    if let Some(seat) = inner.seats.get(&subscriber) {
                        let _ = seat.handle.cmd.send(PeerCmd::Unsubscribe(track));
                    }
                }
            }
        }
    }

    /// Adds a participant and queues their `joined` snapshot. Returns the
    /// session's generation.
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &self,
        id: ParticipantId,
        display_name: String,
        media: MediaState,
        handle: PeerHandle,
        now_ms: UnixMillis,
        ice_servers: Vec<IceServer>,
        resume_token: String,
    ) -> Result<u64, CoreError> {
        let mut inner = self.lock();
        let actions = inner.core.join(id.clone(), display_name, media, now_ms)?;
        let _ = handle.out.send(ServerMessage::Joined {
            participant_id: id.clone(),
            room: self.info.clone(),
            participants: inner.core.snapshot(),
            ice_servers,
            resume_token: resume_token.clone(),
            resumed: false,
        });
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        inner.seats.insert(
            id,
            Seat {
                handle,
                generation,
                resume_token,
            },
        );
        Self::run(&mut inner, actions);
        self.observe(&inner);
        Ok(generation)
    }

    /// A new session takes over an existing seat. The old session's
    /// connection is closed, its tracks unpublished, and the new one is
    /// subscribed to everything. Returns the new generation and the
    /// participant's display name.
    pub fn resume(
        &self,
        id: &ParticipantId,
        resume_token: &str,
        handle: PeerHandle,
        ice_servers: Vec<IceServer>,
    ) -> Result<(u64, String), ResumeError> {
        let mut inner = self.lock();
        let seat = inner.seats.get_mut(id).ok_or(ResumeError::NoSeat)?;
        if !tokens_equal(&seat.resume_token, resume_token) {
            return Err(ResumeError::BadToken);
        }
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let old = std::mem::replace(&mut seat.handle, handle.clone());
        seat.generation = generation;
        let _ = old.cmd.send(PeerCmd::Close);
        let actions = inner.core.rejoin(id).map_err(|_| ResumeError::NoSeat)?;
        inner.tracks.retain(|_, t| &t.publisher != id);
        let name = inner
            .core
            .participant(id)
            .map(|p| p.display_name.clone())
            .unwrap_or_default();
        let _ = handle.out.send(ServerMessage::Joined {
            participant_id: id.clone(),
            room: self.info.clone(),
            participants: inner.core.snapshot(),
            ice_servers,
            resume_token: resume_token.to_owned(),
            resumed: true,
        });
        Self::run(&mut inner, actions);
        self.observe(&inner);
        Ok((generation, name))
    }

    /// Registers a newly received track and subscribes everyone else.
    pub fn publish(&self, track: Arc<UpTrack>) -> Result<(), CoreError> {
        let mut inner = self.lock();
        inner.tracks.insert(track.info.id.clone(), track.clone());
        match inner.core.publish(&track.publisher, track.info.clone()) {
            Ok(actions) => {
                Self::run(&mut inner, actions);
                self.observe(&inner);
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
        let mut inner = self.lock();
        let actions = inner.core.unpublish(track);
        Self::run(&mut inner, actions);
        inner.tracks.remove(track);
        self.observe(&inner);
    }

    /// Tracks `publisher` publishes whose browser-side msid is not in
    /// `still_sending`.
    pub fn stale_tracks(
        &self,
        publisher: &ParticipantId,
        still_sending: &std::collections::BTreeSet<String>,
    ) -> Vec<TrackId> {
        let inner = self.lock();
        inner
            .tracks
            .values()
            .filter(|t| &t.publisher == publisher && !still_sending.contains(&t.remote_msid))
            .map(|t| t.info.id.clone())
            .collect()
    }

    fn leave_locked(inner: &mut Inner, id: &ParticipantId, reason: LeaveReason) {
        let actions = inner.core.leave(id, reason);
        Self::run(inner, actions);
        if let Some(seat) = inner.seats.remove(id) {
            let _ = seat.handle.cmd.send(PeerCmd::Close);
        }
        inner.tracks.retain(|_, t| &t.publisher != id);
    }

    /// Removes a participant whoever owns the seat (a second connection
    /// with the same token replaces the first).
    pub fn evict(&self, id: &ParticipantId, reason: LeaveReason) {
        let mut inner = self.lock();
        Self::leave_locked(&mut inner, id, reason);
        self.observe(&inner);
    }

    /// The session `generation` ended on purpose: remove the participant,
    /// unless a newer session owns the seat.
    pub fn leave(&self, id: &ParticipantId, generation: u64, reason: LeaveReason) {
        let mut inner = self.lock();
        if inner.seats.get(id).map(|s| s.generation) == Some(generation) {
            Self::leave_locked(&mut inner, id, reason);
            self.observe(&inner);
        }
    }

    /// The session `generation`'s connection broke: show the participant
    /// as reconnecting. Returns false if a newer session owns the seat.
    pub fn dropped(&self, id: &ParticipantId, generation: u64) -> bool {
        let mut inner = self.lock();
        if inner.seats.get(id).map(|s| s.generation) != Some(generation) {
            return false;
        }
        if let Ok(actions) = inner.core.set_status(id, PresenceStatus::Reconnecting) {
            Self::run(&mut inner, actions);
        }
        true
    }

    /// The grace period of session `generation` ran out: remove the
    /// participant unless they resumed meanwhile.
    pub fn expire(&self, id: &ParticipantId, generation: u64) -> bool {
        let mut inner = self.lock();
        if inner.seats.get(id).map(|s| s.generation) == Some(generation) {
            Self::leave_locked(&mut inner, id, LeaveReason::Disconnected);
            self.observe(&inner);
            true
        } else {
            false
        }
    }

    /// Updates device state.
    pub fn set_media(&self, id: &ParticipantId, media: MediaState) -> Result<(), CoreError> {
        let mut inner = self.lock();
        let actions = inner.core.set_media(id, media)?;
        Self::run(&mut inner, actions);
        Ok(())
    }

    /// Sends a message to everyone in the room.
    pub fn broadcast(&self, msg: ServerMessage) {
        let mut inner = self.lock();
        Self::run(&mut inner, vec![Action::Broadcast { msg, except: None }]);
    }

    /// Whether `id` is (still) in the room.
    pub fn contains(&self, id: &ParticipantId) -> bool {
        self.lock().core.participant(id).is_some()
    }

    /// True while anyone is in the room.
    pub fn has_members(&self) -> bool {
        !self.lock().core.is_empty()
    }
}
