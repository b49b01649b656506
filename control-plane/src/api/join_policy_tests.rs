//! The join-time policy decision, one behaviour per test.

use super::*;
use veche_protocol::moderation::{Removal, RoomSettings};
use veche_protocol::{NodeId, RoomSlug};

fn pid(s: &str) -> ParticipantId {
    ParticipantId(s.into())
}

fn joiner<'a>(id: &'a ParticipantId) -> Joiner<'a> {
    Joiner {
        participant_id: id,
        owner: false,
        guest: false,
        user: None,
        pass: None,
        rejoining: None,
    }
}

fn claims(id: &str, lobby: bool) -> JoinClaims {
    JoinClaims {
        room_id: RoomId(1),
        room_slug: RoomSlug::from_random([1; 16]),
        room_name: "r".into(),
        e2ee: false,
        participant_id: pid(id),
        display_name: "n".into(),
        node_id: NodeId(1),
        issued_at_ms: 1,
        expires_at_ms: 2,
        room_nodes: Vec::new(),
        rejoin: false,
        seat: None,
        user: None,
        guest: false,
        pass: None,
        role: Role::Participant,
        lobby,
        ice_servers: Vec::new(),
    }
}

fn refusal(r: Result<Seat, ApiError>) -> String {
    let e = r.expect_err("a refusal");
    assert_eq!(e.0.code, ErrorCode::Forbidden);
    e.0.message
}

fn banned(user: Option<UserId>, pass: Option<PassId>) -> RoomPolicy {
    let mut p = RoomPolicy::default();
    p.removed.insert(
        pid("p-old"),
        Removal {
            ban: true,
            by_name: "Ada".into(),
            user,
            pass,
            at_ms: 1,
        },
    );
    p
}

#[test]
fn the_owner_is_a_host_recorded_once_and_everyone_else_a_guest_or_participant() {
    let id = pid("p-1");
    let p = RoomPolicy::default();
    let owner = decide(
        &p,
        &Joiner {
            owner: true,
            ..joiner(&id)
        },
    )
    .unwrap();
    assert_eq!(
        owner,
        Seat {
            role: Role::Host,
            lobby: false,
            record_host: true,
            fresh_id: false,
        }
    );
    let mut recorded = p.clone();
    recorded.hosts.insert(id.clone());
    let again = decide(
        &recorded,
        &Joiner {
            owner: true,
            ..joiner(&id)
        },
    )
    .unwrap();
    assert!(!again.record_host);
    let guest = decide(
        &p,
        &Joiner {
            guest: true,
            ..joiner(&id)
        },
    )
    .unwrap();
    assert_eq!(guest.role, Role::Guest);
    assert_eq!(decide(&p, &joiner(&id)).unwrap().role, Role::Participant);
}

#[test]
fn a_rejoining_host_keeps_host_but_a_moderator_is_never_claimed_in_the_token() {
    let mut p = RoomPolicy::default();
    p.hosts.insert(pid("p-h"));
    p.moderators.insert(pid("p-m"));
    assert_eq!(decide(&p, &joiner(&pid("p-h"))).unwrap().role, Role::Host);
    assert_eq!(
        decide(&p, &joiner(&pid("p-m"))).unwrap().role,
        Role::Participant
    );
}

#[test]
fn a_banned_participant_account_or_pass_is_refused() {
    let old = pid("p-old");
    assert_eq!(refusal(decide(&banned(None, None), &joiner(&old))), REMOVED);
    let new = pid("p-new");
    let by_user = Joiner {
        user: Some(UserId(3)),
        ..joiner(&new)
    };
    assert_eq!(
        refusal(decide(&banned(Some(UserId(3)), None), &by_user)),
        REMOVED
    );
    let by_pass = Joiner {
        pass: Some(PassId(8)),
        ..joiner(&new)
    };
    assert_eq!(
        refusal(decide(&banned(None, Some(PassId(8))), &by_pass)),
        REMOVED
    );
    assert!(
        decide(&banned(Some(UserId(4)), Some(PassId(9))), &by_user).is_ok(),
        "another account is not banned"
    );
    assert!(
        decide(&banned(None, None), &joiner(&new)).is_ok(),
        "no account or pass matches nothing"
    );
    let mut removed_only = banned(None, None);
    removed_only.removed.get_mut(&old).unwrap().ban = false;
    assert!(
        decide(&removed_only, &joiner(&old)).is_ok(),
        "a removal without a ban lets them back"
    );
}

