//! Authority in a room: roles, the room's moderation settings, and what
//! moderators did (holds on someone's media, speak permission, removals,
//! lobby decisions), as one replicated value, the [`RoomPolicy`].
//!
//! The control plane owns the policy: every change is committed through
//! Raft after the rules in `moderation_rules.rs` allowed it. Media
//! nodes keep a copy of each hosted room's policy (fetched when the room
//! opens on the node, replaced by every newer version they hear of) and
//! enforce it in the media path: a held track is not forwarded to anyone,
//! here or on any other node. Clients get [`PolicyView`], the policy
//! without what only servers need (the accounts and passes behind bans).
//!
//! The policy is one value with a version rather than a stream of events,
//! so a node that missed a message, or opens the room after a node died,
//! converges by taking the newest version it sees.

use crate::ids::{ParticipantId, UserId};
use crate::pass::PassId;
use crate::UnixMillis;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A participant's authority in a room, lowest first, so `>=` compares
/// authority.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Joined without an account in a room of the organisation (a pass
    /// holder, or an anonymous joiner of an open room).
    Guest,
    /// Anyone else with the link.
    #[default]
    Participant,
    /// Granted by the host or another moderator.
    Moderator,
    /// The room's owner: its signed-in creator, or whoever presented the
    /// owner key when joining.
    Host,
}

impl Role {
    /// Hosts and moderators.
    pub fn moderates(self) -> bool {
        self >= Role::Moderator
    }
}

/// Which of a participant's media a moderator can stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaGroup {
    /// The microphone.
    Microphone,
    /// The camera.
    Camera,
    /// The screen share, with its audio.
    Screen,
}

/// Media of one participant that a moderator stopped: the node forwards
/// none of it until the hold is lifted ("ask to unmute" for the
/// microphone, or the participant themselves where the room allows it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Groups held.
    pub groups: BTreeSet<MediaGroup>,
    /// Who placed the latest hold, as their name was then, for the
    /// participant's "Alice muted you" message.
    pub by_name: String,
    /// Their participant id.
    pub by: ParticipantId,
    /// A moderator asked this participant to unmute (and so lifted the
    /// microphone hold); the client shows the request until they answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub asked_to_unmute: bool,
}

/// Room-wide switches, changed by hosts and moderators (and by the owner
/// over REST before the meeting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomSettings {
    /// New joiners (other than hosts and moderators) wait in the lobby
    /// until a moderator admits them.
    pub lobby: bool,
    /// Nobody new gets in; those in the meeting may still reconnect.
    pub locked: bool,
    /// Only hosts, moderators and permitted speakers may publish.
    pub speak_mode: bool,
    /// A participant muted by a moderator may unmute without being asked.
    pub allow_self_unmute: bool,
    /// Two participants may connect directly ([`crate::p2p`]). On by
    /// default (seed 001: a call of two uses no server resources), also for
    /// rooms stored before the setting existed.
    pub p2p: bool,
}

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings {
            lobby: false,
            locked: false,
            speak_mode: false,
            allow_self_unmute: false,
            p2p: true,
        }
    }
}

/// A change to [`RoomSettings`]: absent fields stay as they are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsChange {
    /// See [`RoomSettings::lobby`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lobby: Option<bool>,
    /// See [`RoomSettings::locked`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    /// See [`RoomSettings::speak_mode`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speak_mode: Option<bool>,
    /// See [`RoomSettings::allow_self_unmute`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_self_unmute: Option<bool>,
    /// See [`RoomSettings::p2p`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p2p: Option<bool>,
}

/// Someone a moderator removed from the meeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    /// "And don't let them back into this meeting": their join tokens,
    /// rejoin tokens, account and pass are refused for this room.
    pub ban: bool,
    /// The moderator's name, for the removed participant's page.
    pub by_name: String,
    /// The account they joined with, if any (banned with them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    /// The guest pass they joined with, if any (banned with them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<PassId>,
    /// When.
    pub at_ms: UnixMillis,
}

