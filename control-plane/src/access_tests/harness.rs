//! A one-node control plane served on 127.0.0.1:0 with one live media node
//! registered, and HTTP helpers that speak to it as a browser would: with
//! or without a session cookie or an owner key.

use crate::admission::{HttpConfig, RoomCreation};
use crate::leader::LeaderRequest;
use crate::store::accounts::{AccountCommand, Session, SessionSource};
use crate::store::{AccountStore, Store};
use crate::{Bootstrap, ControlPlane, ControlPlaneConfig};
use base64::Engine;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use veche_protocol::account::SESSION_COOKIE;
use veche_protocol::pass::OWNER_KEY_HEADER;
use veche_protocol::rpc::{Heartbeat, MediaNodeInfo};
use veche_protocol::token::JoinClaims;
use veche_protocol::{NodeId, UserId};

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
    _dir: tempfile::TempDir,
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
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cp = ControlPlane::open(ControlPlaneConfig {
            node_id: 1,
            data_dir: dir.path().to_owned(),
            advertise_addr: "http://127.0.0.1:9".into(),
            public_url: None,
            token_ttl: Duration::from_secs(60),
            cluster_secret: "access-test-secret-of-32-bytes!!".into(),
            bootstrap: Bootstrap::Single,
            bind_ip: None,
            avatar_dir: None,
            oidc: None,
            http: HttpConfig {
                room_creation: creation,
                ..HttpConfig::default()
            },
        })
        .await
        .expect("open a one-node control plane");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = cp.router();
        let serve = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
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
            _dir: dir,
            tasks: vec![serve, beat],
        }
    }

    /// A user named `name`, signed in: whom requests with the returned
    /// identity come from.
    pub async fn user(&self, email: &str, name: &str) -> (UserId, As) {
        let store = self.cp.replicated();
        let user = store
            .account_user(AccountCommand::CreateUser {
                email: email.into(),
                display_name: name.into(),
                is_admin: false,
                password_hash: None,
                oidc: None,
                created_at_ms: 1,
            })
            .await
            .unwrap();
        let token: [u8; 32] = crate::random_bytes();
        let now = crate::now_ms();
        store
            .account(AccountCommand::CreateSession(Session {
                token_hash: crate::api::auth::token_hash(&token),
                user_id: user.id,
                source: SessionSource::Password,
                created_at_ms: now,
                expires_at_ms: now + 3_600_000,
            }))
            .await
            .unwrap();
        let cookie = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token);
        (
            user.id,
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

    /// Sends a request with a raw body.
    pub async fn send(&self, method: &str, path: &str, who: &As, body: Option<String>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = &who.cookie {
            req = req.header("cookie", format!("{SESSION_COOKIE}={c}"));
        }
        if let Some(k) = &who.owner_key {
            req = req.header(OWNER_KEY_HEADER, k);
        }
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
