//! Room policies over real HTTP: the media nodes' RPCs (`RPC_MODERATE`,
//! `RPC_ROOM_POLICY`), the owner's settings route, join-time roles,
//! refusals and the lobby claim, and heartbeat policy versions. Run with
//! `cargo test -p veche-control-plane --lib access_tests::moderation`.

use super::harness::{As, Cp};
use super::{rejoin_with, slug};
use crate::admission::RoomCreation;
use crate::api::join_policy::{LOCKED, REMOVED};
use crate::leader::{LeaderReply, LeaderRequest};
use serde_json::json;
use veche_protocol::error::ErrorBody;
use veche_protocol::moderation::{MediaGroup, ModAction, Role, RoomPolicy};
use veche_protocol::rpc::{
    Actor, Heartbeat, ModerateRequest, PresentParticipant, RoomPolicyRequest, RPC_MODERATE,
    RPC_ROOM_POLICY,
};
use veche_protocol::{NodeId, ParticipantId, RoomId};

use super::harness::SECRET;

/// A reply to an RPC: status and MessagePack body.
struct Rpc {
    status: u16,
    body: Vec<u8>,
}

impl Rpc {
    fn policy(&self) -> RoomPolicy {
        assert_eq!(self.status, 200, "{:?}", self.error());
        veche_protocol::msgpack::from_slice(&self.body).expect("a policy")
    }

    fn error(&self) -> ErrorBody {
        veche_protocol::msgpack::from_slice(&self.body).unwrap_or_else(|_| {
            ErrorBody::new(
                veche_protocol::ErrorCode::Internal,
                String::from_utf8_lossy(&self.body),
            )
        })
    }
}

async fn rpc(cp: &Cp, path: &str, secret: Option<&str>, body: Vec<u8>) -> Rpc {
    let (status, body) = cp.rpc(path, secret, body).await;
    Rpc { status, body }
}

async fn moderate(cp: &Cp, req: &ModerateRequest) -> Rpc {
    rpc(
        cp,
        RPC_MODERATE,
        Some(SECRET),
        rmp_serde::to_vec_named(req).unwrap(),
    )
    .await
}

async fn policy(cp: &Cp, room: RoomId) -> RoomPolicy {
    let body = rmp_serde::to_vec_named(&RoomPolicyRequest { room_id: room }).unwrap();
    rpc(cp, RPC_ROOM_POLICY, Some(SECRET), body).await.policy()
}

fn pid(v: &serde_json::Value) -> ParticipantId {
    ParticipantId(v["participant_id"].as_str().unwrap().into())
}

fn request(room: RoomId, by: &ParticipantId, role: Role, action: ModAction) -> ModerateRequest {
    ModerateRequest {
        room_id: room,
        actor: Some(Actor {
            participant_id: by.clone(),
            display_name: "Someone".into(),
            claimed_role: role,
        }),
        action,
        present: Vec::new(),
        at_ms: 5,
    }
}

fn room_id(room: &serde_json::Value) -> RoomId {
    RoomId(room["id"].as_u64().unwrap())
}

#[tokio::test]
async fn the_moderation_rpcs_need_the_cluster_secret_and_a_decodable_bounded_body() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let room = cp.room(&As::anonymous(), "open").await;
    let req = request(
        room_id(&room),
        &ParticipantId("p-x".into()),
        Role::Host,
        ModAction::MuteEveryone,
    );
    let body = rmp_serde::to_vec_named(&req).unwrap();
    for path in [RPC_MODERATE, RPC_ROOM_POLICY] {
        assert_eq!(
            rpc(&cp, path, None, body.clone()).await.status,
            401,
            "{path}"
        );
        assert_eq!(
            rpc(&cp, path, Some("not-the-secret"), body.clone())
                .await
                .status,
            401,
            "{path}"
        );
        let bad = rpc(&cp, path, Some(SECRET), b"\xc1garbage".to_vec()).await;
        assert_eq!(bad.status, 400, "{path}");
        let e = bad.error();
        assert_eq!(e.code, veche_protocol::ErrorCode::BadRequest);
        assert!(e.message.contains("undecodable RPC body"), "{}", e.message);
    }
    let huge = vec![0u8; veche_protocol::limits::moderation::MAX_RPC_BODY_BYTES + 1];
    assert_eq!(rpc(&cp, RPC_MODERATE, Some(SECRET), huge).await.status, 413);
    let mut unknown = req.clone();
    unknown.room_id = RoomId(999);
    let e = moderate(&cp, &unknown).await;
    assert_eq!(
        (e.status, e.error().code),
        (404, veche_protocol::ErrorCode::RoomNotFound)
    );
    assert_eq!(
        policy(&cp, room_id(&room)).await.version,
        0,
        "nothing was committed"
    );
}

