//! The media node's client for the control plane's internal RPC
//! (MessagePack over HTTP). The node never touches the control plane's
//! storage directly, even when both run in one process, so that a node
//! works the same against a remote cluster.

use veche_protocol::chat::ChatMessage;
use veche_protocol::error::ErrorBody;
use veche_protocol::rpc::{
    CommitChat, RegisterNode, RegisterNodeReply, RPC_COMMIT_CHAT, RPC_REGISTER_NODE,
};
use veche_protocol::ErrorCode;

/// HTTP client bound to one control-plane base URL.
#[derive(Clone)]
pub struct ControlPlaneClient {
    base: String,
    secret: String,
    http: reqwest::Client,
}

impl ControlPlaneClient {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`) that presents
    /// the cluster secret.
    pub fn new(base: impl Into<String>, secret: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("static client config is valid");
        ControlPlaneClient {
            base: base.into().trim_end_matches('/').to_owned(),
            secret: secret.into(),
            http,
        }
    }

    async fn call<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Resp, ErrorBody> {
        let body = rmp_serde::to_vec_named(req)
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("encode: {e}")))?;
        let resp = self
            .http
            .post(format!("{}{}", self.base, path))
            .header("content-type", "application/msgpack")
            .bearer_auth(&self.secret)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                ErrorBody::new(
                    ErrorCode::Unavailable,
                    format!("control plane unreachable: {e}"),
                )
            })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| {
            ErrorBody::new(ErrorCode::Unavailable, format!("control plane read: {e}"))
        })?;
        if status.is_success() {
            rmp_serde::from_slice(&bytes)
                .map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("decode reply: {e}")))
        } else {
            Err(
                rmp_serde::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| {
                    ErrorBody::new(
                        ErrorCode::Internal,
                        format!("control plane answered {status}"),
                    )
                }),
            )
        }
    }

    /// Registers this node; returns the token public key.
    pub async fn register(&self, req: &RegisterNode) -> Result<RegisterNodeReply, ErrorBody> {
        self.call(RPC_REGISTER_NODE, req).await
    }

    /// Commits a chat message through Raft; returns it as stored.
    pub async fn commit_chat(&self, req: &CommitChat) -> Result<ChatMessage, ErrorBody> {
        self.call(RPC_COMMIT_CHAT, req).await
    }
}
