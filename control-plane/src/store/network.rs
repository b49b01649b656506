//! Raft RPC between control-plane nodes: HTTP POSTs with MessagePack bodies.
//!
//! | Path             | Request                  | Response                                                     |
//! |------------------|--------------------------|--------------------------------------------------------------|
//! | `/raft/append`   | `AppendEntriesRequest`   | `Result<AppendEntriesResponse, RaftError>`                   |
//! | `/raft/vote`     | `VoteRequest`            | `Result<VoteResponse, RaftError>`                            |
//! | `/raft/snapshot` | `InstallSnapshotRequest` | `Result<InstallSnapshotResponse, RaftError<InstallSnapshotError>>` |
//!
//! Bodies are `rmp_serde::to_vec_named` (maps with field names, like the
//! stored values), content type `application/msgpack`. A body that does not
//! decode gets `400` with a plain-text reason. Raft's own refusals travel
//! inside a `200` as the `Err` side of the result, so the client can tell
//! "the peer said no" from "the peer could not be reached".
//!
//! Snapshots go as openraft's chunked `InstallSnapshotRequest`s (the
//! default `RaftNetwork::full_snapshot`); each chunk is at most
//! `Config::snapshot_max_chunk_size` bytes.
//!
//! [`raft_router`] itself does no authentication; the control plane mounts
//! it behind its cluster-secret check, and [`HttpNetworkFactory::with_bearer_token`]
//! presents the secret. Anyone holding the secret can disrupt the cluster,
//! so the routes should also only be reachable from the other nodes.

use super::types::{Raft, TypeConfig};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RPCTypes};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;

/// Content type of every Raft RPC body.
pub const MSGPACK: &str = "application/msgpack";

/// Largest accepted Raft RPC body. axum's 2 MiB default is too small for an
/// append of `max_payload_entries` full-length chat messages or a snapshot
/// chunk (MessagePack spends up to two bytes per snapshot byte).
pub const MAX_RAFT_BODY_BYTES: usize = 16 << 20;

/// Creates [`HttpNetwork`] clients; one per peer, sharing one connection
/// pool.
#[derive(Clone)]
pub struct HttpNetworkFactory {
    /// This node's id, reported in timeout errors.
    node_id: u64,
    client: reqwest::Client,
    /// Sent as `Authorization: Bearer ..` when the peers' Raft routes sit
    /// behind a shared-secret check.
    bearer_token: Option<Arc<str>>,
}

/// The HTTP client of Raft RPCs: idle pooled connections are dropped
/// before the peer's header-read timeout closes them.
fn client(local_address: Option<std::net::IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local_address)
        .pool_idle_timeout(std::time::Duration::from_millis(
            veche_protocol::limits::http::CLIENT_POOL_IDLE_MS,
        ))
        .build()
        .expect("static client config is valid")
}

impl HttpNetworkFactory {
    /// A factory for node `node_id`'s outgoing Raft RPCs, unauthenticated.
    pub fn new(node_id: u64) -> Self {
        HttpNetworkFactory {
            node_id,
            client: client(None),
            bearer_token: None,
        }
    }

    /// Sends every RPC from `ip`, so that this node's Raft traffic has one
    /// source address (which a firewall rule, or a test's partition, can
    /// name).
    pub fn with_local_address(mut self, ip: std::net::IpAddr) -> Self {
        self.client = client(Some(ip));
        self
    }

    /// Presents `token` as `Authorization: Bearer <token>` on every RPC, for
    /// peers that guard [`raft_router`] with a cluster secret.
    pub fn with_bearer_token(mut self, token: impl Into<Arc<str>>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }
}

impl std::fmt::Debug for HttpNetworkFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("HttpNetworkFactory")
            .field("node_id", &self.node_id)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetworkFactory {
    type Network = HttpNetwork;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> HttpNetwork {
        HttpNetwork {
            from: self.node_id,
            target,
            node: node.clone(),
            client: self.client.clone(),
            bearer_token: self.bearer_token.clone(),
        }
    }
}

/// The Raft RPC client towards one peer.
pub struct HttpNetwork {
    from: u64,
    target: u64,
    node: BasicNode,
    client: reqwest::Client,
    bearer_token: Option<Arc<str>>,
}

