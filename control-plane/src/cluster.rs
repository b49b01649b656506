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
//! leader, up to [`FORWARD_DEADLINE`]. A request is only retried when doing
//! it twice is harmless: reads and membership steps always are, and writes
//! are when their command is idempotent
//! ([`crate::store::model::Command::is_idempotent`]). A non-idempotent
//! write whose outcome is unknown (sent, then the connection died) is
//! reported as such instead of being guessed at.

use crate::error::ApiError;
use crate::store::model::{Command, CommandResult};
use crate::store::StoreError;
use crate::ControlPlane;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use veche_protocol::admin::{ClusterStatus, MediaNodeStatus, MemberStatus, Placement};
use veche_protocol::error::ErrorBody;
use veche_protocol::rpc::{Heartbeat, HeartbeatReply, RoomNodes};
use veche_protocol::{ErrorCode, NodeId};

/// The internal RPC path for [`LeaderRequest`]s.
pub const LEADER_RPC: &str = "/internal/v1/leader";

/// How long a request keeps looking for a leader. An election takes up to
/// `election_timeout_max` after the old leader's last heartbeat; this
/// leaves room for two failed ones.
pub const FORWARD_DEADLINE: Duration = Duration::from_secs(10);

/// Something only the leader can do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LeaderRequest {
    /// Propose a command; the reply is its result.
    Write(Command),
    /// Confirm leadership and return the read index.
    ReadIndex,
    /// Add a control-plane node as a voter.
    AddVoter {
        /// Raft id.
        id: u64,
        /// Base URL.
        addr: String,
    },
    /// Remove a control-plane node.
    RemoveMember {
        /// Raft id.
        id: u64,
    },
    /// A media node's heartbeat.
    Heartbeat(Heartbeat),
    /// Choose a media node for a new participant of a room.
    Place {
        /// The room.
        room: veche_protocol::RoomId,
        /// The region the participant is in, if known: nodes there first.
        #[serde(default)]
        region: Option<String>,
        /// A node the participant could not reach: never chosen.
        #[serde(default)]
        avoid: Option<NodeId>,
    },
    /// Drain a media node (no new participants) or put it back in service.
    /// Draining is refused when no other alive node in service would be
    /// left to take its participants.
    SetDraining {
        /// The media node.
        node: NodeId,
        /// Drain, or undrain.
        draining: bool,
    },
}

impl LeaderRequest {
    fn retry_is_safe(&self) -> bool {
        match self {
            LeaderRequest::Write(cmd) => cmd.is_idempotent(),
            _ => true,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            LeaderRequest::Write(_) => "write",
            LeaderRequest::ReadIndex => "read_index",
            LeaderRequest::AddVoter { .. } => "add_voter",
            LeaderRequest::RemoveMember { .. } => "remove_member",
            LeaderRequest::Heartbeat(_) => "heartbeat",
            LeaderRequest::Place { .. } => "place",
            LeaderRequest::SetDraining { .. } => "set_draining",
        }
    }
}

/// The answer to a [`LeaderRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LeaderReply {
    /// The command's result.
    Written(CommandResult),
    /// The read index.
    ReadIndex(u64),
    /// A membership change completed.
    Done,
    /// Heartbeat recorded (or the node is unknown).
    Heartbeat(HeartbeatReply),
    /// The chosen media node, if any is available.
    Placed(Option<Placement>),
    /// A media node's status after a drain or undrain.
    MediaNode(MediaNodeStatus),
    /// The receiver is not the leader (any more): ask again.
    NotLeader,
    /// The leader could not reach a quorum in time. The request may or may
    /// not have taken effect.
    Ambiguous(String),
    /// A final answer: the request was refused or failed.
    Failed(ErrorBody),
}

/// Why sending to a peer failed.
enum SendError {
    /// The request never left (nothing listening, connection refused):
    /// safe to retry anything.
    NotSent(String),
    /// Sent, but no answer came back: it may have taken effect.
    Ambiguous(String),
}

/// HTTP client for control-plane to control-plane calls.
#[derive(Clone)]
pub(crate) struct PeerClient {
    http: reqwest::Client,
    secret: Arc<str>,
}

