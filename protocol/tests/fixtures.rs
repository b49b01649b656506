//! The signalling fixtures under `protocol/fixtures/signal/` are the
//! contract between the node and every client: the web client's tests
//! read the same files. Every client fixture must parse with the node's
//! own parser, every server fixture must be a `ServerMessage`, both must
//! survive a re-serialisation, and every variant of both enums must have a
//! fixture, so the contract cannot drift from the code.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use veche_protocol::signal::{ClientMessage, ServerMessage};

/// The fixture tag of a client message. Exhaustive on purpose: a new
/// variant does not compile until it is named here and in
/// [`CLIENT_VARIANTS`], and then fails until it has a fixture.
fn client_variant(m: &ClientMessage) -> &'static str {
    match m {
        ClientMessage::Join { .. } => "join",
        ClientMessage::Offer { .. } => "offer",
        ClientMessage::Answer { .. } => "answer",
        ClientMessage::Candidate { .. } => "candidate",
        ClientMessage::Media(_) => "media",
        ClientMessage::Chat { .. } => "chat",
        ClientMessage::Ping { .. } => "ping",
        ClientMessage::Leave => "leave",
        ClientMessage::Moderate(_) => "moderate",
        ClientMessage::Hand { .. } => "hand",
        ClientMessage::E2eeKeyPackage { .. } => "e2ee_key_package",
        ClientMessage::E2eeCommit { .. } => "e2ee_commit",
        ClientMessage::PeerSignal { .. } => "peer_signal",
        ClientMessage::P2pState { .. } => "p2p_state",
    }
}
const CLIENT_VARIANTS: [&str; 14] = [
    "join",
    "offer",
    "answer",
    "candidate",
    "media",
    "chat",
    "ping",
    "leave",
    "moderate",
    "hand",
    "e2ee_key_package",
    "e2ee_commit",
    "peer_signal",
    "p2p_state",
];

/// The fixture tag of a server message; see [`client_variant`].
fn server_variant(m: &ServerMessage) -> &'static str {
    match m {
        ServerMessage::Joined { .. } => "joined",
        ServerMessage::Answer { .. } => "answer",
        ServerMessage::Offer { .. } => "offer",
        ServerMessage::Candidate { .. } => "candidate",
        ServerMessage::ParticipantJoined { .. } => "participant_joined",
        ServerMessage::ParticipantUpdated { .. } => "participant_updated",
        ServerMessage::ParticipantLeft { .. } => "participant_left",
        ServerMessage::Chat { .. } => "chat",
        ServerMessage::Error { .. } => "error",
        ServerMessage::Move { .. } => "move",
        ServerMessage::Pong { .. } => "pong",
        ServerMessage::Policy { .. } => "policy",
        ServerMessage::Moderated { .. } => "moderated",
        ServerMessage::Lobby { .. } => "lobby",
        ServerMessage::LobbyWaiting { .. } => "lobby_waiting",
        ServerMessage::E2eeFound { .. } => "e2ee_found",
        ServerMessage::E2eeKeyPackage { .. } => "e2ee_key_package",
        ServerMessage::E2eeCommit { .. } => "e2ee_commit",
        ServerMessage::MediaPath { .. } => "media_path",
        ServerMessage::PeerSignal { .. } => "peer_signal",
    }
}
const SERVER_VARIANTS: [&str; 20] = [
    "joined",
    "answer",
    "offer",
    "candidate",
    "participant_joined",
    "participant_updated",
    "participant_left",
    "chat",
    "error",
    "move",
    "pong",
    "policy",
    "moderated",
    "lobby",
    "lobby_waiting",
    "e2ee_found",
    "e2ee_key_package",
    "e2ee_commit",
    "media_path",
    "peer_signal",
];

fn dir(side: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/signal")
        .join(side)
}

/// Every `*.json` of a side: (file stem, text).
fn fixtures(side: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir(side))
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir(side).display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).expect("read fixture");
            (stem, text)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {}", dir(side).display());
    out
}

/// A fixture is named `<type>.json` or `<type>-<variant>.json`.
fn type_of_name(stem: &str) -> &str {
    stem.split('-').next().unwrap_or(stem)
}

#[test]
fn every_client_fixture_parses_with_the_nodes_parser_and_round_trips() {
    let mut covered = BTreeSet::new();
    for (stem, text) in fixtures("client") {
        let m = ClientMessage::parse(&text)
            .unwrap_or_else(|e| panic!("client/{stem}.json does not parse: {}", e.message));
        m.check_limits()
            .unwrap_or_else(|e| panic!("client/{stem}.json is over a limit: {}", e.message));
        let tag = client_variant(&m);
        assert_eq!(tag, type_of_name(&stem), "client/{stem}.json is a {tag}");
        assert_eq!(m.kind(), tag);
        let again = serde_json::to_string(&m).expect("serialise");
        assert_eq!(
            ClientMessage::parse(&again).expect("re-parse"),
            m,
            "client/{stem}.json changes on a round trip: {again}"
        );
        covered.insert(tag);
    }
    for v in CLIENT_VARIANTS {
        assert!(covered.contains(v), "no client fixture for {v:?}");
    }
}

#[test]
fn every_server_fixture_is_a_server_message_and_round_trips_exactly() {
    let mut covered = BTreeSet::new();
    for (stem, text) in fixtures("server") {
        let m: ServerMessage = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("server/{stem}.json is not a ServerMessage: {e}"));
        let tag = server_variant(&m);
        assert_eq!(tag, type_of_name(&stem), "server/{stem}.json is a {tag}");
        // Equal as JSON: what the node would send for this message is what
        // the fixture says.
        let original: Value = serde_json::from_str(&text).unwrap();
        let again = serde_json::to_value(&m).expect("serialise");
        assert_eq!(
            again, original,
            "server/{stem}.json differs from what the node sends for it"
        );
        covered.insert(tag);
    }
    for v in SERVER_VARIANTS {
        assert!(covered.contains(v), "no server fixture for {v:?}");
    }
}

#[test]
fn the_ping_and_pong_fixtures_the_web_client_uses_are_exact() {
    let read = |p: &str| std::fs::read_to_string(dir(p)).expect("read");
    assert_eq!(read("client/ping.json"), r#"{"type":"ping","seq":7}"#);
    assert_eq!(
        read("server/pong.json"),
        r#"{"type":"pong","seq":7,"server_time_ms":1700000000000}"#
    );
}
