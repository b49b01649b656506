//! State-machine snapshots: the whole state as one MessagePack value, built
//! from one read transaction and installed in one write transaction.
//!
//! The state machine is itself durable, so a snapshot is only needed to
//! bring a lagging or new follower up to date and to let the log be purged.

use super::db::{
    self, DbError, CHAT_IDEMPOTENCY, DOCS, KEY_LAST_APPLIED, KEY_LAST_MEMBERSHIP, KEY_NEXT_ID,
    KEY_SIGNING_KEY, KEY_SNAPSHOT_DATA, KEY_SNAPSHOT_META, KEY_SNAPSHOT_SEQ, MEDIA_NODES, MESSAGES,
    ROOMS, ROOM_SLUGS, SM_META, SNAPSHOT,
};
use super::model::{MediaNodeRecord, Room};
use super::queries::read_applied_state;
use super::types::TypeConfig;
use openraft::{BasicNode, Snapshot, SnapshotMeta};
use redb::{Database, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use veche_protocol::chat::ChatMessage;

/// Version of [`SnapshotBlob`]'s layout. An installing node refuses a blob
/// of another version rather than guess at it.
const SNAPSHOT_FORMAT: u32 = 1;

/// The whole state machine as one value: the snapshot payload.
///
/// The slug index and the chat idempotency index are not included: both are
/// functions of the rooms and messages, and rebuilding them on install means
/// an installed snapshot cannot carry an index that disagrees with its data.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotBlob {
    /// [`SNAPSHOT_FORMAT`] at the time of writing.
    format: u32,
    /// Every room, by id.
    rooms: Vec<Room>,
    /// Every chat message, by (room id, message id).
    messages: Vec<ChatMessage>,
    /// The installed join-token signing key, if any.
    signing_key: Option<Vec<u8>>,
    /// Media-node registrations with their drain flags. Absent in
    /// snapshots written before media nodes were registered through Raft,
    /// hence the default; a record from before the drain flag reads as not
    /// draining (see [`MediaNodeRecord`]).
    #[serde(default)]
    media_nodes: Vec<MediaNodeRecord>,
    /// The id counter (see `allocate_id`). Absent in snapshots written
    /// before it existed, when ids were log indexes and the rule "never
    /// below the entry's index" alone keeps them unique.
    #[serde(default)]
    next_id: Option<u64>,
    /// Every document table (`docs.rs`) as (full key, value) pairs in key
    /// order: a new capability's tables travel here with no change to
    /// this file. Absent in snapshots from before document tables.
    #[serde(default)]
    docs: Vec<(serde_bytes::ByteBuf, serde_bytes::ByteBuf)>,
}

