//! A room on this node: the I/O-free [`RoomCore`] plus the handles needed
//! to carry out its actions.
//!
//! Every action is a non-blocking call on a [`Participant`] or the relay,
//! so actions run while the room lock is held. That keeps the order in
//! which clients see events equal to the order in which the core decided
//! them: a participant's `joined` snapshot is queued before any later
//! delta.
//!
//! Each seat remembers which session (generation) currently owns it. When a
//! participant resumes after a dropped connection, the new session takes
//! the seat, and anything the old session does afterwards (noticing its
//! socket died, its grace timer firing) is ignored.
//!
//! It enforces its copy of the moderation policy (`policy.rs`), holds its
//! lobby (`lobby.rs`) and orders its MLS handshake steps (`e2ee.rs`).
//!
//! The room talks to participants only through the [`Participant`] trait
//! and to other nodes only through the [`Relay`] (the exchange with them
//! is in `cascade.rs`), so it is unit-tested with participants in memory.

mod cascade;
mod e2ee;
mod lobby;
mod media_path;
mod p2p;
mod participant;
mod policy;
mod recording;
mod resume;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_moderation;
#[cfg(test)]
mod tests_p2p;
#[cfg(test)]
mod tests_p2p_state;
#[cfg(test)]
mod tests_recording;
#[cfg(test)]
mod tests_resume;

pub use lobby::{Lobby, LobbyDecision, LobbyError, Waiter};
pub use participant::{Joiner, Participant, ResumeError};
pub use policy::{notices_for, withheld_reason, PolicySource, Told};
pub use resume::SeatMedia;

use crate::core::{Action, Announcement, CoreError, Home, RoomCore};
use crate::events::EventSink;
use crate::metrics::Metrics;
use crate::relay::Relay;
use crate::track::{Origin, UpTrack};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use veche_protocol::chat::ChatMessage;
use veche_protocol::moderation::{Role, RoomPolicy};
use veche_protocol::pass::PassId;
use veche_protocol::relay::{RelayCodec, RelayMsg};
use veche_protocol::signal::{
    IceServer, LeaveReason, MediaState, PresenceStatus, RoomInfo, ServerMessage,
};
use veche_protocol::{NodeId, ParticipantId, RoomId, TrackId, UnixMillis, UserId};

struct Seat {
    participant: Box<dyn Participant>,
    generation: u64,
    resume_token: String,
    claims: Claims,
}

/// What a participant's join token says about them that moderation needs:
/// the role the policy raises, and the account and pass a ban covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Claims {
    role: Role,
    user: Option<UserId>,
    pass: Option<PassId>,
}

struct Inner {
    core: RoomCore,
    seats: HashMap<ParticipantId, Seat>,
    /// Every track this node can forward: its publishers' own, and the
    /// stand-ins of tracks relayed from other nodes.
    tracks: HashMap<TrackId, Arc<UpTrack>>,
    /// Other nodes hosting the room, which hear about our participants.
    peers: BTreeSet<NodeId>,
    /// Codecs of remote tracks, as their nodes announced them.
    codecs: HashMap<TrackId, RelayCodec>,
    /// Remote tracks relayed here: the node and the slot they arrive on.
    relays: HashMap<TrackId, (NodeId, u16)>,
    /// The room's moderation policy; `None` until the first copy arrived.
    policy: Option<RoomPolicy>,
    /// The claims of other nodes' participants, as their nodes relayed
    /// them (for `present` in moderation requests).
    remote_claims: HashMap<ParticipantId, Claims>,
    /// Who waits to be let in, here and on other nodes.
    lobby: Lobby,
    /// The recording running here (`recording.rs`).
    recorder: Option<crate::recorder::room::RoomRecorder>,
    /// A recording this node could not make (no storage): not retried.
    refused_recording: Option<veche_protocol::recording::RecordingId>,
}

