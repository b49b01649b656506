//! The bounded queues of one signalling session.
//!
//! [`Outbox`] carries messages to a participant's WebSocket. It is bounded
//! ([`limits::signal::OUTBOUND_QUEUE`]) so that a browser that stopped
//! reading cannot grow the node's memory: the first message that does not
//! fit marks the outbox overflowed, and the session closes the socket with
//! [`veche_protocol::signal::CLOSE_TOO_SLOW`]. Senders never wait, so the
//! room can send while it holds its lock.
//!
//! [`CmdSender`]/[`CmdReceiver`] carry commands to a participant's peer
//! actor. What the *client* puts there (offers, answers, candidates) is
//! bounded by [`limits::signal::PEER_QUEUE`]; what the node itself puts
//! there (subscribe, unsubscribe, close, events of the connection) is
//! never refused, because losing a `Subscribe` would silently lose a
//! track. The node's own commands are bounded by the room's size (tracks
//! per participant are capped), not by anything a client can do.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};
use veche_protocol::limits;
use veche_protocol::signal::ServerMessage;

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    /// The queue is full: the participant is not reading. The session is
    /// told and closes the socket.
    #[error("the participant's outbound queue is full")]
    Full,
    /// The session has ended; nobody will read the message.
    #[error("the session has ended")]
    Closed,
}

struct State {
    capacity: usize,
    overflowed: AtomicBool,
    notify: Notify,
}

/// The sending side of one participant's outbound queue. Cheap to clone;
/// the room, the peer actor and the session each hold one.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<ServerMessage>,
    state: Arc<State>,
}

impl Outbox {
    /// A queue of `capacity` messages and its receiving end (the session's
    /// writer).
    pub fn channel(capacity: usize) -> (Outbox, mpsc::Receiver<ServerMessage>) {
        let (tx, rx) = mpsc::channel(capacity);
        let state = Arc::new(State {
            capacity,
            overflowed: AtomicBool::new(false),
            notify: Notify::new(),
        });
        (Outbox { tx, state }, rx)
    }

    /// A queue of the documented size ([`limits::signal::OUTBOUND_QUEUE`]).
    pub fn for_session() -> (Outbox, mpsc::Receiver<ServerMessage>) {
        Outbox::channel(limits::signal::OUTBOUND_QUEUE)
    }

    /// Queues `msg` without waiting. A full queue marks the outbox
    /// overflowed (see [`Outbox::overflowed`]): the message is lost, and so
    /// is the session, since a client that misses a room delta would show a
    /// wrong room from then on.
    pub fn send(&self, msg: ServerMessage) -> Result<(), OutboxError> {
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.state.overflowed.swap(true, Ordering::SeqCst) {
                    self.state.notify.notify_one();
                }
                Err(OutboxError::Full)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(OutboxError::Closed),
        }
    }

    /// Queues a reply that may be dropped (an `error` to a refused frame)
    /// only while more than a quarter of the queue is free. A flooding
    /// client then cannot fill its own queue with refusals, and the room's
    /// messages, which must not be lost, keep their room. Returns whether
    /// it was queued.
    pub fn send_droppable(&self, msg: ServerMessage) -> bool {
        if self.tx.capacity() <= self.state.capacity.div_ceil(4) {
            return false;
        }
        self.send(msg).is_ok()
    }

    /// True once a message did not fit.
    pub fn is_overflowed(&self) -> bool {
        self.state.overflowed.load(Ordering::SeqCst)
    }

    /// Resolves once a message did not fit (at once if that already
    /// happened). Meant for one waiter, the session.
    pub async fn overflowed(&self) {
        if self.is_overflowed() {
            return;
        }
        self.state.notify.notified().await;
    }
}

/// Who put a command in a peer actor's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The browser (offer, answer, candidate): bounded.
    Client,
    /// The node itself: never refused.
    Node,
}

/// The client's share of the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many of the client's requests are waiting")]
pub struct QueueFull;

/// The sending side of a peer actor's command queue.
pub struct CmdSender<T> {
    tx: mpsc::UnboundedSender<(T, Origin)>,
    client_queued: Arc<AtomicUsize>,
    client_limit: usize,
}

impl<T> Clone for CmdSender<T> {
    fn clone(&self) -> Self {
        CmdSender {
            tx: self.tx.clone(),
            client_queued: self.client_queued.clone(),
            client_limit: self.client_limit,
        }
    }
}

/// The receiving side of a peer actor's command queue.
pub struct CmdReceiver<T> {
    rx: mpsc::UnboundedReceiver<(T, Origin)>,
    client_queued: Arc<AtomicUsize>,
}

