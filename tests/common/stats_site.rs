//! A Veche site run inside the test process: control-plane nodes and a
//! real media node, served on loopback listeners, for the statistics
//! tests. In-process because those tests need an administrator's session
//! cookie, which they make through the control plane's own store (the
//! same commands the sign-in routes commit); everything else is as
//! `veche serve` and `veche cluster` run it: real Raft over HTTP, the real
//! media node and its event reporter, real WebSocket signalling.

use super::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use veche_control_plane::store::accounts::{AccountCommand, Session, SessionSource};
use veche_control_plane::store::AccountStore;
use veche_control_plane::{Bootstrap, ControlPlane, ControlPlaneConfig};
use veche_node::{MediaNode, NodeConfig, RtcConfig};
use veche_protocol::NodeId;

/// The cluster secret of every in-process site.
pub const SECRET: &str = "statistics-test-secret-at-least-32-bytes";

/// One control-plane node, served on its own listener.
pub struct CpNode {
    /// The control plane.
    pub cp: Arc<ControlPlane>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    server: tokio::task::JoinHandle<()>,
    /// Tells the server to stop accepting and to close its connections.
    stop: tokio::sync::oneshot::Sender<()>,
}

impl CpNode {
    /// Opens control-plane node `id` on `listener` (already bound, so that
    /// a cluster's members know each other's addresses up front).
    pub async fn open(
        id: u64,
        listener: tokio::net::TcpListener,
        data_dir: &Path,
        bootstrap: Bootstrap,
    ) -> CpNode {
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cp = ControlPlane::open(ControlPlaneConfig {
            node_id: id,
            advertise_addr: base.clone(),
            bootstrap,
            http: veche_control_plane::admission::HttpConfig {
                rate_limits: false,
                ..Default::default()
            },
            ..ControlPlaneConfig::single_node(data_dir.to_owned(), SECRET.into())
        })
        .await
        .unwrap_or_else(|e| panic!("control plane {id} did not open: {e}"));
        let app = cp.router();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        });
        CpNode {
            cp,
            base,
            server,
            stop,
        }
    }

    /// Stops serving and shuts Raft down, as a killed process would stop
    /// answering (its data stays on disk). Returns only once nothing in
    /// this process holds the node's database any more, so the same data
    /// directory can be opened again at once: the server's connection
    /// tasks (kept alive by clients' connection pools) each hold the
    /// router, and through it the store, until they are closed.
    pub async fn kill(self) {
        let CpNode {
            cp, server, stop, ..
        } = self;
        let _ = stop.send(());
        if tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .is_err()
        {
            panic!("the control plane's HTTP connections did not close within 10 s");
        }
        let _ = cp.shutdown().await;
        let held = Arc::downgrade(&cp);
        drop(cp);
        wait_for(
            "the control plane is dropped (nothing holds its store)",
            std::time::Duration::from_secs(10),
            async || match held.strong_count() {
                0 => Ok(()),
                n => Err(format!("{n} strong references left")),
            },
        )
        .await;
    }
}

/// A bound loopback listener.
pub async fn listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// Opens a cluster of `n` control-plane nodes in `dir/cp<id>`.
pub async fn cluster(dir: &Path, n: u64) -> Vec<CpNode> {
    let mut listeners = Vec::new();
    let mut members = BTreeMap::new();
    for id in 1..=n {
        let l = listener().await;
        members.insert(id, format!("http://{}", l.local_addr().unwrap()));
        listeners.push((id, l));
    }
    let mut nodes = Vec::new();
    for (id, l) in listeners {
        let bootstrap = if n == 1 {
            Bootstrap::Single
        } else {
            Bootstrap::Members(members.clone())
        };
        nodes.push(CpNode::open(id, l, &dir.join(format!("cp{id}")), bootstrap).await);
    }
    nodes
}

/// A real media node reporting to `cp_urls`, serving signalling on its own
/// listener; returns the node and its base URL.
pub async fn media_node(
    id: u64,
    cp_urls: Vec<String>,
) -> (MediaNode, String, tokio::task::JoinHandle<()>) {
    let l = listener().await;
    let base = format!("http://{}", l.local_addr().unwrap());
    let node = MediaNode::new(NodeConfig {
        node_id: NodeId(id),
        control_plane_urls: cp_urls,
        region: String::new(),
        capacity: 0,
        cluster_secret: SECRET.into(),
        public_ws_url: format!(
            "{}{}",
            base.replace("http://", "ws://"),
            veche_node::WS_PATH
        ),
        rtc: RtcConfig {
            bind_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        },
        reconnect_grace: std::time::Duration::from_secs(2),
        lobby_unattended: std::time::Duration::from_millis(
            veche_protocol::limits::moderation::LOBBY_UNATTENDED_MS,
        ),
        recordings: None,
        ice_servers: Vec::new(),
    });
    node.register(secs(30))
        .await
        .unwrap_or_else(|e| panic!("media node {id} did not register: {}", e.message));
    let app = node.router();
    let beats = node.clone();
    let task = tokio::spawn(async move {
        let serve = axum::serve(l, app);
        let beat = beats.heartbeat_loop(std::future::pending());
        tokio::select! {
            _ = serve => {}
            _ = beat => {}
        }
    });
    (node, base, task)
}

/// Creates an account and a session for it through `cp`'s store; returns
/// the `Cookie` header value that signs a request in as it.
pub async fn session_cookie(cp: &Arc<ControlPlane>, email: &str, is_admin: bool, n: u8) -> String {
    let store = cp.replicated();
    let user = store
        .account_user(AccountCommand::CreateUser {
            email: email.into(),
            display_name: email.into(),
            is_admin,
            password_hash: None,
            oidc: None,
            created_at_ms: 1,
        })
        .await
        .expect("create a user");
    let token = [n; 32];
    let hash = ring::digest::digest(&ring::digest::SHA256, &token);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    store
        .account(AccountCommand::CreateSession(Session {
            token_hash: hash.as_ref().try_into().unwrap(),
            user_id: user.id,
            source: SessionSource::Password,
            created_at_ms: now,
            expires_at_ms: now + 3_600_000,
        }))
        .await
        .expect("create a session");
    format!(
        "{}={}",
        veche_protocol::account::SESSION_COOKIE,
        base64url(&token)
    )
}

/// Unpadded base64url, as the session cookie carries its token.
fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// `GET base+path` with a cookie; the status and body.
pub async fn get_as(base: &str, path: &str, cookie: &str) -> (u16, String) {
    match http()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
    {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

#[test]
fn base64url_matches_the_rfc_examples() {
    assert_eq!(base64url(b"f"), "Zg");
    assert_eq!(base64url(b"foob"), "Zm9vYg");
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
}

/// Which node of `cps` is the leader, by the operator API.
pub async fn leader_index(cps: &[CpNode]) -> usize {
    wait_for("a leader is elected", secs(20), async || {
        for (i, n) in cps.iter().enumerate() {
            let status: Value = http()
                .get(format!("{}/api/admin/cluster", n.base))
                .bearer_auth(SECRET)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            if status["state"] == "Leader" {
                return Ok(i);
            }
        }
        Err("no node says it is the leader".into())
    })
    .await
}