/// Serializes the state machine as of one read transaction, stores it as
/// the current snapshot and returns it.
pub(super) fn build_snapshot(db: &Database) -> Result<Snapshot<TypeConfig>, DbError> {
    // One read transaction: the tables and `last_applied` are one
    // consistent version even while applies continue.
    let (last_applied, last_membership, data) = {
        let txn = db.begin_read()?;
        let meta = txn.open_table(SM_META)?;
        let (last_applied, last_membership) = read_applied_state(&meta)?;
        let signing_key = meta.get(KEY_SIGNING_KEY)?.map(|v| v.value().to_vec());
        let next_id = match meta.get(KEY_NEXT_ID)? {
            Some(v) => Some(db::decode::<u64>(v.value())?),
            None => None,
        };
        let mut rooms = Vec::new();
        for item in txn.open_table(ROOMS)?.iter()? {
            rooms.push(db::decode(item?.1.value())?);
        }
        let mut messages = Vec::new();
        for item in txn.open_table(MESSAGES)?.iter()? {
            messages.push(db::decode(item?.1.value())?);
        }
        let mut media_nodes = Vec::new();
        for item in txn.open_table(MEDIA_NODES)?.iter()? {
            media_nodes.push(db::decode(item?.1.value())?);
        }
        let mut docs = Vec::new();
        for item in txn.open_table(DOCS)?.iter()? {
            let (k, v) = item?;
            docs.push((
                serde_bytes::ByteBuf::from(k.value()),
                serde_bytes::ByteBuf::from(v.value()),
            ));
        }
        let blob = SnapshotBlob {
            format: SNAPSHOT_FORMAT,
            rooms,
            messages,
            signing_key,
            media_nodes,
            next_id,
            docs,
        };
        (last_applied, last_membership, db::encode(&blob)?)
    };

    let txn = db.begin_write()?;
    let meta = {
        let mut sm_meta = txn.open_table(SM_META)?;
        let seq = match sm_meta.get(KEY_SNAPSHOT_SEQ)? {
            Some(v) => db::decode::<u64>(v.value())?,
            None => 0,
        } + 1;
        sm_meta.insert(KEY_SNAPSHOT_SEQ, db::encode(&seq)?.as_slice())?;
        // Unique per build even for the same log id, because a receiver
        // assembles chunks by snapshot id.
        let snapshot_id = match &last_applied {
            Some(l) => format!("{}-{}-{seq}", l.leader_id, l.index),
            None => format!("--{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership,
            snapshot_id,
        };
        let mut snapshot = txn.open_table(SNAPSHOT)?;
        let current: Option<SnapshotMeta<u64, BasicNode>> = match snapshot.get(KEY_SNAPSHOT_META)? {
            Some(v) => Some(db::decode(v.value())?),
            None => None,
        };
        // A snapshot installed from the leader while this one was being
        // built may be newer; never replace it with an older one.
        if current.is_none_or(|c| c.last_log_id <= meta.last_log_id) {
            snapshot.insert(KEY_SNAPSHOT_META, db::encode(&meta)?.as_slice())?;
            snapshot.insert(KEY_SNAPSHOT_DATA, data.as_slice())?;
        }
        meta
    };
    txn.commit()?;
    tracing::info!(snapshot = %meta, bytes = data.len(), "built state-machine snapshot");
    Ok(Snapshot {
        meta,
        snapshot: Box::new(Cursor::new(data)),
    })
}

/// Replaces the whole state machine with a snapshot and makes it the
/// current snapshot, in one write transaction.
pub(super) fn install_snapshot(
    db: &Database,
    meta: &SnapshotMeta<u64, BasicNode>,
    data: Vec<u8>,
) -> Result<(), DbError> {
    let blob: SnapshotBlob = db::decode(&data)?;
    if blob.format != SNAPSHOT_FORMAT {
        return Err(DbError::Inconsistent(format!(
            "snapshot format {} is not the supported {SNAPSHOT_FORMAT}",
            blob.format
        )));
    }
    let txn = db.begin_write()?;
    {
        txn.delete_table(ROOMS)?;
        txn.delete_table(ROOM_SLUGS)?;
        txn.delete_table(MESSAGES)?;
        txn.delete_table(CHAT_IDEMPOTENCY)?;
        txn.delete_table(MEDIA_NODES)?;
        txn.delete_table(DOCS)?;
        let mut docs = txn.open_table(DOCS)?;
        for (k, v) in &blob.docs {
            docs.insert(k.as_slice(), v.as_slice())?;
        }
        let mut media_nodes = txn.open_table(MEDIA_NODES)?;
        for n in &blob.media_nodes {
            media_nodes.insert(n.info.node_id.0, db::encode(n)?.as_slice())?;
        }
        let mut rooms = txn.open_table(ROOMS)?;
        let mut slugs = txn.open_table(ROOM_SLUGS)?;
        for room in &blob.rooms {
            rooms.insert(room.id.0, db::encode(room)?.as_slice())?;
            slugs.insert(room.slug.as_str(), room.id.0)?;
        }
        let mut messages = txn.open_table(MESSAGES)?;
        let mut idempotency = txn.open_table(CHAT_IDEMPOTENCY)?;
        for m in &blob.messages {
            messages.insert((m.room_id.0, m.id.0), db::encode(m)?.as_slice())?;
            if let Some(client_id) = &m.client_msg_id {
                idempotency.insert(
                    (m.room_id.0, m.participant_id.as_str(), client_id.as_str()),
                    m.id.0,
                )?;
            }
        }
        let mut sm_meta = txn.open_table(SM_META)?;
        sm_meta.insert(KEY_LAST_APPLIED, db::encode(&meta.last_log_id)?.as_slice())?;
        sm_meta.insert(
            KEY_LAST_MEMBERSHIP,
            db::encode(&meta.last_membership)?.as_slice(),
        )?;
        match &blob.signing_key {
            Some(key) => sm_meta.insert(KEY_SIGNING_KEY, key.as_slice())?,
            None => sm_meta.remove(KEY_SIGNING_KEY)?,
        };
        match blob.next_id {
            Some(n) => sm_meta.insert(KEY_NEXT_ID, db::encode(&n)?.as_slice())?,
            None => sm_meta.remove(KEY_NEXT_ID)?,
        };
        let mut snapshot = txn.open_table(SNAPSHOT)?;
        snapshot.insert(KEY_SNAPSHOT_META, db::encode(meta)?.as_slice())?;
        snapshot.insert(KEY_SNAPSHOT_DATA, data.as_slice())?;
    }
    txn.commit()?;
    tracing::info!(
        snapshot = %meta,
        rooms = blob.rooms.len(),
        messages = blob.messages.len(),
        "installed state-machine snapshot"
    );
    Ok(())
}

/// Reads the current snapshot, if one was built or installed.
pub(super) fn current_snapshot(db: &Database) -> Result<Option<Snapshot<TypeConfig>>, DbError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(SNAPSHOT)?;
    let (Some(meta), Some(data)) = (table.get(KEY_SNAPSHOT_META)?, table.get(KEY_SNAPSHOT_DATA)?)
    else {
        return Ok(None);
    };
    Ok(Some(Snapshot {
        meta: db::decode(meta.value())?,
        snapshot: Box::new(Cursor::new(data.value().to_vec())),
    }))
}
