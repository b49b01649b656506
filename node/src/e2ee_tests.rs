use super::*;
use veche_protocol::limits::e2ee as lim;

fn pid(s: &str) -> ParticipantId {
    ParticipantId(s.into())
}

fn key_package(kp: &str) -> ClientMessage {
    ClientMessage::E2eeKeyPackage {
        key_package: kp.into(),
    }
}

fn commit(epoch: u64, added: &[&str]) -> ClientMessage {
    ClientMessage::E2eeCommit {
        group: 1,
        epoch,
        added: added.iter().map(|a| pid(a)).collect(),
        removed: Vec::new(),
        commit: "Y29tbWl0".into(),
        welcome: Some("d2VsY29tZQ".into()),
    }
}

fn refused(r: Option<Result<Step, ErrorBody>>) -> ErrorCode {
    match r {
        Some(Err(e)) => e.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_plain_room_refuses_handshake_messages_without_spending_the_budget() {
    let mut gate = Gate::new(false, 0);
    for _ in 0..20 {
        assert_eq!(
            refused(gate.admit(key_package("a2V5"), 0)),
            E2eeError::NotEncryptedRoom.code()
        );
        assert_eq!(
            refused(gate.admit(commit(0, &[]), 0)),
            ErrorCode::InvalidState
        );
    }
    // Other messages are not the gate's business.
    assert!(gate.admit(ClientMessage::Leave, 0).is_none());
}

#[test]
fn key_packages_beyond_their_rate_are_refused_and_admitted_again_after_refill() {
    let mut gate = Gate::new(true, 0);
    for _ in 0..lim::KEY_PACKAGE.burst {
        assert!(matches!(gate.admit(key_package("a2V5"), 0), Some(Ok(_))));
    }
    assert_eq!(
        refused(gate.admit(key_package("a2V5"), 0)),
        ErrorCode::RateLimited
    );
    // Commits have a budget of their own.
    assert!(matches!(gate.admit(commit(0, &["b"]), 0), Some(Ok(_))));
    let refill_ms = (1000.0 / lim::KEY_PACKAGE.per_second) as u64;
    assert!(matches!(
        gate.admit(key_package("a2V5"), refill_ms),
        Some(Ok(Step::KeyPackage(_)))
    ));
}

#[test]
fn malformed_and_oversized_handshake_messages_are_refused_with_their_codes() {
    let mut gate = Gate::new(true, 0);
    assert_eq!(
        refused(gate.admit(key_package("not base64!"), 0)),
        ErrorCode::BadRequest
    );
    assert_eq!(
        refused(gate.admit(key_package(""), 0)),
        ErrorCode::BadRequest
    );
    let big = "A".repeat(lim::MAX_KEY_PACKAGE_BYTES + 1);
    assert_eq!(
        refused(gate.admit(key_package(&big), 0)),
        ErrorCode::TooLarge
    );
    assert_eq!(
        refused(gate.admit(commit(0, &["b", "b"]), 0)),
        ErrorCode::BadRequest
    );
    let ClientMessage::E2eeCommit {
        group,
        epoch,
        added,
        removed,
        commit: c,
        ..
    } = commit(0, &["b"])
    else {
        unreachable!()
    };
    let huge_welcome = ClientMessage::E2eeCommit {
        group,
        epoch,
        added,
        removed,
        commit: c,
        welcome: Some("A".repeat(lim::MAX_WELCOME_BYTES + 1)),
    };
    assert_eq!(refused(gate.admit(huge_welcome, 0)), ErrorCode::TooLarge);
}

#[test]
fn the_room_hears_a_found_group_whole_a_queued_key_package_but_its_sender_and_a_commit_whole() {
    let ann = pid("ann");
    let (msg, except) = outcome(
        &ann,
        Step::KeyPackage("a2V5".into()),
        DsReply::Found { group: 3 },
    )
    .unwrap();
    assert_eq!(
        msg,
        ServerMessage::E2eeFound {
            participant_id: ann.clone(),
            group: 3
        }
    );
    assert_eq!(except, None);

    let (msg, except) = outcome(
        &ann,
        Step::KeyPackage("a2V5".into()),
        DsReply::Queued { group: 3, epoch: 7 },
    )
    .unwrap();
    assert!(
        matches!(msg, ServerMessage::E2eeKeyPackage { group: 3, ref key_package, .. } if key_package == "a2V5")
    );
    assert_eq!(except, Some(ann.clone()));

    let step = Step::Commit {
        labels: CommitLabels {
            group: 3,
            epoch: 7,
            added: vec![pid("ben")],
            removed: vec![pid("cy")],
        },
        commit: "Yw".into(),
        welcome: Some("dw".into()),
    };
    let (msg, except) =
        outcome(&ann, step.clone(), DsReply::Accepted { group: 3, epoch: 8 }).unwrap();
    assert_eq!(
        msg,
        ServerMessage::E2eeCommit {
            participant_id: ann.clone(),
            group: 3,
            epoch: 7,
            added: vec![pid("ben")],
            removed: vec![pid("cy")],
            commit: "Yw".into(),
            welcome: Some("dw".into()),
        },
        "labelled with the epoch the commit starts from"
    );
    assert_eq!(except, None);
    assert!(outcome(&ann, step, DsReply::Found { group: 4 }).is_none());
}

#[test]
fn chat_in_an_encrypted_room_must_be_sealed_and_may_be_longer_than_plain_chat() {
    let body = "A".repeat(40);
    let sealed = format!("e2ee1:1:0:{body}");
    assert_eq!(chat_text(true, &sealed).unwrap(), sealed);
    assert_eq!(
        chat_text(true, "hello").unwrap_err().code,
        ErrorCode::BadRequest
    );
    let long_sealed = format!("e2ee1:1:0:{}", "A".repeat(lim::MAX_SEALED_CHAT_BYTES - 20));
    assert!(chat_text(true, &long_sealed).is_ok());
    assert!(
        chat_text(false, &long_sealed).is_err(),
        "a plain room keeps the plain limit"
    );
    let too_long = format!("e2ee1:1:0:{}", "A".repeat(lim::MAX_SEALED_CHAT_BYTES));
    assert_eq!(
        chat_text(true, &too_long).unwrap_err().code,
        ErrorCode::TooLarge
    );
    assert_eq!(chat_text(false, " hi ").unwrap(), "hi");
}
