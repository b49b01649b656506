//! The internal RPC between media nodes and the control plane, and between
//! control-plane nodes: MessagePack bodies decoded with
//! `rmp_serde::from_slice`, as the control plane's `decode_rpc` and the
//! node's control-plane client do. The routes sit behind the cluster
//! secret, but whoever holds it (any media node) must not be able to crash
//! a control-plane node with a body.
//!
//! The first byte picks the type; the rest is the body:
//! node registration and its reply, heartbeats and their reply, chat
//! commits and the committed message, error bodies, and the leader RPC
//! (`LeaderRequest`, `LeaderReply`), which carries the Raft commands.
//!
//! Invariants beyond "no panic":
//! - whatever decodes encodes (`to_vec_named`, as the senders do), decodes
//!   again, and encodes to the same bytes;
//! - the checks the receiver runs next on a decoded body hold their
//!   contract: a chat commit's text validates to a fixed point, and a
//!   command says whether it is idempotent without overflowing the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use veche_control_plane::leader::{LeaderReply, LeaderRequest};
use veche_protocol::chat::{validate_chat, ChatMessage};
use veche_protocol::error::ErrorBody;
use veche_protocol::rpc::{CommitChat, Heartbeat, HeartbeatReply, RegisterNode, RegisterNodeReply};

/// Decodes `body` as the server does (`veche_protocol::msgpack`, with its
/// nesting limit); if it decodes, checks that re-encoding loses nothing.
fn request_round_trip<T: Serialize + DeserializeOwned>(body: &[u8]) -> Option<T> {
    let value: T = veche_protocol::msgpack::from_slice(body).ok()?;
    check_re_encoding(value)
}

/// Decodes `body` as a client decodes a reply (plain `rmp_serde`); if it
/// decodes, checks that re-encoding loses nothing.
fn reply_round_trip<T: Serialize + DeserializeOwned>(body: &[u8]) -> Option<T> {
    let value: T = rmp_serde::from_slice(body).ok()?;
    check_re_encoding(value)
}

fn check_re_encoding<T: Serialize + DeserializeOwned>(value: T) -> Option<T> {
    let once = rmp_serde::to_vec_named(&value).expect("a decoded body encodes");
    let back: T = rmp_serde::from_slice(&once).expect("an encoded body decodes");
    let twice = rmp_serde::to_vec_named(&back).expect("encodes again");
    assert_eq!(once, twice, "round trip changed the body");
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    match mode % 10 {
        0 => {
            request_round_trip::<RegisterNode>(body);
        }
        1 => {
            reply_round_trip::<RegisterNodeReply>(body);
        }
        2 => {
            request_round_trip::<Heartbeat>(body);
        }
        3 => {
            reply_round_trip::<HeartbeatReply>(body);
        }
        4 => {
            if let Some(commit) = request_round_trip::<CommitChat>(body) {
                if let Ok(text) = validate_chat(&commit.text) {
                    assert_eq!(validate_chat(&text).as_deref(), Ok(text.as_str()));
                }
            }
        }
        5 => {
            reply_round_trip::<ChatMessage>(body);
        }
        6 => {
            reply_round_trip::<ErrorBody>(body);
        }
        7 | 8 => {
            if let Some(LeaderRequest::Write(cmd)) = request_round_trip::<LeaderRequest>(body) {
                let _ = cmd.is_idempotent();
            }
        }
        _ => {
            reply_round_trip::<LeaderReply>(body);
        }
    }
});
