//! [`PeerClient`]: carries [`LeaderRequest`]s to another control-plane
//! node over HTTP, and tells "never sent" from "sent, outcome unknown".

use super::rpc::{LeaderReply, LeaderRequest, LEADER_RPC};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why sending to a peer failed.
pub(super) enum SendError {
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
            .pool_idle_timeout(Duration::from_millis(
                veche_protocol::limits::http::CLIENT_POOL_IDLE_MS,
            ))
            .build()
            .expect("static client config is valid");
        PeerClient {
            http,
            secret: secret.into(),
        }
    }

    pub(super) async fn call(
        &self,
        base: &str,
        req: &LeaderRequest,
    ) -> Result<LeaderReply, SendError> {
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
        veche_protocol::msgpack::from_slice(&bytes)
            .map_err(|e| SendError::Ambiguous(format!("{url}: undecodable reply: {e}")))
    }
}
