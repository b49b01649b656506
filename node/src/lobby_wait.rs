//! A signalling session while its participant waits in the room's lobby:
//! no seat and no peer connection yet, only `lobby_waiting`, pings, and
//! the wait for the policy's decision. Admitted, the session goes on to
//! seat them on the same socket; denied, it ends with `CLOSE_DENIED`.
//!
//! The waiter's session also drives the unattended-lobby timer (the
//! decision is [`crate::room::Lobby::unattended_due`]): a room with
//! waiters always has a session here to tick it.

use crate::admission::{Admission, Kind, Verdict};
use crate::moderation::admit_unattended;
use crate::node::{now_ms, Shared};
use crate::room::{LobbyDecision, Room, Waiter};
use crate::socket::{encode, refuse, refuse_with};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};
use veche_protocol::error::ErrorBody;
use veche_protocol::moderation::LobbyEntry;
use veche_protocol::signal::{
    ClientMessage, ServerMessage, CLOSE_DENIED, CLOSE_NORMAL, CLOSE_POLICY,
};
use veche_protocol::token::JoinClaims;
use veche_protocol::{ErrorCode, ParticipantId};

/// What happens before a participant is seated: the room's policy is
/// loaded (the first seat of a room here waits for it), a barred
/// participant is refused, and a joiner whose token says so waits in the
/// lobby. Returns the socket to seat them on, or `None` when the session
/// is over (the socket closed).
pub(crate) async fn before_seat(
    node: &Arc<Shared>,
    room: &Arc<Room>,
    claims: &JoinClaims,
    pid: &ParticipantId,
    resuming: bool,
    idle_timeout: Duration,
    socket: WebSocket,
) -> Option<WebSocket> {
    if let Err(e) = crate::moderation::ensure_policy(node, room).await {
        warn!(
            code = e.code.as_str(),
            "join refused: no copy of the room's policy"
        );
        refuse(
            socket,
            ErrorCode::Unavailable,
            "this meeting's moderation settings could not be loaded; try again",
        )
        .await;
        return None;
    }
    if room.bars(pid) {
        refuse(
            socket,
            ErrorCode::Forbidden,
            "A moderator removed you from this meeting",
        )
        .await;
        return None;
    }
    if claims.lobby && !resuming && !room.contains(pid) && !room.admitted(pid) {
        return wait(node, room, claims, idle_timeout, socket).await;
    }
    Some(socket)
}

/// How the room reaches a waiting session.
struct SocketWaiter {
    msgs: mpsc::Sender<ServerMessage>,
    decision: Mutex<Option<oneshot::Sender<LobbyDecision>>>,
}

impl Waiter for SocketWaiter {
    fn send(&self, msg: ServerMessage) {
        let _ = self.msgs.try_send(msg);
    }

    fn decided(&self, decision: LobbyDecision) {
        if let Some(tx) = self.decision.lock().expect("lock poisoned").take() {
            let _ = tx.send(decision);
        }
    }
}

/// Waits in the lobby until the policy decides. Returns the socket when
/// the participant was admitted (the caller seats them); `None` when the
/// session is over (denied, gave up, connection lost), the socket closed.
async fn wait(
    node: &Arc<Shared>,
    room: &Arc<Room>,
    claims: &JoinClaims,
    idle_timeout: Duration,
    mut socket: WebSocket,
) -> Option<WebSocket> {
    let pid = claims.participant_id.clone();
    let (msg_tx, mut msg_rx) = mpsc::channel(8);
    let (dec_tx, mut dec_rx) = oneshot::channel();
    let entry = LobbyEntry {
        participant_id: pid.clone(),
        display_name: claims.display_name.clone(),
        guest: claims.guest,
        since_ms: now_ms(),
    };
    let waiter = SocketWaiter {
        msgs: msg_tx,
        decision: Mutex::new(Some(dec_tx)),
    };
    if let Err(e) = room.wait_in_lobby(entry, waiter) {
        refuse(socket, ErrorCode::Unavailable, &e.to_string()).await;
        return None;
    }
    info!("waiting in the lobby");
    let unattended_ms = node.config.lobby_unattended.as_millis() as u64;
    let mut tick =
        tokio::time::interval(Duration::from_millis((unattended_ms / 4).clamp(10, 1_000)));
    let mut admission = Admission::new(now_ms());
    let mut heard = Instant::now();
    let decision = loop {
        tokio::select! {
            d = &mut dec_rx => break d.unwrap_or(LobbyDecision::Replaced),
            Some(m) = msg_rx.recv() => {
                if socket.send(encode(&m)).await.is_err() {
                    room.leave_lobby(&pid);
                    return None;
                }
            }
            _ = tick.tick() => {
                if heard.elapsed() > idle_timeout {
                    info!("no traffic while waiting in the lobby; gone");
                    room.leave_lobby(&pid);
                    return None;
                }
                let now = now_ms();
                for id in room.lobby_due(now, unattended_ms) {
                    admit_unattended(node.clone(), room.clone(), id, now);
                }
            }
            frame = socket.recv() => {
                heard = Instant::now();
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => continue,
                    _ => {
                        room.leave_lobby(&pid);
                        return None;
                    }
                };
                let parsed = ClientMessage::parse(&text);
                let kind = parsed.as_ref().map_or(Kind::Other, |m| Kind::of(m.kind()));
                let now = now_ms();
                match admission.admit(kind, now) {
                    Verdict::Admit => {}
                    Verdict::Refuse { .. } => continue,
                    Verdict::Close => {
                        room.leave_lobby(&pid);
                        close(socket, CLOSE_POLICY, "too many refused messages").await;
                        return None;
                    }
                }
                let reply = match parsed {
                    Ok(ClientMessage::Ping { seq }) => ServerMessage::Pong {
                        seq,
                        server_time_ms: now,
                    },
                    Ok(ClientMessage::Leave) => {
                        room.leave_lobby(&pid);
                        close(socket, CLOSE_NORMAL, "left").await;
                        return None;
                    }
                    Ok(other) => ServerMessage::Error {
                        error: ErrorBody::new(
                            ErrorCode::InvalidState,
                            format!(
                                "you are waiting in the lobby; {} is possible once a moderator lets you in",
                                other.kind()
                            ),
                        ),
                        request: Some(other.kind().into()),
                        client_msg_id: None,
                    },
                    Err(e) => ServerMessage::Error {
                        error: e,
                        request: None,
                        client_msg_id: None,
                    },
                };
                if socket.send(encode(&reply)).await.is_err() {
                    room.leave_lobby(&pid);
                    return None;
                }
            }
        }
    };
    match decision {
        LobbyDecision::Admitted => {
            info!("admitted from the lobby");
            Some(socket)
        }
        LobbyDecision::Denied => {
            info!("denied at the lobby");
            refuse_with(
                socket,
                ErrorCode::Forbidden,
                "A moderator did not let you in",
                CLOSE_DENIED,
            )
            .await;
            None
        }
        LobbyDecision::Replaced => {
            refuse(
                socket,
                ErrorCode::InvalidState,
                "you are waiting in the lobby from another connection",
            )
            .await;
            None
        }
    }
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}
