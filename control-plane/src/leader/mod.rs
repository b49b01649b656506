//! Making a multi-node control plane look like one: every node accepts
//! every request, and whatever only the leader can do travels to it.
//!
//! Four things need the leader: writes (only it appends to the log), the
//! read index of a linearizable read (only it can confirm with a quorum
//! that nothing newer is committed), membership changes, and media-node
//! liveness and placement (kept in its memory). They all travel as one
//! internal RPC, [`LEADER_RPC`], carrying a [`LeaderRequest`]. A node that is
//! leader runs the request itself; a follower sends it to the leader it
//! knows; either way the result is the same [`LeaderReply`].
//!
//! When leadership moves mid-request the caller retries with the new
//! leader, as the pure policy in [`retry`] decides: up to 10 s, and only
//! when doing it twice is harmless: reads and membership steps always are,
//! and writes are when their command is idempotent
//! ([`crate::store::model::Command::is_idempotent`]). A non-idempotent
//! write whose outcome is unknown (sent, then the connection died) is
//! reported as such instead of being guessed at.
//!
//! - [`rpc`]: the request and reply types of [`LEADER_RPC`].
//! - `peer.rs`: the HTTP client that carries them to the leader.
//! - [`retry`]: when to try again.
//! - `duties.rs`: what the leader does with each request (writes, read
//!   index, membership, media-node heartbeats, placement and drains).
//! - `status.rs`: this node's view of the cluster, for the admin API and
//!   for media nodes.
//! - [`Replicated`]: the [`crate::store::Store`] as this node serves it,
//!   forwarding included.
//!
//! (`veche cluster`, the CLI, lives in the root crate's `cluster_cmd.rs`;
//! the test and load harnesses have their own cluster modules.)

mod duties;
mod peer;
mod replicated;
pub mod retry;
pub mod rpc;
mod status;

pub(crate) use peer::PeerClient;
pub use replicated::Replicated;
pub use rpc::{LeaderReply, LeaderRequest, LEADER_RPC};

use crate::error::ApiError;
use crate::store::model::{Command, CommandResult};
use crate::ControlPlane;
use peer::SendError;
use retry::{Decision, Failure, GiveUp, RetryPolicy};
use std::time::Instant;
use veche_protocol::ErrorCode;

fn unavailable(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unavailable, msg)
}

impl ControlPlane {
    /// Runs `req` on the leader, wherever it is, retrying across leader
    /// changes while that is safe. Never returns [`LeaderReply::NotLeader`]
    /// or [`LeaderReply::Failed`]; those become retries and errors.
    pub(crate) async fn on_leader(&self, req: LeaderRequest) -> Result<LeaderReply, ApiError> {
        let mut retries = RetryPolicy::FORWARDING.start(req.retry_is_safe(), Instant::now());
        loop {
            let attempt = if self.store.is_leader() {
                Ok(self.execute_as_leader(&req).await)
            } else {
                match self.store.leader() {
                    Some((id, addr)) if id != self.config.node_id => {
                        self.metrics
                            .forwarded
                            .with_label_values(&[req.kind()])
                            .inc();
                        self.peers.call(&addr, &req).await
                    }
                    _ => Err(SendError::NotSent("no leader is known yet".into())),
                }
            };
            let (failure, problem) = match attempt {
                Ok(LeaderReply::NotLeader) => (Failure::NotLeader, "leadership moved".to_owned()),
                Ok(LeaderReply::Failed(e)) => return Err(ApiError(e)),
                Ok(LeaderReply::Ambiguous(why)) | Err(SendError::Ambiguous(why)) => {
                    (Failure::Ambiguous, why)
                }
                Err(SendError::NotSent(why)) => (Failure::NotSent, why),
                Ok(reply) => return Ok(reply),
            };
            match retries.after(failure, Instant::now()) {
                Decision::RetryAfter(wait) => tokio::time::sleep(wait).await,
                Decision::GiveUp(GiveUp::OutcomeUnknown) => {
                    tracing::warn!(kind = req.kind(), %problem, "outcome of a write is unknown");
                    return Err(unavailable(
                        "the control plane lost its leader during the request; \
                         it may or may not have been applied",
                    ));
                }
                Decision::GiveUp(GiveUp::NoLeader) => {
                    tracing::warn!(kind = req.kind(), %problem, "no leader answered");
                    // The details (peer addresses, quorum membership) are
                    // for the operator's log, not for API clients.
                    return Err(unavailable(
                        "the control plane has no leader right now; retry shortly",
                    ));
                }
            }
        }
    }

    /// Proposes `cmd` through the leader and returns its result. Private
    /// to `leader`: the rest of the crate writes through [`Replicated`],
    /// the [`crate::store::Store`] that wraps this.
    async fn write(&self, cmd: Command) -> Result<CommandResult, ApiError> {
        match self.on_leader(LeaderRequest::Write(cmd)).await? {
            LeaderReply::Written(r) => Ok(r),
            other => Err(unexpected_reply(other)),
        }
    }

    /// A read barrier: once it returns, this node's state machine includes
    /// every write acknowledged before the call began, so local reads that
    /// follow are linearizable. On a follower this costs one round trip to
    /// the leader plus waiting for the local apply, not a transfer of data.
    ///
    /// Private to `leader`, like [`ControlPlane::write`]: the rest of the
    /// crate reads through [`Replicated`].
    async fn read_barrier(&self) -> Result<(), ApiError> {
        let index = match self.on_leader(LeaderRequest::ReadIndex).await? {
            LeaderReply::ReadIndex(i) => i,
            other => return Err(unexpected_reply(other)),
        };
        self.store
            .wait_applied(index, crate::store::raft_store::REQUEST_TIMEOUT)
            .await
            .map_err(|e| {
                tracing::warn!(index, error = %e, "follower did not catch up for a read");
                unavailable("this control-plane node is catching up; retry shortly")
            })
    }
}

fn unexpected_reply(reply: LeaderReply) -> ApiError {
    tracing::error!(?reply, "unexpected reply from the leader");
    ApiError::new(ErrorCode::Internal, "unexpected reply from the leader")
}
