//! Conformance cases for [`CoverStore`]: every sentence of the covers
//! contract (`covers.rs`, `owned_rooms.rs`), on every store
//! `conformance::run_all` runs.

use super::conformance_kit::{Case, StoreFactory};
use super::covers::{CoverCommand, CoverImage, CoverStore};
use super::model::NewRoom;
use super::seam::Store;
use std::path::Path;
use veche_protocol::cover::CoverKind;
use veche_protocol::{RoomId, RoomSlug, UserId};

/// The covers cases, named.
pub(crate) fn cases<F: StoreFactory>() -> [(&'static str, Case<F>); 2] {
    [
        (
            "a cover is set, replaced and cleared, and survives a reopen",
            |f, d| Box::pin(a_cover_is_set_replaced_and_kept(f, d)),
        ),
        (
            "an owner's rooms are listed newest first with their covers",
            |f, d| Box::pin(an_owners_rooms_are_listed_with_their_covers(f, d)),
        ),
    ]
}

fn image(key: &str) -> CoverImage {
    CoverImage {
        key: key.into(),
        kind: CoverKind::Webp,
        width: 800,
        height: 450,
        bytes: 12_345,
    }
}

async fn a_cover_is_set_replaced_and_kept<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let room = RoomId(4);
    assert_eq!(s.cover(room).await.unwrap(), None);
    let text = s
        .cover_command(CoverCommand::SetText {
            room_id: room,
            title: "Quarterly review".into(),
            description: "Numbers, then questions".into(),
            at_ms: 10,
        })
        .await
        .unwrap();
    assert_eq!(text.cover.as_ref().unwrap().version, 1);
    let set = |key: &str| CoverCommand::SetImage {
        room_id: room,
        image: image(key),
        at_ms: 11,
    };
    assert_eq!(s.cover_command(set("k1")).await.unwrap().replaced, None);
    let second = s.cover_command(set("k2")).await.unwrap();
    assert_eq!(second.replaced, Some(image("k1")), "the displaced image");
    let stored = second.cover.unwrap();
    assert_eq!(stored.version, 3);
    assert_eq!(stored.title, "Quarterly review");
    assert_eq!(stored.image, Some(image("k2")));
    assert_eq!(
        s.cover(RoomId(5)).await.unwrap(),
        None,
        "another room has none"
    );
    if F::DURABLE {
        f.close(s).await;
        let s = f.open(dir).await;
        assert_eq!(
            s.cover(room).await.unwrap(),
            Some(stored.clone()),
            "the cover survives a reopen"
        );
        f.close(s).await;
    } else {
        f.close(s).await;
    }
    let s = f.open(dir).await;
    let removed = s
        .cover_command(CoverCommand::RemoveImage {
            room_id: room,
            at_ms: 12,
        })
        .await
        .unwrap();
    if F::DURABLE {
        assert_eq!(removed.replaced, Some(image("k2")));
        let left = removed.cover.unwrap();
        assert_eq!((left.image, left.version), (None, 4), "the text stays");
    }
    f.close(s).await;
}

async fn an_owners_rooms_are_listed_with_their_covers<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let mk = |n: u8, owner: Option<UserId>| NewRoom {
        owner,
        ..NewRoom::open(RoomSlug::from_random([n; 16]), format!("Room {n}"), 5)
    };
    let a = s.create_room_as(mk(1, Some(UserId(7)))).await.unwrap();
    let _other = s.create_room_as(mk(2, Some(UserId(8)))).await.unwrap();
    let _anon = s.create_room_as(mk(3, None)).await.unwrap();
    let b = s.create_room_as(mk(4, Some(UserId(7)))).await.unwrap();
    s.cover_command(CoverCommand::SetText {
        room_id: a.id,
        title: "Cover of A".into(),
        description: String::new(),
        at_ms: 6,
    })
    .await
    .unwrap();
    let listed = s.rooms_owned_by(UserId(7), 10).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|(r, _)| r.id).collect();
    assert_eq!(ids, [b.id, a.id], "newest first, only this owner's");
    assert_eq!(listed[0].1, None);
    assert_eq!(listed[1].1.as_ref().unwrap().title, "Cover of A");
    assert_eq!(s.rooms_owned_by(UserId(7), 1).await.unwrap().len(), 1);
    assert!(s.rooms_owned_by(UserId(9), 10).await.unwrap().is_empty());
    f.close(s).await;
}
