//! [`MemStore`]: the [`Store`] in plain maps behind a mutex.
//!
//! It is the reference for what each [`Command`] means, written as directly
//! as possible and without Raft or disk, and the store for tests that need
//! neither. Nothing survives the value being dropped.

use super::access::DocAccess;
use super::docs::{Docs, MemDocs};
use super::error::StoreError;
use super::model::{
    Command, CommandError, CommandOutput, CommandResult, MediaNodeRecord, NewRoom, Room,
};
use super::seam::{self, HistoryPage, NewMessage, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use veche_protocol::chat::ChatMessage;
use veche_protocol::rpc::MediaNodeInfo;
use veche_protocol::{MessageId, NodeId, RoomId, RoomSlug};

/// The control plane's state in memory.
#[derive(Debug, Default)]
pub struct MemStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The last room or message id handed out; ids start at 1.
    last_id: u64,
    rooms: BTreeMap<RoomId, Room>,
    slugs: HashMap<RoomSlug, RoomId>,
    /// By (room, message id), so a room's history is one range.
    messages: BTreeMap<(RoomId, MessageId), ChatMessage>,
    /// (room, participant, client message id) to message id.
    idempotency: HashMap<(RoomId, String, String), MessageId>,
    signing_key: Option<Vec<u8>>,
    media_nodes: BTreeMap<NodeId, MediaNodeRecord>,
    /// Every document table (`docs.rs`).
    docs: MemDocs,
}

impl State {
    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// A page of `room`'s history; see [`Store::messages`].
    fn history(&self, room: RoomId, before: Option<MessageId>, limit: usize) -> HistoryPage {
        let end = before.unwrap_or(MessageId(u64::MAX));
        let mut older = self
            .messages
            .range((room, MessageId(0))..(room, end))
            .rev()
            .map(|(_, m)| m.clone());
        let mut page: Vec<ChatMessage> = older.by_ref().take(limit).collect();
        let has_more = older.next().is_some();
        page.reverse();
        (page, has_more)
    }

    fn apply(&mut self, cmd: Command) -> CommandResult {
        match cmd {
            Command::Batch(cmds) => Ok(CommandOutput::Batch(
                cmds.into_iter()
                    .map(|c| match c {
                        Command::Batch(_) => Err(CommandError::NestedBatch),
                        c => self.apply(c),
                    })
                    .collect(),
            )),
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
                if let Some(id) = self.slugs.get(&new.slug) {
                    let room = &self.rooms[id];
                    return if new.is_retry_of(room) {
                        Ok(CommandOutput::Room(room.clone()))
                    } else {
                        Err(CommandError::SlugTaken)
                    };
                }
                let room = new.into_room(RoomId(self.next_id()));
                self.slugs.insert(room.slug.clone(), room.id);
                self.rooms.insert(room.id, room.clone());
                super::owned_rooms::index(&mut self.docs, &room)
                    .and_then(|()| super::e2ee::on_room_created(&mut self.docs, &room))
                    .unwrap_or_else(|e| unreachable!("in-memory documents cannot fail: {e}"));
                Ok(CommandOutput::Room(room))
            }
            Command::PostChat {
                room_id,
                participant_id,
                display_name,
                text,
                sent_at_ms,
                client_msg_id,
            } => {
                if !self.rooms.contains_key(&room_id) {
                    return Err(CommandError::NoSuchRoom);
                }
                super::e2ee::check_chat(&self.docs, room_id, &text)
                    .unwrap_or_else(|e| unreachable!("in-memory documents cannot fail: {e}"))?;
                let key = client_msg_id
                    .clone()
                    .map(|c| (room_id, participant_id.as_str().to_owned(), c));
                if let Some(id) = key.as_ref().and_then(|k| self.idempotency.get(k)) {
                    return Ok(CommandOutput::Chat(self.messages[&(room_id, *id)].clone()));
                }
                let message = ChatMessage {
                    id: MessageId(self.next_id()),
                    room_id,
                    participant_id,
                    display_name,
                    text,
                    sent_at_ms,
                    client_msg_id,
                };
                if let Some(k) = key {
                    self.idempotency.insert(k, message.id);
                }
                self.messages.insert((room_id, message.id), message.clone());
                Ok(CommandOutput::Chat(message))
            }
            Command::InitSigningKey { pkcs8 } => Ok(CommandOutput::SigningKey(
                self.signing_key.get_or_insert(pkcs8).clone(),
            )),
            Command::RegisterMediaNode { info } => {
                let record = MediaNodeRecord {
                    info,
                    draining: false,
                };
                self.media_nodes.insert(record.info.node_id, record.clone());
                Ok(CommandOutput::MediaNode(record))
            }
            c @ (Command::Accounts(_)
            | Command::Passes(_)
            | Command::Stats(_)
            | Command::Policies(_)
            | Command::Covers(_)
            | Command::Recordings(_)
            | Command::E2ee(_)) => super::capabilities::apply(&mut self.docs, c)
                .unwrap_or_else(|e| unreachable!("in-memory documents cannot fail: {e}")),
            Command::SetMediaNodeDraining { node_id, draining } => {
                let record = self
                    .media_nodes
                    .get_mut(&node_id)
                    .ok_or(CommandError::NoSuchMediaNode)?;
                record.draining = draining;
                Ok(CommandOutput::MediaNode(record.clone()))
            }
        }
    }
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `cmd`, with the same results as
    /// [`super::RaftStore::write`] on a leader (ids aside: the Raft store
    /// never hands out an id below the log index).
    pub fn write(&self, cmd: Command) -> CommandResult {
        self.state.lock().expect("lock poisoned").apply(cmd)
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().expect("lock poisoned"))
    }
}

