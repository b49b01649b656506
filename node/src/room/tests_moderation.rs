//! The room under a moderation policy, with participants in memory: which
//! tracks are withheld, what each seat is told, who is removed, and the
//! lobby.

use super::tests::{camera, join, pid, room, Event};
use super::*;
use crate::track::testing::local_track;
use veche_protocol::moderation::{Hold, LobbyEntry, MediaGroup, Notice, Removal};
use veche_protocol::rpc::Actor;
use veche_protocol::signal::{MediaKind, TrackInfo, TrackSource};

fn microphone(n: u8, publisher: u8) -> Arc<UpTrack> {
    let info = TrackInfo {
        id: TrackId::from_random([n; 8]),
        kind: MediaKind::Audio,
        source: TrackSource::Microphone,
        stream_id: pid(publisher).to_string(),
    };
    local_track(info, pid(publisher)).0
}

fn alice() -> Actor {
    Actor {
        participant_id: pid(9),
        display_name: "Alice".into(),
        claimed_role: Role::Host,
    }
}

fn hold(groups: &[MediaGroup]) -> Hold {
    Hold {
        groups: groups.iter().copied().collect(),
        by_name: "Alice".into(),
        by: pid(9),
        asked_to_unmute: false,
    }
}

/// The policies after `v0`, each the previous one changed by `f`.
fn next(p: &RoomPolicy, f: impl FnOnce(&mut RoomPolicy)) -> RoomPolicy {
    let mut p = p.clone();
    p.version += 1;
    f(&mut p);
    p
}

fn moderated(events: &[Event]) -> Vec<(Notice, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sent(ServerMessage::Moderated {
                notice, by_name, ..
            }) => Some((notice.clone(), by_name.clone())),
            _ => None,
        })
        .collect()
}

fn errors(events: &[Event]) -> Vec<(veche_protocol::ErrorCode, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sent(ServerMessage::Error { error, .. }) => {
                Some((error.code, error.message.clone()))
            }
            _ => None,
        })
        .collect()
}

fn policies(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sent(ServerMessage::Policy { policy }) => Some(policy.version),
            _ => None,
        })
        .collect()
}

/// A room whose first policy (version 1, nothing decided) is loaded.
fn moderated_room() -> (Arc<Room>, RoomPolicy) {
    let r = room();
    let v1 = RoomPolicy {
        version: 1,
        ..Default::default()
    };
    assert!(r.apply_policy(v1.clone(), PolicySource::Fetched));
    (r, v1)
}

#[test]
fn speak_mode_withholds_a_non_speaker_until_allowed() {
    let (r, v1) = moderated_room();
    let v2 = next(&v1, |p| p.settings.speak_mode = true);
    r.apply_policy(v2.clone(), PolicySource::Fetched);
    let (a, _) = join(&r, 1);
    a.take();
    let mic = microphone(11, 1);
    r.publish(mic.clone()).unwrap();
    assert!(
        mic.is_withheld(),
        "a participant may not speak in speak mode"
    );
    let refused = errors(&a.take());
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, veche_protocol::ErrorCode::Forbidden);
    assert!(
        refused[0].1.contains("only permitted speakers"),
        "{refused:?}"
    );
    mic.fan_out(packet());
    assert_eq!(mic.forwarded(), 0);

    let v3 = next(&v2, |p| {
        p.speakers.insert(pid(1));
    });
    r.apply_policy(v3, PolicySource::Moderated(alice()));
    assert!(!mic.is_withheld(), "a permitted speaker is forwarded");
    let told = a.take();
    assert_eq!(
        moderated(&told),
        vec![(Notice::AllowedToSpeak, "Alice".to_owned())]
    );
    assert_eq!(policies(&told), vec![3]);
    mic.fan_out(packet());
    assert_eq!(mic.forwarded(), 1);
}

