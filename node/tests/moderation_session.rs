//! A real media node's signalling sessions under moderation, against a
//! stand-in control plane that signs join tokens and answers the policy
//! and moderation RPCs with a few fixed rules (the real rules are the
//! control plane's; these tests are about what the node does with the
//! answers): the lobby seats an admitted waiter on the same socket and
//! closes a denied one with 4021, a removed participant is told and closed
//! with 4020, a refusal reaches the moderator, and an unattended lobby
//! lets its waiter in by itself.
//!
//! Peer connections bind UDP sockets, so run inside a loopback-only
//! namespace: `unshare -n bash -c 'ip link set lo up; cargo test -p
//! veche-node --test moderation_session'`.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use futures::{SinkExt, StreamExt};
use ring::signature::Ed25519KeyPair;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;
use veche_node::{MediaNode, NodeConfig, RtcConfig, WS_PATH};
use veche_protocol::error::ErrorBody;
use veche_protocol::moderation::{Hold, ModAction, Removal, Role, RoomPolicy};
use veche_protocol::rpc::{
    ModerateRequest, RegisterNodeReply, RPC_MODERATE, RPC_REGISTER_NODE, RPC_ROOM_POLICY,
};
use veche_protocol::token::{self, JoinClaims};
use veche_protocol::{ErrorCode, NodeId, ParticipantId, RoomId, RoomSlug};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The stand-in control plane: one room's policy, changed by `moderate`
/// when the actor's token says host (or the node acts for the lobby).
struct FakeCp {
    key: Ed25519KeyPair,
    policy: Mutex<RoomPolicy>,
}

impl FakeCp {
    fn moderate(&self, req: ModerateRequest) -> Result<RoomPolicy, ErrorBody> {
        let mut p = self.policy.lock().unwrap();
        let (by, by_name) = match &req.actor {
            Some(a) if a.claimed_role == Role::Host => {
                (a.participant_id.clone(), a.display_name.clone())
            }
            Some(_) => {
                return Err(ErrorBody::new(
                    ErrorCode::Forbidden,
                    "only a host or a moderator can do that",
                ))
            }
            None => (ParticipantId(String::new()), String::new()),
        };
        match req.action {
            ModAction::Admit { participant_id } => {
                p.admitted.insert(participant_id);
            }
            ModAction::Deny { participant_id } => {
                p.denied.insert(participant_id);
            }
            ModAction::Remove {
                participant_id,
                ban,
            } => {
                p.removed.insert(
                    participant_id,
                    Removal {
                        ban,
                        by_name,
                        user: None,
                        pass: None,
                        at_ms: req.at_ms,
                    },
                );
            }
            ModAction::Mute {
                participant_id,
                group,
            } => {
                p.holds.insert(
                    participant_id,
                    Hold {
                        groups: [group].into(),
                        by_name,
                        by,
                        asked_to_unmute: false,
                    },
                );
            }
            _ => {}
        }
        p.version += 1;
        Ok(p.clone())
    }
}

fn msgpack<T: serde::Serialize>(status: StatusCode, v: &T) -> axum::response::Response {
    (status, rmp_serde::to_vec_named(v).unwrap()).into_response()
}

