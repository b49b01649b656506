//! The replicated state machine on redb: rooms, chat history, the join-token
//! signing key, and snapshots of all of it.
//!
//! The state is persistent: every apply batch commits its changes together
//! with `last_applied` in one redb write transaction, so after a crash the
//! tables and `last_applied` agree and openraft re-applies exactly the
//! entries after it. Snapshots are therefore only needed to bring a lagging
//! or new follower up to date and to let the log be purged, not to recover
//! this node.

use super::db::{
    self, Db, DbError, CHAT_IDEMPOTENCY, DOCS, KEY_LAST_APPLIED, KEY_LAST_MEMBERSHIP, KEY_NEXT_ID,
    KEY_SIGNING_KEY, MEDIA_NODES, MESSAGES, ROOMS, ROOM_SLUGS, SM_META,
};
use super::model::{
    Command, CommandError, CommandOutput, CommandResult, MediaNodeRecord, NewRoom, Room,
};
use super::queries::{read_applied_state, AppliedState};
use super::snapshot::{build_snapshot, current_snapshot, install_snapshot};
use super::types::{ApplyResponse, TypeConfig};
use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use redb::{Database, ReadableDatabase, ReadableTable, Table};
use std::io::Cursor;
use veche_protocol::chat::ChatMessage;
use veche_protocol::{MessageId, RoomId};

type StorageResult<T> = Result<T, StorageError<u64>>;

/// The Raft state machine. Cloning is cheap; clones share the database and
/// serve as snapshot builders.
#[derive(Clone)]
pub struct StateMachine {
    db: Db,
}

impl StateMachine {
    pub(crate) fn new(db: Db) -> Self {
        StateMachine { db }
    }
}

/// The state-machine tables an apply batch writes, opened once per batch.
struct ApplyTables<'txn> {
    rooms: Table<'txn, u64, &'static [u8]>,
    slugs: Table<'txn, &'static str, u64>,
    messages: Table<'txn, (u64, u64), &'static [u8]>,
    idempotency: Table<'txn, (u64, &'static str, &'static str), u64>,
    meta: Table<'txn, &'static str, &'static [u8]>,
    media_nodes: Table<'txn, u64, &'static [u8]>,
    docs: Table<'txn, &'static [u8], &'static [u8]>,
}

/// Allocates the id of a new room or message applied at log `index`.
///
/// Ids used to be the log index itself, which gives one id per entry; a
/// [`Command::Batch`] entry creates many. So ids come from a counter that
/// never goes below the entry's index: unique, increasing in commit order,
/// and above every id handed out before the counter existed (those were
/// indexes of earlier entries). The counter is written in the same
/// transaction and travels in snapshots, so replicas and replays agree.
fn allocate_id(t: &mut ApplyTables<'_>, index: u64) -> Result<u64, DbError> {
    let stored = match t.meta.get(KEY_NEXT_ID)? {
        Some(v) => db::decode::<u64>(v.value())?,
        None => 0,
    };
    let id = stored.max(index);
    t.meta
        .insert(KEY_NEXT_ID, db::encode(&(id + 1))?.as_slice())?;
    Ok(id)
}

