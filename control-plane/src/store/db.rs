//! The one redb file behind the Raft log and the state machine: table
//! layout, value encoding, and the handle the storage components share.
//!
//! # One file, not two
//!
//! The log and the state machine live in the same `raft.redb`. redb allows
//! one write transaction at a time per file, so log appends and applies take
//! turns; at the control plane's write rate (room creation and chat, tens
//! per second) that costs nothing measurable, and one file means one lock,
//! one thing to back up and no way to restore a log without its state
//! machine. If write volume ever grows, splitting the state machine into a
//! second file in the same directory is a local change to [`open`].
//!
//! # Encoding
//!
//! Every value is MessagePack written with `rmp_serde::to_vec_named`, i.e.
//! structs as maps with field names. The compact array form would be
//! smaller, but it silently misreads values when a field is added or
//! skipped (`ChatMessage::client_msg_id` is `skip_serializing_if`), and
//! stored bytes must outlive the code that wrote them.

use redb::{Database, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// Raft log entries by index.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// Log-store metadata: [`KEY_VOTE`], [`KEY_COMMITTED`], [`KEY_LAST_PURGED`].
pub(crate) const LOG_META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_log_meta");
/// Rooms by [`veche_protocol::RoomId`].
pub(crate) const ROOMS: TableDefinition<u64, &[u8]> = TableDefinition::new("sm_rooms");
/// Room id by slug.
pub(crate) const ROOM_SLUGS: TableDefinition<&str, u64> = TableDefinition::new("sm_room_slugs");
/// Chat messages by (room id, message id).
pub(crate) const MESSAGES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("sm_messages");
/// Idempotency index: (room id, participant id, client message id) to
/// message id.
pub(crate) const CHAT_IDEMPOTENCY: TableDefinition<(u64, &str, &str), u64> =
    TableDefinition::new("sm_chat_idempotency");
/// Media-node registrations by [`veche_protocol::NodeId`].
pub(crate) const MEDIA_NODES: TableDefinition<u64, &[u8]> = TableDefinition::new("sm_media_nodes");
/// Every document table (see `docs.rs`), keyed by table name, a zero
/// byte, and the table's own key.
pub(crate) const DOCS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sm_docs");
/// State-machine metadata: [`KEY_LAST_APPLIED`], [`KEY_LAST_MEMBERSHIP`],
/// [`KEY_SIGNING_KEY`], [`KEY_SNAPSHOT_SEQ`].
pub(crate) const SM_META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");
/// The current snapshot: [`KEY_SNAPSHOT_META`] and [`KEY_SNAPSHOT_DATA`].
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_snapshot");

pub(crate) const KEY_VOTE: &str = "vote";
pub(crate) const KEY_COMMITTED: &str = "committed";
pub(crate) const KEY_LAST_PURGED: &str = "last_purged";
pub(crate) const KEY_LAST_APPLIED: &str = "last_applied";
pub(crate) const KEY_LAST_MEMBERSHIP: &str = "last_membership";
/// Raw PKCS#8 bytes, not MessagePack: the key is opaque to the store.
pub(crate) const KEY_SIGNING_KEY: &str = "signing_key";
pub(crate) const KEY_SNAPSHOT_SEQ: &str = "snapshot_seq";
/// The next room or message id (see the state machine's `allocate_id`).
pub(crate) const KEY_NEXT_ID: &str = "next_id";
pub(crate) const KEY_SNAPSHOT_META: &str = "meta";
pub(crate) const KEY_SNAPSHOT_DATA: &str = "data";

/// A failure inside the storage layer. Storage components turn it into
/// openraft's `StorageError` (which stops Raft) and [`super::StoreError`]
/// turns it into something a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// redb failed (I/O, corruption, a transaction that could not start).
    #[error("redb: {0}")]
    Redb(#[from] redb::Error),
    /// A value could not be encoded. Only possible for a bug in a
    /// `Serialize` impl.
    #[error("encoding a stored value: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// Stored bytes did not decode: corruption, or a format written by an
    /// incompatible version.
    #[error("decoding a stored value: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// Stored data contradicts itself (an index entry without its target,
    /// a snapshot of an unknown format).
    #[error("inconsistent stored data: {0}")]
    Inconsistent(String),
    /// The blocking task that ran the transaction panicked or was cancelled.
    #[error("storage task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

// redb's operations return narrower error types; route them all through
// `redb::Error` so `?` works everywhere.
macro_rules! via_redb_error {
    ($($t:ty),*) => {$(
        impl From<$t> for DbError {
            fn from(e: $t) -> Self {
                DbError::Redb(redb::Error::from(e))
            }
        }
    )*};
}
via_redb_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Encodes a stored value; see the module docs for the format.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, DbError> {
    Ok(rmp_serde::to_vec_named(value)?)
}

/// Decodes a stored value written by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DbError> {
    Ok(rmp_serde::from_slice(bytes)?)
}

/// The database as shared by the log store, the state machine and their
/// readers and snapshot builders.
///
/// Besides the database it carries a liveness token: openraft keeps these
/// components in tasks it spawns (the state-machine worker, replication
/// streams, snapshot builds) that end some time after `Raft::shutdown`
/// returns. [`Released::wait`] resolves once every clone is gone, which is
/// when the file can be opened again in the same process.
#[derive(Clone)]
pub(crate) struct Db {
    db: Arc<Database>,
    _in_use: watch::Receiver<()>,
}

impl Db {
    /// The database.
    pub(crate) fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// Runs a blocking closure on tokio's blocking pool with the database.
    ///
    /// Write transactions end in an fsync and wait for redb's single-writer
    /// lock, so they must not run on an async worker thread.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, DbError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db)).await?
    }
}

/// Resolves when every [`Db`] handed out by [`open`] has been dropped.
pub(crate) struct Released(watch::Sender<()>);

impl Released {
    /// Waits until no storage component holds the database any more.
    pub(crate) async fn wait(&self) {
        self.0.closed().await;
    }
}

/// Opens (creating if absent) the redb file at `path` and creates every
/// table, so that read transactions never meet a missing table.
pub(crate) fn open(path: &Path) -> Result<(Db, Released), DbError> {
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    {
        txn.open_table(LOG)?;
        txn.open_table(LOG_META)?;
        txn.open_table(ROOMS)?;
        txn.open_table(ROOM_SLUGS)?;
        txn.open_table(MESSAGES)?;
        txn.open_table(CHAT_IDEMPOTENCY)?;
        txn.open_table(SM_META)?;
        txn.open_table(SNAPSHOT)?;
        txn.open_table(MEDIA_NODES)?;
        txn.open_table(DOCS)?;
    }
    txn.commit()?;
    let (tx, rx) = watch::channel(());
    Ok((
        Db {
            db: Arc::new(db),
            _in_use: rx,
        },
        Released(tx),
    ))
}
