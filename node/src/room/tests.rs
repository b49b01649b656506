//! The room with participants in memory: what each seat is sent and asked
//! to do, in order, without WebRTC or sockets.

use super::*;
use crate::track::testing::local_track;
use veche_protocol::signal::{MediaKind, ParticipantInfo, TrackInfo, TrackSource};
use veche_protocol::RoomSlug;

/// What the room did to one seat.
// The policy in a message (since recordings, with its running recording)
// makes messages large; they are short-lived, so boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Event {
    Sent(ServerMessage),
    Subscribed(TrackId),
    Unsubscribed(TrackId),
    Closed,
    Moved,
    Removed,
}

/// A participant in memory that records every call the room makes.
#[derive(Clone, Default)]
pub(super) struct Recorder(Arc<Mutex<Vec<Event>>>);

impl Recorder {
    /// Everything recorded since the last call.
    pub(super) fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Participant for Recorder {
    fn send(&self, msg: ServerMessage) {
        self.0.lock().unwrap().push(Event::Sent(msg));
    }
    fn subscribe(&self, track: Arc<UpTrack>) {
        self.0
            .lock()
            .unwrap()
            .push(Event::Subscribed(track.info.id.clone()));
    }
    fn unsubscribe(&self, track: TrackId) {
        self.0.lock().unwrap().push(Event::Unsubscribed(track));
    }
    fn close(&self) {
        self.0.lock().unwrap().push(Event::Closed);
    }
    fn moved(&self) {
        self.0.lock().unwrap().push(Event::Moved);
    }
    fn removed(&self) {
        self.0.lock().unwrap().push(Event::Removed);
    }
}

pub(super) fn pid(n: u8) -> ParticipantId {
    ParticipantId::from_random([n; 8])
}

pub(super) fn room() -> Arc<Room> {
    Room::new(
        RoomInfo {
            id: RoomId(1),
            slug: RoomSlug::from_random([1; 16]),
            name: "Standup".into(),
            e2ee: false,
        },
        Metrics::new(),
        None,
    )
}

/// Joins participant `n` with resume token `tok<n>`; returns their seat
/// and the session's generation.
pub(super) fn join(room: &Room, n: u8) -> (Recorder, u64) {
    let seat = Recorder::default();
    let generation = room
        .join(
            Joiner {
                id: pid(n),
                display_name: format!("P{n}"),
                guest: false,
                user: None,
                pass: None,
                role: veche_protocol::moderation::Role::Participant,
                p2p: false,
            },
            MediaState::default(),
            seat.clone(),
            1_000,
            Vec::new(),
            format!("tok{n}"),
            1,
            false,
        )
        .unwrap();
    (seat, generation)
}

pub(super) fn camera(n: u8, publisher: u8) -> Arc<UpTrack> {
    let info = TrackInfo {
        id: TrackId::from_random([n; 8]),
        kind: MediaKind::Video,
        source: TrackSource::Camera,
        stream_id: pid(publisher).to_string(),
    };
    local_track(info, pid(publisher)).0
}

/// The participant states a seat was told about, in order.
pub(super) fn updates(events: &[Event]) -> Vec<ParticipantInfo> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sent(ServerMessage::ParticipantUpdated { participant }) => {
                Some(participant.clone())
            }
            _ => None,
        })
        .collect()
}

