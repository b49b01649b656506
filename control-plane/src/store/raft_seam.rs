//! [`Store`] for [`RaftStore`]: writes commit through the Raft log (batched,
//! see `batcher.rs`), reads confirm leadership with a quorum and then read
//! the applied state. On a follower every method answers
//! [`StoreError::NotLeader`]; forwarding to the leader is `crate::leader`'s.

use super::error::StoreError;
use super::model::{Command, MediaNodeRecord, Room};
use super::queries;
use super::raft_store::RaftStore;
use super::seam::{self, HistoryPage, NewMessage, Store};
use veche_protocol::chat::ChatMessage;
use veche_protocol::rpc::MediaNodeInfo;
use veche_protocol::{MessageId, NodeId, RoomId, RoomSlug, UnixMillis};

impl Store for RaftStore {
    async fn create_room(
        &self,
        slug: RoomSlug,
        name: String,
        created_at_ms: UnixMillis,
    ) -> Result<Room, StoreError> {
        seam::room(
            self.write(Command::CreateRoom {
                slug,
                name,
                created_at_ms,
            })
            .await?,
        )
    }

    async fn room_by_slug(&self, slug: &RoomSlug) -> Result<Option<Room>, StoreError> {
        self.linearize().await?;
        Ok(queries::room_by_slug(&self.db, slug)?)
    }

    async fn room_by_id(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        self.linearize().await?;
        Ok(queries::room_by_id(&self.db, id)?)
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
        self.linearize().await?;
        Ok(queries::messages(&self.db, room, before, limit)?)
    }

    async fn room_history(
        &self,
        slug: &RoomSlug,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Option<(Room, HistoryPage)>, StoreError> {
        self.linearize().await?;
        let Some(room) = queries::room_by_slug(&self.db, slug)? else {
            return Ok(None);
        };
        let page = queries::messages(&self.db, room.id, before, limit)?;
        Ok(Some((room, page)))
    }

    async fn init_signing_key(&self, pkcs8: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        seam::signing_key(self.write(Command::InitSigningKey { pkcs8 }).await?)
    }

    async fn signing_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.linearize().await?;
        Ok(queries::signing_key(&self.db)?)
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
        self.linearize().await?;
        Ok(queries::media_nodes(&self.db)?)
    }
}
