//! What the leader does with each [`LeaderRequest`]: writes, the read
//! index, membership changes, and the media-node duties that need the
//! leader's in-memory liveness table (heartbeats, placement, drains).

use super::rpc::{LeaderReply, LeaderRequest};
use crate::error::ApiError;
use crate::store::{Store, StoreError};
use crate::ControlPlane;
use std::time::Instant;
use veche_protocol::admin::{MediaNodeStatus, Placement};
use veche_protocol::rpc::{Heartbeat, HeartbeatReply, RoomNodes};
use veche_protocol::{ErrorCode, NodeId};

impl ControlPlane {
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

    /// Records a heartbeat and answers it: whether the node is registered,
    /// whether it is draining, and for each room it reported, the other
    /// nodes hosting it and the room's policy version (rooms whose policy
    /// nobody changed are left out: version 0).
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
                policy_versions: Vec::new(),
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
        // Read like the registrations above, without a barrier: a version
        // a beat late only delays a node's fetch by a beat.
        let policy_versions = self
            .store
            .local()
            .docs(|d| crate::store::policies::versions_of(d, &hb.room_ids))?;
        Ok(HeartbeatReply {
            registered: true,
            control_planes: self.control_plane_urls(),
            draining: me.draining,
            room_nodes,
            policy_versions,
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
            match self.store.set_media_node_draining(node, draining).await {
                Ok(_) => tracing::info!(%node, draining, "media node drain flag set"),
                // Only `NoSuchMediaNode`, which the check above rules out
                // unless the node vanished in between.
                Err(StoreError::Refused(e)) => {
                    return Ok(Err(ApiError::new(ErrorCode::BadRequest, e.to_string())));
                }
                Err(e) => return Err(e),
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
}
