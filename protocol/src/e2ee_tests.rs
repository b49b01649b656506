use super::*;

fn p(n: u8) -> ParticipantId {
    ParticipantId::from_random([n; 8])
}

fn labels(group: u32, epoch: u64, added: &[u8], removed: &[u8]) -> CommitLabels {
    CommitLabels {
        group,
        epoch,
        added: added.iter().map(|&n| p(n)).collect(),
        removed: removed.iter().map(|&n| p(n)).collect(),
    }
}

#[test]
fn the_first_key_package_founds_a_group_and_later_ones_queue() {
    let mut ds = DeliveryService::default();
    assert_eq!(ds.key_package(&p(1)), DsReply::Found { group: 1 });
    assert_eq!(
        ds.key_package(&p(2)),
        DsReply::Queued { group: 1, epoch: 0 }
    );
    assert!(ds.waiting.contains(&p(2)));
}

#[test]
fn the_first_commit_of_an_epoch_wins_and_the_second_is_stale() {
    let mut ds = DeliveryService::default();
    ds.key_package(&p(1));
    ds.key_package(&p(2));
    ds.key_package(&p(3));
    assert_eq!(
        ds.commit(&p(1), &labels(1, 0, &[2], &[])),
        Ok(DsReply::Accepted { group: 1, epoch: 1 })
    );
    // Member 2 races with a commit from the same epoch: refused.
    assert_eq!(
        ds.commit(&p(2), &labels(1, 0, &[3], &[])),
        Err(E2eeError::Stale { group: 1, epoch: 1 })
    );
    assert_eq!(
        ds.commit(&p(2), &labels(1, 1, &[3], &[])),
        Ok(DsReply::Accepted { group: 1, epoch: 2 })
    );
    assert_eq!(ds.members.len(), 3);
    assert!(ds.waiting.is_empty());
}

#[test]
fn only_members_commit_and_only_waiters_are_added() {
    let mut ds = DeliveryService::default();
    ds.key_package(&p(1));
    ds.key_package(&p(2));
    assert_eq!(
        ds.commit(&p(2), &labels(1, 0, &[], &[])),
        Err(E2eeError::NotMember)
    );
    assert_eq!(
        ds.commit(&p(1), &labels(1, 0, &[9], &[])),
        Err(E2eeError::NotWaiting(p(9)))
    );
    assert_eq!(ds.epoch, 0, "a refused commit changes nothing");
}

#[test]
fn a_member_who_sends_a_key_package_again_can_no_longer_commit() {
    let mut ds = DeliveryService::default();
    ds.key_package(&p(1));
    ds.key_package(&p(2));
    ds.commit(&p(1), &labels(1, 0, &[2], &[])).unwrap();
    assert_eq!(
        ds.key_package(&p(2)),
        DsReply::Queued { group: 1, epoch: 1 }
    );
    assert_eq!(
        ds.commit(&p(2), &labels(1, 1, &[], &[])),
        Err(E2eeError::NotMember)
    );
    // Member 1 re-adds it under the same id.
    assert!(ds.commit(&p(1), &labels(1, 1, &[2], &[])).is_ok());
    assert!(ds.members.contains(&p(2)));
}

#[test]
fn when_the_last_member_leaves_a_waiter_founds_a_new_group() {
    let mut ds = DeliveryService::default();
    ds.key_package(&p(1));
    ds.key_package(&p(2));
    ds.left(&p(1));
    assert!(!ds.live());
    assert_eq!(ds.key_package(&p(2)), DsReply::Found { group: 2 });
    // A commit for the dead group is stale.
    assert_eq!(
        ds.commit(&p(2), &labels(1, 0, &[], &[])),
        Err(E2eeError::Stale { group: 2, epoch: 0 })
    );
}

#[test]
fn removed_participants_leave_the_membership() {
    let mut ds = DeliveryService::default();
    ds.key_package(&p(1));
    ds.key_package(&p(2));
    ds.commit(&p(1), &labels(1, 0, &[2], &[])).unwrap();
    ds.commit(&p(1), &labels(1, 1, &[], &[2])).unwrap();
    assert_eq!(ds.members.iter().collect::<Vec<_>>(), vec![&p(1)]);
}

#[test]
fn opaque_fields_must_be_base64url_within_their_limits() {
    assert!(check_key_package("abc-_09").is_ok());
    assert_eq!(
        check_key_package(""),
        Err(E2eeError::NotBase64 {
            field: "key_package"
        })
    );
    assert_eq!(
        check_key_package("a+b/"),
        Err(E2eeError::NotBase64 {
            field: "key_package"
        })
    );
    let big = "a".repeat(lim::MAX_KEY_PACKAGE_BYTES + 1);
    assert!(matches!(
        check_key_package(&big),
        Err(E2eeError::TooLarge { .. })
    ));
    assert_eq!(
        check_key_package(&big).unwrap_err().code(),
        crate::ErrorCode::TooLarge
    );
}

#[test]
fn a_commit_may_not_list_anyone_twice() {
    let l = labels(1, 0, &[2], &[2]);
    assert_eq!(check_commit(&l, "AAAA", None), Err(E2eeError::BadList));
    assert!(check_commit(&labels(1, 0, &[2], &[3]), "AAAA", Some("BBBB")).is_ok());
    assert!(matches!(
        check_commit(&labels(1, 0, &[], &[]), "AAAA", Some("no spaces")),
        Err(E2eeError::NotBase64 { field: "welcome" })
    ));
}

#[test]
fn sealed_chat_is_an_envelope_and_plaintext_is_refused() {
    let body = "A".repeat(40);
    assert!(check_sealed_chat(&format!("e2ee1:1:7:{body}")).is_ok());
    assert_eq!(check_sealed_chat("hello"), Err(E2eeError::ChatNotSealed));
    assert_eq!(
        check_sealed_chat(&format!("e2ee1:x:7:{body}")),
        Err(E2eeError::ChatNotSealed)
    );
    assert_eq!(
        check_sealed_chat("e2ee1:1:7:short"),
        Err(E2eeError::ChatNotSealed)
    );
    let long = format!("e2ee1:1:7:{}", "A".repeat(lim::MAX_SEALED_CHAT_BYTES));
    assert!(matches!(
        check_sealed_chat(&long),
        Err(E2eeError::TooLarge { .. })
    ));
}

#[test]
fn the_rpc_body_has_a_flat_op_tag() {
    let r = DsRequest {
        room_id: crate::RoomId(4),
        participant_id: p(1),
        op: DsOp::Commit(labels(1, 2, &[3], &[])),
    };
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["op"], "commit");
    assert_eq!(j["epoch"], 2);
    let back: DsRequest = serde_json::from_value(j).unwrap();
    assert_eq!(back, r);
}
