//! A one-node control plane served on 127.0.0.1:0 with one live media node
//! registered, and HTTP helpers that speak to it as a browser would (with
//! or without a session cookie or an owner key) or as a media node would
//! (MessagePack RPCs behind the cluster secret).

use crate::admission::{HttpConfig, RoomCreation};
use crate::leader::LeaderRequest;
use crate::store::conformance_kit::host_acts;
use crate::store::Store;
use crate::test_support::{serve_one_node_with_turn, signed_in_user, Served};
use crate::ControlPlane;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use veche_protocol::account::SESSION_COOKIE;
use veche_protocol::moderation::{ModAction, RoomPolicy};
use veche_protocol::pass::OWNER_KEY_HEADER;
use veche_protocol::recording::{
    FileId, FileReport, RecordedSource, RecordingId, RecordingReport, SegmentInfo,
};
use veche_protocol::rpc::{Heartbeat, MediaNodeInfo, RPC_MODERATE};
use veche_protocol::token::JoinClaims;
use veche_protocol::{NodeId, ParticipantId, RoomId, UserId};

pub(crate) use crate::test_support::CLUSTER_SECRET as SECRET;

/// Who a request comes from.
#[derive(Clone, Debug, Default)]
pub struct As {
    /// The session cookie's value.
    pub cookie: Option<String>,
    /// The owner key header.
    pub owner_key: Option<String>,
}

impl As {
    /// Nobody in particular.
    pub fn anonymous() -> As {
        As::default()
    }

    /// The holder of an owner key.
    pub fn key(key: &str) -> As {
        As {
            cookie: None,
            owner_key: Some(key.to_owned()),
        }
    }
}

/// A reply: status and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// Asserts the status and error code, and returns the message.
    pub fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["code"], code, "{self:?}");
        self.body["message"].as_str().unwrap_or_default().to_owned()
    }

    /// Asserts a success status and returns the body.
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{self:?}");
        &self.body
    }
}

