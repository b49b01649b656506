//! One browser's signalling session over WebSocket: authenticate with the
//! join token, then relay messages between the browser, its peer actor and
//! its room until the browser leaves or its connection drops.
//!
//! Every frame passes [`crate::admission`] before the session acts on it,
//! and every queue the session feeds is bounded ([`crate::outbox`]), so a
//! guest with a room link cannot make the node do or hold more than the
//! budgets in `veche_protocol::limits` allow.

use crate::admission::{Admission, Kind, Verdict};
use crate::node::{now_ms, Shared};
use crate::outbox::Outbox;
use crate::peer::{PeerCmd, PeerHandle};
use crate::room::Joiner;
use crate::socket::{refuse as close, Writer};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};
use veche_protocol::error::ErrorBody;
use veche_protocol::limits;
use veche_protocol::rpc::{Actor, CommitChat};
use veche_protocol::signal::{
    peek_type, ClientMessage, IceServer, LeaveReason, Resume, ServerMessage, CLOSE_MOVED,
    CLOSE_NORMAL, CLOSE_POLICY, CLOSE_REMOVED, CLOSE_TOO_SLOW,
};
use veche_protocol::token::{self, JoinClaims};
use veche_protocol::ErrorCode;

/// How long a new socket may take to send `join`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence after which the connection counts as dropped. Three missed
/// pings: quick enough that others see "reconnecting" within 5 s, slow
/// enough that one lost packet doesn't trigger it.
const IDLE_TIMEOUT: Duration = Duration::from_millis(4500);

/// How the session ended.
enum End {
    /// The participant left on purpose: `leave` (answered with close 1000
    /// "left"), or a close frame 1000/1001 (answered with the same code,
    /// completing the WebSocket closing handshake).
    Left(u16),
    /// The connection broke. When the client sent a close frame with
    /// another code, it is answered with that code.
    Dropped(Option<u16>),
    /// The participant continues on another node; the seat here is gone.
    Moved,
    /// The browser stopped reading and its outbound queue filled up. The
    /// seat is kept as for a dropped connection, so it may resume.
    TooSlow,
    /// The client kept sending after being refused: closed with
    /// `CLOSE_POLICY`, and the seat is given up.
    Policy,
    /// A moderator removed the participant; the room already evicted
    /// them. Closed with `CLOSE_REMOVED`.
    Removed,
}

/// The `ice_servers` for one participant: the configured STUN servers,
/// then the TURN servers with their own short-lived credential that the
/// control plane put in their join token (the node holds no TURN secret).
fn ice_servers_for(node: &Shared, claims: &JoinClaims) -> Vec<IceServer> {
    let mut servers = node.config.ice_servers.clone();
    servers.extend(claims.ice_servers.iter().cloned());
    servers
}

/// Runs one signalling session to completion.
pub(crate) async fn run(node: Arc<Shared>, mut socket: WebSocket) {
    // 1. The first frame must be a valid `join`.
    let first = match tokio::time::timeout(JOIN_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => t,
        Ok(_) => return,
        Err(_) => {
            close(
                socket,
                ErrorCode::InvalidState,
                "no join message within 10 s",
            )
            .await;
            return;
        }
    };
    let (token, media, resume, p2p) = match ClientMessage::parse(&first) {
        Ok(ClientMessage::Join {
            token,
            media,
            resume,
            p2p,
        }) => (token, media, resume, p2p),
        Ok(other) => {
            let reason = format!("the first message must be join, not {}", other.kind());
            close(socket, ErrorCode::InvalidState, &reason).await;
            return;
        }
        Err(e) => {
            close(socket, e.code, &e.message).await;
            return;
        }
    };
    let Some(key) = node.token_key() else {
        close(
            socket,
            ErrorCode::Unavailable,
            "media node is not registered yet; retry",
        )
        .await;
        return;
    };
    let claims: JoinClaims = match token::verify(&token, &key, node.config.node_id, now_ms()) {
        Ok(c) => c,
        Err(e) => {
            node.metrics
                .signalling_errors
                .with_label_values(&[e.code().as_str()])
                .inc();
            let reason = match e {
                token::TokenError::Expired => "join token expired; request a new one",
                token::TokenError::WrongNode => "join token is for another media node",
                _ => "join token is not valid",
            };
            close(socket, e.code(), reason).await;
            return;
        }
    };
    let span = tracing::info_span!("session", room = %claims.room_id, participant = %claims.participant_id);
    session(node, socket, claims, media, resume, p2p)
        .instrument(span)
        .await
}

