//! The room's decisions, without I/O: who is in the room, what they
//! publish, who receives which track, and which messages everyone must see.
//!
//! The session and media code at the edge feeds events in and carries out
//! the returned [`Action`]s in order. Because nothing here touches a socket
//! or a clock, every rule is unit-tested directly.
//!
//! The rules are split by whom they are about: `local` for participants
//! connected to this node, `remote` for those other nodes announce, and
//! `relays` for which remote tracks this node has relayed to it. This
//! file holds the state they share and the bookkeeping of tracks.

mod local;
mod relays;
mod remote;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use veche_protocol::signal::{LeaveReason, ParticipantInfo, ServerMessage};
use veche_protocol::{NodeId, ParticipantId, TrackId};

/// Something the edge must do after the core changed state.
// The policy in a message (since recordings, with its running recording)
// makes messages large; they are short-lived, so boxing buys nothing.
#[allow(clippy::large_enum_variant)]
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