impl PeerClient {
    /// A client presenting `secret`; outgoing connections come from
    /// `bind_ip` when set, so a node's traffic has one source address (and
    /// a firewall rule, or a test's partition, can name it).
    pub(crate) fn new(secret: &str, bind_ip: Option<IpAddr>) -> Self {
        let http = reqwest::Client::builder()
            .local_address(bind_ip)
            .connect_timeout(Duration::from_millis(500))
            .build()
            .expect("static client config is valid");
        PeerClient {
            http,
            secret: secret.into(),
        }
    }

    async fn call(&self, base: &str, req: &LeaderRequest) -> Result<LeaderReply, SendError> {
        let body = rmp_serde::to_vec_named(req).map_err(|e| SendError::NotSent(e.to_string()))?;
        let url = format!("{}{LEADER_RPC}", base.trim_end_matches('/'));
        // A membership step waits for a learner to catch up and for joint
        // consensus; everything else is one Raft round.
        let timeout = match req {
            LeaderRequest::AddVoter { .. } | LeaderRequest::RemoveMember { .. } => {
                crate::store::raft_store::MEMBERSHIP_TIMEOUT * 2 + Duration::from_secs(5)
            }
            _ => crate::store::raft_store::REQUEST_TIMEOUT + Duration::from_secs(1),
        };
        let resp = self
            .http
            .post(&url)
            .timeout(timeout)
            .header("content-type", "application/msgpack")
            .bearer_auth(&self.secret)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    SendError::NotSent(format!("{url}: {e}"))
                } else {
                    SendError::Ambiguous(format!("{url}: {e}"))
                }
            })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| SendError::Ambiguous(format!("{url}: {e}")))?;
        if !status.is_success() {
            return Err(SendError::NotSent(format!("{url} answered {status}")));
        }
        rmp_serde::from_slice(&bytes)
            .map_err(|e| SendError::Ambiguous(format!("{url}: undecodable reply: {e}")))
    }
}

fn unavailable(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unavailable, msg)
}