fn random_token() -> String {
    crate::peer::random_bytes::<16>()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

async fn session(
    node: Arc<Shared>,
    mut socket: WebSocket,
    claims: JoinClaims,
    media: veche_protocol::signal::MediaState,
    resume: Option<Resume>,
    p2p: bool,
) {
    let room = node.room_for(&claims);
    let pid = resume
        .as_ref()
        .map(|r| r.participant_id.clone())
        .unwrap_or_else(|| claims.participant_id.clone());
    socket = match crate::lobby_wait::before_seat(
        &node,
        &room,
        &claims,
        &pid,
        resume.is_some(),
        IDLE_TIMEOUT,
        socket,
    )
    .await
    {
        Some(s) => s,
        None => {
            node.release_room(&room);
            return;
        }
    };
    if resume.is_none() && room.contains(&pid) {
        // The same token used twice: the newer connection wins, as when a
        // user reloads the page.
        room.evict(&pid, LeaveReason::Replaced);
    }
    let (out_tx, out_rx) = Outbox::for_session();
    let node_media = crate::resume::NodeMedia {
        peers: &node.peers,
        rtc: &node.config.rtc,
        metrics: &node.metrics,
    };
    let attached =
        match crate::resume::attach(node_media, &room, &pid, resume.as_ref(), &out_tx).await {
            Ok(a) => a,
            Err(e) => {
                warn!("could not create a peer connection: {e}");
                close(
                    socket,
                    ErrorCode::Internal,
                    "media node could not create a connection",
                )
                .await;
                node.release_room(&room);
                return;
            }
        };
    let cmd_tx = attached.cmd.clone();
    let moved = Arc::new(tokio::sync::Notify::new());
    let removed = Arc::new(tokio::sync::Notify::new());
    let handle = PeerHandle {
        out: out_tx.clone(),
        cmd: cmd_tx.clone(),
        moved: moved.clone(),
        removed: removed.clone(),
    };
    let joined = match &resume {
        Some(r) => room
            .resume(
                &pid,
                &r.resume_token,
                handle,
                ice_servers_for(&node, &claims),
                attached.media,
            )
            .map_err(|e| e.to_string()),
        None => room
            .join(
                Joiner {
                    id: pid.clone(),
                    display_name: claims.display_name.clone(),
                    guest: claims.guest,
                    user: claims.user,
                    pass: claims.pass,
                    role: claims.role,
                    p2p,
                },
                media,
                handle,
                now_ms(),
                ice_servers_for(&node, &claims),
                random_token(),
                claims.issued_at_ms,
                claims.rejoin,
            )
            .map(|generation| (generation, claims.display_name.clone()))
            .map_err(|e| e.to_string()),
    };
    let (generation, display_name) = match joined {
        Ok(j) => j,
        Err(reason) => {
            warn!("join refused: {reason}");
            crate::resume::abandon(&attached);
            close(socket, ErrorCode::InvalidState, &reason).await;
            node.release_room(&room);
            return;
        }
    };
    crate::resume::seated(&node.peers, room.id(), &pid, &attached, &out_tx);
    node.metrics.participants.inc();
    info!(name = %display_name, resumed = resume.is_some(), rejoin = claims.rejoin, "joined");
    if node.is_draining() {
        // Placed here just before the drain began: move on at once.
        let _ = out_tx.send(ServerMessage::Move {
            reason: "this media node is being taken out of service".into(),
        });
    }

    let (sink, mut stream) = socket.split();
    let writer = Writer::spawn(sink, out_rx);

    // Chat commits run on their own task, one at a time, so a sender's
    // messages keep their order while a slow commit (a control-plane
    // leader change takes a second or two) never holds up signalling.
    let (chat_tx, mut chat_rx) = mpsc::channel::<CommitChat>(limits::signal::CHAT_QUEUE);
    {
        let node = node.clone();
        let room = room.clone();
        let out = out_tx.clone();
        tokio::spawn(
            async move {
                while let Some(req) = chat_rx.recv().await {
                    match node.cp.commit_chat(&req).await {
                        Ok(message) => room.chat(message),
                        Err(e) => {
                            warn!(code = e.code.as_str(), "chat commit failed: {}", e.message);
                            node.reply_error(&out, e, "chat", req.client_msg_id);
                        }
                    }
                }
            }
            .in_current_span(),
        );
    }
    let moderation = crate::moderation::spawn_moderation(
        node.clone(),
        room.clone(),
        out_tx.clone(),
        Actor {
            participant_id: pid.clone(),
            display_name: display_name.clone(),
            claimed_role: claims.role,
        },
    );
    let mut handshake = crate::e2ee::Handshake::spawn(&node, &room, &out_tx, &pid, claims.e2ee);
    let mut admission = Admission::new(now_ms());
    // Replies to refused frames may be dropped (see `Outbox::send_droppable`):
    // a flooder must not fill its own queue with refusals.
    let send_error = |code: ErrorCode,
                      message: String,
                      request: Option<String>,
                      client_msg_id: Option<String>| {
        node.metrics
            .signalling_errors
            .with_label_values(&[code.as_str()])
            .inc();
        out_tx.send_droppable(ServerMessage::Error {
            error: ErrorBody::new(code, message),
            request,
            client_msg_id,
        });
    };
    let end = loop {
        let next = tokio::select! {
            n = tokio::time::timeout(IDLE_TIMEOUT, stream.next()) => n,
            _ = moved.notified() => break End::Moved,
            _ = removed.notified() => break End::Removed,
            _ = out_tx.overflowed() => break End::TooSlow,
        };
        let frame = match next {
            Err(_) => {
                info!("no traffic for {IDLE_TIMEOUT:?}; connection dropped");
                break End::Dropped(None);
            }
            Ok(None) | Ok(Some(Err(_))) => break End::Dropped(None),
            Ok(Some(Ok(f))) => f,
        };
        let text = match frame {
            Message::Text(t) => Some(t),
            Message::Binary(_) => None,
            Message::Close(c) => {
                let code = c.as_ref().map(|c| c.code).unwrap_or(1005);
                debug!(code, "close frame");
                break match code {
                    1000 | 1001 => End::Left(code),
                    // 1005 (no code) and 1006 must not be sent in a frame.
                    1005 | 1006 => End::Dropped(None),
                    _ => End::Dropped(Some(code)),
                };
            }
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        let now = now_ms();
        let parsed = match &text {
            Some(t) => ClientMessage::parse(t),
            None => Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "binary frames are not part of the protocol; send JSON text",
            )),
        };
        // `leave` is always honoured, whatever the budgets say.
        if matches!(parsed, Ok(ClientMessage::Leave)) {
            break End::Left(CLOSE_NORMAL);
        }
        let request = match &parsed {
            Ok(m) => Some(m.kind().to_owned()),
            Err(_) => text.as_deref().and_then(peek_type),
        };
        let chat_id = match &parsed {
            Ok(ClientMessage::Chat { client_msg_id, .. }) => client_msg_id
                .clone()
                .filter(|id| id.len() <= limits::signal::MAX_CLIENT_MSG_ID_BYTES),
            _ => None,
        };
        let kind = request.as_deref().map_or(Kind::Other, Kind::of);
        match admission.admit(kind, now) {
            Verdict::Admit => {}
            Verdict::Refuse { retry_ms } => {
                send_error(
                    ErrorCode::RateLimited,
                    format!(
                        "you are sending {} messages too fast; try again in {:.1} s",
                        request.as_deref().unwrap_or("these"),
                        retry_ms as f64 / 1000.0
                    ),
                    request,
                    chat_id,
                );
                continue;
            }
            Verdict::Close => break End::Policy,
        }
        let msg = match parsed.and_then(|m| m.check_limits().map(|()| m)) {
            Ok(m) => m,
            Err(e) => {
                if admission.strike(now) {
                    break End::Policy;
                }
                send_error(e.code, e.message, request, chat_id);
                continue;
            }
        };
        match msg {
            ClientMessage::Join { .. } => send_error(
                ErrorCode::InvalidState,
                "already joined".into(),
                Some("join".into()),
                None,
            ),
            ClientMessage::Offer { sdp, tracks } => {
                let sending = crate::negotiation::sending_track_ids(&sdp).len();
                if sending > limits::signal::MAX_TRACKS {
                    send_error(
                        ErrorCode::BadRequest,
                        format!(
                            "the offer sends {sending} tracks; a participant may publish at most {}",
                            limits::signal::MAX_TRACKS
                        ),
                        Some("offer".into()),
                        None,
                    );
                    continue;
                }
                let refused = crate::codecs::check_offer(&sdp);
                if !refused.is_empty() {
                    // The offer is still applied: what the node accepts
                    // (usually the audio) works, and the sections without
                    // an accepted codec are rejected in the answer.
                    send_error(
                        ErrorCode::BadRequest,
                        format!(
                            "this media node accepts {} only; not accepted: {}",
                            crate::codecs::ACCEPTED,
                            refused.join("; ")
                        ),
                        Some("offer".into()),
                        None,
                    );
                }
                if cmd_tx
                    .try_send_client(PeerCmd::ClientOffer { sdp, tracks })
                    .is_err()
                {
                    send_busy(&send_error, "offer");
                }
            }
            ClientMessage::Answer { sdp } => {
                if cmd_tx
                    .try_send_client(PeerCmd::ClientAnswer { sdp })
                    .is_err()
                {
                    send_busy(&send_error, "answer");
                }
            }
            ClientMessage::Candidate { candidate } => {
                if cmd_tx
                    .try_send_client(PeerCmd::Candidate(candidate))
                    .is_err()
                {
                    send_busy(&send_error, "candidate");
                }
            }
            ClientMessage::Media(state) => {
                let _ = room.set_media(&pid, state);
            }
            ClientMessage::Ping { seq } => {
                let _ = out_tx.send(ServerMessage::Pong {
                    seq,
                    server_time_ms: now_ms(),
                });
            }
            ClientMessage::Leave => break End::Left(CLOSE_NORMAL),
            ClientMessage::Moderate(action) => {
                if moderation.try_send((action, now)).is_err() {
                    send_error(
                        ErrorCode::RateLimited,
                        "too many moderation actions are waiting; try again in a moment".into(),
                        request,
                        None,
                    );
                }
            }
            ClientMessage::Hand { raised } => {
                let _ = room.set_hand(&pid, raised, now);
            }
            m @ (ClientMessage::PeerSignal { .. } | ClientMessage::P2pState { .. }) => {
                if let Err(e) = room.p2p_message(&pid, m) {
                    send_error(ErrorCode::InvalidState, e, request, None);
                }
            }
            m @ (ClientMessage::E2eeKeyPackage { .. } | ClientMessage::E2eeCommit { .. }) => {
                handshake.submit(m, now)
            }
            ClientMessage::Chat {
                text,
                client_msg_id,
            } => {
                let text = match crate::e2ee::chat_text(claims.e2ee, &text) {
                    Ok(t) => t,
                    Err(e) => {
                        send_error(e.code, e.message, Some("chat".into()), client_msg_id);
                        continue;
                    }
                };
                let req = CommitChat {
                    room_id: claims.room_id,
                    participant_id: pid.clone(),
                    display_name: display_name.clone(),
                    text,
                    // Every commit carries an idempotency key, so that the
                    // node may retry it on another control-plane node after
                    // a failover without storing it twice. Clients that
                    // send none get one made here.
                    client_msg_id: Some(
                        client_msg_id
                            .clone()
                            .unwrap_or_else(|| format!("node-{}", random_token())),
                    ),
                    sent_at_ms: now_ms(),
                };
                if chat_tx.try_send(req).is_err() {
                    send_error(
                        ErrorCode::RateLimited,
                        "too many messages are waiting to be saved; try again in a moment".into(),
                        Some("chat".into()),
                        client_msg_id,
                    );
                }
            }
        }
    };

    let close_frame = |code: u16, reason: &'static str| CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let close_frame = match end {
        End::Moved => {
            info!("continues on another media node");
            Some(close_frame(CLOSE_MOVED, "continued on another media node"))
        }
        End::Left(code) => {
            info!("left");
            if room.leave(&pid, generation, LeaveReason::Left) {
                let _ = cmd_tx.send(PeerCmd::Close);
            }
            Some(close_frame(code, "left"))
        }
        End::Policy => {
            warn!("kept sending after being refused; closed");
            if room.leave(&pid, generation, LeaveReason::Disconnected) {
                let _ = cmd_tx.send(PeerCmd::Close);
            }
            Some(close_frame(
                CLOSE_POLICY,
                "too many refused messages; see the error messages before this",
            ))
        }
        End::Removed => {
            info!("removed by a moderator");
            Some(close_frame(CLOSE_REMOVED, "removed by a moderator"))
        }
        End::Dropped(reply) => {
            node.keep_seat(&room, &pid, generation);
            reply.map(|code| close_frame(code, "closed"))
        }
        End::TooSlow => {
            warn!("stopped reading; outbound queue full");
            node.keep_seat(&room, &pid, generation);
            Some(close_frame(
                CLOSE_TOO_SLOW,
                "you were not reading messages fast enough",
            ))
        }
    };
    drop(out_tx);
    writer.finish(close_frame, stream).await;
    node.metrics.participants.dec();
    node.release_room(&room);
}

/// Tells a client that its request was dropped because the peer actor has
/// too many of its requests waiting ([`limits::signal::PEER_QUEUE`]).
fn send_busy(send_error: &impl Fn(ErrorCode, String, Option<String>, Option<String>), kind: &str) {
    send_error(
        ErrorCode::RateLimited,
        format!("too many of your requests are waiting; this {kind} was dropped, send it again"),
        Some(kind.to_owned()),
        None,
    );
}
