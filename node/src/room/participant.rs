//! How a room reaches one of its participants: the few calls it makes on
//! a seat, and nothing about how they are carried out.
//!
//! A browser's session implements it with channels to its WebSocket and
//! its peer-connection actor (`crate::peer::PeerHandle`); the room's unit
//! tests implement it with a recorder in memory. A recording service will
//! be one more implementation: a participant that subscribes to every
//! track and writes what it receives instead of sending it to a browser.

use crate::track::UpTrack;
use std::sync::Arc;
use veche_protocol::moderation::Role;
use veche_protocol::pass::PassId;
use veche_protocol::signal::ServerMessage;
use veche_protocol::{ParticipantId, TrackId, UserId};

/// One seat's connection, as the room sees it.
///
/// Every call is made while the room's lock is held, in the order the
/// room's core decided the events, so implementations must not block or
/// call back into the room: queue the work and return.
pub trait Participant: Send + Sync {
    /// Queues a signalling message for the participant.
    fn send(&self, msg: ServerMessage);
    /// Starts forwarding `track` to the participant. For a browser this
    /// adds a down track and renegotiates; the keyframe the new receiver
    /// needs is requested once the leg carries media.
    fn subscribe(&self, track: Arc<UpTrack>);
    /// Stops forwarding `track` to the participant.
    fn unsubscribe(&self, track: TrackId);
    /// The seat is gone from this connection (the participant left, was
    /// evicted, or a newer session took the seat over): tear the
    /// connection down.
    fn close(&self);
    /// The participant continues on another node: close the connection
    /// without anyone being told they left.
    fn moved(&self);
    /// A moderator removed the participant: close the connection with
    /// `CLOSE_REMOVED` once what was queued (the `moderated` notice) is
    /// sent. [`Participant::close`] follows, as for anyone leaving.
    fn removed(&self);
}

/// Who takes a seat, as the join token says: the room shows the name and
/// the guest mark to others, and statistics record the account.
#[derive(Clone, Debug)]
pub struct Joiner {
    /// The participant.
    pub id: ParticipantId,
    /// The name shown to others.
    pub display_name: String,
    /// Marked as a guest in the participant list.
    pub guest: bool,
    /// The signed-in account, if any.
    pub user: Option<UserId>,
    /// The guest pass, if any (banned with them).
    pub pass: Option<PassId>,
    /// The role the token claims; the room's policy may raise it.
    pub role: Role,
    /// The client can connect directly to one other participant
    /// (`join`'s `p2p`).
    pub p2p: bool,
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
