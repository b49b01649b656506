//! Starting and stopping a recording, as the rules decide it.

use super::tests::{actor, pid, req, room};
use super::*;
use crate::recording::RecordingId;

fn start(id: u8) -> ModAction {
    ModAction::StartRecording {
        id: Some(RecordingId::from_random([id; 8])),
    }
}

#[test]
fn a_moderator_starts_a_recording_that_names_them() {
    let p = decide(&room(), &req(actor("p-mod", Role::Participant), start(1))).unwrap();
    let r = p.recording.clone().expect("recording");
    assert_eq!(r.id, RecordingId::from_random([1; 8]));
    assert_eq!(r.started_by, pid("p-mod"));
    assert_eq!(r.started_by_name, "p-mod name");
    assert_eq!(r.started_at_ms, 1_000);
    assert_eq!(p.version, room().version + 1);
    assert_eq!(p.view().recording, Some(r));
}

#[test]
fn a_participant_may_not_start_or_stop_a_recording() {
    for action in [start(1), ModAction::StopRecording] {
        let err = decide(
            &room(),
            &req(actor("p-bob", Role::Participant), action.clone()),
        );
        assert_eq!(
            err,
            Err(Refusal::Forbidden(not_a_moderator(&action))),
            "{action:?}"
        );
    }
    assert!(not_a_moderator(&start(1)).ends_with("start recording"));
}

#[test]
fn a_second_start_keeps_the_first_recording() {
    let first = decide(&room(), &req(actor("p-mod", Role::Participant), start(1))).unwrap();
    let again = decide(&first, &req(actor("p-host", Role::Host), start(2))).unwrap();
    assert_eq!(again, first, "a second start changes nothing");
}

#[test]
fn a_stop_ends_the_recording_and_a_second_stop_changes_nothing() {
    let on = decide(&room(), &req(actor("p-host", Role::Host), start(1))).unwrap();
    let off = decide(
        &on,
        &req(actor("p-mod", Role::Participant), ModAction::StopRecording),
    )
    .unwrap();
    assert_eq!(off.recording, None);
    assert_eq!(off.version, on.version + 1);
    let again = decide(
        &off,
        &req(actor("p-mod", Role::Participant), ModAction::StopRecording),
    )
    .unwrap();
    assert_eq!(again.version, off.version);
}

#[test]
fn a_start_without_an_id_from_the_control_plane_is_refused() {
    let err = decide(
        &room(),
        &req(
            actor("p-host", Role::Host),
            ModAction::StartRecording { id: None },
        ),
    );
    assert_eq!(err, Err(Refusal::BadRequest(NO_RECORDING_ID.into())));
}

#[test]
fn the_meeting_ending_stops_the_recording() {
    let on = decide(&room(), &req(actor("p-host", Role::Host), start(1))).unwrap();
    let off = without_recording(&on);
    assert_eq!(off.recording, None);
    assert_eq!(off.version, on.version + 1);
    assert_eq!(without_recording(&off).version, off.version);
}

#[test]
fn the_start_action_from_a_client_carries_no_id() {
    let a: ModAction = serde_json::from_str(r#"{"action":"start_recording"}"#).unwrap();
    assert_eq!(a, ModAction::StartRecording { id: None });
    let a: ModAction = serde_json::from_str(r#"{"action":"stop_recording"}"#).unwrap();
    assert_eq!(a, ModAction::StopRecording);
}

#[test]
fn an_encrypted_room_refuses_every_recording_start_with_the_e2ee_reason() {
    for who in [
        actor("p-host", Role::Host),
        actor("p-mod", Role::Participant),
        actor("p-bob", Role::Participant),
    ] {
        let err = decide_in(&room(), &req(who.clone(), start(1)), true).unwrap_err();
        assert_eq!(err, Refusal::Encrypted, "{who:?}");
        assert_eq!(err.code(), ErrorCode::Forbidden);
        assert_eq!(
            err.message(),
            "This meeting is end-to-end encrypted, so the server cannot record it."
        );
        assert_eq!(err.to_string(), err.message());
    }
    // Anything else is decided as in any room, and a plain room records.
    let stop = req(actor("p-mod", Role::Participant), ModAction::StopRecording);
    assert_eq!(decide_in(&room(), &stop, true), decide(&room(), &stop));
    let plain = req(actor("p-mod", Role::Participant), start(1));
    assert!(decide_in(&room(), &plain, false)
        .unwrap()
        .recording
        .is_some());
}
