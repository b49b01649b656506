//! The node's side of end-to-end encryption: it relays the browsers' MLS
//! handshake (key packages, commits, welcomes), which it cannot read, in
//! the one order the control plane decides (`veche_protocol::e2ee`), and
//! it keeps plaintext chat out of encrypted rooms.
//!
//! A session hands each `e2ee_key_package` and `e2ee_commit` to its
//! [`Handshake`]. The [`Gate`] decides, without I/O, whether to act on it
//! at all: the room must be encrypted, the opaque fields within their
//! limits, the sender within its rate. An admitted step goes to a task of
//! the session's own, which asks the control plane to order it and then
//! broadcasts what the reply says ([`outcome`]), one step at a time so
//! the sender's steps keep their order, and while holding the room's
//! handshake turn so that two participants' steps leave this node in the
//! order the control plane accepted them. The room passes each one on to
//! the other nodes hosting it. A refusal goes to the sender only and
//! changes nothing for anyone else.

use crate::node::Shared;
use crate::outbox::Outbox;
use crate::room::Room;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{warn, Instrument};
use veche_protocol::chat::validate_chat;
use veche_protocol::e2ee::{
    check_commit, check_key_package, check_sealed_chat, CommitLabels, DsOp, DsReply, DsRequest,
    E2eeError,
};
use veche_protocol::error::ErrorBody;
use veche_protocol::limits::{self, TokenBucket};
use veche_protocol::signal::{ClientMessage, ServerMessage};
use veche_protocol::{ErrorCode, ParticipantId, UnixMillis};

/// The text to commit for a participant's `chat`, or why it is refused.
/// In an encrypted room the server cannot filter what it cannot read: it
/// takes only a sealed envelope (the client filtered before sealing),
/// within the sealed size limit. Elsewhere the usual filter applies.
pub(crate) fn chat_text(e2ee: bool, text: &str) -> Result<String, ErrorBody> {
    if e2ee {
        check_sealed_chat(text)
            .map(|()| text.to_owned())
            .map_err(|e| ErrorBody::new(e.code(), e.to_string()))
    } else {
        validate_chat(text).map_err(|e| ErrorBody::new(e.code(), e.to_string()))
    }
}

/// One admitted handshake step of a participant, as the control plane is
/// asked to order it and the room is then told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// An MLS key package: the sender wants to be (re)admitted.
    KeyPackage(String),
    /// An MLS commit, with its labels and the welcome for those it adds.
    Commit {
        /// What the control plane orders it by.
        labels: CommitLabels,
        /// The commit, opaque.
        commit: String,
        /// The welcome, opaque.
        welcome: Option<String>,
    },
}

impl Step {
    /// The client message type, for `error.request` and the metric.
    fn request(&self) -> &'static str {
        match self {
            Step::KeyPackage(_) => "e2ee_key_package",
            Step::Commit { .. } => "e2ee_commit",
        }
    }

    /// The `type` label of `e2ee_handshake_messages_total`.
    fn kind(&self) -> &'static str {
        match self {
            Step::KeyPackage(_) => "key_package",
            Step::Commit { .. } => "commit",
        }
    }

    fn op(&self) -> DsOp {
        match self {
            Step::KeyPackage(_) => DsOp::KeyPackage,
            Step::Commit { labels, .. } => DsOp::Commit(labels.clone()),
        }
    }
}

/// What the room is told of `from`'s step after the control plane
/// answered `reply`, and whom it is not told to: `e2ee_found` to everyone
/// (other waiters resend their key packages at once); a queued key
/// package to everyone but its sender; an accepted commit to everyone,
/// its sender included (that echo is its acceptance), labelled with the
/// epoch it starts from. `None` for a reply that does not fit the step.
pub(crate) fn outcome(
    from: &ParticipantId,
    step: Step,
    reply: DsReply,
) -> Option<(ServerMessage, Option<ParticipantId>)> {
    let participant_id = from.clone();
    Some(match (step, reply) {
        (Step::KeyPackage(_), DsReply::Found { group }) => (
            ServerMessage::E2eeFound {
                participant_id,
                group,
            },
            None,
        ),
        (Step::KeyPackage(key_package), DsReply::Queued { group, .. }) => (
            ServerMessage::E2eeKeyPackage {
                participant_id,
                group,
                key_package,
            },
            Some(from.clone()),
        ),
        (
            Step::Commit {
                labels,
                commit,
                welcome,
            },
            DsReply::Accepted { .. },
        ) => (
            ServerMessage::E2eeCommit {
                participant_id,
                group: labels.group,
                epoch: labels.epoch,
                added: labels.added,
                removed: labels.removed,
                commit,
                welcome,
            },
            None,
        ),
        _ => return None,
    })
}

/// Decides, without I/O, which of one session's handshake messages the
/// node acts on. The caller passes the time.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    /// The room is end-to-end encrypted (from the join token).
    e2ee: bool,
    key_packages: TokenBucket,
    commits: TokenBucket,
}

impl Gate {
    /// A gate for a session in a room that is (or is not) encrypted, with
    /// full budgets at `now_ms`.
    pub(crate) fn new(e2ee: bool, now_ms: UnixMillis) -> Self {
        Gate {
            e2ee,
            key_packages: limits::e2ee::KEY_PACKAGE.bucket(now_ms),
            commits: limits::e2ee::COMMIT.bucket(now_ms),
        }
    }