#[test]
fn a_remote_nodes_policy_relay_withholds_the_local_publisher() {
    let (r, v1) = moderated_room();
    let (a, _) = join(&r, 1);
    let (b, _) = join(&r, 2);
    let cam = camera(12, 1);
    let mic = microphone(11, 1);
    r.publish(cam.clone()).unwrap();
    r.publish(mic.clone()).unwrap();
    a.take();
    b.take();
    let v2 = next(&v1, |p| {
        p.holds.insert(pid(1), hold(&[MediaGroup::Camera]));
    });
    r.on_relay(
        NodeId(2),
        RelayMsg::Policy {
            room: r.id(),
            policy: v2,
        },
    );
    assert!(
        cam.is_withheld(),
        "the held camera stops here, so everywhere"
    );
    assert!(!mic.is_withheld(), "only the held group stops");
    assert_eq!(
        moderated(&a.take()),
        vec![(
            Notice::Muted {
                group: MediaGroup::Camera
            },
            "Alice".to_owned()
        )]
    );
    let others = b.take();
    assert!(moderated(&others).is_empty(), "only the subject is told");
    assert_eq!(policies(&others), vec![2], "everyone gets the new view");
    // An older policy arriving late changes nothing.
    assert!(!r.apply_policy(v1, PolicySource::Relayed));
    assert!(cam.is_withheld());
}

#[test]
fn notices_come_from_the_diff_with_the_moderators_name() {
    let (r, v1) = moderated_room();
    let (a, _) = join(&r, 1);
    let (b, _) = join(&r, 2);
    a.take();
    b.take();
    let v2 = next(&v1, |p| {
        p.moderators.insert(pid(2));
        p.holds.insert(pid(1), hold(&[MediaGroup::Microphone]));
    });
    r.apply_policy(v2.clone(), PolicySource::Moderated(alice()));
    let to_a = a.take();
    let to_b = b.take();
    assert_eq!(
        moderated(&to_a),
        vec![(
            Notice::Muted {
                group: MediaGroup::Microphone
            },
            "Alice".to_owned()
        )]
    );
    assert_eq!(
        moderated(&to_b),
        vec![(Notice::MadeModerator, "Alice".to_owned())]
    );
    // Everyone sees the new moderator's entry; the new moderator gets the
    // lobby list.
    assert!(to_a.iter().any(|e| matches!(e,
        Event::Sent(ServerMessage::ParticipantUpdated { participant })
            if participant.id == pid(2) && participant.role == Role::Moderator)));
    assert!(to_b
        .iter()
        .any(|e| matches!(e, Event::Sent(ServerMessage::Lobby { .. }))));
    // Asked to unmute: the hold on the microphone goes, the request shows.
    let v3 = next(&v2, |p| {
        let h = p.holds.get_mut(&pid(1)).unwrap();
        h.groups.clear();
        h.asked_to_unmute = true;
    });
    r.apply_policy(v3, PolicySource::Relayed);
    assert_eq!(
        moderated(&a.take()),
        vec![(Notice::AskedToUnmute, "Alice".to_owned())]
    );
}

#[test]
fn a_removed_participant_is_evicted_with_reason_removed() {
    let (r, v1) = moderated_room();
    let (a, _) = join(&r, 1);
    let (b, _) = join(&r, 2);
    let cam = camera(12, 2);
    r.publish(cam).unwrap();
    a.take();
    b.take();
    let v2 = next(&v1, |p| {
        p.removed.insert(
            pid(2),
            Removal {
                ban: true,
                by_name: "Alice".into(),
                user: None,
                pass: None,
                at_ms: 5,
            },
        );
    });
    r.apply_policy(v2, PolicySource::Moderated(alice()));
    let to_b = b.take();
    assert_eq!(
        moderated(&to_b),
        vec![(Notice::Removed { ban: true }, "Alice".to_owned())]
    );
    let removed_at = to_b.iter().position(|e| *e == Event::Removed).unwrap();
    let closed_at = to_b.iter().position(|e| *e == Event::Closed).unwrap();
    assert!(removed_at < closed_at);
    let to_a = a.take();
    assert!(to_a.iter().any(|e| matches!(e,
        Event::Sent(ServerMessage::ParticipantLeft { participant_id, reason: LeaveReason::Removed })
            if *participant_id == pid(2))));
    assert!(!r.contains(&pid(2)));
    assert!(r.bars(&pid(2)), "a ban keeps them out");
}

