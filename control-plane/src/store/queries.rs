//! Read-only queries against the state-machine tables, for
//! [`super::raft_store::RaftStore`], its state machine and its snapshots.
//! They read whatever is applied; the
//! caller makes them linearizable by calling `ensure_linearizable` first.

use super::db::{
    self, DbError, KEY_LAST_APPLIED, KEY_LAST_MEMBERSHIP, KEY_SIGNING_KEY, MEDIA_NODES, MESSAGES,
    ROOMS, ROOM_SLUGS, SM_META,
};
use super::model::{MediaNodeRecord, Room};
use openraft::{BasicNode, LogId, StoredMembership};
use redb::{Database, ReadableDatabase, ReadableTable};
use veche_protocol::chat::ChatMessage;
use veche_protocol::{MessageId, RoomId, RoomSlug};

pub(crate) fn room_by_slug(db: &Database, slug: &RoomSlug) -> Result<Option<Room>, DbError> {
    let txn = db.begin_read()?;
    let Some(id) = txn
        .open_table(ROOM_SLUGS)?
        .get(slug.as_str())?
        .map(|g| g.value())
    else {
        return Ok(None);
    };
    let room = txn
        .open_table(ROOMS)?
        .get(id)?
        .ok_or_else(|| DbError::Inconsistent(format!("slug index points at missing room {id}")))?;
    Ok(Some(db::decode(room.value())?))
}

pub(crate) fn room_by_id(db: &Database, id: RoomId) -> Result<Option<Room>, DbError> {
    let txn = db.begin_read()?;
    match txn.open_table(ROOMS)?.get(id.0)? {
        Some(v) => Ok(Some(db::decode(v.value())?)),
        None => Ok(None),
    }
}

/// Up to `limit` messages of `room` with ids below `before` (all if
/// `None`), newest ones first chosen, returned oldest-first, and whether
/// older ones remain.
pub(crate) fn messages(
    db: &Database,
    room: RoomId,
    before: Option<MessageId>,
    limit: usize,
) -> Result<(Vec<ChatMessage>, bool), DbError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(MESSAGES)?;
    let range = match before {
        Some(b) => table.range::<(u64, u64)>((room.0, 0)..(room.0, b.0))?,
        None => table.range::<(u64, u64)>((room.0, 0)..=(room.0, u64::MAX))?,
    };
    let mut out = Vec::with_capacity(limit.min(1024));
    let mut has_more = false;
    for item in range.rev() {
        if out.len() == limit {
            has_more = true;
            break;
        }
        out.push(db::decode::<ChatMessage>(item?.1.value())?);
    }
    out.reverse();
    Ok((out, has_more))
}

pub(crate) fn media_nodes(db: &Database) -> Result<Vec<MediaNodeRecord>, DbError> {
    let txn = db.begin_read()?;
    let mut out = Vec::new();
    for item in txn.open_table(MEDIA_NODES)?.iter()? {
        out.push(db::decode(item?.1.value())?);
    }
    Ok(out)
}

pub(crate) fn signing_key(db: &Database) -> Result<Option<Vec<u8>>, DbError> {
    let txn = db.begin_read()?;
    let key = txn
        .open_table(SM_META)?
        .get(KEY_SIGNING_KEY)?
        .map(|v| v.value().to_vec());
    Ok(key)
}

/// The last applied log id and the membership in force as of it.
pub(super) type AppliedState = (Option<LogId<u64>>, StoredMembership<u64, BasicNode>);

/// Reads `last_applied` and the last membership from `SM_META`.
pub(super) fn read_applied_state(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<AppliedState, DbError> {
    let last_applied = match meta.get(KEY_LAST_APPLIED)? {
        Some(v) => db::decode::<Option<LogId<u64>>>(v.value())?,
        None => None,
    };
    let membership = match meta.get(KEY_LAST_MEMBERSHIP)? {
        Some(v) => db::decode(v.value())?,
        None => StoredMembership::default(),
    };
    Ok((last_applied, membership))
}