#[test]
fn a_participant_denied_at_the_lobby_is_refused() {
    let id = pid("p-d");
    let mut p = RoomPolicy::default();
    p.denied.insert(id.clone());
    assert_eq!(refusal(decide(&p, &joiner(&id))), DENIED);
}

#[test]
fn a_locked_meeting_refuses_newcomers_but_not_those_in_it_nor_moderators() {
    let mut p = RoomPolicy {
        settings: RoomSettings {
            locked: true,
            ..Default::default()
        },
        ..Default::default()
    };
    p.moderators.insert(pid("p-m"));
    assert_eq!(refusal(decide(&p, &joiner(&pid("p-new")))), LOCKED);
    let seated = claims("p-in", false);
    let rejoin = Joiner {
        rejoining: Some(&seated),
        ..joiner(&seated.participant_id)
    };
    assert!(decide(&p, &rejoin).is_ok());
    assert!(decide(&p, &joiner(&pid("p-m"))).is_ok());
    let id = pid("p-o");
    assert!(decide(
        &p,
        &Joiner {
            owner: true,
            ..joiner(&id)
        }
    )
    .is_ok());
    let waiting = claims("p-waiting", true);
    let waiter = Joiner {
        rejoining: Some(&waiting),
        ..joiner(&waiting.participant_id)
    };
    assert_eq!(
        refusal(decide(&p, &waiter)),
        LOCKED,
        "a waiter never admitted was not in the meeting"
    );
}

#[test]
fn the_lobby_holds_newcomers_who_do_not_moderate_and_were_not_admitted() {
    let mut p = RoomPolicy {
        settings: RoomSettings {
            lobby: true,
            ..Default::default()
        },
        ..Default::default()
    };
    p.moderators.insert(pid("p-m"));
    p.admitted.insert(pid("p-a"));
    assert!(decide(&p, &joiner(&pid("p-new"))).unwrap().lobby);
    assert!(!decide(&p, &joiner(&pid("p-m"))).unwrap().lobby);
    assert!(!decide(&p, &joiner(&pid("p-a"))).unwrap().lobby);
    let id = pid("p-o");
    let owner = Joiner {
        owner: true,
        ..joiner(&id)
    };
    assert!(!decide(&p, &owner).unwrap().lobby);
    let seated = claims("p-in", false);
    let rejoin = Joiner {
        rejoining: Some(&seated),
        ..joiner(&seated.participant_id)
    };
    assert!(!decide(&p, &rejoin).unwrap().lobby, "a seat is kept");
    let waiting = claims("p-waiting", true);
    let waiter = Joiner {
        rejoining: Some(&waiting),
        ..joiner(&waiting.participant_id)
    };
    assert!(decide(&p, &waiter).unwrap().lobby, "a waiter waits again");
    p.settings.lobby = false;
    assert!(!decide(&p, &joiner(&pid("p-new"))).unwrap().lobby);
}

#[test]
fn a_removed_participant_rejoining_comes_back_as_someone_new() {
    let mut p = banned(None, None);
    p.removed.get_mut(&pid("p-old")).unwrap().ban = false;
    p.moderators.insert(pid("p-old"));
    let old = claims("p-old", false);
    let rejoin = Joiner {
        rejoining: Some(&old),
        ..joiner(&old.participant_id)
    };
    let seat = decide(&p, &rejoin).unwrap();
    assert!(seat.fresh_id);
    assert_eq!(
        seat.role,
        Role::Participant,
        "the old id's grants stay behind"
    );
    p.settings.locked = true;
    assert_eq!(
        refusal(decide(&p, &rejoin)),
        LOCKED,
        "someone new to a locked meeting"
    );
    p.settings.locked = false;
    p.settings.lobby = true;
    assert!(decide(&p, &rejoin).unwrap().lobby, "and new to its lobby");
    assert!(
        !decide(&p, &joiner(&pid("p-other"))).unwrap().fresh_id,
        "only a removed participant's rejoin"
    );
}