impl Store for MemStore {
    async fn create_room_as(&self, room: NewRoom) -> Result<Room, StoreError> {
        seam::room(self.write(Command::create_room(room)))
    }

    async fn room_by_slug(&self, slug: &RoomSlug) -> Result<Option<Room>, StoreError> {
        Ok(self.read(|s| s.slugs.get(slug).map(|id| s.rooms[id].clone())))
    }

    async fn room_by_id(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        Ok(self.read(|s| s.rooms.get(&id).cloned()))
    }

    async fn post_chat(&self, message: NewMessage) -> Result<ChatMessage, StoreError> {
        seam::chat(self.write(message.into_command()))
    }

    async fn messages(
        &self,
        room: RoomId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError> {
        Ok(self.read(|s| s.history(room, before, limit)))
    }

    async fn room_history(
        &self,
        slug: &RoomSlug,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Option<(Room, HistoryPage)>, StoreError> {
        Ok(self.read(|s| {
            let room = s.rooms[s.slugs.get(slug)?].clone();
            let page = s.history(room.id, before, limit);
            Some((room, page))
        }))
    }

    async fn init_signing_key(&self, pkcs8: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        seam::signing_key(self.write(Command::InitSigningKey { pkcs8 }))
    }

    async fn signing_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read(|s| s.signing_key.clone()))
    }

    async fn register_media_node(
        &self,
        info: MediaNodeInfo,
    ) -> Result<MediaNodeRecord, StoreError> {
        seam::media_node(self.write(Command::RegisterMediaNode { info }))
    }

    async fn set_media_node_draining(
        &self,
        node: NodeId,
        draining: bool,
    ) -> Result<MediaNodeRecord, StoreError> {
        seam::media_node(self.write(Command::SetMediaNodeDraining {
            node_id: node,
            draining,
        }))
    }

    async fn media_nodes(&self) -> Result<Vec<MediaNodeRecord>, StoreError> {
        Ok(self.read(|s| s.media_nodes.values().cloned().collect()))
    }
}

impl DocAccess for MemStore {
    async fn commit(&self, cmd: Command) -> Result<CommandResult, StoreError> {
        Ok(self.write(cmd))
    }

    async fn read_docs<T: Send>(
        &self,
        f: impl FnOnce(&dyn Docs) -> Result<T, super::db::DbError> + Send,
    ) -> Result<T, StoreError> {
        Ok(self.read(|s| f(&s.docs))?)
    }
}
