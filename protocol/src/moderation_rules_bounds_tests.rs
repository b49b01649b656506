//! The moderation rules' bounds: id lengths and the size of the policy's
//! sets and maps.

use super::tests::{actor, pid, req, room};
use super::*;

#[test]
fn overlong_ids_are_a_bad_request() {
    let long = "p".repeat(MAX_ID_BYTES + 1);
    let target = req(
        actor("p-mod", Role::Participant),
        ModAction::MakeModerator {
            participant_id: pid(&long),
        },
    );
    let e = decide(&room(), &target).unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadRequest);
    let by = req(actor(&long, Role::Host), ModAction::MuteEveryone);
    assert!(matches!(decide(&room(), &by), Err(Refusal::BadRequest(_))));
    let ok = "p".repeat(MAX_ID_BYTES);
    assert!(with_host(&room(), &pid(&ok)).is_ok());
    assert!(matches!(
        with_host(&room(), &pid(&long)),
        Err(Refusal::BadRequest(_))
    ));
}

#[test]
fn a_full_set_refuses_one_more_entry_but_not_a_change_of_others() {
    let mut p = room();
    for n in 0..MAX_ENTRIES {
        p.speakers.insert(pid(&format!("p-{n}")));
    }
    let allow = |id: &str| {
        req(
            actor("p-host", Role::Host),
            ModAction::AllowSpeak {
                participant_id: pid(id),
            },
        )
    };
    let e = decide(&p, &allow("p-one-more")).unwrap_err();
    assert!(e.message().contains("too many permitted speakers"), "{e}");
    assert_eq!(decide(&p, &allow("p-7")), Ok(p.clone()), "already there");
    let revoke = req(
        actor("p-host", Role::Host),
        ModAction::RevokeSpeak {
            participant_id: pid("p-7"),
        },
    );
    assert_eq!(decide(&p, &revoke).unwrap().speakers.len(), MAX_ENTRIES - 1);
}

#[test]
fn recording_a_host_raises_their_role_once() {
    let p = RoomPolicy::default();
    let once = with_host(&p, &pid("p-h")).unwrap();
    assert_eq!(once.version, 1);
    assert_eq!(once.role_of(&pid("p-h"), Role::Guest), Role::Host);
    assert_eq!(with_host(&once, &pid("p-h")).unwrap(), once);
}

#[test]
fn full_host_admission_and_removal_records_make_room_for_new_ones() {
    let mut p = room();
    p.hosts.clear();
    for n in 0..MAX_ENTRIES {
        p.hosts.insert(pid(&format!("p-{n:04}")));
        p.admitted.insert(pid(&format!("p-{n:04}")));
        p.removed.insert(
            pid(&format!("p-{n:04}")),
            Removal {
                ban: true,
                by_name: "x".into(),
                user: None,
                pass: None,
                at_ms: 10 + n as u64,
            },
        );
    }
    let next = with_host(&p, &pid("p-new-host")).unwrap();
    assert_eq!(next.hosts.len(), MAX_ENTRIES);
    assert!(next.hosts.contains(&pid("p-new-host")));
    assert!(
        !next.hosts.contains(&pid("p-0000")),
        "the lowest other id went"
    );
    let admitted = decide(
        &p,
        &req(
            None,
            ModAction::Admit {
                participant_id: pid("p-zz"),
            },
        ),
    )
    .unwrap();
    assert_eq!(admitted.admitted.len(), MAX_ENTRIES);
    assert!(admitted.admitted.contains(&pid("p-zz")));
    p.hosts.insert(pid("p-host"));
    let removed = decide(
        &p,
        &req(
            actor("p-host", Role::Host),
            ModAction::Remove {
                participant_id: pid("p-bob"),
                ban: true,
            },
        ),
    )
    .unwrap();
    assert_eq!(removed.removed.len(), MAX_ENTRIES);
    assert!(removed.removed.contains_key(&pid("p-bob")));
    assert!(
        !removed.removed.contains_key(&pid("p-0000")),
        "the oldest removal went"
    );
}
