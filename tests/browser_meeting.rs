//! Three real browsers in one room: they see each other's participant list,
//! decode each other's video, receive each other's audio, chat, see a
//! camera turned off, and see someone leave.
//!
//! Needs Debian's `chromium` and `chromium-driver`, and should run in the
//! loopback-only namespace `scripts/test.sh` creates.

use crate::common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const NAMES: [&str; 3] = ["Alice", "Bob", "Carol"];
/// Media may take a while on a loaded 2-core machine, but not forever.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);

/// The amount of media received on a track: decoded frames for video,
/// packets for audio (audio has no "decoded" counter that only real,
/// unconcealed audio advances).
fn received(t: &InboundTrack) -> u64 {
    if t.kind == "video" {
        t.frames_decoded
    } else {
        t.packets_received
    }
}

fn describe(tracks: &[InboundTrack], kind: &str) -> String {
    let list: Vec<String> = tracks
        .iter()
        .filter(|t| t.kind == kind)
        .map(|t| {
            format!(
                "mid {} stream {} track {}: {} frames decoded, {} packets",
                t.mid,
                t.stream.as_deref().unwrap_or("?"),
                t.track,
                t.frames_decoded,
                t.packets_received
            )
        })
        .collect();
    format!("[{}]", list.join("; "))
}

/// Waits until `b` receives `kind` ("audio" or "video") from each of
/// `from`, identified by stream id (the publisher's participant id), and
/// then until each of those streams advances again, so that a stalled
/// stream cannot pass. Video must be decoded, not just received.
async fn assert_receives(b: &Chrome, kind: &str, from: &[&str]) {
    let unit = if kind == "video" {
        "decoded frames"
    } else {
        "packets"
    };
    let first: BTreeMap<String, (String, u64)> = wait_for(
        &format!("{} receives {kind} ({unit}) from each of {from:?}", b.label),
        MEDIA_TIMEOUT,
        async || {
            let state = b.state().await?;
            let tracks = b.inbound_tracks().await?;
            let mut flowing = BTreeMap::new();
            for name in from {
                let id = state["participants"]
                    .as_array()
                    .and_then(|ps| ps.iter().find(|p| p["display_name"] == *name))
                    .and_then(|p| p["id"].as_str())
                    .ok_or_else(|| format!("{name} is not in the room state"))?;
                let track = tracks
                    .iter()
                    .find(|t| t.kind == kind && t.stream.as_deref() == Some(id) && received(t) > 0);
                match track {
                    Some(t) => flowing.insert(t.mid.clone(), (name.to_string(), received(t))),
                    None => {
                        return Err(format!(
                            "no {unit} from {name} (stream {id}); inbound {kind}: {}",
                            describe(&tracks, kind)
                        ))
                    }
                };
            }
            Ok(flowing)
        },
    )
    .await;
    wait_for(
        &format!("{}'s {kind} from {from:?} keeps flowing", b.label),
        MEDIA_TIMEOUT,
        async || {
            let tracks = b.inbound_tracks().await?;
            let stalled: Vec<&str> = first
                .iter()
                .filter(|(mid, (_, n))| {
                    !tracks
                        .iter()
                        .any(|t| &t.mid == *mid && t.kind == kind && received(t) > *n)
                })
                .map(|(_, (name, _))| name.as_str())
                .collect();
            if stalled.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "no new {unit} from {stalled:?} since {first:?}; inbound {kind}: {}",
                    describe(&tracks, kind)
                ))
            }
        },
    )
    .await;
}

