//! [`Replicated`]: the [`Store`] as any control-plane node serves it.
//! Writes travel to the leader wherever it is, retried as
//! [`super::retry`] allows; reads run after a read barrier, against this
//! node's own state machine. So a follower answers like the leader, and
//! the code above needs to know nothing of Raft.
//!
//! It passes the same conformance suite as the stores underneath it (on a
//! one-node control plane: see the test below).

use crate::error::ApiError;
use crate::store::model::{Command, CommandResult, Room};
use crate::store::{CommandLog, LocalReads, StoreError};
use crate::ControlPlane;
use std::sync::Arc;
use veche_protocol::RoomId;

/// The durable state, through this control-plane node.
#[derive(Clone)]
pub struct Replicated {
    cp: Arc<ControlPlane>,
}

impl ControlPlane {
    /// The durable state as a [`Store`], through this node, whichever node
    /// it is.
    pub fn replicated(self: &Arc<Self>) -> Replicated {
        Replicated { cp: self.clone() }
    }
}

/// The forwarding layer answers in API errors, whose code and message are
/// already fit for a client ("no leader right now; retry shortly", "it may
/// or may not have been applied"); keep both, so that the API answers
/// exactly what the forwarding layer decided.
fn forwarding(e: ApiError) -> StoreError {
    StoreError::Forwarding(e.0)
}

/// [`Store`] comes with this (`store/raft_seam.rs`): the same commands
/// and reads as on the leader, reached through forwarding.
impl CommandLog for Replicated {
    async fn write(&self, cmd: Command) -> Result<CommandResult, StoreError> {
        self.cp.write(cmd).await.map_err(forwarding)
    }

    async fn barrier(&self) -> Result<(), StoreError> {
        self.cp.read_barrier().await.map_err(forwarding)
    }

    fn local(&self) -> LocalReads<'_> {
        self.cp.store.local()
    }
}

impl Replicated {
    /// The room with this id, from this node's own state when it has the
    /// room, with a read barrier only when it does not (yet). Rooms never
    /// change after creation and are never deleted, so a copy this node
    /// applied is as current as a linearizable read, without its round
    /// trip: for the per-message checks of chat and the E2EE handshake.
    pub async fn settled_room(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        if let Some(room) = self.cp.store.local().room_by_id(id)? {
            return Ok(Some(room));
        }
        crate::store::Store::room_by_id(self, id).await
    }

    /// The control plane underneath.
    pub fn control_plane(&self) -> &Arc<ControlPlane> {
        &self.cp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::run_all;
    use crate::store::conformance_kit::StoreFactory;
    use crate::ControlPlaneConfig;
    use std::path::Path;

    /// A one-node control plane (`veche serve`'s) in the directory.
    struct OneNode;

    impl StoreFactory for OneNode {
        type Store = Replicated;
        const DURABLE: bool = true;
        async fn open(&self, dir: &Path) -> Replicated {
            let cp = ControlPlane::open(ControlPlaneConfig::single_node(
                dir.to_owned(),
                "conformance-test-secret-of-32-bytes!".into(),
            ))
            .await
            .expect("open a one-node control plane");
            cp.replicated()
        }
        async fn close(&self, store: Replicated) {
            store.cp.shutdown().await.expect("shut down");
        }
    }

    #[tokio::test]
    async fn the_replicated_view_of_a_one_node_control_plane_passes_the_conformance_suite() {
        run_all(&OneNode).await;
    }
}
