//! The room's exchange with the other media nodes hosting it: full
//! states and deltas about participants, chat, MLS handshake messages, and
//! which tracks each node relays to the other. The rules are in [`crate::core`]; this carries
//! them out over the [`crate::relay::Relay`].

use super::{Claims, Inner, PolicySource, Room};
use crate::core::{Action, Home};
use crate::track::{Origin, UpTrack};
use veche_protocol::relay::{RelayCodec, RelayMsg, RemoteParticipant};
use veche_protocol::rpc::RelayPeer;
use veche_protocol::signal::{ParticipantInfo, ServerMessage};
use veche_protocol::{NodeId, ParticipantId, TrackId};

impl Room {
    /// Sends `msg` to every other node hosting the room.
    pub(super) fn tell_peers(&self, inner: &Inner, msg: &RelayMsg) {
        if let Some(relay) = &self.relay {
            for peer in &inner.peers {
                relay.send(*peer, msg);
            }
        }
    }

    /// Builds the stand-in for a remote track and asks its node to relay it.
    pub(super) fn start_relay(&self, inner: &mut Inner, track: TrackId, from: NodeId) {
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
        let (up, slot) = relay.subscribe(from, self.info.id, track.clone(), |upstream| {
            UpTrack::new(
                info,
                publisher,
                rtc_codec(&codec),
                String::new(),
                Origin::Relayed,
                upstream,
                metrics,
            )
        });
        inner.tracks.insert(track.clone(), up);
        inner.relays.insert(track, (from, slot));
    }

    /// Starts exchanging the room with another node that hosts it (named by
    /// a join token or a heartbeat reply), unless already doing so.
    pub fn link_peer(&self, peer: &RelayPeer) {
        let Some(relay) = &self.relay else { return };
        relay.learn(peer);
        let mut inner = self.lock();
        if inner.peers.insert(peer.node_id) {
            self.send_state(&inner, peer.node_id, true);
            self.send_lobby(&inner, peer.node_id);
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
            inner.remote_claims.insert(
                p.info.id.clone(),
                Claims {
                    role: p.claimed_role,
                    user: p.user,
                    pass: p.pass,
                },
            );
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
                    self.send_lobby(&inner, from);
                }
            }
            RelayMsg::Upsert { participant, .. } => {
                if inner.peers.insert(from) {
                    // It knows us but we did not know it: it needs our state.
                    self.send_state(&inner, from, true);
                    self.send_lobby(&inner, from);
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
                self.remote_lobby(&mut inner, from, None);
                let actions = inner.core.remote_closed(from);
                self.run(&mut inner, actions);
            }
            RelayMsg::Subscribe { track, slot, .. } => {
                let up = inner.tracks.get(&track).cloned();
                match (up, &self.relay) {
                    (Some(up), Some(relay)) if up.origin() == Origin::Local => {
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
            RelayMsg::Policy { policy, .. } => {
                self.apply_policy_locked(&mut inner, policy, PolicySource::Relayed);
            }
            RelayMsg::Lobby { waiting, .. } => self.remote_lobby(&mut inner, from, Some(waiting)),
            RelayMsg::E2ee { message, .. } => self.e2ee_from_peer(&mut inner, from, message),
            RelayMsg::Hello { .. } => {}
        }
        let inner = &mut *inner;
        let core = &inner.core;
        inner
            .remote_claims
            .retain(|id, _| matches!(core.home(id), Some(Home::Remote(_))));
        self.observe(inner);
    }

    /// Another node became unreachable: its participants show as
    /// reconnecting. Returns who is waiting, for the grace timers.
    pub fn node_lost(&self, peer: NodeId) -> Vec<ParticipantId> {
        let mut inner = self.lock();
        inner.peers.remove(&peer);
        self.remote_lobby(&mut inner, peer, None);
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
        self.stop_recording(&mut inner);
    }
}

/// One of our participants as other nodes need them: with the codec of
/// each track they publish.
pub(super) fn remote_participant(
    inner: &Inner,
    info: ParticipantInfo,
    epoch: u64,
) -> RemoteParticipant {
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
    let claims = inner
        .seats
        .get(&info.id)
        .map(|s| s.claims.clone())
        .unwrap_or_default();
    RemoteParticipant {
        info,
        epoch,
        codecs,
        user: claims.user,
        pass: claims.pass,
        claimed_role: claims.role,
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
