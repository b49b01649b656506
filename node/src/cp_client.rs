//! The media node's client for the control plane's internal RPC
//! (MessagePack over HTTP). The node never touches the control plane's
//! storage directly, even when both run in one process, so that a node
//! works the same against a remote cluster.
//!
//! The client knows several control-plane nodes. Any of them accepts any
//! call (followers pass what needs the leader on to it), so failing over is
//! only about reachability: a call that cannot reach one node, or that gets
//! `unavailable` back, moves on to the next. Registration and heartbeat
//! replies carry the cluster's current member list, leader first, so the
//! node follows membership changes and leader moves without an operator.

use std::sync::{Arc, RwLock};
use std::time::Duration;
use veche_protocol::chat::ChatMessage;
use veche_protocol::error::ErrorBody;
use veche_protocol::moderation::RoomPolicy;
use veche_protocol::rpc::{
    CommitChat, Heartbeat, HeartbeatReply, ModerateRequest, RegisterNode, RegisterNodeReply,
    RoomPolicyRequest, RPC_COMMIT_CHAT, RPC_HEARTBEAT, RPC_MODERATE, RPC_REGISTER_NODE,
    RPC_ROOM_POLICY,
};
use veche_protocol::ErrorCode;

/// How long one attempt against one control-plane node may take. A
/// follower forwarding to a leader that is being replaced can take a few
/// seconds; longer than that and the next node is likelier to answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(12);

/// HTTP client for a control-plane cluster.
#[derive(Clone)]
pub struct ControlPlaneClient {
    /// Base URLs, the one to try first at the front.
    bases: Arc<RwLock<Vec<String>>>,
    secret: String,
    http: reqwest::Client,
}

/// Why one attempt failed, and whether another node might do better.
enum Attempt {
    /// The connection could not be made: the request never left, so any
    /// other node may be asked, even for a step that must not run twice.
    NotSent(ErrorBody),
    /// Unreachable, or it answered `unavailable`: try the next node.
    TryNext(ErrorBody),
    /// A definite answer (bad request, unknown room...): stop.
    Final(ErrorBody),
}

impl ControlPlaneClient {
    /// A client for the control-plane nodes at `bases` (e.g.
    /// `http://127.0.0.1:8080`) that presents the cluster secret.
    pub fn new(bases: Vec<String>, secret: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(Duration::from_secs(1))
            .pool_idle_timeout(Duration::from_millis(
                veche_protocol::limits::http::CLIENT_POOL_IDLE_MS,
            ))
            .build()
            .expect("static client config is valid");
        ControlPlaneClient {
            bases: Arc::new(RwLock::new(
                bases
                    .into_iter()
                    .map(|b| b.trim_end_matches('/').to_owned())
                    .collect(),
            )),
            secret: secret.into(),
            http,
        }
    }

    /// The control-plane nodes this client knows, in the order it tries
    /// them.
    pub fn bases(&self) -> Vec<String> {
        self.bases.read().expect("lock poisoned").clone()
    }

    /// Learns the cluster's member list (leader first). Nodes the client
    /// was configured with stay at the end, so that an operator's list is
    /// never forgotten because of one odd reply.
    fn learn(&self, control_planes: &[String]) {
        if control_planes.is_empty() {
            return;
        }
        let mut bases = self.bases.write().expect("lock poisoned");
        let mut next: Vec<String> = control_planes
            .iter()
            .map(|b| b.trim_end_matches('/').to_owned())
            .collect();
        for b in bases.iter() {
            if !next.contains(b) {
                next.push(b.clone());
            }
        }
        *bases = next;
    }

    /// Moves `base` to the back after it failed.
    fn demote(&self, base: &str) {
        let mut bases = self.bases.write().expect("lock poisoned");
        if let Some(i) = bases.iter().position(|b| b == base) {
            let b = bases.remove(i);
            bases.push(b);
        }
    }

