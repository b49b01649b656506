//! The moderation rules, one behaviour per test.

use super::*;
use crate::ids::UserId;
use crate::moderation::RoomSettings;
use crate::pass::PassId;
use crate::rpc::PresentParticipant;

pub(super) fn pid(s: &str) -> ParticipantId {
    ParticipantId(s.into())
}

pub(super) fn actor(id: &str, role: Role) -> Option<Actor> {
    Some(Actor {
        participant_id: pid(id),
        display_name: format!("{id} name"),
        claimed_role: role,
    })
}

fn present(id: &str, role: Role) -> PresentParticipant {
    PresentParticipant {
        participant_id: pid(id),
        claimed_role: role,
        user: None,
        pass: None,
    }
}

pub(super) fn req(actor: Option<Actor>, action: ModAction) -> ModerateRequest {
    ModerateRequest {
        room_id: crate::ids::RoomId(1),
        actor,
        action,
        present: vec![
            present("p-host", Role::Host),
            present("p-mod", Role::Participant),
            present("p-bob", Role::Participant),
            present("p-gus", Role::Guest),
        ],
        at_ms: 1_000,
    }
}

/// A room whose host and moderator are recorded.
pub(super) fn room() -> RoomPolicy {
    let mut p = RoomPolicy {
        version: 3,
        ..Default::default()
    };
    p.hosts.insert(pid("p-host"));
    p.moderators.insert(pid("p-mod"));
    p
}

/// One action of every kind, aimed at an ordinary participant.
fn every_action() -> Vec<ModAction> {
    let bob = pid("p-bob");
    vec![
        ModAction::Mute {
            participant_id: bob.clone(),
            group: MediaGroup::Camera,
        },
        ModAction::AskToUnmute {
            participant_id: bob.clone(),
        },
        ModAction::MuteEveryone,
        ModAction::MakeModerator {
            participant_id: bob.clone(),
        },
        ModAction::RevokeModerator {
            participant_id: pid("p-mod"),
        },
        ModAction::AllowSpeak {
            participant_id: pid("p-gus"),
        },
        ModAction::RevokeSpeak {
            participant_id: bob.clone(),
        },
        ModAction::Remove {
            participant_id: bob.clone(),
            ban: true,
        },
        ModAction::Admit {
            participant_id: pid("p-new"),
        },
        ModAction::Deny {
            participant_id: pid("p-new"),
        },
        ModAction::Settings {
            change: SettingsChange {
                locked: Some(true),
                ..Default::default()
            },
        },
        ModAction::StartRecording {
            id: Some(crate::recording::RecordingId::from_random([7; 8])),
        },
    ]
}

#[test]
fn only_hosts_and_moderators_may_take_any_moderation_action() {
    let mut p = room();
    p.speakers.insert(pid("p-bob"));
    for action in every_action() {
        for (who, role) in [
            ("p-gus", Role::Guest),
            ("p-bob", Role::Participant),
            ("p-eve", Role::Participant),
            ("p-mod", Role::Participant),
            ("p-claims-mod", Role::Moderator),
            ("p-host", Role::Participant),
            ("p-claims-host", Role::Host),
        ] {
            let moderates = p.role_of(&pid(who), role).moderates();
            let got = decide(&p, &req(actor(who, role), action.clone()));
            if moderates {
                let next = got.unwrap_or_else(|e| panic!("{who} {}: {e}", action.kind()));
                assert_eq!(next.version, 4, "{who} {} bumps the version", action.kind());
            } else {
                assert_eq!(
                    got,
                    Err(Refusal::Forbidden(not_a_moderator(&action))),
                    "{who} {}",
                    action.kind()
                );
            }
        }
    }
}

#[test]
fn a_refusal_names_the_action_and_maps_to_forbidden() {
    let e = decide(
        &room(),
        &req(actor("p-bob", Role::Participant), ModAction::MuteEveryone),
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden);
    assert_eq!(e.message(), "only a host or a moderator can mute everyone");
}

#[test]
fn nobody_but_a_host_acts_on_a_host() {
    let host = pid("p-host");
    let on_host = [
        ModAction::Mute {
            participant_id: host.clone(),
            group: MediaGroup::Microphone,
        },
        ModAction::AskToUnmute {
            participant_id: host.clone(),
        },
        ModAction::RevokeSpeak {
            participant_id: host.clone(),
        },
        ModAction::Remove {
            participant_id: host.clone(),
            ban: false,
        },
        ModAction::Deny {
            participant_id: host.clone(),
        },
    ];
    for action in on_host {
        let by_mod = decide(
            &room(),
            &req(actor("p-mod", Role::Participant), action.clone()),
        );
        assert_eq!(
            by_mod,
            Err(Refusal::Forbidden(HOST_PROTECTED.into())),
            "{}",
            action.kind()
        );
        let by_host = decide(
            &room(),
            &req(actor("p-other-host", Role::Host), action.clone()),
        );
        assert!(by_host.is_ok(), "a host may {} a host", action.kind());
    }
}

