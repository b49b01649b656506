//! The room's decisions, without I/O: who is in the room, what they
//! publish, who receives which track, and which messages everyone must see.
//!
//! The session and media code at the edge feeds events in and carries out
//! the returned [`Action`]s in order. Because nothing here touches a socket
//! or a clock, every rule is unit-tested directly.

use std::collections::{BTreeMap, BTreeSet};
use veche_protocol::signal::{
    LeaveReason, MediaState, ParticipantInfo, PresenceStatus, ServerMessage, TrackInfo,
};
use veche_protocol::{NodeId, ParticipantId, TrackId, UnixMillis};

/// Something the edge must do after the core changed state.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start forwarding `track` to `subscriber`: create a down track on the
    /// subscriber's peer connection and renegotiate. The edge asks the
    /// publisher for a keyframe once the new leg is bound, because a
    /// decoder cannot start without one.
    Subscribe {
        /// Receiver.
        subscriber: ParticipantId,
        /// The published track.
        track: TrackId,
    },
    /// Stop forwarding `track` to `subscriber`.
    Unsubscribe {
        /// Receiver.
        subscriber: ParticipantId,
        /// The track.
        track: TrackId,
    },
    /// Send to every participant on this node except `except`.
    Broadcast {
        /// The message.
        msg: ServerMessage,
        /// Who not to send it to (usually the one it is about, who learns
        /// it another way).
        except: Option<ParticipantId>,
    },
    /// Tell every other node hosting the room about one of our
    /// participants.
    Announce(Announcement),
    /// A track published on another node got its first receiver here: ask
    /// that node to relay it. Always ordered before the `Subscribe`s that
    /// need it.
    RelayStart {
        /// The track.
        track: TrackId,
        /// The node its publisher is on.
        from: NodeId,
    },
    /// A relayed track lost its last receiver here (or its publisher is
    /// gone): stop the relay. Always ordered after the `Unsubscribe`s.
    RelayStop {
        /// The track.
        track: TrackId,
        /// The node its publisher is on.
        from: NodeId,
    },
    /// One of our participants continues on another node (a newer session
    /// of theirs was announced from there): close their connection here
    /// without telling anyone they left.
    DropSeat {
        /// Who.
        participant: ParticipantId,
    },
}

/// What other nodes hosting the room are told.
#[derive(Clone, Debug, PartialEq)]
pub enum Announcement {
    /// A participant of ours joined or changed: their whole state.
    Upsert {
        /// Their state.
        info: ParticipantInfo,
        /// Their session's epoch.
        epoch: u64,
    },
    /// A participant of ours left.
    Left {
        /// Who.
        participant_id: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
}

/// Where a participant's connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Home {
    /// On this node.
    Local,
    /// On another media node, which relays their tracks on demand.
    Remote(NodeId),
}

#[derive(Clone, Debug)]
struct Member {
    info: ParticipantInfo,
    /// Tracks of others this member currently receives (local members
    /// only: a remote member's node decides for them).
    receiving: BTreeSet<TrackId>,
    home: Home,
    /// Orders sessions of the same participant on different nodes; the
    /// newest wins (see [`RoomCore::remote_upsert`]).
    epoch: u64,
}

/// One room's membership and subscription state on this node: its own
/// participants, and those of other nodes hosting the same room as they
/// announced them.
#[derive(Debug, Default)]
pub struct RoomCore {
    members: BTreeMap<ParticipantId, Member>,
    /// Track id -> publisher, for every track in the room.
    tracks: BTreeMap<TrackId, ParticipantId>,
    /// Remote tracks currently relayed to this node, with their node.
    relayed: BTreeMap<TrackId, NodeId>,
}

/// Why an event was refused. Refusals never change state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The participant is not (or no longer) in the room.
    #[error("participant is not in the room")]
    NotInRoom,
    /// The participant is already in the room.
    #[error("participant is already in the room")]
    AlreadyInRoom,
    /// A track with this id is already published.
    #[error("track already published")]
    DuplicateTrack,
}

impl RoomCore {
    /// An empty room.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when nobody is in the room on this node, so the edge can drop
    /// it (other nodes' participants are of no use here then).
    pub fn is_empty(&self) -> bool {
        !self.members.values().any(|m| m.home == Home::Local)
    }

    /// Everyone in the room, on every node, in a stable order (by id).
    pub fn snapshot(&self) -> Vec<ParticipantInfo> {
        self.members.values().map(|m| m.info.clone()).collect()
    }