    async fn attempt<Resp: serde::de::DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Resp, Attempt> {
        let resp = self
            .http
            .post(format!("{base}{path}"))
            .header("content-type", "application/msgpack")
            .bearer_auth(&self.secret)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| {
                let err = ErrorBody::new(
                    ErrorCode::Unavailable,
                    format!("control plane {base} unreachable: {e}"),
                );
                if e.is_connect() {
                    Attempt::NotSent(err)
                } else {
                    Attempt::TryNext(err)
                }
            })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| {
            Attempt::TryNext(ErrorBody::new(
                ErrorCode::Unavailable,
                format!("control plane {base} read: {e}"),
            ))
        })?;
        if status.is_success() {
            return rmp_serde::from_slice(&bytes).map_err(|e| {
                Attempt::Final(ErrorBody::new(
                    ErrorCode::Internal,
                    format!("decode reply: {e}"),
                ))
            });
        }
        let err = rmp_serde::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| {
            ErrorBody::new(
                ErrorCode::Unavailable,
                format!("control plane {base} answered {status}"),
            )
        });
        if err.code == ErrorCode::Unavailable || status.is_server_error() {
            Err(Attempt::TryNext(err))
        } else {
            Err(Attempt::Final(err))
        }
    }

    /// Calls `path` on the first node that gives a definite answer, trying
    /// each known node once.
    async fn call<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Resp, ErrorBody> {
        self.call_with(path, req, true).await
    }

    /// Calls `path` on the first node that can be reached, and moves on
    /// to another only when the request surely never arrived. For steps
    /// that must not be applied twice and carry no idempotency key: after
    /// an ambiguous failure (a timeout, a leader lost mid-write) the error
    /// goes back to the caller instead.
    async fn call_at_most_once<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Resp, ErrorBody> {
        self.call_with(path, req, false).await
    }

    async fn call_with<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        retry_ambiguous: bool,
    ) -> Result<Resp, ErrorBody> {
        let body = rmp_serde::to_vec_named(req)
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("encode: {e}")))?;
        let mut last = ErrorBody::new(
            ErrorCode::Unavailable,
            "no control-plane node is configured",
        );
        for base in self.bases() {
            match self.attempt::<Resp>(&base, path, &body).await {
                Ok(r) => return Ok(r),
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::TryNext(e)) if !retry_ambiguous => {
                    self.demote(&base);
                    return Err(e);
                }
                Err(Attempt::NotSent(e) | Attempt::TryNext(e)) => {
                    tracing::debug!(%base, path, error = %e.message, "control-plane node failed; trying the next");
                    self.demote(&base);
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Registers this node; returns the token public key.
    pub async fn register(&self, req: &RegisterNode) -> Result<RegisterNodeReply, ErrorBody> {
        let reply: RegisterNodeReply = self.call(RPC_REGISTER_NODE, req).await?;
        self.learn(&reply.control_planes);
        Ok(reply)
    }

    /// Reports liveness and load.
    pub async fn heartbeat(&self, req: &Heartbeat) -> Result<HeartbeatReply, ErrorBody> {
        let reply: HeartbeatReply = self.call(RPC_HEARTBEAT, req).await?;
        self.learn(&reply.control_planes);
        Ok(reply)
    }

    /// Reports a batch of participant events; the reply says up to which
    /// `seq` they are stored (through Raft).
    pub async fn node_events(
        &self,
        req: &veche_protocol::stats::NodeEvents,
    ) -> Result<veche_protocol::stats::NodeEventsReply, ErrorBody> {
        self.call(veche_protocol::stats::RPC_NODE_EVENTS, req).await
    }

    /// Reports segments a recorder uploaded (and the ends of files it
    /// finished). The control plane applies each segment once, so the
    /// recorder's reporter simply sends again until this succeeds.
    pub async fn recording_report(
        &self,
        req: &veche_protocol::recording::RecordingReport,
    ) -> Result<veche_protocol::recording::RecordingReportReply, ErrorBody> {
        self.call(veche_protocol::recording::RPC_RECORDING_REPORT, req)
            .await
    }

    /// Commits a chat message through Raft; returns it as stored.
    pub async fn commit_chat(&self, req: &CommitChat) -> Result<ChatMessage, ErrorBody> {
        self.call(RPC_COMMIT_CHAT, req).await
    }

    /// Asks the control plane to order one MLS handshake step (a key
    /// package or a commit). A refusal (`invalid_state` for a commit that
    /// lost its epoch, and so on) comes back as the error, for the sender.
    /// Never sent twice: a commit applied by a leader that died before it
    /// answered, then sent again, would be refused as stale although it
    /// won, and nobody would get it. The client's own retry (a key package
    /// every 4 s, a committer's next batch) takes over instead.
    pub async fn e2ee(
        &self,
        req: &veche_protocol::e2ee::DsRequest,
    ) -> Result<veche_protocol::e2ee::DsReply, ErrorBody> {
        self.call_at_most_once(veche_protocol::e2ee::RPC_E2EE, req)
            .await
    }

    /// The room's current moderation policy (version 0 for a room nobody
    /// moderated yet).
    pub async fn room_policy(&self, req: &RoomPolicyRequest) -> Result<RoomPolicy, ErrorBody> {
        self.call(RPC_ROOM_POLICY, req).await
    }

    /// Asks the control plane to apply a moderation action; returns the
    /// committed policy, or its refusal (`forbidden`, `bad_request`) with
    /// the reason, for the client.
    pub async fn moderate(&self, req: &ModerateRequest) -> Result<RoomPolicy, ErrorBody> {
        self.call(RPC_MODERATE, req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use veche_protocol::{MessageId, ParticipantId, RoomId};

    fn commit() -> CommitChat {
        CommitChat {
            room_id: RoomId(1),
            participant_id: ParticipantId("p1".into()),
            display_name: "Ann".into(),
            text: "hi".into(),
            client_msg_id: Some("c1".into()),
            sent_at_ms: 0,
        }
    }

    /// A stand-in control-plane node that answers the chat RPC with
    /// `status` and `body`.
    async fn fake_cp(status: StatusCode, body: Vec<u8>) -> String {
        let app = axum::Router::new().route(
            RPC_COMMIT_CHAT,
            axum::routing::post(move || {
                let body = body.clone();
                async move { (status, body).into_response() }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// An address nothing listens on.
    async fn dead_address() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        format!("http://{addr}")
    }

    fn stored() -> Vec<u8> {
        rmp_serde::to_vec_named(&ChatMessage {
            id: MessageId(7),
            room_id: RoomId(1),
            participant_id: ParticipantId("p1".into()),
            display_name: "Ann".into(),
            text: "hi".into(),
            sent_at_ms: 0,
            client_msg_id: Some("c1".into()),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_dead_or_leaderless_control_plane_node_is_skipped_and_demoted() {
        let dead = dead_address().await;
        let leaderless = fake_cp(
            StatusCode::SERVICE_UNAVAILABLE,
            rmp_serde::to_vec_named(&ErrorBody::new(ErrorCode::Unavailable, "no leader")).unwrap(),
        )
        .await;
        let good = fake_cp(StatusCode::OK, stored()).await;
        let client =
            ControlPlaneClient::new(vec![dead.clone(), leaderless.clone(), good.clone()], "s");
        let msg = client
            .commit_chat(&commit())
            .await
            .expect("the third node answers");
        assert_eq!(msg.id, MessageId(7));
        // The node that answered is tried first next time.
        assert_eq!(client.bases(), vec![good, dead, leaderless]);
    }

    /// A stand-in control-plane node answering the E2EE RPC with `status`
    /// and `body`, counting the requests it got.
    async fn fake_e2ee(
        status: StatusCode,
        body: Vec<u8>,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().route(
            veche_protocol::e2ee::RPC_E2EE,
            axum::routing::post(move || {
                let body = body.clone();
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move { (status, body).into_response() }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), hits)
    }

    #[tokio::test]
    async fn a_handshake_step_skips_a_dead_node_but_is_never_sent_twice() {
        use veche_protocol::e2ee::{DsOp, DsReply, DsRequest};
        let req = DsRequest {
            room_id: RoomId(1),
            participant_id: ParticipantId("p1".into()),
            op: DsOp::KeyPackage,
        };
        let found = rmp_serde::to_vec_named(&DsReply::Found { group: 1 }).unwrap();
        let (good, good_hits) = fake_e2ee(StatusCode::OK, found.clone()).await;
        let dead = dead_address().await;
        let client = ControlPlaneClient::new(vec![dead, good.clone()], "s");
        assert_eq!(
            client.e2ee(&req).await.unwrap(),
            DsReply::Found { group: 1 }
        );
        assert_eq!(good_hits.load(std::sync::atomic::Ordering::SeqCst), 1);

        // A node that may have applied it (a leader lost mid-write) answers
        // `unavailable`: the error goes back, and the next node is not asked.
        let lost = rmp_serde::to_vec_named(&ErrorBody::new(ErrorCode::Unavailable, "leader lost"))
            .unwrap();
        let (ambiguous, _) = fake_e2ee(StatusCode::SERVICE_UNAVAILABLE, lost).await;
        let (next, next_hits) = fake_e2ee(StatusCode::OK, found).await;
        let client = ControlPlaneClient::new(vec![ambiguous, next], "s");
        let err = client.e2ee(&req).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Unavailable);
        assert_eq!(next_hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_definite_refusal_is_not_retried_elsewhere() {
        let refusing = fake_cp(
            StatusCode::NOT_FOUND,
            rmp_serde::to_vec_named(&ErrorBody::new(ErrorCode::RoomNotFound, "gone")).unwrap(),
        )
        .await;
        let good = fake_cp(StatusCode::OK, stored()).await;
        let client = ControlPlaneClient::new(vec![refusing.clone(), good.clone()], "s");
        let err = client.commit_chat(&commit()).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::RoomNotFound);
        assert_eq!(client.bases(), vec![refusing, good]);
    }

    #[tokio::test]
    async fn a_refused_moderation_surfaces_the_control_planes_reason() {
        let refusal = ErrorBody::new(
            ErrorCode::Forbidden,
            "only a host or a moderator can mute others",
        );
        let app = axum::Router::new().route(
            RPC_MODERATE,
            axum::routing::post(move || {
                let body = rmp_serde::to_vec_named(&refusal).unwrap();
                async move { (StatusCode::FORBIDDEN, body).into_response() }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = ControlPlaneClient::new(vec![format!("http://{addr}")], "s");
        let err = client
            .moderate(&ModerateRequest {
                room_id: RoomId(1),
                actor: None,
                action: veche_protocol::moderation::ModAction::MuteEveryone,
                present: Vec::new(),
                at_ms: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden);
        assert!(err.message.contains("only a host or a moderator"));
    }

    #[test]
    fn learned_members_come_first_and_configured_ones_are_kept() {
        let client = ControlPlaneClient::new(vec!["http://a".into(), "http://b/".into()], "s");
        client.learn(&["http://c".into(), "http://a".into()]);
        assert_eq!(client.bases(), vec!["http://c", "http://a", "http://b"]);
    }
}