impl ControlPlane {
    /// Runs `req` on the leader, wherever it is, retrying across leader
    /// changes while that is safe. Never returns [`LeaderReply::NotLeader`]
    /// or [`LeaderReply::Failed`]; those become retries and errors.
    pub(crate) async fn on_leader(&self, req: LeaderRequest) -> Result<LeaderReply, ApiError> {
        let deadline = Instant::now() + FORWARD_DEADLINE;
        let mut backoff = Duration::from_millis(20);
        let mut last_problem: String;
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
            match attempt {
                Ok(LeaderReply::NotLeader) => last_problem = "leadership moved".into(),
                Ok(LeaderReply::Failed(e)) => return Err(ApiError(e)),
                Ok(LeaderReply::Ambiguous(why)) | Err(SendError::Ambiguous(why)) => {
                    if !req.retry_is_safe() {
                        tracing::warn!(kind = req.kind(), %why, "outcome of a write is unknown");
                        return Err(unavailable(
                            "the control plane lost its leader during the request; \
                             it may or may not have been applied",
                        ));
                    }
                    last_problem = why;
                }
                Err(SendError::NotSent(why)) => last_problem = why,
                Ok(reply) => return Ok(reply),
            }
            if Instant::now() + backoff > deadline {
                tracing::warn!(kind = req.kind(), problem = %last_problem, "no leader answered");
                // The details (peer addresses, quorum membership) are for
                // the operator's log, not for API clients.
                return Err(unavailable(
                    "the control plane has no leader right now; retry shortly",
                ));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
    }

    /// Runs `req` here, as the leader. Returns `NotLeader` if this node is
    /// not (or no longer) the leader.
    pub(crate) async fn execute_as_leader(&self, req: &LeaderRequest) -> LeaderReply {
        let result = match req {
            LeaderRequest::Write(cmd) => self
                .store
                .write(cmd.clone())
                .await
                .map(LeaderReply::Written),
            LeaderRequest::ReadIndex => self.store.read_index().await.map(LeaderReply::ReadIndex),
            LeaderRequest::AddVoter { id, addr } => {
                tracing::info!(id, %addr, "adding control-plane node");
                self.store
                    .add_voter(*id, addr.clone())
                    .await
                    .map(|()| LeaderReply::Done)
            }
            LeaderRequest::RemoveMember { id } => {
                tracing::info!(id, "removing control-plane node");
                self.store
                    .remove_member(*id)
                    .await
                    .map(|()| LeaderReply::Done)
            }
            LeaderRequest::Heartbeat(hb) => self.leader_heartbeat(hb).map(LeaderReply::Heartbeat),
            LeaderRequest::Place {
                room,
                region,
                avoid,
            } => self
                .leader_place(*room, region.as_deref(), *avoid)
                .map(LeaderReply::Placed),
            LeaderRequest::SetDraining { node, draining } => {
                match self.leader_set_draining(*node, *draining).await {
                    Ok(Ok(status)) => Ok(LeaderReply::MediaNode(status)),
                    Ok(Err(refusal)) => Ok(LeaderReply::Failed(refusal.0)),
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(reply) => reply,
            Err(StoreError::NotLeader { .. }) => LeaderReply::NotLeader,
            Err(StoreError::Timeout { timeout }) => {
                LeaderReply::Ambiguous(format!("no quorum answered within {timeout:?}"))
            }
            Err(StoreError::Unavailable { reason }) => LeaderReply::Ambiguous(reason),
            Err(other) => LeaderReply::Failed(ApiError::from(other).0),
        }
    }

    /// Proposes `cmd` through the leader and returns its result.
    pub(crate) async fn write(&self, cmd: Command) -> Result<CommandResult, ApiError> {
        match self.on_leader(LeaderRequest::Write(cmd)).await? {
            LeaderReply::Written(r) => Ok(r),
            other => Err(unexpected_reply(other)),
        }
    }

    /// A read barrier: once it returns, this node's state machine includes
    /// every write acknowledged before the call began, so local reads that
    /// follow are linearizable. On a follower this costs one round trip to
    /// the leader plus waiting for the local apply, not a transfer of data.
    pub(crate) async fn read_barrier(&self) -> Result<(), ApiError> {
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

    /// Records a heartbeat and answers it: whether the node is registered,
    /// whether it is draining, and for each room it reported, the other
    /// nodes hosting it.
    ///
    /// Registrations and drain flags are read from the leader's own state
    /// machine without a read barrier: the leader applies what it commits,
    /// and in the first instants of a new term, when an earlier leader's
    /// last entries may not be applied here yet, the next beat a second
    /// later gets the current answer.
    fn leader_heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatReply, StoreError> {
        let nodes = self.store.local().media_nodes()?;
        let Some(me) = nodes.iter().find(|n| n.info.node_id == hb.node_id) else {
            return Ok(HeartbeatReply {
                registered: false,
                control_planes: self.control_plane_urls(),
                draining: false,
                room_nodes: Vec::new(),
            });
        };
        let now = Instant::now();
        let room_nodes = {
            let mut l = self.liveness.lock().expect("lock poisoned");
            l.observe_term(self.store.current_term(), now);
            l.heartbeat(hb.node_id, hb.participants, &hb.room_ids, now);
            hb.room_ids
                .iter()
                .map(|room| RoomNodes {
                    room_id: *room,
                    nodes: l.room_nodes(*room, hb.node_id, &nodes, now),
                })
                .filter(|r| !r.nodes.is_empty())
                .collect()
        };
        Ok(HeartbeatReply {
            registered: true,
            control_planes: self.control_plane_urls(),
            draining: me.draining,
            room_nodes,
        })
    }

    fn leader_place(
        &self,
        room: veche_protocol::RoomId,
        region: Option<&str>,
        avoid: Option<NodeId>,
    ) -> Result<Option<Placement>, StoreError> {
        let nodes = self.store.local().media_nodes()?;
        let now = Instant::now();
        let mut l = self.liveness.lock().expect("lock poisoned");
        l.observe_term(self.store.current_term(), now);
        Ok(l.place(room, &nodes, region, avoid, now)
            .map(|p| Placement {
                node_id: p.node.node_id,
                ws_url: p.node.ws_url.clone(),
                room_nodes: p.room_nodes,
            }))
    }

    /// Sets a media node's drain flag through the log, after checking, with
    /// the leader's liveness table, that draining leaves another node in
    /// service. The outer error is the store's; the inner one a refusal to
    /// pass on to the caller as is.
    async fn leader_set_draining(
        &self,
        node: NodeId,
        draining: bool,
    ) -> Result<Result<MediaNodeStatus, ApiError>, StoreError> {
        // One drain decision at a time: two nodes drained at once must not
        // each count the other as the one left in service.
        let _one_at_a_time = self.drain_lock.lock().await;
        let nodes = self.store.local().media_nodes()?;
        let Some(target) = nodes.iter().find(|n| n.info.node_id == node) else {
            return Ok(Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("media node {node} is not registered"),
            )));
        };
        if draining && !target.draining {
            let now = Instant::now();
            let others_in_service = {
                let mut l = self.liveness.lock().expect("lock poisoned");
                l.observe_term(self.store.current_term(), now);
                nodes.iter().any(|n| {
                    n.info.node_id != node && !n.draining && l.is_alive(n.info.node_id, now)
                })
            };
            if !others_in_service {
                return Ok(Err(ApiError::new(
                    ErrorCode::InvalidState,
                    format!(
                        "no other media node is alive and in service to take the participants \
                         of media node {node}; start or undrain another one first"
                    ),
                )));
            }
        }
        if target.draining != draining {
            match self
                .store
                .write(Command::SetMediaNodeDraining {
                    node_id: node,
                    draining,
                })
                .await?
            {
                Ok(_) => tracing::info!(%node, draining, "media node drain flag set"),
                Err(e) => {
                    // Only `NoSuchMediaNode`, which the check above rules
                    // out unless the node vanished in between.
                    return Ok(Err(ApiError::new(ErrorCode::BadRequest, e.to_string())));
                }
            }
        }
        let nodes = self.store.local().media_nodes()?;
        let now = Instant::now();
        let mut l = self.liveness.lock().expect("lock poisoned");
        l.observe_term(self.store.current_term(), now);
        Ok(l.status(&nodes, now)
            .into_iter()
            .find(|s| s.info.node_id == node)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("media node {node} is not registered"),
                )
            }))
    }

    /// Base URLs of every control-plane node, the leader first, for media
    /// nodes to fail over between.
    pub(crate) fn control_plane_urls(&self) -> Vec<String> {
        let members = self.store.member_addrs();
        let leader = self.store.leader().map(|(id, _)| id);
        let mut urls: Vec<(bool, String)> = members
            .into_iter()
            .map(|(id, addr)| (Some(id) != leader, addr))
            .collect();
        urls.sort();
        urls.into_iter().map(|(_, a)| a).collect()
    }

    /// This node's view of the cluster; on the leader it includes
    /// replication progress and media-node liveness.
    pub(crate) fn status(&self) -> ClusterStatus {
        let m = self.store.raft().metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
        let matched = |id: u64| {
            m.replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .map(|l| l.index)
        };
        let mut members: Vec<MemberStatus> = membership
            .nodes()
            .map(|(id, n)| MemberStatus {
                id: *id,
                addr: n.addr.clone(),
                voter: voters.contains(id),
                matched_index: matched(*id),
            })
            .collect();
        members.sort_by_key(|s| (!s.voter, s.id));
        let leader = m
            .current_leader
            .and_then(|id| members.iter().find(|s| s.id == id).cloned());
        let is_leader = m.state == openraft::ServerState::Leader;
        let media_nodes = if is_leader {
            self.store.local().media_nodes().ok().map(|nodes| {
                let now = Instant::now();
                let mut l = self.liveness.lock().expect("lock poisoned");
                l.observe_term(m.current_term, now);
                l.status(&nodes, now)
            })
        } else {
            None
        };
        ClusterStatus {
            node_id: self.config.node_id,
            state: format!("{:?}", m.state),
            term: m.current_term,
            leader,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            members,
            media_nodes,
        }
    }
}

fn unexpected_reply(reply: LeaderReply) -> ApiError {
    tracing::error!(?reply, "unexpected reply from the leader");
    ApiError::new(ErrorCode::Internal, "unexpected reply from the leader")
}