/// The durable moderation state of one room. Committed by the control
/// plane; copied to every media node hosting the room.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomPolicy {
    /// Incremented by every committed change; nodes keep the highest.
    pub version: u64,
    /// Room-wide switches.
    pub settings: RoomSettings,
    /// Participants who joined as the host (owner or owner key).
    pub hosts: BTreeSet<ParticipantId>,
    /// Participants granted moderator.
    pub moderators: BTreeSet<ParticipantId>,
    /// Participants allowed to speak in speak mode.
    pub speakers: BTreeSet<ParticipantId>,
    /// Media held by moderators, per participant.
    pub holds: BTreeMap<ParticipantId, Hold>,
    /// Participants removed from the meeting.
    pub removed: BTreeMap<ParticipantId, Removal>,
    /// Lobby waiters a moderator admitted (or whom the lobby let in after
    /// it stayed unattended).
    pub admitted: BTreeSet<ParticipantId>,
    /// Lobby waiters a moderator denied.
    pub denied: BTreeSet<ParticipantId>,
    /// The recording running now, if any. Every node hosting the room
    /// records its own publishers while this is set, and every client
    /// shows the recording indicator.
    pub recording: Option<crate::recording::ActiveRecording>,
}

impl RoomPolicy {
    /// `id`'s role: `claimed` (from their join token) raised by what the
    /// policy records.
    pub fn role_of(&self, id: &ParticipantId, claimed: Role) -> Role {
        if self.hosts.contains(id) {
            Role::Host
        } else if self.moderators.contains(id) {
            claimed.max(Role::Moderator)
        } else {
            claimed
        }
    }

    /// Whether media of `group` from `id` (whose role is `role`) must not be
    /// forwarded: a moderator's hold, or speak mode without permission.
    pub fn withholds(&self, id: &ParticipantId, role: Role, group: MediaGroup) -> bool {
        let held = self
            .holds
            .get(id)
            .is_some_and(|h| h.groups.contains(&group));
        let silenced = self.settings.speak_mode && !role.moderates() && !self.speakers.contains(id);
        held || silenced
    }

    /// Whether `id` may not join (again): removed with "don't let back in",
    /// or denied at the lobby.
    pub fn bars(&self, id: &ParticipantId) -> bool {
        self.removed.get(id).is_some_and(|r| r.ban) || self.denied.contains(id)
    }

    /// What clients see.
    pub fn view(&self) -> PolicyView {
        PolicyView {
            version: self.version,
            settings: self.settings,
            speakers: self.speakers.clone(),
            holds: self.holds.clone(),
            recording: self.recording.clone(),
        }
    }
}

/// The policy as clients see it (in `joined` and `policy`). Roles are in
/// each participant's entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyView {
    /// See [`RoomPolicy::version`].
    pub version: u64,
    /// Room-wide switches.
    pub settings: RoomSettings,
    /// Permitted speakers (matters in speak mode).
    pub speakers: BTreeSet<ParticipantId>,
    /// Media held by moderators.
    pub holds: BTreeMap<ParticipantId, Hold>,
    /// The recording running now ("Recording" indicator); absent when
    /// none runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<crate::recording::ActiveRecording>,
}

