//! Parsing and limit checks of browser frames ([`ClientMessage`]), apart
//! from the message definitions in `signal.rs` so each file stays readable.

use crate::error::ErrorBody;
use crate::signal::{ClientMessage, MAX_FRAME_BYTES};

impl ClientMessage {
    /// The `type` tag of this message, for logs and error replies.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Join { .. } => "join",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::Candidate { .. } => "candidate",
            ClientMessage::Media(_) => "media",
            ClientMessage::Chat { .. } => "chat",
            ClientMessage::Ping { .. } => "ping",
            ClientMessage::Leave => "leave",
            ClientMessage::Moderate(_) => "moderate",
            ClientMessage::Hand { .. } => "hand",
            ClientMessage::E2eeKeyPackage { .. } => "e2ee_key_package",
            ClientMessage::E2eeCommit { .. } => "e2ee_commit",
            ClientMessage::PeerSignal { .. } => "peer_signal",
            ClientMessage::P2pState { .. } => "p2p_state",
        }
    }

    /// Parses a text frame. The error message names the problem in terms a
    /// client developer can act on (serde's own message, which includes the
    /// field and position).
    pub fn parse(text: &str) -> Result<ClientMessage, ErrorBody> {
        if text.len() > MAX_FRAME_BYTES {
            return Err(ErrorBody::new(
                crate::ErrorCode::TooLarge,
                format!(
                    "frame is {} bytes; the limit is {MAX_FRAME_BYTES}",
                    text.len()
                ),
            ));
        }
        serde_json::from_str(text).map_err(|e| {
            ErrorBody::new(
                crate::ErrorCode::BadRequest,
                format!("malformed signalling message: {e}"),
            )
        })
    }
}

impl ClientMessage {
    /// Checks the count and length limits that parsing alone does not:
    /// tracks declared in an `offer` ([`crate::limits::signal::MAX_TRACKS`])
    /// and the length of a chat `client_msg_id`
    /// ([`crate::limits::signal::MAX_CLIENT_MSG_ID_BYTES`]), refused with
    /// `bad_request`; the text of a `peer_signal`
    /// ([`crate::limits::signal::MAX_PEER_SIGNAL_BYTES`]), refused with
    /// `too_large`. A message that fails is refused whole: nothing of it is
    /// applied or relayed.
    pub fn check_limits(&self) -> Result<(), ErrorBody> {
        use crate::limits::signal::{MAX_CLIENT_MSG_ID_BYTES, MAX_PEER_SIGNAL_BYTES, MAX_TRACKS};
        match self {
            ClientMessage::PeerSignal { signal, .. } if signal.size() > MAX_PEER_SIGNAL_BYTES => {
                Err(ErrorBody::new(
                    crate::ErrorCode::TooLarge,
                    format!(
                        "the peer {} is {} bytes; the limit is {MAX_PEER_SIGNAL_BYTES}",
                        signal.kind(),
                        signal.size()
                    ),
                ))
            }
            ClientMessage::Offer { tracks, .. } if tracks.len() > MAX_TRACKS => {
                Err(ErrorBody::new(
                    crate::ErrorCode::BadRequest,
                    format!(
                        "the offer declares {} tracks; a participant may publish at most {MAX_TRACKS}",
                        tracks.len()
                    ),
                ))
            }
            ClientMessage::Chat {
                client_msg_id: Some(id),
                ..
            } if id.len() > MAX_CLIENT_MSG_ID_BYTES => Err(ErrorBody::new(
                crate::ErrorCode::BadRequest,
                format!(
                    "client_msg_id is {} bytes; the limit is {MAX_CLIENT_MSG_ID_BYTES}",
                    id.len()
                ),
            )),
            _ => Ok(()),
        }
    }
}
