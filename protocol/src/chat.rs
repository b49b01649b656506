//! Chat validation, filtering and rate limiting: pure functions, checked at
//! the media node (to answer fast) and again in the control plane (which is
//! authoritative, since any client of the internal API could skip the node).

use crate::error::ErrorCode;
use crate::ids::{MessageId, ParticipantId, RoomId};
use crate::UnixMillis;
use serde::{Deserialize, Serialize};

/// Longest accepted chat message, in Unicode scalar values after filtering.
/// Counted in chars rather than bytes so the limit means the same thing to a
/// user typing Cyrillic as to one typing ASCII.
pub const MAX_CHAT_CHARS: usize = 4000;

/// A committed chat message, as stored and as delivered to clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Commit-ordered id; see [`MessageId`].
    pub id: MessageId,
    /// The room it was posted in.
    pub room_id: RoomId,
    /// Who sent it.
    pub participant_id: ParticipantId,
    /// The sender's display name at the time of sending. Stored with the
    /// message so that history stays readable after the sender leaves.
    pub display_name: String,
    /// The filtered text. Clients must render it as text, never as HTML.
    pub text: String,
    /// When the proposing node accepted it.
    pub sent_at_ms: UnixMillis,
    /// The sender's own id for this message, echoed back so the sender can
    /// match the committed message to its optimistic copy and so retries are
    /// idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

/// Why a chat message was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Nothing left after trimming whitespace and stripping control
    /// characters.
    #[error("message is empty")]
    Empty,
    /// Over [`MAX_CHAT_CHARS`] characters.
    #[error("message is {chars} characters long; the limit is {MAX_CHAT_CHARS}")]
    TooLong {
        /// The filtered length in chars.
        chars: usize,
    },
}

impl ChatError {
    /// The wire code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            ChatError::Empty => ErrorCode::ChatEmpty,
            ChatError::TooLong { .. } => ErrorCode::ChatTooLong,
        }
    }
}

/// True for characters that are stripped from chat text: C0 and C1 control
/// characters except newline and tab, plus the Unicode bidirectional
/// overrides and isolates that can make text display in a misleading order
/// ("Trojan Source").
fn is_stripped(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Filters and validates a chat message: strips control characters, trims
/// surrounding whitespace, normalises CRLF to LF, and checks the length.
///
/// Returns the text to store.
pub fn validate_chat(raw: &str) -> Result<String, ChatError> {
    let filtered: String = raw
        .replace("\r\n", "\n")
        .chars()
        .filter(|&c| !is_stripped(c))
        .collect();
    let text = filtered.trim();
    if text.is_empty() {
        return Err(ChatError::Empty);
    }
    let chars = text.chars().count();
    if chars > MAX_CHAT_CHARS {
        return Err(ChatError::TooLong { chars });
    }
    Ok(text.to_owned())
}

/// The per-participant chat rate limiter: the token bucket of
/// [`crate::limits`], at the [`crate::limits::signal::CHAT`] rate. An alias
/// rather than a second implementation, so that the limit has one home.
pub type RateLimiter = crate::limits::TokenBucket;

/// A chat limiter at the documented rate ([`crate::limits::signal::CHAT`]),
/// full at `now_ms`.
pub fn chat_limiter(now_ms: u64) -> RateLimiter {
    crate::limits::signal::CHAT.bucket(now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_whitespace_only_messages_are_refused() {
        assert_eq!(validate_chat(""), Err(ChatError::Empty));
        assert_eq!(validate_chat("  \n\t "), Err(ChatError::Empty));
        assert_eq!(validate_chat("\u{0007}\u{0000}"), Err(ChatError::Empty));
    }

    #[test]
    fn control_characters_are_stripped_but_newlines_kept() {
        assert_eq!(
            validate_chat("he\u{0000}llo\u{001b}[31m").unwrap(),
            "hello[31m"
        );
        assert_eq!(validate_chat("line1\r\nline2").unwrap(), "line1\nline2");
        assert_eq!(validate_chat("a\u{202E}b\u{2066}c").unwrap(), "abc");
        assert_eq!(validate_chat("\u{0085}x\u{009f}").unwrap(), "x");
    }

    #[test]
    fn html_is_kept_verbatim_because_clients_render_text() {
        assert_eq!(
            validate_chat("<img src=x onerror=alert(1)>").unwrap(),
            "<img src=x onerror=alert(1)>"
        );
    }

    #[test]
    fn length_limit_counts_characters_not_bytes() {
        let ok = "ж".repeat(MAX_CHAT_CHARS);
        assert_eq!(validate_chat(&ok).unwrap().chars().count(), MAX_CHAT_CHARS);
        let long = "ж".repeat(MAX_CHAT_CHARS + 1);
        assert_eq!(
            validate_chat(&long),
            Err(ChatError::TooLong {
                chars: MAX_CHAT_CHARS + 1
            })
        );
        assert_eq!(
            ChatError::TooLong { chars: 1 }.code(),
            ErrorCode::ChatTooLong
        );
    }

    #[test]
    fn the_chat_limiter_admits_the_documented_burst() {
        let mut rl = chat_limiter(0);
        for _ in 0..crate::limits::signal::CHAT.burst {
            assert!(rl.try_take(0).is_ok());
        }
        assert!(rl.try_take(0).is_err());
    }

    #[test]
    fn rate_limiter_allows_a_burst_then_refuses_then_refills() {
        let mut rl = RateLimiter::new(3, 2.0, 1_000);
        for _ in 0..3 {
            assert!(rl.try_take(1_000).is_ok());
        }
        let wait = rl.try_take(1_000).unwrap_err();
        assert_eq!(wait, 500);
        assert!(rl.try_take(1_499).is_err());
        assert!(rl.try_take(1_500).is_ok());
        // A long pause refills only up to the burst size.
        for _ in 0..3 {
            assert!(rl.try_take(100_000).is_ok());
        }
        assert!(rl.try_take(100_000).is_err());
    }

    #[test]
    fn rate_limiter_tolerates_time_going_backwards() {
        let mut rl = RateLimiter::new(1, 1.0, 5_000);
        assert!(rl.try_take(5_000).is_ok());
        assert!(rl.try_take(4_000).is_err());
    }
}