/// Applies one command at log index `index`. A refusal is a deterministic
/// `Ok(Err(..))`; `Err` is reserved for storage failures.
fn apply_command(
    t: &mut ApplyTables<'_>,
    index: u64,
    cmd: Command,
) -> Result<CommandResult, DbError> {
    match cmd {
        Command::Batch(cmds) => {
            let mut results = Vec::with_capacity(cmds.len());
            for cmd in cmds {
                // Nesting is never proposed; refusing it keeps the
                // recursion one level deep whatever arrives.
                if matches!(cmd, Command::Batch(_)) {
                    results.push(Err(CommandError::NestedBatch));
                    continue;
                }
                results.push(apply_command(t, index, cmd)?);
            }
            Ok(Ok(CommandOutput::Batch(results)))
        }
        Command::CreateRoom {
            slug,
            name,
            created_at_ms,
            owner,
            owner_key_hash,
            access,
            e2ee,
        } => {
            let new = NewRoom {
                slug,
                name,
                created_at_ms,
                owner,
                owner_key_hash,
                access,
                e2ee,
            };
            let existing = t.slugs.get(new.slug.as_str())?.map(|g| g.value());
            if let Some(id) = existing {
                let stored = t.rooms.get(id)?.ok_or_else(|| {
                    DbError::Inconsistent(format!("slug index points at missing room {id}"))
                })?;
                let room: Room = db::decode(stored.value())?;
                // The proposer's own retry: the same command again.
                if new.is_retry_of(&room) {
                    return Ok(Ok(CommandOutput::Room(room)));
                }
                return Ok(Err(CommandError::SlugTaken));
            }
            let id = allocate_id(t, index)?;
            let room = new.into_room(RoomId(id));
            t.rooms.insert(id, db::encode(&room)?.as_slice())?;
            t.slugs.insert(room.slug.as_str(), id)?;
            super::owned_rooms::index(&mut t.docs, &room)?;
            super::e2ee::on_room_created(&mut t.docs, &room)?;
            Ok(Ok(CommandOutput::Room(room)))
        }
        Command::PostChat {
            room_id,
            participant_id,
            display_name,
            text,
            sent_at_ms,
            client_msg_id,
        } => {
            if t.rooms.get(room_id.0)?.is_none() {
                return Ok(Err(CommandError::NoSuchRoom));
            }
            if let Err(refusal) = super::e2ee::check_chat(&t.docs, room_id, &text)? {
                return Ok(Err(CommandError::E2ee(refusal)));
            }
            if let Some(client_id) = &client_msg_id {
                let existing = t
                    .idempotency
                    .get((room_id.0, participant_id.as_str(), client_id.as_str()))?
                    .map(|g| g.value());
                if let Some(message_id) = existing {
                    let stored = t.messages.get((room_id.0, message_id))?.ok_or_else(|| {
                        DbError::Inconsistent(format!(
                            "idempotency index points at missing message {message_id} in room {room_id}"
                        ))
                    })?;
                    return Ok(Ok(CommandOutput::Chat(db::decode(stored.value())?)));
                }
            }
            let id = allocate_id(t, index)?;
            let message = ChatMessage {
                id: MessageId(id),
                room_id,
                participant_id,
                display_name,
                text,
                sent_at_ms,
                client_msg_id,
            };
            t.messages
                .insert((room_id.0, id), db::encode(&message)?.as_slice())?;
            if let Some(client_id) = &message.client_msg_id {
                t.idempotency.insert(
                    (
                        room_id.0,
                        message.participant_id.as_str(),
                        client_id.as_str(),
                    ),
                    id,
                )?;
            }
            Ok(Ok(CommandOutput::Chat(message)))
        }
        Command::InitSigningKey { pkcs8 } => {
            if let Some(existing) = t.meta.get(KEY_SIGNING_KEY)? {
                return Ok(Ok(CommandOutput::SigningKey(existing.value().to_vec())));
            }
            t.meta.insert(KEY_SIGNING_KEY, pkcs8.as_slice())?;
            Ok(Ok(CommandOutput::SigningKey(pkcs8)))
        }
        Command::RegisterMediaNode { info } => {
            let record = MediaNodeRecord {
                info,
                draining: false,
            };
            t.media_nodes
                .insert(record.info.node_id.0, db::encode(&record)?.as_slice())?;
            Ok(Ok(CommandOutput::MediaNode(record)))
        }
        c @ (Command::Accounts(_)
        | Command::Passes(_)
        | Command::Stats(_)
        | Command::Policies(_)
        | Command::Covers(_)
        | Command::Recordings(_)
        | Command::E2ee(_)) => super::capabilities::apply(&mut t.docs, c),
        Command::SetMediaNodeDraining { node_id, draining } => {
            let stored = t.media_nodes.get(node_id.0)?.map(|v| v.value().to_vec());
            let Some(stored) = stored else {
                return Ok(Err(CommandError::NoSuchMediaNode));
            };
            let mut record: MediaNodeRecord = db::decode(&stored)?;
            if record.draining != draining {
                record.draining = draining;
                t.media_nodes
                    .insert(node_id.0, db::encode(&record)?.as_slice())?;
            }
            Ok(Ok(CommandOutput::MediaNode(record)))
        }
    }
}

/// Applies a batch in one write transaction, `last_applied` included.
fn apply_batch(
    db: &Database,
    entries: Vec<Entry<TypeConfig>>,
) -> Result<Vec<ApplyResponse>, DbError> {
    let mut txn = db.begin_write()?;
    // No fsync of its own: the entries are already durable in the log (in
    // this same file), and the log's next durable commit, or a snapshot's,
    // persists this one too. After a crash the tables and `last_applied`
    // roll back together and openraft re-applies the same entries to the
    // same result. This halves the fsyncs per write.
    txn.set_durability(redb::Durability::None)
        .map_err(|e| DbError::Inconsistent(format!("setting apply durability: {e}")))?;
    let mut responses = Vec::with_capacity(entries.len());
    {
        let mut t = ApplyTables {
            rooms: txn.open_table(ROOMS)?,
            slugs: txn.open_table(ROOM_SLUGS)?,
            messages: txn.open_table(MESSAGES)?,
            idempotency: txn.open_table(CHAT_IDEMPOTENCY)?,
            meta: txn.open_table(SM_META)?,
            media_nodes: txn.open_table(MEDIA_NODES)?,
            docs: txn.open_table(DOCS)?,
        };
        let mut last_applied = None;
        let mut membership = None;
        for entry in entries {
            let log_id = entry.log_id;
            match entry.payload {
                EntryPayload::Blank => responses.push(None),
                EntryPayload::Normal(cmd) => {
                    responses.push(Some(apply_command(&mut t, log_id.index, cmd)?));
                }
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(log_id), m));
                    responses.push(None);
                }
            }
            last_applied = Some(log_id);
        }
        if let Some(last_applied) = last_applied {
            t.meta.insert(
                KEY_LAST_APPLIED,
                db::encode(&Some(last_applied))?.as_slice(),
            )?;
        }
        if let Some(membership) = membership {
            t.meta
                .insert(KEY_LAST_MEMBERSHIP, db::encode(&membership)?.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(responses)
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        self.db
            .blocking(build_snapshot)
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, &e).into())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> StorageResult<AppliedState> {
        let read = || -> Result<_, DbError> {
            let txn = self.db.database().begin_read()?;
            read_applied_state(&txn.open_table(SM_META)?)
        };
        read().map_err(|e| StorageIOError::read_state_machine(&e).into())
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<ApplyResponse>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        tracing::debug!(count = entries.len(), last = %last, "applying entries");
        self.db
            .blocking(move |db| apply_batch(db, entries))
            .await
            .map_err(|e| StorageIOError::apply(last, &e).into())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let owned_meta = meta.clone();
        let data = snapshot.into_inner();
        self.db
            .blocking(move |db| install_snapshot(db, &owned_meta, data))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e).into())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        self.db
            .blocking(current_snapshot)
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, &e).into())
    }
}
