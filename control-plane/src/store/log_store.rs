//! The Raft log on redb: entries, vote, committed and last-purged log ids.

use super::db::{self, Db, DbError, KEY_COMMITTED, KEY_LAST_PURGED, KEY_VOTE, LOG, LOG_META};
use super::types::TypeConfig;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};
use redb::{ReadableDatabase, ReadableTable};
use std::fmt::Debug;
use std::ops::RangeBounds;

type StorageResult<T> = Result<T, StorageError<u64>>;

/// The Raft log store.
///
/// Every mutating method commits its redb write transaction (fsync'd,
/// redb's default durability) before it returns or reports the flush, which
/// is what Raft's safety depends on: a vote or an acknowledged entry must
/// survive a crash. Cloning is cheap; clones share the database and serve as
/// the log readers of replication streams.
#[derive(Clone)]
pub struct LogStore {
    db: Db,
}

impl LogStore {
    pub(crate) fn new(db: Db) -> Self {
        LogStore { db }
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DbError> {
        let txn = self.db.database().begin_read()?;
        let table = txn.open_table(LOG_META)?;
        match table.get(key)? {
            Some(v) => Ok(Some(db::decode(v.value())?)),
            None => Ok(None),
        }
    }

    async fn write_meta<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: &T,
    ) -> Result<(), DbError> {
        let bytes = db::encode(value)?;
        self.db
            .blocking(move |db| {
                let txn = db.begin_write()?;
                txn.open_table(LOG_META)?.insert(key, bytes.as_slice())?;
                txn.commit()?;
                Ok(())
            })
            .await
    }

    fn last_purged(&self) -> Result<Option<LogId<u64>>, DbError> {
        self.read_meta(KEY_LAST_PURGED)
    }

    fn last_entry_id(&self) -> Result<Option<LogId<u64>>, DbError> {
        let txn = self.db.database().begin_read()?;
        let table = txn.open_table(LOG)?;
        let last = match table.last()? {
            Some((_, v)) => Some(db::decode::<Entry<TypeConfig>>(v.value())?.log_id),
            None => None,
        };
        Ok(last)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let read = || -> Result<Vec<Entry<TypeConfig>>, DbError> {
            let txn = self.db.database().begin_read()?;
            let table = txn.open_table(LOG)?;
            let mut out = Vec::new();
            for item in table.range::<u64>(range.clone())? {
                let (_, v) = item?;
                out.push(db::decode(v.value())?);
            }
            Ok(out)
        };
        read().map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id = self
            .last_purged()
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let last_log_id = self
            .last_entry_id()
            .map_err(|e| StorageIOError::read_logs(&e))?
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> StorageResult<()> {
        self.write_meta(KEY_VOTE, vote)
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<u64>>> {
        self.read_meta(KEY_VOTE)
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    /// Persisted so that a restarted node can re-apply committed entries
    /// before it hears from a leader.
    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> StorageResult<()> {
        self.write_meta(KEY_COMMITTED, &committed)
            .await
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<u64>>> {
        // Stored as `Option<LogId>`; a missing key is the same as `None`.
        self.read_meta::<Option<LogId<u64>>>(KEY_COMMITTED)
            .map(Option::flatten)
            .map_err(|e| StorageIOError::read(&e).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded = entries
            .into_iter()
            .map(|e| db::encode(&e).map(|bytes| (e.log_id.index, bytes)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.db
            .blocking(move |db| {
                let txn = db.begin_write()?;
                {
                    let mut table = txn.open_table(LOG)?;
                    for (index, bytes) in &encoded {
                        table.insert(*index, bytes.as_slice())?;
                    }
                }
                txn.commit()?;
                Ok(())
            })
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        // The transaction is committed, hence on disk: report the flush.
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        tracing::debug!(%log_id, "truncating raft log");
        self.db
            .blocking(move |db| {
                let txn = db.begin_write()?;
                txn.open_table(LOG)?
                    .retain_in(log_id.index.., |_, _| false)?;
                txn.commit()?;
                Ok(())
            })
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        tracing::debug!(%log_id, "purging raft log");
        let purged = db::encode(&log_id).map_err(|e| StorageIOError::write_logs(&e))?;
        self.db
            .blocking(move |db| {
                let txn = db.begin_write()?;
                // Record the purge point in the same transaction as the
                // deletion, so a crash never leaves a hole that
                // `get_log_state` cannot explain.
                txn.open_table(LOG_META)?
                    .insert(KEY_LAST_PURGED, purged.as_slice())?;
                txn.open_table(LOG)?
                    .retain_in(..=log_id.index, |_, _| false)?;
                txn.commit()?;
                Ok(())
            })
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
