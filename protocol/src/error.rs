//! The one table of error kinds that cross a wire, and how each one maps to
//! an HTTP status and a WebSocket close code.
//!
//! Servers build their typed errors however they like, but whatever reaches
//! a client is one of these codes plus a human-readable message, so a
//! client can branch on `code` and show `message`.

use serde::{Deserialize, Serialize};

/// A machine-readable error kind, serialised in `snake_case`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request body or a signalling message could not be parsed, or a
    /// field had an invalid value.
    BadRequest,
    /// No room has this slug. REST only: a media node never closes a
    /// session with it, since a token names a room that existed.
    RoomNotFound,
    /// The join token is missing, malformed or its signature is wrong.
    TokenInvalid,
    /// The join token was valid once but has expired.
    TokenExpired,
    /// The request lacks a credential it needs, or the credential is wrong
    /// (for example a rejoin without the `rejoin_secret` its token was
    /// issued with).
    Unauthorized,
    /// The caller may not do this here (for example create a room where
    /// creation needs the create secret).
    Forbidden,
    /// A chat message is empty after filtering.
    ChatEmpty,
    /// A chat message is longer than [`crate::chat::MAX_CHAT_CHARS`].
    ChatTooLong,
    /// The sender is over a budget of [`crate::limits`] (a signalling
    /// message kind, chat, an HTTP route); the request was dropped. Retry
    /// later.
    RateLimited,
    /// A request body or a signalling frame is larger than allowed.
    TooLarge,
    /// A message arrived in a state where it makes no sense (for example an
    /// `answer` with no offer outstanding, or anything before `join`).
    InvalidState,
    /// The control plane has no leader at the moment or is otherwise
    /// unavailable; retry.
    Unavailable,
    /// The server itself failed. The message says nothing secret.
    Internal,
}

impl ErrorCode {
    /// The HTTP status for this error on the REST API.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::ChatEmpty | ErrorCode::ChatTooLong => 400,
            ErrorCode::TokenInvalid | ErrorCode::TokenExpired | ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::RoomNotFound => 404,
            ErrorCode::InvalidState => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The WebSocket close code when this error ends a signalling session.
    /// Codes 4000-4999 are reserved for applications by RFC 6455.
    ///
    /// Most errors do *not* close the socket: the node replies with an
    /// `error` message and carries on. Only errors before `joined` (a
    /// malformed `join`, a bad token, a protocol violation) close it. The
    /// close codes that belong to no error kind (4008 for a persistent
    /// flooder, 4010 moved, 4011 too slow) are constants in
    /// [`crate::signal`].
    pub fn ws_close_code(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 4000,
            ErrorCode::TokenInvalid => 4001,
            ErrorCode::TokenExpired => 4002,
            ErrorCode::Forbidden => 4003,
            ErrorCode::Unauthorized => 4401,
            ErrorCode::RoomNotFound => 4004,
            ErrorCode::InvalidState => 4009,
            ErrorCode::TooLarge => 4013,
            ErrorCode::RateLimited => 4029,
            ErrorCode::Unavailable => 4503,
            ErrorCode::ChatEmpty | ErrorCode::ChatTooLong => 4000,
            ErrorCode::Internal => 4500,
        }
    }

    /// The code as its wire string, e.g. `"room_not_found"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::RoomNotFound => "room_not_found",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::ChatEmpty => "chat_empty",
            ErrorCode::ChatTooLong => "chat_too_long",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// The JSON body of every error response on the REST API, and the payload
/// of the `error` signalling message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, for people. Safe to show in the UI.
    pub message: String,
}

impl ErrorBody {
    /// Builds an error body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_string_matches_serde_name() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::RoomNotFound,
            ErrorCode::TokenInvalid,
            ErrorCode::TokenExpired,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::ChatEmpty,
            ErrorCode::ChatTooLong,
            ErrorCode::RateLimited,
            ErrorCode::TooLarge,
            ErrorCode::InvalidState,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!((4000..5000).contains(&code.ws_close_code()));
        }
    }
}
