//! A recording survives the death of a media node (issue 13): a one-node
//! control plane and two `veche media-node` processes in two regions (with
//! relays, so the room spans both), all configured with one local
//! recordings store (a directory on this machine, as a shared volume would
//! be) and a spool directory each.
//!
//! Ann publishes on node 1, Ben on node 2 (load-test bots: real VP8 and
//! Opus); the host, a scripted signalling client on node 1, starts the
//! recording. Once Ben's file has two segments indexed, node 2 is
//! SIGKILLed. Then: Ben's file becomes `interrupted` and keeps its
//! segments; its bytes, read through the API, are VP8 + Opus that decode
//! without an error and last as long as the index says, within one
//! segment. After "stop", Ann's file on node 1 completes and the recording
//! is `ready`.
//!
//! Run in the loopback-only namespace:
//! `unshare -n bash -c 'ip link set lo up; cargo test --test it recording_cluster::'`.

use crate::common::cluster::{Cluster, MediaNodeOpts};
use crate::common::moderation::*;
use crate::common::moderation_member::Member;
use crate::common::recording::*;
use crate::common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use veche_protocol::limits::recording::SEGMENT_MS;

/// Writes `name` in `dir` with the shared local store (and, for a media
/// node, its own spool directory); returns its path.
fn config(dir: &Path, name: &str, spool: Option<&str>) -> PathBuf {
    let store = dir.join("recordings");
    let mut toml = String::new();
    if let Some(spool) = spool {
        let spool = dir.join(spool);
        toml.push_str(&format!(
            "[recordings]\nspool_dir = {:?}\n\n",
            spool.display().to_string()
        ));
    }
    toml.push_str(&format!(
        "[recordings.store]\nkind = \"local\"\ndir = {:?}\n",
        store.display().to_string()
    ));
    let path = dir.join(name);
    std::fs::write(&path, toml).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// Waits until `view`'s file of `name`'s camera satisfies `holds`; returns
/// the recording's view then.
async fn until_file(
    base: &str,
    id: &str,
    key: &str,
    name: &str,
    what: &str,
    timeout: std::time::Duration,
    holds: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(
        &format!("{name}'s camera file {what}"),
        timeout,
        async || {
            let view = recording(base, id, key).await?;
            match file_of(&view, name, "camera") {
                Some(f) if holds(f) => Ok(view),
                _ => Err(format!("files: {}", summary(&view))),
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_media_nodes_finished_segments_stay_indexed_and_play() {
    let dir = TempDir::new("recording-cluster");
    let mut cluster =
        Cluster::start_with_config(1, Some(config(dir.path(), "cp.toml", None))).await;
    for id in [1, 2] {
        let opts = MediaNodeOpts {
            config: Some(config(
                dir.path(),
                &format!("media-{id}.toml"),
                Some(&format!("spool-{id}")),
            )),
            ..MediaNodeOpts::region_with_relay(id)
        };
        cluster.start_media_node_with(id, opts).await;
    }
    let base = cluster.base(1);
    let room = create_owned_room(&base, "Resilient").await;
    let slug = room.slug();
    let key = room.owner_key.clone();
    let scratch = TempDir::new("recording-cluster-files");

    let joined = join_reply(
        &base,
        &slug,
        &json!({ "display_name": "Host", "region": "r1" }),
        Some(&key),
    )
    .await;
    let mut host = Member::enter(&base, "Host", ok_json(&joined, "the host joining")).await;
    let mut bots = Bots::new(&base, &slug);
    bots.add("Ann", true, Some("r1"));
    bots.add("Ben", true, Some("r2"));
    host.until("Ann and Ben publish camera and microphone", secs(30), |m| {
        ["Ann", "Ben"]
            .iter()
            .all(|n| m.person(n).is_some_and(publishes_camera_and_microphone))
    })
    .await;

    host.moderate(start_recording()).await;
    host.until("the policy shows a recording", secs(10), |m| {
        !m.policy["recording"].is_null()
    })
    .await;
    let id = the_recording_id(&base, &slug, &key).await;
    let two_segments = std::time::Duration::from_millis(2 * SEGMENT_MS + 20_000);
    until_file(
        &base,
        &id,
        &key,
        "Ben",
        "has two segments",
        two_segments,
        |f| f["segments"].as_u64().unwrap_or(0) >= 2,
    )
    .await;

    cluster.kill_media_node(2);
    let view = until_file(&base, &id, &key, "Ben", "is interrupted", secs(30), |f| {
        f["state"] == "interrupted"
    })
    .await;
    let ben = file_of(&view, "Ben", "camera").unwrap().clone();
    assert!(ben["segments"].as_u64().unwrap_or(0) >= 2, "{ben}");
    let indexed_s = ben["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    assert!(indexed_s > 0.0, "Ben's indexed duration: {ben}");
    let path = download(&base, &ben, scratch.path()).await;
    let length_s = assert_plays_cut_short(
        &path,
        "Ben's interrupted file",
        indexed_s,
        SEGMENT_MS as f64 / 1000.0,
    );
    eprintln!("[test] Ben's file after node 2 died: {length_s} s of media; {ben}");

    host.moderate(stop_recording()).await;
    let view = until_ready(&base, &id, &key).await;
    eprintln!("[test] recording {id}: {}", summary(&view));
    let ann = file_of(&view, "Ann", "camera").unwrap().clone();
    assert_eq!(ann["state"], "complete", "{ann}");
    let ben_after = file_of(&view, "Ben", "camera").unwrap();
    assert_eq!(ben_after["state"], "interrupted", "{ben_after}");
    let path = download(&base, &ann, scratch.path()).await;
    let ann_s = ann["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    assert_plays(&path, "Ann's file", ann_s, 1.0);
    bots.stop().await;
}