/// Waits until `b`'s participants list has exactly `names`.
async fn assert_participants(b: &Chrome, names: &[&str], timeout: Duration) {
    wait_for(
        &format!("{}'s participants list shows exactly {names:?}", b.label),
        timeout,
        async || {
            let entries = b.participant_entries().await?;
            let all_there = names.iter().all(|n| entries.iter().any(|e| e.contains(n)));
            if entries.len() == names.len() && all_there {
                Ok(())
            } else {
                Err(format!("participants list entries = {entries:?}"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_browsers_see_hear_and_chat_with_each_other() {
    let server = Server::start();
    let room = create_room(server.base(), "Browser meeting").await;
    let link = str_field(&room, "link").to_owned();

    let (alice, bob, carol) = tokio::join!(
        Chrome::start("Alice"),
        Chrome::start("Bob"),
        Chrome::start("Carol")
    );
    let browsers = [&alice, &bob, &carol];

    dump_on_failure(&browsers, async {
        // Join, one after another, as people do.
        let mut navigated = Vec::new();
        for (b, name) in browsers.iter().zip(NAMES) {
            let t0 = Instant::now();
            b.goto(&format!("{link}?name={name}&skipPrejoin=1")).await;
            navigated.push(t0);
        }

        // Time from navigation to the first remote video frame, per browser.
        let firsts =
            futures::future::join_all(browsers.iter().zip(&navigated).map(|(b, t0)| async move {
                wait_for(
                    &format!("{} has decoded a first remote video frame", b.label),
                    MEDIA_TIMEOUT,
                    async || {
                        let frames = b.frames_decoded_per_track().await?;
                        if frames.values().any(|n| *n > 0) {
                            Ok(t0.elapsed())
                        } else {
                            Err(format!("framesDecoded per video track = {frames:?}"))
                        }
                    },
                )
                .await
            }))
            .await;
        for (b, t) in browsers.iter().zip(&firsts) {
            eprintln!(
                "{}: join to first remote frame: {} ms",
                b.label,
                t.as_millis()
            );
        }

        for b in browsers {
            assert_participants(b, &NAMES, MEDIA_TIMEOUT).await;
        }
        for (b, me) in browsers.iter().zip(NAMES) {
            let others: Vec<&str> = NAMES.into_iter().filter(|n| *n != me).collect();
            assert_receives(b, "video", &others).await;
            assert_receives(b, "audio", &others).await;
        }
        // Everyone's tile is labelled with their name, at everyone else.
        for (b, me) in browsers.iter().zip(NAMES) {
            for other in NAMES.iter().filter(|n| **n != me) {
                let selector = format!("video[aria-label=\"{other}\"]");
                wait_for(
                    &format!("{} shows a video tile labelled {other}", b.label),
                    secs(10),
                    async || match b.count(&selector).await? {
                        0 => Err(format!("no {selector}")),
                        _ => Ok(()),
                    },
                )
                .await;
            }
        }

        // Chat reaches everyone.
        alice.send_chat("hello from alice").await;
        for b in [&bob, &carol, &alice] {
            assert_chat_shows(b, "hello from alice", secs(10)).await;
        }

        // Chat is rendered as text, never as HTML: no <b> element appears
        // (the log's own markup may have some; count them first).
        let mut bold_before = Vec::new();
        for b in browsers {
            bold_before.push(
                b.chat_log_count("b")
                    .await
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
        alice.send_chat("<b>x</b>").await;
        for (b, before) in browsers.iter().zip(bold_before) {
            let (text, bold) = wait_for(
                &format!("{}'s chat log shows the <b>x</b> message", b.label),
                secs(10),
                async || {
                    let text = b.chat_log_text().await?;
                    let bold = b.chat_log_count("b").await?;
                    if text.contains("<b>x</b>") || bold > before {
                        Ok((text, bold))
                    } else {
                        Err(format!("chat log text = {text:?}"))
                    }
                },
            )
            .await;
            assert_eq!(
                bold, before,
                "{}'s chat log rendered a chat message as HTML: {text:?}",
                b.label
            );
            assert!(text.contains("<b>x</b>"), "{}: {text:?}", b.label);
        }

        // Bob turns his camera off; the others see it.
        bob.click_button("Camera").await;
        for b in [&alice, &carol] {
            wait_for(
                &format!("{} sees Bob's camera as off", b.label),
                secs(10),
                async || {
                    let bob_state = b.participant_state("Bob").await?;
                    if bob_state["media"]["camera_muted"] == true {
                        Ok(())
                    } else {
                        Err(format!("Bob in window.veche.state() = {bob_state}"))
                    }
                },
            )
            .await;
        }

        // Carol leaves; within 5 s the others no longer list or show her.
        carol.click_button("Leave").await;
        let left_at = Instant::now();
        let within_5s = || secs(5).saturating_sub(left_at.elapsed());
        for b in [&alice, &bob] {
            assert_participants(b, &["Alice", "Bob"], within_5s()).await;
            wait_for(
                &format!("{} no longer shows a video tile for Carol", b.label),
                within_5s(),
                async || match b.count("video[aria-label=\"Carol\"]").await? {
                    0 => Ok(()),
                    n => Err(format!("{n} video[aria-label=\"Carol\"] elements")),
                },
            )
            .await;
        }
    })
    .await;

    for b in [alice, bob, carol] {
        b.close().await;
    }
}
