//! Rules for participants of other nodes hosting the room, as those nodes
//! announce them: upserts, departures, full states, and a node lost.
//! Each node is the authority for its own participants; the newest
//! session of a participant wins across nodes.

use super::{Action, Home, Member, RoomCore};
use std::collections::BTreeSet;
use veche_protocol::signal::{LeaveReason, ParticipantInfo, PresenceStatus, ServerMessage};
use veche_protocol::{NodeId, ParticipantId, TrackId};

impl RoomCore {
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

    pub(super) fn members_on(&self, node: NodeId) -> Vec<ParticipantId> {
        self.members
            .iter()
            .filter(|(_, m)| m.home == Home::Remote(node))
            .map(|(id, _)| id.clone())
            .collect()
    }
}