/// The control plane under test.
pub struct Cp {
    pub cp: Arc<ControlPlane>,
    pub base: String,
    http: reqwest::Client,
    _served: Served,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Cp {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Cp {
    /// A control plane where rooms are created as `creation` says.
    pub async fn start(creation: RoomCreation) -> Cp {
        Cp::start_with_turn(creation, None).await
    }

    /// [`Cp::start`], issuing TURN credentials for `turn` in join tokens.
    pub async fn start_with_turn(
        creation: RoomCreation,
        turn: Option<veche_protocol::turn::TurnConfig>,
    ) -> Cp {
        let served = serve_one_node_with_turn(
            HttpConfig {
                room_creation: creation,
                ..HttpConfig::default()
            },
            turn,
        )
        .await;
        let cp = served.cp.clone();
        let base = served.base.clone();
        // One media node, kept alive, so that joins are placed.
        cp.replicated()
            .register_media_node(MediaNodeInfo {
                node_id: NodeId(1),
                region: String::new(),
                ws_url: "/media/ws".into(),
                capacity: 0,
                relay_addr: None,
            })
            .await
            .unwrap();
        let beating = cp.clone();
        let beat = tokio::spawn(async move {
            loop {
                let _ = beating
                    .on_leader(LeaderRequest::Heartbeat(Heartbeat {
                        node_id: NodeId(1),
                        participants: 0,
                        rooms: 0,
                        room_ids: Vec::new(),
                    }))
                    .await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Cp {
            cp,
            base,
            http: reqwest::Client::new(),
            _served: served,
            tasks: vec![beat],
        }
    }

    /// A user named `name`, signed in: whom requests with the returned
    /// identity come from.
    pub async fn user(&self, email: &str, name: &str) -> (UserId, As) {
        let (id, cookie) = signed_in_user(&self.cp, email, name, false).await;
        (
            id,
            As {
                cookie: Some(cookie),
                owner_key: None,
            },
        )
    }

    /// The last applied Raft index: unchanged means nothing was written.
    pub fn applied(&self) -> u64 {
        let m = self.cp.store.raft().metrics().borrow().clone();
        m.last_applied.map_or(0, |l| l.index)
    }

    /// The verified claims of a join token.
    pub async fn claims(&self, token: &str) -> JoinClaims {
        let key = self.cp.signing_key().await.unwrap();
        veche_protocol::token::verify_ignoring_expiry(
            token,
            &veche_protocol::token::public_key_bytes(&key),
        )
        .expect("a token this control plane signed")
    }

    /// A request to `path` as `who`: with its session cookie and owner
    /// key, if it has them.
    fn request(&self, method: reqwest::Method, path: &str, who: &As) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = &who.cookie {
            req = req.header("cookie", format!("{SESSION_COOKIE}={c}"));
        }
        if let Some(k) = &who.owner_key {
            req = req.header(OWNER_KEY_HEADER, k);
        }
        req
    }

    /// Sends a request as `who` with extra headers, for bytes rather than
    /// JSON (media files, ranges): status, headers and body.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        who: &As,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self.request(method, path, who);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("the control plane answers");
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        (status, h, resp.bytes().await.unwrap().to_vec())
    }

    /// Posts a MessagePack RPC as a media node would, with `secret` (if
    /// any) as its bearer token: the status and the raw reply.
    pub async fn rpc(&self, path: &str, secret: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/msgpack")
            .body(body);
        if let Some(s) = secret {
            req = req.bearer_auth(s);
        }
        let resp = req.send().await.expect("the control plane answers");
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }

    /// A host whose account is `user` takes `action` in `room`, relayed by
    /// its media node; the room's policy after it.
    pub async fn host_moderates(
        &self,
        room: RoomId,
        user: UserId,
        action: ModAction,
    ) -> RoomPolicy {
        let req = host_acts(room, user, "Bob", action, crate::now_ms());
        let (status, body) = self
            .rpc(
                RPC_MODERATE,
                Some(SECRET),
                rmp_serde::to_vec_named(&req).unwrap(),
            )
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        veche_protocol::msgpack::from_slice(&body).expect("a policy")
    }

    /// Sends a request with a raw body.
    pub async fn send(&self, method: &str, path: &str, who: &As, body: Option<String>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.request(method, path, who);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.expect("the control plane answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    /// Sends a request with a JSON body.
    pub async fn json(&self, method: &str, path: &str, who: &As, body: Value) -> Reply {
        self.send(method, path, who, Some(body.to_string())).await
    }

    /// Creates a room; returns the create response.
    pub async fn room(&self, who: &As, access: &str) -> Value {
        self.json(
            "POST",
            "/api/rooms",
            who,
            serde_json::json!({"name": "Board", "access": access}),
        )
        .await
        .ok(201)
        .clone()
    }

    /// Joins `slug` with `body` (display_name defaulting to "Typed name").
    pub async fn join(&self, slug: &str, who: &As, mut body: Value) -> Reply {
        if body.get("display_name").is_none() {
            body["display_name"] = "Typed name".into();
        }
        self.json("POST", &format!("/api/rooms/{slug}/join"), who, body)
            .await
    }

    /// Creates a pass valid from `from` to `until`.
    pub async fn pass(&self, slug: &str, who: &As, label: &str, from: u64, until: u64) -> Reply {
        self.json(
            "POST",
            &format!("/api/rooms/{slug}/passes"),
            who,
            serde_json::json!({"label": label, "valid_from_ms": from, "valid_until_ms": until}),
        )
        .await
    }

    /// Whether a room with this slug exists.
    pub async fn room_exists(&self, slug: &str) -> bool {
        let slug = veche_protocol::RoomSlug::parse(slug).unwrap();
        self.cp
            .replicated()
            .room_by_slug(&slug)
            .await
            .unwrap()
            .is_some()
    }
}

/// The `pass` token of a pass link.
pub fn token_of(link: &str) -> String {
    link.split_once("?pass=").expect("a pass link").1.to_owned()
}

/// The id of a room from its create response.
pub fn room_id(room: &Value) -> RoomId {
    RoomId(room["id"].as_u64().unwrap())
}

/// A media node's report of one file, the host Bob's camera, of `room`'s
/// recording `id`: not ended, starting with the recording.
pub fn camera_report(
    room: RoomId,
    id: &RecordingId,
    file: FileId,
    segments: Vec<SegmentInfo>,
) -> RecordingReport {
    RecordingReport {
        node_id: NodeId(1),
        room_id: room,
        recording_id: id.clone(),
        files: vec![FileReport {
            file_id: file,
            participant_id: ParticipantId("p-host".into()),
            display_name: "Bob".into(),
            source: RecordedSource::Camera,
            offset_ms: 0,
            segments,
            end: None,
        }],
        done: false,
    }
}
