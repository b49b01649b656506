//! A resume that keeps the seat's peer connection (`SeatMedia::Kept`): the
//! seat's tracks and subscriptions carry on, and others see only
//! "reconnecting" and back.

use super::tests::{join, left, one_of_two_drops, pid, room, updates, Dropped, Event, Recorder};
use super::*;

#[test]
fn a_resume_that_keeps_its_media_leaves_every_track_and_subscription_in_place() {
    let Dropped {
        room,
        a,
        gen_a,
        b,
        mine,
        ..
    } = one_of_two_drops();

    // The new handle drives the old connection: a wrong token still takes
    // nothing over.
    let thief = Recorder::default();
    assert_eq!(
        room.check_resume(&pid(1), "tok2"),
        Err(ResumeError::BadToken)
    );
    assert_eq!(
        room.resume(&pid(1), "tok2", thief.clone(), Vec::new(), SeatMedia::Kept),
        Err(ResumeError::BadToken)
    );
    assert!(thief.take().is_empty());
    assert_eq!(room.check_resume(&pid(1), "tok1"), Ok(()));

    let again = Recorder::default();
    let (gen_a2, _) = room
        .resume(&pid(1), "tok1", again.clone(), Vec::new(), SeatMedia::Kept)
        .unwrap();
    assert_ne!(gen_a2, gen_a);
    assert!(a.take().is_empty(), "the kept connection is not closed");
    let got = again.take();
    assert!(
        matches!(
            &got[0],
            Event::Sent(ServerMessage::Joined {
                resumed: true,
                media_kept: true,
                ..
            })
        ),
        "{got:?}"
    );
    assert!(
        !got.iter().any(|e| matches!(e, Event::Subscribed(_))),
        "still subscribed through the kept connection: {got:?}"
    );
    let got = b.take();
    assert!(
        !got.contains(&Event::Unsubscribed(mine.info.id.clone())),
        "the others keep receiving the seat's track: {got:?}"
    );
    let me = updates(&got).pop().expect("the others see the seat back");
    assert_eq!(me.status, PresenceStatus::Connected);
    assert_eq!(me.tracks, vec![mine.info.clone()]);
    assert!(left(&got).is_empty(), "nobody saw them leave");
    // The room still holds the seat's up track.
    assert_eq!(
        room.stale_tracks(&pid(1), &BTreeSet::new()),
        vec![mine.info.id.clone()]
    );
}

#[test]
fn a_resume_that_keeps_its_media_after_the_grace_period_finds_no_seat() {
    let room = room();
    let (a, gen_a) = join(&room, 1);
    room.dropped(&pid(1), gen_a);
    assert!(room.expire(&pid(1), gen_a));
    a.take();
    assert_eq!(room.check_resume(&pid(1), "tok1"), Err(ResumeError::NoSeat));
    assert_eq!(
        room.resume(
            &pid(1),
            "tok1",
            Recorder::default(),
            Vec::new(),
            SeatMedia::Kept
        ),
        Err(ResumeError::NoSeat)
    );
}
