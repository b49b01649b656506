//! Recordings over real HTTP: a recording started through `RPC_MODERATE`
//! (the control plane's id, not the client's), reported through
//! `RPC_RECORDING_REPORT`, and who may list, view and share it (the
//! room's owner, administrators, whoever started it, a share link; 401
//! for anonymous requesters, 403 for other accounts), and what malformed
//! requests get. Run with
//! `cargo test -p veche-control-plane --lib access_tests::recordings`.

use super::harness::{camera_report, room_id, As, Cp, Reply, SECRET};
use super::slug;
use crate::admission::RoomCreation;
use crate::test_support::signed_in_user;
use serde_json::json;
use veche_protocol::limits::recording::{MAX_REPORT_BODY_BYTES, SHARE_MAX_HOURS};
use veche_protocol::moderation::ModAction;
use veche_protocol::recording::{
    FileId, RecordingId, RecordingReport, RecordingReportReply, SegmentInfo, RPC_RECORDING_REPORT,
};
use veche_protocol::{RoomId, UserId};

/// Starts a recording in `room` as a host whose account is `user`, with
/// an id of the client's choosing that the control plane must replace.
async fn start_recording(cp: &Cp, room: RoomId, user: UserId) -> RecordingId {
    let client_id = RecordingId::from_random([0xee; 8]);
    let policy = cp
        .host_moderates(
            room,
            user,
            ModAction::StartRecording {
                id: Some(client_id.clone()),
            },
        )
        .await;
    let id = policy.recording.expect("recording").id;
    assert_ne!(id, client_id, "the control plane chooses the id");
    id
}

/// Ten seconds of Bob's camera, 40 ms after the recording began.
fn report(room: RoomId, id: &RecordingId) -> RecordingReport {
    let mut report = camera_report(
        room,
        id,
        FileId::from_random([1; 8]),
        vec![SegmentInfo {
            seq: 0,
            bytes: 2_000,
            start_ms: 0,
            end_ms: 10_000,
        }],
    );
    report.files[0].offset_ms = 40;
    report
}

/// A share token from a URL's `share=` query.
fn share_of(url: &str) -> String {
    url.split_once("share=")
        .expect("a share token")
        .1
        .to_owned()
}

async fn get(cp: &Cp, path: &str, who: &As) -> Reply {
    cp.send("GET", path, who, None).await
}

#[tokio::test]
async fn a_node_reports_a_recording_over_the_rpc_behind_the_cluster_secret() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (bob_id, _) = cp.user("bob@example.test", "Bob").await;
    let room = cp.room(&As::anonymous(), "open").await;
    let id = start_recording(&cp, room_id(&room), bob_id).await;
    let body = rmp_serde::to_vec_named(&report(room_id(&room), &id)).unwrap();
    assert_eq!(
        cp.rpc(RPC_RECORDING_REPORT, None, body.clone()).await.0,
        401
    );
    assert_eq!(
        cp.rpc(RPC_RECORDING_REPORT, Some("not-the-secret"), body.clone())
            .await
            .0,
        401
    );
    let (status, reply) = cp
        .rpc(RPC_RECORDING_REPORT, Some(SECRET), body.clone())
        .await;
    assert_eq!(status, 200);
    let reply: RecordingReportReply = veche_protocol::msgpack::from_slice(&reply).unwrap();
    assert_eq!(reply, RecordingReportReply::Stored);
    let garbage = cp
        .rpc(RPC_RECORDING_REPORT, Some(SECRET), b"\xc1x".to_vec())
        .await;
    assert_eq!(garbage.0, 400);
    let mut backwards = report(room_id(&room), &id);
    backwards.files[0].segments[0].end_ms = 0;
    backwards.files[0].segments[0].start_ms = 5;
    let bad = cp
        .rpc(
            RPC_RECORDING_REPORT,
            Some(SECRET),
            rmp_serde::to_vec_named(&backwards).unwrap(),
        )
        .await;
    assert_eq!(bad.0, 400);
    let huge = vec![0u8; MAX_REPORT_BODY_BYTES + 1];
    assert_eq!(
        cp.rpc(RPC_RECORDING_REPORT, Some(SECRET), huge).await.0,
        413
    );
    let unknown = report(room_id(&room), &RecordingId::from_random([3; 8]));
    let (status, reply) = cp
        .rpc(
            RPC_RECORDING_REPORT,
            Some(SECRET),
            rmp_serde::to_vec_named(&unknown).unwrap(),
        )
        .await;
    assert_eq!(status, 200);
    let reply: RecordingReportReply = veche_protocol::msgpack::from_slice(&reply).unwrap();
    assert_eq!(reply, RecordingReportReply::Gone);
}

