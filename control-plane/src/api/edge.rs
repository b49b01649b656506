//! The admission layers of the public API, at the socket edge: which
//! client a request comes from, its per-address rate limit, its body limit
//! and its time limit; and the cluster-secret check of the internal routes.
//! The decisions themselves are in [`crate::admission`].

use crate::admission::{client_key, forwarded_client, HttpConfig, KeyedLimiter};
use crate::error::{ApiError, RateLimited};
use crate::secret::{bearer, secrets_match};
use crate::ControlPlane;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use veche_protocol::limits::http::{
    ACCOUNT, AVATAR, CREATE_ROOM, JOIN, MAX_BODY_BYTES, MAX_TRACKED_ADDRESSES, PASSES, READ,
    REQUEST_TIMEOUT_MS, SSO,
};
use veche_protocol::ErrorCode;

/// The public routes, by the limit they share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteClass {
    /// `POST /api/rooms`.
    CreateRoom,
    /// `POST /api/rooms/{slug}/join`.
    Join,
    /// Room lookups and chat history.
    Read,
    /// The single sign-on routes (`/auth/oidc/...`).
    Sso,
    /// Account pages: who am I, sign out, profile.
    Account,
    /// Avatar uploads: large bodies, each a store write.
    Avatar,
    /// A room owner's guest passes (create, list, revoke) and room
    /// settings.
    Passes,
    /// A room owner's cover writes: text, image upload, image removal.
    Cover,
    /// The admin view's statistics and exports, and a user's own history.
    AdminView,
    /// Recordings: lists, views and file bytes (a seeking player fetches
    /// many ranges).
    RecordingRead,
    /// Recordings: deletion and share links.
    RecordingWrite,
    /// A recording's one-file export (an ffmpeg run when not cached).
    RecordingExport,
}

impl RouteClass {
    fn label(self) -> &'static str {
        match self {
            RouteClass::CreateRoom => "create_room",
            RouteClass::Join => "join",
            RouteClass::Read => "read",
            RouteClass::Sso => "sso",
            RouteClass::Account => "account",
            RouteClass::Avatar => "avatar",
            RouteClass::Passes => "passes",
            RouteClass::Cover => "cover",
            RouteClass::AdminView => "admin_view",
            RouteClass::RecordingRead => "recording_read",
            RouteClass::RecordingWrite => "recording_write",
            RouteClass::RecordingExport => "recording_export",
        }
    }

    fn what(self) -> &'static str {
        match self {
            RouteClass::CreateRoom => "room creation",
            RouteClass::Join => "joining",
            RouteClass::Read => "room lookups and chat history",
            RouteClass::Sso => "single sign-on",
            RouteClass::Account => "account requests",
            RouteClass::Avatar => "avatar uploads",
            RouteClass::Passes => "guest pass and room settings requests",
            RouteClass::Cover => "cover changes",
            RouteClass::AdminView => "statistics requests",
            RouteClass::RecordingRead => "recording requests",
            RouteClass::RecordingWrite => "recording changes",
            RouteClass::RecordingExport => "recording exports",
        }
    }
}

/// The state of the public API's admission layers.
pub(crate) struct Edge {
    create: Mutex<KeyedLimiter<IpAddr>>,
    join: Mutex<KeyedLimiter<IpAddr>>,
    read: Mutex<KeyedLimiter<IpAddr>>,
    sso: Mutex<KeyedLimiter<IpAddr>>,
    account: Mutex<KeyedLimiter<IpAddr>>,
    avatar: Mutex<KeyedLimiter<IpAddr>>,
    passes: Mutex<KeyedLimiter<IpAddr>>,
    cover: Mutex<KeyedLimiter<IpAddr>>,
    admin_view: Mutex<KeyedLimiter<IpAddr>>,
    recording_read: Mutex<KeyedLimiter<IpAddr>>,
    recording_write: Mutex<KeyedLimiter<IpAddr>>,
    recording_export: Mutex<KeyedLimiter<IpAddr>>,
    trust_forwarded_for: bool,
    rate_limits: bool,
    registry: Registry,
    rate_limited: IntCounterVec,
    timed_out: IntCounter,
    /// Warned once: requests without a peer address all share one bucket.
    warned_no_peer: std::sync::atomic::AtomicBool,
}

