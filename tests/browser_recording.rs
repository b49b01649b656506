//! Recording in real Chromium against `veche serve` (issue 13), with the
//! recordings in the default local store (`<data_dir>/recordings`).
//!
//! One meeting, one recording, checked from start to deletion:
//! - **Rights first.** A participant (a scripted signalling client) asking
//!   to start a recording is refused `forbidden` and nothing is listed; a
//!   stranger gets 401 on the list.
//! - **Ten seconds.** Alice (the host, by the room's owner key) and Bob join
//!   in two Chromiums with fake devices; Alice clicks "Start recording";
//!   both pages show a role="status" element with "Recording"; 10 s later
//!   "Stop recording", and the indicator goes away for both. Once the
//!   recording is `ready`, each person's camera file (downloaded through
//!   its `url`) is VP8 + Opus, lasts 10 ± 1 s by `ffprobe`, and `ffmpeg -v
//!   error` decodes it without a word. A stranger gets 401 on a file's
//!   address without its share token.
//! - **Playback.** The player page (opened through a share link the owner
//!   makes) plays: after "Play" every `<video>`'s `currentTime` advances;
//!   paused and sought to 5 s with the "Seek" slider, every video stands at
//!   5 s of the recording's timeline (`currentTime + offset`) within 0.3 s,
//!   and they still agree after "Play" again.
//! - **Deletion.** The owner deletes it: 204, nothing of it is left under
//!   the data directory's recordings store, and the API answers 404.
//!
//! Needs Debian's `chromium`, `chromium-driver` and `ffmpeg`, and should
//! run in the loopback-only namespace `scripts/test.sh` creates:
//! `unshare -n bash -c 'ip link set lo up; cargo test --test it browser_recording::'`.

use crate::common::moderation::*;
use crate::common::moderation_browser::{open_as_host, published_track};
use crate::common::moderation_member::Member;
use crate::common::recording::*;
use crate::common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long the test records.
const RECORD_FOR: Duration = Duration::from_secs(10);
/// How far each file's duration may be from [`RECORD_FOR`].
const DURATION_TOLERANCE_S: f64 = 1.0;
/// How far apart the players' videos may stand on the timeline.
const SYNC_TOLERANCE_S: f64 = 0.3;

