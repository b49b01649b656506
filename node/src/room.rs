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

use crate::core::{Action, Announcement, CoreError, Home, RoomCore};
use crate::outbox::{CmdSender, Outbox};
use crate::peer::PeerCmd;
use crate::relay::Relay;
use crate::track::{UpSource, UpTrack};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use veche_protocol::chat::ChatMessage;
use veche_protocol::relay::{RelayCodec, RelayMsg, RemoteParticipant};
use veche_protocol::rpc::RelayPeer;
use veche_protocol::signal::{
    IceServer, LeaveReason, MediaState, ParticipantInfo, PresenceStatus, RoomInfo, ServerMessage,
};
use veche_protocol::{NodeId, ParticipantId, RoomId, TrackId, UnixMillis};

/// The edge-side handle of one participant's session.
#[derive(Clone)]
pub struct PeerHandle {
    /// Messages to the participant's WebSocket.
    pub out: Outbox,
    /// Commands to the participant's connection actor.
    pub cmd: CmdSender<PeerCmd>,
    /// Fired when the participant continues on another node: the session
    /// closes its socket without anyone being told they left.
    pub moved: Arc<tokio::sync::Notify>,
}

struct Seat {
    handle: PeerHandle,
    generation: u64,
    resume_token: String,
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
    relay: Option<Relay>,
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
    pub fn new(
        info: RoomInfo,
        metrics: crate::metrics::Metrics,
        relay: Option<Relay>,
    ) -> Arc<Self> {
        Arc::new(Room {
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
                    .filter(|t| matches!(t.source(), UpSource::Local { .. }))
                    .count() as i64,
            );
        }
    }