/// A moderator's (or a participant's own) action, sent in `moderate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModAction {
    /// Stop forwarding `group` of `participant_id` ("Mute {name}", "Turn
    /// off {name}'s camera", "Stop {name}'s screen share").
    Mute {
        /// Whom.
        participant_id: ParticipantId,
        /// Which media.
        group: MediaGroup,
    },
    /// Lift the microphone hold and ask the participant to unmute; they
    /// decide.
    AskToUnmute {
        /// Whom.
        participant_id: ParticipantId,
    },
    /// Hold the microphone of everyone present except hosts and
    /// moderators.
    MuteEveryone,
    /// Grant moderator.
    MakeModerator {
        /// Whom.
        participant_id: ParticipantId,
    },
    /// Take moderator back (not from a host).
    RevokeModerator {
        /// Whom.
        participant_id: ParticipantId,
    },
    /// Permit to publish in speak mode.
    AllowSpeak {
        /// Whom.
        participant_id: ParticipantId,
    },
    /// Take speak permission back; their tracks stop being forwarded.
    RevokeSpeak {
        /// Whom.
        participant_id: ParticipantId,
    },
    /// Remove from the meeting; with `ban`, do not let them back in.
    Remove {
        /// Whom.
        participant_id: ParticipantId,
        /// Also refuse their tokens, account and pass for this room.
        #[serde(default)]
        ban: bool,
    },
    /// Let a lobby waiter in.
    Admit {
        /// Whom.
        participant_id: ParticipantId,
    },
    /// Turn a lobby waiter away.
    Deny {
        /// Whom.
        participant_id: ParticipantId,
    },
    /// Change room-wide switches ("Lock meeting", the "Meeting settings"
    /// dialog).
    Settings {
        /// What changes.
        change: SettingsChange,
    },
    /// Lift one's own hold on `group`: allowed where the room allows
    /// self-unmute, and for the microphone after being asked.
    UnmuteSelf {
        /// Which media.
        group: MediaGroup,
    },
    /// Start recording the meeting ("Start recording"). Clients send it
    /// without an id; the control plane puts a fresh random one in before
    /// the rules run, and any id a client sent is replaced.
    StartRecording {
        /// Filled in by the control plane.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<crate::recording::RecordingId>,
    },
    /// Stop the running recording ("Stop recording").
    StopRecording,
}

impl ModAction {
    /// The participant the action is about, if it is about one.
    pub fn target(&self) -> Option<&ParticipantId> {
        match self {
            ModAction::Mute { participant_id, .. }
            | ModAction::AskToUnmute { participant_id }
            | ModAction::MakeModerator { participant_id }
            | ModAction::RevokeModerator { participant_id }
            | ModAction::AllowSpeak { participant_id }
            | ModAction::RevokeSpeak { participant_id }
            | ModAction::Remove { participant_id, .. }
            | ModAction::Admit { participant_id }
            | ModAction::Deny { participant_id } => Some(participant_id),
            ModAction::MuteEveryone
            | ModAction::Settings { .. }
            | ModAction::UnmuteSelf { .. }
            | ModAction::StartRecording { .. }
            | ModAction::StopRecording => None,
        }
    }

    /// The action's tag, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ModAction::Mute { .. } => "mute",
            ModAction::AskToUnmute { .. } => "ask_to_unmute",
            ModAction::MuteEveryone => "mute_everyone",
            ModAction::MakeModerator { .. } => "make_moderator",
            ModAction::RevokeModerator { .. } => "revoke_moderator",
            ModAction::AllowSpeak { .. } => "allow_speak",
            ModAction::RevokeSpeak { .. } => "revoke_speak",
            ModAction::Remove { .. } => "remove",
            ModAction::Admit { .. } => "admit",
            ModAction::Deny { .. } => "deny",
            ModAction::Settings { .. } => "settings",
            ModAction::UnmuteSelf { .. } => "unmute_self",
            ModAction::StartRecording { .. } => "start_recording",
            ModAction::StopRecording => "stop_recording",
        }
    }
}

/// What a participant is told happened to them, with who did it
/// (`moderated`). Nodes derive these from the difference between two
/// policies, so every node tells its own participants, whichever node the
/// moderator is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    /// Your `group` was stopped.
    Muted {
        /// Which media.
        group: MediaGroup,
    },
    /// A moderator asks you to unmute.
    AskedToUnmute,
    /// You are a moderator now.
    MadeModerator,
    /// You are no longer a moderator.
    ModeratorRevoked,
    /// You may speak.
    AllowedToSpeak,
    /// You may no longer speak; your media stopped.
    SpeakRevoked,
    /// You were removed (the connection closes after this).
    Removed {
        /// You may not come back.
        ban: bool,
    },
}

