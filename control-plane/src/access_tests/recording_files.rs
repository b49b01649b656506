//! A recording's bytes over real HTTP: files with ranges, the one-file
//! export (Debian's ffmpeg, which scripts/test.sh installs), deletion
//! (objects, then the index), the internal export plan; who may do each,
//! what malformed requests get, and the export's rate limit. The
//! recording is started through `RPC_MODERATE` and reported through
//! `RPC_RECORDING_REPORT`; its segments are real objects in the control
//! plane's own store. Run with
//! `cargo test -p veche-control-plane --lib access_tests::recording_files`.

use super::harness::{camera_report, room_id, As, Cp, SECRET};
use crate::admission::RoomCreation;
use crate::recording_export::{export_plan_path, ExportPlan};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use veche_protocol::moderation::ModAction;
use veche_protocol::recording::{
    export_key, recording_prefix, segment_key, FileEnd, FileId, RecordingId, SegmentInfo,
    RPC_RECORDING_REPORT,
};
use veche_protocol::{RoomId, UserId};

/// A room of Ada's where Bob, a host, has started a recording.
struct Started {
    ada: As,
    bob: As,
    bob_id: UserId,
    room: RoomId,
    id: RecordingId,
}

async fn started(cp: &Cp) -> Started {
    let (_, ada) = cp.user("ada@example.test", "Ada").await;
    let (bob_id, bob) = cp.user("bob@example.test", "Bob").await;
    let room = room_id(&cp.room(&ada, "open").await);
    let id = cp
        .host_moderates(room, bob_id, ModAction::StartRecording { id: None })
        .await
        .recording
        .expect("recording")
        .id;
    Started {
        ada,
        bob,
        bob_id,
        room,
        id,
    }
}

/// Stores `bytes` as segments of about `size` bytes and reports them (and
/// the file's end, when `end`).
async fn record_file(
    cp: &Cp,
    room: RoomId,
    id: &RecordingId,
    file: &FileId,
    bytes: &[u8],
    size: usize,
    end: bool,
) {
    let store = cp.cp.recording_objects();
    let mut segments = Vec::new();
    for (seq, chunk) in bytes.chunks(size).enumerate() {
        store
            .put(
                &ObjectPath::from(segment_key(id, file, seq as u32)),
                PutPayload::from(chunk.to_vec()),
            )
            .await
            .unwrap();
        segments.push(SegmentInfo {
            seq: seq as u32,
            bytes: chunk.len() as u64,
            start_ms: seq as u64 * 1000,
            end_ms: seq as u64 * 1000 + 1000,
        });
    }
    let n = segments.len() as u64;
    let mut report = camera_report(room, id, file.clone(), segments);
    report.files[0].end = end.then(|| FileEnd {
        bytes: bytes.len() as u64,
        duration_ms: n * 1000,
        rewritten: vec![],
    });
    let (status, _) = cp
        .rpc(
            RPC_RECORDING_REPORT,
            Some(SECRET),
            rmp_serde::to_vec_named(&report).unwrap(),
        )
        .await;
    assert_eq!(status, 200);
}

