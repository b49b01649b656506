//! [`RaftStore`]: one Raft node over redb, and what the control plane does
//! with it besides the [`super::Store`] methods (`raft_seam.rs`): forming
//! and changing the cluster, the read index for follower reads, local
//! reads, leadership and shutdown.

use super::batcher::{run_batcher, PendingWrite, BATCHES_IN_FLIGHT, MAX_BATCH};
use super::db::{self, Released};
use super::deadline::with_deadline;
use super::error::StoreError;
use super::log_store::LogStore;
use super::model::{Command, CommandResult, MediaNodeRecord, Room};
use super::network::HttpNetworkFactory;
use super::queries;
use super::state_machine::StateMachine;
use super::types::Raft;
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, ServerState, SnapshotPolicy};
use redb::Database;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use veche_protocol::chat::ChatMessage;
use veche_protocol::{MessageId, RoomId, RoomSlug};

/// File name of the Raft log and state machine inside the data directory.
pub const DB_FILE_NAME: &str = "raft.redb";

/// How long [`RaftStore::initialize_single_if_new`] waits for a sole voter
/// to become leader. Election takes at most the leader lease plus
/// `election_timeout_max` (1.4 s in [`default_raft_config`]) plus an fsync
/// or two.
const LEADER_WAIT: Duration = Duration::from_secs(10);

pub use super::deadline::REQUEST_TIMEOUT;

