//! Authority in a room, in real Chromium against a real SFU (`veche
//! serve`): the host's clicks, by the accessible names of the UI contract,
//! and what the others see and decode.
//!
//! - Alice (host) turns off Bob's camera: at Carol, Bob's frames stop
//!   within 2 s; Bob is told "Alice turned off your camera"; Bob's page,
//!   scripted to send his camera anyway, reaches no one (the node's
//!   forwarded counter for the track does not move). Raised hands are in
//!   the same order in every list.
//! - Speak mode from the "Meeting settings" dialog: non-speakers' video
//!   stops; "Allow Bob to speak" brings his back; revoking stops it.
//! - The lobby: an early arrival waits ("Waiting for a moderator to let
//!   you in") until the host clicks "Admit Bob"; a denied joiner sees "A
//!   moderator did not let you in" and never joins; a removed participant
//!   is told who removed them.
//!
//! Alice, the host, has a Chromium of her own (the owner key lives in
//! localStorage, which windows of one Chromium share); Bob and Carol are
//! two windows of a second one (`common/windows.rs`).

use crate::common::moderation::*;
use crate::common::moderation_browser::*;
use crate::common::windows::*;
use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// How long a moderator's action may take to stop a track everywhere.
const STOP_BUDGET: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_host_turns_off_a_camera_for_everyone_and_hands_are_listed_alike() {
    let server = Server::start();
    let base = server.base().to_owned();
    let room = create_owned_room(&base, "Moderated").await;
    let slug = room.slug();
    let (host, guests) = tokio::join!(Chrome::start("Alice"), Chrome::start("Bob and Carol"));
    dump_on_failure(&[&host, &guests], async {
        let bob = first_window(&guests, "Bob").await;
        let carol = open_window(&guests, "Carol").await;
        seat_three(
            (&host, &bob, &carol),
            &base,
            &slug,
            &room.owner_key,
            [""; 3],
        )
        .await;
        let alice_id = id_of(&host, "Alice").await;
        let bob_id = id_of(&host, "Bob").await;
        id_of(&host, "Carol").await;
        id_of(&carol, "Alice").await;
        id_of(&carol, "Bob").await;
        id_of(&bob, "Carol").await;
        assert_eq!(person(&carol, "Alice").await.unwrap()["role"], "host");
        assert_eq!(person(&carol, "Bob").await.unwrap()["role"], "participant");
        let cam = published_track(&host, "Bob", "camera").await;
        assert_decoding(&carol, &bob_id, "Carol decodes Bob's camera").await;
        assert_decoding(&host, &bob_id, "Alice decodes Bob's camera").await;
        // Only hosts and moderators see moderator controls.
        show_participants(&bob).await;
        assert!(
            !has_control(&bob, CLICKABLE, "More actions for Carol")
                .await
                .unwrap(),
            "a participant has no moderator menu"
        );

        // Alice turns off Bob's camera. Bob's frames stop at Carol, and the
        // node stops forwarding the track.
        let item = menu_item(&host, "Bob", "Turn off Bob's camera").await;
        let watch = StopWatch::arm(&base, &cam).await;
        let t0 = watch.since;
        // Polling starts with the click, not after WebDriver says it is done.
        let (clicked, at_node, at_carol) = tokio::join!(
            host.click(&item),
            watch.last_packet(secs(1), STOP_BUDGET),
            frames_stop(&carol, &bob_id, t0, STOP_BUDGET),
        );
        clicked.unwrap_or_else(|e| panic!("clicking \"Turn off Bob's camera\": {e}"));
        println!(
            "mute-to-last-packet: one node, from the click in Chromium: {at_node}; Carol's last \
             decoded frame of Bob {} ms after the click",
            at_carol.as_millis()
        );
        assert!(
            at_carol <= STOP_BUDGET,
            "Bob's frames at Carol stopped after {at_carol:?}"
        );
        assert_alert(&bob, "Alice turned off your camera").await;
        let alice_at_bob = person(&bob, "Alice").await.unwrap();
        assert_eq!(alice_at_bob["id"], alice_id.as_str());

        // A scripted Bob sends his camera anyway: his page really sends,
        // and nothing of it is forwarded or decoded anywhere.
        send_camera_anyway(&bob, "Bob's page sends video again").await;
        let cam_now = published_track(&host, "Bob", "camera").await;
        assert_not_forwarding(&base, &cam_now, secs(3), "Bob's muted camera, sent anyway").await;
        assert_not_decoding(&carol, &bob_id, secs(1), "Bob's muted camera at Carol").await;
        assert_not_decoding(&host, &bob_id, secs(1), "Bob's muted camera at Alice").await;

        // Hands: Carol, then Alice, then Bob. Every list shows them in that
        // order.
        let names = ["Alice", "Bob", "Carol"];
        carol.click_button("Raise hand").await;
        hand_seen_everywhere(&host, &bob, &carol, "Carol").await;
        host.click_button("Raise hand").await;
        hand_seen_everywhere(&host, &bob, &carol, "Alice").await;
        bob.click_button("Raise hand").await;
        hand_seen_everywhere(&host, &bob, &carol, "Bob").await;
        let order = list_order(&host, &names).await.unwrap();
        assert_eq!(
            list_order(&bob, &names).await.unwrap(),
            order,
            "Bob lists hands as Alice does"
        );
        assert_eq!(
            list_order(&carol, &names).await.unwrap(),
            order,
            "Carol lists hands as Alice does"
        );
        assert_eq!(
            order,
            ["Carol", "Alice", "Bob"],
            "hands in the order raised"
        );
        assert!(has_control(&bob, CLICKABLE, "Lower hand").await.unwrap());
    })
    .await;
    host.close().await;
    guests.close().await;
}

