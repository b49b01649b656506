//! [`Store`] for every store that is a Raft log underneath: writes are
//! [`Command`]s through the log, reads run against the applied state after
//! a read barrier. Two views are that: [`RaftStore`] itself (on the
//! leader; writes batched, see `batcher.rs`, and on a follower every method
//! answers [`StoreError::NotLeader`]) and `crate::leader::Replicated` (on
//! any node, forwarding to the leader). They differ only in how they write
//! and how they reach the barrier ([`CommandLog`]), so `Store` is written
//! once here for both.

use super::error::StoreError;
use super::model::{Command, CommandResult, MediaNodeRecord, NewRoom, Room};
use super::raft_store::{LocalReads, RaftStore};
use super::seam::{self, HistoryPage, NewMessage, Store};
use std::future::Future;
use veche_protocol::chat::ChatMessage;
use veche_protocol::rpc::MediaNodeInfo;
use veche_protocol::{MessageId, NodeId, RoomId, RoomSlug};

/// A Raft log as a store needs it: commit a command, make the local state
/// current, read it.
pub trait CommandLog: Send + Sync {
    /// Commits `cmd` and returns what the state machine answered.
    fn write(&self, cmd: Command)
        -> impl Future<Output = Result<CommandResult, StoreError>> + Send;
    /// Returns once the local state holds everything committed before the
    /// call, so that [`CommandLog::local`] reads are linearizable.
    fn barrier(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The applied state of this node, current after a barrier.
    fn local(&self) -> LocalReads<'_>;
}

impl CommandLog for RaftStore {
    async fn write(&self, cmd: Command) -> Result<CommandResult, StoreError> {
        RaftStore::write(self, cmd).await
    }

    async fn barrier(&self) -> Result<(), StoreError> {
        self.linearize().await
    }

    fn local(&self) -> LocalReads<'_> {
        RaftStore::local(self)
    }
}

impl<T: CommandLog> super::access::DocAccess for T {
    async fn commit(&self, cmd: Command) -> Result<CommandResult, StoreError> {
        self.write(cmd).await
    }

    async fn read_docs<R: Send>(
        &self,
        f: impl FnOnce(&dyn super::docs::Docs) -> Result<R, super::db::DbError> + Send,
    ) -> Result<R, StoreError> {
        self.barrier().await?;
        self.local().docs(f)
    }
}

impl<T: CommandLog> Store for T {
    async fn create_room_as(&self, room: NewRoom) -> Result<Room, StoreError> {
        seam::room(self.write(Command::create_room(room)).await?)
    }

    async fn room_by_slug(&self, slug: &RoomSlug) -> Result<Option<Room>, StoreError> {
        self.barrier().await?;
        self.local().room_by_slug(slug)
    }

    async fn room_by_id(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        self.barrier().await?;
        self.local().room_by_id(id)
    }

    async fn post_chat(&self, message: NewMessage) -> Result<ChatMessage, StoreError> {
        seam::chat(self.write(message.into_command()).await?)
    }

    async fn messages(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError> {
        self.barrier().await?;
        self.local().messages(room, before, limit)
    }

    async fn room_history(
        &self,
        slug: &RoomSlug,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Option<(Room, HistoryPage)>, StoreError> {
        self.barrier().await?;
        let local = self.local();
        let Some(room) = local.room_by_slug(slug)? else {
            return Ok(None);
        };
        let page = local.messages(room.id, before, limit)?;
        Ok(Some((room, page)))
    }

    async fn init_signing_key(&self, pkcs8: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        seam::signing_key(self.write(Command::InitSigningKey { pkcs8 }).await?)
    }

    async fn signing_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.barrier().await?;
        self.local().signing_key()
    }

    async fn register_media_node(
        &self,
        info: MediaNodeInfo,
    ) -> Result<MediaNodeRecord, StoreError> {
        seam::media_node(self.write(Command::RegisterMediaNode { info }).await?)
    }

    async fn set_media_node_draining(
        &self,
        node: NodeId,
        draining: bool,
    ) -> Result<MediaNodeRecord, StoreError> {
        seam::media_node(
            self.write(Command::SetMediaNodeDraining {
                node_id: node,
                draining,
            })
            .await?,
        )
    }

    async fn media_nodes(&self) -> Result<Vec<MediaNodeRecord>, StoreError> {
        self.barrier().await?;
        self.local().media_nodes()
    }
}
