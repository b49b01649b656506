//! Every parser of untrusted input returns an error rather than panicking,
//! whatever it is fed: seeded pseudo-random inputs, plus mutations of valid
//! messages, so failures reproduce exactly.
//!
//! These run in the normal test suite, in seconds. The coverage-guided
//! fuzzing of the same parsers (and of the control plane's leader and Raft
//! RPC) is the cargo-fuzz project in `fuzz/`; `docs/robustness.md` says how
//! to run it and what it found.

use crate::signal::{peek_type, ClientMessage};
use crate::token;
use crate::{NodeId, RoomSlug};

/// xorshift64*: tiny, deterministic, good enough to shake parsers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const VALID: &[&str] = &[
    r#"{"type":"join","token":"v1.eyJhIjoxfQ.c2ln","media":{"mic_muted":false,"camera_muted":true,"screen_sharing":false}}"#,
    r#"{"type":"offer","sdp":"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n","tracks":{"abc":"screen"}}"#,
    r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#,
    r#"{"type":"media","mic_muted":true,"camera_muted":false,"screen_sharing":false}"#,
    r#"{"type":"chat","text":"hello","client_msg_id":"c1"}"#,
    r#"{"type":"join","token":"t","resume":{"participant_id":"p00","resume_token":"ab"}}"#,
];

/// Mutates `s`: flips, inserts, deletes or duplicates bytes, keeping the
/// result valid UTF-8 (the WebSocket layer guarantees text frames are).
fn mutate(rng: &mut Rng, s: &str) -> String {
    let mut b = s.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            b.push(b'{');
        }
        let i = rng.below(b.len());
        match rng.below(4) {
            0 => b[i] = (rng.next() & 0x7f) as u8,
            1 => {
                const BYTES: &[u8] = b"{}[]\":,\\0-9e";
                b.insert(i, BYTES[rng.below(BYTES.len())])
            }
            2 => {
                b.remove(i);
            }
            _ => {
                let end = (i + rng.below(16)).min(b.len());
                let dup = b[i..end].to_vec();
                b.splice(i..i, dup);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn signalling_parser_never_panics_on_mutated_or_random_frames() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for round in 0..20_000 {
        let input = if round % 4 == 0 {
            let len = rng.below(64);
            (0..len)
                .map(|_| char::from_u32(rng.below(0x250) as u32).unwrap_or('?'))
                .collect()
        } else {
            let base = VALID[rng.below(VALID.len())];
            mutate(&mut rng, base)
        };
        // Either a message or an error body; never a panic.
        let _ = ClientMessage::parse(&input);
        let _ = peek_type(&input);
    }
}

#[test]
fn token_verification_never_panics_on_mangled_tokens() {
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let key = [7u8; 32];
    let good = "v1.eyJyb29tX2lkIjoxfQ.AAAA";
    for _ in 0..20_000 {
        let t = mutate(&mut rng, good);
        assert!(token::verify(&t, &key, NodeId(1), 0).is_err());
    }
}

#[test]
fn slug_parser_never_panics_and_accepts_only_22_url_safe_chars() {
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    for _ in 0..20_000 {
        let s = mutate(&mut rng, "AAAAAAAAAAAAAAAAAAAAAA");
        if let Ok(slug) = RoomSlug::parse(&s) {
            assert_eq!(slug.as_str().len(), crate::ids::SLUG_LEN);
        }
    }
}

#[test]
fn rpc_bodies_never_panic_on_random_msgpack() {
    use crate::rpc::{CommitChat, Heartbeat, HeartbeatReply, RegisterNode, RegisterNodeReply};
    let mut rng = Rng(0x5eed_1234_abcd_0004);
    for _ in 0..20_000 {
        let len = rng.below(48);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = rmp_serde::from_slice::<CommitChat>(&bytes);
        let _ = rmp_serde::from_slice::<RegisterNode>(&bytes);
        let _ = rmp_serde::from_slice::<RegisterNodeReply>(&bytes);
        let _ = rmp_serde::from_slice::<Heartbeat>(&bytes);
        let _ = rmp_serde::from_slice::<HeartbeatReply>(&bytes);
    }
}

#[test]
fn relay_frames_and_datagrams_never_panic_and_stay_in_their_bounds() {
    use crate::relay::{
        decode_nack, DatagramHeader, RelayMsg, DATAGRAM_HEADER_LEN, MAX_CONTROL_FRAME,
    };
    let mut rng = Rng(0x5eed_1234_abcd_0005);
    let hello = RelayMsg::Hello {
        version: crate::relay::RELAY_VERSION,
        relay_addr: "127.0.0.1:7000".into(),
    }
    .encode();
    for round in 0..20_000 {
        let bytes: Vec<u8> = if round % 2 == 0 {
            let len = rng.below(48);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let mut b = hello.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            b
        };
        if bytes.len() >= 4 {
            let prefix: [u8; 4] = bytes[..4].try_into().unwrap();
            if let Ok(len) = RelayMsg::check_len(prefix) {
                assert!(len <= MAX_CONTROL_FRAME);
                if let Some(body) = bytes.get(4..4 + len) {
                    if let Ok(msg) = RelayMsg::decode(body) {
                        assert_eq!(RelayMsg::decode(&msg.encode()[4..]).unwrap(), msg);
                    }
                }
            }
        }
        match DatagramHeader::parse(&bytes) {
            Some((_, payload)) => {
                assert_eq!(payload, &bytes[DATAGRAM_HEADER_LEN..]);
                assert_eq!(decode_nack(payload).len(), payload.len() / 2);
            }
            None => assert!(bytes.len() < DATAGRAM_HEADER_LEN || bytes[0] > 2),
        }
    }
}

#[test]
fn deeply_nested_frames_are_refused_within_a_tokio_worker_stack() {
    // Both decoders recurse per nesting level; each has a depth limit
    // (serde_json 128, rmp_serde 1024). A tokio worker has a 2 MiB stack,
    // so the limits must stop a nested frame well before that runs out.
    let run = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let depth = 100_000;
            let json = format!(
                r#"{{"type":"ping","x":{}{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            assert!(ClientMessage::parse(&json).is_err());
            let mut body = vec![0x83, 0xa4];
            body.extend_from_slice(b"type");
            body.push(0xa5);
            body.extend_from_slice(b"hello");
            body.push(0xa7);
            body.extend_from_slice(b"version");
            body.push(0x01);
            body.extend_from_slice(&[0xa1, b'x']);
            body.extend(std::iter::repeat_n(0x91, depth));
            body.push(0x90);
            assert!(crate::relay::RelayMsg::decode(&body).is_err());
        })
        .unwrap();
    run.join()
        .expect("decoding nested frames overflowed a 2 MiB stack");
}
