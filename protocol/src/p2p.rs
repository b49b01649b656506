//! Peer-to-peer calls for two: which path a participant's media takes, and
//! the offer/answer/candidates the two browsers exchange through their
//! media node to connect directly.
//!
//! A room with exactly two participants (both on one media node, both
//! clients able, the room's `p2p` setting on, nothing that needs the SFU:
//! no recording, no moderator hold, nobody denied the floor) is switched to
//! [`MediaPath::P2p`]: the node tells each browser its peer and a fresh
//! [`Pairing`] number, relays their [`PeerSignal`]s, and forwards no media
//! because the browsers stop sending it to the SFU. Any change that breaks
//! those conditions (a third person, a recording, a hold) switches the room
//! back to [`MediaPath::Sfu`]; browsers keep the direct path until the
//! SFU's tracks decode (make before break). Seed 001: "for peer-to-peer
//! conferences, do not use server resources".
//!
//! The server cannot see or police media on a direct path, so anything the
//! server must enforce (moderation holds, speak mode, recording) forces the
//! SFU path instead of trusting the client.

use crate::ice::IceCandidate;
use serde::{Deserialize, Serialize};

/// The number of one attempt to connect a pair directly, assigned by the
/// node and increasing within a room. Signals carry it, so a late signal
/// from an abandoned attempt is refused instead of confusing the next one.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Pairing(pub u64);

/// How a participant's media travels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaPath {
    /// Through the media node's SFU (the default).
    #[default]
    Sfu,
    /// Directly to the one other participant.
    P2p,
}

/// What a browser reports of its direct connection (`p2p_state`), so the
/// node can stop forwarding the pair only once the direct path works, and
/// fall back to the SFU when it never will (no route between the two
/// networks and no TURN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectState {
    /// The direct connection decoded the peer's media.
    Connected,
    /// The direct connection failed, and its ICE restart too (or gave up).
    Failed,
}

impl DirectState {
    /// The wire name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectState::Connected => "connected",
            DirectState::Failed => "failed",
        }
    }
}

/// One step of the direct connection's offer/answer, relayed verbatim by
/// the node (it never parses the SDP: in an end-to-end encrypted room the
/// media stays encrypted end to end either way).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PeerSignal {
    /// The offerer's SDP offer (also a later one, for an ICE restart).
    Offer {
        /// SDP text.
        sdp: String,
    },
    /// The answerer's SDP answer.
    Answer {
        /// SDP text.
        sdp: String,
    },
    /// A trickled ICE candidate; `null` ends gathering.
    Candidate {
        /// The candidate.
        candidate: Option<IceCandidate>,
    },
}

impl PeerSignal {
    /// The `kind` tag, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerSignal::Offer { .. } => "offer",
            PeerSignal::Answer { .. } => "answer",
            PeerSignal::Candidate { .. } => "candidate",
        }
    }

    /// The bytes of text the node would relay (SDP, or the candidate's
    /// strings), checked against
    /// [`crate::limits::signal::MAX_PEER_SIGNAL_BYTES`].
    pub fn size(&self) -> usize {
        match self {
            PeerSignal::Offer { sdp } | PeerSignal::Answer { sdp } => sdp.len(),
            PeerSignal::Candidate { candidate: None } => 0,
            PeerSignal::Candidate { candidate: Some(c) } => {
                c.candidate.len()
                    + c.sdp_mid.as_ref().map_or(0, String::len)
                    + c.username_fragment.as_ref().map_or(0, String::len)
            }
        }
    }
}