#[tokio::test]
async fn recordings_are_for_the_owner_administrators_their_starter_and_share_links() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (_, ada) = cp.user("ada@example.test", "Ada").await;
    let (bob_id, bob) = cp.user("bob@example.test", "Bob").await;
    let (_, carl) = cp.user("carl@example.test", "Carl").await;
    let (_, admin) = signed_in_user(&cp.cp, "root@example.test", "Root", true).await;
    let admin = As {
        cookie: Some(admin),
        owner_key: None,
    };
    let room = cp.room(&ada, "open").await;
    let s = slug(&room);
    let id = start_recording(&cp, room_id(&room), bob_id).await;
    let body = rmp_serde::to_vec_named(&report(room_id(&room), &id)).unwrap();
    assert_eq!(
        cp.rpc(RPC_RECORDING_REPORT, Some(SECRET), body).await.0,
        200
    );
    let anon = As::anonymous();

    // The room's list.
    let list = format!("/api/recordings?room={s}");
    let msg = get(&cp, &list, &anon).await.error(401, "unauthorized");
    assert!(msg.contains("sign in"), "{msg}");
    let owners = get(&cp, &list, &ada).await;
    let page = owners.ok(200);
    assert_eq!(page["recordings"].as_array().unwrap().len(), 1);
    let view = &page["recordings"][0];
    assert_eq!(view["id"], id.as_str());
    assert_eq!(view["room_name"], "Board");
    assert_eq!(view["can_manage"], true);
    assert_eq!(view["state"], "recording");
    assert_eq!(view["started_by_name"], "Bob");
    let url = view["files"][0]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("/api/recordings/{id}/files/")) && url.contains("?share="),
        "{url}"
    );
    assert_eq!(
        get(&cp, &list, &admin).await.ok(200)["recordings"][0]["can_manage"],
        true
    );
    let bobs = get(&cp, &list, &bob).await;
    assert_eq!(
        bobs.ok(200)["recordings"][0]["can_manage"],
        false,
        "the starter views"
    );
    let carls = get(&cp, &list, &carl).await;
    assert!(
        carls.ok(200)["recordings"].as_array().unwrap().is_empty(),
        "another account sees none of the room's recordings"
    );

    // Every list the caller may see.
    let msg = get(&cp, "/api/recordings", &anon)
        .await
        .error(401, "unauthorized");
    assert!(msg.contains("sign in"), "{msg}");
    let count = |r: Reply| r.ok(200)["recordings"].as_array().unwrap().len();
    assert_eq!(
        count(get(&cp, "/api/recordings", &ada).await),
        1,
        "her room's"
    );
    assert_eq!(count(get(&cp, "/api/recordings", &admin).await), 1, "all");
    assert_eq!(count(get(&cp, "/api/recordings", &carl).await), 0);

    // One recording.
    let one = format!("/api/recordings/{id}");
    let msg = get(&cp, &one, &anon).await.error(401, "unauthorized");
    assert!(msg.contains("share link"), "{msg}");
    let msg = get(&cp, &one, &carl).await.error(403, "forbidden");
    assert!(msg.contains("owner"), "{msg}");
    assert_eq!(get(&cp, &one, &bob).await.ok(200)["can_manage"], false);
    let file_token = share_of(url);
    let through_file_link = get(&cp, &format!("{one}?share={file_token}"), &anon).await;
    assert_eq!(through_file_link.ok(200)["can_manage"], false);

    // Share links: managers only.
    let share = format!("/api/recordings/{id}/share");
    let hours = json!({"valid_hours": 2});
    cp.json("POST", &share, &anon, hours.clone())
        .await
        .error(401, "unauthorized");
    cp.json("POST", &share, &carl, hours.clone())
        .await
        .error(403, "forbidden");
    let msg = cp
        .json("POST", &share, &bob, hours.clone())
        .await
        .error(403, "forbidden");
    assert!(msg.contains("owner or an administrator"), "{msg}");
    let link = cp.json("POST", &share, &ada, hours.clone()).await;
    let link = link.ok(200);
    let link_url = link["url"].as_str().unwrap();
    assert!(
        link_url.starts_with(&format!("/recordings/{id}?share=")),
        "{link_url}"
    );
    let expires = link["expires_at_ms"].as_u64().unwrap();
    let now = crate::now_ms();
    assert!(expires > now + 3_500_000 && expires <= now + 2 * 3_600_000);
    let shared = get(&cp, &format!("{one}?share={}", share_of(link_url)), &carl).await;
    assert_eq!(
        shared.ok(200)["id"],
        id.as_str(),
        "the link works for anyone"
    );
    let wrong = format!(
        "/api/recordings/{id}?share={}",
        share_of(link_url).replace('.', ".x")
    );
    get(&cp, &wrong, &anon).await.error(401, "unauthorized");
    cp.json("POST", &share, &admin, hours).await.ok(200);
}

