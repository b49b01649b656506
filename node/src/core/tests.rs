use super::*;
use veche_protocol::moderation::Role;
use veche_protocol::signal::{MediaKind, MediaState, PresenceStatus, TrackInfo, TrackSource};

fn pid(n: u8) -> ParticipantId {
    ParticipantId::from_random([n; 8])
}
fn track(n: u8, owner: u8, source: TrackSource) -> TrackInfo {
    TrackInfo {
        id: TrackId::from_random([n; 8]),
        kind: if source.is_audio() {
            MediaKind::Audio
        } else {
            MediaKind::Video
        },
        source,
        stream_id: pid(owner).to_string(),
    }
}
fn subs(actions: &[Action]) -> Vec<(ParticipantId, TrackId)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Subscribe { subscriber, track } => Some((subscriber.clone(), track.clone())),
            _ => None,
        })
        .collect()
}
fn unsubs(actions: &[Action]) -> Vec<(ParticipantId, TrackId)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Unsubscribe { subscriber, track } => Some((subscriber.clone(), track.clone())),
            _ => None,
        })
        .collect()
}
fn join(core: &mut RoomCore, n: u8) -> Vec<Action> {
    core.join(
        pid(n),
        format!("P{n}"),
        false,
        Role::Participant,
        MediaState::default(),
        0,
        1,
        false,
    )
    .unwrap()
}

#[test]
fn a_published_track_goes_to_everyone_but_its_publisher() {
    let mut core = RoomCore::new();
    join(&mut core, 1);
    join(&mut core, 2);
    join(&mut core, 3);
    let t = track(10, 1, TrackSource::Camera);
    let actions = core.publish(&pid(1), t.clone()).unwrap();
    assert_eq!(
        subs(&actions),
        vec![(pid(2), t.id.clone()), (pid(3), t.id.clone())]
    );
    assert!(core.receiving(&pid(1)).is_empty());
    assert_eq!(core.participant(&pid(1)).unwrap().tracks, vec![t]);
}

#[test]
fn a_late_joiner_receives_every_existing_track_and_others_are_told() {
    let mut core = RoomCore::new();
    join(&mut core, 1);
    let mic = track(10, 1, TrackSource::Microphone);
    let cam = track(11, 1, TrackSource::Camera);
    core.publish(&pid(1), mic.clone()).unwrap();
    core.publish(&pid(1), cam.clone()).unwrap();
    let actions = join(&mut core, 2);
    assert_eq!(subs(&actions), vec![(pid(2), mic.id), (pid(2), cam.id)]);
    assert!(actions.iter().any(|a| matches!(a,
        Action::Broadcast { msg: ServerMessage::ParticipantJoined { participant }, except: Some(e) }
            if participant.id == pid(2) && *e == pid(2))));
}

#[test]
fn a_guest_is_announced_as_a_guest_and_a_member_is_not() {
    let mut core = RoomCore::new();
    join(&mut core, 1);
    let actions = core
        .join(
            pid(2),
            "Visitor".into(),
            true,
            Role::Guest,
            MediaState::default(),
            0,
            1,
            false,
        )
        .unwrap();
    assert!(actions.iter().any(|a| matches!(a,
        Action::Broadcast { msg: ServerMessage::ParticipantJoined { participant }, .. }
            if participant.id == pid(2) && participant.guest)));
    assert!(core.participant(&pid(2)).unwrap().guest);
    assert!(!core.participant(&pid(1)).unwrap().guest);
}

#[test]
fn leaving_tears_down_every_leg_of_the_leavers_tracks() {
    let mut core = RoomCore::new();
    join(&mut core, 1);
    join(&mut core, 2);
    join(&mut core, 3);
    let cam = track(10, 1, TrackSource::Camera);
    core.publish(&pid(1), cam.clone()).unwrap();
    let actions = core.leave(&pid(1), LeaveReason::Left);
    assert_eq!(
        unsubs(&actions),
        vec![(pid(2), cam.id.clone()), (pid(3), cam.id.clone())]
    );
    assert!(core.publisher_of(&cam.id).is_none());
    assert_eq!(core.snapshot().len(), 2);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Broadcast {
            msg: ServerMessage::ParticipantLeft {
                reason: LeaveReason::Left,
                ..
            },
            ..
        }
    )));
    // Leaving twice is harmless.
    assert!(core.leave(&pid(1), LeaveReason::Left).is_empty());
}