    fn run(&self, inner: &mut Inner, actions: Vec<Action>) {
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
                Action::Announce(a) => {
                    let msg = match a {
                        Announcement::Upsert { info, epoch } => RelayMsg::Upsert {
                            room: self.info.id,
                            participant: remote_participant(inner, info, epoch),
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
                        let _ = seat.handle.cmd.send(PeerCmd::Close);
                        seat.handle.moved.notify_one();
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
            .filter(|(_, t)| &t.publisher == id && !matches!(t.source(), UpSource::Relayed(_)))
            .map(|(k, _)| k.clone())
            .collect();
        for t in gone {
            if let Some(up) = inner.tracks.remove(&t) {
                self.stop_relaying(&up);
            }
        }
    }

    fn stop_relaying(&self, up: &UpTrack) {
        if let (Some(relay), false) = (&self.relay, matches!(up.source(), UpSource::Relayed(_))) {
            relay.stop_track(&up.info.id);
        }
    }

    fn tell_peers(&self, inner: &Inner, msg: &RelayMsg) {
        if let Some(relay) = &self.relay {
            for peer in &inner.peers {
                relay.send(*peer, msg);
            }
        }
    }

    /// Builds the stand-in for a remote track and asks its node to relay it.
    fn start_relay(&self, inner: &mut Inner, track: TrackId, from: NodeId) {
        let Some(relay) = &self.relay else { return };
        let Some(codec) = inner.codecs.get(&track).cloned() else {
            tracing::warn!(%track, "remote track without a codec; not relayed");
            return;
        };
        let Some(publisher) = inner.core.publisher_of(&track).cloned() else {
            return;
        };
        let Some(info) = inner
            .core
            .participant(&publisher)
            .and_then(|p| p.tracks.iter().find(|t| t.id == track))
            .cloned()
        else {
            return;
        };
        if let Some((old, slot)) = inner.relays.remove(&track) {
            relay.unsubscribe(old, self.info.id, track.clone(), slot);
        }
        let metrics = self.metrics.clone();
        let (up, slot) = relay.subscribe(from, self.info.id, track.clone(), |feedback| {
            UpTrack::relayed(info, publisher, rtc_codec(&codec), feedback, metrics)
        });
        inner.tracks.insert(track.clone(), up);
        inner.relays.insert(track, (from, slot));
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
        epoch: u64,
        rejoining: bool,
    ) -> Result<u64, CoreError> {
        let mut inner = self.lock();
        let actions = inner
            .core
            .join(id.clone(), display_name, media, now_ms, epoch, rejoining)?;
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
        self.run(&mut inner, actions);
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
        self.drop_local_tracks_of(&mut inner, id);
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
        self.run(&mut inner, actions);
        self.observe(&inner);
        Ok((generation, name))
    }

    /// Registers a newly received track and subscribes everyone else.
    pub fn publish(&self, track: Arc<UpTrack>) -> Result<(), CoreError> {
        let mut inner = self.lock();
        inner.tracks.insert(track.info.id.clone(), track.clone());
        match inner.core.publish(&track.publisher, track.info.clone()) {
            Ok(actions) => {
                self.run(&mut inner, actions);
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
            self.stop_relaying(&up);
        }
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
            let _ = seat.handle.cmd.send(PeerCmd::Close);
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
    /// unless a newer session owns the seat.
    pub fn leave(&self, id: &ParticipantId, generation: u64, reason: LeaveReason) {
        let mut inner = self.lock();
        if inner.seats.get(id).map(|s| s.generation) == Some(generation) {
            self.leave_locked(&mut inner, id, reason);
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
        !self.lock().core.is_empty()
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

    /// Starts exchanging the room with another node that hosts it (named by
    /// a join token or a heartbeat reply), unless already doing so.
    pub fn link_peer(&self, peer: &RelayPeer) {
        let Some(relay) = &self.relay else { return };
        relay.learn(peer);
        let mut inner = self.lock();
        if inner.peers.insert(peer.node_id) {
            self.send_state(&inner, peer.node_id, true);
        }
    }

    fn send_state(&self, inner: &Inner, peer: NodeId, reply_wanted: bool) {
        let Some(relay) = &self.relay else { return };
        let participants = inner
            .core
            .local_members()
            .into_iter()
            .map(|(info, epoch)| remote_participant(inner, info, epoch))
            .collect();
        relay.send(
            peer,
            &RelayMsg::RoomState {
                room: self.info.id,
                participants,
                reply_wanted,
            },
        );
    }

    /// A control message about this room from another node.
    pub fn on_relay(&self, from: NodeId, msg: RelayMsg) {
        let mut inner = self.lock();
        let remember = |inner: &mut Inner, p: &RemoteParticipant| {
            for (t, c) in &p.codecs {
                inner.codecs.insert(t.clone(), c.clone());
            }
        };
        match msg {
            RelayMsg::RoomState {
                participants,
                reply_wanted,
                ..
            } => {
                let new_peer = inner.peers.insert(from);
                for p in &participants {
                    remember(&mut inner, p);
                }
                let list = participants
                    .into_iter()
                    .map(|p| (p.info, p.epoch))
                    .collect();
                let actions = inner.core.remote_state(from, list);
                self.run(&mut inner, actions);
                if reply_wanted || new_peer {
                    self.send_state(&inner, from, false);
                }
            }
            RelayMsg::Upsert { participant, .. } => {
                if inner.peers.insert(from) {
                    // It knows us but we did not know it: it needs our state.
                    self.send_state(&inner, from, true);
                }
                remember(&mut inner, &participant);
                let actions = inner
                    .core
                    .remote_upsert(from, participant.info, participant.epoch);
                self.run(&mut inner, actions);
            }
            RelayMsg::Left {
                participant_id,
                reason,
                ..
            } => {
                let actions = inner.core.remote_left(from, &participant_id, reason);
                self.run(&mut inner, actions);
            }
            RelayMsg::RoomClosed { .. } => {
                inner.peers.remove(&from);
                let actions = inner.core.remote_closed(from);
                self.run(&mut inner, actions);
            }
            RelayMsg::Subscribe { track, slot, .. } => {
                let up = inner.tracks.get(&track).cloned();
                match (up, &self.relay) {
                    (Some(up), Some(relay)) if matches!(up.source(), UpSource::Local { .. }) => {
                        relay.start_leg(from, slot, up)
                    }
                    _ => tracing::debug!(%track, %from, "subscribe for a track not published here"),
                }
            }
            RelayMsg::Unsubscribe { track, .. } => {
                if let Some(relay) = &self.relay {
                    relay.stop_leg(from, &track);
                }
            }
            RelayMsg::Chat { message, .. } => self.run(
                &mut inner,
                vec![Action::Broadcast {
                    msg: ServerMessage::Chat { message },
                    except: None,
                }],
            ),
            RelayMsg::Hello { .. } => {}
        }
        self.observe(&inner);
    }

    /// Another node became unreachable: its participants show as
    /// reconnecting. Returns who is waiting, for the grace timers.
    pub fn node_lost(&self, peer: NodeId) -> Vec<ParticipantId> {
        let mut inner = self.lock();
        inner.peers.remove(&peer);
        let (actions, waiting) = inner.core.node_lost(peer);
        self.run(&mut inner, actions);
        self.observe(&inner);
        waiting
    }

    /// The grace period of a lost node's participant ran out.
    pub fn expire_remote(&self, peer: NodeId, id: &ParticipantId) {
        let mut inner = self.lock();
        let actions = inner.core.expire_remote(peer, id);
        self.run(&mut inner, actions);
        self.observe(&inner);
    }

    /// The room is being dropped here (nobody left on this node): other
    /// nodes stop relaying to it and forget its participants.
    pub fn close_links(&self) {
        let mut inner = self.lock();
        let relays: Vec<(TrackId, (NodeId, u16))> = inner.relays.drain().collect();
        if let Some(relay) = &self.relay {
            for (track, (from, slot)) in relays {
                relay.unsubscribe(from, self.info.id, track, slot);
            }
        }
        self.tell_peers(&inner, &RelayMsg::RoomClosed { room: self.info.id });
        inner.peers.clear();
    }
}

/// One of our participants as other nodes need them: with the codec of
/// each track they publish.
fn remote_participant(inner: &Inner, info: ParticipantInfo, epoch: u64) -> RemoteParticipant {
    let codecs = info
        .tracks
        .iter()
        .filter_map(|t| {
            inner
                .tracks
                .get(&t.id)
                .map(|up| (t.id.clone(), relay_codec(up)))
        })
        .collect();
    RemoteParticipant {
        info,
        epoch,
        codecs,
    }
}

/// The codec of a track as another node needs it.
fn relay_codec(up: &UpTrack) -> RelayCodec {
    RelayCodec {
        mime_type: up.codec.mime_type.clone(),
        clock_rate: up.codec.clock_rate,
        channels: up.codec.channels,
        sdp_fmtp_line: up.codec.sdp_fmtp_line.clone(),
    }
}

/// The reverse of [`relay_codec`]. RTCP feedback is left to negotiation
/// with each subscriber, as for local tracks.
fn rtc_codec(c: &RelayCodec) -> rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
    rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
        mime_type: c.mime_type.clone(),
        clock_rate: c.clock_rate,
        channels: c.channels,
        sdp_fmtp_line: c.sdp_fmtp_line.clone(),
        rtcp_feedback: Vec::new(),
    }
}
