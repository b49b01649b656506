//! The room's media path with participants in memory: who is told which
//! path, which tracks the SFU stops forwarding, and which peer signals it
//! relays.

use super::tests::{camera, pid, room, Event, Recorder};
use super::*;
use crate::track::testing::local_track;
use veche_protocol::moderation::{Hold, MediaGroup};
use veche_protocol::p2p::{MediaPath, Pairing, PeerSignal};
use veche_protocol::signal::{MediaKind, TrackInfo, TrackSource};

/// Joins participant `n` (joined at `n` ms, so lower numbers offer),
/// able to connect directly when `p2p`.
pub(super) fn join_as(room: &Room, n: u8, p2p: bool) -> Recorder {
    let seat = Recorder::default();
    room.join(
        Joiner {
            id: pid(n),
            display_name: format!("P{n}"),
            guest: false,
            user: None,
            pass: None,
            role: Role::Participant,
            p2p,
        },
        MediaState::default(),
        seat.clone(),
        u64::from(n),
        Vec::new(),
        format!("tok{n}"),
        1,
        false,
    )
    .unwrap();
    seat
}

/// A room whose policy (version 1, defaults: p2p on) arrived.
pub(super) fn p2p_room() -> Arc<Room> {
    let r = room();
    r.apply_policy(
        RoomPolicy {
            version: 1,
            ..Default::default()
        },
        PolicySource::Fetched,
    );
    r
}

/// The `media_path` messages a seat got: (path, pairing, peer, offerer).
pub(super) fn paths(events: &[Event]) -> Vec<(MediaPath, Pairing, Option<ParticipantId>, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sent(ServerMessage::MediaPath {
                path,
                pairing,
                peer,
                offerer,
            }) => Some((*path, *pairing, peer.clone(), *offerer)),
            _ => None,
        })
        .collect()
}

fn offer() -> PeerSignal {
    PeerSignal::Offer { sdp: "v=0".into() }
}

#[test]
fn two_p2p_joiners_are_paired_and_the_earlier_one_offers() {
    let r = p2p_room();
    let a = join_as(&r, 1, true);
    let first = a.take();
    assert!(matches!(
        first[0],
        Event::Sent(ServerMessage::Joined { .. })
    ));
    let alone = paths(&first);
    assert_eq!(alone.len(), 1);
    assert_eq!(alone[0].0, MediaPath::Sfu, "alone: the SFU");
    let b = join_as(&r, 2, true);
    let (pa, pb) = (paths(&a.take()), paths(&b.take()));
    assert_eq!(pa.len(), 1);
    assert_eq!(pb.len(), 1);
    let (path_a, pairing_a, peer_a, offerer_a) = pa[0].clone();
    let (path_b, pairing_b, peer_b, offerer_b) = pb[0].clone();
    assert_eq!((path_a, path_b), (MediaPath::P2p, MediaPath::P2p));
    assert_eq!(pairing_a, pairing_b);
    assert!(pairing_a > alone[0].1);
    assert_eq!((peer_a, peer_b), (Some(pid(2)), Some(pid(1))));
    assert!(offerer_a && !offerer_b);
}

#[test]
fn the_sfu_forwards_nothing_of_a_pair_and_reopens_with_a_third() {
    let r = p2p_room();
    let _a = join_as(&r, 1, true);
    let _b = join_as(&r, 2, true);
    let cam = camera(1, 1);
    r.publish(cam.clone()).unwrap();
    assert!(cam.is_direct(), "a paired publisher's new track is gated");
    let _c = join_as(&r, 3, true);
    assert!(!cam.is_direct(), "a third joiner reopens it at once");
}