#[test]
fn a_host_with_a_host_token_is_protected_before_the_policy_records_them() {
    let mut p = room();
    p.hosts.clear();
    let action = ModAction::Mute {
        participant_id: pid("p-host"),
        group: MediaGroup::Camera,
    };
    assert_eq!(
        decide(&p, &req(actor("p-mod", Role::Participant), action)),
        Err(Refusal::Forbidden(HOST_PROTECTED.into()))
    );
}

#[test]
fn nobody_revokes_a_hosts_moderation_but_moderators_revoke_moderators() {
    let revoke_host = ModAction::RevokeModerator {
        participant_id: pid("p-host"),
    };
    for who in ["p-mod", "p-host"] {
        let e = decide(
            &room(),
            &req(actor(who, Role::Participant), revoke_host.clone()),
        );
        assert!(matches!(e, Err(Refusal::Forbidden(_))), "{who}: {e:?}");
    }
    let mut p = room();
    p.moderators.insert(pid("p-mod2"));
    let next = decide(
        &p,
        &req(
            actor("p-mod", Role::Participant),
            ModAction::RevokeModerator {
                participant_id: pid("p-mod2"),
            },
        ),
    )
    .unwrap();
    assert!(!next.moderators.contains(&pid("p-mod2")));
    assert_eq!(
        next.role_of(&pid("p-mod2"), Role::Participant),
        Role::Participant
    );
}

#[test]
fn mute_holds_the_group_and_names_who_muted() {
    let next = decide(
        &room(),
        &req(
            actor("p-mod", Role::Participant),
            ModAction::Mute {
                participant_id: pid("p-bob"),
                group: MediaGroup::Camera,
            },
        ),
    )
    .unwrap();
    let hold = &next.holds[&pid("p-bob")];
    assert_eq!(hold.groups, [MediaGroup::Camera].into());
    assert_eq!(hold.by, pid("p-mod"));
    assert_eq!(hold.by_name, "p-mod name");
    assert!(next.withholds(&pid("p-bob"), Role::Participant, MediaGroup::Camera));
    assert!(!next.withholds(&pid("p-bob"), Role::Participant, MediaGroup::Microphone));
}

#[test]
fn muting_again_changes_nothing_and_keeps_the_version() {
    let mute = req(
        actor("p-mod", Role::Participant),
        ModAction::Mute {
            participant_id: pid("p-bob"),
            group: MediaGroup::Microphone,
        },
    );
    let once = decide(&room(), &mute).unwrap();
    let twice = decide(&once, &mute).unwrap();
    assert_eq!(twice, once);
}

#[test]
fn ask_to_unmute_lifts_the_microphone_hold_and_asks() {
    let mut p = room();
    let mute = |g| {
        req(
            actor("p-mod", Role::Participant),
            ModAction::Mute {
                participant_id: pid("p-bob"),
                group: g,
            },
        )
    };
    p = decide(&p, &mute(MediaGroup::Microphone)).unwrap();
    p = decide(&p, &mute(MediaGroup::Camera)).unwrap();
    let asked = decide(
        &p,
        &req(
            actor("p-host", Role::Host),
            ModAction::AskToUnmute {
                participant_id: pid("p-bob"),
            },
        ),
    )
    .unwrap();
    let hold = &asked.holds[&pid("p-bob")];
    assert!(hold.asked_to_unmute);
    assert_eq!(
        hold.groups,
        [MediaGroup::Camera].into(),
        "the camera stays held"
    );
    assert_eq!(hold.by_name, "p-host name");
    // Bob answers by unmuting: allowed, and the request is answered.
    let answered = decide(
        &asked,
        &req(
            actor("p-bob", Role::Participant),
            ModAction::UnmuteSelf {
                group: MediaGroup::Microphone,
            },
        ),
    )
    .unwrap();
    assert!(!answered.holds[&pid("p-bob")].asked_to_unmute);
}

#[test]
fn unmute_self_is_refused_while_held_unless_the_room_allows_it() {
    let mut p = room();
    p = decide(
        &p,
        &req(
            actor("p-mod", Role::Participant),
            ModAction::Mute {
                participant_id: pid("p-bob"),
                group: MediaGroup::Microphone,
            },
        ),
    )
    .unwrap();
    let unmute = req(
        actor("p-bob", Role::Participant),
        ModAction::UnmuteSelf {
            group: MediaGroup::Microphone,
        },
    );
    assert_eq!(
        decide(&p, &unmute),
        Err(Refusal::Forbidden(MUTED_BY_A_MODERATOR.into()))
    );
    p.settings.allow_self_unmute = true;
    let next = decide(&p, &unmute).unwrap();
    assert!(
        !next.holds.contains_key(&pid("p-bob")),
        "an empty hold is dropped"
    );
    assert_eq!(next.version, p.version + 1);
}

#[test]
fn unmute_self_without_a_hold_is_allowed_and_changes_nothing() {
    let p = room();
    for (who, role) in [("p-gus", Role::Guest), ("p-bob", Role::Participant)] {
        let got = decide(
            &p,
            &req(
                actor(who, role),
                ModAction::UnmuteSelf {
                    group: MediaGroup::Screen,
                },
            ),
        );
        assert_eq!(got, Ok(p.clone()), "{who}");
    }
}