/// Waits until all three pages show `name`'s hand up (state).
async fn hand_seen_everywhere(host: &Chrome, bob: &Window<'_>, carol: &Window<'_>, name: &str) {
    let raised = |p: &serde_json::Value| p["hand_raised_at_ms"].is_u64();
    let what = format!("{name}'s hand up");
    until_person(host, name, &what, raised).await;
    for w in [bob, carol] {
        until_person(w, name, &what, raised).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_speak_mode_stops_non_speakers_until_allowed_and_again_after_revoke() {
    let server = Server::start();
    let base = server.base().to_owned();
    let room = create_owned_room(&base, "Lecture").await;
    let slug = room.slug();
    let (host, guests) = tokio::join!(Chrome::start("Alice"), Chrome::start("Bob and Carol"));
    dump_on_failure(&[&host, &guests], async {
        let bob = first_window(&guests, "Bob").await;
        let carol = open_window(&guests, "Carol").await;
        seat_three(
            (&host, &bob, &carol),
            &base,
            &slug,
            &room.owner_key,
            [""; 3],
        )
        .await;
        let alice_id = id_of(&host, "Alice").await;
        let bob_id = id_of(&host, "Bob").await;
        let carol_id = id_of(&host, "Carol").await;
        let carol_cam = published_track(&host, "Carol", "camera").await;
        assert_decoding(&host, &bob_id, "Alice decodes Bob").await;
        assert_decoding(&host, &carol_id, "Alice decodes Carol").await;

        // Speak mode on: Bob's and Carol's video stop at Alice; the host's
        // keeps flowing.
        let t0 = meeting_setting(&host, "Speak mode", true).await;
        let stopped = frames_stop(&host, &bob_id, t0, STOP_BUDGET).await;
        eprintln!("[test] speak mode: Bob's video stopped at Alice after {stopped:?}");
        frames_stop(&host, &carol_id, t0, STOP_BUDGET).await;
        assert_not_forwarding(
            &base,
            &carol_cam,
            secs(1),
            "Carol, no speaker, in speak mode",
        )
        .await;
        assert_decoding(&bob, &alice_id, "Bob still decodes the host").await;

        // Carol's page, scripted to send her camera anyway, reaches no one.
        send_camera_anyway(&carol, "Carol's page sends video anyway").await;
        assert_not_forwarding(&base, &carol_cam, secs(2), "Carol's camera, sent anyway").await;
        assert_not_decoding(
            &host,
            &carol_id,
            secs(1),
            "Carol, no speaker, sending anyway",
        )
        .await;

        // "Allow Bob to speak", and Bob turns his camera back on: his
        // video decodes at the others again; Carol's stays withheld.
        menu_action(&host, "Bob", "Allow Bob to speak").await;
        assert_alert(&bob, "Alice allowed you to speak").await;
        turn_on(&bob, "Camera").await;
        assert_decoding(&host, &bob_id, "Alice decodes Bob, allowed to speak").await;
        assert_decoding(&carol, &bob_id, "Carol decodes Bob, allowed to speak").await;
        assert_not_decoding(&host, &carol_id, secs(1), "Carol, still no speaker").await;

        // Revoked: Bob's video stops again.
        show_participants(&host).await;
        click_named(&host, CLICKABLE, "More actions for Bob").await;
        let candidates: Vec<String> = [
            "Stop Bob from speaking",
            "Revoke Bob's permission to speak",
            "Stop Bob speaking",
            "Disallow Bob to speak",
            "Revoke speaking from Bob",
            "Revoke Bob's speak permission",
        ]
        .map(str::to_owned)
        .to_vec();
        let revoke = first_present(&host, &candidates).await.unwrap_or_else(|| {
            panic!("Alice's menu for Bob has none of {candidates:?} to revoke speaking")
        });
        let el = host.find_by_name(CLICKABLE, &revoke).await;
        let t1 = Instant::now();
        host.click(&el)
            .await
            .unwrap_or_else(|e| panic!("clicking {revoke:?}: {e}"));
        let at_carol = frames_stop(&carol, &bob_id, t1, STOP_BUDGET).await;
        eprintln!("[test] {revoke:?}: Bob's video stopped at Carol after {at_carol:?}");
        assert_not_decoding(&host, &bob_id, secs(1), "Bob after revoke").await;
    })
    .await;
    host.close().await;
    guests.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_an_early_arrival_waits_in_the_lobby_until_admitted_and_a_denied_one_never_joins() {
    let server = Server::start();
    let base = server.base().to_owned();
    let room = create_owned_room(&base, "Gated").await;
    let slug = room.slug();
    let r = put_settings(
        &base,
        &slug,
        Some(&room.owner_key),
        &json!({ "lobby": true }),
    )
    .await;
    ok_json(&r, "switching the lobby on before the meeting");
    let (host, guests) = tokio::join!(Chrome::start("Alice"), Chrome::start("Bob and Carol"));
    dump_on_failure(&[&host, &guests], async {
        let bob = first_window(&guests, "Bob").await;
        let carol = open_window(&guests, "Carol").await;

        // Bob comes first: nobody is there to let him in, so he waits.
        bob.goto(&format!("{base}/r/{slug}?name=Bob&skipPrejoin=1"))
            .await;
        assert_page_says(&bob, "Waiting for a moderator to let you in").await;

        // Alice, the host, comes, and lets him in.
        open_as_host(
            &host,
            &base,
            &slug,
            &room.owner_key,
            "name=Alice&skipPrejoin=1",
        )
        .await;
        id_of(&host, "Alice").await;
        let listed = state(&host).await.unwrap()["participants"]
            .as_array()
            .map(Vec::len);
        assert_eq!(listed, Some(1), "a waiter is not in the meeting");
        show_participants(&host).await;
        click_named(&host, CLICKABLE, "Admit Bob").await;
        let bob_id = id_of(&host, "Bob").await;
        id_of(&bob, "Alice").await;
        assert_decoding(&host, &bob_id, "Alice decodes Bob once admitted").await;

        // Carol comes and is turned away: a clear page, no seat.
        carol
            .goto(&format!("{base}/r/{slug}?name=Carol&skipPrejoin=1"))
            .await;
        assert_page_says(&carol, "Waiting for a moderator to let you in").await;
        click_named(&host, CLICKABLE, "Deny Carol").await;
        assert_page_says(&carol, "A moderator did not let you in").await;
        let connected = state(&carol).await.map(|s| s["connected"].clone());
        assert!(
            connected.as_ref().is_err() || connected.as_ref().unwrap() != &json!(true),
            "a denied joiner is not connected to the meeting: {connected:?}"
        );
        assert!(
            person(&host, "Carol").await.is_err(),
            "Alice never sees Carol in the meeting"
        );

        // Alice removes Bob; he is told who did it, and is gone for her.
        menu_action(&host, "Bob", "Remove Bob").await;
        // A confirmation may ask whether to let him back; say no.
        let ban = host
            .js(
                "const el = Array.from(document.querySelectorAll('input[type=\"checkbox\"]'))\
                   .find((e) => __visible(e) && __names(e).some((n) => /back/i.test(n))); \
                 if (el && !el.checked) el.click(); return !!el;",
                vec![],
            )
            .await
            .unwrap_or_default();
        if has_control(&host, CLICKABLE, "Remove").await == Ok(true) {
            click_named(&host, CLICKABLE, "Remove").await;
        }
        eprintln!("[test] the removal asked about letting Bob back: {ban}");
        assert_page_says(&bob, "Alice removed you from the meeting").await;
        wait_for(
            "Alice no longer lists Bob",
            secs(10),
            async || match person(&host, "Bob").await {
                Err(_) => Ok(()),
                Ok(p) => Err(format!("still there: {p}")),
            },
        )
        .await;
    })
    .await;
    host.close().await;
    guests.close().await;
}