#[tokio::test]
async fn reopening_a_video_track_asks_its_publisher_for_a_keyframe() {
    let r = p2p_room();
    let _a = join_as(&r, 1, true);
    let _b = join_as(&r, 2, true);
    let info = TrackInfo {
        id: TrackId::from_random([7; 8]),
        kind: MediaKind::Video,
        source: TrackSource::Camera,
        stream_id: pid(1).to_string(),
    };
    let (cam, upstream) = local_track(info, pid(1));
    r.publish(cam.clone()).unwrap();
    assert!(cam.is_direct());
    let before = upstream.keyframes();
    let _c = join_as(&r, 3, true);
    for _ in 0..100 {
        if upstream.keyframes() > before {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("no keyframe request after the gate opened");
}

#[test]
fn a_third_joiner_turns_everyone_to_the_sfu_with_a_new_pairing() {
    let r = p2p_room();
    let a = join_as(&r, 1, true);
    let b = join_as(&r, 2, true);
    let paired = paths(&a.take()).last().unwrap().1;
    b.take();
    let c = join_as(&r, 3, true);
    for seat in [&a, &b, &c] {
        let p = paths(&seat.take());
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, MediaPath::Sfu);
        assert!(p[0].1 > paired);
        assert_eq!((p[0].2.clone(), p[0].3), (None, false));
    }
}

#[test]
fn clients_without_p2p_are_never_paired_nor_told() {
    let r = p2p_room();
    let a = join_as(&r, 1, true);
    let b = join_as(&r, 2, false);
    assert_eq!(paths(&b.take()), vec![]);
    let told = paths(&a.take());
    assert!(told.iter().all(|t| t.0 == MediaPath::Sfu));
}

#[test]
fn nothing_is_paired_before_the_policy_is_known() {
    let r = room();
    let a = join_as(&r, 1, true);
    let _b = join_as(&r, 2, true);
    assert!(paths(&a.take()).iter().all(|t| t.0 == MediaPath::Sfu));
}

#[test]
fn what_the_server_must_enforce_turns_the_pair_to_the_sfu() {
    type Change = fn(&mut RoomPolicy);
    let cases: [(&str, Change); 4] = [
        ("a recording", |p| {
            p.recording = Some(veche_protocol::recording::ActiveRecording {
                id: veche_protocol::recording::RecordingId::from_random([9; 8]),
                started_at_ms: 1_000,
                started_by: pid(1),
                started_by_name: "P1".into(),
            });
        }),
        ("setting off", |p| p.settings.p2p = false),
        ("a hold", |p| {
            p.holds.insert(
                pid(2),
                Hold {
                    groups: [MediaGroup::Camera].into(),
                    by_name: "P1".into(),
                    by: pid(1),
                    asked_to_unmute: false,
                },
            );
        }),
        ("speak mode", |p| p.settings.speak_mode = true),
    ];
    for (case, change) in cases {
        let r = p2p_room();
        let a = join_as(&r, 1, true);
        let _b = join_as(&r, 2, true);
        assert_eq!(paths(&a.take()).last().unwrap().0, MediaPath::P2p);
        let mut p = RoomPolicy {
            version: 2,
            ..Default::default()
        };
        change(&mut p);
        r.apply_policy(p, PolicySource::Fetched);
        let told = paths(&a.take());
        assert_eq!(told.len(), 1, "{case}");
        assert_eq!(told[0].0, MediaPath::Sfu, "{case}");
    }
}

#[test]
fn a_resumed_session_is_told_the_path_again_right_after_joined() {
    let r = p2p_room();
    let _a = join_as(&r, 1, true);
    let _b = join_as(&r, 2, true);
    let again = Recorder::default();
    r.resume(
        &pid(2),
        "tok2",
        again.clone(),
        Vec::new(),
        crate::room::SeatMedia::New,
    )
    .unwrap();
    let events = again.take();
    assert!(matches!(
        events[0],
        Event::Sent(ServerMessage::Joined { .. })
    ));
    let p = paths(&events);
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].0, p[0].2.clone()), (MediaPath::P2p, Some(pid(1))));
}

#[test]
fn signals_of_the_current_pairing_reach_only_the_peer() {
    let r = p2p_room();
    let a = join_as(&r, 1, true);
    let b = join_as(&r, 2, true);
    let pairing = paths(&a.take()).last().unwrap().1;
    b.take();
    r.peer_signal(&pid(1), &pid(2), pairing, offer()).unwrap();
    assert_eq!(
        b.take(),
        vec![Event::Sent(ServerMessage::PeerSignal {
            from: pid(1),
            pairing,
            signal: offer()
        })]
    );
    use super::media_path::PeerSignalError as E;
    let stale = Pairing(pairing.0 - 1);
    assert_eq!(
        r.peer_signal(&pid(1), &pid(2), stale, offer()),
        Err(E::StalePairing)
    );
    assert_eq!(
        r.peer_signal(&pid(1), &pid(1), pairing, offer()),
        Err(E::NotPeer)
    );
    assert_eq!(
        r.peer_signal(&pid(1), &pid(9), pairing, offer()),
        Err(E::NotPeer)
    );
    assert!(
        a.take().is_empty() && b.take().is_empty(),
        "nothing relayed"
    );
    let c = join_as(&r, 3, true);
    let now = paths(&c.take())[0].1;
    assert_eq!(
        r.peer_signal(&pid(1), &pid(2), now, offer()),
        Err(E::NotPaired)
    );
    assert_eq!(
        r.peer_signal(&pid(3), &pid(1), now, offer()),
        Err(E::NotPaired)
    );
    assert!(paths(&b.take()).len() == 1, "only the switch to the SFU");
}

#[test]
fn the_pair_leaving_leaves_the_last_one_on_the_sfu() {
    let r = p2p_room();
    let a = join_as(&r, 1, true);
    let _b = join_as(&r, 2, true);
    r.evict(&pid(2), LeaveReason::Left);
    let told = paths(&a.take());
    assert_eq!(told.last().unwrap().0, MediaPath::Sfu);
    assert_eq!(r.media_path_of(&pid(2)), None);
}
