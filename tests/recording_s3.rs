//! Recording into a real S3-compatible server on loopback (issue 13):
//! `moto_server` (PyPI `moto[server]`, pinned in
//! `tests/moto/requirements.txt` and installed by `scripts/test.sh` into
//! `tests/moto/venv`) holds the bucket; `veche serve` is configured with
//! `[recordings.store] kind = "s3"`.
//!
//! Two load-test bots publish real VP8 and Opus; the host (a scripted
//! signalling client holding the owner key) records about 13 s, so each
//! file is cut into at least two segments. Then: every segment of every
//! file is an object in the bucket under `recordings/{id}/{file}/`, and
//! their sizes add up to the file's; the files route answers a `Range`
//! request with 206 and the same bytes as the whole file, also across a
//! segment boundary; the whole file is VP8 + Opus of the recorded length
//! by `ffprobe`, and decodes without an error. Deleted by the owner, it
//! leaves no object in the bucket.
//!
//! Run in the loopback-only namespace:
//! `unshare -n bash -c 'ip link set lo up; cargo test --test it recording_s3::'`.

use crate::common::moderation::*;
use crate::common::moderation_member::Member;
use crate::common::recording::*;
use crate::common::*;
use std::time::{Duration, Instant};
use veche_protocol::recording::{recording_prefix, segment_key, FileId, RecordingId};

/// How long the test records: past one segment, so a file spans objects.
const RECORD_FOR: Duration =
    Duration::from_millis(veche_protocol::limits::recording::SEGMENT_MS + 3_000);

/// Waits until `host` sees each of `names` publishing a camera.
async fn until_publishing(host: &mut Member, names: &[&str]) {
    host.until(
        &format!("{names:?} publish camera and microphone"),
        secs(30),
        |m| {
            names
                .iter()
                .all(|n| m.person(n).is_some_and(publishes_camera_and_microphone))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_stored_as_segment_objects_in_s3_and_read_back_by_range() {
    let s3 = S3::start("veche-recordings").await;
    let server = Server::start_with_config(&s3.store_toml());
    let base = server.base().to_owned();
    let room = create_owned_room(&base, "Stored").await;
    let slug = room.slug();
    let key = room.owner_key.clone();
    let scratch = TempDir::new("recording-s3");

    let mut host = Member::enter(&base, "Host", join_as_host(&base, &room, "Host").await).await;
    let mut bots = Bots::new(&base, &slug);
    bots.add("Ann", true, None);
    bots.add("Ben", true, None);
    until_publishing(&mut host, &["Ann", "Ben"]).await;

    host.moderate(start_recording()).await;
    host.until("the policy shows a recording", secs(10), |m| {
        !m.policy["recording"].is_null()
    })
    .await;
    let started = Instant::now();
    let id = the_recording_id(&base, &slug, &key).await;
    tokio::time::sleep_until((started + RECORD_FOR).into()).await;
    host.moderate(stop_recording()).await;
    host.until("the policy shows no recording", secs(10), |m| {
        m.policy["recording"].is_null()
    })
    .await;
    let recorded_s = started.elapsed().as_secs_f64();
    let view = until_ready(&base, &id, &key).await;
    eprintln!("[test] recording {id}: {}", summary(&view));

    let objects = s3.list("recordings/").await;
    eprintln!("[test] bucket: {objects:?}");
    let rec: RecordingId = id.parse().expect("a recording id");
    for name in ["Ann", "Ben"] {
        let f = file_of(&view, name, "camera")
            .unwrap_or_else(|| panic!("{name}'s camera file in {}", summary(&view)))
            .clone();
        assert_eq!(f["state"], "complete", "{f}");
        let file: FileId = str_field(&f, "file_id").parse().expect("a file id");
        let segments = f["segments"].as_u64().unwrap_or(0) as u32;
        assert!(segments >= 2, "{name}'s file spans segments: {f}");
        let sizes: Vec<u64> = (0..segments)
            .map(|seq| {
                let k = segment_key(&rec, &file, seq);
                objects
                    .iter()
                    .find(|(o, _)| *o == k)
                    .map(|(_, size)| *size)
                    .unwrap_or_else(|| panic!("object {k} is in the bucket: {objects:?}"))
            })
            .collect();
        let total = f["bytes"].as_u64().unwrap_or(0);
        assert_eq!(
            sizes.iter().sum::<u64>(),
            total,
            "{name}: segment sizes {sizes:?}"
        );

        // The whole file, then ranges of it: one at the start, one across
        // the first segment boundary.
        let path = download(&base, &f, scratch.path()).await;
        let whole = std::fs::read(&path).unwrap();
        let url = absolute(&base, str_field(&f, "url"));
        let boundary = sizes[0];
        for (from, to) in [(0, 1023), (boundary - 100, boundary + 99)] {
            let range = format!("bytes={from}-{to}");
            let (status, headers, body) = get_bytes(&url, None, &[("range", &range)]).await;
            assert_eq!(status, 206, "{range} of {name}'s file");
            let content_range = headers
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            assert_eq!(
                content_range,
                format!("bytes {from}-{to}/{total}"),
                "{range}"
            );
            assert_eq!(
                body,
                whole[from as usize..=to as usize],
                "{range} of {name}'s file has the whole file's bytes"
            );
        }
        let probe = assert_plays(&path, &format!("{name}'s camera file"), recorded_s, 1.5);
        eprintln!("[test] {name}: {probe:?}, segment sizes {sizes:?}");
    }
    bots.stop().await;

    // The owner deletes it: nothing of it is left in the bucket.
    let gone = delete(&format!("{base}/api/recordings/{id}"), &key).await;
    assert_eq!(gone.status, 204, "deleting: {}", gone.body);
    let left = s3.list(&recording_prefix(&rec)).await;
    assert!(left.is_empty(), "objects left in the bucket: {left:?}");
}