/// The visible role="status" texts of `b`'s page that mention "Recording".
async fn recording_indicators(b: &Chrome) -> Result<Vec<String>, String> {
    let v = b
        .js(
            "return Array.from(document.querySelectorAll('[role=\"status\"]')) \
               .filter(__visible).map((e) => __norm(e.textContent)) \
               .filter((t) => t.includes('Recording'));",
            vec![],
        )
        .await?;
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// Waits until `b` shows (`on`) or no longer shows the indicator; returns
/// when it was seen.
async fn indicator(b: &Chrome, on: bool) -> Instant {
    let what = if on {
        format!("{}'s page shows a role=status with \"Recording\"", b.label)
    } else {
        format!("{}'s page no longer shows the recording indicator", b.label)
    };
    wait_for(&what, secs(10), async || {
        let shown = recording_indicators(b).await?;
        if shown.is_empty() != on {
            Ok(Instant::now())
        } else {
            Err(format!("indicators: {shown:?}"))
        }
    })
    .await
}

/// Each `<video>` of the player: the file it plays (by the file id in its
/// source), its `currentTime`, whether it is paused and its ready state.
async fn videos(b: &Chrome, files: &[Value]) -> Result<Vec<(String, f64, bool)>, String> {
    let v = b
        .js(
            "return Array.from(document.querySelectorAll('video')).map((v) => ({ \
               src: v.currentSrc || v.src || '', t: v.currentTime, paused: v.paused, \
               ready: v.readyState, error: v.error ? v.error.code : null }));",
            vec![],
        )
        .await?;
    let list = v.as_array().ok_or_else(|| format!("videos: {v}"))?;
    let mut out = Vec::new();
    for video in list {
        if !video["error"].is_null() {
            return Err(format!("a video failed: {video}"));
        }
        let src = video["src"].as_str().unwrap_or_default();
        let file = files
            .iter()
            .map(|f| str_field(f, "file_id"))
            .find(|id| src.contains(id))
            .ok_or_else(|| format!("a video plays no recorded file: {video}"))?;
        if video["ready"].as_u64().unwrap_or(0) < 2 {
            return Err(format!("{file} has no frame yet: {video}"));
        }
        out.push((
            file.to_owned(),
            video["t"].as_f64().unwrap_or(-1.0),
            video["paused"] == true,
        ));
    }
    if out.len() != files.len() {
        return Err(format!(
            "{} videos for {} files: {v}",
            out.len(),
            files.len()
        ));
    }
    Ok(out)
}

/// Where each video stands on the recording's timeline: its
/// `currentTime` plus its file's offset.
fn timeline(files: &[Value], shown: &[(String, f64, bool)]) -> Vec<(String, f64)> {
    shown
        .iter()
        .map(|(id, t, _)| {
            let f = files.iter().find(|f| f["file_id"] == id.as_str()).unwrap();
            let offset = f["offset_ms"].as_f64().unwrap_or(0.0) / 1000.0;
            (id.clone(), t + offset)
        })
        .collect()
}

fn spread(at: &[(String, f64)]) -> f64 {
    let max = at.iter().map(|(_, t)| *t).fold(f64::MIN, f64::max);
    let min = at.iter().map(|(_, t)| *t).fold(f64::MAX, f64::min);
    max - min
}

/// Moves the "Seek" slider to `seconds` as a user dragging it does: the
/// value changes, then `input` and `change` fire.
async fn seek(b: &Chrome, seconds: f64) {
    b.find_by_name("input", "Seek").await;
    b.js(
        "const el = __byName('input', 'Seek'); el.value = String(arguments[0]); \
         el.dispatchEvent(new Event('input', { bubbles: true })); \
         el.dispatchEvent(new Event('change', { bubbles: true })); return el.value;",
        vec![json!(seconds)],
    )
    .await
    .unwrap_or_else(|e| panic!("moving the Seek slider: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_host_records_ten_seconds_that_play_in_sync_and_only_the_owner_deletes() {
    let server = Server::start();
    let base = server.base().to_owned();
    let room = create_owned_room(&base, "Recorded").await;
    let slug = room.slug();
    let key = room.owner_key.clone();
    let scratch = TempDir::new("recording-files");

    // Rights: a participant cannot start a recording, a stranger cannot list.
    let mut mallory = Member::enter(&base, "Mallory", join(&base, &slug, "Mallory").await).await;
    mallory
        .refused(start_recording(), "Mallory's start_recording")
        .await;
    assert!(
        mallory.policy["recording"].is_null(),
        "no recording runs after a refusal: {}",
        mallory.policy
    );
    drop(mallory);
    assert_eq!(
        room_recordings(&base, &slug, &key).await.unwrap(),
        Vec::<Value>::new(),
        "a refused start records nothing"
    );
    let stranger = get_json(&format!("{base}/api/recordings?room={slug}"), None).await;
    assert_eq!(stranger.status, 401, "a stranger lists: {}", stranger.body);

    let (alice, bob) = tokio::join!(Chrome::start("Alice"), Chrome::start("Bob"));
    dump_on_failure(&[&alice, &bob], async {
        open_as_host(&alice, &base, &slug, &key, "name=Alice&skipPrejoin=1").await;
        bob.goto(&format!("{base}/r/{slug}?name=Bob&skipPrejoin=1"))
            .await;
        assert_video_flows(&alice, 1, secs(40)).await;
        assert_video_flows(&bob, 1, secs(40)).await;
        // A file's tracks are fixed when it starts: both publish a
        // microphone too before the recording starts.
        published_track(&alice, "Bob", "microphone").await;
        published_track(&bob, "Alice", "microphone").await;

        // Ten seconds of recording, seen by both.
        alice.click_button("Start recording").await;
        let (on_alice, _) = tokio::join!(indicator(&alice, true), indicator(&bob, true));
        let id = the_recording_id(&base, &slug, &key).await;
        tokio::time::sleep_until((on_alice + RECORD_FOR).into()).await;
        alice.click_button("Stop recording").await;
        tokio::join!(indicator(&alice, false), indicator(&bob, false));

        let view = until_ready(&base, &id, &key).await;
        eprintln!("[test] recording {id}: {}", summary(&view));
        assert_eq!(
            view["files"].as_array().map(Vec::len),
            Some(2),
            "one camera file each for Alice and Bob: {}",
            summary(&view)
        );
        let files: Vec<Value> = ["Alice", "Bob"]
            .iter()
            .map(|name| {
                file_of(&view, name, "camera")
                    .unwrap_or_else(|| panic!("{name}'s camera file in {}", summary(&view)))
                    .clone()
            })
            .collect();
        for f in &files {
            assert_eq!(f["state"], "complete", "{f}");
            let path = download(&base, f, scratch.path()).await;
            let what = format!("{}'s camera file", f["display_name"]);
            let probe = assert_plays(&path, &what, RECORD_FOR.as_secs_f64(), DURATION_TOLERANCE_S);
            eprintln!("[test] {what}: {probe:?}");
            let bare = without_share(&absolute(&base, str_field(f, "url")));
            let (status, _, _) = get_bytes(&bare, None, &[]).await;
            assert_eq!(status, 401, "a stranger fetches {bare}");
        }

        // Playback through a share link, in Bob's browser (which leaves the
        // meeting for it).
        let share = http_post_json_with_headers(
            &format!("{base}/api/recordings/{id}/share"),
            &json!({ "valid_hours": 1 }),
            &[(OWNER_KEY, key.as_str())],
        )
        .await;
        let link = absolute(
            &base,
            str_field(&ok_json(&share, "making a share link"), "url"),
        );
        bob.goto(&link).await;
        let first = wait_for("the player shows every file", secs(20), async || {
            videos(&bob, &files).await
        })
        .await;
        bob.click_button("Play").await;
        wait_for("every video plays on", secs(15), async || {
            let now = videos(&bob, &files).await?;
            let behind: Vec<_> = now
                .iter()
                .filter(|(id, t, paused)| {
                    *paused || first.iter().any(|(i, t0, _)| i == id && *t < t0 + 1.0)
                })
                .collect();
            if behind.is_empty() {
                Ok(())
            } else {
                Err(format!("not advancing: {behind:?} (started at {first:?})"))
            }
        })
        .await;
        bob.click_button("Pause").await;
        seek(&bob, 5.0).await;
        wait_for(
            "every video stands at 5 s of the recording",
            secs(15),
            async || {
                let now = videos(&bob, &files).await?;
                let at = timeline(&files, &now);
                let off: Vec<_> = at
                    .iter()
                    .filter(|(_, t)| (t - 5.0).abs() > SYNC_TOLERANCE_S)
                    .collect();
                if off.is_empty() && now.iter().all(|(_, _, paused)| *paused) {
                    Ok(())
                } else {
                    Err(format!("timeline positions {at:?}, videos {now:?}"))
                }
            },
        )
        .await;
        bob.click_button("Play").await;
        wait_for(
            "the videos play on together past 6 s",
            secs(15),
            async || {
                let at = timeline(&files, &videos(&bob, &files).await?);
                if at.iter().all(|(_, t)| *t > 6.0) && spread(&at) <= SYNC_TOLERANCE_S {
                    Ok(())
                } else {
                    Err(format!("timeline positions {at:?}"))
                }
            },
        )
        .await;

        // Deletion by the owner removes every object.
        let store = server.data_dir().join("recordings");
        assert!(
            !files_containing(&store, &id).is_empty(),
            "the local store under {} holds the recording",
            store.display()
        );
        let gone = delete(&format!("{base}/api/recordings/{id}"), &key).await;
        assert_eq!(gone.status, 204, "deleting: {}", gone.body);
        let left = files_containing(&store, &id);
        assert!(left.is_empty(), "objects left after deletion: {left:?}");
        let after = get_json(&format!("{base}/api/recordings/{id}"), Some(&key)).await;
        assert_eq!(after.status, 404, "after deletion: {}", after.body);
    })
    .await;
    alice.close().await;
    bob.close().await;
}