#[tokio::test]
async fn malformed_recording_requests_are_refused_with_400_and_unknown_ids_with_404() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (ada_id, ada) = cp.user("ada@example.test", "Ada").await;
    let room = cp.room(&ada, "open").await;
    let id = start_recording(&cp, room_id(&room), ada_id).await;
    for path in [
        "/api/recordings/not-an-id".to_owned(),
        "/api/recordings/rABABABABABABABAB".to_owned(),
        "/api/recordings/r..%2F..%2Fetc".to_owned(),
        "/api/recordings?limit=0".to_owned(),
        "/api/recordings?limit=51".to_owned(),
        "/api/recordings?limit=ten".to_owned(),
        "/api/recordings?before=-1".to_owned(),
        "/api/recordings?what=1".to_owned(),
        "/api/recordings?room=not%20a%20slug".to_owned(),
        format!("/api/recordings/{id}?what=1"),
    ] {
        let msg = get(&cp, &path, &ada).await.error(400, "bad_request");
        assert!(!msg.is_empty(), "{path}: the refusal says what is wrong");
    }
    let unknown = RecordingId::from_random([7; 8]);
    let msg = get(&cp, &format!("/api/recordings/{unknown}"), &ada)
        .await
        .error(404, "room_not_found");
    assert!(msg.contains("no recording"), "{msg}");
    let share = format!("/api/recordings/{id}/share");
    for (body, why) in [
        (json!({"valid_hours": 0}).to_string(), "between 1 and"),
        (
            json!({"valid_hours": SHARE_MAX_HOURS + 1}).to_string(),
            "between 1 and",
        ),
        (
            json!({"valid_hours": 2, "x": 1}).to_string(),
            "invalid request body",
        ),
        ("{not json".to_owned(), "invalid request body"),
    ] {
        let msg = cp
            .send("POST", &share, &ada, Some(body.clone()))
            .await
            .error(400, "bad_request");
        assert!(msg.contains(why), "{body}: {msg}");
    }
}

#[tokio::test]
async fn the_holder_of_an_anonymous_rooms_owner_key_manages_its_recordings() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (bob_id, _) = cp.user("bob@example.test", "Bob").await;
    let room = cp.room(&As::anonymous(), "open").await;
    let key = room["owner_key"].as_str().expect("an owner key").to_owned();
    let id = start_recording(&cp, room_id(&room), bob_id).await;
    let one = format!("/api/recordings/{id}");
    assert_eq!(
        get(&cp, &one, &As::key(&key)).await.ok(200)["can_manage"],
        true
    );
    get(&cp, &one, &As::key("not-the-key"))
        .await
        .error(401, "unauthorized");
    let list = format!("/api/recordings?room={}", slug(&room));
    let page = get(&cp, &list, &As::key(&key)).await;
    assert_eq!(page.ok(200)["recordings"][0]["id"], id.as_str());
    cp.json(
        "POST",
        &format!("{one}/share"),
        &As::key(&key),
        json!({"valid_hours": 1}),
    )
    .await
    .ok(200);
}

#[tokio::test]
async fn share_links_and_deletions_have_their_own_rate_limit() {
    use veche_protocol::limits::recording::WRITE;
    let cp = Cp::start(RoomCreation::Anyone).await;
    let path = format!("/api/recordings/{}/share", RecordingId::from_random([5; 8]));
    let body = json!({"valid_hours": 1});
    for _ in 0..WRITE.burst {
        let r = cp.json("POST", &path, &As::anonymous(), body.clone()).await;
        assert_ne!(r.status, 429, "{r:?}");
    }
    let over = cp.json("POST", &path, &As::anonymous(), body).await;
    over.error(429, "rate_limited");
    // Reads are counted apart.
    let read = get(&cp, "/api/recordings", &As::anonymous()).await;
    read.error(401, "unauthorized");
}
