//! What the control plane's in-crate HTTP tests share: a one-node control
//! plane serving its router on a loopback port, and signed-in users made
//! straight through the store (the sign-in routes have tests of their own;
//! these tests are about what a signed-in user may do); and the moderation
//! request of a room's host, which the store and HTTP tests of recordings
//! all start them with.

use crate::admission::HttpConfig;
use crate::secret::token_hash;
use crate::store::accounts::{AccountCommand, Session, SessionSource};
use crate::store::AccountStore;
use crate::{ControlPlane, ControlPlaneConfig};
use base64::Engine;
use std::net::SocketAddr;
use std::sync::Arc;
use veche_protocol::UserId;

/// A one-node control plane answering HTTP on 127.0.0.1.
pub(crate) struct Served {
    /// The control plane.
    pub cp: Arc<ControlPlane>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server task; aborted on drop.
    pub serve: tokio::task::JoinHandle<()>,
    /// Its data directory, removed on drop.
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.serve.abort();
    }
}

/// The cluster secret of [`serve_one_node`]'s control plane: what its
/// node RPCs must carry.
pub(crate) const CLUSTER_SECRET: &str = "in-crate-test-secret-of-32-bytes!!";

/// Opens a one-node control plane in a fresh directory, with `http` as its
/// edge, and serves it.
pub(crate) async fn serve_one_node(http: HttpConfig) -> Served {
    serve_one_node_with_turn(http, None).await
}

/// [`serve_one_node`], issuing TURN credentials for `turn`.
pub(crate) async fn serve_one_node_with_turn(
    http: HttpConfig,
    turn: Option<veche_protocol::turn::TurnConfig>,
) -> Served {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cp = ControlPlane::open(ControlPlaneConfig {
        http,
        turn,
        ..ControlPlaneConfig::single_node(dir.path().to_owned(), CLUSTER_SECRET.into())
    })
    .await
    .expect("open a one-node control plane");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("its address"));
    let router = cp.router();
    let serve = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Served {
        cp,
        base,
        serve,
        _dir: dir,
    }
}

/// Creates a user and a session for them; returns the user's id and the
/// session cookie's value (without the name).
pub(crate) async fn signed_in_user(
    cp: &Arc<ControlPlane>,
    email: &str,
    name: &str,
    is_admin: bool,
) -> (UserId, String) {
    let store = cp.replicated();
    let user = store
        .account_user(AccountCommand::CreateUser {
            email: email.into(),
            display_name: name.into(),
            is_admin,
            password_hash: None,
            oidc: None,
            created_at_ms: 1,
        })
        .await
        .expect("create a user");
    let token: [u8; 32] = crate::random_bytes();
    let now = crate::now_ms();
    store
        .account(AccountCommand::CreateSession(Session {
            token_hash: token_hash(&token),
            user_id: user.id,
            source: SessionSource::Password,
            created_at_ms: now,
            expires_at_ms: now + 3_600_000,
        }))
        .await
        .expect("create a session");
    (
        user.id,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token),
    )
}
