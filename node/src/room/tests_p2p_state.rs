//! How a pair's reports on its direct connection (`p2p_state`) move the
//! room: a returning pair stays forwarded until both are connected, a
//! failure or the timeout turns the room to the SFU and keeps those two
//! off the direct path until the membership changes.

use super::p2p::{Facts, Fallback, Member, Path, Planner, StateError};
use super::tests::{camera, pid, Event};
use super::tests_p2p::{join_as, p2p_room, paths};
use super::*;
use veche_protocol::limits::signal::{P2P_CONNECT_TIMEOUT_MS, P2P_SETTLE_MS};
use veche_protocol::p2p::{DirectState, MediaPath, Pairing};

fn member(n: u8) -> Member {
    Member {
        id: pid(n),
        joined_at_ms: u64::from(n),
        local: true,
        capable: true,
        held: false,
        silenced: false,
    }
}

fn facts(ns: &[u8]) -> Facts {
    Facts {
        members: ns.iter().map(|n| member(*n)).collect(),
        allowed: true,
        recording: false,
    }
}

/// A planner whose room went from three back to two and paired them again
/// after the settle time, at `t`.
fn returned_pair() -> (Planner, u64) {
    let mut p = Planner::default();
    p.decide(&facts(&[1, 2]), 0);
    p.decide(&facts(&[1, 2, 3]), 1_000);
    p.decide(&facts(&[1, 2]), 2_000);
    let t = 2_000 + P2P_SETTLE_MS;
    assert!(p.decide(&facts(&[1, 2]), t).paired);
    (p, t)
}

#[test]
fn a_fresh_pair_is_not_forwarded_from_the_start() {
    let mut p = Planner::default();
    p.decide(&facts(&[1]), 0);
    assert!(p.decide(&facts(&[1, 2]), 10).paired);
    assert!(p.gated(&pid(1)) && p.gated(&pid(2)));
}

#[test]
fn a_returning_pair_stays_forwarded_until_both_are_connected() {
    let (mut p, t) = returned_pair();
    let n = p.pairing();
    assert!(!p.gated(&pid(1)) && !p.gated(&pid(2)));
    assert_eq!(p.report(&pid(1), n, DirectState::Connected), Ok(false));
    assert!(!p.gated(&pid(1)), "one side connected is not enough");
    assert_eq!(p.report(&pid(2), n, DirectState::Connected), Ok(true));
    assert!(p.gated(&pid(1)) && p.gated(&pid(2)));
    // Connected in time: the deadline is gone, nothing falls back.
    let d = p.decide(&facts(&[1, 2]), t + P2P_CONNECT_TIMEOUT_MS + 1);
    assert_eq!((d.changed, d.fell_back, d.recheck_at), (false, None, None));
    assert!(p.path().is_direct());
}

#[test]
fn a_failure_turns_the_room_to_the_sfu_and_keeps_the_two_there() {
    let mut p = Planner::default();
    p.decide(&facts(&[1, 2]), 0);
    let n = p.pairing();
    assert_eq!(p.report(&pid(2), n, DirectState::Failed), Ok(false));
    let d = p.decide(&facts(&[1, 2]), 10);
    assert!(d.changed && !d.paired);
    assert_eq!(d.fell_back, Some(Fallback::Failed));
    assert_eq!(p.path(), &Path::Sfu);
    assert!(p.pairing() > n);
    assert!(!p.gated(&pid(1)));
    // The same two, much later: still the SFU.
    assert!(!p.decide(&facts(&[1, 2]), 1_000_000).changed);
    // Someone else joins and leaves: the membership changed, so they may
    // try again (after the settle time).
    p.decide(&facts(&[1, 2, 3]), 1_000_010);
    p.decide(&facts(&[1, 2]), 1_000_020);
    assert!(p.decide(&facts(&[1, 2]), 1_000_020 + P2P_SETTLE_MS).paired);
}

