//! Rules for participants connected to this node: joining, publishing,
//! leaving, resuming, and changes to their devices and connection.

use super::{Action, Announcement, CoreError, Home, Member, RoomCore};
use std::collections::BTreeSet;
use veche_protocol::moderation::Role;
use veche_protocol::signal::{
    LeaveReason, MediaState, ParticipantInfo, PresenceStatus, ServerMessage, TrackInfo,
};
use veche_protocol::{ParticipantId, TrackId, UnixMillis};

impl RoomCore {
    /// A participant joins on this node. They are subscribed to every track
    /// already published, and everyone else is told.
    ///
    /// A participant already known as another node's comes back here (that
    /// node died or is draining): they keep their place in the list, their
    /// old tracks go, and with `rejoining` they show as reconnecting until
    /// [`RoomCore::set_status`] says their media flows again. `guest`
    /// (from the join token) is shown to others as it is; `role` is the
    /// token's role raised by the room's policy.
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &mut self,
        id: ParticipantId,
        display_name: String,
        guest: bool,
        role: Role,
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
            guest,
            role,
            hand_raised_at_ms: None,
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

    /// A participant's role changed (the room's policy granted or took
    /// back moderator): everyone sees their new entry.
    pub fn set_role(&mut self, id: &ParticipantId, role: Role) -> Result<Vec<Action>, CoreError> {
        let m = self.members.get_mut(id).ok_or(CoreError::NotInRoom)?;
        if m.info.role == role {
            return Ok(Vec::new());
        }
        m.info.role = role;
        Ok(Self::changed(m))
    }

    /// A participant raised (`Some(time)`, by this node's clock) or lowered
    /// (`None`) their hand. Raising an already raised hand keeps its place
    /// in the queue.
    pub fn set_hand(
        &mut self,
        id: &ParticipantId,
        raised_at_ms: Option<UnixMillis>,
    ) -> Result<Vec<Action>, CoreError> {
        let m = self.members.get_mut(id).ok_or(CoreError::NotInRoom)?;
        let next = match (m.info.hand_raised_at_ms, raised_at_ms) {
            (Some(t), Some(_)) => Some(t),
            (_, r) => r,
        };
        if m.info.hand_raised_at_ms == next {
            return Ok(Vec::new());
        }
        m.info.hand_raised_at_ms = next;
        Ok(Self::changed(m))
    }

    /// Raised hands on every node, first raised first; ties by id, so
    /// every node and client agrees on the order.
    pub fn raised_hands(&self) -> Vec<ParticipantId> {
        let mut hands: Vec<(UnixMillis, &ParticipantId)> = self
            .members
            .iter()
            .filter_map(|(id, m)| m.info.hand_raised_at_ms.map(|t| (t, id)))
            .collect();
        hands.sort();
        hands.into_iter().map(|(_, id)| id.clone()).collect()
    }

    /// Every participant's role, on every node (a remote participant's as
    /// their node computed it).
    pub fn roles(&self) -> Vec<(ParticipantId, Role)> {
        self.members
            .iter()
            .map(|(id, m)| (id.clone(), m.info.role))
            .collect()
    }
}
