//! The JSON bodies of the REST API, and the pure checks the control plane
//! applies to them: `POST /api/rooms`, `POST /api/rooms/{slug}/join`,
//! `POST /api/admin/cluster/members`, the `{slug}` path segment, and chat
//! text. Also the responses a client decodes (join, history, cluster
//! status), since the CLI and the bot decode those from a server they only
//! half trust.
//!
//! The first byte picks the parser; the rest is the body.
//!
//! Invariants beyond "no panic":
//! - whatever parses serialises, parses back, and serialises to the same
//!   bytes (nothing is lost or invented on the way);
//! - a slug parses exactly when it is 22 URL-safe characters, and the JSON
//!   decoder agrees with `RoomSlug::parse`;
//! - accepted chat text is non-empty, trimmed, within the limit, free of
//!   the stripped characters, and validating it again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use veche_protocol::admin::{AddMemberRequest, ClusterStatus};
use veche_protocol::chat::{validate_chat, MAX_CHAT_CHARS};
use veche_protocol::ids::SLUG_LEN;
use veche_protocol::rpc::{CreateRoomRequest, JoinRequest, JoinResponse, MessagesPage};
use veche_protocol::RoomSlug;

/// Parses `body`; if it parses, checks that serialising loses nothing.
fn json_round_trip<T: Serialize + DeserializeOwned>(body: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(body).ok()?;
    let once = serde_json::to_vec(&value).expect("a parsed body serialises");
    let back: T = serde_json::from_slice(&once).expect("a serialised body parses");
    let twice = serde_json::to_vec(&back).expect("serialises again");
    assert_eq!(once, twice, "round trip changed the body");
    Some(value)
}

fn slug(body: &[u8]) {
    let Ok(s) = std::str::from_utf8(body) else {
        return;
    };
    let parsed = RoomSlug::parse(s);
    let valid = s.len() == SLUG_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    assert_eq!(parsed.is_ok(), valid, "RoomSlug::parse({s:?})");
    if let Ok(slug) = &parsed {
        assert_eq!(slug.as_str(), s);
    }
    let quoted = serde_json::to_string(s).expect("a string serialises");
    let from_json = serde_json::from_str::<RoomSlug>(&quoted).ok();
    assert_eq!(from_json, parsed.ok(), "JSON and parse disagree on {s:?}");
}

fn chat(body: &[u8]) {
    let Ok(raw) = std::str::from_utf8(body) else {
        return;
    };
    if let Ok(text) = validate_chat(raw) {
        assert!(!text.is_empty());
        assert_eq!(text.trim(), text);
        assert!(text.chars().count() <= MAX_CHAT_CHARS);
        assert!(!text.contains('\r'));
        assert!(!text
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')));
        assert_eq!(validate_chat(&text).as_deref(), Ok(text.as_str()));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    match mode % 8 {
        0 => {
            json_round_trip::<CreateRoomRequest>(body);
        }
        1 => {
            if let Some(req) = json_round_trip::<JoinRequest>(body) {
                if let Some(t) = req.rejoin_token {
                    // The control plane checks a rejoin token's signature
                    // before anything else; no key signed these.
                    let _ = veche_protocol::token::verify_ignoring_expiry(&t, &[0u8; 32]);
                }
            }
        }
        2 => {
            json_round_trip::<AddMemberRequest>(body);
        }
        3 => slug(body),
        4 => chat(body),
        5 => {
            json_round_trip::<JoinResponse>(body);
        }
        6 => {
            json_round_trip::<MessagesPage>(body);
        }
        _ => {
            json_round_trip::<ClusterStatus>(body);
        }
    }
});
