//! The operator API (JSON, behind the cluster secret): cluster status,
//! membership changes and media-node drains.

use super::parse_json;
use crate::error::ApiError;
use crate::leader::{LeaderReply, LeaderRequest};
use crate::ControlPlane;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use std::sync::Arc;
use veche_protocol::admin::{AddMemberRequest, ClusterStatus, MediaNodeStatus};
use veche_protocol::{ErrorCode, NodeId};

/// `GET /api/admin/cluster`: this node's view.
pub(super) async fn cluster_status(State(cp): State<Arc<ControlPlane>>) -> Json<ClusterStatus> {
    Json(cp.status())
}

/// `POST /api/admin/cluster/members`: add a node as a voter (through the
/// leader). Answers once the node has caught up and votes.
pub(super) async fn add_member(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Json<ClusterStatus>, ApiError> {
    let req: AddMemberRequest = parse_json(&body)?;
    if !(req.addr.starts_with("http://") || req.addr.starts_with("https://")) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "addr must be a base URL like http://10.0.0.4:8080",
        ));
    }
    cp.on_leader(LeaderRequest::AddVoter {
        id: req.id,
        addr: req.addr,
    })
    .await?;
    Ok(Json(cp.status()))
}

/// `DELETE /api/admin/cluster/members/{id}`: remove a node.
pub(super) async fn remove_member(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
) -> Result<Json<ClusterStatus>, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "member id must be a number"))?;
    if !cp.is_member(id) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("node {id} is not a member of this cluster"),
        ));
    }
    cp.on_leader(LeaderRequest::RemoveMember { id }).await?;
    Ok(Json(cp.status()))
}

fn parse_media_node_id(id: &str) -> Result<NodeId, ApiError> {
    id.parse()
        .map(NodeId)
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "media node id must be a number"))
}

async fn set_draining(
    cp: &ControlPlane,
    node: NodeId,
    draining: bool,
) -> Result<MediaNodeStatus, ApiError> {
    match cp
        .on_leader(LeaderRequest::SetDraining { node, draining })
        .await?
    {
        LeaderReply::MediaNode(status) => Ok(status),
        other => Err(ApiError::new(
            ErrorCode::Internal,
            format!("unexpected leader reply {other:?}"),
        )),
    }
}

/// `POST /api/admin/media-nodes/{id}/drain`: place no one new on the node,
/// and tell it (in its heartbeat replies) to move its participants. `202`:
/// the node empties over the next seconds or minutes.
pub(super) async fn drain_media_node(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<MediaNodeStatus>), ApiError> {
    let node = parse_media_node_id(&id)?;
    let status = set_draining(&cp, node, true).await?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// `DELETE /api/admin/media-nodes/{id}/drain`: back in service.
pub(super) async fn undrain_media_node(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
) -> Result<Json<MediaNodeStatus>, ApiError> {
    let node = parse_media_node_id(&id)?;
    Ok(Json(set_draining(&cp, node, false).await?))
}
