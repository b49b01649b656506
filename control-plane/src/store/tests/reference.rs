//! The redb state machine agrees with [`MemStore`], the reference, on a
//! long pseudo-random sequence of commands: the same results (ids compared
//! by creation order, since the Raft store never hands out an id below the
//! log index) and the same state at the end.

use super::*;
use crate::store::MemStore;
use std::collections::HashMap;
use veche_protocol::pass::RoomAccess;
use veche_protocol::rpc::MediaNodeInfo;
use veche_protocol::{MessageId, NodeId, UserId};

/// A small deterministic generator (xorshift64), so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A command over small value sets, so that slugs collide, idempotency
/// keys repeat, rooms and nodes are sometimes unknown, and batches occur.
/// Rooms are named by creation order; `rooms` maps that to a store's ids.
fn command(rng: &mut Rng, rooms: &[RoomId], depth: u8) -> Command {
    match rng.below(if depth == 0 { 12 } else { 11 }) {
        0..=1 => Command::create_room(NewRoom {
            owner: [None, Some(UserId(1))][rng.below(2) as usize],
            access: [RoomAccess::Open, RoomAccess::SignedInOrPass][rng.below(2) as usize],
            // Encrypted rooms refuse the (unsealed) chat below in both.
            e2ee: rng.below(3) == 0,
            ..NewRoom::open(
                slug(rng.below(6) as u8),
                ["standup", "retro"][rng.below(2) as usize].to_owned(),
                1_000 + rng.below(2),
            )
        }),
        2..=6 => {
            let nth = rng.below(rooms.len() as u64 + 1) as usize;
            let room = rooms.get(nth).copied().unwrap_or(RoomId(u64::MAX - 1));
            let key = rng.below(5);
            post(
                room,
                &participant(rng.below(3) as u8),
                &format!("t{}", rng.below(4)),
                (key < 3).then(|| format!("k{key}")).as_deref(),
            )
        }
        7 => Command::InitSigningKey {
            pkcs8: vec![rng.below(3) as u8; 8],
        },
        8 => Command::RegisterMediaNode {
            info: MediaNodeInfo {
                node_id: NodeId(rng.below(3)),
                region: "eu".into(),
                ws_url: format!("wss://m{}/media/ws", rng.below(2)),
                capacity: 10,
                relay_addr: None,
            },
        },
        9..=10 => Command::SetMediaNodeDraining {
            node_id: NodeId(rng.below(4)),
            draining: rng.below(2) == 0,
        },
        _ => Command::Batch(
            (0..1 + rng.below(4))
                .map(|_| command(rng, rooms, depth + 1))
                .collect(),
        ),
    }
}

/// Ids in creation order, per store.
#[derive(Default)]
struct Ordinals {
    of: HashMap<u64, u64>,
    rooms: Vec<RoomId>,
}

impl Ordinals {
    fn ordinal(&mut self, id: u64) -> u64 {
        let next = self.of.len() as u64;
        *self.of.entry(id).or_insert(next)
    }

    /// `result` with every id replaced by its ordinal; new rooms are
    /// remembered.
    fn normalize(&mut self, result: CommandResult) -> CommandResult {
        result.map(|out| match out {
            CommandOutput::Room(mut r) => {
                if !self.of.contains_key(&r.id.0) {
                    self.rooms.push(r.id);
                }
                r.id = RoomId(self.ordinal(r.id.0));
                CommandOutput::Room(r)
            }
            CommandOutput::Chat(mut m) => {
                m.id = MessageId(self.ordinal(m.id.0));
                m.room_id = RoomId(self.ordinal(m.room_id.0));
                CommandOutput::Chat(m)
            }
            CommandOutput::Batch(results) => {
                CommandOutput::Batch(results.into_iter().map(|r| self.normalize(r)).collect())
            }
            other => other,
        })
    }

    fn history(&mut self, page: Vec<ChatMessage>) -> Vec<ChatMessage> {
        page.into_iter()
            .map(|m| match self.normalize(Ok(CommandOutput::Chat(m))) {
                Ok(CommandOutput::Chat(m)) => m,
                other => unreachable!("{other:?}"),
            })
            .collect()
    }
}

#[tokio::test]
async fn the_redb_state_machine_agrees_with_the_mem_store_on_random_commands() {
    let dir = tempfile::tempdir().unwrap();
    let raft = open_single(dir.path()).await;
    let mem = MemStore::new();
    let (mut on_raft, mut on_mem) = (Ordinals::default(), Ordinals::default());
    let mut rng = Rng(0x5eed_cafe_f00d_beef);
    for step in 0..400 {
        // One random draw, applied to both with each store's room ids.
        let mut fork = Rng(rng.0);
        let for_raft = command(&mut rng, &on_raft.rooms, 0);
        let for_mem = command(&mut fork, &on_mem.rooms, 0);
        let expected = on_mem.normalize(mem.write(for_mem.clone()));
        let got = on_raft.normalize(raft.write(for_raft).await.unwrap());
        assert_eq!(got, expected, "step {step}: {for_mem:?}");
    }
    assert!(on_mem.rooms.len() >= 3, "the sequence created rooms");
    for (r, m) in on_raft.rooms.clone().into_iter().zip(on_mem.rooms.clone()) {
        let (raft_page, raft_more) = raft.messages(r, None, 1000).await.unwrap();
        let (mem_page, mem_more) = mem.messages(m, None, 1000).await.unwrap();
        assert_eq!(on_raft.history(raft_page), on_mem.history(mem_page));
        assert_eq!(raft_more, mem_more);
    }
    assert_eq!(
        raft.signing_key().await.unwrap(),
        mem.signing_key().await.unwrap()
    );
    assert_eq!(
        raft.media_nodes().await.unwrap(),
        mem.media_nodes().await.unwrap()
    );
    raft.shutdown().await.unwrap();
}
