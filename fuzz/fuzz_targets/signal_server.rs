//! Node -> browser signalling, decoded as the clients do: the load-test bot
//! reads each frame as a `serde_json::Value` and picks `type` and `sdp` out
//! of it; typed clients (tests, tools) decode a `ServerMessage`. A media
//! node is trusted, but a proxy or a broken node can still send anything.
//!
//! Invariants beyond "no panic":
//! - a frame that decodes as a `ServerMessage` is a JSON object whose
//!   `type` is a string, so the bot sees the same kind;
//! - a decoded `ServerMessage` serialises and decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use veche_protocol::signal::ServerMessage;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The bot's path: a `Value`, then indexing, which never panics.
    let value = serde_json::from_str::<Value>(text).ok();
    if let Some(v) = &value {
        let _ = v["type"].as_str();
        let _ = v["sdp"].as_str().unwrap_or_default();
    }
    if let Ok(msg) = serde_json::from_str::<ServerMessage>(text) {
        let v = value.expect("a typed message is also a JSON value");
        assert!(v["type"].is_string(), "typed message without a string type");
        let json = serde_json::to_string(&msg).expect("a decoded message serialises");
        let back: ServerMessage =
            serde_json::from_str(&json).expect("re-serialised message decodes");
        assert_eq!(back, msg);
    }
});