    /// This node's participants with their epochs, for a full-state
    /// announcement to another node.
    pub fn local_members(&self) -> Vec<(ParticipantInfo, u64)> {
        self.members
            .values()
            .filter(|m| m.home == Home::Local)
            .map(|m| (m.info.clone(), m.epoch))
            .collect()
    }

    /// One participant's state.
    pub fn participant(&self, id: &ParticipantId) -> Option<&ParticipantInfo> {
        self.members.get(id).map(|m| &m.info)
    }

    /// Where a participant is connected.
    pub fn home(&self, id: &ParticipantId) -> Option<Home> {
        self.members.get(id).map(|m| m.home)
    }

    /// Who publishes `track`.
    pub fn publisher_of(&self, track: &TrackId) -> Option<&ParticipantId> {
        self.tracks.get(track)
    }

    /// Tracks `subscriber` currently receives.
    pub fn receiving(&self, subscriber: &ParticipantId) -> Vec<TrackId> {
        self.members
            .get(subscriber)
            .map(|m| m.receiving.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Remote tracks relayed to this node, with the node each comes from.
    pub fn relayed(&self) -> &BTreeMap<TrackId, NodeId> {
        &self.relayed
    }

    /// A participant joins on this node. They are subscribed to every track
    /// already published, and everyone else is told.
    ///
    /// A participant already known as another node's comes back here (that
    /// node died or is draining): they keep their place in the list, their
    /// old tracks go, and with `rejoining` they show as reconnecting until
    /// [`RoomCore::set_status`] says their media flows again.
    pub fn join(
        &mut self,
        id: ParticipantId,
        display_name: String,
        media: MediaState,
        now_ms: UnixMillis,
        epoch: u64,
        rejoining: bool,
    ) -> Result<Vec<Action>, CoreError> {
        let mut actions = Vec::new();
        let taken_over = match self.members.get(&id).map(|m| m.home) {
            Some(Home::Local) => return Err(CoreError::AlreadyInRoom),
            Some(Home::Remote(_)) => {
                self.remove_tracks_of(&id, &mut actions);
                true
            }
            None => false,
        };
        let status = if rejoining || taken_over {
            PresenceStatus::Reconnecting
        } else {
            PresenceStatus::Connected
        };
        let joined_at_ms = self
            .members
            .get(&id)
            .map_or(now_ms, |m| m.info.joined_at_ms);
        let info = ParticipantInfo {
            id: id.clone(),
            display_name,
            status,
            media,
            tracks: Vec::new(),
            joined_at_ms,
        };
        let mut receiving = BTreeSet::new();
        for track in self.tracks.keys() {
            receiving.insert(track.clone());
            actions.push(Action::Subscribe {
                subscriber: id.clone(),
                track: track.clone(),
            });
        }
        let msg = if taken_over {
            ServerMessage::ParticipantUpdated {
                participant: info.clone(),
            }
        } else {
            ServerMessage::ParticipantJoined {
                participant: info.clone(),
            }
        };
        actions.push(Action::Broadcast {
            msg,
            except: Some(id.clone()),
        });
        actions.push(Action::Announce(Announcement::Upsert {
            info: info.clone(),
            epoch,
        }));
        self.members.insert(
            id,
            Member {
                info,
                receiving,
                home: Home::Local,
                epoch,
            },
        );
        Ok(self.with_relays(actions))
    }

    /// A participant starts publishing a track. Everyone else subscribes.
    pub fn publish(
        &mut self,
        publisher: &ParticipantId,
        track: TrackInfo,
    ) -> Result<Vec<Action>, CoreError> {
        if !self.members.contains_key(publisher) {
            return Err(CoreError::NotInRoom);
        }
        if self.tracks.contains_key(&track.id) {
            return Err(CoreError::DuplicateTrack);
        }
        let mut actions = Vec::new();
        self.add_track(publisher, &track.id, &mut actions);
        let m = self.members.get_mut(publisher).expect("checked above");
        m.info.tracks.push(track);
        actions.extend(Self::changed(m));
        Ok(self.with_relays(actions))
    }

    /// A track stops (the publisher stopped sharing, or its connection
    /// renegotiated it away). Everyone stops receiving it.
    pub fn unpublish(&mut self, track: &TrackId) -> Vec<Action> {
        let Some(publisher) = self.tracks.get(track).cloned() else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        self.drop_track(track, &mut actions);
        if let Some(m) = self.members.get_mut(&publisher) {
            m.info.tracks.retain(|t| &t.id != track);
            actions.extend(Self::changed(m));
        }
        self.with_relays(actions)
    }

    /// A participant leaves, for any reason. Their tracks are unpublished
    /// first (so others' down tracks are torn down), then everyone is told.
    pub fn leave(&mut self, id: &ParticipantId, reason: LeaveReason) -> Vec<Action> {
        let Some(member) = self.members.get(id) else {
            return Vec::new();
        };
        let local = member.home == Home::Local;
        let mut actions = Vec::new();
        self.remove_tracks_of(id, &mut actions);
        self.members.remove(id);
        actions.push(Action::Broadcast {
            msg: ServerMessage::ParticipantLeft {
                participant_id: id.clone(),
                reason,
            },
            except: Some(id.clone()),
        });
        if local {
            actions.push(Action::Announce(Announcement::Left {
                participant_id: id.clone(),
                reason,
            }));
        }
        self.with_relays(actions)
    }

    /// A participant's connection was replaced by a new one (they resumed
    /// after a drop). Their old connection's tracks are gone, so they are
    /// unpublished; the new connection receives nothing yet, so it is
    /// subscribed to every track of the others; and everyone sees them
    /// connected again.
    pub fn rejoin(&mut self, id: &ParticipantId) -> Result<Vec<Action>, CoreError> {
        if self.members.get(id).map(|m| m.home) != Some(Home::Local) {
            return Err(CoreError::NotInRoom);
        }
        let mut actions = Vec::new();
        self.remove_tracks_of(id, &mut actions);
        let others: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|(_, p)| *p != id)
            .map(|(t, _)| t.clone())
            .collect();
        let m = self.members.get_mut(id).expect("checked above");
        m.info.tracks.clear();
        m.info.status = PresenceStatus::Connected;
        m.receiving = others.iter().cloned().collect();
        for t in others {
            actions.push(Action::Subscribe {
                subscriber: id.clone(),
                track: t,
            });
        }
        actions.extend(Self::changed(m));
        Ok(self.with_relays(actions))
    }

    /// A participant's device state changed.
    pub fn set_media(
        &mut self,
        id: &ParticipantId,
        media: MediaState,
    ) -> Result<Vec<Action>, CoreError> {
        let m = self.members.get_mut(id).ok_or(CoreError::NotInRoom)?;
        if m.info.media == media {
            return Ok(Vec::new());
        }
        m.info.media = media;
        Ok(Self::changed(m))
    }

    /// A participant's connection status changed.
    pub fn set_status(
        &mut self,
        id: &ParticipantId,
        status: PresenceStatus,
    ) -> Result<Vec<Action>, CoreError> {
        let m = self.members.get_mut(id).ok_or(CoreError::NotInRoom)?;
        if m.info.status == status {
            return Ok(Vec::new());
        }
        m.info.status = status;
        Ok(Self::changed(m))
    }

    /// Another node announced one of its participants.
    ///
    /// The newest session of a participant wins: an announcement older than
    /// what this node knows is ignored, and a newer one for a participant
    /// connected here means they moved to `from` (this node is being
    /// drained, or they lost their connection to it and were placed
    /// elsewhere), so their seat here is dropped without anyone seeing them
    /// leave.
    pub fn remote_upsert(
        &mut self,
        from: NodeId,
        info: ParticipantInfo,
        epoch: u64,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let id = info.id.clone();
        if let Some(m) = self.members.get(&id) {
            match m.home {
                Home::Local if epoch <= m.epoch => return actions,
                Home::Local => actions.push(Action::DropSeat {
                    participant: id.clone(),
                }),
                Home::Remote(n) if n != from && epoch < m.epoch => return actions,
                Home::Remote(_) => {}
            }
        }
        let new_tracks: BTreeSet<TrackId> = info.tracks.iter().map(|t| t.id.clone()).collect();
        // A track id is one publication, but the same id from another node
        // (or after the seat moved) is a different relay: re-add it.
        let moved = self
            .members
            .get(&id)
            .is_some_and(|m| m.home != Home::Remote(from));
        let old_tracks: Vec<TrackId> = self
            .members
            .get(&id)
            .map(|m| m.info.tracks.iter().map(|t| t.id.clone()).collect())
            .unwrap_or_default();
        for t in &old_tracks {
            if moved || !new_tracks.contains(t) {
                self.drop_track(t, &mut actions);
            }
        }
        let existed = self.members.contains_key(&id);
        let member = self.members.entry(id.clone()).or_insert_with(|| Member {
            info: info.clone(),
            receiving: BTreeSet::new(),
            home: Home::Remote(from),
            epoch,
        });
        member.info = info.clone();
        member.home = Home::Remote(from);
        member.epoch = epoch;
        member.receiving.clear();
        for t in &new_tracks {
            if !self.tracks.contains_key(t) {
                self.add_track(&id, t, &mut actions);
            }
        }
        actions.push(Action::Broadcast {
            msg: if existed {
                ServerMessage::ParticipantUpdated { participant: info }
            } else {
                ServerMessage::ParticipantJoined { participant: info }
            },
            except: None,
        });
        self.with_relays(actions)
    }

    /// Another node says one of its participants left.
    pub fn remote_left(
        &mut self,
        from: NodeId,
        id: &ParticipantId,
        reason: LeaveReason,
    ) -> Vec<Action> {
        if self.home(id) != Some(Home::Remote(from)) {
            return Vec::new();
        }
        self.leave(id, reason)
    }

    /// Another node sent its full state for the room: everyone it listed is
    /// upserted, and anyone this node still had from it but it no longer
    /// lists has left.
    pub fn remote_state(
        &mut self,
        from: NodeId,
        participants: Vec<(ParticipantInfo, u64)>,
    ) -> Vec<Action> {
        let listed: BTreeSet<ParticipantId> =
            participants.iter().map(|(p, _)| p.id.clone()).collect();
        let mut actions = Vec::new();
        for (info, epoch) in participants {
            actions.extend(self.remote_upsert(from, info, epoch));
        }
        for id in self.members_on(from) {
            if !listed.contains(&id) {
                actions.extend(self.leave(&id, LeaveReason::Left));
            }
        }
        actions
    }

    /// Another node hosting the room became unreachable. Its participants
    /// show as reconnecting (their clients are finding another node) and
    /// their tracks stop. Returns the actions and who is now waiting, so the
    /// edge can remove them if they do not come back within the grace
    /// period ([`RoomCore::expire_remote`]).
    pub fn node_lost(&mut self, from: NodeId) -> (Vec<Action>, Vec<ParticipantId>) {
        let mut actions = Vec::new();
        let waiting = self.members_on(from);
        for id in &waiting {
            self.remove_tracks_of(id, &mut actions);
            let m = self.members.get_mut(id).expect("listed above");
            m.info.tracks.clear();
            m.info.status = PresenceStatus::Reconnecting;
            actions.push(Action::Broadcast {
                msg: ServerMessage::ParticipantUpdated {
                    participant: m.info.clone(),
                },
                except: None,
            });
        }
        (self.with_relays(actions), waiting)
    }

    /// The grace period for a participant of a lost node ran out: if they
    /// did not turn up anywhere since, they have left.
    pub fn expire_remote(&mut self, from: NodeId, id: &ParticipantId) -> Vec<Action> {
        match self.members.get(id) {
            Some(m)
                if m.home == Home::Remote(from)
                    && m.info.status == PresenceStatus::Reconnecting =>
            {
                self.leave(id, LeaveReason::Disconnected)
            }
            _ => Vec::new(),
        }
    }

    /// Another node no longer hosts anyone in the room.
    pub fn remote_closed(&mut self, from: NodeId) -> Vec<Action> {
        let mut actions = Vec::new();
        for id in self.members_on(from) {
            actions.extend(self.leave(&id, LeaveReason::Left));
        }
        actions
    }

    fn members_on(&self, node: NodeId) -> Vec<ParticipantId> {
        self.members
            .iter()
            .filter(|(_, m)| m.home == Home::Remote(node))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Registers a track and subscribes every local member but its
    /// publisher.
    fn add_track(&mut self, publisher: &ParticipantId, track: &TrackId, actions: &mut Vec<Action>) {
        self.tracks.insert(track.clone(), publisher.clone());
        for (id, m) in self.members.iter_mut() {
            if id != publisher && m.home == Home::Local {
                m.receiving.insert(track.clone());
                actions.push(Action::Subscribe {
                    subscriber: id.clone(),
                    track: track.clone(),
                });
            }
        }
    }

    /// Forgets a track and unsubscribes everyone receiving it.
    fn drop_track(&mut self, track: &TrackId, actions: &mut Vec<Action>) {
        self.tracks.remove(track);
        for (sub, m) in self.members.iter_mut() {
            if m.receiving.remove(track) {
                actions.push(Action::Unsubscribe {
                    subscriber: sub.clone(),
                    track: track.clone(),
                });
            }
        }
    }

    fn remove_tracks_of(&mut self, id: &ParticipantId, actions: &mut Vec<Action>) {
        let own: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|(_, p)| *p == id)
            .map(|(t, _)| t.clone())
            .collect();
        for t in own {
            self.drop_track(&t, actions);
        }
        if let Some(m) = self.members.get_mut(id) {
            m.info.tracks.clear();
        }
    }

    /// Brings the set of relayed tracks in line with who receives what:
    /// a remote track is relayed exactly while some local member receives
    /// it. Starts go first (the edge needs the relayed track before it can
    /// subscribe anyone to it), stops last.
    fn with_relays(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut wanted: BTreeMap<TrackId, NodeId> = BTreeMap::new();
        for (track, publisher) in &self.tracks {
            let Some(Home::Remote(node)) = self.members.get(publisher).map(|m| m.home) else {
                continue;
            };
            if self.members.values().any(|m| m.receiving.contains(track)) {
                wanted.insert(track.clone(), node);
            }
        }
        let mut out = Vec::with_capacity(actions.len() + 2);
        for (track, node) in &wanted {
            if self.relayed.get(track) != Some(node) {
                out.push(Action::RelayStart {
                    track: track.clone(),
                    from: *node,
                });
            }
        }
        out.extend(actions);
        for (track, node) in &self.relayed {
            if wanted.get(track) != Some(node) {
                out.push(Action::RelayStop {
                    track: track.clone(),
                    from: *node,
                });
            }
        }
        // A start for a track that moved to another node needs the stop of
        // the old relay first; the edge keys relays by (track, node), so
        // the order between the two does not matter to it.
        self.relayed = wanted;
        out
    }

    /// What everyone (on every node) is told after a member changed. A
    /// local member's change also goes to the other nodes.
    fn changed(m: &Member) -> Vec<Action> {
        let mut actions = vec![Action::Broadcast {
            msg: ServerMessage::ParticipantUpdated {
                participant: m.info.clone(),
            },
            except: None,
        }];
        if m.home == Home::Local {
            actions.push(Action::Announce(Announcement::Upsert {
                info: m.info.clone(),
                epoch: m.epoch,
            }));
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veche_protocol::signal::{MediaKind, TrackSource};

    fn pid(n: u8) -> ParticipantId {
        ParticipantId::from_random([n; 8])
    }
    fn track(n: u8, owner: u8, source: TrackSource) -> TrackInfo {
        TrackInfo {
            id: TrackId::from_random([n; 8]),
            kind: if source.is_audio() {
                MediaKind::Audio
            } else {
                MediaKind::Video
            },
            source,
            stream_id: pid(owner).to_string(),
        }
    }
    fn subs(actions: &[Action]) -> Vec<(ParticipantId, TrackId)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Subscribe { subscriber, track } => {
                    Some((subscriber.clone(), track.clone()))
                }
                _ => None,
            })
            .collect()
    }
    fn unsubs(actions: &[Action]) -> Vec<(ParticipantId, TrackId)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Unsubscribe { subscriber, track } => {
                    Some((subscriber.clone(), track.clone()))
                }
                _ => None,
            })
            .collect()
    }
    fn join(core: &mut RoomCore, n: u8) -> Vec<Action> {
        core.join(pid(n), format!("P{n}"), MediaState::default(), 0, 1, false)
            .unwrap()
    }

    #[test]
    fn a_published_track_goes_to_everyone_but_its_publisher() {
        let mut core = RoomCore::new();
        join(&mut core, 1);
        join(&mut core, 2);
        join(&mut core, 3);
        let t = track(10, 1, TrackSource::Camera);
        let actions = core.publish(&pid(1), t.clone()).unwrap();
        assert_eq!(
            subs(&actions),
            vec![(pid(2), t.id.clone()), (pid(3), t.id.clone())]
        );
        assert!(core.receiving(&pid(1)).is_empty());
        assert_eq!(core.participant(&pid(1)).unwrap().tracks, vec![t]);
    }

    #[test]
    fn a_late_joiner_receives_every_existing_track_and_others_are_told() {
        let mut core = RoomCore::new();
        join(&mut core, 1);
        let mic = track(10, 1, TrackSource::Microphone);
        let cam = track(11, 1, TrackSource::Camera);
        core.publish(&pid(1), mic.clone()).unwrap();
        core.publish(&pid(1), cam.clone()).unwrap();
        let actions = join(&mut core, 2);
        assert_eq!(subs(&actions), vec![(pid(2), mic.id), (pid(2), cam.id)]);
        assert!(actions.iter().any(|a| matches!(a,
            Action::Broadcast { msg: ServerMessage::ParticipantJoined { participant }, except: Some(e) }
                if participant.id == pid(2) && *e == pid(2))));
    }

    #[test]
    fn leaving_tears_down_every_leg_of_the_leavers_tracks() {
        let mut core = RoomCore::new();
        join(&mut core, 1);
        join(&mut core, 2);
        join(&mut core, 3);
        let cam = track(10, 1, TrackSource::Camera);
        core.publish(&pid(1), cam.clone()).unwrap();
        let actions = core.leave(&pid(1), LeaveReason::Left);
        assert_eq!(
            unsubs(&actions),
            vec![(pid(2), cam.id.clone()), (pid(3), cam.id.clone())]
        );
        assert!(core.publisher_of(&cam.id).is_none());
        assert_eq!(core.snapshot().len(), 2);
        assert!(actions.iter().any(|a| matches!(
            a,
            Action::Broadcast {
                msg: ServerMessage::ParticipantLeft {
                    reason: LeaveReason::Left,
                    ..
                },
                ..
            }
        )));
        // Leaving twice is harmless.
        assert!(core.leave(&pid(1), LeaveReason::Left).is_empty());
    }

    #[test]
    fn unpublishing_a_screen_share_unsubscribes_only_that_track() {
        let mut core = RoomCore::new();
        join(&mut core, 1);
        join(&mut core, 2);
        let cam = track(10, 1, TrackSource::Camera);
        let screen = track(11, 1, TrackSource::Screen);
        core.publish(&pid(1), cam.clone()).unwrap();
        core.publish(&pid(1), screen.clone()).unwrap();
        let actions = core.unpublish(&screen.id);
        assert_eq!(unsubs(&actions), vec![(pid(2), screen.id.clone())]);
        assert_eq!(core.receiving(&pid(2)), vec![cam.id]);
        assert_eq!(core.participant(&pid(1)).unwrap().tracks.len(), 1);
    }

    #[test]
    fn media_and_status_changes_are_broadcast_to_everyone_including_the_subject() {
        let mut core = RoomCore::new();
        join(&mut core, 1);
        let muted = MediaState {
            mic_muted: true,
            ..MediaState::default()
        };
        let actions = core.set_media(&pid(1), muted).unwrap();
        assert!(matches!(
            &actions[..],
            [Action::Broadcast { except: None, .. }, Action::Announce(_)]
        ));
        // No change, no message.
        assert!(core.set_media(&pid(1), muted).unwrap().is_empty());
        let actions = core
            .set_status(&pid(1), PresenceStatus::Reconnecting)
            .unwrap();
        assert_eq!(actions.len(), 2);
        assert_eq!(
            core.participant(&pid(1)).unwrap().status,
            PresenceStatus::Reconnecting
        );
    }

    #[test]
    fn a_resumed_participant_gets_every_track_again_and_loses_its_old_ones() {
        let mut core = RoomCore::new();
        join(&mut core, 1);
        join(&mut core, 2);
        let mine = track(10, 1, TrackSource::Camera);
        let theirs = track(11, 2, TrackSource::Camera);
        core.publish(&pid(1), mine.clone()).unwrap();
        core.publish(&pid(2), theirs.clone()).unwrap();
        core.set_status(&pid(1), PresenceStatus::Reconnecting)
            .unwrap();
        let actions = core.rejoin(&pid(1)).unwrap();
        assert_eq!(unsubs(&actions), vec![(pid(2), mine.id.clone())]);
        assert_eq!(subs(&actions), vec![(pid(1), theirs.id.clone())]);
        let me = core.participant(&pid(1)).unwrap();
        assert_eq!(me.status, PresenceStatus::Connected);
        assert!(me.tracks.is_empty());
        assert!(core.publisher_of(&mine.id).is_none());
        assert_eq!(core.rejoin(&pid(9)), Err(CoreError::NotInRoom));
    }

    #[test]
    fn refusals_do_not_change_state() {
        let mut core = RoomCore::new();
        join(&mut core, 1);
        assert_eq!(
            core.join(pid(1), "again".into(), MediaState::default(), 0, 1, false),
            Err(CoreError::AlreadyInRoom)
        );
        let t = track(10, 9, TrackSource::Camera);
        assert_eq!(core.publish(&pid(9), t.clone()), Err(CoreError::NotInRoom));
        core.publish(&pid(1), t.clone()).unwrap();
        assert_eq!(core.publish(&pid(1), t), Err(CoreError::DuplicateTrack));
        assert_eq!(core.snapshot()[0].display_name, "P1");
    }

    const B: NodeId = NodeId(2);
    const C: NodeId = NodeId(3);

    fn remote(n: u8, tracks: Vec<TrackInfo>) -> ParticipantInfo {
        ParticipantInfo {
            id: pid(n),
            display_name: format!("R{n}"),
            status: PresenceStatus::Connected,
            media: MediaState::default(),
            tracks,
            joined_at_ms: 0,
        }
    }
    fn relays(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::RelayStart { track, from } => Some(format!("start {track} {from}")),
                Action::RelayStop { track, from } => Some(format!("stop {track} {from}")),
                _ => None,
            })
            .collect()
    }
    fn announced(actions: &[Action]) -> Vec<Announcement> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Announce(x) => Some(x.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_change_to_a_local_participant_is_announced_to_other_nodes() {
        let mut core = RoomCore::new();
        let a = join(&mut core, 1);
        assert!(matches!(
            &announced(&a)[..],
            [Announcement::Upsert { epoch: 1, .. }]
        ));
        let cam = track(10, 1, TrackSource::Camera);
        let a = core.publish(&pid(1), cam.clone()).unwrap();
        assert!(
            matches!(&announced(&a)[..], [Announcement::Upsert { info, .. }] if info.tracks == vec![cam.clone()])
        );
        let a = core.leave(&pid(1), LeaveReason::Left);
        assert_eq!(
            announced(&a),
            vec![Announcement::Left {
                participant_id: pid(1),
                reason: LeaveReason::Left
            }]
        );
        // Remote members' changes are not re-announced: their own node does.
        let a = core.remote_upsert(B, remote(2, vec![]), 5);
        assert!(announced(&a).is_empty());
    }

    #[test]
    fn a_remote_track_is_relayed_once_while_anyone_here_receives_it() {
        let mut core = RoomCore::new();
        let cam = track(20, 2, TrackSource::Camera);
        // Nobody here yet: a remote publisher's track is not relayed.
        let a = core.remote_upsert(B, remote(2, vec![cam.clone()]), 5);
        assert!(relays(&a).is_empty());
        assert!(matches!(
            &a[..],
            [Action::Broadcast {
                msg: ServerMessage::ParticipantJoined { .. },
                except: None
            }]
        ));
        // The first local participant starts the relay, before subscribing.
        let a = join(&mut core, 1);
        assert_eq!(relays(&a), vec![format!("start {} {B}", cam.id)]);
        assert!(matches!(a[0], Action::RelayStart { .. }));
        assert_eq!(subs(&a), vec![(pid(1), cam.id.clone())]);
        // A second local participant shares the same relay.
        let a = join(&mut core, 3);
        assert!(relays(&a).is_empty());
        assert_eq!(subs(&a), vec![(pid(3), cam.id.clone())]);
        core.leave(&pid(1), LeaveReason::Left);
        // The last local receiver leaving stops it, after unsubscribing.
        let a = core.leave(&pid(3), LeaveReason::Left);
        assert_eq!(relays(&a), vec![format!("stop {} {B}", cam.id)]);
        assert!(matches!(a.last(), Some(Action::RelayStop { .. })));
        assert!(core.relayed().is_empty());
        assert!(core.is_empty(), "only remote members are left");
    }

    #[test]
    fn remote_track_changes_subscribe_and_unsubscribe_local_members() {
        let mut core = RoomCore::new();
        join(&mut core, 1);
        let cam = track(20, 2, TrackSource::Camera);
        let screen = track(21, 2, TrackSource::Screen);
        core.remote_upsert(B, remote(2, vec![cam.clone()]), 5);
        let a = core.remote_upsert(B, remote(2, vec![cam.clone(), screen.clone()]), 5);
        assert_eq!(subs(&a), vec![(pid(1), screen.id.clone())]);
        assert_eq!(relays(&a), vec![format!("start {} {B}", screen.id)]);
        assert!(matches!(
            a.last(),
            Some(Action::Broadcast {
                msg: ServerMessage::ParticipantUpdated { .. },
                ..
            })
        ));
        let a = core.remote_upsert(B, remote(2, vec![cam.clone()]), 5);
        assert_eq!(unsubs(&a), vec![(pid(1), screen.id.clone())]);
        assert_eq!(relays(&a), vec![format!("stop {} {B}", screen.id)]);
        let a = core.remote_left(B, &pid(2), LeaveReason::Left);
        assert_eq!(unsubs(&a), vec![(pid(1), cam.id.clone())]);
        assert!(core.participant(&pid(2)).is_none());
        // A "left" from a node the participant is not on is ignored.
        core.remote_upsert(B, remote(4, vec![]), 5);
        assert!(core.remote_left(C, &pid(4), LeaveReason::Left).is_empty());
    }

    #[test]
    fn a_lost_nodes_participants_show_reconnecting_then_leave_unless_they_come_back() {
        let mut core = RoomCore::new();
        join(&mut core, 1);
        let cam = track(20, 2, TrackSource::Camera);
        core.remote_upsert(B, remote(2, vec![cam.clone()]), 5);
        core.remote_upsert(B, remote(3, vec![]), 5);
        let (a, waiting) = core.node_lost(B);
        assert_eq!(waiting, vec![pid(2), pid(3)]);
        assert_eq!(unsubs(&a), vec![(pid(1), cam.id.clone())]);
        assert_eq!(relays(&a), vec![format!("stop {} {B}", cam.id)]);
        assert_eq!(
            core.participant(&pid(2)).unwrap().status,
            PresenceStatus::Reconnecting
        );
        // Participant 2 comes back through node C with a newer session.
        let cam2 = track(22, 2, TrackSource::Camera);
        let a = core.remote_upsert(C, remote(2, vec![cam2.clone()]), 6);
        assert_eq!(relays(&a), vec![format!("start {} {C}", cam2.id)]);
        assert!(
            matches!(a.last(), Some(Action::Broadcast { msg: ServerMessage::ParticipantUpdated { participant }, .. }) if participant.status == PresenceStatus::Connected)
        );
        // The grace timers fire: 2 is back (nothing happens), 3 is gone.
        assert!(core.expire_remote(B, &pid(2)).is_empty());
        let a = core.expire_remote(B, &pid(3));
        assert!(matches!(
            &a[..],
            [Action::Broadcast {
                msg: ServerMessage::ParticipantLeft {
                    reason: LeaveReason::Disconnected,
                    ..
                },
                ..
            }]
        ));
    }

    #[test]
    fn the_newest_session_of_a_participant_wins_across_nodes() {
        let mut core = RoomCore::new();
        core.join(pid(1), "P1".into(), MediaState::default(), 0, 10, false)
            .unwrap();
        let mine = track(10, 1, TrackSource::Camera);
        core.publish(&pid(1), mine.clone()).unwrap();
        join(&mut core, 3);
        // An older session announced from elsewhere is ignored.
        assert!(core.remote_upsert(B, remote(1, vec![]), 9).is_empty());
        assert_eq!(core.home(&pid(1)), Some(Home::Local));
        // A newer one means they moved: drop the seat here quietly, and
        // the others here now get their tracks from the new node.
        let moved = track(11, 1, TrackSource::Camera);
        let a = core.remote_upsert(B, remote(1, vec![moved.clone()]), 11);
        assert!(a.contains(&Action::DropSeat {
            participant: pid(1)
        }));
        assert_eq!(unsubs(&a), vec![(pid(3), mine.id.clone())]);
        assert_eq!(subs(&a), vec![(pid(3), moved.id.clone())]);
        assert!(!a.iter().any(|x| matches!(
            x,
            Action::Broadcast {
                msg: ServerMessage::ParticipantLeft { .. },
                ..
            }
        )));
        assert!(announced(&a).is_empty(), "the new node announces them now");
        assert_eq!(core.home(&pid(1)), Some(Home::Remote(B)));
    }

    #[test]
    fn a_participant_known_from_another_node_can_take_their_seat_here() {
        let mut core = RoomCore::new();
        join(&mut core, 3);
        let cam = track(20, 2, TrackSource::Camera);
        core.remote_upsert(B, remote(2, vec![cam.clone()]), 5);
        let a = core
            .join(pid(2), "R2".into(), MediaState::default(), 99, 6, true)
            .unwrap();
        assert_eq!(unsubs(&a), vec![(pid(3), cam.id.clone())]);
        assert_eq!(relays(&a), vec![format!("stop {} {B}", cam.id)]);
        // Others see an update, not a second join, and reconnecting until
        // the new connection carries media.
        assert!(a.iter().any(|x| matches!(x, Action::Broadcast { msg: ServerMessage::ParticipantUpdated { participant }, .. } if participant.status == PresenceStatus::Reconnecting)));
        assert_eq!(core.home(&pid(2)), Some(Home::Local));
        let a = core.set_status(&pid(2), PresenceStatus::Connected).unwrap();
        assert!(matches!(
            &announced(&a)[..],
            [Announcement::Upsert { epoch: 6, .. }]
        ));
    }

    #[test]
    fn a_full_state_from_a_node_removes_those_it_no_longer_lists() {
        let mut core = RoomCore::new();
        join(&mut core, 1);
        core.remote_upsert(B, remote(2, vec![]), 5);
        core.remote_upsert(B, remote(3, vec![]), 5);
        core.remote_upsert(C, remote(4, vec![]), 5);
        let a = core.remote_state(B, vec![(remote(3, vec![]), 5)]);
        assert!(a.iter().any(|x| matches!(x, Action::Broadcast { msg: ServerMessage::ParticipantLeft { participant_id, .. }, .. } if *participant_id == pid(2))));
        assert_eq!(core.snapshot().len(), 3);
        core.remote_closed(C);
        assert!(core.participant(&pid(4)).is_none());
    }
}