/// One room hosted (at least partly) on this node.
pub struct Room {
    /// The room as the token described it.
    pub info: RoomInfo,
    metrics: Metrics,
    relay: Option<Relay>,
    inner: Mutex<Inner>,
    generations: AtomicU64,
    /// Where seats taken and ended here are reported, for statistics.
    events: Option<EventSink>,
    /// What recording needs from the node, once it enabled recording.
    recorder_env: std::sync::OnceLock<crate::recorder::room::RecorderEnv>,
    /// Orders the room's MLS handshake steps on this node (`e2ee.rs`).
    handshake: e2ee::HandshakeOrder,
    /// Its media path, direct for two or through the SFU (`media_path.rs`).
    path: Mutex<media_path::PathState>,
}

impl Room {
    /// An empty room that reports no participant events.
    pub fn new(info: RoomInfo, metrics: Metrics, relay: Option<Relay>) -> Arc<Self> {
        Self::build(info, metrics, relay, None)
    }

    /// An empty room that reports every seat taken and ended on this node
    /// to `events` (under the room lock, so in the order they happened).
    pub fn with_events(
        info: RoomInfo,
        metrics: Metrics,
        relay: Option<Relay>,
        events: EventSink,
    ) -> Arc<Self> {
        Self::build(info, metrics, relay, Some(events))
    }