/// A peer answered with something other than `200`.
#[derive(Debug, thiserror::Error)]
#[error("{url} answered {status}: {body}")]
struct HttpStatusError {
    url: String,
    status: reqwest::StatusCode,
    body: String,
}

impl HttpNetwork {
    /// POSTs `req` to `{addr}/raft/{path}` and decodes the peer's
    /// `Result<Resp, E>`.
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        action: RPCTypes,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("{}/raft/{path}", self.node.addr.trim_end_matches('/'));
        let body = rmp_serde::to_vec_named(req).map_err(|e| NetworkError::new(&e))?;
        let timeout = option.hard_ttl();
        let mut request = self
            .client
            .post(&url)
            .header(header::CONTENT_TYPE, MSGPACK)
            .timeout(timeout)
            .body(body);
        if let Some(token) = &self.bearer_token {
            request = request.bearer_auth(token);
        }
        let sent = request.send().await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) if e.is_timeout() => {
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.from,
                    target: self.target,
                    timeout,
                }))
            }
            // Nothing listening, or no route: back off before retrying.
            Err(e) if e.is_connect() => return Err(Unreachable::new(&e).into()),
            Err(e) => return Err(NetworkError::new(&e).into()),
        };
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            let body = resp.text().await.unwrap_or_default();
            return Err(NetworkError::new(&HttpStatusError { url, status, body }).into());
        }
        let bytes = resp.bytes().await.map_err(|e| NetworkError::new(&e))?;
        let result: Result<Resp, E> =
            veche_protocol::msgpack::from_slice(&bytes).map_err(|e| NetworkError::new(&e))?;
        result.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }
}

impl RaftNetwork<TypeConfig> for HttpNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call("append", RPCTypes::AppendEntries, &rpc, &option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.call("snapshot", RPCTypes::InstallSnapshot, &rpc, &option)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call("vote", RPCTypes::Vote, &rpc, &option).await
    }
}

/// The server side of the Raft RPCs: `POST /raft/{append,vote,snapshot}`,
/// to be merged into the control plane's HTTP router.
///
/// The routes carry their own state (`raft`), so the result fits into a
/// router of any state type `S`; plain `axum::Router` callers get `S = ()`.
/// Authentication is the caller's layer to add (see
/// [`HttpNetworkFactory::with_bearer_token`] for the client side).
pub fn raft_router<S>(raft: Raft) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    axum::Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .layer(DefaultBodyLimit::max(MAX_RAFT_BODY_BYTES))
        .with_state(raft)
}

async fn append(State(raft): State<Raft>, body: Bytes) -> Response {
    match decode_request::<AppendEntriesRequest<TypeConfig>>(&body, "AppendEntriesRequest") {
        Ok(req) => msgpack_response(&raft.append_entries(req).await),
        Err(reason) => bad_request(reason),
    }
}

async fn vote(State(raft): State<Raft>, body: Bytes) -> Response {
    match decode_request::<VoteRequest<u64>>(&body, "VoteRequest") {
        Ok(req) => msgpack_response(&raft.vote(req).await),
        Err(reason) => bad_request(reason),
    }
}

async fn snapshot(State(raft): State<Raft>, body: Bytes) -> Response {
    match decode_request::<InstallSnapshotRequest<TypeConfig>>(&body, "InstallSnapshotRequest") {
        Ok(req) => msgpack_response(&raft.install_snapshot(req).await),
        Err(reason) => bad_request(reason),
    }
}

/// Decodes an RPC body, or says why it does not decode.
fn decode_request<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, String> {
    veche_protocol::msgpack::from_slice(body).map_err(|e| {
        tracing::warn!(error = %e, what, "undecodable raft RPC body");
        format!("body is not a MessagePack {what}: {e}")
    })
}

fn bad_request(reason: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        reason,
    )
        .into_response()
}

fn msgpack_response<T: Serialize>(value: &T) -> Response {
    match rmp_serde::to_vec_named(value) {
        Ok(bytes) => ([(header::CONTENT_TYPE, MSGPACK)], bytes).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "encoding raft RPC response");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("encoding the response failed: {e}"),
            )
                .into_response()
        }
    }
}