impl Edge {
    pub(crate) fn new(config: &HttpConfig) -> Self {
        let limiter = |rate| Mutex::new(KeyedLimiter::new(rate, MAX_TRACKED_ADDRESSES));
        let registry =
            Registry::new_custom(Some("veche_cp".into()), None).expect("static prefix is valid");
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "http_rate_limited_total",
                "Public API requests refused with 429, by route class",
            ),
            &["route"],
        )
        .expect("valid metric");
        let timed_out = IntCounter::new(
            "http_timed_out_total",
            "Public API requests answered 503 after the request timeout",
        )
        .expect("valid metric");
        registry
            .register(Box::new(rate_limited.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(timed_out.clone()))
            .expect("unique metric");
        Edge {
            create: limiter(CREATE_ROOM),
            join: limiter(JOIN),
            read: limiter(READ),
            sso: limiter(SSO),
            account: limiter(ACCOUNT),
            avatar: limiter(AVATAR),
            passes: limiter(PASSES),
            cover: limiter(veche_protocol::limits::covers::WRITE),
            admin_view: limiter(veche_protocol::limits::stats::ADMIN_VIEW),
            recording_read: limiter(veche_protocol::limits::recording::READ),
            recording_write: limiter(veche_protocol::limits::recording::WRITE),
            recording_export: limiter(veche_protocol::limits::recording::EXPORT),
            trust_forwarded_for: config.trust_forwarded_for,
            rate_limits: config.rate_limits,
            registry,
            rate_limited,
            timed_out,
            warned_no_peer: Default::default(),
        }
    }

    /// The metrics of the admission layers, to serve at `/metrics`.
    pub(crate) fn metrics_registry(&self) -> Registry {
        self.registry.clone()
    }

    /// The address a request's limits are counted under.
    fn client(&self, req: &Request) -> IpAddr {
        if self.trust_forwarded_for {
            let values = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok());
            if let Some(ip) = forwarded_client(values) {
                return client_key(ip);
            }
        }
        match req.extensions().get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(peer)) => client_key(peer.ip()),
            None => {
                if !self
                    .warned_no_peer
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::warn!(
                        "the router is served without connect info: every client shares one \
                         rate limit (serve it with into_make_service_with_connect_info)"
                    );
                }
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            }
        }
    }

    fn check(&self, class: RouteClass, client: IpAddr, now_ms: u64) -> Result<(), u64> {
        let limiter = match class {
            RouteClass::CreateRoom => &self.create,
            RouteClass::Join => &self.join,
            RouteClass::Read => &self.read,
            RouteClass::Sso => &self.sso,
            RouteClass::Account => &self.account,
            RouteClass::Avatar => &self.avatar,
            RouteClass::Passes => &self.passes,
            RouteClass::Cover => &self.cover,
            RouteClass::AdminView => &self.admin_view,
            RouteClass::RecordingRead => &self.recording_read,
            RouteClass::RecordingWrite => &self.recording_write,
            RouteClass::RecordingExport => &self.recording_export,
        };
        limiter
            .lock()
            .expect("lock poisoned")
            .check(&client, now_ms)
    }
}

/// The client address a request's limits are counted under (an IPv6 /64,
/// see [`client_key`]), for handlers that keep limits of their own (the
/// sign-in's failure counts). Set by [`rate_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub IpAddr);

/// Middleware: refuses a request over its client's limit for its route
/// class with `429 rate_limited` and `Retry-After`, before its body is read.
/// Hands the client's address on to the handler as [`ClientAddr`].
pub(crate) async fn rate_limit(
    State((edge, class)): State<(Arc<Edge>, RouteClass)>,
    mut req: Request,
    next: Next,
) -> Response {
    let client = edge.client(&req);
    req.extensions_mut().insert(ClientAddr(client));
    if edge.rate_limits {
        if let Err(retry_after_ms) = edge.check(class, client, crate::now_ms()) {
            edge.rate_limited.with_label_values(&[class.label()]).inc();
            tracing::debug!(%client, route = class.label(), "rate limited");
            return RateLimited {
                what: class.what(),
                retry_after_ms,
            }
            .into_response();
        }
    }
    next.run(req).await
}

/// Middleware: a public request that takes longer than
/// [`REQUEST_TIMEOUT_MS`] (a slow body, a quorum that does not answer) is
/// answered `503 unavailable` and its work dropped, so slow clients cannot
/// hold server tasks indefinitely.
pub(crate) async fn timeout(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            edge.timed_out.inc();
            ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "the request took longer than {} s; retry shortly",
                    REQUEST_TIMEOUT_MS / 1000
                ),
            )
            .into_response()
        }
    }
}

/// The error for a body over [`MAX_BODY_BYTES`].
pub(crate) fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// A request body, read within the route's body limit; over the limit it
/// is refused with `413 too_large` in the API's JSON error shape (axum's
/// own rejection would be plain text).
pub(crate) struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::new(
                        ErrorCode::BadRequest,
                        format!("unreadable request body: {}", e.body_text()),
                    )
                }
            })
    }
}

/// Middleware of the internal, Raft and admin routes: the caller must
/// present the cluster secret as a bearer token.
pub(crate) async fn require_cluster_secret(
    State(cp): State<Arc<ControlPlane>>,
    req: Request,
    next: Next,
) -> Response {
    let ok = bearer(req.headers())
        .is_some_and(|p| secrets_match(p.as_bytes(), cp.config.cluster_secret.as_bytes()));
    if ok {
        next.run(req).await
    } else {
        (StatusCode::UNAUTHORIZED, "cluster secret required").into_response()
    }
}
