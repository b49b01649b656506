//! Writes the seed corpora under `fuzz/corpus/<target>/`: one small valid
//! example of each message a target decodes, so libFuzzer starts from the
//! accept paths instead of having to discover JSON, MessagePack and the
//! message shapes from nothing.
//!
//! Run from `fuzz/`: `cargo run --example seed_corpus`. It rewrites the
//! `seed-*` files and leaves any other corpus files alone.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta,
    SnapshotSegmentId, StoredMembership, Vote,
};
use ring::signature::Ed25519KeyPair;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use veche_control_plane::leader::{LeaderReply, LeaderRequest};
use veche_control_plane::store::model::{Command, CommandOutput, Room};
use veche_control_plane::store::TypeConfig;
use veche_protocol::admin::{
    AddMemberRequest, ClusterStatus, MediaNodeStatus, MemberStatus, Placement,
};
use veche_protocol::chat::ChatMessage;
use veche_protocol::error::ErrorBody;
use veche_protocol::relay::{
    encode_nack, DatagramHeader, DatagramKind, RelayCodec, RelayMsg, RemoteParticipant,
    RELAY_VERSION,
};
use veche_protocol::rpc::{
    CommitChat, CreateRoomRequest, Heartbeat, HeartbeatReply, JoinRequest, JoinResponse,
    MediaNodeInfo, MessagesPage, RegisterNode, RegisterNodeReply, RelayPeer, RoomNodes, RoomView,
};
use veche_protocol::signal::{
    IceCandidate, IceServer, LeaveReason, MediaKind, MediaState, ParticipantInfo, PresenceStatus,
    RoomInfo, ServerMessage, TrackInfo, TrackSource,
};
use veche_protocol::token::{self, JoinClaims};
use veche_protocol::{ErrorCode, MessageId, NodeId, ParticipantId, RoomId, RoomSlug, TrackId};

/// Must match `KEY_SEED` in `fuzz_targets/join_token.rs`.
const KEY_SEED: [u8; 32] = [0x5e; 32];

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
}

/// A seed for a target whose first byte picks the parser.
fn write_mode(target: &str, name: &str, mode: u8, body: &[u8]) {
    let mut bytes = vec![mode];
    bytes.extend_from_slice(body);
    write(target, name, &bytes);
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialises")
}

fn msgpack<T: Serialize>(v: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(v).expect("encodes")
}

/// Encodes a request, and checks the server's decoder (with its nesting
/// limit) still takes it.
fn request<T: Serialize + serde::de::DeserializeOwned>(v: &T) -> Vec<u8> {
    let bytes = msgpack(v);
    veche_protocol::msgpack::from_slice::<T>(&bytes).expect("a real request is within the limits");
    bytes
}

fn pid() -> ParticipantId {
    ParticipantId::from_random([1, 2, 3, 4, 5, 6, 7, 8])
}

fn slug() -> RoomSlug {
    RoomSlug::from_random([9; 16])
}

fn participant() -> ParticipantInfo {
    ParticipantInfo {
        id: pid(),
        display_name: "Ada".into(),
        status: PresenceStatus::Connected,
        media: MediaState {
            mic_muted: false,
            camera_muted: true,
            screen_sharing: false,
        },
        tracks: vec![TrackInfo {
            id: TrackId::from_random([7; 8]),
            kind: MediaKind::Video,
            source: TrackSource::Camera,
            stream_id: pid().0,
        }],
        joined_at_ms: 1_700_000_000_000,
        guest: false,
        role: veche_protocol::moderation::Role::Host,
        hand_raised_at_ms: Some(1_700_000_001_000),
    }
}

fn chat_message() -> ChatMessage {
    ChatMessage {
        id: MessageId(42),
        room_id: RoomId(7),
        participant_id: pid(),
        display_name: "Ada".into(),
        text: "hello, world".into(),
        sent_at_ms: 1_700_000_000_000,
        client_msg_id: Some("c1".into()),
    }
}

fn media_node() -> MediaNodeInfo {
    MediaNodeInfo {
        node_id: NodeId(1),
        region: "eu-west".into(),
        ws_url: "/media/ws".into(),
        capacity: 100,
        relay_addr: Some("127.0.0.1:7000".into()),
    }
}

fn peer() -> RelayPeer {
    RelayPeer {
        node_id: NodeId(2),
        relay_addr: "127.0.0.1:7001".into(),
    }
}