pub(super) fn left(events: &[Event]) -> Vec<(ParticipantId, LeaveReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sent(ServerMessage::ParticipantLeft {
                participant_id,
                reason,
            }) => Some((participant_id.clone(), *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_joiner_gets_the_whole_room_first_and_the_others_are_told() {
    let room = room();
    let (a, _) = join(&room, 1);
    a.take();
    let (b, _) = join(&room, 2);
    let got = b.take();
    let [Event::Sent(ServerMessage::Joined {
        participant_id,
        participants,
        resume_token,
        resumed: false,
        ..
    })] = &got[..]
    else {
        panic!("expected only `joined`, got {got:?}");
    };
    assert_eq!(*participant_id, pid(2));
    assert_eq!(resume_token, "tok2");
    let ids: Vec<_> = participants.iter().map(|p| p.id.clone()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&pid(1)) && ids.contains(&pid(2)));
    assert!(matches!(
        &a.take()[..],
        [Event::Sent(ServerMessage::ParticipantJoined { participant })] if participant.id == pid(2)
    ));
    assert!(room.contains(&pid(2)));
}

#[test]
fn a_published_track_is_forwarded_to_everyone_but_its_publisher() {
    let room = room();
    let (a, _) = join(&room, 1);
    let (b, _) = join(&room, 2);
    let (c, _) = join(&room, 3);
    for s in [&a, &b, &c] {
        s.take();
    }
    let cam = camera(10, 1);
    room.publish(cam.clone()).unwrap();
    for other in [&b, &c] {
        let got = other.take();
        assert_eq!(got[0], Event::Subscribed(cam.info.id.clone()), "{got:?}");
        assert_eq!(updates(&got)[0].tracks, vec![cam.info.clone()]);
    }
    let mine = a.take();
    assert!(!mine.contains(&Event::Subscribed(cam.info.id.clone())));
    assert_eq!(updates(&mine)[0].tracks, vec![cam.info.clone()]);
    // Someone joining later receives it too.
    let (d, _) = join(&room, 4);
    assert!(d.take().contains(&Event::Subscribed(cam.info.id.clone())));
    b.take();
    // The same track twice is refused, and nobody hears of it.
    assert_eq!(room.publish(cam.clone()), Err(CoreError::DuplicateTrack));
    assert!(b.take().is_empty());
}

#[test]
fn a_mute_reaches_everyone_including_the_one_who_muted_once() {
    let room = room();
    let (a, _) = join(&room, 1);
    let (b, _) = join(&room, 2);
    a.take();
    b.take();
    let muted = MediaState {
        mic_muted: true,
        ..MediaState::default()
    };
    room.set_media(&pid(1), muted).unwrap();
    for s in [&a, &b] {
        let u = updates(&s.take());
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].id.clone(), u[0].media), (pid(1), muted));
    }
    // Saying it again changes nothing and sends nothing.
    room.set_media(&pid(1), muted).unwrap();
    assert!(a.take().is_empty() && b.take().is_empty());
    assert_eq!(
        room.set_media(&pid(9), muted),
        Err(CoreError::NotInRoom),
        "a stranger cannot change anyone's state"
    );
}

#[test]
fn leaving_stops_the_leavers_tracks_everywhere_and_closes_their_connection() {
    let room = room();
    let (a, gen_a) = join(&room, 1);
    let (b, _) = join(&room, 2);
    let cam = camera(10, 1);
    room.publish(cam.clone()).unwrap();
    a.take();
    b.take();
    // An older session's leave is ignored: this one owns the seat.
    room.leave(&pid(1), gen_a + 100, LeaveReason::Left);
    assert!(room.contains(&pid(1)));
    room.leave(&pid(1), gen_a, LeaveReason::Left);
    let got = b.take();
    assert_eq!(got[0], Event::Unsubscribed(cam.info.id.clone()), "{got:?}");
    assert_eq!(left(&got), vec![(pid(1), LeaveReason::Left)]);
    assert_eq!(a.take(), vec![Event::Closed], "the leaver is not told");
    assert!(!room.contains(&pid(1)));
    assert!(room.stale_tracks(&pid(1), &BTreeSet::new()).is_empty());
    assert!(room.has_members());
}

/// Participants 1 and 2, each publishing a camera (`mine` is 1's,
/// `theirs` 2's); then 1's connection drops, which 2 sees as
/// reconnecting. Everything before is taken from both recorders.
pub(super) struct Dropped {
    pub room: Arc<Room>,
    pub a: Recorder,
    pub gen_a: u64,
    pub b: Recorder,
    pub mine: Arc<UpTrack>,
    pub theirs: Arc<UpTrack>,
}

