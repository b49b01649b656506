//! The media-node to media-node relay protocol (cascading over QUIC).
//!
//! Two nodes that host the same room exchange its state and its media over
//! QUIC, authenticated by mutual TLS under the cluster CA. A connection
//! carries traffic in one direction only: each node dials every peer it has
//! something to say to and sends on its own connection, and it receives on
//! the connections it accepted. That makes two connections per busy pair,
//! and in exchange there is no race to settle when both dial at once.
//!
//! On a connection:
//! - one unidirectional **control stream**, opened first, carries
//!   [`RelayMsg`] frames: a 4-byte big-endian length, then the message as
//!   MessagePack with field names (`rmp_serde::to_vec_named`), at most
//!   [`MAX_CONTROL_FRAME`] bytes;
//! - **datagrams** carry RTP and RTCP feedback behind a 3-byte header (see
//!   [`DatagramHeader`]). Media is never retransmitted by QUIC: a late
//!   packet is worse than a lost one, and the receiving node asks for what
//!   it misses with a NACK of its own.

use crate::chat::ChatMessage;
use crate::ids::{ParticipantId, RoomId, TrackId};
use crate::signal::{LeaveReason, ParticipantInfo};
use serde::{Deserialize, Serialize};

/// ALPN of the relay protocol; a peer speaking another version fails the
/// handshake instead of misreading frames.
pub const RELAY_ALPN: &[u8] = b"veche-relay/1";

pub use crate::limits::relay::{MAX_CONTROL_DEPTH, MAX_CONTROL_FRAME};

/// The codec a relayed track carries, so the receiving node can announce
/// it to its own subscribers exactly as the publisher's node did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayCodec {
    /// e.g. `video/VP8`.
    pub mime_type: String,
    /// e.g. 90000.
    pub clock_rate: u32,
    /// Audio channels; 0 for video.
    pub channels: u16,
    /// The `a=fmtp` parameters.
    pub sdp_fmtp_line: String,
}

/// A participant hosted by the sending node, as other nodes need it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoteParticipant {
    /// What every client sees, including the tracks.
    pub info: ParticipantInfo,
    /// Orders sessions of the same participant across nodes: the issue
    /// time of their join token. When a participant moves to another node
    /// (node lost, drain) the newer session wins everywhere.
    pub epoch: u64,
    /// The codec of each of `info.tracks`, by track id.
    pub codecs: Vec<(TrackId, RelayCodec)>,
    /// The account they joined with (from their join token), so that a
    /// moderator on another node can ban it with them. Never shown to
    /// clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<crate::ids::UserId>,
    /// The guest pass they joined with, for the same reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<crate::pass::PassId>,
    /// The role their join token claims (their entry's `role` is this
    /// raised by the policy), so every node computes roles alike.
    #[serde(default)]
    pub claimed_role: crate::moderation::Role,
}