fn signal_client() {
    let frames: &[(&str, &str)] = &[
        (
            "join",
            r#"{"type":"join","token":"v1.eyJhIjoxfQ.c2ln","media":{"mic_muted":false,"camera_muted":true,"screen_sharing":false}}"#,
        ),
        (
            "join-resume",
            r#"{"type":"join","token":"t","resume":{"participant_id":"p0102030405060708","resume_token":"ab"}}"#,
        ),
        (
            "offer",
            r#"{"type":"offer","sdp":"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n","tracks":{"abc":"screen","def":"screen_audio"}}"#,
        ),
        ("answer", r#"{"type":"answer","sdp":"v=0\r\n"}"#),
        (
            "candidate",
            r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}"#,
        ),
        ("candidate-null", r#"{"type":"candidate","candidate":null}"#),
        (
            "media",
            r#"{"type":"media","mic_muted":true,"camera_muted":false,"screen_sharing":false}"#,
        ),
        (
            "chat",
            r#"{"type":"chat","text":"hello","client_msg_id":"c1"}"#,
        ),
        ("ping", r#"{"type":"ping","seq":17}"#),
        ("leave", r#"{"type":"leave"}"#),
    ];
    for (name, frame) in frames {
        write("signal_client", name, frame.as_bytes());
    }
}

fn signal_server() {
    let msgs = [
        (
            "joined",
            ServerMessage::Joined {
                participant_id: pid(),
                room: RoomInfo {
                    id: RoomId(7),
                    slug: slug(),
                    name: "Standup".into(),
                    e2ee: false,
                },
                participants: vec![participant()],
                ice_servers: vec![IceServer {
                    urls: vec!["stun:stun.example.com:3478".into()],
                    username: Some("u".into()),
                    credential: Some("c".into()),
                }],
                resume_token: "r3sume".into(),
                resumed: false,
                media_kept: false,
                policy: Default::default(),
            },
        ),
        (
            "offer",
            ServerMessage::Offer {
                sdp: "v=0\r\n".into(),
            },
        ),
        (
            "answer",
            ServerMessage::Answer {
                sdp: "v=0\r\n".into(),
            },
        ),
        (
            "candidate",
            ServerMessage::Candidate {
                candidate: Some(IceCandidate {
                    candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                    sdp_mid: Some("0".into()),
                    sdp_m_line_index: Some(0),
                    username_fragment: None,
                }),
            },
        ),
        (
            "participant-updated",
            ServerMessage::ParticipantUpdated {
                participant: participant(),
            },
        ),
        (
            "participant-left",
            ServerMessage::ParticipantLeft {
                participant_id: pid(),
                reason: LeaveReason::Disconnected,
            },
        ),
        (
            "chat",
            ServerMessage::Chat {
                message: chat_message(),
            },
        ),
        (
            "error",
            ServerMessage::Error {
                error: ErrorBody::new(ErrorCode::ChatTooLong, "too long"),
                request: Some("chat".into()),
                client_msg_id: Some("c1".into()),
            },
        ),
        (
            "move",
            ServerMessage::Move {
                reason: "draining".into(),
            },
        ),
        (
            "pong",
            ServerMessage::Pong {
                seq: 17,
                server_time_ms: 1_700_000_000_000,
            },
        ),
    ];
    for (name, m) in &msgs {
        write("signal_server", name, &json(m));
    }
}

fn room_view() -> RoomView {
    RoomView {
        id: RoomId(7),
        slug: slug(),
        name: "Standup".into(),
        link: format!("https://meet.example.com/r/{}", slug()),
        created_at_ms: 1_700_000_000_000,
        access: Default::default(),
        e2ee: false,
        owner_name: Some("Ada".into()),
        you_own: false,
        owner_key: None,
        pass_refusal: None,
        settings: veche_protocol::moderation::RoomSettings::default(),
        cover: None,
    }
}

fn rest_bodies() {
    let t = "rest_bodies";
    write_mode(
        t,
        "create-room",
        0,
        &json(&CreateRoomRequest {
            name: "Standup".into(),
            access: Default::default(),
            e2ee: false,
        }),
    );
    write_mode(
        t,
        "join",
        1,
        &json(&JoinRequest {
            display_name: "Ada".into(),
            region: Some("eu-west".into()),
            rejoin_token: Some("v1.eyJhIjoxfQ.c2ln".into()),
            rejoin_secret: Some("s3cret".into()),
            unreachable_node: Some(NodeId(3)),
            pass: None,
        }),
    );
    write_mode(t, "join-minimal", 1, br#"{"display_name":"Ada"}"#);
    write_mode(
        t,
        "add-member",
        2,
        &json(&AddMemberRequest {
            id: 2,
            addr: "http://10.0.0.2:8080".into(),
        }),
    );
    write_mode(t, "slug", 3, slug().as_str().as_bytes());
    write_mode(t, "chat", 4, "hello\r\nworld \u{202E}!".as_bytes());
    write_mode(
        t,
        "join-response",
        5,
        &json(&JoinResponse {
            token: "v1.eyJhIjoxfQ.c2ln".into(),
            ws_url: "/media/ws".into(),
            participant_id: pid(),
            node_id: NodeId(1),
            expires_at_ms: 1_700_000_060_000,
            room: room_view(),
            rejoin_secret: "s3cret".into(),
        }),
    );
    write_mode(
        t,
        "messages",
        6,
        &json(&MessagesPage {
            messages: vec![chat_message()],
            has_more: true,
        }),
    );
    let member = MemberStatus {
        id: 1,
        addr: "http://10.0.0.1:8080".into(),
        voter: true,
        matched_index: Some(12),
    };
    write_mode(
        t,
        "cluster-status",
        7,
        &json(&ClusterStatus {
            node_id: 1,
            state: "Leader".into(),
            term: 3,
            leader: Some(member.clone()),
            last_log_index: Some(12),
            last_applied: Some(12),
            members: vec![member],
            media_nodes: Some(vec![media_node_status()]),
        }),
    );
}

fn media_node_status() -> MediaNodeStatus {
    MediaNodeStatus {
        info: media_node(),
        alive: true,
        last_heartbeat_ms_ago: Some(250),
        participants: 3,
        rooms: 1,
        draining: false,
    }
}

fn join_token() {
    let key = Ed25519KeyPair::from_seed_unchecked(&KEY_SEED).expect("a 32-byte seed");
    let claims = JoinClaims {
        room_id: RoomId(7),
        room_slug: slug(),
        room_name: "Standup".into(),
        participant_id: pid(),
        display_name: "Ada".into(),
        // The node and a time after the target's `NOW_MS`, so the seed
        // verifies there.
        node_id: NodeId(1),
        issued_at_ms: 1_700_000_000_000,
        expires_at_ms: 1_800_000_000_000,
        room_nodes: vec![peer()],
        rejoin: true,
        e2ee: false,
        seat: None,
        user: None,
        guest: false,
        pass: None,
        role: veche_protocol::moderation::Role::Participant,
        lobby: false,
        ice_servers: Vec::new(),
    };
    write_mode(
        "join_token",
        "valid",
        0,
        token::sign(&claims, &key).as_bytes(),
    );
    let plain = JoinClaims {
        room_nodes: Vec::new(),
        rejoin: false,
        ..claims.clone()
    };
    write_mode(
        "join_token",
        "valid-plain",
        0,
        token::sign(&plain, &key).as_bytes(),
    );
    let other_node = JoinClaims {
        node_id: NodeId(2),
        ..plain.clone()
    };
    write_mode(
        "join_token",
        "other-node",
        0,
        token::sign(&other_node, &key).as_bytes(),
    );
    write_mode(
        "join_token",
        "unsigned",
        0,
        format!("v1.{}.AAAA", URL_SAFE_NO_PAD.encode(json(&plain))).as_bytes(),
    );
    write_mode("join_token", "claims", 1, &json(&claims));
    write_mode("join_token", "claims-plain", 1, &json(&plain));
}

fn relay_frames() {
    let track = TrackId::from_random([7; 8]);
    let remote = RemoteParticipant {
        info: participant(),
        epoch: 1_700_000_000_000,
        codecs: vec![(
            track.clone(),
            RelayCodec {
                mime_type: "video/VP8".into(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
            },
        )],
        user: None,
        pass: None,
        claimed_role: veche_protocol::moderation::Role::Participant,
    };
    let msgs = [
        RelayMsg::Hello {
            version: RELAY_VERSION,
            relay_addr: "127.0.0.1:7000".into(),
        },
        RelayMsg::RoomState {
            room: RoomId(7),
            participants: vec![remote.clone()],
            reply_wanted: true,
        },
        RelayMsg::Upsert {
            room: RoomId(7),
            participant: remote,
        },
        RelayMsg::Left {
            room: RoomId(7),
            participant_id: pid(),
            reason: LeaveReason::Left,
        },
        RelayMsg::RoomClosed { room: RoomId(7) },
        RelayMsg::Subscribe {
            room: RoomId(7),
            track: track.clone(),
            slot: 3,
        },
        RelayMsg::Unsubscribe {
            room: RoomId(7),
            track,
        },
        RelayMsg::Chat {
            room: RoomId(7),
            message: chat_message(),
        },
    ];
    // A whole stream, as a link would carry it: hello first.
    let stream: Vec<u8> = msgs.iter().flat_map(RelayMsg::encode).collect();
    write("relay_frames", "stream", &stream);
    for (i, m) in msgs.iter().enumerate() {
        write("relay_frames", &format!("frame-{i}"), &m.encode());
    }
    let mut rtp = Vec::new();
    DatagramHeader {
        kind: DatagramKind::Rtp,
        slot: 3,
    }
    .write(&mut rtp);
    rtp.extend_from_slice(&[0x80, 0x60, 0, 1, 0, 0, 0, 9, 0, 0, 0, 5, 0xde, 0xad]);
    write("relay_frames", "datagram-rtp", &rtp);
    let mut nack = Vec::new();
    DatagramHeader {
        kind: DatagramKind::Nack,
        slot: 3,
    }
    .write(&mut nack);
    nack.extend_from_slice(&encode_nack(&[1, 2, 65535]));
    write("relay_frames", "datagram-nack", &nack);
}

fn internal_rpc() {
    let t = "internal_rpc";
    write_mode(
        t,
        "register",
        0,
        &request(&RegisterNode {
            node_id: NodeId(1),
            ws_url: "/media/ws".into(),
            region: "eu-west".into(),
            capacity: 100,
            relay_addr: Some("127.0.0.1:7000".into()),
        }),
    );
    write_mode(
        t,
        "register-reply",
        1,
        &msgpack(&RegisterNodeReply {
            token_public_key: vec![0xab; 32],
            control_planes: vec!["http://10.0.0.1:8080".into()],
        }),
    );
    write_mode(
        t,
        "heartbeat",
        2,
        &request(&Heartbeat {
            node_id: NodeId(1),
            participants: 3,
            rooms: 1,
            room_ids: vec![RoomId(7)],
        }),
    );
    write_mode(
        t,
        "heartbeat-reply",
        3,
        &msgpack(&HeartbeatReply {
            registered: true,
            control_planes: vec!["http://10.0.0.1:8080".into()],
            draining: false,
            room_nodes: vec![RoomNodes {
                room_id: RoomId(7),
                nodes: vec![peer()],
            }],
            policy_versions: vec![(RoomId(7), 1)],
        }),
    );
    write_mode(
        t,
        "commit-chat",
        4,
        &request(&CommitChat {
            room_id: RoomId(7),
            participant_id: pid(),
            display_name: "Ada".into(),
            text: "hello\r\nworld".into(),
            client_msg_id: Some("c1".into()),
            sent_at_ms: 1_700_000_000_000,
        }),
    );
    write_mode(t, "chat-message", 5, &msgpack(&chat_message()));
    write_mode(
        t,
        "error",
        6,
        &msgpack(&ErrorBody::new(ErrorCode::RoomNotFound, "no such room")),
    );
    let requests = [
        ("leader-write", LeaderRequest::Write(batch())),
        ("leader-read-index", LeaderRequest::ReadIndex),
        (
            "leader-add-voter",
            LeaderRequest::AddVoter {
                id: 2,
                addr: "http://10.0.0.2:8080".into(),
            },
        ),
        ("leader-remove", LeaderRequest::RemoveMember { id: 2 }),
        (
            "leader-heartbeat",
            LeaderRequest::Heartbeat(Heartbeat {
                node_id: NodeId(1),
                participants: 3,
                rooms: 1,
                room_ids: vec![RoomId(7)],
            }),
        ),
        (
            "leader-place",
            LeaderRequest::Place {
                room: RoomId(7),
                region: Some("eu-west".into()),
                avoid: Some(NodeId(2)),
            },
        ),
        (
            "leader-drain",
            LeaderRequest::SetDraining {
                node: NodeId(1),
                draining: true,
            },
        ),
    ];
    for (name, r) in &requests {
        write_mode(t, name, 7, &request(r));
    }
    let replies = [
        (
            "reply-written",
            LeaderReply::Written(Ok(CommandOutput::Room(Room {
                id: RoomId(7),
                slug: slug(),
                name: "Standup".into(),
                created_at_ms: 1_700_000_000_000,
                owner: None,
                owner_key_hash: None,
                access: Default::default(),
                e2ee: false,
            }))),
        ),
        ("reply-read-index", LeaderReply::ReadIndex(12)),
        (
            "reply-placed",
            LeaderReply::Placed(Some(Placement {
                node_id: NodeId(1),
                ws_url: "/media/ws".into(),
                room_nodes: vec![peer()],
            })),
        ),
        (
            "reply-media-node",
            LeaderReply::MediaNode(media_node_status()),
        ),
        ("reply-not-leader", LeaderReply::NotLeader),
        (
            "reply-failed",
            LeaderReply::Failed(ErrorBody::new(ErrorCode::Unavailable, "no quorum")),
        ),
    ];
    for (name, r) in &replies {
        write_mode(t, name, 9, &msgpack(r));
    }
}

/// A batch holding one of every other command.
fn batch() -> Command {
    Command::Batch(vec![
        Command::CreateRoom {
            slug: slug(),
            name: "Standup".into(),
            created_at_ms: 1_700_000_000_000,
            owner: None,
            owner_key_hash: None,
            access: Default::default(),
            e2ee: false,
        },
        Command::PostChat {
            room_id: RoomId(7),
            participant_id: pid(),
            display_name: "Ada".into(),
            text: "hello".into(),
            sent_at_ms: 1_700_000_000_000,
            client_msg_id: Some("c1".into()),
        },
        Command::InitSigningKey {
            pkcs8: vec![0x30; 16],
        },
        Command::RegisterMediaNode { info: media_node() },
        Command::SetMediaNodeDraining {
            node_id: NodeId(1),
            draining: true,
        },
    ])
}

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(3, 1), index)
}

fn membership() -> Membership<u64, BasicNode> {
    let nodes: BTreeMap<u64, BasicNode> = [
        (1, BasicNode::new("http://10.0.0.1:8080")),
        (2, BasicNode::new("http://10.0.0.2:8080")),
        (3, BasicNode::new("http://10.0.0.3:8080")),
    ]
    .into();
    Membership::new(vec![BTreeSet::from([1, 2])], nodes)
}

fn raft_rpc() {
    let t = "raft_rpc";
    let append = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(3, 1),
        prev_log_id: Some(log_id(9)),
        entries: vec![
            Entry {
                log_id: log_id(10),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(11),
                payload: EntryPayload::Membership(membership()),
            },
            Entry {
                log_id: log_id(12),
                payload: EntryPayload::Normal(batch()),
            },
        ],
        leader_commit: Some(log_id(9)),
    };
    write_mode(t, "append", 0, &request(&append));
    let heartbeat = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(3, 1),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    };
    write_mode(t, "append-empty", 0, &msgpack(&heartbeat));
    write_mode(
        t,
        "vote",
        1,
        &msgpack(&VoteRequest::new(Vote::new(4, 2), Some(log_id(12)))),
    );
    let snapshot = InstallSnapshotRequest::<TypeConfig> {
        vote: Vote::new_committed(3, 1),
        meta: SnapshotMeta {
            last_log_id: Some(log_id(12)),
            last_membership: StoredMembership::new(Some(log_id(11)), membership()),
            snapshot_id: "3-1-12-0".into(),
        },
        offset: 0,
        data: vec![0x81, 0xa1, b'x', 0x01],
        done: true,
    };
    write_mode(t, "snapshot", 2, &request(&snapshot));
    let ok: Result<AppendEntriesResponse<u64>, RaftError<u64>> =
        Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(11))));
    write_mode(t, "append-reply", 3, &msgpack(&ok));
    let conflict: Result<AppendEntriesResponse<u64>, RaftError<u64>> =
        Ok(AppendEntriesResponse::HigherVote(Vote::new(5, 3)));
    write_mode(t, "append-reply-higher", 3, &msgpack(&conflict));
    let stopped: Result<AppendEntriesResponse<u64>, RaftError<u64>> =
        Err(RaftError::Fatal(Fatal::Stopped));
    write_mode(t, "append-reply-stopped", 3, &msgpack(&stopped));
    let vote: Result<VoteResponse<u64>, RaftError<u64>> =
        Ok(VoteResponse::new(Vote::new(4, 2), Some(log_id(12)), true));
    write_mode(t, "vote-reply", 4, &msgpack(&vote));
    let snap_ok: Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> =
        Ok(InstallSnapshotResponse {
            vote: Vote::new_committed(3, 1),
        });
    write_mode(t, "snapshot-reply", 5, &msgpack(&snap_ok));
    let mismatch: Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> = Err(
        RaftError::APIError(InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
            expect: SnapshotSegmentId {
                id: "3-1-12-0".into(),
                offset: 0,
            },
            got: SnapshotSegmentId {
                id: "3-1-12-0".into(),
                offset: 4096,
            },
        })),
    );
    write_mode(t, "snapshot-reply-mismatch", 5, &msgpack(&mismatch));
}

fn main() {
    signal_client();
    signal_server();
    rest_bodies();
    join_token();
    relay_frames();
    internal_rpc();
    raft_rpc();
    println!("seed corpora written under corpus/");
}