pub(super) fn one_of_two_drops() -> Dropped {
    let room = room();
    let (a, gen_a) = join(&room, 1);
    let (b, _) = join(&room, 2);
    let mine = camera(10, 1);
    let theirs = camera(11, 2);
    room.publish(mine.clone()).unwrap();
    room.publish(theirs.clone()).unwrap();
    a.take();
    b.take();
    assert!(room.dropped(&pid(1), gen_a));
    let u = updates(&b.take());
    assert_eq!(u.last().unwrap().status, PresenceStatus::Reconnecting);
    a.take();
    Dropped {
        room,
        a,
        gen_a,
        b,
        mine,
        theirs,
    }
}

#[test]
fn a_dropped_participant_shows_reconnecting_and_resumes_into_the_same_seat() {
    let Dropped {
        room,
        a,
        gen_a,
        b,
        mine,
        theirs,
    } = one_of_two_drops();

    // A wrong token takes nothing over.
    let thief = Recorder::default();
    assert_eq!(
        room.resume(&pid(1), "tok2", thief.clone(), Vec::new(), SeatMedia::New),
        Err(ResumeError::BadToken)
    );
    assert!(thief.take().is_empty());

    let again = Recorder::default();
    let (gen_a2, name) = room
        .resume(&pid(1), "tok1", again.clone(), Vec::new(), SeatMedia::New)
        .unwrap();
    assert_eq!(name, "P1");
    assert_ne!(gen_a2, gen_a);
    assert_eq!(
        a.take(),
        vec![Event::Closed],
        "the old connection is closed"
    );
    let got = again.take();
    assert!(
        matches!(&got[0], Event::Sent(ServerMessage::Joined { resumed: true, participant_id, .. }) if *participant_id == pid(1)),
        "{got:?}"
    );
    assert!(got.contains(&Event::Subscribed(theirs.info.id.clone())));
    // The old connection's track is gone; the others see them connected.
    let got = b.take();
    assert!(got.contains(&Event::Unsubscribed(mine.info.id.clone())));
    let me = updates(&got).pop().unwrap();
    assert_eq!(me.status, PresenceStatus::Connected);
    assert!(me.tracks.is_empty());
    assert!(left(&got).is_empty(), "nobody saw them leave");

    // The old session's late signals no longer touch the seat.
    assert!(!room.dropped(&pid(1), gen_a));
    assert!(!room.expire(&pid(1), gen_a));
    assert!(room.contains(&pid(1)));
    assert!(b.take().is_empty());
}

#[test]
fn a_seat_whose_grace_period_ends_is_removed_and_cannot_be_resumed() {
    let room = room();
    let (a, gen_a) = join(&room, 1);
    let (b, gen_b) = join(&room, 2);
    a.take();
    b.take();
    room.dropped(&pid(1), gen_a);
    a.take();
    assert!(room.expire(&pid(1), gen_a));
    assert_eq!(left(&b.take()), vec![(pid(1), LeaveReason::Disconnected)]);
    assert_eq!(a.take(), vec![Event::Closed]);
    assert_eq!(
        room.resume(
            &pid(1),
            "tok1",
            Recorder::default(),
            Vec::new(),
            SeatMedia::New
        ),
        Err(ResumeError::NoSeat)
    );
    room.leave(&pid(2), gen_b, LeaveReason::Left);
    assert!(room.is_empty(), "the node may drop the room now");
}