/// A message on the control stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RelayMsg {
    /// First frame on a connection.
    Hello {
        /// Protocol version; see [`RELAY_VERSION`].
        version: u32,
        /// Where the sender accepts relay connections, so the receiver can
        /// dial back without asking the control plane.
        relay_addr: String,
    },
    /// The sender hosts `room`; these are all its participants there.
    /// Sent when a node starts exchanging a room with the receiver: when
    /// it learns the receiver hosts it (from a join token, a heartbeat
    /// reply, or an `upsert` from a node it did not know), and after a lost
    /// link, since either side may have dropped the other's participants.
    RoomState {
        /// The room.
        room: RoomId,
        /// The sender's participants in it.
        participants: Vec<RemoteParticipant>,
        /// The sender has no (current) view of the receiver's participants:
        /// answer with a `room_state` of your own, with this false, so the
        /// exchange ends there.
        reply_wanted: bool,
    },
    /// One of the sender's participants joined or changed.
    Upsert {
        /// The room.
        room: RoomId,
        /// Their whole new state.
        participant: RemoteParticipant,
    },
    /// One of the sender's participants left.
    Left {
        /// The room.
        room: RoomId,
        /// Who.
        participant_id: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
    /// The sender no longer hosts anyone in `room`.
    RoomClosed {
        /// The room.
        room: RoomId,
    },
    /// The sender has subscribers for `track` (published on the receiver):
    /// relay its RTP with `slot` in the datagram header.
    Subscribe {
        /// The room.
        room: RoomId,
        /// The track.
        track: TrackId,
        /// The id the sender chose for it, unique on this connection.
        slot: u16,
    },
    /// The sender's last subscriber of `track` left: stop relaying it.
    Unsubscribe {
        /// The room.
        room: RoomId,
        /// The track.
        track: TrackId,
    },
    /// A committed chat message, for the receiver's participants.
    Chat {
        /// The room.
        room: RoomId,
        /// The message.
        message: ChatMessage,
    },
    /// The room's moderation policy as the sender last got it from the
    /// control plane. The receiver keeps it if its version is newer than
    /// its own, and enforces it for its participants.
    Policy {
        /// The room.
        room: RoomId,
        /// The policy.
        policy: crate::moderation::RoomPolicy,
    },
    /// Everyone waiting in the room's lobby on the sender: the whole list,
    /// on every change, so the receiver's moderators see them too.
    Lobby {
        /// The room.
        room: RoomId,
        /// The sender's waiters.
        waiting: Vec<crate::moderation::LobbyEntry>,
    },
    /// An MLS handshake message the control plane ordered
    /// ([`crate::e2ee`]), for all of the receiver's participants: one of
    /// the server messages `e2ee_found`, `e2ee_key_package` or
    /// `e2ee_commit`, exactly as the sender's participants got it. The
    /// sender already served its own participants (and left out the
    /// sender of a key package, who is among them). The receiver drops
    /// any other message kind, and any whose opaque fields break the
    /// client limits ([`check_e2ee`]); the largest legal one, a full
    /// commit with a full welcome, fits in [`MAX_CONTROL_FRAME`].
    E2ee {
        /// The room.
        room: RoomId,
        /// The message for the receiver's participants.
        message: crate::signal::ServerMessage,
    },
}

impl RelayMsg {
    /// The room a message is about; `None` for `hello`.
    pub fn room(&self) -> Option<RoomId> {
        match self {
            RelayMsg::Hello { .. } => None,
            RelayMsg::RoomState { room, .. }
            | RelayMsg::Upsert { room, .. }
            | RelayMsg::Left { room, .. }
            | RelayMsg::RoomClosed { room }
            | RelayMsg::Subscribe { room, .. }
            | RelayMsg::Unsubscribe { room, .. }
            | RelayMsg::Chat { room, .. }
            | RelayMsg::Policy { room, .. }
            | RelayMsg::Lobby { room, .. }
            | RelayMsg::E2ee { room, .. } => Some(*room),
        }
    }
}

/// Checks the message of a [`RelayMsg::E2ee`] as the sender's node
/// checked the client's: one of the three handshake kinds, its opaque
/// fields within [`crate::limits::e2ee`]. A peer node is trusted to have
/// ordered it; this only bounds what a broken peer makes this node pass
/// on to browsers.
pub fn check_e2ee(message: &crate::signal::ServerMessage) -> Result<(), RelayE2eeError> {
    use crate::e2ee::{check_commit, check_key_package, CommitLabels};
    use crate::signal::ServerMessage as S;
    match message {
        S::E2eeFound { .. } => Ok(()),
        S::E2eeKeyPackage { key_package, .. } => Ok(check_key_package(key_package)?),
        S::E2eeCommit {
            group,
            epoch,
            added,
            removed,
            commit,
            welcome,
            ..
        } => Ok(check_commit(
            &CommitLabels {
                group: *group,
                epoch: *epoch,
                added: added.clone(),
                removed: removed.clone(),
            },
            commit,
            welcome.as_deref(),
        )?),
        _ => Err(RelayE2eeError::NotHandshake),
    }
}

