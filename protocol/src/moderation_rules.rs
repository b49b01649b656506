//! Who may do what in a room: the pure rules the control plane runs on a
//! room's committed [`RoomPolicy`] for every [`ModerateRequest`].
//!
//! They live here, I/O-free and with time as an input (`req.at_ms`), so
//! that the control plane's state machine runs them at apply time: every
//! replica decides alike, and two moderators racing each other are decided
//! in log order, the second against what the first committed.
//!
//! The rules (docs/protocol.md has them as a table):
//! - The actor's role is the policy's view of their claimed role
//!   ([`RoomPolicy::role_of`]). Only hosts and moderators moderate; the one
//!   action for everyone is [`ModAction::UnmuteSelf`].
//! - Nobody but a host acts on a host (mute, ask to unmute, revoke speak,
//!   remove, deny), and nobody revokes a host's moderation.
//! - A request without an actor (the media node itself, when a lobby
//!   stayed unattended) may only admit.
//! - A request that changes nothing is allowed and returns the policy as
//!   it was (same version): retries and double clicks cost no version.
//! - Participant ids over [`MAX_ID_BYTES`] are refused as a bad request.
//!   Each set and map of the policy holds at most [`MAX_ENTRIES`]. A room
//!   reused for months keeps recording hosts, admissions and removals, so
//!   those make room: the lowest other ids of `hosts` and `admitted` (a
//!   host's token claims host anyway; an admission matters while its
//!   waiter waits) and the oldest removal. A change that would grow any
//!   other set (moderators, speakers, holds, denied) past the bound is
//!   refused ("this meeting has too many ..."): forgetting a moderator or
//!   a hold would silently change who may do what.

use crate::error::ErrorCode;
use crate::ids::ParticipantId;
use crate::limits::moderation::{MAX_ENTRIES, MAX_ID_BYTES};
use crate::moderation::{Hold, MediaGroup, ModAction, Removal, Role, RoomPolicy, SettingsChange};
use crate::recording::ActiveRecording;
use crate::rpc::{Actor, ModerateRequest};
use serde::{Deserialize, Serialize};

/// Why a moderation request was refused. Nothing is committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The actor may not do this (error code `forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// The request is malformed: an overlong id, or a policy full
    /// (error code `bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// A recording start in an end-to-end encrypted room: the server
    /// cannot read the media it would record (error code `forbidden`,
    /// message [`E2EE_NOT_RECORDABLE`]).
    #[error("{}", E2EE_NOT_RECORDABLE)]
    Encrypted,
}

impl Refusal {
    /// The error code a client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::Forbidden(_) | Refusal::Encrypted => ErrorCode::Forbidden,
            Refusal::BadRequest(_) => ErrorCode::BadRequest,
        }
    }

    /// The reason, in words for the actor.
    pub fn message(&self) -> &str {
        match self {
            Refusal::Forbidden(m) | Refusal::BadRequest(m) => m,
            Refusal::Encrypted => E2EE_NOT_RECORDABLE,
        }
    }
}

/// The refusal of an unmute a moderator's hold forbids.
pub const MUTED_BY_A_MODERATOR: &str = "a moderator muted you; ask them to let you unmute";
/// The refusal of acting on a host without being one.
pub const HOST_PROTECTED: &str = "only a host can do this to a host";
/// A start that reached the rules without the id the control plane puts
/// in: a caller's bug, never a client's.
pub const NO_RECORDING_ID: &str = "a recording start needs an id from the control plane";
/// The refusal of a recording in an end-to-end encrypted room.
pub const E2EE_NOT_RECORDABLE: &str =
    "This meeting is end-to-end encrypted, so the server cannot record it.";
/// The refusal of anything but `admit` without an actor.
pub const SYSTEM_ONLY_ADMITS: &str = "without a participant, the only action is admitting";