    fn build(
        info: RoomInfo,
        metrics: Metrics,
        relay: Option<Relay>,
        events: Option<EventSink>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Room {
            path: Mutex::new(media_path::PathState::new(me.clone())),
            events,
            info,
            metrics,
            relay,
            inner: Mutex::new(Inner {
                core: RoomCore::new(),
                seats: HashMap::new(),
                tracks: HashMap::new(),
                peers: BTreeSet::new(),
                codecs: HashMap::new(),
                relays: HashMap::new(),
                policy: None,
                remote_claims: HashMap::new(),
                lobby: Lobby::default(),
                recorder: None,
                refused_recording: None,
            }),
            recorder_env: std::sync::OnceLock::new(),
            handshake: Default::default(),
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
        let participants = inner.core.local_members().len() as i64;
        if participants == 0 {
            let _ = self.metrics.room_participants.remove_label_values(&[&room]);
            let _ = self.metrics.room_tracks.remove_label_values(&[&room]);
        } else {
            self.metrics
                .room_participants
                .with_label_values(&[&room])
                .set(participants);
            self.metrics.room_tracks.with_label_values(&[&room]).set(
                inner
                    .tracks
                    .values()
                    .filter(|t| t.origin() == Origin::Local)
                    .count() as i64,
            );
        }
        self.sync_path(inner);
    }

    fn run(&self, inner: &mut Inner, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Broadcast { msg, except } => {
                    for (id, seat) in &inner.seats {
                        if Some(id) != except.as_ref() {
                            seat.participant.send(msg.clone());
                        }
                    }
                }
                Action::Subscribe { subscriber, track } => {
                    if let (Some(seat), Some(t)) =
                        (inner.seats.get(&subscriber), inner.tracks.get(&track))
                    {
                        seat.participant.subscribe(t.clone());
                    }
                }
                Action::Unsubscribe { subscriber, track } => {
                    if let Some(seat) = inner.seats.get(&subscriber) {
                        seat.participant.unsubscribe(track);
                    }
                }
                Action::Announce(a) => {
                    let msg = match a {
                        Announcement::Upsert { info, epoch } => RelayMsg::Upsert {
                            room: self.info.id,
                            participant: cascade::remote_participant(inner, info, epoch),
                        },
                        Announcement::Left {
                            participant_id,
                            reason,
                        } => RelayMsg::Left {
                            room: self.info.id,
                            participant_id,
                            reason,
                        },
                    };
                    self.tell_peers(inner, &msg);
                }
                Action::RelayStart { track, from } => self.start_relay(inner, track, from),
                Action::RelayStop { track, from } => {
                    if inner.relays.get(&track).map(|r| r.0) == Some(from) {
                        let (_, slot) = inner.relays.remove(&track).expect("checked");
                        inner.tracks.remove(&track);
                        if let Some(relay) = &self.relay {
                            relay.unsubscribe(from, self.info.id, track, slot);
                        }
                    }
                }
                Action::DropSeat { participant } => {
                    if let Some(seat) = inner.seats.remove(&participant) {
                        seat.participant.moved();
                    }
                    self.drop_local_tracks_of(inner, &participant);
                }
            }
        }
    }

    /// Forgets the tracks `id` published from this node, and stops
    /// relaying them to other nodes (which also drop them when they hear
    /// the participant's new state, but need not be waited for).
    fn drop_local_tracks_of(&self, inner: &mut Inner, id: &ParticipantId) {
        let gone: Vec<TrackId> = inner
            .tracks
            .iter()
            .filter(|(_, t)| &t.publisher == id && t.origin() == Origin::Local)
            .map(|(k, _)| k.clone())
            .collect();
        for t in gone {
            if let Some(up) = inner.tracks.remove(&t) {
                self.forget_track_metric(&up);
                self.stop_relaying(&up);
            }
        }
        self.sync_recording(inner);
    }

    fn stop_relaying(&self, up: &UpTrack) {
        if let (Some(relay), Origin::Local) = (&self.relay, up.origin()) {
            relay.stop_track(&up.info.id);
        }
    }

    /// Adds a participant and queues their `joined` snapshot. Returns the
    /// session's generation.
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &self,
        joiner: Joiner,
        media: MediaState,
        handle: impl Participant + 'static,
        now_ms: UnixMillis,
        ice_servers: Vec<IceServer>,
        resume_token: String,
        epoch: u64,
        rejoining: bool,
    ) -> Result<u64, CoreError> {
        let Joiner {
            id,
            display_name,
            guest,
            user,
            pass,
            role: claimed,
            p2p,
        } = joiner;
        let mut inner = self.lock();
        let policy = inner.policy.clone().unwrap_or_default();
        let role = policy.role_of(&id, claimed);
        let actions = inner.core.join(
            id.clone(),
            display_name.clone(),
            guest,
            role,
            media,
            now_ms,
            epoch,
            rejoining,
        )?;
        if let Some(events) = &self.events {
            events.joined(&self.info, id.clone(), display_name, user, guest);
        }
        handle.send(ServerMessage::Joined {
            participant_id: id.clone(),
            room: self.info.clone(),
            participants: inner.core.snapshot(),
            ice_servers,
            resume_token: resume_token.clone(),
            resumed: false,
            media_kept: false,
            policy: policy.view(),
        });
        if role.moderates() {
            handle.send(ServerMessage::Lobby {
                waiting: inner.lobby.all_entries(),
            });
        }
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        self.set_p2p_capable(&id, p2p);
        inner.seats.insert(
            id,
            Seat {
                participant: Box::new(handle),
                generation,
                resume_token,
                claims: Claims {
                    role: claimed,
                    user,
                    pass,
                },
            },
        );
        self.run(&mut inner, actions);
        self.observe(&inner);
        Ok(generation)
    }

    /// Registers a newly received track and subscribes everyone else.
    pub fn publish(&self, track: Arc<UpTrack>) -> Result<(), CoreError> {
        let mut inner = self.lock();
        inner.tracks.insert(track.info.id.clone(), track.clone());
        match inner.core.publish(&track.publisher, track.info.clone()) {
            Ok(actions) => {
                self.admit_track(&inner, &track);
                self.gate_track(&track);
                self.run(&mut inner, actions);
                self.sync_recording(&mut inner);
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
        self.run(&mut inner, actions);
        if let Some(up) = inner.tracks.remove(track) {
            if up.origin() == Origin::Local {
                self.forget_track_metric(&up);
            }
            self.stop_relaying(&up);
        }
        self.sync_recording(&mut inner);
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

    fn leave_locked(&self, inner: &mut Inner, id: &ParticipantId, reason: LeaveReason) {
        let actions = inner.core.leave(id, reason);
        self.run(inner, actions);
        if let Some(seat) = inner.seats.remove(id) {
            seat.participant.close();
            if let Some(events) = &self.events {
                events.left(&self.info, id.clone());
            }
        }
        self.drop_local_tracks_of(inner, id);
    }

    /// Removes a participant whoever owns the seat (a second connection
    /// with the same token replaces the first).
    pub fn evict(&self, id: &ParticipantId, reason: LeaveReason) {
        let mut inner = self.lock();
        self.leave_locked(&mut inner, id, reason);
        self.observe(&inner);
    }

    /// The session `generation` ended on purpose: remove the participant,
    /// unless a newer session owns the seat. Returns false then: the newer
    /// session's connection may be this session's old one (a resume that
    /// kept its media), so the caller must leave it alone.
    pub fn leave(&self, id: &ParticipantId, generation: u64, reason: LeaveReason) -> bool {
        let mut inner = self.lock();
        if inner.seats.get(id).map(|s| s.generation) != Some(generation) {
            return false;
        }
        self.leave_locked(&mut inner, id, reason);
        self.observe(&inner);
        true
    }

    /// The session `generation`'s connection broke: show the participant
    /// as reconnecting. Returns false if a newer session owns the seat.
    pub fn dropped(&self, id: &ParticipantId, generation: u64) -> bool {
        let mut inner = self.lock();
        if inner.seats.get(id).map(|s| s.generation) != Some(generation) {
            return false;
        }
        if let Ok(actions) = inner.core.set_status(id, PresenceStatus::Reconnecting) {
            self.run(&mut inner, actions);
        }
        true
    }

    /// The grace period of session `generation` ran out: remove the
    /// participant unless they resumed meanwhile.
    pub fn expire(&self, id: &ParticipantId, generation: u64) -> bool {
        let mut inner = self.lock();
        if inner.seats.get(id).map(|s| s.generation) == Some(generation) {
            self.leave_locked(&mut inner, id, LeaveReason::Disconnected);
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
        self.run(&mut inner, actions);
        Ok(())
    }

    /// Sends a message to everyone in the room.
    pub fn broadcast(&self, msg: ServerMessage) {
        let mut inner = self.lock();
        self.run(&mut inner, vec![Action::Broadcast { msg, except: None }]);
    }

    /// Whether `id` is (still) connected to this node.
    pub fn contains(&self, id: &ParticipantId) -> bool {
        self.lock().core.home(id) == Some(Home::Local)
    }

    /// True while anyone is in the room on this node.
    pub fn has_members(&self) -> bool {
        let inner = self.lock();
        !inner.core.is_empty() || !inner.lobby.is_empty()
    }

    /// True when nobody is in the room on this node, so the node can drop it.
    pub fn is_empty(&self) -> bool {
        !self.has_members()
    }

    /// A participant's media connection is up: one who came back from
    /// another node stops showing as reconnecting.
    pub fn media_connected(&self, id: &ParticipantId) {
        let mut inner = self.lock();
        if inner.core.home(id) == Some(Home::Local)
            && inner.core.participant(id).map(|p| p.status) == Some(PresenceStatus::Reconnecting)
        {
            if let Ok(actions) = inner.core.set_status(id, PresenceStatus::Connected) {
                self.run(&mut inner, actions);
            }
        }
    }

    /// A committed chat message: to everyone here and on every other node
    /// hosting the room.
    pub fn chat(&self, message: ChatMessage) {
        let mut inner = self.lock();
        self.tell_peers(
            &inner,
            &RelayMsg::Chat {
                room: self.info.id,
                message: message.clone(),
            },
        );
        self.run(
            &mut inner,
            vec![Action::Broadcast {
                msg: ServerMessage::Chat { message },
                except: None,
            }],
        );
    }
}