/// Deadline for one membership step (a learner catching up, or a joint
/// consensus round).
pub const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`RaftStore::shutdown`] waits for openraft's tasks to let go of
/// the database file.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// The Raft timing and snapshot settings for a control-plane cluster.
///
/// Control-plane nodes sit on one LAN (or a few low-latency links), so the
/// timers are far shorter than openraft's WAN-friendly defaults would
/// suggest for a production service, yet long enough to ride out an fsync
/// stall:
///
/// - `heartbeat_interval` 100 ms: how often the leader tells followers it
///   is alive. It is also openraft's timeout for one AppendEntries RPC,
///   which on a LAN with an fsync at the far end is still ample.
/// - `election_timeout_min`/`max` 400/700 ms. openraft 0.9 makes a follower
///   wait for the leader lease (`election_timeout_max`) *plus* a random
///   election timeout after the last heartbeat before it campaigns, so a
///   dead leader is replaced 1.1 to 1.4 s after its last heartbeat: inside
///   the 2 s the product promises, while seven missed heartbeats in a row
///   are needed before a healthy leader is disturbed by a slow disk or a
///   pause.
/// - `install_snapshot_timeout` 5000 ms per chunk and `snapshot_max_chunk_size`
///   1 MiB: a chunk travels as up to 2 MiB of MessagePack, which must fit
///   the HTTP body limit ([`super::network::MAX_RAFT_BODY_BYTES`]) and
///   arrive before the timeout on a slow link.
/// - `snapshot_policy` `LogsSinceLast(20000)`: a snapshot every 20000
///   entries, after which the log is purged down to the last
///   `max_in_snapshot_log_to_keep` (1000) entries. The state machine is
///   itself durable, so snapshots only serve lagging or new followers and
///   log purging; a snapshot serializes the whole state (chat history
///   included), so building one every 5000 entries (openraft's default)
///   would spend more on snapshots than on the writes at a busy time.
pub fn default_raft_config() -> openraft::Config {
    openraft::Config {
        cluster_name: "veche".to_owned(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 700,
        install_snapshot_timeout: 5000,
        snapshot_max_chunk_size: 1 << 20,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(20_000),
        max_in_snapshot_log_to_keep: 1000,
        ..Default::default()
    }
}

/// Opens (creating if absent) a redb file and returns the Raft log store
/// and state machine over it, unconnected to any Raft instance. This is
/// what [`RaftStore::open`] builds on; it is public for storage tests such
/// as openraft's conformance suite.
pub fn open_storage(path: &Path) -> Result<(LogStore, StateMachine), StoreError> {
    let (db, _released) = db::open(path)?;
    Ok((LogStore::new(db.clone()), StateMachine::new(db)))
}

/// The control plane's replicated store: one Raft node plus read access to
/// its state machine.
///
/// Writes go through Raft ([`RaftStore::write`]); reads (the
/// [`super::Store`] methods) first confirm leadership with a quorum
/// ([`openraft::Raft::ensure_linearizable`]) and then read the locally
/// applied state, so a read never misses a write that was acknowledged
/// before it started.
pub struct RaftStore {
    /// The running Raft node. It owns the log store and the state machine.
    raft: Raft,
    /// Read-only access to the state-machine tables. redb readers see the
    /// last committed transaction and never block the writer.
    pub(super) db: Arc<Database>,
    /// Resolves once openraft's tasks have dropped their storage handles.
    released: Released,
    /// This node's Raft id.
    node_id: u64,
    /// This node's base URL, as other nodes should reach it.
    advertise_addr: String,
    /// Queue of the write batcher ([`RaftStore::write`]).
    writes: mpsc::Sender<PendingWrite>,
}

impl RaftStore {
    /// Opens (creating if absent) `<data_dir>/raft.redb` and starts the Raft
    /// node `node_id`, which other nodes reach at `advertise_addr`
    /// (`http://host:port`, where [`super::network::raft_router`] is served).
    ///
    /// The node starts uninitialized (if new) or with its stored state (on a
    /// restart); see [`RaftStore::initialize_single_if_new`].
    pub async fn open(
        node_id: u64,
        advertise_addr: String,
        data_dir: &Path,
        config: openraft::Config,
    ) -> Result<Self, StoreError> {
        let network = HttpNetworkFactory::new(node_id);
        Self::open_with_network(node_id, advertise_addr, data_dir, config, network).await
    }

    /// [`RaftStore::open`] with a configured RPC client, e.g. one that
    /// presents the cluster secret
    /// ([`HttpNetworkFactory::with_bearer_token`]).
    pub async fn open_with_network(
        node_id: u64,
        advertise_addr: String,
        data_dir: &Path,
        config: openraft::Config,
        network: HttpNetworkFactory,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let config = Arc::new(config.validate()?);
        let path = data_dir.join(DB_FILE_NAME);
        let (db, released) = db::open(&path)?;
        let read_handle = Arc::clone(db.database());
        let log_store = LogStore::new(db.clone());
        let state_machine = StateMachine::new(db);
        let raft = Raft::new(node_id, config, network, log_store, state_machine).await?;
        tracing::info!(node_id, %advertise_addr, path = %path.display(), "raft store open");
        let (writes, queue) = mpsc::channel(MAX_BATCH * BATCHES_IN_FLIGHT);
        tokio::spawn(run_batcher(raft.clone(), queue));
        Ok(RaftStore {
            raft,
            db: read_handle,
            released,
            node_id,
            advertise_addr,
            writes,
        })
    }

    /// Makes this node a one-voter cluster if it has never been part of one,
    /// then, if it is the only voter, waits until it is leader so that a
    /// write right after succeeds.
    ///
    /// Idempotent across restarts: a node with any stored vote or log entry
    /// is initialized already and is never re-initialized, which would
    /// otherwise be able to fork a multi-node cluster's history. A restarted
    /// member of a multi-node cluster does not wait for a leader, because
    /// that needs other nodes.
    pub async fn initialize_single_if_new(&self) -> Result<(), StoreError> {
        let members = BTreeMap::from([(self.node_id, self.advertise_addr.clone())]);
        self.initialize_if_new(members).await
    }

    /// Forms a cluster of `members` (id to base URL, this node included) if
    /// this node has never been part of one. Every initial member may call
    /// this with the same list: openraft treats identical initializations
    /// as one. A different list on different nodes would split the
    /// cluster, which is why the list comes from one operator-written
    /// `--peers` value. If this node ends up the only voter it waits to be
    /// leader, as [`RaftStore::initialize_single_if_new`] describes.
    pub async fn initialize_if_new(
        &self,
        members: BTreeMap<u64, String>,
    ) -> Result<(), StoreError> {
        if self.raft.is_initialized().await? {
            tracing::info!(node_id = self.node_id, "raft already initialized");
        } else {
            let n = members.len();
            let members: BTreeMap<u64, BasicNode> = members
                .into_iter()
                .map(|(id, addr)| (id, BasicNode::new(addr)))
                .collect();
            match self.raft.initialize(members).await {
                Ok(()) => tracing::info!(
                    node_id = self.node_id,
                    voters = n,
                    "initialized raft cluster"
                ),
                // Raced with another initialization or an incoming vote.
                Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                    tracing::info!(node_id = self.node_id, reason = %e, "raft initialization not needed");
                }
                Err(RaftError::APIError(InitializeError::NotInMembers(e))) => {
                    return Err(StoreError::Inconsistent(e.to_string()))
                }
                Err(RaftError::Fatal(f)) => return Err(StoreError::from(f)),
            }
        }

        // Ask the Raft core, not the metrics: metrics are published
        // asynchronously and may not show the membership just initialized.
        let id = self.node_id;
        let sole_voter = self
            .raft
            .with_raft_state(move |st| {
                st.membership_state
                    .effective()
                    .voter_ids()
                    .eq(std::iter::once(id))
            })
            .await?;
        if sole_voter {
            // Wait for the `Leader` state itself, which is what
            // `client_write` checks, not merely for a known leader id.
            self.raft
                .wait(Some(LEADER_WAIT))
                .metrics(
                    |m| m.state == ServerState::Leader && m.current_leader == Some(id),
                    "sole voter becomes leader",
                )
                .await
                .map_err(|e| StoreError::Unavailable {
                    reason: format!("this node did not become leader: {e}"),
                })?;
        }
        Ok(())
    }

    /// Proposes `cmd` and returns the state machine's result once it is
    /// committed and applied. Concurrent writes share log entries (see
    /// `batcher.rs`). On a follower this returns
    /// [`StoreError::NotLeader`]; forwarding is the caller's business.
    pub async fn write(&self, cmd: Command) -> Result<CommandResult, StoreError> {
        let (reply, result) = oneshot::channel();
        self.writes
            .send((cmd, reply))
            .await
            .map_err(|_| StoreError::Unavailable {
                reason: "the write batcher has stopped".into(),
            })?;
        result.await.map_err(|_| StoreError::Unavailable {
            reason: "the write batcher dropped a write".into(),
        })?
    }

    /// Confirms leadership with a quorum and waits until everything
    /// committed before this call is applied locally.
    pub(super) async fn linearize(&self) -> Result<(), StoreError> {
        with_deadline(self.raft.ensure_linearizable()).await??;
        Ok(())
    }

    /// The leader as this node knows it: id and base URL. `None` during an
    /// election, or when the leader's address is not in the membership.
    pub fn leader(&self) -> Option<(u64, String)> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
        Some((id, addr))
    }

    /// Whether this node believes it is the leader right now. A belief, not
    /// a guarantee: a partitioned old leader believes it until it hears of a
    /// newer term. Writes and reads confirm it with a quorum.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The current Raft term as this node knows it.
    pub fn current_term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// Base URLs of every member (voters and learners), by id.
    pub fn member_addrs(&self) -> BTreeMap<u64, String> {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect()
    }

    /// On the leader: confirms leadership with a quorum and returns the log
    /// index a linearizable read must wait for (the "read index"). A
    /// follower obtains it from the leader, waits until it has applied that
    /// far ([`RaftStore::wait_applied`]) and then reads its own state:
    /// linearizable reads without sending the data through the leader.
    pub async fn read_index(&self) -> Result<u64, StoreError> {
        let (read_log_id, _applied) = with_deadline(self.raft.get_read_log_id()).await??;
        Ok(read_log_id.map_or(0, |l| l.index))
    }

    /// Waits until this node has applied the entry at `index`, or `timeout`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), StoreError> {
        if index == 0 {
            return Ok(());
        }
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "read index applied")
            .await
            .map(|_| ())
            .map_err(|e| match e {
                openraft::metrics::WaitError::Timeout(..) => StoreError::Timeout { timeout },
                openraft::metrics::WaitError::ShuttingDown => StoreError::Unavailable {
                    reason: "raft is shutting down".into(),
                },
            })
    }

    /// Reads of this node's applied state with no leadership check: current
    /// only after a read barrier (see [`RaftStore::read_index`]), or for
    /// data that never changes once written (the signing key).
    pub fn local(&self) -> LocalReads<'_> {
        LocalReads { db: &self.db }
    }

    /// On the leader: adds `id` at `addr` as a learner, waits until it has
    /// caught up with the log, then makes it a voter. Idempotent: adding a
    /// node that is already a voter at the same address succeeds at once.
    pub async fn add_voter(&self, id: u64, addr: String) -> Result<(), StoreError> {
        let node = BasicNode::new(&addr);
        // Catching up may take longer than one request deadline when the
        // new node starts from nothing; the learner step has its own.
        tokio::time::timeout(MEMBERSHIP_TIMEOUT, self.raft.add_learner(id, node, true))
            .await
            .map_err(|_| StoreError::Timeout {
                timeout: MEMBERSHIP_TIMEOUT,
            })??;
        self.change_membership(openraft::ChangeMembers::AddVoterIds(
            std::collections::BTreeSet::from([id]),
        ))
        .await
    }

    /// On the leader: removes `id` from the voters and from the cluster.
    pub async fn remove_member(&self, id: u64) -> Result<(), StoreError> {
        self.change_membership(openraft::ChangeMembers::RemoveVoters(
            std::collections::BTreeSet::from([id]),
        ))
        .await
    }

    /// One joint-consensus membership change, bounded by
    /// [`MEMBERSHIP_TIMEOUT`]. Nodes leaving the voters leave the cluster
    /// too (`retain = false`).
    async fn change_membership(
        &self,
        change: openraft::ChangeMembers<u64, BasicNode>,
    ) -> Result<(), StoreError> {
        tokio::time::timeout(
            MEMBERSHIP_TIMEOUT,
            self.raft.change_membership(change, false),
        )
        .await
        .map_err(|_| StoreError::Timeout {
            timeout: MEMBERSHIP_TIMEOUT,
        })??;
        Ok(())
    }

    /// The Raft node, for membership changes, metrics and the RPC router.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// This node's Raft id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Stops the Raft node and waits until its tasks have released the
    /// database, so that after this store is dropped the same directory can
    /// be opened again, even within the same process.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| StoreError::Unavailable {
                reason: format!("raft task failed while shutting down: {e}"),
            })?;
        tokio::time::timeout(RELEASE_WAIT, self.released.wait())
            .await
            .map_err(|_| StoreError::Unavailable {
                reason: format!(
                    "raft tasks still hold the database {} after {RELEASE_WAIT:?}",
                    DB_FILE_NAME
                ),
            })?;
        tracing::info!(node_id = self.node_id, "raft store shut down");
        Ok(())
    }
}