/// What the action does, in words after "only a host or a moderator can".
fn verb(action: &ModAction) -> &'static str {
    match action {
        ModAction::Mute { .. } => "mute someone",
        ModAction::AskToUnmute { .. } => "ask someone to unmute",
        ModAction::MuteEveryone => "mute everyone",
        ModAction::MakeModerator { .. } => "make someone a moderator",
        ModAction::RevokeModerator { .. } => "revoke a moderator",
        ModAction::AllowSpeak { .. } => "allow someone to speak",
        ModAction::RevokeSpeak { .. } => "revoke someone's permission to speak",
        ModAction::Remove { .. } => "remove someone",
        ModAction::Admit { .. } => "admit someone from the lobby",
        ModAction::Deny { .. } => "turn someone away from the lobby",
        ModAction::Settings { .. } => "change the meeting settings",
        ModAction::UnmuteSelf { .. } => "unmute",
        ModAction::StartRecording { .. } => "start recording",
        ModAction::StopRecording => "stop recording",
    }
}

/// The refusal of `action` by someone who does not moderate.
pub fn not_a_moderator(action: &ModAction) -> String {
    format!("only a host or a moderator can {}", verb(action))
}

fn check_id(id: &ParticipantId, what: &str) -> Result<(), Refusal> {
    if id.0.len() > MAX_ID_BYTES {
        return Err(Refusal::BadRequest(format!(
            "{what} is longer than {MAX_ID_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Decides `req` against the room's committed `policy`: the new policy
/// (its version one higher, or unchanged when the action changes nothing),
/// or why not.
pub fn decide(policy: &RoomPolicy, req: &ModerateRequest) -> Result<RoomPolicy, Refusal> {
    if let Some(a) = &req.actor {
        check_id(&a.participant_id, "the actor's id")?;
    }
    if let Some(t) = req.action.target() {
        check_id(t, "participant_id")?;
    }
    for p in &req.present {
        check_id(&p.participant_id, "a present participant's id")?;
    }
    let mut next = policy.clone();
    match &req.actor {
        None => match &req.action {
            ModAction::Admit { participant_id } => admit(&mut next, participant_id),
            _ => return Err(Refusal::Forbidden(SYSTEM_ONLY_ADMITS.into())),
        },
        Some(actor) => act(&mut next, actor, req)?,
    }
    finish(policy, next)
}

/// [`decide`] in a room that is end-to-end encrypted (`e2ee`) or not.
/// An encrypted room refuses every recording start, whoever asks and
/// before any other rule: the server only ever sees ciphertext, so there
/// is nothing it could record (`docs/e2ee.md`). Stopping stays allowed.
pub fn decide_in(
    policy: &RoomPolicy,
    req: &ModerateRequest,
    e2ee: bool,
) -> Result<RoomPolicy, Refusal> {
    if e2ee && matches!(req.action, ModAction::StartRecording { .. }) {
        return Err(Refusal::Encrypted);
    }
    decide(policy, req)
}

/// `policy` with `id` recorded as a host (who joined as the room's owner).
pub fn with_host(policy: &RoomPolicy, id: &ParticipantId) -> Result<RoomPolicy, Refusal> {
    check_id(id, "participant_id")?;
    let mut next = policy.clone();
    next.hosts.insert(id.clone());
    finish(policy, next)
}

/// `policy` with its settings changed (by the owner, over REST).
pub fn with_settings(policy: &RoomPolicy, change: &SettingsChange) -> RoomPolicy {
    let mut next = policy.clone();
    apply_settings(&mut next, change);
    // Settings add no entries, so the bound cannot refuse.
    finish(policy, next).unwrap_or_else(|_| policy.clone())
}

/// `policy` with no recording running: the control plane stops a
/// recording itself when the meeting ends (the last participant left,
/// anywhere in the cluster), so a forgotten recording does not resume
/// when someone comes back days later.
pub fn without_recording(policy: &RoomPolicy) -> RoomPolicy {
    let mut next = policy.clone();
    next.recording = None;
    finish(policy, next).unwrap_or_else(|_| policy.clone())
}

/// Checks the bounds and bumps the version if anything changed.
fn finish(old: &RoomPolicy, mut next: RoomPolicy) -> Result<RoomPolicy, Refusal> {
    if next == *old {
        return Ok(next);
    }
    // Records of people long gone make room for new ones: a host's
    // token claims host anyway, an admission matters while its waiter
    // waits, and a removal from the oldest meeting in a reused room is
    // the least likely to matter again.
    trim_set(&mut next.hosts, &old.hosts);
    trim_set(&mut next.admitted, &old.admitted);
    while next.removed.len() > MAX_ENTRIES {
        let oldest = next
            .removed
            .iter()
            .filter(|(id, _)| old.removed.contains_key(*id))
            .min_by_key(|(_, r)| r.at_ms)
            .map(|(id, _)| id.clone());
        match oldest {
            Some(id) => next.removed.remove(&id),
            None => break,
        };
    }
    let sizes = [
        ("hosts", next.hosts.len(), old.hosts.len()),
        ("moderators", next.moderators.len(), old.moderators.len()),
        (
            "permitted speakers",
            next.speakers.len(),
            old.speakers.len(),
        ),
        ("muted participants", next.holds.len(), old.holds.len()),
        (
            "removed participants",
            next.removed.len(),
            old.removed.len(),
        ),
        (
            "admitted participants",
            next.admitted.len(),
            old.admitted.len(),
        ),
        ("denied participants", next.denied.len(), old.denied.len()),
    ];
    for (what, new, was) in sizes {
        if new > MAX_ENTRIES && new > was {
            return Err(Refusal::BadRequest(format!(
                "this meeting has too many {what} (at most {MAX_ENTRIES})"
            )));
        }
    }
    next.version = old.version + 1;
    Ok(next)
}

/// Drops entries of `set` that were in `old` (lowest ids first) until it
/// is within [`MAX_ENTRIES`].
fn trim_set(
    set: &mut std::collections::BTreeSet<ParticipantId>,
    old: &std::collections::BTreeSet<ParticipantId>,
) {
    while set.len() > MAX_ENTRIES {
        let Some(victim) = set.iter().find(|id| old.contains(*id)).cloned() else {
            break;
        };
        set.remove(&victim);
    }
}

fn apply_settings(p: &mut RoomPolicy, c: &SettingsChange) {
    let s = &mut p.settings;
    if let Some(v) = c.lobby {
        s.lobby = v;
    }
    if let Some(v) = c.locked {
        s.locked = v;
    }
    if let Some(v) = c.speak_mode {
        s.speak_mode = v;
    }
    if let Some(v) = c.allow_self_unmute {
        s.allow_self_unmute = v;
    }
    if let Some(v) = c.p2p {
        s.p2p = v;
    }
}

fn admit(p: &mut RoomPolicy, id: &ParticipantId) {
    p.denied.remove(id);
    p.admitted.insert(id.clone());
}

/// Whether `id` is a host: recorded as one, or present with a host's token.
fn is_host(p: &RoomPolicy, req: &ModerateRequest, id: &ParticipantId) -> bool {
    p.hosts.contains(id)
        || req
            .present
            .iter()
            .any(|x| &x.participant_id == id && x.claimed_role == Role::Host)
}

/// Drops a hold that holds nothing and asks nothing.
fn tidy_hold(p: &mut RoomPolicy, id: &ParticipantId) {
    if p.holds
        .get(id)
        .is_some_and(|h| h.groups.is_empty() && !h.asked_to_unmute)
    {
        p.holds.remove(id);
    }
}

fn hold_of<'a>(p: &'a mut RoomPolicy, id: &ParticipantId, actor: &Actor) -> &'a mut Hold {
    let h = p.holds.entry(id.clone()).or_insert_with(|| Hold {
        groups: Default::default(),
        by_name: String::new(),
        by: actor.participant_id.clone(),
        asked_to_unmute: false,
    });
    h.by = actor.participant_id.clone();
    h.by_name = actor.display_name.clone();
    h
}

fn unmute_self(p: &mut RoomPolicy, actor: &Actor, group: MediaGroup) -> Result<(), Refusal> {
    let me = &actor.participant_id;
    let Some(hold) = p.holds.get_mut(me) else {
        return Ok(());
    };
    if hold.groups.contains(&group) {
        if !p.settings.allow_self_unmute {
            return Err(Refusal::Forbidden(MUTED_BY_A_MODERATOR.into()));
        }
        hold.groups.remove(&group);
    }
    if group == MediaGroup::Microphone {
        hold.asked_to_unmute = false;
    }
    tidy_hold(p, me);
    Ok(())
}

fn act(p: &mut RoomPolicy, actor: &Actor, req: &ModerateRequest) -> Result<(), Refusal> {
    let role = p.role_of(&actor.participant_id, actor.claimed_role);
    if let ModAction::UnmuteSelf { group } = &req.action {
        return unmute_self(p, actor, *group);
    }
    if !role.moderates() {
        return Err(Refusal::Forbidden(not_a_moderator(&req.action)));
    }
    if let Some(target) = req.action.target() {
        let protected = !matches!(
            req.action,
            ModAction::MakeModerator { .. }
                | ModAction::AllowSpeak { .. }
                | ModAction::Admit { .. }
        );
        if protected && is_host(p, req, target) {
            if matches!(req.action, ModAction::RevokeModerator { .. }) {
                return Err(Refusal::Forbidden(
                    "a host is always a moderator".to_owned(),
                ));
            }
            if role != Role::Host {
                return Err(Refusal::Forbidden(HOST_PROTECTED.into()));
            }
        }
    }
    match &req.action {
        ModAction::Mute {
            participant_id,
            group,
        } => {
            let h = hold_of(p, participant_id, actor);
            h.groups.insert(*group);
            if *group == MediaGroup::Microphone {
                h.asked_to_unmute = false;
            }
        }
        ModAction::AskToUnmute { participant_id } => {
            let h = hold_of(p, participant_id, actor);
            h.groups.remove(&MediaGroup::Microphone);
            h.asked_to_unmute = true;
        }
        ModAction::MuteEveryone => {
            for x in &req.present {
                let id = &x.participant_id;
                if *id == actor.participant_id || p.role_of(id, x.claimed_role).moderates() {
                    continue;
                }
                let h = hold_of(p, id, actor);
                h.groups.insert(MediaGroup::Microphone);
                h.asked_to_unmute = false;
            }
        }
        ModAction::MakeModerator { participant_id } => {
            p.moderators.insert(participant_id.clone());
        }
        ModAction::RevokeModerator { participant_id } => {
            p.moderators.remove(participant_id);
        }
        ModAction::AllowSpeak { participant_id } => {
            p.speakers.insert(participant_id.clone());
        }
        ModAction::RevokeSpeak { participant_id } => {
            p.speakers.remove(participant_id);
        }
        ModAction::Remove {
            participant_id,
            ban,
        } => {
            if p.removed
                .get(participant_id)
                .is_some_and(|was| was.ban || !*ban)
            {
                // Removed already, as firmly: a retry changes nothing.
                return Ok(());
            }
            let present = req
                .present
                .iter()
                .find(|x| &x.participant_id == participant_id);
            let removal = Removal {
                ban: *ban,
                by_name: actor.display_name.clone(),
                user: present.and_then(|x| x.user).filter(|_| *ban),
                pass: present.and_then(|x| x.pass).filter(|_| *ban),
                at_ms: req.at_ms,
            };
            p.removed.insert(participant_id.clone(), removal);
        }
        ModAction::Admit { participant_id } => admit(p, participant_id),
        ModAction::Deny { participant_id } => {
            p.admitted.remove(participant_id);
            p.denied.insert(participant_id.clone());
        }
        ModAction::Settings { change } => apply_settings(p, change),
        ModAction::UnmuteSelf { .. } => unreachable!("handled above"),
        ModAction::StartRecording { id } => {
            if p.recording.is_some() {
                // Two moderators pressing at once: the first start wins,
                // the second changes nothing.
                return Ok(());
            }
            let Some(id) = id else {
                return Err(Refusal::BadRequest(NO_RECORDING_ID.into()));
            };
            p.recording = Some(ActiveRecording {
                id: id.clone(),
                started_at_ms: req.at_ms,
                started_by: actor.participant_id.clone(),
                started_by_name: actor.display_name.clone(),
            });
        }
        ModAction::StopRecording => p.recording = None,
    }
    Ok(())
}

#[cfg(test)]
#[path = "moderation_rules_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "moderation_rules_bounds_tests.rs"]
mod bounds_tests;

#[cfg(test)]
#[path = "moderation_rules_recording_tests.rs"]
mod recording_tests;
