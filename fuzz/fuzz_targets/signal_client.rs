//! Browser -> node signalling: every text frame a guest can send reaches
//! `ClientMessage::parse`, and a frame that fails reaches `peek_type` for
//! the error reply.
//!
//! Invariants beyond "no panic":
//! - a parsed message serialises, and parses back to the same value;
//! - `peek_type` names the same kind the parser found, and is short;
//! - a refusal is `too_large` exactly when the frame is over the limit,
//!   otherwise `bad_request`;
//! - the `error` reply the node builds for a refused frame round-trips
//!   through the client's decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veche_protocol::signal::{peek_type, ClientMessage, ServerMessage, MAX_FRAME_BYTES};
use veche_protocol::ErrorCode;

fuzz_target!(|data: &[u8]| {
    // The WebSocket layer hands the node only valid UTF-8 text frames.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let peeked = peek_type(text);
    if let Some(t) = &peeked {
        assert!(t.len() <= 32, "peek_type returned {} bytes", t.len());
    }
    match ClientMessage::parse(text) {
        Ok(msg) => {
            assert!(text.len() <= MAX_FRAME_BYTES);
            assert_eq!(peeked.as_deref(), Some(msg.kind()), "peeked type differs");
            let json = serde_json::to_string(&msg).expect("a parsed message serialises");
            let again = ClientMessage::parse(&json).expect("a re-serialised message parses");
            assert_eq!(again, msg);
        }
        Err(error) => {
            let want = if text.len() > MAX_FRAME_BYTES {
                ErrorCode::TooLarge
            } else {
                ErrorCode::BadRequest
            };
            assert_eq!(error.code, want);
            let reply = ServerMessage::Error {
                error,
                request: peeked,
                client_msg_id: None,
            };
            let json = serde_json::to_string(&reply).expect("an error reply serialises");
            let back: ServerMessage = serde_json::from_str(&json).expect("an error reply parses");
            assert_eq!(back, reply);
        }
    }
});