async fn objects_of(cp: &Cp, id: &RecordingId) -> Vec<String> {
    cp.cp
        .recording_objects()
        .list(Some(&ObjectPath::from(recording_prefix(id))))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn recorded_files_are_served_with_ranges_to_those_who_may_view_them() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let Started {
        ada, bob, room, id, ..
    } = started(&cp).await;
    let (_, carl) = cp.user("carl@example.test", "Carl").await;
    let file = FileId::from_random([1; 8]);
    let whole: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    record_file(&cp, room, &id, &file, &whole, 700, false).await;
    let path = format!("/api/recordings/{id}/files/{file}");
    let get = reqwest::Method::GET;
    let anon = As::anonymous();

    assert_eq!(cp.raw(get.clone(), &path, &anon, &[]).await.0, 401);
    assert_eq!(cp.raw(get.clone(), &path, &carl, &[]).await.0, 403);
    let (status, h, body) = cp.raw(get.clone(), &path, &ada, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, whole);
    assert_eq!(h["content-type"], "video/webm");
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["content-length"], "1000");
    let (status, h, body) = cp
        .raw(get.clone(), &path, &bob, &[("range", "bytes=650-749")])
        .await;
    assert_eq!(status, 206);
    assert_eq!(body, &whole[650..750], "a range across two segments");
    assert_eq!(h["content-range"], "bytes 650-749/1000");
    let (status, h, _) = cp
        .raw(get.clone(), &path, &ada, &[("range", "bytes=1000-")])
        .await;
    assert_eq!(status, 416);
    assert_eq!(h["content-range"], "bytes */1000");
    let (status, _, body) = cp
        .raw(get.clone(), &path, &ada, &[("range", "bytes=0-1,5-6")])
        .await;
    assert_eq!(
        (status, body.len()),
        (200, 1000),
        "multi-range: the whole file"
    );
    let (_, h, _) = cp
        .raw(get.clone(), &format!("{path}?download=1"), &ada, &[])
        .await;
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"Board-Bob-camera.webm\""
    );

    // The view's file URL carries a share token: it plays without a cookie.
    let view = cp
        .send("GET", &format!("/api/recordings/{id}"), &ada, None)
        .await;
    let url = view.ok(200)["files"][0]["url"].as_str().unwrap().to_owned();
    let (status, _, body) = cp.raw(get.clone(), &url, &anon, &[]).await;
    assert_eq!((status, body), (200, whole.clone()));
    let forged = format!("{path}?share=99999999999999.AAAA");
    assert_eq!(cp.raw(get.clone(), &forged, &anon, &[]).await.0, 401);

    // Malformed and unknown ids.
    let other = RecordingId::from_random([0x42; 8]);
    for (bad, status) in [
        (format!("/api/recordings/nope/files/{file}"), 400),
        (format!("/api/recordings/{id}/files/f..%2F..%2Fetc"), 400),
        (
            format!("/api/recordings/{id}/files/{}", FileId::from_random([9; 8])),
            404,
        ),
        (format!("/api/recordings/{other}/files/{file}"), 404),
    ] {
        assert_eq!(
            cp.raw(get.clone(), &bad, &ada, &[]).await.0,
            status,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn deleting_a_recording_removes_its_objects_then_its_index_entry_for_managers_only() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let Started {
        ada,
        bob,
        bob_id,
        room,
        id,
    } = started(&cp).await;
    let file = FileId::from_random([1; 8]);
    record_file(&cp, room, &id, &file, &[7u8; 300], 100, false).await;
    let path = format!("/api/recordings/{id}");
    let delete = reqwest::Method::DELETE;
    assert_eq!(
        cp.raw(delete.clone(), &path, &As::anonymous(), &[]).await.0,
        401
    );
    assert_eq!(
        cp.raw(delete.clone(), &path, &bob, &[]).await.0,
        403,
        "the starter views but does not manage"
    );
    assert_eq!(
        cp.raw(delete.clone(), &path, &ada, &[]).await.0,
        409,
        "a running recording is stopped first"
    );
    cp.host_moderates(room, bob_id, ModAction::StopRecording)
        .await;
    assert_eq!(objects_of(&cp, &id).await.len(), 3);
    assert_eq!(cp.raw(delete.clone(), &path, &ada, &[]).await.0, 204);
    assert!(objects_of(&cp, &id).await.is_empty(), "objects left");
    cp.send("GET", &path, &ada, None)
        .await
        .error(404, "room_not_found");
    assert_eq!(cp.raw(delete.clone(), &path, &ada, &[]).await.0, 404);
    assert_eq!(
        cp.raw(delete, "/api/recordings/not-an-id", &ada, &[])
            .await
            .0,
        400
    );
}

/// A real 2-second WebM (VP8 + Opus) made by ffmpeg.
fn real_webm() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.webm");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=320x240:rate=15:duration=2")
        .args(["-f", "lavfi", "-i", "sine=duration=2"])
        .args(["-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libopus"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs (apt-get install ffmpeg)");
    assert!(status.success());
    std::fs::read(path).unwrap()
}

/// A recording of one real file, stopped and ready when `ready`.
async fn recorded(cp: &Cp, ready: bool) -> (As, RecordingId) {
    let Started {
        ada,
        bob_id,
        room,
        id,
        ..
    } = started(cp).await;
    if ready {
        let file = FileId::from_random([1; 8]);
        record_file(cp, room, &id, &file, &real_webm(), 4000, true).await;
        cp.host_moderates(room, bob_id, ModAction::StopRecording)
            .await;
    }
    (ada, id)
}

#[tokio::test]
async fn the_export_is_for_viewers_of_a_ready_recording() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (ada, id) = recorded(&cp, false).await;
    let path = format!("/api/recordings/{id}/export");
    let get = reqwest::Method::GET;
    // Each Cp has its own limits: these two are this address's burst.
    assert_eq!(
        cp.raw(get.clone(), &path, &As::anonymous(), &[]).await.0,
        401
    );
    let (status, _, body) = cp.raw(get, &path, &ada, &[]).await;
    assert_eq!(status, 409, "not ready: {}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("ready"));
}

#[tokio::test]
async fn the_export_is_made_once_cached_as_an_object_and_rate_limited() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (ada, id) = recorded(&cp, true).await;
    let path = format!("/api/recordings/{id}/export");
    let get = reqwest::Method::GET;
    let key = ObjectPath::from(export_key(&id));
    let (status, h, body) = cp.raw(get.clone(), &path, &ada, &[]).await;
    let whole = match status {
        200 => {
            assert_eq!(h["content-type"], "video/webm");
            assert!(h["content-disposition"]
                .to_str()
                .unwrap()
                .contains(id.as_str()));
            assert_eq!(&body[..4], b"\x1a\x45\xdf\xa3", "a WebM (EBML) file");
            Some(body.len())
        }
        // On a loaded machine ffmpeg may outlast the route's wait: the
        // answer is then "being made", and the export goes on.
        503 => {
            assert!(h.contains_key("retry-after"), "503 without Retry-After");
            None
        }
        other => panic!("export: {other} {}", String::from_utf8_lossy(&body)),
    };
    let mut stored = None;
    for _ in 0..600 {
        if let Ok(meta) = cp.cp.recording_objects().head(&key).await {
            stored = Some(meta.size as usize);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let stored = stored.expect("the export is kept as an object (waited 2 minutes)");
    if let Some(len) = whole {
        assert_eq!(stored, len, "the object is the file that was served");
    }
    // Served from the object, ranges too (the second request of the burst).
    let (status, _, part) = cp
        .raw(get.clone(), &path, &ada, &[("range", "bytes=0-3")])
        .await;
    assert_eq!((status, part.as_slice()), (206, &b"\x1a\x45\xdf\xa3"[..]));
    // The burst is two per address.
    let (status, h, _) = cp.raw(get, &path, &ada, &[]).await;
    assert_eq!(status, 429);
    assert!(h.contains_key("retry-after"));
}

#[tokio::test]
async fn the_export_plan_for_the_cli_is_behind_the_cluster_secret() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let Started { room, id, .. } = started(&cp).await;
    let file = FileId::from_random([1; 8]);
    record_file(&cp, room, &id, &file, &[1u8; 250], 100, false).await;
    let url = format!("{}{}", cp.base, export_plan_path(&id));
    let http = reqwest::Client::new();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let resp = http.get(&url).bearer_auth(SECRET).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let plan: ExportPlan = resp.json().await.unwrap();
    assert_eq!(plan.recording_id, id);
    assert_eq!(plan.files[0].file_id, file);
    assert_eq!(plan.files[0].segments, vec![(0, 100), (1, 100), (2, 50)]);
    let unknown = format!(
        "{}{}",
        cp.base,
        export_plan_path(&RecordingId::from_random([5; 8]))
    );
    let resp = http.get(&unknown).bearer_auth(SECRET).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}
