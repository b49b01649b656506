//! A new session taking over a seat whose connection dropped.
//!
//! Two ways, chosen by the session: the client either starts over with a
//! new peer connection (its tracks are unpublished and published again,
//! and everyone renegotiates), or it kept its peer connection and the
//! session kept the node's side of it ([`SeatMedia::Kept`]). The second is
//! what makes a network change cheap: only ICE restarts, so the others'
//! view of the seat's tracks never changes (LiveKit's "resume" works the
//! same way; its "full reconnect" is the first).

use super::{Room, RoomPolicy};
use crate::room::{Participant, ResumeError};
use std::sync::atomic::Ordering;
use veche_protocol::secret::secrets_match;
use veche_protocol::signal::{IceServer, PresenceStatus, ServerMessage};
use veche_protocol::ParticipantId;

/// What happens to a resumed seat's media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatMedia {
    /// The new session brings a new connection: the old one is closed,
    /// the seat's tracks unpublished, and the new one subscribed to
    /// everything.
    New,
    /// The new session's handle drives the old session's connection: it
    /// stays, with its tracks and subscriptions.
    Kept,
}

impl Room {
    /// Whether `resume_token` would take `id`'s seat, without taking it:
    /// checked before a session hands the old connection to itself.
    pub fn check_resume(&self, id: &ParticipantId, resume_token: &str) -> Result<(), ResumeError> {
        let inner = self.lock();
        let seat = inner.seats.get(id).ok_or(ResumeError::NoSeat)?;
        if secrets_match(resume_token.as_bytes(), seat.resume_token.as_bytes()) {
            Ok(())
        } else {
            Err(ResumeError::BadToken)
        }
    }

    /// A new session takes over an existing seat (see [`SeatMedia`] for
    /// what happens to its media). Queues the seat's `joined` (with
    /// `resumed`, and `media_kept` for [`SeatMedia::Kept`]). Returns the
    /// new generation and the participant's display name.
    pub fn resume(
        &self,
        id: &ParticipantId,
        resume_token: &str,
        handle: impl Participant + 'static,
        ice_servers: Vec<IceServer>,
        media: SeatMedia,
    ) -> Result<(u64, String), ResumeError> {
        let mut inner = self.lock();
        let seat = inner.seats.get_mut(id).ok_or(ResumeError::NoSeat)?;
        if !secrets_match(resume_token.as_bytes(), seat.resume_token.as_bytes()) {
            return Err(ResumeError::BadToken);
        }
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let old = std::mem::replace(&mut seat.participant, Box::new(handle));
        seat.generation = generation;
        let actions = match media {
            SeatMedia::New => {
                old.close();
                let actions = inner.core.rejoin(id).map_err(|_| ResumeError::NoSeat)?;
                self.drop_local_tracks_of(&mut inner, id);
                actions
            }
            // The old handle shares the connection with the new one:
            // dropping it closes nothing.
            SeatMedia::Kept => inner
                .core
                .set_status(id, PresenceStatus::Connected)
                .map_err(|_| ResumeError::NoSeat)?,
        };
        self.forget_told(id);
        let name = inner
            .core
            .participant(id)
            .map(|p| p.display_name.clone())
            .unwrap_or_default();
        if let Some(seat) = inner.seats.get(id) {
            seat.participant.send(ServerMessage::Joined {
                participant_id: id.clone(),
                room: self.info.clone(),
                participants: inner.core.snapshot(),
                ice_servers,
                resume_token: resume_token.to_owned(),
                resumed: true,
                media_kept: media == SeatMedia::Kept,
                policy: inner
                    .policy
                    .as_ref()
                    .map(RoomPolicy::view)
                    .unwrap_or_default(),
            });
            if inner
                .core
                .participant(id)
                .is_some_and(|p| p.role.moderates())
            {
                seat.participant.send(ServerMessage::Lobby {
                    waiting: inner.lobby.all_entries(),
                });
            }
        }
        self.run(&mut inner, actions);
        self.observe(&inner);
        Ok((generation, name))
    }
}
