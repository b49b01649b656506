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
use veche_protocol::{ParticipantId, TrackId, UnixMillis};

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
    /// Send to every participant in the room except `except`.
    Broadcast {
        /// The message.
        msg: ServerMessage,
        /// Who not to send it to (usually the one it is about, who learns
        /// it another way).
        except: Option<ParticipantId>,
    },
}

#[derive(Clone, Debug)]
struct Member {
    info: ParticipantInfo,
    /// Tracks of others this member currently receives.
    receiving: BTreeSet<TrackId>,
}

/// One room's membership and subscription state on this node.
#[derive(Debug, Default)]
pub struct RoomCore {
    members: BTreeMap<ParticipantId, Member>,
    /// Track id -> publisher.
    tracks: BTreeMap<TrackId, ParticipantId>,
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

    /// True when nobody is in the room, so the edge can drop it.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Everyone in the room, in a stable order (by id).
    pub fn snapshot(&self) -> Vec<ParticipantInfo> {
        self.members.values().map(|m| m.info.clone()).collect()
    }

    /// One participant's state.
    pub fn participant(&self, id: &ParticipantId) -> Option<&ParticipantInfo> {
        self.members.get(id).map(|m| &m.info)
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

    /// A participant joins. They are subscribed to every track already
    /// published, and everyone else is told.
    pub fn join(
        &mut self,
        id: ParticipantId,
        display_name: String,
        media: MediaState,
        now_ms: UnixMillis,
    ) -> Result<Vec<Action>, CoreError> {
        if self.members.contains_key(&id) {
            return Err(CoreError::AlreadyInRoom);
        }
        let info = ParticipantInfo {
            id: id.clone(),
            display_name,
            status: PresenceStatus::Connected,
            media,
            tracks: Vec::new(),
            joined_at_ms: now_ms,
        };
        let mut actions = Vec::new();
        let mut receiving = BTreeSet::new();
        for track in self.tracks.keys() {
            receiving.insert(track.clone());
            actions.push(Action::Subscribe {
                subscriber: id.clone(),
                track: track.clone(),
            });
        }
        actions.push(Action::Broadcast {
            msg: ServerMessage::ParticipantJoined {
                participant: info.clone(),
            },
            except: Some(id.clone()),
        });
        self.members.insert(id, Member { info, receiving });
        Ok(actions)
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
        self.tracks.insert(track.id.clone(), publisher.clone());
        let mut actions = Vec::new();
        for (id, m) in self.members.iter_mut() {
            if id != publisher {
                m.receiving.insert(track.id.clone());
                actions.push(Action::Subscribe {
                    subscriber: id.clone(),
                    track: track.id.clone(),
                });
            }
        }
        let m = self.members.get_mut(publisher).expect("checked above");
        m.info.tracks.push(track);
        actions.push(Self::updated(&m.info));
        Ok(actions)
    }

    /// A track stops (the publisher stopped sharing, or its connection
    /// renegotiated it away). Everyone stops receiving it.
    pub fn unpublish(&mut self, track: &TrackId) -> Vec<Action> {
        let Some(publisher) = self.tracks.remove(track) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        for (id, m) in self.members.iter_mut() {
            if m.receiving.remove(track) {
                actions.push(Action::Unsubscribe {
                    subscriber: id.clone(),
                    track: track.clone(),
                });
            }
        }
        if let Some(m) = self.members.get_mut(&publisher) {
            m.info.tracks.retain(|t| &t.id != track);
            actions.push(Self::updated(&m.info));
        }
        actions
    }

    /// A participant leaves, for any reason. Their tracks are unpublished
    /// first (so others' down tracks are torn down), then everyone is told.
    pub fn leave(&mut self, id: &ParticipantId, reason: LeaveReason) -> Vec<Action> {
        let Some(member) = self.members.get(id) else {
            return Vec::new();
        };
        let own: Vec<TrackId> = member.info.tracks.iter().map(|t| t.id.clone()).collect();
        let mut actions = Vec::new();
        for t in own {
            if let Some(publisher) = self.tracks.remove(&t) {
                debug_assert_eq!(&publisher, id);
            }
            for (sub, m) in self.members.iter_mut() {
                if m.receiving.remove(&t) {
                    actions.push(Action::Unsubscribe {
                        subscriber: sub.clone(),
                        track: t.clone(),
                    });
                }
            }
        }
        self.members.remove(id);
        actions.push(Action::Broadcast {
            msg: ServerMessage::ParticipantLeft {
                participant_id: id.clone(),
                reason,
            },
            except: Some(id.clone()),
        });
        actions
    }

    /// A participant's connection was replaced by a new one (they resumed
    /// after a drop). Their old connection's tracks are gone, so they are
    /// unpublished; the new connection receives nothing yet, so it is
    /// subscribed to every track of the others; and everyone sees them
    /// connected again.
    pub fn rejoin(&mut self, id: &ParticipantId) -> Result<Vec<Action>, CoreError> {
        let own: Vec<TrackId> = self
            .members
            .get(id)
            .ok_or(CoreError::NotInRoom)?
            .info
            .tracks
            .iter()
            .map(|t| t.id.clone())
            .collect();
        let mut actions = Vec::new();
        for t in &own {
            self.tracks.remove(t);
            for (sub, m) in self.members.iter_mut() {
                if m.receiving.remove(t) {
                    actions.push(Action::Unsubscribe {
                        subscriber: sub.clone(),
                        track: t.clone(),
                    });
                }
            }
        }
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
        actions.push(Self::updated(&m.info));
        Ok(actions)
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
        Ok(vec![Self::updated_to_all(&m.info)])
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
        Ok(vec![Self::updated(&m.info)])
    }

    /// Updates go to everyone including the subject, so that every client
    /// renders from the same server state (the list is "the same for
    /// everyone").
    fn updated(info: &ParticipantInfo) -> Action {
        Self::updated_to_all(info)
    }

    fn updated_to_all(info: &ParticipantInfo) -> Action {
        Action::Broadcast {
            msg: ServerMessage::ParticipantUpdated {
                participant: info.clone(),
            },
            except: None,
        }
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
        core.join(pid(n), format!("P{n}"), MediaState::default(), 0)
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
        assert!(matches!(
            actions.last(),
            Some(Action::Broadcast {
                msg: ServerMessage::ParticipantLeft {
                    reason: LeaveReason::Left,
                    ..
                },
                ..
            })
        ));
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
            [Action::Broadcast { except: None, .. }]
        ));
        // No change, no message.
        assert!(core.set_media(&pid(1), muted).unwrap().is_empty());
        let actions = core
            .set_status(&pid(1), PresenceStatus::Reconnecting)
            .unwrap();
        assert_eq!(actions.len(), 1);
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
            core.join(pid(1), "again".into(), MediaState::default(), 0),
            Err(CoreError::AlreadyInRoom)
        );
        let t = track(10, 9, TrackSource::Camera);
        assert_eq!(core.publish(&pid(9), t.clone()), Err(CoreError::NotInRoom));
        core.publish(&pid(1), t.clone()).unwrap();
        assert_eq!(core.publish(&pid(1), t), Err(CoreError::DuplicateTrack));
        assert_eq!(core.snapshot()[0].display_name, "P1");
    }
}