#[test]
fn unpublishing_a_screen_share_unsubscribes_only_that_track() {
    let mut core = RoomCore::new();
    join(&mut core, 1);
    join(&mut core, 2);
    let cam = track(10, 1, TrackSource::Camera);
    let screen = track(11, 1, TrackSource::Screen);
    core.publish(&pid(1), cam.clone()).unwrap();
    core.publish(&pid(1), screen.clone()).unwrap();
    let actions = core.unpublish(&screen.id);
    assert_eq!(unsubs(&actions), vec![(pid(2), screen.id.clone())]);
    assert_eq!(core.receiving(&pid(2)), vec![cam.id]);
    assert_eq!(core.participant(&pid(1)).unwrap().tracks.len(), 1);
}

#[test]
fn media_and_status_changes_are_broadcast_to_everyone_including_the_subject() {
    let mut core = RoomCore::new();
    join(&mut core, 1);
    let muted = MediaState {
        mic_muted: true,
        ..MediaState::default()
    };
    let actions = core.set_media(&pid(1), muted).unwrap();
    assert!(matches!(
        &actions[..],
        [Action::Broadcast { except: None, .. }, Action::Announce(_)]
    ));
    // No change, no message.
    assert!(core.set_media(&pid(1), muted).unwrap().is_empty());
    let actions = core
        .set_status(&pid(1), PresenceStatus::Reconnecting)
        .unwrap();
    assert_eq!(actions.len(), 2);
    assert_eq!(
        core.participant(&pid(1)).unwrap().status,
        PresenceStatus::Reconnecting
    );
}

#[test]
fn a_resumed_participant_gets_every_track_again_and_loses_its_old_ones() {
    let mut core = RoomCore::new();
    join(&mut core, 1);
    join(&mut core, 2);
    let mine = track(10, 1, TrackSource::Camera);
    let theirs = track(11, 2, TrackSource::Camera);
    core.publish(&pid(1), mine.clone()).unwrap();
    core.publish(&pid(2), theirs.clone()).unwrap();
    core.set_status(&pid(1), PresenceStatus::Reconnecting)
        .unwrap();
    let actions = core.rejoin(&pid(1)).unwrap();
    assert_eq!(unsubs(&actions), vec![(pid(2), mine.id.clone())]);
    assert_eq!(subs(&actions), vec![(pid(1), theirs.id.clone())]);
    let me = core.participant(&pid(1)).unwrap();
    assert_eq!(me.status, PresenceStatus::Connected);
    assert!(me.tracks.is_empty());
    assert!(core.publisher_of(&mine.id).is_none());
    assert_eq!(core.rejoin(&pid(9)), Err(CoreError::NotInRoom));
}

#[test]
fn refusals_do_not_change_state() {
    let mut core = RoomCore::new();
    join(&mut core, 1);
    assert_eq!(
        core.join(
            pid(1),
            "again".into(),
            false,
            Role::Participant,
            MediaState::default(),
            0,
            1,
            false
        ),
        Err(CoreError::AlreadyInRoom)
    );
    let t = track(10, 9, TrackSource::Camera);
    assert_eq!(core.publish(&pid(9), t.clone()), Err(CoreError::NotInRoom));
    core.publish(&pid(1), t.clone()).unwrap();
    assert_eq!(core.publish(&pid(1), t), Err(CoreError::DuplicateTrack));
    assert_eq!(core.snapshot()[0].display_name, "P1");
}

const B: NodeId = NodeId(2);
const C: NodeId = NodeId(3);