#[test]
fn not_both_connected_in_time_falls_back_to_the_sfu() {
    let (mut p, t) = returned_pair();
    let n = p.pairing();
    p.report(&pid(1), n, DirectState::Connected).unwrap();
    let d = p.decide(&facts(&[1, 2]), t + P2P_CONNECT_TIMEOUT_MS - 1);
    assert!(!d.changed && p.path().is_direct());
    assert_eq!(d.recheck_at, Some(t + P2P_CONNECT_TIMEOUT_MS));
    let d = p.decide(&facts(&[1, 2]), t + P2P_CONNECT_TIMEOUT_MS);
    assert_eq!((d.changed, d.fell_back), (true, Some(Fallback::Timeout)));
    assert_eq!(p.path(), &Path::Sfu);
    assert!(!p.decide(&facts(&[1, 2]), t + 60_000).changed);
    // A new second participant is a new membership: paired at once.
    p.decide(&facts(&[1]), t + 60_001);
    assert!(p.decide(&facts(&[1, 4]), t + 60_002).paired);
}

#[test]
fn only_the_current_pair_may_report() {
    let mut p = Planner::default();
    p.decide(&facts(&[1, 2]), 0);
    let n = p.pairing();
    let c = DirectState::Connected;
    assert_eq!(p.report(&pid(3), n, c), Err(StateError::NotPaired));
    assert_eq!(
        p.report(&pid(1), Pairing(n.0 - 1), c),
        Err(StateError::StalePairing)
    );
    p.decide(&facts(&[1, 2, 3]), 10);
    let n = p.pairing();
    assert_eq!(p.report(&pid(1), n, c), Err(StateError::NotPaired));
    assert_eq!(
        p.report(&pid(1), n, DirectState::Failed),
        Err(StateError::NotPaired)
    );
}

#[test]
fn a_failed_report_turns_the_room_to_the_sfu_and_reopens_forwarding() {
    let r = p2p_room();
    let a = join_as(&r, 1, true);
    let b = join_as(&r, 2, true);
    let cam = camera(1, 1);
    r.publish(cam.clone()).unwrap();
    assert!(cam.is_direct());
    let pairing = paths(&a.take()).last().unwrap().1;
    b.take();
    r.p2p_state(&pid(1), pairing, DirectState::Failed).unwrap();
    assert!(!cam.is_direct(), "forwarded again at once");
    for seat in [&a, &b] {
        let told = paths(&seat.take());
        assert_eq!(told.len(), 1);
        assert_eq!((told[0].0, told[0].2.clone()), (MediaPath::Sfu, None));
        assert!(told[0].1 > pairing);
    }
    // Another change of the same two does not pair them again.
    r.set_media(&pid(2), MediaState::default()).ok();
    assert!(paths(&a.take()).is_empty());
    assert_eq!(r.media_path_of(&pid(1)).unwrap().path, MediaPath::Sfu);
}

#[test]
fn reports_of_anyone_but_the_current_pair_change_nothing() {
    let r = p2p_room();
    let a = join_as(&r, 1, true);
    let b = join_as(&r, 2, true);
    let pairing = paths(&a.take()).last().unwrap().1;
    b.take();
    let stale = Pairing(pairing.0 - 1);
    assert_eq!(
        r.p2p_state(&pid(2), stale, DirectState::Failed),
        Err(StateError::StalePairing)
    );
    assert_eq!(
        r.p2p_state(&pid(7), pairing, DirectState::Failed),
        Err(StateError::NotPaired)
    );
    r.p2p_state(&pid(1), pairing, DirectState::Connected)
        .unwrap();
    let quiet = |e: &Event| matches!(e, Event::Sent(ServerMessage::MediaPath { .. }));
    assert!(!a.take().iter().any(quiet) && !b.take().iter().any(quiet));
    assert_eq!(r.media_path_of(&pid(1)).unwrap().path, MediaPath::P2p);
}