/// A waiter in memory: what it was sent and how its wait ended.
#[derive(Clone, Default)]
struct WaitRecorder(Arc<Mutex<(Vec<ServerMessage>, Vec<LobbyDecision>)>>);

impl Waiter for WaitRecorder {
    fn send(&self, msg: ServerMessage) {
        self.0.lock().unwrap().0.push(msg);
    }
    fn decided(&self, d: LobbyDecision) {
        self.0.lock().unwrap().1.push(d);
    }
}

impl WaitRecorder {
    fn decisions(&self) -> Vec<LobbyDecision> {
        self.0.lock().unwrap().1.clone()
    }
}

fn entry(n: u8) -> LobbyEntry {
    LobbyEntry {
        participant_id: pid(n),
        display_name: format!("W{n}"),
        guest: true,
        since_ms: 100,
    }
}

fn lobby_lists(events: &[Event]) -> Vec<Vec<ParticipantId>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sent(ServerMessage::Lobby { waiting }) => {
                Some(waiting.iter().map(|w| w.participant_id.clone()).collect())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_lobby_waiter_is_seated_when_admitted_and_turned_away_when_denied() {
    let (r, v1) = moderated_room();
    let v2 = next(&v1, |p| {
        p.hosts.insert(pid(1));
    });
    r.apply_policy(v2.clone(), PolicySource::Fetched);
    let (host, _) = join(&r, 1);
    assert_eq!(lobby_lists(&host.take()), vec![Vec::<ParticipantId>::new()]);

    let w5 = WaitRecorder::default();
    let w6 = WaitRecorder::default();
    r.wait_in_lobby(entry(5), w5.clone()).unwrap();
    r.wait_in_lobby(entry(6), w6.clone()).unwrap();
    assert!(matches!(
        w5.0.lock().unwrap().0.as_slice(),
        [ServerMessage::LobbyWaiting { .. }]
    ));
    assert!(!r.contains(&pid(5)), "a waiter has no seat");
    assert!(!r.is_empty(), "a room with waiters is kept");
    assert_eq!(
        lobby_lists(&host.take()).last().unwrap().len(),
        2,
        "the host sees both waiters"
    );

    let v3 = next(&v2, |p| {
        p.admitted.insert(pid(5));
        p.denied.insert(pid(6));
    });
    r.apply_policy(v3, PolicySource::Moderated(alice()));
    assert_eq!(w5.decisions(), vec![LobbyDecision::Admitted]);
    assert_eq!(w6.decisions(), vec![LobbyDecision::Denied]);
    assert_eq!(lobby_lists(&host.take()), vec![Vec::<ParticipantId>::new()]);
    // The admitted waiter's session seats them on the same connection.
    let (seat, _) = join(&r, 5);
    assert!(seat
        .take()
        .iter()
        .any(|e| matches!(e, Event::Sent(ServerMessage::Joined { .. }))));
    // A denied participant trying again is turned away at once.
    let again = WaitRecorder::default();
    r.wait_in_lobby(entry(6), again.clone()).unwrap();
    assert_eq!(again.decisions(), vec![LobbyDecision::Denied]);
    assert!(r.bars(&pid(6)));
}

#[test]
fn switching_the_lobby_off_lets_its_waiters_in() {
    let (r, v1) = moderated_room();
    let v2 = next(&v1, |p| p.settings.lobby = true);
    r.apply_policy(v2.clone(), PolicySource::Fetched);
    let w = WaitRecorder::default();
    r.wait_in_lobby(entry(5), w.clone()).unwrap();
    r.apply_policy(next(&v2, |_| {}), PolicySource::Relayed);
    assert!(w.decisions().is_empty(), "still on: they keep waiting");
    r.apply_policy(
        next(&v2, |p| {
            p.version += 1;
            p.settings.lobby = false;
        }),
        PolicySource::Relayed,
    );
    assert_eq!(w.decisions(), vec![LobbyDecision::Admitted]);
}

#[test]
fn other_nodes_waiters_reach_this_nodes_moderators() {
    let (r, v1) = moderated_room();
    r.apply_policy(
        next(&v1, |p| {
            p.hosts.insert(pid(1));
        }),
        PolicySource::Fetched,
    );
    let (host, _) = join(&r, 1);
    host.take();
    r.on_relay(
        NodeId(2),
        RelayMsg::Lobby {
            room: r.id(),
            waiting: vec![entry(7)],
        },
    );
    assert_eq!(lobby_lists(&host.take()), vec![vec![pid(7)]]);
    r.node_lost(NodeId(2));
    assert_eq!(lobby_lists(&host.take()), vec![Vec::<ParticipantId>::new()]);
}

#[test]
fn an_unattended_lobby_asks_only_while_nobody_moderates() {
    let (r, v1) = moderated_room();
    r.wait_in_lobby(entry(5), WaitRecorder::default()).unwrap();
    assert!(r.lobby_due(1_000, 500).is_empty(), "the clock starts");
    assert_eq!(r.lobby_due(1_500, 500), vec![pid(5)]);
    // A host arrives: the lobby is attended again.
    r.apply_policy(
        next(&v1, |p| {
            p.hosts.insert(pid(1));
        }),
        PolicySource::Fetched,
    );
    join(&r, 1);
    assert!(r.lobby_due(5_000, 500).is_empty());
}

#[test]
fn roles_come_from_the_token_raised_by_the_policy_and_travel_with_the_claims() {
    let (r, v1) = moderated_room();
    r.apply_policy(
        next(&v1, |p| {
            p.moderators.insert(pid(2));
        }),
        PolicySource::Fetched,
    );
    let (a, _) = join(&r, 2);
    let joined_role = a.take().iter().find_map(|e| match e {
        Event::Sent(ServerMessage::Joined { participants, .. }) => {
            participants.iter().find(|p| p.id == pid(2)).map(|p| p.role)
        }
        _ => None,
    });
    assert_eq!(joined_role, Some(Role::Moderator));
    let present = r.present();
    assert_eq!(present.len(), 1);
    assert_eq!(
        present[0].claimed_role,
        Role::Participant,
        "what the token says"
    );
}

#[test]
fn a_raised_hand_is_shown_to_everyone() {
    let (r, _) = moderated_room();
    let (a, _) = join(&r, 1);
    let (b, _) = join(&r, 2);
    a.take();
    r.set_hand(&pid(2), true, 777).unwrap();
    assert!(a.take().iter().any(|e| matches!(e,
        Event::Sent(ServerMessage::ParticipantUpdated { participant })
            if participant.id == pid(2) && participant.hand_raised_at_ms == Some(777))));
    b.take();
}

#[test]
fn the_forwarded_count_of_a_track_is_labelled_and_dropped_on_unpublish() {
    let (r, _) = moderated_room();
    join(&r, 1);
    let mic = microphone(11, 1);
    r.publish(mic.clone()).unwrap();
    mic.fan_out(packet());
    let text = r.metrics.render();
    let line = format!(
        "veche_node_track_packets_forwarded_total{{room=\"{}\",source=\"microphone\",track=\"{}\"}} 1",
        r.id(),
        mic.info.id
    );
    assert!(text.contains(&line), "{line} not in\n{text}");
    r.unpublish(&mic.info.id);
    assert!(!r
        .metrics
        .render()
        .contains("track_packets_forwarded_total{"));
}

#[test]
fn pure_notices_name_the_hold_author_even_when_relayed() {
    let old = RoomPolicy::default();
    let mut new = old.clone();
    new.holds.insert(pid(1), hold(&[MediaGroup::Screen]));
    let told = notices_for(&old, &new, &pid(1), None);
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].by, pid(9));
    assert_eq!(told[0].by_name, "Alice");
    assert!(notices_for(&old, &new, &pid(2), None).is_empty());
}

fn packet() -> rtc::rtp::Packet {
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            ..Default::default()
        },
        payload: bytes::Bytes::from_static(b"x"),
    }
}
