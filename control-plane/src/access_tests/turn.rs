//! TURN credentials in join tokens: the control plane, which alone holds
//! the TURN secret, puts each participant's own short-lived credential in
//! the token it signs (a guest's and a rejoin's too), and never the secret.

use super::harness::{token_of, As, Cp};
use super::{rejoin_with, slug, HOUR};
use crate::admission::RoomCreation;
use serde_json::json;
use veche_protocol::token::JoinClaims;
use veche_protocol::turn::{credential, TurnConfig, TurnSecret};

const SECRET: &str = "the-static-auth-secret-of-coturn";
const TTL_SECS: u64 = 600;

fn turn() -> TurnConfig {
    TurnConfig {
        urls: vec![
            "turn:turn.example.com:3478?transport=udp".into(),
            "turn:turn.example.com:3478?transport=tcp".into(),
            "turns:turn.example.com:443?transport=tcp".into(),
        ],
        secret: TurnSecret::new(SECRET),
        ttl_secs: TTL_SECS,
    }
}

/// The username and credential of the one TURN entry in `claims`, after
/// checking that it is this participant's, for every configured URL, and
/// expires `TTL_SECS` after a moment within `[from_s, to_s]`.
fn turn_entry(claims: &JoinClaims, from_s: u64, to_s: u64) -> (String, String) {
    let [server] = claims.ice_servers.as_slice() else {
        panic!("not one TURN entry: {:?}", claims.ice_servers);
    };
    assert_eq!(server.urls, turn().urls);
    let user = server.username.clone().expect("a username");
    let pass = server.credential.clone().expect("a credential");
    let (expiry, who) = user.split_once(':').expect("<expiry>:<participant>");
    assert_eq!(who, claims.participant_id.0);
    let expiry: u64 = expiry.parse().expect("Unix seconds");
    assert!(
        (from_s + TTL_SECS..=to_s + TTL_SECS).contains(&expiry),
        "expiry {expiry} is not {TTL_SECS} s after [{from_s}, {to_s}]"
    );
    assert_eq!(pass, credential(&TurnSecret::new(SECRET), &user));
    (user, pass)
}

#[tokio::test]
async fn each_join_token_carries_the_participants_own_turn_credential_and_never_the_secret() {
    let cp = Cp::start_with_turn(RoomCreation::Anyone, Some(turn())).await;
    let room = cp.room(&As::anonymous(), "signed_in_or_pass").await;
    let owner = As::key(room["owner_key"].as_str().unwrap());
    let s = slug(&room);
    let now = crate::now_ms();
    let created = cp.pass(&s, &owner, "Visitor", now - HOUR, now + HOUR).await;
    let pass = token_of(created.ok(201)["link"].as_str().unwrap());

    let from = crate::now_ms() / 1000;
    let guest = cp.join(&s, &As::anonymous(), json!({"pass": pass})).await;
    let owner_join = cp.join(&s, &owner, json!({})).await;
    let to = crate::now_ms() / 1000;
    let (guest, owner_join) = (guest.ok(200).clone(), owner_join.ok(200).clone());
    let guest_claims = cp.claims(guest["token"].as_str().unwrap()).await;
    assert!(guest_claims.guest, "{guest_claims:?}");
    let (guest_user, guest_pass) = turn_entry(&guest_claims, from, to);
    let owner_claims = cp.claims(owner_join["token"].as_str().unwrap()).await;
    let (_, owner_pass) = turn_entry(&owner_claims, from, to);
    assert_ne!(guest_pass, owner_pass, "a credential of their own each");
    // Neither the token (readable by whoever holds it: base64 JSON) nor
    // anything else in the response carries the secret.
    for reply in [&guest, &owner_join] {
        assert!(!reply.to_string().contains(SECRET), "{reply}");
        let claims = reply["token"].as_str().unwrap().split('.').nth(1).unwrap();
        let claims =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
                .unwrap();
        assert!(!String::from_utf8_lossy(&claims).contains(SECRET));
    }

    // A rejoin is a new token: the same participant, a fresh credential.
    let from = crate::now_ms() / 1000;
    let back = cp.join(&s, &As::anonymous(), rejoin_with(&guest)).await;
    let to = crate::now_ms() / 1000;
    let back_claims = cp.claims(back.ok(200)["token"].as_str().unwrap()).await;
    assert_eq!(back_claims.participant_id, guest_claims.participant_id);
    let (back_user, _) = turn_entry(&back_claims, from, to);
    assert!(back_user >= guest_user, "{back_user} before {guest_user}");
}

#[tokio::test]
async fn without_turn_a_join_token_has_no_ice_servers() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let room = cp.room(&As::anonymous(), "open").await;
    let joined = cp.join(&slug(&room), &As::anonymous(), json!({})).await;
    let claims = cp.claims(joined.ok(200)["token"].as_str().unwrap()).await;
    assert!(claims.ice_servers.is_empty(), "{claims:?}");
}
