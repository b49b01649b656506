//! Parsing and limits of signalling frames (`signal.rs`).

use super::*;

#[test]
fn client_messages_parse_from_documented_json() {
    let m = ClientMessage::parse(r#"{"type":"join","token":"v1.a.b"}"#).unwrap();
    assert_eq!(
        m,
        ClientMessage::Join {
            token: "v1.a.b".into(),
            media: MediaState::default(),
            resume: None,
            p2p: false,
        }
    );
    let m = ClientMessage::parse(
        r#"{"type":"media","mic_muted":true,"camera_muted":false,"screen_sharing":false}"#,
    )
    .unwrap();
    assert!(matches!(
        m,
        ClientMessage::Media(MediaState {
            mic_muted: true,
            ..
        })
    ));
    let m = ClientMessage::parse(r#"{"type":"candidate","candidate":null}"#).unwrap();
    assert_eq!(m, ClientMessage::Candidate { candidate: None });
    let m =
        ClientMessage::parse(r#"{"type":"offer","sdp":"v=0","tracks":{"abc":"screen"}}"#).unwrap();
    assert_eq!(m.kind(), "offer");
    assert_eq!(
        ClientMessage::parse(r#"{"type":"leave"}"#).unwrap(),
        ClientMessage::Leave
    );
}

#[test]
fn malformed_messages_give_a_bad_request_with_detail() {
    let e = ClientMessage::parse("{not json").unwrap_err();
    assert_eq!(e.code, crate::ErrorCode::BadRequest);
    let e = ClientMessage::parse(r#"{"type":"warp"}"#).unwrap_err();
    assert!(e.message.contains("warp"), "{}", e.message);
    let e = ClientMessage::parse(r#"{"type":"chat"}"#).unwrap_err();
    assert!(e.message.contains("text"), "{}", e.message);
    assert_eq!(peek_type(r#"{"type":"chat"}"#).as_deref(), Some("chat"));
    let huge = format!(
        r#"{{"type":"chat","text":"{}"}}"#,
        "a".repeat(MAX_FRAME_BYTES)
    );
    assert_eq!(
        ClientMessage::parse(&huge).unwrap_err().code,
        crate::ErrorCode::TooLarge
    );
}

#[test]
fn too_many_tracks_and_long_client_msg_ids_are_refused() {
    use crate::limits::signal::{MAX_CLIENT_MSG_ID_BYTES, MAX_TRACKS};
    let tracks = |n: usize| {
        (0..n)
            .map(|i| (format!("t{i}"), TrackSource::Camera))
            .collect::<BTreeMap<_, _>>()
    };
    let offer = |n| ClientMessage::Offer {
        sdp: "v=0".into(),
        tracks: tracks(n),
    };
    assert!(offer(MAX_TRACKS).check_limits().is_ok());
    let e = offer(MAX_TRACKS + 1).check_limits().unwrap_err();
    assert_eq!(e.code, crate::ErrorCode::BadRequest);
    let chat = |n: usize| ClientMessage::Chat {
        text: "hi".into(),
        client_msg_id: Some("x".repeat(n)),
    };
    assert!(chat(MAX_CLIENT_MSG_ID_BYTES).check_limits().is_ok());
    let e = chat(MAX_CLIENT_MSG_ID_BYTES + 1)
        .check_limits()
        .unwrap_err();
    assert_eq!(e.code, crate::ErrorCode::BadRequest);
    assert!(e.message.contains("client_msg_id"), "{}", e.message);
}

#[test]
fn server_error_serialises_flat() {
    let m = ServerMessage::Error {
        error: ErrorBody::new(crate::ErrorCode::ChatTooLong, "too long"),
        request: Some("chat".into()),
        client_msg_id: None,
    };
    let v: serde_json::Value = serde_json::to_value(&m).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["code"], "chat_too_long");
    assert_eq!(v["message"], "too long");
    assert_eq!(v["request"], "chat");
}