#[test]
fn mute_everyone_holds_the_microphones_of_everyone_who_does_not_moderate() {
    let mut r = req(actor("p-mod", Role::Participant), ModAction::MuteEveryone);
    r.present.push(present("p-claims-mod", Role::Moderator));
    let next = decide(&room(), &r).unwrap();
    let held: Vec<_> = next.holds.keys().map(|k| k.0.as_str()).collect();
    assert_eq!(held, ["p-bob", "p-gus"]);
    for h in next.holds.values() {
        assert_eq!(h.groups, [MediaGroup::Microphone].into());
        assert_eq!(h.by, pid("p-mod"));
    }
}

#[test]
fn a_ban_records_the_account_and_pass_of_the_removed_participant() {
    let mut r = req(
        actor("p-mod", Role::Participant),
        ModAction::Remove {
            participant_id: pid("p-gus"),
            ban: true,
        },
    );
    r.present[3].user = Some(UserId(9));
    r.present[3].pass = Some(PassId(4));
    let next = decide(&room(), &r).unwrap();
    let removal = &next.removed[&pid("p-gus")];
    assert!(removal.ban);
    assert_eq!(removal.user, Some(UserId(9)));
    assert_eq!(removal.pass, Some(PassId(4)));
    assert_eq!(removal.by_name, "p-mod name");
    assert_eq!(removal.at_ms, 1_000);
    assert!(next.bars(&pid("p-gus")));
    // Removing again without a ban keeps the ban.
    let mut again = r.clone();
    again.action = ModAction::Remove {
        participant_id: pid("p-gus"),
        ban: false,
    };
    assert_eq!(decide(&next, &again), Ok(next.clone()));
}

#[test]
fn a_removal_without_a_ban_records_neither_account_nor_pass_and_does_not_bar() {
    let mut r = req(
        actor("p-host", Role::Host),
        ModAction::Remove {
            participant_id: pid("p-gus"),
            ban: false,
        },
    );
    r.present[3].user = Some(UserId(9));
    let next = decide(&room(), &r).unwrap();
    let removal = &next.removed[&pid("p-gus")];
    assert_eq!((removal.ban, removal.user), (false, None));
    assert!(!next.bars(&pid("p-gus")));
}

#[test]
fn the_system_actor_may_only_admit() {
    let p = room();
    for action in every_action() {
        let got = decide(&p, &req(None, action.clone()));
        if matches!(action, ModAction::Admit { .. }) {
            assert!(got.unwrap().admitted.contains(&pid("p-new")));
        } else {
            assert_eq!(
                got,
                Err(Refusal::Forbidden(SYSTEM_ONLY_ADMITS.into())),
                "{}",
                action.kind()
            );
        }
    }
}

#[test]
fn admit_and_deny_undo_each_other() {
    let admit = req(
        actor("p-mod", Role::Participant),
        ModAction::Admit {
            participant_id: pid("p-new"),
        },
    );
    let mut deny = admit.clone();
    deny.action = ModAction::Deny {
        participant_id: pid("p-new"),
    };
    let denied = decide(&room(), &deny).unwrap();
    assert!(denied.bars(&pid("p-new")));
    let admitted = decide(&denied, &admit).unwrap();
    assert!(!admitted.bars(&pid("p-new")));
    assert!(admitted.admitted.contains(&pid("p-new")));
}

#[test]
fn settings_change_only_the_fields_given() {
    let mut p = room();
    p.settings.lobby = true;
    let next = decide(
        &p,
        &req(
            actor("p-host", Role::Host),
            ModAction::Settings {
                change: SettingsChange {
                    speak_mode: Some(true),
                    ..Default::default()
                },
            },
        ),
    )
    .unwrap();
    assert_eq!(
        next.settings,
        RoomSettings {
            lobby: true,
            speak_mode: true,
            ..Default::default()
        }
    );
    let owner = with_settings(
        &next,
        &SettingsChange {
            lobby: Some(false),
            ..Default::default()
        },
    );
    assert!(!owner.settings.lobby && owner.settings.speak_mode);
    assert_eq!(owner.version, next.version + 1);
}

#[test]
fn grants_edit_the_moderator_and_speaker_sets() {
    let by = actor("p-mod", Role::Participant);
    let bob = pid("p-bob");
    let p = decide(
        &room(),
        &req(
            by.clone(),
            ModAction::MakeModerator {
                participant_id: bob.clone(),
            },
        ),
    )
    .unwrap();
    assert_eq!(p.role_of(&bob, Role::Guest), Role::Moderator);
    let p = decide(
        &p,
        &req(
            by.clone(),
            ModAction::AllowSpeak {
                participant_id: pid("p-gus"),
            },
        ),
    )
    .unwrap();
    assert!(p.speakers.contains(&pid("p-gus")));
    let p = decide(
        &p,
        &req(
            by,
            ModAction::RevokeSpeak {
                participant_id: pid("p-gus"),
            },
        ),
    )
    .unwrap();
    assert!(!p.speakers.contains(&pid("p-gus")));
}
