//! What a room's policy says about a joiner, at `POST
//! /api/rooms/{slug}/join` (after `join.rs` decided who they are and that
//! the room's access rule admits them):
//!
//! - their role: host if they own the room (signed in as its owner, or
//!   with the owner key), guest if they joined as one, else participant;
//!   raised for a rejoin of a participant id the policy records as a host.
//!   The token never claims moderator: that comes from the policy alone,
//!   so revoking it takes effect on every node at once.
//! - a host's participant id is committed into the policy's hosts (once);
//! - refusals, `403 forbidden` and nothing issued: a removed-and-banned
//!   participant id, account or pass ([`REMOVED`]), a participant id denied
//!   at the lobby ([`DENIED`]), and anyone new in a locked room who does
//!   not moderate ([`LOCKED`]). A rejoin of someone who was in the meeting
//!   is not new: they may reconnect to a locked room.
//! - the lobby claim: in a room with the lobby on, anyone who does not
//!   moderate and was not admitted waits in the lobby, unless they rejoin
//!   with a token that already had a seat.
//! - a rejoin of a participant id a moderator removed (without a ban)
//!   gets a new participant id and is treated as a newcomer: that seat,
//!   and whatever the policy granted it, is gone.
//!
//! The owner of the room is never refused nor put in the lobby: it is
//! their meeting. The decision ([`decide`]) is I/O-free.

use crate::error::ApiError;
use crate::store::policies::PolicyCommand;
use crate::store::PolicyStore;
use crate::ControlPlane;
use std::sync::Arc;
use veche_protocol::moderation::{Role, RoomPolicy, RoomSettings};
use veche_protocol::pass::PassId;
use veche_protocol::token::JoinClaims;
use veche_protocol::{ErrorCode, ParticipantId, RoomId, UserId};

/// The refusal of someone a moderator removed with "don't let them back".
pub(crate) const REMOVED: &str = "A moderator removed you from this meeting";
/// The refusal of someone a moderator turned away at the lobby.
pub(crate) const DENIED: &str = "A moderator did not let you in";
/// The refusal of someone new to a locked meeting.
pub(crate) const LOCKED: &str = "This meeting is locked";

/// Who is joining, as far as the policy cares.
pub(super) struct Joiner<'a> {
    /// The participant id their token will carry.
    pub participant_id: &'a ParticipantId,
    /// They own the room.
    pub owner: bool,
    /// They join as a guest.
    pub guest: bool,
    /// Their account.
    pub user: Option<UserId>,
    /// Their guest pass.
    pub pass: Option<PassId>,
    /// The claims of the rejoin token they presented, if any.
    pub rejoining: Option<&'a JoinClaims>,
}

/// What the token says about the joiner's place in the room.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Seat {
    /// The role their token claims.
    pub role: Role,
    /// They wait in the lobby.
    pub lobby: bool,
    /// Their participant id must be recorded as a host.
    pub record_host: bool,
    /// They rejoin with the participant id of someone a moderator removed
    /// (without a ban: a ban refuses them). That seat is gone: they come
    /// back as a new participant, with a new id, so that no node or
    /// client takes them for the removed one.
    pub fresh_id: bool,
}

fn forbidden(msg: &str) -> ApiError {
    ApiError::new(ErrorCode::Forbidden, msg)
}

/// The policy's decision about `j`. I/O-free.
pub(super) fn decide(policy: &RoomPolicy, j: &Joiner<'_>) -> Result<Seat, ApiError> {
    let id = j.participant_id;
    let fresh_id = j.rejoining.is_some() && policy.removed.contains_key(id);
    let claimed = if j.owner || (!fresh_id && policy.hosts.contains(id)) {
        Role::Host
    } else if j.guest {
        Role::Guest
    } else {
        Role::Participant
    };
    let seat = Seat {
        role: claimed,
        lobby: false,
        record_host: j.owner && (fresh_id || !policy.hosts.contains(id)),
        fresh_id,
    };
    if j.owner {
        return Ok(seat);
    }
    if policy.denied.contains(id) {
        return Err(forbidden(DENIED));
    }
    let banned = policy.removed.iter().any(|(who, r)| {
        r.ban
            && (who == id
                || (j.user.is_some() && r.user == j.user)
                || (j.pass.is_some() && r.pass == j.pass))
    });
    if banned {
        return Err(forbidden(REMOVED));
    }
    if fresh_id {
        // A new participant: nothing the policy says of the old id is
        // theirs, and they were not in the meeting.
        return Ok(Seat {
            lobby: policy.settings.lobby,
            ..newcomer(policy, seat)?
        });
    }
    let role = policy.role_of(id, claimed);
    if role.moderates() {
        return Ok(seat);
    }
    let admitted = policy.admitted.contains(id);
    // Someone in the meeting before: a rejoin of a seated token, or of a
    // lobby token whose holder was admitted since.
    let was_in = j.rejoining.is_some_and(|c| !c.lobby || admitted);
    if policy.settings.locked && !was_in {
        return Err(forbidden(LOCKED));
    }
    Ok(Seat {
        lobby: policy.settings.lobby && !admitted && !was_in,
        ..seat
    })
}

/// A newcomer who does not moderate: refused by a lock.
fn newcomer(policy: &RoomPolicy, seat: Seat) -> Result<Seat, ApiError> {
    if policy.settings.locked {
        return Err(forbidden(LOCKED));
    }
    Ok(seat)
}

/// Where a join stands with the room's policy.
pub(super) struct Placed {
    /// The decision.
    pub seat: Seat,
    /// The participant id the token carries: the joiner's, or a new one
    /// ([`Seat::fresh_id`]).
    pub participant_id: ParticipantId,
    /// The room's settings, for the join response's room view.
    pub settings: RoomSettings,
}

/// Reads the room's policy, decides, and records a host; or the refusal.
/// Runs before the join is placed, so a refusal issues nothing.
pub(super) async fn seat(
    cp: &Arc<ControlPlane>,
    room: RoomId,
    j: &Joiner<'_>,
) -> Result<Placed, ApiError> {
    let policy = cp.replicated().room_policy(room).await?;
    let seat = decide(&policy, j)?;
    let participant_id = if seat.fresh_id {
        ParticipantId::from_random(crate::random_bytes())
    } else {
        j.participant_id.clone()
    };
    if seat.record_host {
        cp.replicated()
            .policy_command(PolicyCommand::RecordHost {
                room_id: room,
                participant_id: participant_id.clone(),
            })
            .await
            .map_err(super::write_error)?;
    }
    Ok(Placed {
        seat,
        participant_id,
        settings: policy.settings,
    })
}

#[cfg(test)]
#[path = "join_policy_tests.rs"]
mod tests;
