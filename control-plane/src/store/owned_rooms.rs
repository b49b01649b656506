//! Which rooms each signed-in user owns, for their list of rooms: a
//! document table written when a room with an owner is created (by both
//! stores' `CreateRoom`), keyed (owner, room id) so that one owner's rooms
//! are one range, oldest first. Rooms never change after creation, so the
//! copy kept here never goes stale. Rooms created before this table
//! existed are not in it.

use super::db::DbError;
use super::docs::{DocKey, DocTable, Docs, DocsMut};
use super::model::Room;
use veche_protocol::UserId;

/// Rooms by (owner, room id).
const OWNED: DocTable<(u64, u64), Room> = DocTable::new("owned_rooms");

/// Records `room` under its owner, if it has one.
pub(crate) fn index(d: &mut (impl DocsMut + ?Sized), room: &Room) -> Result<(), DbError> {
    match room.owner {
        Some(owner) => OWNED.put(d, &(owner.0, room.id.0), room),
        None => Ok(()),
    }
}

/// Up to `limit` of `owner`'s rooms, newest first.
pub(crate) fn owned_by(
    d: &(impl Docs + ?Sized),
    owner: UserId,
    limit: usize,
) -> Result<Vec<Room>, DbError> {
    OWNED.scan(d, &owner.0.key_bytes(), true, limit)
}