/// Why a [`RelayMsg::E2ee`] was dropped.
#[derive(Debug, thiserror::Error)]
pub enum RelayE2eeError {
    /// The message is not one of the three handshake kinds.
    #[error("not an e2ee handshake message")]
    NotHandshake,
    /// An opaque field breaks the limits a client's message must keep.
    #[error(transparent)]
    Limits(#[from] crate::e2ee::E2eeError),
}

/// The relay protocol version in [`RelayMsg::Hello`].
pub const RELAY_VERSION: u32 = 1;

/// Why a control frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum RelayDecodeError {
    /// The length prefix exceeds [`MAX_CONTROL_FRAME`].
    #[error("control frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// Not a valid message.
    #[error("control frame is not a valid message: {0}")]
    Invalid(String),
}

impl RelayMsg {
    /// The frame for the control stream: length prefix and body.
    pub fn encode(&self) -> Vec<u8> {
        let body = rmp_serde::to_vec_named(self).expect("relay messages always serialise");
        let mut out = Vec::with_capacity(4 + body.len());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Checks a length prefix before the body is read.
    pub fn check_len(prefix: [u8; 4]) -> Result<usize, RelayDecodeError> {
        let len = u32::from_be_bytes(prefix) as usize;
        if len > MAX_CONTROL_FRAME {
            return Err(RelayDecodeError::TooLarge(len));
        }
        Ok(len)
    }

    /// Decodes a frame body (without its length prefix).
    pub fn decode(body: &[u8]) -> Result<Self, RelayDecodeError> {
        let mut de = rmp_serde::Deserializer::from_read_ref(body);
        de.set_max_depth(MAX_CONTROL_DEPTH);
        serde::Deserialize::deserialize(&mut de)
            .map_err(|e: rmp_serde::decode::Error| RelayDecodeError::Invalid(e.to_string()))
    }
}

/// What a datagram carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatagramKind {
    /// An RTP packet of the track in `slot`, exactly as the publisher's
    /// node received it. Publisher -> subscriber node.
    Rtp,
    /// A keyframe request for the track in `slot`, no payload. Subscriber
    /// node -> publisher node.
    Pli,
    /// Missing RTP sequence numbers of the track in `slot`: the payload is
    /// big-endian `u16`s. Subscriber node -> publisher node, which resends
    /// what it still has.
    Nack,
}

/// The compact header in front of every datagram: a kind byte and the
/// track's slot, big-endian. Three bytes, so an RTP packet that fits a
/// 1200-byte WebRTC path fits a QUIC datagram on any path that carries
/// QUIC at all (quinn starts at 1200 and probes upwards).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatagramHeader {
    /// What follows.
    pub kind: DatagramKind,
    /// Which track, as chosen in [`RelayMsg::Subscribe`].
    pub slot: u16,
}

/// Length of [`DatagramHeader`] on the wire.
pub const DATAGRAM_HEADER_LEN: usize = 3;

impl DatagramHeader {
    /// Writes the header.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(match self.kind {
            DatagramKind::Rtp => 0,
            DatagramKind::Pli => 1,
            DatagramKind::Nack => 2,
        });
        out.extend_from_slice(&self.slot.to_be_bytes());
    }

    /// Splits a datagram into header and payload; `None` if it is too short
    /// or of an unknown kind (a newer peer's), which the caller drops.
    pub fn parse(datagram: &[u8]) -> Option<(Self, &[u8])> {
        if datagram.len() < DATAGRAM_HEADER_LEN {
            return None;
        }
        let kind = match datagram[0] {
            0 => DatagramKind::Rtp,
            1 => DatagramKind::Pli,
            2 => DatagramKind::Nack,
            _ => return None,
        };
        let slot = u16::from_be_bytes([datagram[1], datagram[2]]);
        Some((
            DatagramHeader { kind, slot },
            &datagram[DATAGRAM_HEADER_LEN..],
        ))
    }
}