#[test]
fn a_second_connection_with_the_same_token_replaces_the_first() {
    let room = room();
    let (a, _) = join(&room, 1);
    let (b, _) = join(&room, 2);
    a.take();
    b.take();
    room.evict(&pid(1), LeaveReason::Replaced);
    assert_eq!(a.take(), vec![Event::Closed]);
    assert_eq!(left(&b.take()), vec![(pid(1), LeaveReason::Replaced)]);
    let (a2, _) = join(&room, 1);
    assert!(matches!(
        &a2.take()[..],
        [Event::Sent(ServerMessage::Joined { .. })]
    ));
}

#[test]
fn chat_and_broadcasts_reach_every_seat_in_the_order_decided() {
    let room = room();
    let (a, _) = join(&room, 1);
    let (b, _) = join(&room, 2);
    a.take();
    b.take();
    room.broadcast(ServerMessage::Move {
        reason: "drain".into(),
    });
    room.set_media(
        &pid(2),
        MediaState {
            camera_muted: true,
            ..MediaState::default()
        },
    )
    .unwrap();
    for s in [&a, &b] {
        let got = s.take();
        assert!(
            matches!(
                &got[..],
                [
                    Event::Sent(ServerMessage::Move { .. }),
                    Event::Sent(ServerMessage::ParticipantUpdated { .. })
                ]
            ),
            "{got:?}"
        );
    }
}

#[test]
fn a_browser_that_stops_sending_a_track_is_found_by_its_msid() {
    let room = room();
    join(&room, 1);
    let cam = camera(10, 1);
    room.publish(cam.clone()).unwrap();
    // The test track's msid is empty: a browser still sending "" keeps it.
    let sending: BTreeSet<String> = [String::new()].into();
    assert!(room.stale_tracks(&pid(1), &sending).is_empty());
    assert_eq!(
        room.stale_tracks(&pid(1), &BTreeSet::new()),
        vec![cam.info.id.clone()]
    );
    room.unpublish(&cam.info.id);
    assert!(room.stale_tracks(&pid(1), &BTreeSet::new()).is_empty());
}

#[test]
fn another_nodes_participants_appear_go_reconnecting_when_it_is_lost_and_then_leave() {
    let room = room();
    let (a, _) = join(&room, 1);
    a.take();
    let b = NodeId(2);
    let remote = |n: u8| veche_protocol::relay::RemoteParticipant {
        info: ParticipantInfo {
            id: pid(n),
            display_name: format!("R{n}"),
            status: PresenceStatus::Connected,
            media: MediaState::default(),
            tracks: Vec::new(),
            joined_at_ms: 0,
            guest: false,
            role: Default::default(),
            hand_raised_at_ms: None,
        },
        epoch: 5,
        codecs: Vec::new(),
        user: None,
        pass: None,
        claimed_role: Default::default(),
    };
    room.on_relay(
        b,
        RelayMsg::RoomState {
            room: RoomId(1),
            participants: vec![remote(7), remote(8)],
            reply_wanted: true,
        },
    );
    let joined: Vec<ParticipantId> = a
        .take()
        .into_iter()
        .filter_map(|e| match e {
            Event::Sent(ServerMessage::ParticipantJoined { participant }) => Some(participant.id),
            _ => None,
        })
        .collect();
    assert_eq!(joined, vec![pid(7), pid(8)]);
    assert!(!room.contains(&pid(7)), "they are not connected here");

    let waiting = room.node_lost(b);
    assert_eq!(waiting, vec![pid(7), pid(8)]);
    let u = updates(&a.take());
    assert!(u.iter().all(|p| p.status == PresenceStatus::Reconnecting));
    assert_eq!(u.len(), 2);
    // 8 comes back through another node before the grace period ends.
    room.on_relay(
        NodeId(3),
        RelayMsg::Upsert {
            room: RoomId(1),
            participant: veche_protocol::relay::RemoteParticipant {
                epoch: 6,
                ..remote(8)
            },
        },
    );
    a.take();
    room.expire_remote(b, &pid(7));
    room.expire_remote(b, &pid(8));
    assert_eq!(left(&a.take()), vec![(pid(7), LeaveReason::Disconnected)]);
}