#[tokio::test]
async fn a_forbidden_action_is_refused_with_403_and_changes_nothing() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let room = cp.room(&As::anonymous(), "open").await;
    let id = room_id(&room);
    let bob = ParticipantId("p-bob".into());
    let host = ParticipantId("p-host".into());
    let mute = |by: &ParticipantId, role| {
        request(
            id,
            by,
            role,
            ModAction::Mute {
                participant_id: bob.clone(),
                group: MediaGroup::Microphone,
            },
        )
    };
    let refused = moderate(
        &cp,
        &mute(&ParticipantId("p-eve".into()), Role::Participant),
    )
    .await;
    assert_eq!(refused.status, 403);
    let e = refused.error();
    assert_eq!(e.code, veche_protocol::ErrorCode::Forbidden);
    assert_eq!(e.message, "only a host or a moderator can mute someone");
    assert_eq!(policy(&cp, id).await, RoomPolicy::default(), "unchanged");
    let applied = moderate(&cp, &mute(&host, Role::Host)).await.policy();
    assert_eq!(applied.version, 1);
    assert!(applied.withholds(&bob, Role::Participant, MediaGroup::Microphone));
    assert_eq!(policy(&cp, id).await, applied);
    let metrics = cp.send("GET", "/metrics", &As::anonymous(), None).await;
    let text = metrics.body.as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains(r#"veche_cp_moderation_actions_total{action="mute",outcome="refused"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"veche_cp_moderation_actions_total{action="mute",outcome="applied"} 1"#),
        "{text}"
    );
    // The heartbeat of a node hosting the room carries the new version.
    let reply = cp
        .cp
        .on_leader(LeaderRequest::Heartbeat(Heartbeat {
            node_id: NodeId(1),
            participants: 1,
            rooms: 2,
            room_ids: vec![id, RoomId(999)],
        }))
        .await
        .unwrap();
    let LeaderReply::Heartbeat(reply) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(
        reply.policy_versions,
        [(id, 1)],
        "an unmoderated room is left out"
    );
}

#[tokio::test]
async fn the_owner_joins_as_a_host_recorded_in_the_policy() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (_, ada) = cp.user("ada@example.test", "Ada").await;
    let room = cp.room(&ada, "open").await;
    let joined = cp.join(&slug(&room), &ada, json!({})).await;
    let joined = joined.ok(200);
    let claims = cp.claims(joined["token"].as_str().unwrap()).await;
    assert_eq!(claims.role, Role::Host);
    assert!(!claims.lobby);
    let p = policy(&cp, room_id(&room)).await;
    assert!(p.hosts.contains(&pid(joined)));
    let other = cp.join(&slug(&room), &As::anonymous(), json!({})).await;
    let claims = cp.claims(other.ok(200)["token"].as_str().unwrap()).await;
    assert_eq!(
        claims.role,
        Role::Guest,
        "anonymous in an organisation's room"
    );
}

#[tokio::test]
async fn a_locked_meeting_refuses_newcomers_and_lets_its_participants_reconnect() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let room = cp.room(&As::anonymous(), "open").await;
    let key = As::key(room["owner_key"].as_str().unwrap());
    let s = slug(&room);
    let first = cp.join(&s, &As::anonymous(), json!({})).await;
    let first = first.ok(200).clone();
    let path = format!("/api/rooms/{s}/settings");
    let view = cp.json("PUT", &path, &key, json!({"locked": true})).await;
    assert_eq!(view.ok(200)["settings"]["locked"], true);
    let msg = cp
        .join(&s, &As::anonymous(), json!({}))
        .await
        .error(403, "forbidden");
    assert_eq!(msg, LOCKED);
    let back = cp.join(&s, &As::anonymous(), rejoin_with(&first)).await;
    assert_eq!(pid(back.ok(200)), pid(&first), "a participant reconnects");
    let owner = cp.join(&s, &key, json!({})).await;
    owner.ok(200);
    let seen = cp
        .send("GET", &format!("/api/rooms/{s}"), &As::anonymous(), None)
        .await;
    assert_eq!(seen.ok(200)["settings"]["locked"], true);
}

