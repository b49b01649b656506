//! The room's part in end-to-end encryption: passing on the MLS handshake
//! messages the control plane ordered, to this node's participants and to
//! the other nodes hosting the room, in that order. What is sent and
//! when is decided in `crate::e2ee`; the bytes are opaque here.

use super::{Inner, Room};
use crate::core::Action;
use veche_protocol::relay::{check_e2ee, RelayMsg};
use veche_protocol::signal::ServerMessage;
use veche_protocol::{NodeId, ParticipantId};

/// Keeps a room's handshake steps on this node in the order the control
/// plane accepted them: a step holds it from its request to the control
/// plane until its broadcast, so two participants' steps never overtake
/// each other between the reply and the broadcast.
#[derive(Default)]
pub struct HandshakeOrder(tokio::sync::Mutex<()>);

impl Room {
    /// Waits for this room's turn to order a handshake step (see
    /// [`HandshakeOrder`]); the turn ends when the guard is dropped.
    pub async fn handshake_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.handshake.0.lock().await
    }

    /// An ordered handshake message: to every other node hosting the room
    /// (for all of their participants), and to this node's participants
    /// except `except`.
    pub fn e2ee(&self, msg: ServerMessage, except: Option<ParticipantId>) {
        let mut inner = self.lock();
        self.tell_peers(
            &inner,
            &RelayMsg::E2ee {
                room: self.info.id,
                message: msg.clone(),
            },
        );
        self.run(&mut inner, vec![Action::Broadcast { msg, except }]);
    }

    /// A handshake message another node ordered and relayed: to all of
    /// this node's participants, if it keeps the limits a client's must.
    pub(super) fn e2ee_from_peer(&self, inner: &mut Inner, from: NodeId, msg: ServerMessage) {
        let kind = crate::metrics::e2ee_kind(&msg);
        if let Err(e) = check_e2ee(&msg) {
            tracing::warn!(%from, "dropped a relayed e2ee message: {e}");
            self.metrics.e2ee_outcome(kind, "dropped_from_peer");
            return;
        }
        self.metrics.e2ee_outcome(kind, "from_peer");
        self.run(inner, vec![Action::Broadcast { msg, except: None }]);
    }
}
