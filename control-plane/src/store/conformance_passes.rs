//! Conformance cases for [`PassStore`] and room ownership: every sentence
//! of the passes contract (`passes.rs`) and of [`Store::create_room_as`],
//! on every store `conformance::run_all` runs.

use super::conformance_kit::{Case, StoreFactory};
use super::error::StoreError;
use super::model::{CommandError, NewRoom};
use super::passes::{Pass, PassCommand, PassRefusal, PassStore};
use super::seam::Store;
use std::path::Path;
use veche_protocol::pass::{PassId, PassStatus, RoomAccess};
use veche_protocol::{RoomId, RoomSlug, UserId};

/// The passes cases, named.
pub(crate) fn cases<F: StoreFactory>() -> [(&'static str, Case<F>); 3] {
    [
        (
            "a room keeps its owner, owner key and access rule",
            |f, d| Box::pin(a_room_keeps_its_owner_and_access(f, d)),
        ),
        (
            "a pass is issued once, found by its token and listed per room",
            |f, d| Box::pin(a_pass_is_issued_once_and_found_by_its_token(f, d)),
        ),
        (
            "revoking a pass is immediate, kept, and survives a reopen",
            |f, d| Box::pin(revoking_a_pass_is_immediate_and_kept(f, d)),
        ),
    ]
}

fn issue(room: RoomId, token: u8, at: u64) -> PassCommand {
    PassCommand::Create {
        room_id: room,
        label: format!("Visitor {token}"),
        valid_from_ms: 1_000,
        valid_until_ms: 2_000,
        token_hash: [token; 32],
        created_at_ms: at,
        created_by: Some(UserId(3)),
    }
}

fn refused<T: std::fmt::Debug>(r: Result<T, StoreError>) -> PassRefusal {
    match r {
        Err(StoreError::Refused(CommandError::Pass(e))) => e,
        other => panic!("expected a pass refusal, got {other:?}"),
    }
}

async fn a_room_keeps_its_owner_and_access<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let new = NewRoom {
        owner: Some(UserId(7)),
        access: RoomAccess::SignedInOrPass,
        ..NewRoom::open(RoomSlug::from_random([1; 16]), "Board".into(), 5)
    };
    let room = s.create_room_as(new.clone()).await.unwrap();
    assert_eq!(room.owner, Some(UserId(7)));
    assert_eq!(room.access, RoomAccess::SignedInOrPass);
    assert_eq!(
        s.create_room_as(new.clone()).await.unwrap(),
        room,
        "a retry of the same command returns the same room"
    );
    let other_owner = NewRoom {
        owner: Some(UserId(8)),
        ..new.clone()
    };
    assert!(
        matches!(
            s.create_room_as(other_owner).await,
            Err(StoreError::Refused(CommandError::SlugTaken))
        ),
        "the same slug for another owner is not a retry"
    );
    let keyed = s
        .create_room_as(NewRoom {
            owner_key_hash: Some([9; 32]),
            ..NewRoom::open(RoomSlug::from_random([2; 16]), "Open".into(), 6)
        })
        .await
        .unwrap();
    assert_eq!(keyed.owner_key_hash, Some([9; 32]));
    assert_eq!(keyed.access, RoomAccess::Open);
    if F::DURABLE {
        f.close(s).await;
        let s = f.open(dir).await;
        assert_eq!(
            s.room_by_slug(&room.slug).await.unwrap(),
            Some(room),
            "owner and access survive a reopen"
        );
        assert_eq!(s.room_by_id(keyed.id).await.unwrap(), Some(keyed));
        f.close(s).await;
    } else {
        f.close(s).await;
    }
}

async fn a_pass_is_issued_once_and_found_by_its_token<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let (room, other) = (RoomId(1), RoomId(2));
    let first = s.pass_command(issue(room, 1, 10)).await.unwrap();
    assert_eq!(first.label, "Visitor 1");
    assert_eq!(first.revoked_at_ms, None);
    assert_eq!(first.created_by, Some(UserId(3)));
    assert_eq!(
        s.pass_command(issue(room, 1, 10)).await.unwrap(),
        first,
        "a retry returns the pass it created"
    );
    assert_eq!(
        refused(s.pass_command(issue(other, 1, 11)).await),
        PassRefusal::TokenTaken,
        "a token names one pass"
    );
    let second = s.pass_command(issue(room, 2, 12)).await.unwrap();
    let elsewhere = s.pass_command(issue(other, 3, 13)).await.unwrap();
    assert!(second.id > first.id && elsewhere.id > second.id);
    assert_eq!(
        s.pass_by_token([2; 32]).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(s.pass_by_token([4; 32]).await.unwrap(), None);
    assert_eq!(
        s.passes(room).await.unwrap(),
        [first.clone(), second.clone()]
    );
    assert_eq!(
        s.passes(other).await.unwrap(),
        std::slice::from_ref(&elsewhere)
    );
    assert_eq!(s.pass(room, first.id).await.unwrap(), Some(first));
    assert_eq!(
        s.pass(room, elsewhere.id).await.unwrap(),
        None,
        "a pass is found only in its own room"
    );
    f.close(s).await;
}

async fn revoking_a_pass_is_immediate_and_kept<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let room = RoomId(1);
    let pass = s.pass_command(issue(room, 1, 10)).await.unwrap();
    assert_eq!(pass.status(1_500), PassStatus::Active);
    let revoke = |at_ms| PassCommand::Revoke {
        room_id: room,
        pass_id: pass.id,
        at_ms,
    };
    let revoked = s.pass_command(revoke(1_200)).await.unwrap();
    assert_eq!(revoked.revoked_at_ms, Some(1_200));
    assert_eq!(revoked.status(1_500), PassStatus::Revoked);
    assert_eq!(
        s.pass_command(revoke(1_300)).await.unwrap(),
        revoked,
        "revoking again keeps the first time"
    );
    assert_eq!(
        s.pass_by_token([1; 32]).await.unwrap(),
        Some(revoked.clone()),
        "the link now finds a revoked pass"
    );
    for (what, room_id, pass_id) in [
        ("an unknown pass", room, PassId(999)),
        ("another room's pass", RoomId(2), pass.id),
    ] {
        assert_eq!(
            refused(
                s.pass_command(PassCommand::Revoke {
                    room_id,
                    pass_id,
                    at_ms: 1
                })
                .await
            ),
            PassRefusal::NoSuchPass,
            "{what}"
        );
    }
    let kept: Vec<Pass> = s.passes(room).await.unwrap();
    assert_eq!(kept, std::slice::from_ref(&revoked));
    if F::DURABLE {
        f.close(s).await;
        let s = f.open(dir).await;
        assert_eq!(
            s.passes(room).await.unwrap(),
            [revoked],
            "passes survive a reopen"
        );
        let next = s.pass_command(issue(room, 5, 20)).await.unwrap();
        assert!(next.id > pass.id, "pass ids never repeat after a reopen");
        f.close(s).await;
    } else {
        f.close(s).await;
    }
}
