//! Join tokens, as a media node checks the `token` of a `join` and the
//! control plane checks a `rejoin_token`: `token::verify` and
//! `token::verify_ignoring_expiry` under one fixed key.
//!
//! The first byte picks the mode:
//! - even: the rest is a token. A fuzzer cannot forge Ed25519, so this
//!   mode explores the shape checks, the base64 and the signature check;
//!   mutations of the seed tokens (signed with the fixed key) reach the
//!   accept path.
//! - odd: the rest is the claims JSON, which the target signs itself, so
//!   the claims decoder behind the signature gets fuzzed too.
//!
//! Invariants beyond "no panic":
//! - a verified token's claims sign to exactly that token (verification
//!   accepts one encoding per claims, so a token cannot be re-shaped and
//!   still verify);
//! - `verify` and `verify_ignoring_expiry` agree on the claims, and
//!   `verify` only accepts the node and the time it was asked about;
//! - for a correctly signed body, the token verifies exactly when the
//!   claims JSON decodes, to the same claims.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use ring::signature::Ed25519KeyPair;
use std::sync::OnceLock;
use veche_protocol::token::{self, JoinClaims, TokenError, MAX_TOKEN_LEN};
use veche_protocol::NodeId;

/// The seed of the fixed key; `examples/seed_corpus.rs` signs the seed
/// tokens with the same one.
const KEY_SEED: [u8; 32] = [0x5e; 32];
/// The node and the time the even mode verifies for.
const NODE: NodeId = NodeId(1);
const NOW_MS: u64 = 1_700_000_000_000;

fn key() -> &'static (Ed25519KeyPair, Vec<u8>) {
    static KEY: OnceLock<(Ed25519KeyPair, Vec<u8>)> = OnceLock::new();
    KEY.get_or_init(|| {
        let k = Ed25519KeyPair::from_seed_unchecked(&KEY_SEED).expect("a 32-byte seed");
        let pk = token::public_key_bytes(&k);
        (k, pk)
    })
}

fn check_token(t: &str) {
    let (k, pk) = key();
    let loose = token::verify_ignoring_expiry(t, pk);
    let strict = token::verify(t, pk, NODE, NOW_MS);
    if t.len() > MAX_TOKEN_LEN {
        assert_eq!(loose, Err(TokenError::Malformed));
    }
    match (&loose, &strict) {
        (Ok(claims), Ok(same)) => {
            assert_eq!(claims, same);
            assert_eq!(claims.node_id, NODE);
            assert!(NOW_MS < claims.expires_at_ms);
        }
        (Ok(claims), Err(e)) => {
            assert!(
                matches!(e, TokenError::WrongNode | TokenError::Expired),
                "{e:?}"
            );
            assert!(claims.node_id != NODE || NOW_MS >= claims.expires_at_ms);
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (Err(e), Ok(_)) => panic!("verify accepted what verify_ignoring_expiry refused: {e:?}"),
    }
    if let Ok(claims) = loose {
        assert_eq!(
            token::sign(&claims, k),
            t,
            "a verified token is not canonical"
        );
    }
}

fn check_claims(json: &[u8]) {
    let (k, pk) = key();
    let mut t = String::from("v1.");
    URL_SAFE_NO_PAD.encode_string(json, &mut t);
    let sig = k.sign(t.as_bytes());
    t.push('.');
    URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut t);
    let got = token::verify_ignoring_expiry(&t, pk);
    if t.len() > MAX_TOKEN_LEN {
        assert_eq!(got, Err(TokenError::Malformed));
        return;
    }
    match serde_json::from_slice::<JoinClaims>(json) {
        Ok(claims) => {
            assert_eq!(got.as_ref(), Ok(&claims));
            // Re-signing the decoded claims gives a token that verifies to
            // the same claims, for their own node and before expiry.
            let again = token::sign(&claims, k);
            if again.len() <= MAX_TOKEN_LEN {
                assert_eq!(
                    token::verify_ignoring_expiry(&again, pk).as_ref(),
                    Ok(&claims)
                );
                if claims.expires_at_ms > 0 {
                    let before = claims.expires_at_ms - 1;
                    assert_eq!(
                        token::verify(&again, pk, claims.node_id, before).as_ref(),
                        Ok(&claims)
                    );
                }
                assert_eq!(
                    token::verify(&again, pk, claims.node_id, claims.expires_at_ms),
                    Err(TokenError::Expired)
                );
            }
        }
        Err(_) => assert_eq!(got, Err(TokenError::Malformed)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(t) = std::str::from_utf8(rest) {
            check_token(t);
        }
    } else {
        check_claims(rest);
    }
});