async fn fake_cp() -> (Arc<FakeCp>, String) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let cp = Arc::new(FakeCp {
        key: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
        policy: Mutex::new(RoomPolicy::default()),
    });
    let (c1, c2, c3) = (cp.clone(), cp.clone(), cp.clone());
    let app = axum::Router::new()
        .route(
            RPC_REGISTER_NODE,
            axum::routing::post(move || {
                let reply = RegisterNodeReply {
                    token_public_key: token::public_key_bytes(&c1.key),
                    control_planes: Vec::new(),
                };
                async move { msgpack(StatusCode::OK, &reply) }
            }),
        )
        .route(
            RPC_ROOM_POLICY,
            axum::routing::post(move || {
                let p = c2.policy.lock().unwrap().clone();
                async move { msgpack(StatusCode::OK, &p) }
            }),
        )
        .route(
            RPC_MODERATE,
            axum::routing::post(move |body: axum::body::Bytes| {
                let req: ModerateRequest = rmp_serde::from_slice(&body).unwrap();
                let reply = match c3.moderate(req) {
                    Ok(p) => msgpack(StatusCode::OK, &p),
                    Err(e) => msgpack(StatusCode::FORBIDDEN, &e),
                };
                async move { reply }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (cp, url)
}

/// A registered media node serving signalling; returns its WebSocket URL.
async fn node(cp_url: String, lobby_unattended: Duration) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws = format!("ws://{}{}", l.local_addr().unwrap(), WS_PATH);
    let node = MediaNode::new(NodeConfig {
        node_id: NodeId(1),
        control_plane_urls: vec![cp_url],
        region: String::new(),
        capacity: 0,
        cluster_secret: "s".into(),
        public_ws_url: ws.clone(),
        rtc: RtcConfig {
            bind_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        },
        reconnect_grace: Duration::from_secs(2),
        ice_servers: Vec::new(),
        turn: None,
        lobby_unattended,
    });
    node.register(Duration::from_secs(10)).await.unwrap();
    let app = node.router();
    tokio::spawn(async move { axum::serve(l, app).await });
    ws
}

/// A node that never lets a lobby in by itself, with its host in.
struct Hosted {
    cp: Arc<FakeCp>,
    /// The node's WebSocket URL.
    url: String,
    /// The host's claims: Hana, participant 1.
    host: JoinClaims,
    /// Hana's socket, past her `joined`.
    h: Ws,
    /// Her `joined`.
    joined: Value,
}

/// Starts a fake control plane and a node (lobby never unattended), and
/// seats the host Hana.
async fn hosted() -> Hosted {
    let (cp, cp_url) = fake_cp().await;
    let url = node(cp_url, NEVER).await;
    let host = claims(1, "Hana", Role::Host, false);
    let mut h = connect(&url, &cp, &host).await;
    let joined = expect(&mut h, "joined").await;
    Hosted {
        cp,
        url,
        host,
        h,
        joined,
    }
}

fn claims(n: u8, name: &str, role: Role, lobby: bool) -> JoinClaims {
    let now = now_ms();
    JoinClaims {
        room_id: RoomId(7),
        room_slug: RoomSlug::from_random([1; 16]),
        room_name: "Standup".into(),
        participant_id: ParticipantId::from_random([n; 8]),
        display_name: name.into(),
        node_id: NodeId(1),
        issued_at_ms: now,
        expires_at_ms: now + 60_000,
        room_nodes: Vec::new(),
        rejoin: false,
        seat: None,
        user: None,
        guest: role == Role::Guest,
        pass: None,
        role,
        lobby,
    }
}

async fn connect(ws_url: &str, cp: &FakeCp, c: &JoinClaims) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let join = json!({"type": "join", "token": token::sign(c, &cp.key)});
    ws.send(Message::text(join.to_string())).await.unwrap();
    ws
}

/// Reads until a message with `type == ty` arrives; fails naming what
/// never came (and what did).
async fn expect(ws: &mut Ws, ty: &str) -> Value {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == ty {
                    return Some(v);
                }
                seen.push(v["type"].to_string());
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(v)) => v,
        _ => panic!("no `{ty}` message arrived; saw {seen:?}"),
    }
}

/// Reads until the node closes the socket; returns the close code.
async fn close_code(ws: &mut Ws) -> u16 {
    let code = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Close(Some(f)) = m {
                return Some(u16::from(f.code));
            }
        }
        None
    })
    .await;
    code.ok()
        .flatten()
        .expect("the node did not close the socket with a close frame")
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

