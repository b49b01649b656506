//! Room covers: the title, description and image a room's owner sets.
//!
//! Written once against the document tables ([`super::docs`]), so the Raft
//! state machine and [`super::MemStore`] run this same code. One document
//! per room, under its id; the image's bytes live in the cover store
//! (`crate::blobs`), and only their key, type and size are here.

use super::access::DocAccess;
use super::db::DbError;
use super::docs::{DocTable, Docs, DocsMut};
use super::error::StoreError;
use super::model::Room;
use super::model::{Command, CommandOutput};
use super::seam;
use std::future::Future;
use veche_protocol::{RoomId, UserId};

pub use super::cover_model::{Cover, CoverCommand, CoverImage, CoverOutput};

/// Covers by room id.
const COVERS: DocTable<u64, Cover> = DocTable::new("covers");

/// Applies one cover command.
pub(crate) fn apply(
    d: &mut (impl DocsMut + ?Sized),
    cmd: CoverCommand,
) -> Result<CoverOutput, DbError> {
    let room_id = match &cmd {
        CoverCommand::SetText { room_id, .. }
        | CoverCommand::SetImage { room_id, .. }
        | CoverCommand::RemoveImage { room_id, .. } => *room_id,
    };
    let old = COVERS.get(d, &room_id.0)?;
    let mut new = old.clone().unwrap_or(Cover {
        room_id,
        title: String::new(),
        description: String::new(),
        image: None,
        version: 0,
        updated_at_ms: 0,
    });
    let at = match cmd {
        CoverCommand::SetText {
            title,
            description,
            at_ms,
            ..
        } => {
            new.title = title;
            new.description = description;
            at_ms
        }
        CoverCommand::SetImage { image, at_ms, .. } => {
            new.image = Some(image);
            at_ms
        }
        CoverCommand::RemoveImage { at_ms, .. } => {
            new.image = None;
            at_ms
        }
    };
    let before = old.as_ref();
    let changed = before.map(|c| (&c.title, &c.description, &c.image))
        != Some((&new.title, &new.description, &new.image));
    if !changed {
        return Ok(CoverOutput {
            cover: old,
            replaced: None,
        });
    }
    let replaced = before
        .and_then(|c| c.image.clone())
        .filter(|i| new.image.as_ref().map(|n| &n.key) != Some(&i.key));
    if new.title.is_empty() && new.description.is_empty() && new.image.is_none() {
        COVERS.remove(d, &room_id.0)?;
        return Ok(CoverOutput {
            cover: None,
            replaced,
        });
    }
    new.version += 1;
    new.updated_at_ms = at;
    COVERS.put(d, &room_id.0, &new)?;
    Ok(CoverOutput {
        cover: Some(new),
        replaced,
    })
}

/// The cover of `room`, if it has one.
pub(crate) fn cover(d: &(impl Docs + ?Sized), room: RoomId) -> Result<Option<Cover>, DbError> {
    COVERS.get(d, &room.0)
}

/// Room covers as the API uses them. Implemented once for every store
/// ([`DocAccess`]); the contract is checked by the conformance cases in
/// `conformance_covers.rs` on both stores.
pub trait CoverStore: DocAccess {
    /// Runs a cover command.
    fn cover_command(
        &self,
        cmd: CoverCommand,
    ) -> impl Future<Output = Result<CoverOutput, StoreError>> + Send {
        async move {
            seam::expect(
                self.commit(Command::Covers(cmd)).await?,
                "a cover command",
                |o| match o {
                    CommandOutput::Covers(c) => Ok(*c),
                    other => Err(other),
                },
            )
        }
    }

    /// The cover of `room`, if it has one.
    fn cover(
        &self,
        room: RoomId,
    ) -> impl Future<Output = Result<Option<Cover>, StoreError>> + Send {
        self.read_docs(move |d| cover(d, room))
    }

    /// Up to `limit` of `owner`'s rooms, newest first, each with its
    /// cover: one read, whatever the count.
    fn rooms_owned_by(
        &self,
        owner: UserId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(Room, Option<Cover>)>, StoreError>> + Send {
        self.read_docs(move |d| {
            super::owned_rooms::owned_by(d, owner, limit)?
                .into_iter()
                .map(|r| Ok((cover(d, r.id)?, r)))
                .map(|x: Result<_, DbError>| x.map(|(c, r)| (r, c)))
                .collect()
        })
    }
}

impl<S: DocAccess + ?Sized> CoverStore for S {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::docs::MemDocs;
    use veche_protocol::cover::CoverKind;

    fn image(key: &str) -> CoverImage {
        CoverImage {
            key: key.into(),
            kind: CoverKind::Png,
            width: 640,
            height: 360,
            bytes: 1000,
        }
    }

    fn text(title: &str) -> CoverCommand {
        CoverCommand::SetText {
            room_id: RoomId(1),
            title: title.into(),
            description: "d".into(),
            at_ms: 5,
        }
    }

    #[test]
    fn only_a_change_bumps_the_version() {
        let mut d = MemDocs::default();
        let first = apply(&mut d, text("Board")).unwrap().cover.unwrap();
        assert_eq!(first.version, 1);
        let again = apply(&mut d, text("Board")).unwrap();
        assert_eq!(again.cover.unwrap().version, 1, "the same text is a retry");
        assert_eq!(
            apply(&mut d, text("Board 2"))
                .unwrap()
                .cover
                .unwrap()
                .version,
            2
        );
    }

    #[test]
    fn a_new_image_hands_back_the_one_it_replaced_once() {
        let mut d = MemDocs::default();
        let set = |key: &str| CoverCommand::SetImage {
            room_id: RoomId(1),
            image: image(key),
            at_ms: 1,
        };
        assert_eq!(apply(&mut d, set("a")).unwrap().replaced, None);
        assert_eq!(apply(&mut d, set("b")).unwrap().replaced, Some(image("a")));
        assert_eq!(apply(&mut d, set("b")).unwrap().replaced, None, "a retry");
        let removed = apply(
            &mut d,
            CoverCommand::RemoveImage {
                room_id: RoomId(1),
                at_ms: 2,
            },
        )
        .unwrap();
        assert_eq!(removed.replaced, Some(image("b")));
        assert_eq!(removed.cover, None, "nothing left: the cover is gone");
        assert_eq!(cover(&d, RoomId(1)).unwrap(), None);
    }
}