/// A command queue admitting at most `client_limit` client commands at a
/// time.
pub fn cmd_channel<T>(client_limit: usize) -> (CmdSender<T>, CmdReceiver<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client_queued = Arc::new(AtomicUsize::new(0));
    (
        CmdSender {
            tx,
            client_queued: client_queued.clone(),
            client_limit,
        },
        CmdReceiver { rx, client_queued },
    )
}

/// A peer actor's command queue that does not keep the actor alive: the
/// registry of connections a resumed session may take back holds these.
pub struct WeakCmdSender<T> {
    tx: mpsc::WeakUnboundedSender<(T, Origin)>,
    client_queued: Arc<AtomicUsize>,
    client_limit: usize,
}

impl<T> WeakCmdSender<T> {
    /// The queue, if its actor still runs and someone else still holds it.
    pub fn upgrade(&self) -> Option<CmdSender<T>> {
        let tx = self.tx.upgrade()?;
        if tx.is_closed() {
            return None;
        }
        Some(CmdSender {
            tx,
            client_queued: self.client_queued.clone(),
            client_limit: self.client_limit,
        })
    }
}

impl<T> CmdSender<T> {
    /// A handle that does not keep the actor's queue open.
    pub fn downgrade(&self) -> WeakCmdSender<T> {
        WeakCmdSender {
            tx: self.tx.downgrade(),
            client_queued: self.client_queued.clone(),
            client_limit: self.client_limit,
        }
    }

    /// Queues a command of the node's own. Fails only when the actor has
    /// ended, which callers may ignore.
    pub fn send(&self, cmd: T) -> Result<(), mpsc::error::SendError<T>> {
        self.tx
            .send((cmd, Origin::Node))
            .map_err(|e| mpsc::error::SendError(e.0 .0))
    }

    /// Queues a command that came from the browser, unless
    /// `client_limit` of them are already waiting.
    pub fn try_send_client(&self, cmd: T) -> Result<(), QueueFull> {
        let queued = self.client_queued.fetch_add(1, Ordering::SeqCst);
        if queued >= self.client_limit {
            self.client_queued.fetch_sub(1, Ordering::SeqCst);
            return Err(QueueFull);
        }
        if self.tx.send((cmd, Origin::Client)).is_err() {
            // The actor has ended; nothing waits in its queue.
            self.client_queued.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl<T> CmdReceiver<T> {
    /// The next command, or `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<T> {
        let (cmd, origin) = self.rx.recv().await?;
        if origin == Origin::Client {
            self.client_queued.fetch_sub(1, Ordering::SeqCst);
        }
        Some(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pong(seq: u64) -> ServerMessage {
        ServerMessage::Pong {
            seq,
            server_time_ms: 0,
        }
    }

    #[tokio::test]
    async fn a_reader_that_stopped_reading_overflows_the_outbox_instead_of_growing_it() {
        let (out, rx) = Outbox::channel(4);
        for i in 0..4 {
            assert_eq!(out.send(pong(i)), Ok(()));
        }
        assert!(!out.is_overflowed());
        assert_eq!(out.send(pong(4)), Err(OutboxError::Full));
        assert!(out.is_overflowed());
        // The session's wait resolves even though it started late.
        tokio::time::timeout(std::time::Duration::from_secs(1), out.overflowed())
            .await
            .expect("overflow is reported");
        assert_eq!(rx.len(), 4);
    }

    #[tokio::test]
    async fn error_replies_stop_before_the_queue_is_full() {
        let (out, _rx) = Outbox::channel(8);
        let mut queued = 0;
        for i in 0..8 {
            if out.send_droppable(pong(i)) {
                queued += 1;
            }
        }
        // Two slots (a quarter) stay free for the room's messages.
        assert_eq!(queued, 6);
        assert!(!out.is_overflowed());
        assert_eq!(out.send(pong(99)), Ok(()));
    }

    #[tokio::test]
    async fn client_commands_are_bounded_but_node_commands_never_refused() {
        let (tx, mut rx) = cmd_channel::<u32>(2);
        assert_eq!(tx.try_send_client(1), Ok(()));
        assert_eq!(tx.try_send_client(2), Ok(()));
        assert_eq!(tx.try_send_client(3), Err(QueueFull));
        for i in 0..100 {
            assert!(tx.send(100 + i).is_ok());
        }
        assert_eq!(rx.recv().await, Some(1));
        // Taking one client command frees one slot.
        assert_eq!(tx.try_send_client(4), Ok(()));
        assert_eq!(tx.try_send_client(5), Err(QueueFull));
    }
}
