//! The control plane's error type and its one mapping to HTTP.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use veche_protocol::error::ErrorBody;
use veche_protocol::ErrorCode;

/// An error answered to an API client: a wire code plus a message safe to
/// show to a person.
#[derive(Debug, Clone)]
pub struct ApiError(pub ErrorBody);

impl ApiError {
    /// Builds an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError(ErrorBody::new(code, message))
    }

    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            // Already worded for a client by the forwarding layer.
            StoreError::Forwarding(body) => ApiError(body),
            StoreError::NotLeader { .. } => ApiError::new(
                ErrorCode::Unavailable,
                "the control plane is changing leader; retry in a moment",
            ),
            StoreError::Unavailable { .. } | StoreError::Timeout { .. } => {
                tracing::warn!("store unavailable: {e}");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the control plane cannot reach a majority of its nodes; retry shortly",
                )
            }
            other => {
                tracing::error!("store error: {other}");
                ApiError::new(
                    ErrorCode::Internal,
                    "the control plane could not complete the request",
                )
            }
        }
    }
}

/// An E2EE refusal (a handshake step, sealed chat), with the code of the
/// protocol's one table for it ([`veche_protocol::e2ee::E2eeError::code`]).
impl From<veche_protocol::e2ee::E2eeError> for ApiError {
    fn from(e: veche_protocol::e2ee::E2eeError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

/// JSON error body, for the public REST API.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self.0)).into_response()
    }
}

/// A request over a per-address rate limit: `429 rate_limited` with a
/// `Retry-After` header, in whole seconds rounded up, so that a client (or
/// a proxy) knows when to try again without guessing.
#[derive(Debug, Clone)]
pub struct RateLimited {
    /// What was limited, for the message ("room creation").
    pub what: &'static str,
    /// Milliseconds until the client's next request would be admitted.
    pub retry_after_ms: u64,
}

impl RateLimited {
    /// The `Retry-After` value: at least one second.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_ms.div_ceil(1000).max(1)
    }
}

impl IntoResponse for RateLimited {
    fn into_response(self) -> Response {
        let secs = self.retry_after_secs();
        let error = ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "too many requests for {} from this address; retry in {secs} s",
                self.what
            ),
        );
        let mut resp = error.into_response();
        resp.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, secs.into());
        resp
    }
}

/// The same error as a MessagePack body, for the internal RPC.
pub struct RpcError(pub ApiError);

impl From<ApiError> for RpcError {
    fn from(e: ApiError) -> Self {
        RpcError(e)
    }
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = rmp_serde::to_vec_named(&self.0 .0).unwrap_or_default();
        (status, [("content-type", "application/msgpack")], body).into_response()
    }
}