/// Someone waiting in the lobby, as moderators see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbyEntry {
    /// Their participant id (the one their token grants once admitted).
    pub participant_id: ParticipantId,
    /// The name they gave.
    pub display_name: String,
    /// Joined without an account.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guest: bool,
    /// When they started waiting.
    pub since_ms: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(s: &str) -> ParticipantId {
        ParticipantId(s.into())
    }

    #[test]
    fn actions_parse_from_the_documented_json() {
        let a: ModAction =
            serde_json::from_str(r#"{"action":"mute","participant_id":"p-bob","group":"camera"}"#)
                .unwrap();
        assert_eq!(
            a,
            ModAction::Mute {
                participant_id: pid("p-bob"),
                group: MediaGroup::Camera
            }
        );
        let a: ModAction =
            serde_json::from_str(r#"{"action":"settings","change":{"locked":true}}"#).unwrap();
        assert_eq!(a.kind(), "settings");
        let a: ModAction = serde_json::from_str(r#"{"action":"mute_everyone"}"#).unwrap();
        assert_eq!(a.target(), None);
        assert!(serde_json::from_str::<ModAction>(r#"{"action":"promote"}"#).is_err());
        assert!(serde_json::from_str::<ModAction>(
            r#"{"action":"remove","participant_id":"p-bob","ban":true,"x":1}"#
        )
        .is_err());
    }

    #[test]
    fn roles_order_by_authority_and_the_policy_raises_them() {
        assert!(Role::Host > Role::Moderator && Role::Moderator > Role::Participant);
        assert!(Role::Participant > Role::Guest);
        let mut p = RoomPolicy::default();
        p.moderators.insert(pid("p-a"));
        p.hosts.insert(pid("p-h"));
        assert_eq!(p.role_of(&pid("p-a"), Role::Guest), Role::Moderator);
        assert_eq!(p.role_of(&pid("p-h"), Role::Participant), Role::Host);
        assert_eq!(p.role_of(&pid("p-x"), Role::Guest), Role::Guest);
    }

    #[test]
    fn holds_and_speak_mode_withhold_media() {
        let mut p = RoomPolicy::default();
        let bob = pid("p-bob");
        assert!(!p.withholds(&bob, Role::Participant, MediaGroup::Camera));
        p.holds.insert(
            bob.clone(),
            Hold {
                groups: [MediaGroup::Camera].into(),
                by_name: "Alice".into(),
                by: pid("p-alice"),
                asked_to_unmute: false,
            },
        );
        assert!(p.withholds(&bob, Role::Participant, MediaGroup::Camera));
        assert!(!p.withholds(&bob, Role::Participant, MediaGroup::Microphone));
        p.settings.speak_mode = true;
        assert!(p.withholds(&bob, Role::Participant, MediaGroup::Microphone));
        assert!(!p.withholds(&bob, Role::Moderator, MediaGroup::Microphone));
        p.speakers.insert(bob.clone());
        assert!(!p.withholds(&bob, Role::Participant, MediaGroup::Microphone));
    }

    #[test]
    fn peer_to_peer_is_on_by_default_also_for_stored_settings_without_it() {
        assert!(RoomSettings::default().p2p);
        let old: RoomSettings = serde_json::from_str(r#"{"lobby":true}"#).unwrap();
        assert!(old.p2p && old.lobby);
        let old: RoomPolicy = serde_json::from_str(r#"{"version":3}"#).unwrap();
        assert!(old.settings.p2p);
        let off: RoomSettings = serde_json::from_str(r#"{"p2p":false}"#).unwrap();
        assert!(!off.p2p);
    }
}