/// Builds a NACK payload.
pub fn encode_nack(seqs: &[u16]) -> Vec<u8> {
    seqs.iter().flat_map(|s| s.to_be_bytes()).collect()
}

/// Reads a NACK payload; a trailing odd byte is ignored.
pub fn decode_nack(payload: &[u8]) -> Vec<u16> {
    payload
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2ee::E2eeError;
    use crate::signal::{MediaKind, MediaState, PresenceStatus, TrackInfo, TrackSource};

    fn participant() -> RemoteParticipant {
        let track = TrackId::from_random([7; 8]);
        RemoteParticipant {
            info: ParticipantInfo {
                id: ParticipantId::from_random([1; 8]),
                display_name: "Ada".into(),
                status: PresenceStatus::Connected,
                media: MediaState::default(),
                tracks: vec![TrackInfo {
                    id: track.clone(),
                    kind: MediaKind::Video,
                    source: TrackSource::Camera,
                    stream_id: "s".into(),
                }],
                joined_at_ms: 5,
                guest: false,
                role: Default::default(),
                hand_raised_at_ms: None,
            },
            epoch: 42,
            codecs: vec![(
                track,
                RelayCodec {
                    mime_type: "video/VP8".into(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line: String::new(),
                },
            )],
            user: None,
            pass: None,
            claimed_role: Default::default(),
        }
    }

    #[test]
    fn control_frames_round_trip_with_their_length_prefix() {
        let msgs = vec![
            RelayMsg::Hello {
                version: RELAY_VERSION,
                relay_addr: "127.0.0.1:7000".into(),
            },
            RelayMsg::RoomState {
                room: RoomId(9),
                participants: vec![participant()],
                reply_wanted: true,
            },
            RelayMsg::Left {
                room: RoomId(9),
                participant_id: ParticipantId::from_random([1; 8]),
                reason: LeaveReason::Disconnected,
            },
            RelayMsg::Subscribe {
                room: RoomId(9),
                track: TrackId::from_random([7; 8]),
                slot: 3,
            },
        ];
        for m in msgs {
            let frame = m.encode();
            let len = RelayMsg::check_len(frame[..4].try_into().unwrap()).unwrap();
            assert_eq!(len, frame.len() - 4);
            assert_eq!(RelayMsg::decode(&frame[4..]).unwrap(), m);
        }
    }

    /// The largest commit a client may send, as `e2ee_commit` to relay.
    fn largest_commit() -> crate::signal::ServerMessage {
        use crate::limits::e2ee as lim;
        let ids = |seed: u8| {
            (0..lim::MAX_LISTED / 2)
                .map(|i| ParticipantId::from_random([seed, i as u8, 0, 0, 0, 0, 0, 0]))
                .collect::<Vec<_>>()
        };
        crate::signal::ServerMessage::E2eeCommit {
            participant_id: ParticipantId::from_random([1; 8]),
            group: u32::MAX,
            epoch: u64::MAX - 1,
            added: ids(2),
            removed: ids(3),
            commit: "A".repeat(lim::MAX_COMMIT_BYTES),
            welcome: Some("B".repeat(lim::MAX_WELCOME_BYTES)),
        }
    }

    #[test]
    fn the_largest_legal_e2ee_commit_fits_a_control_frame_and_round_trips() {
        let message = largest_commit();
        check_e2ee(&message).expect("within the client limits");
        let m = RelayMsg::E2ee {
            room: RoomId(9),
            message,
        };
        let frame = m.encode();
        let len = RelayMsg::check_len(frame[..4].try_into().unwrap()).unwrap();
        assert!(len < MAX_CONTROL_FRAME, "{len} bytes");
        assert_eq!(RelayMsg::decode(&frame[4..]).unwrap(), m);
        assert_eq!(m.room(), Some(RoomId(9)));
    }

    #[test]
    fn a_relayed_e2ee_message_past_the_client_limits_or_of_another_kind_is_refused() {
        use crate::limits::e2ee as lim;
        use crate::signal::ServerMessage as S;
        let crate::signal::ServerMessage::E2eeCommit {
            participant_id,
            added,
            removed,
            commit,
            ..
        } = largest_commit()
        else {
            unreachable!()
        };
        let too_big_welcome = S::E2eeCommit {
            participant_id: participant_id.clone(),
            group: 1,
            epoch: 0,
            added,
            removed,
            commit,
            welcome: Some("B".repeat(lim::MAX_WELCOME_BYTES + 1)),
        };
        assert!(matches!(
            check_e2ee(&too_big_welcome),
            Err(RelayE2eeError::Limits(E2eeError::TooLarge { .. }))
        ));
        let not_b64 = S::E2eeKeyPackage {
            participant_id: participant_id.clone(),
            group: 1,
            key_package: "not base64!".into(),
        };
        assert!(matches!(
            check_e2ee(&not_b64),
            Err(RelayE2eeError::Limits(E2eeError::NotBase64 { .. }))
        ));
        let other = S::Move {
            reason: "a peer must not make us move anyone".into(),
        };
        assert!(matches!(
            check_e2ee(&other),
            Err(RelayE2eeError::NotHandshake)
        ));
        let found = S::E2eeFound {
            participant_id,
            group: 1,
        };
        check_e2ee(&found).expect("e2ee_found has no opaque field");
    }

    #[test]
    fn oversized_and_garbage_frames_are_refused() {
        assert!(matches!(
            RelayMsg::check_len(((MAX_CONTROL_FRAME + 1) as u32).to_be_bytes()),
            Err(RelayDecodeError::TooLarge(_))
        ));
        assert!(matches!(
            RelayMsg::decode(&[0xc1, 0xff, 0x00]),
            Err(RelayDecodeError::Invalid(_))
        ));
    }

    #[test]
    fn a_frame_nested_past_the_depth_limit_is_refused_on_a_small_stack() {
        // `hello` with an extra field holding nested arrays: the extra
        // field is ignored at a legal depth and refused past the limit.
        fn hello_with_nesting(depth: usize) -> Vec<u8> {
            let mut body = vec![0x84, 0xa4];
            body.extend_from_slice(b"type");
            body.push(0xa5);
            body.extend_from_slice(b"hello");
            body.push(0xa7);
            body.extend_from_slice(b"version");
            body.push(0x01);
            body.push(0xaa);
            body.extend_from_slice(b"relay_addr");
            body.push(0xa1);
            body.push(b'a');
            body.extend_from_slice(&[0xa1, b'x']);
            body.extend(std::iter::repeat_n(0x91, depth));
            body.push(0x90);
            body
        }
        let run = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                assert!(RelayMsg::decode(&hello_with_nesting(8)).is_ok());
                assert!(matches!(
                    RelayMsg::decode(&hello_with_nesting(100_000)),
                    Err(RelayDecodeError::Invalid(_))
                ));
            })
            .unwrap();
        run.join().expect("decoding overflowed a 2 MiB stack");
    }

    #[test]
    fn datagram_header_is_three_bytes_and_round_trips() {
        for kind in [DatagramKind::Rtp, DatagramKind::Pli, DatagramKind::Nack] {
            let mut buf = Vec::new();
            DatagramHeader { kind, slot: 0xBEEF }.write(&mut buf);
            assert_eq!(buf.len(), DATAGRAM_HEADER_LEN);
            buf.extend_from_slice(b"rtp");
            let (h, payload) = DatagramHeader::parse(&buf).unwrap();
            assert_eq!((h.kind, h.slot, payload), (kind, 0xBEEF, &b"rtp"[..]));
        }
        assert!(DatagramHeader::parse(&[0, 1]).is_none());
        assert!(DatagramHeader::parse(&[9, 0, 1]).is_none());
    }

    #[test]
    fn nack_payload_round_trips() {
        let seqs = [1, 65535, 300];
        assert_eq!(decode_nack(&encode_nack(&seqs)), seqs);
        assert_eq!(decode_nack(&[0, 1, 2]), vec![1]);
    }
}