#[tokio::test]
async fn with_the_lobby_on_newcomers_get_a_lobby_token_and_the_page_says_so() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let room = cp.room(&As::anonymous(), "open").await;
    let key = As::key(room["owner_key"].as_str().unwrap());
    let s = slug(&room);
    let path = format!("/api/rooms/{s}/settings");
    cp.json("PUT", &path, &key, json!({"lobby": true}))
        .await
        .ok(200);
    let seen = cp
        .send("GET", &format!("/api/rooms/{s}"), &As::anonymous(), None)
        .await;
    assert_eq!(seen.ok(200)["settings"]["lobby"], true);
    let waiter = cp.join(&s, &As::anonymous(), json!({})).await;
    let waiter = waiter.ok(200).clone();
    assert_eq!(waiter["room"]["settings"]["lobby"], true, "{waiter}");
    assert!(cp.claims(waiter["token"].as_str().unwrap()).await.lobby);
    let owner = cp.join(&s, &key, json!({})).await;
    assert!(
        !cp.claims(owner.ok(200)["token"].as_str().unwrap())
            .await
            .lobby
    );
    // Admitted by the node (the lobby stayed unattended): a rejoin is seated.
    let admit = ModerateRequest {
        actor: None,
        ..request(
            room_id(&room),
            &pid(&waiter),
            Role::Participant,
            ModAction::Admit {
                participant_id: pid(&waiter),
            },
        )
    };
    moderate(&cp, &admit).await.policy();
    let back = cp.join(&s, &As::anonymous(), rejoin_with(&waiter)).await;
    assert!(
        !cp.claims(back.ok(200)["token"].as_str().unwrap())
            .await
            .lobby
    );
}

#[tokio::test]
async fn a_banned_account_is_refused_whatever_participant_id_it_comes_back_with() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (_, ada) = cp.user("ada@example.test", "Ada").await;
    let (bob_id, bob) = cp.user("bob@example.test", "Bob").await;
    let room = cp.room(&ada, "open").await;
    let s = slug(&room);
    let host = cp.join(&s, &ada, json!({})).await.ok(200).clone();
    let joined = cp.join(&s, &bob, json!({})).await.ok(200).clone();
    let mut ban = request(
        room_id(&room),
        &pid(&host),
        Role::Host,
        ModAction::Remove {
            participant_id: pid(&joined),
            ban: true,
        },
    );
    ban.present = vec![PresentParticipant {
        participant_id: pid(&joined),
        claimed_role: Role::Participant,
        user: Some(bob_id),
        pass: None,
    }];
    moderate(&cp, &ban).await.policy();
    let msg = cp.join(&s, &bob, json!({})).await.error(403, "forbidden");
    assert_eq!(msg, REMOVED);
    cp.join(&s, &As::anonymous(), json!({})).await.ok(200);
}

#[tokio::test]
async fn only_the_owner_changes_settings_with_a_bounded_well_formed_body() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (_, ada) = cp.user("ada@example.test", "Ada").await;
    let (_, eve) = cp.user("eve@example.test", "Eve").await;
    let room = cp.room(&ada, "open").await;
    let path = format!("/api/rooms/{}/settings", slug(&room));
    let before = cp.applied();
    for who in [&eve, &As::anonymous(), &As::key("not-the-key")] {
        let msg = cp
            .json("PUT", &path, who, json!({"locked": true}))
            .await
            .error(403, "forbidden");
        assert_eq!(msg, crate::api::moderation::OWNER_ONLY);
    }
    let msg = cp
        .json("PUT", &path, &ada, json!({"locked": "yes"}))
        .await
        .error(400, "bad_request");
    assert!(msg.contains("invalid request body"), "{msg}");
    let msg = cp
        .json("PUT", &path, &ada, json!({"colour": "red"}))
        .await
        .error(400, "bad_request");
    assert!(msg.contains("unknown field"), "{msg}");
    let big = format!("{{\"locked\":true,\"x\":\"{}\"}}", "x".repeat(20_000));
    cp.send("PUT", &path, &ada, Some(big))
        .await
        .error(413, "too_large");
    assert_eq!(cp.applied(), before, "no refused change wrote anything");
    let view = cp
        .json("PUT", &path, &ada, json!({"speak_mode": true}))
        .await;
    assert_eq!(view.ok(200)["version"], 1);
    let burst = veche_protocol::limits::http::PASSES.burst;
    let mut limited = None;
    for n in 0..=burst + 1 {
        let r = cp.json("PUT", &path, &ada, json!({})).await;
        if r.status == 429 {
            limited = Some(n);
            break;
        }
        r.ok(200);
    }
    let n = limited.expect("the settings route is rate limited");
    assert!(n <= burst, "limited after {n} requests, burst {burst}");
}

#[tokio::test]
async fn a_participant_removed_without_a_ban_rejoins_as_someone_new() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let room = cp.room(&As::anonymous(), "open").await;
    let s = slug(&room);
    let first = cp
        .join(&s, &As::anonymous(), json!({}))
        .await
        .ok(200)
        .clone();
    let remove = request(
        room_id(&room),
        &ParticipantId("p-host".into()),
        Role::Host,
        ModAction::Remove {
            participant_id: pid(&first),
            ban: false,
        },
    );
    moderate(&cp, &remove).await.policy();
    let back = cp.join(&s, &As::anonymous(), rejoin_with(&first)).await;
    let back = back.ok(200);
    assert_ne!(pid(back), pid(&first), "the removed seat is not given back");
    let claims = cp.claims(back["token"].as_str().unwrap()).await;
    assert!(!claims.rejoin);
}
