//! The WebSocket end of a signalling session: the writer task that drains
//! the participant's [`crate::outbox::Outbox`] and pings the browser, and
//! the closing handshake.
//!
//! A session that ends on purpose sends a close frame after everything
//! queued, then reads (and discards) until the client's own close frame.
//! Closing the TCP connection with frames still unread would reset it, and
//! the client would lose the close frame and the replies before it: this
//! is why a `leave` used to end in 1006 instead of 1000.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use veche_protocol::error::ErrorBody;
use veche_protocol::signal::ServerMessage;
use veche_protocol::ErrorCode;

/// How often the node pings the browser. Browsers answer WebSocket pings
/// by themselves, so this detects a dead connection even when the page is
/// throttled in a background tab.
const PING_INTERVAL: Duration = Duration::from_millis(1500);
/// How long the writer may take to flush what is queued and send the
/// close frame; a writer stuck on a socket nobody reads is then aborted.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the node keeps reading after its close frame, for the
/// client's close frame (which completes the closing handshake).
const CLOSE_DRAIN: Duration = Duration::from_secs(2);

pub(crate) fn encode(msg: &ServerMessage) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(msg).expect("server messages always serialise"),
    ))
}

/// Ends a session before `joined`: one `error` (with `request: "join"`,
/// the step that failed) and a close frame with the error's close code.
pub(crate) async fn refuse(socket: WebSocket, code: ErrorCode, reason: &str) {
    refuse_with(socket, code, reason, code.ws_close_code()).await
}

/// [`refuse`] with a close code of its own (a lobby waiter turned away
/// gets `CLOSE_DENIED`, not the error code's).
pub(crate) async fn refuse_with(
    mut socket: WebSocket,
    code: ErrorCode,
    reason: &str,
    close_code: u16,
) {
    // Close reasons are limited to 123 bytes by RFC 6455.
    let mut reason = reason.to_owned();
    reason.truncate(120);
    let _ = socket
        .send(encode(&ServerMessage::Error {
            error: ErrorBody::new(code, reason.clone()),
            request: Some("join".into()),
            client_msg_id: None,
        }))
        .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: close_code,
            reason: Utf8Bytes::from(reason),
        })))
        .await;
}

/// The task writing one participant's socket.
pub(crate) struct Writer {
    task: tokio::task::JoinHandle<()>,
    close: oneshot::Sender<CloseFrame>,
}

impl Writer {
    /// Starts writing everything queued for the participant, plus pings.
    /// Queued messages go before the close frame (`biased`), so a client
    /// sees the last `error` or `participant_left` before the socket
    /// closes.
    pub(crate) fn spawn(
        mut sink: SplitSink<WebSocket, Message>,
        mut out: mpsc::Receiver<ServerMessage>,
    ) -> Writer {
        let (close, mut close_rx) = oneshot::channel::<CloseFrame>();
        let task = tokio::spawn(
            async move {
                let mut ping = tokio::time::interval(PING_INTERVAL);
                loop {
                    tokio::select! {
                        biased;
                        msg = out.recv() => match msg {
                            Some(m) => if sink.send(encode(&m)).await.is_err() { break },
                            None => break,
                        },
                        frame = &mut close_rx => {
                            if let Ok(frame) = frame {
                                let _ = sink.send(Message::Close(Some(frame))).await;
                            }
                            break;
                        }
                        _ = ping.tick() => {
                            if sink.send(Message::Ping(Default::default())).await.is_err() { break }
                        }
                    }
                }
                let _ = sink.close().await;
            }
            .in_current_span(),
        );
        Writer { task, close }
    }

    /// Ends the socket. With a close frame: flush, send it, and complete
    /// the closing handshake in the background. Without (the connection
    /// broke): stop writing at once.
    pub(crate) async fn finish(
        self,
        frame: Option<CloseFrame>,
        mut stream: SplitStream<WebSocket>,
    ) {
        let Some(frame) = frame else {
            self.task.abort();
            return;
        };
        let _ = self.close.send(frame);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(FLUSH_TIMEOUT, self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
        tokio::spawn(
            tokio::time::timeout(CLOSE_DRAIN, async move {
                while let Some(Ok(m)) = stream.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
            })
            .in_current_span(),
        );
    }
}