const NEVER: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_lobby_waiter_is_seated_on_the_same_socket_when_a_host_admits_them() {
    let Hosted {
        cp,
        url,
        mut h,
        joined,
        ..
    } = hosted().await;
    assert_eq!(joined["participants"][0]["role"], "host");
    assert_eq!(expect(&mut h, "lobby").await["waiting"], json!([]));

    let guest = claims(2, "Gus", Role::Guest, true);
    let mut g = connect(&url, &cp, &guest).await;
    expect(&mut g, "lobby_waiting").await;
    let lobby = expect(&mut h, "lobby").await;
    assert_eq!(lobby["waiting"][0]["display_name"], "Gus");
    send(&mut g, json!({"type": "ping", "seq": 1})).await;
    expect(&mut g, "pong").await;

    send(
        &mut h,
        json!({"type": "moderate", "action": "admit", "participant_id": guest.participant_id}),
    )
    .await;
    let joined = expect(&mut g, "joined").await;
    assert_eq!(joined["participant_id"], json!(guest.participant_id));
    assert_eq!(joined["policy"]["version"], 1);
    let arrived = expect(&mut h, "participant_joined").await;
    assert_eq!(arrived["participant"]["role"], "guest");
}

#[tokio::test]
async fn a_denied_waiter_is_told_and_closed_with_4021() {
    let Hosted { cp, url, mut h, .. } = hosted().await;
    let guest = claims(2, "Gus", Role::Guest, true);
    let mut g = connect(&url, &cp, &guest).await;
    expect(&mut g, "lobby_waiting").await;
    send(
        &mut h,
        json!({"type": "moderate", "action": "deny", "participant_id": guest.participant_id}),
    )
    .await;
    let err = expect(&mut g, "error").await;
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["message"], "A moderator did not let you in");
    assert_eq!(close_code(&mut g).await, 4021);
}

#[tokio::test]
async fn a_removed_participant_is_told_closed_with_4020_and_kept_out() {
    let Hosted { cp, url, mut h, .. } = hosted().await;
    let bob = claims(2, "Bob", Role::Participant, false);
    let mut b = connect(&url, &cp, &bob).await;
    expect(&mut b, "joined").await;
    expect(&mut h, "participant_joined").await;
    send(
        &mut h,
        json!({"type": "moderate", "action": "remove", "participant_id": bob.participant_id, "ban": true}),
    )
    .await;
    let told = expect(&mut b, "moderated").await;
    assert_eq!(told["notice"], "removed");
    assert_eq!(told["by_name"], "Hana");
    assert_eq!(close_code(&mut b).await, 4020);
    let left = expect(&mut h, "participant_left").await;
    assert_eq!(left["reason"], "removed");
    // The same token again is refused: the ban holds on the node.
    let mut again = connect(&url, &cp, &bob).await;
    assert_eq!(expect(&mut again, "error").await["code"], "forbidden");
    assert_eq!(close_code(&mut again).await, 4003);
}

#[tokio::test]
async fn a_refused_moderation_reaches_the_sender_and_a_mute_reaches_its_subject() {
    let Hosted {
        cp,
        url,
        host,
        mut h,
        ..
    } = hosted().await;
    let bob = claims(2, "Bob", Role::Participant, false);
    let mut b = connect(&url, &cp, &bob).await;
    expect(&mut b, "joined").await;
    send(
        &mut b,
        json!({"type": "moderate", "action": "mute", "participant_id": host.participant_id, "group": "microphone"}),
    )
    .await;
    let err = expect(&mut b, "error").await;
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["request"], "moderate");
    send(
        &mut h,
        json!({"type": "moderate", "action": "mute", "participant_id": bob.participant_id, "group": "microphone"}),
    )
    .await;
    let told = expect(&mut b, "moderated").await;
    assert_eq!(told["notice"], "muted");
    assert_eq!(told["group"], "microphone");
    assert_eq!(told["by_name"], "Hana");
    let policy = expect(&mut h, "policy").await;
    assert_eq!(policy["policy"]["version"], 1);
}

#[tokio::test]
async fn an_unattended_lobby_lets_its_waiter_in_by_itself() {
    let (cp, cp_url) = fake_cp().await;
    let url = node(cp_url, Duration::from_millis(300)).await;
    let guest = claims(2, "Gus", Role::Guest, true);
    let mut g = connect(&url, &cp, &guest).await;
    expect(&mut g, "lobby_waiting").await;
    let joined = expect(&mut g, "joined").await;
    assert_eq!(joined["participant_id"], json!(guest.participant_id));
    assert!(cp
        .policy
        .lock()
        .unwrap()
        .admitted
        .contains(&guest.participant_id));
}