fn remote(n: u8, tracks: Vec<TrackInfo>) -> ParticipantInfo {
    ParticipantInfo {
        id: pid(n),
        display_name: format!("R{n}"),
        status: PresenceStatus::Connected,
        media: MediaState::default(),
        tracks,
        joined_at_ms: 0,
        guest: false,
        role: Default::default(),
        hand_raised_at_ms: None,
    }
}
fn relays(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RelayStart { track, from } => Some(format!("start {track} {from}")),
            Action::RelayStop { track, from } => Some(format!("stop {track} {from}")),
            _ => None,
        })
        .collect()
}
fn announced(actions: &[Action]) -> Vec<Announcement> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Announce(x) => Some(x.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn every_change_to_a_local_participant_is_announced_to_other_nodes() {
    let mut core = RoomCore::new();
    let a = join(&mut core, 1);
    assert!(matches!(
        &announced(&a)[..],
        [Announcement::Upsert { epoch: 1, .. }]
    ));
    let cam = track(10, 1, TrackSource::Camera);
    let a = core.publish(&pid(1), cam.clone()).unwrap();
    assert!(
        matches!(&announced(&a)[..], [Announcement::Upsert { info, .. }] if info.tracks == vec![cam.clone()])
    );
    let a = core.leave(&pid(1), LeaveReason::Left);
    assert_eq!(
        announced(&a),
        vec![Announcement::Left {
            participant_id: pid(1),
            reason: LeaveReason::Left
        }]
    );
    // Remote members' changes are not re-announced: their own node does.
    let a = core.remote_upsert(B, remote(2, vec![]), 5);
    assert!(announced(&a).is_empty());
}

#[test]
fn a_remote_track_is_relayed_once_while_anyone_here_receives_it() {
    let mut core = RoomCore::new();
    let cam = track(20, 2, TrackSource::Camera);
    // Nobody here yet: a remote publisher's track is not relayed.
    let a = core.remote_upsert(B, remote(2, vec![cam.clone()]), 5);
    assert!(relays(&a).is_empty());
    assert!(matches!(
        &a[..],
        [Action::Broadcast {
            msg: ServerMessage::ParticipantJoined { .. },
            except: None
        }]
    ));
    // The first local participant starts the relay, before subscribing.
    let a = join(&mut core, 1);
    assert_eq!(relays(&a), vec![format!("start {} {B}", cam.id)]);
    assert!(matches!(a[0], Action::RelayStart { .. }));
    assert_eq!(subs(&a), vec![(pid(1), cam.id.clone())]);
    // A second local participant shares the same relay.
    let a = join(&mut core, 3);
    assert!(relays(&a).is_empty());
    assert_eq!(subs(&a), vec![(pid(3), cam.id.clone())]);
    core.leave(&pid(1), LeaveReason::Left);
    // The last local receiver leaving stops it, after unsubscribing.
    let a = core.leave(&pid(3), LeaveReason::Left);
    assert_eq!(relays(&a), vec![format!("stop {} {B}", cam.id)]);
    assert!(matches!(a.last(), Some(Action::RelayStop { .. })));
    assert!(core.relayed().is_empty());
    assert!(core.is_empty(), "only remote members are left");
}

#[test]
fn remote_track_changes_subscribe_and_unsubscribe_local_members() {
    let mut core = RoomCore::new();
    join(&mut core, 1);
    let cam = track(20, 2, TrackSource::Camera);
    let screen = track(21, 2, TrackSource::Screen);
    core.remote_upsert(B, remote(2, vec![cam.clone()]), 5);
    let a = core.remote_upsert(B, remote(2, vec![cam.clone(), screen.clone()]), 5);
    assert_eq!(subs(&a), vec![(pid(1), screen.id.clone())]);
    assert_eq!(relays(&a), vec![format!("start {} {B}", screen.id)]);
    assert!(matches!(
        a.last(),
        Some(Action::Broadcast {
            msg: ServerMessage::ParticipantUpdated { .. },
            ..
        })
    ));
    let a = core.remote_upsert(B, remote(2, vec![cam.clone()]), 5);
    assert_eq!(unsubs(&a), vec![(pid(1), screen.id.clone())]);
    assert_eq!(relays(&a), vec![format!("stop {} {B}", screen.id)]);
    let a = core.remote_left(B, &pid(2), LeaveReason::Left);
    assert_eq!(unsubs(&a), vec![(pid(1), cam.id.clone())]);
    assert!(core.participant(&pid(2)).is_none());
    // A "left" from a node the participant is not on is ignored.
    core.remote_upsert(B, remote(4, vec![]), 5);
    assert!(core.remote_left(C, &pid(4), LeaveReason::Left).is_empty());
}

#[test]
fn a_lost_nodes_participants_show_reconnecting_then_leave_unless_they_come_back() {
    let mut core = RoomCore::new();
    join(&mut core, 1);
    let cam = track(20, 2, TrackSource::Camera);
    core.remote_upsert(B, remote(2, vec![cam.clone()]), 5);
    core.remote_upsert(B, remote(3, vec![]), 5);
    let (a, waiting) = core.node_lost(B);
    assert_eq!(waiting, vec![pid(2), pid(3)]);
    assert_eq!(unsubs(&a), vec![(pid(1), cam.id.clone())]);
    assert_eq!(relays(&a), vec![format!("stop {} {B}", cam.id)]);
    assert_eq!(
        core.participant(&pid(2)).unwrap().status,
        PresenceStatus::Reconnecting
    );
    // Participant 2 comes back through node C with a newer session.
    let cam2 = track(22, 2, TrackSource::Camera);
    let a = core.remote_upsert(C, remote(2, vec![cam2.clone()]), 6);
    assert_eq!(relays(&a), vec![format!("start {} {C}", cam2.id)]);
    assert!(
        matches!(a.last(), Some(Action::Broadcast { msg: ServerMessage::ParticipantUpdated { participant }, .. }) if participant.status == PresenceStatus::Connected)
    );
    // The grace timers fire: 2 is back (nothing happens), 3 is gone.
    assert!(core.expire_remote(B, &pid(2)).is_empty());
    let a = core.expire_remote(B, &pid(3));
    assert!(matches!(
        &a[..],
        [Action::Broadcast {
            msg: ServerMessage::ParticipantLeft {
                reason: LeaveReason::Disconnected,
                ..
            },
            ..
        }]
    ));
}

#[test]
fn the_newest_session_of_a_participant_wins_across_nodes() {
    let mut core = RoomCore::new();
    core.join(
        pid(1),
        "P1".into(),
        false,
        Role::Participant,
        MediaState::default(),
        0,
        10,
        false,
    )
    .unwrap();
    let mine = track(10, 1, TrackSource::Camera);
    core.publish(&pid(1), mine.clone()).unwrap();
    join(&mut core, 3);
    // An older session announced from elsewhere is ignored.
    assert!(core.remote_upsert(B, remote(1, vec![]), 9).is_empty());
    assert_eq!(core.home(&pid(1)), Some(Home::Local));
    // A newer one means they moved: drop the seat here quietly, and
    // the others here now get their tracks from the new node.
    let moved = track(11, 1, TrackSource::Camera);
    let a = core.remote_upsert(B, remote(1, vec![moved.clone()]), 11);
    assert!(a.contains(&Action::DropSeat {
        participant: pid(1)
    }));
    assert_eq!(unsubs(&a), vec![(pid(3), mine.id.clone())]);
    assert_eq!(subs(&a), vec![(pid(3), moved.id.clone())]);
    assert!(!a.iter().any(|x| matches!(
        x,
        Action::Broadcast {
            msg: ServerMessage::ParticipantLeft { .. },
            ..
        }
    )));
    assert!(announced(&a).is_empty(), "the new node announces them now");
    assert_eq!(core.home(&pid(1)), Some(Home::Remote(B)));
}

#[test]
fn a_participant_known_from_another_node_can_take_their_seat_here() {
    let mut core = RoomCore::new();
    join(&mut core, 3);
    let cam = track(20, 2, TrackSource::Camera);
    core.remote_upsert(B, remote(2, vec![cam.clone()]), 5);
    let a = core
        .join(
            pid(2),
            "R2".into(),
            false,
            Role::Participant,
            MediaState::default(),
            99,
            6,
            true,
        )
        .unwrap();
    assert_eq!(unsubs(&a), vec![(pid(3), cam.id.clone())]);
    assert_eq!(relays(&a), vec![format!("stop {} {B}", cam.id)]);
    // Others see an update, not a second join, and reconnecting until
    // the new connection carries media.
    assert!(a.iter().any(|x| matches!(x, Action::Broadcast { msg: ServerMessage::ParticipantUpdated { participant }, .. } if participant.status == PresenceStatus::Reconnecting)));
    assert_eq!(core.home(&pid(2)), Some(Home::Local));
    let a = core.set_status(&pid(2), PresenceStatus::Connected).unwrap();
    assert!(matches!(
        &announced(&a)[..],
        [Announcement::Upsert { epoch: 6, .. }]
    ));
}

#[test]
fn a_full_state_from_a_node_removes_those_it_no_longer_lists() {
    let mut core = RoomCore::new();
    join(&mut core, 1);
    core.remote_upsert(B, remote(2, vec![]), 5);
    core.remote_upsert(B, remote(3, vec![]), 5);
    core.remote_upsert(C, remote(4, vec![]), 5);
    let a = core.remote_state(B, vec![(remote(3, vec![]), 5)]);
    assert!(a.iter().any(|x| matches!(x, Action::Broadcast { msg: ServerMessage::ParticipantLeft { participant_id, .. }, .. } if *participant_id == pid(2))));
    assert_eq!(core.snapshot().len(), 3);
    core.remote_closed(C);
    assert!(core.participant(&pid(4)).is_none());
}

#[test]
fn raised_hands_are_ordered_by_time_then_id_and_keep_their_place() {
    let mut core = RoomCore::new();
    for n in 1..=3 {
        join(&mut core, n);
    }
    core.set_hand(&pid(3), Some(10)).unwrap();
    core.set_hand(&pid(2), Some(20)).unwrap();
    core.set_hand(&pid(1), Some(20)).unwrap();
    let mut tie = vec![pid(1), pid(2)];
    tie.sort();
    let expected = [vec![pid(3)], tie].concat();
    assert_eq!(core.raised_hands(), expected);
    // Raising again does not move a hand to the back of the queue.
    assert!(core.set_hand(&pid(3), Some(99)).unwrap().is_empty());
    assert_eq!(core.raised_hands()[0], pid(3));
    let actions = core.set_hand(&pid(3), None).unwrap();
    assert!(actions.iter().any(|a| matches!(a,
        Action::Broadcast { msg: ServerMessage::ParticipantUpdated { participant }, .. }
            if participant.id == pid(3) && participant.hand_raised_at_ms.is_none())));
    assert!(!core.raised_hands().contains(&pid(3)));
}