/// Queries of this node's applied state; see [`RaftStore::local`].
pub struct LocalReads<'a> {
    db: &'a Database,
}

impl LocalReads<'_> {
    /// The room with this slug, if any.
    pub fn room_by_slug(&self, slug: &RoomSlug) -> Result<Option<Room>, StoreError> {
        Ok(queries::room_by_slug(self.db, slug)?)
    }

    /// The room with this id, if any.
    pub fn room_by_id(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        Ok(queries::room_by_id(self.db, id)?)
    }

    /// A page of chat history; see [`super::Store::messages`].
    pub fn messages(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<(Vec<ChatMessage>, bool), StoreError> {
        Ok(queries::messages(self.db, room, before, limit)?)
    }

    /// The join-token signing key, if installed.
    pub fn signing_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(queries::signing_key(self.db)?)
    }

    /// Every registered media node, with its drain flag.
    pub fn media_nodes(&self) -> Result<Vec<MediaNodeRecord>, StoreError> {
        Ok(queries::media_nodes(self.db)?)
    }

    /// Runs `f` on the document tables in one read transaction.
    pub fn docs<T>(
        &self,
        f: impl FnOnce(&dyn super::docs::Docs) -> Result<T, super::db::DbError>,
    ) -> Result<T, StoreError> {
        let read = || {
            let txn = redb::ReadableDatabase::begin_read(self.db)?;
            let table = txn.open_table(super::db::DOCS)?;
            f(&table)
        };
        Ok(read()?)
    }
}

/// `RaftStore` is used from many tasks; keep it shareable.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RaftStore>();
};
