//! The load harness's synthetic video is real VP8: a headless Chromium in
//! the same room as a load bot decodes the bot's frames at the clip's
//! resolution. Without this, the load figures could be measuring packets
//! no browser would accept.

use crate::common::*;
use std::time::Instant;
use tokio::sync::watch;
use veche_loadtest::bot::{self, BotSpec, Room};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_decodes_the_load_bots_vp8_and_hears_its_opus() {
    let server = Server::start();
    let room = create_room(server.base(), "Bot and browser").await;
    let link = str_field(&room, "link").to_owned();
    let (stop_tx, stop_rx) = watch::channel(false);
    let bot = tokio::spawn(bot::run(
        BotSpec {
            name: "Bot".into(),
            video_bps: Some(1_500_000),
            audio: true,
            expects_media: false,
        },
        Room {
            base: server.base().to_owned(),
            slug: str_field(&room, "slug").to_owned(),
            epoch: Instant::now(),
            receiving: Default::default(),
        },
        stop_rx,
    ));
    let viewer = Chrome::start("Viewer").await;
    dump_on_failure(&[&viewer], async {
        viewer
            .goto(&format!("{link}?name=Viewer&skipPrejoin=1"))
            .await;
        wait_for("the viewer decodes 60 frames of the bot's video", secs(30), async || {
            let frames = viewer.frames_decoded_per_track().await?;
            if frames.values().any(|n| *n >= 60) {
                Ok(())
            } else {
                Err(format!("framesDecoded per track = {frames:?}"))
            }
        })
        .await;
        let width = viewer
            .js(
                "const v = document.querySelector('video[aria-label=\"Bot\"]'); return v ? v.videoWidth : 0;",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(width, 1280, "the bot's 720p clip decodes at its own size");
        wait_for("the viewer receives the bot's audio", secs(10), async || {
            let audio = viewer.audio_packets_per_track().await?;
            if audio.values().any(|n| *n > 50) {
                Ok(())
            } else {
                Err(format!("audio packets per track = {audio:?}"))
            }
        })
        .await;
    })
    .await;
    let _ = stop_tx.send(true);
    let result = bot.await.expect("bot task");
    assert!(result.error.is_none(), "bot failed: {:?}", result.error);
    assert!(result.packets_sent > 0);
    viewer.close().await;
}