    /// The step to order for `msg`, or the refusal for its sender: the
    /// room is not encrypted (checked first, so nothing of a plain room's
    /// budget is spent), over the sender's rate, or malformed or too
    /// large. `None` for a message that is not a handshake message.
    pub(crate) fn admit(
        &mut self,
        msg: ClientMessage,
        now_ms: UnixMillis,
    ) -> Option<Result<Step, ErrorBody>> {
        let (step, bucket) = match msg {
            ClientMessage::E2eeKeyPackage { key_package } => {
                (Step::KeyPackage(key_package), &mut self.key_packages)
            }
            ClientMessage::E2eeCommit {
                group,
                epoch,
                added,
                removed,
                commit,
                welcome,
            } => (
                Step::Commit {
                    labels: CommitLabels {
                        group,
                        epoch,
                        added,
                        removed,
                    },
                    commit,
                    welcome,
                },
                &mut self.commits,
            ),
            _ => return None,
        };
        let refuse = |e: E2eeError| ErrorBody::new(e.code(), e.to_string());
        if !self.e2ee {
            return Some(Err(refuse(E2eeError::NotEncryptedRoom)));
        }
        if let Err(retry_ms) = bucket.try_take(now_ms) {
            return Some(Err(ErrorBody::new(
                ErrorCode::RateLimited,
                format!(
                    "you are sending {} messages too fast; try again in {:.1} s",
                    step.request(),
                    retry_ms as f64 / 1000.0
                ),
            )));
        }
        let checked = match &step {
            Step::KeyPackage(kp) => check_key_package(kp),
            Step::Commit {
                labels,
                commit,
                welcome,
            } => check_commit(labels, commit, welcome.as_deref()),
        };
        Some(checked.map(|()| step).map_err(refuse))
    }
}

/// One session's handshake: its [`Gate`] and the queue of its task that
/// has the control plane order each admitted step.
pub(crate) struct Handshake {
    gate: Gate,
    steps: mpsc::Sender<Step>,
    node: Arc<Shared>,
    out: Outbox,
}

impl Handshake {
    /// Starts the task for participant `pid`'s steps in `room`, whose
    /// replies and refusals go to `out`. It ends when the session drops
    /// the handshake.
    pub(crate) fn spawn(
        node: &Arc<Shared>,
        room: &Arc<Room>,
        out: &Outbox,
        pid: &ParticipantId,
        e2ee: bool,
    ) -> Handshake {
        let (steps, mut rx) = mpsc::channel::<Step>(limits::e2ee::QUEUE);
        let (node2, room, out2, pid) = (node.clone(), room.clone(), out.clone(), pid.clone());
        tokio::spawn(
            async move {
                while let Some(step) = rx.recv().await {
                    order(&node2, &room, &out2, &pid, step).await;
                }
            }
            .in_current_span(),
        );
        Handshake {
            gate: Gate::new(e2ee, crate::node::now_ms()),
            steps,
            node: node.clone(),
            out: out.clone(),
        }
    }

    /// Handles a handshake message from the session's participant: queued
    /// for the control plane, or refused to its sender at once.
    pub(crate) fn submit(&mut self, msg: ClientMessage, now_ms: UnixMillis) {
        let request = msg.kind();
        let refusal = match self.gate.admit(msg, now_ms) {
            None => return,
            Some(Ok(step)) => match self.steps.try_send(step) {
                Ok(()) => return,
                Err(e) => {
                    let step = match e {
                        mpsc::error::TrySendError::Full(s)
                        | mpsc::error::TrySendError::Closed(s) => s,
                    };
                    self.node.metrics.e2ee_outcome(step.kind(), "refused");
                    ErrorBody::new(
                        ErrorCode::RateLimited,
                        "too many of your key-agreement messages are waiting; try again in a moment",
                    )
                }
            },
            Some(Err(e)) => {
                let kind = if request == "e2ee_commit" {
                    "commit"
                } else {
                    "key_package"
                };
                self.node.metrics.e2ee_outcome(kind, "refused");
                e
            }
        };
        self.node
            .metrics
            .signalling_errors
            .with_label_values(&[refusal.code.as_str()])
            .inc();
        // Droppable, as every reply to a refused frame: a flooder must not
        // fill its own queue with refusals.
        self.out.send_droppable(ServerMessage::Error {
            error: refusal,
            request: Some(request.to_owned()),
            client_msg_id: None,
        });
    }
}

/// Has the control plane order one step of `pid`'s and tells the room, or
/// tells `pid` why not.
async fn order(node: &Shared, room: &Room, out: &Outbox, pid: &ParticipantId, step: Step) {
    let (request, kind) = (step.request(), step.kind());
    let req = DsRequest {
        room_id: room.id(),
        participant_id: pid.clone(),
        op: step.op(),
    };
    // Held until the broadcast: see the module doc.
    let _turn = room.handshake_turn().await;
    match node.cp.e2ee(&req).await {
        Ok(reply) => match outcome(pid, step, reply) {
            Some((msg, except)) => {
                node.metrics
                    .e2ee_outcome(crate::metrics::e2ee_kind(&msg), "relayed");
                room.e2ee(msg, except);
            }
            None => {
                warn!(
                    request,
                    ?reply,
                    "the control plane answered a handshake step with a reply of another kind"
                );
                node.metrics.e2ee_outcome(kind, "refused");
                node.reply_error(
                    out,
                    ErrorBody::new(
                        ErrorCode::Internal,
                        "the key agreement could not be ordered; try again",
                    ),
                    request,
                    None,
                );
            }
        },
        Err(e) => {
            tracing::info!(
                request,
                code = e.code.as_str(),
                "handshake step refused: {}",
                e.message
            );
            node.metrics.e2ee_outcome(kind, "refused");
            node.reply_error(out, e, request, None);
        }
    }
}

#[cfg(test)]
#[path = "e2ee_tests.rs"]
mod tests;
