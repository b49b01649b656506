//! Raft RPC between control-plane nodes: the MessagePack bodies of
//! `POST /raft/{append,vote,snapshot}` (openraft's AppendEntries, Vote and
//! InstallSnapshot requests over the control plane's `TypeConfig`, as
//! `store::network` decodes them) and the `Result`s a peer answers with,
//! which the sending side decodes.
//!
//! The first byte picks the type; the rest is the body.
//!
//! Invariants beyond "no panic":
//! - whatever decodes encodes (`to_vec_named`, as the sender does), decodes
//!   again, and encodes to the same bytes, so a follower stores exactly the
//!   entries the leader sent;
//! - every command carried in an append says whether it is idempotent
//!   without overflowing the stack, however deeply batches nest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::EntryPayload;
use serde::de::DeserializeOwned;
use serde::Serialize;
use veche_control_plane::store::TypeConfig;

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
    match mode % 6 {
        0 => {
            if let Some(req) = request_round_trip::<AppendEntriesRequest<TypeConfig>>(body) {
                for entry in &req.entries {
                    if let EntryPayload::Normal(cmd) = &entry.payload {
                        let _ = cmd.is_idempotent();
                    }
                }
            }
        }
        1 => {
            request_round_trip::<VoteRequest<u64>>(body);
        }
        2 => {
            request_round_trip::<InstallSnapshotRequest<TypeConfig>>(body);
        }
        3 => {
            reply_round_trip::<Result<AppendEntriesResponse<u64>, RaftError<u64>>>(body);
        }
        4 => {
            reply_round_trip::<Result<VoteResponse<u64>, RaftError<u64>>>(body);
        }
        _ => {
            reply_round_trip::<
                Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>,
            >(body);
        }
    }
});
