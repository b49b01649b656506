//! Moderation in the media path, with the load-test bots (real WebRTC
//! clients that keep publishing whatever they are told) and the node's
//! per-track forwarded-packet counter, then across media nodes and the
//! loss of a control-plane leader and of a media node.
//!
//! - One node: a moderator's mute stops a bot's camera at the node while
//!   the bot keeps sending and its microphone flows; speak mode withholds
//!   a non-speaker until allowed, and again after revoke. Prints
//!   "mute-to-last-packet: one node N ms".
//! - Cascaded rooms: a moderator on node 1 mutes a publisher on node 2;
//!   the publisher's node stops forwarding the track, and no receiver on
//!   either node gets any more of it. Prints "mute-to-last-packet: across
//!   a cascade hop N ms". Hands raised on two nodes are listed in the same
//!   order on both.
//! - Durable state, in Chromium: the host makes Carol a moderator, turns
//!   off Bob's camera and locks the meeting; after the Raft leader is
//!   killed the meeting is still locked; after Bob's and Carol's media
//!   node is killed and they are back on the other node, Carol is still a
//!   moderator (and can act), and Bob's camera, sent anyway, is still
//!   withheld.

use crate::common::cluster::Cluster;
use crate::common::moderation::*;
use crate::common::moderation_browser::*;
use crate::common::moderation_member::*;
use crate::common::windows::*;
use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// How long a moderator's action may take to stop a track everywhere.
const STOP_BUDGET: Duration = Duration::from_secs(2);

/// Bob as the one-node tests see him: his id and his tracks' ids.
struct Publisher {
    bob: String,
    cam: String,
    mic: String,
}

/// Alice joins `room` as its host (a scripted member); bot Bob publishes
/// camera and microphone and bot Carol receives. Returns once Alice sees
/// Carol and both of Bob's tracks.
async fn host_and_two_bots(base: &str, room: &OwnedRoom) -> (Member, Bots, Publisher) {
    let mut alice = Member::enter(base, "Alice", join_as_host(base, room, "Alice").await).await;
    let mut bots = Bots::new(base, &room.slug());
    bots.add("Bob", true, None);
    bots.add("Carol", false, None);
    alice
        .until("Bob publishes camera and microphone", secs(30), |m| {
            m.person("Bob").is_some_and(|p| {
                track_id(p, "camera").is_some() && track_id(p, "microphone").is_some()
            }) && m.person("Carol").is_some()
        })
        .await;
    let bob = alice.id_of("Bob");
    let cam = track_id(alice.person("Bob").unwrap(), "camera").unwrap();
    let mic = track_id(alice.person("Bob").unwrap(), "microphone").unwrap();
    (alice, bots, Publisher { bob, cam, mic })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderators_mute_stops_the_camera_at_the_node_though_the_publisher_keeps_sending() {
    let server = Server::start();
    let base = server.base().to_owned();
    let room = create_owned_room(&base, "Mute at the node").await;
    let (mut alice, bots, Publisher { bob, cam, mic }) = host_and_two_bots(&base, &room).await;
    assert_forwarding(&base, &cam, 50, "the node forwards Bob's camera").await;
    assert_forwarding(&base, &mic, 20, "the node forwards Bob's microphone").await;

    let watch = StopWatch::arm(&base, &cam).await;
    let t0 = watch.since;
    alice
        .moderate(json!({"action":"mute","participant_id":bob,"group":"camera"}))
        .await;
    let (last, applied) = tokio::join!(watch.last_packet(secs(1), STOP_BUDGET), async {
        alice
            .until("the policy holds Bob's camera, by Alice", secs(10), |m| {
                m.held(&bob) == ["camera"] && m.policy["holds"][&bob]["by_name"] == "Alice"
            })
            .await;
        t0.elapsed()
    });
    println!("mute-to-last-packet: one node {last}");
    println!(
        "[test] the mute's policy reached the moderator {} ms after the action",
        applied.as_millis()
    );
    assert!(
        last.after <= STOP_BUDGET,
        "Bob's camera stopped {:?} after the mute",
        last.after
    );
    // Bob's bot keeps sending: his microphone still flows, his camera
    // reaches no one.
    assert_not_forwarding(&base, &cam, secs(2), "Bob's muted camera").await;
    assert_forwarding(&base, &mic, 20, "Bob's microphone, which nobody muted").await;

    let results = bots.stop().await;
    let (bob_r, carol_r) = (&results["Bob"], &results["Carol"]);
    assert!(
        bob_r.error.is_none(),
        "Bob's bot ran to the end: {:?}",
        bob_r.error
    );
    assert!(
        carol_r.error.is_none(),
        "Carol's bot ran to the end: {:?}",
        carol_r.error
    );
    camera_stopped_audio_kept(carol_r, &bob, t0, "Carol", "one node, at the receiver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speak_mode_withholds_a_non_speaker_until_allowed_and_again_after_revoke() {
    let server = Server::start();
    let base = server.base().to_owned();
    let room = create_owned_room(&base, "Lecture").await;
    let (mut alice, bots, Publisher { bob, cam, mic }) = host_and_two_bots(&base, &room).await;
    assert_forwarding(&base, &cam, 50, "Bob's camera flows before speak mode").await;

    // Speak mode: Bob is no speaker, so neither of his tracks is forwarded.
    let watch = StopWatch::arm(&base, &cam).await;
    let t0 = watch.since;
    alice
        .moderate(json!({"action":"settings","change":{"speak_mode":true}}))
        .await;
    let last = watch.last_packet(secs(1), STOP_BUDGET).await;
    eprintln!("[test] speak mode: Bob's camera's last packet {last}");
    assert_not_forwarding(&base, &mic, secs(1), "a non-speaker's microphone").await;
    assert_not_forwarding(&base, &cam, secs(1), "a non-speaker's camera").await;

    // Allowed to speak: his media flows again.
    alice
        .moderate(json!({"action":"allow_speak","participant_id":bob}))
        .await;
    assert_forwarding(&base, &cam, 50, "Bob's camera after \"Allow to speak\"").await;
    assert_forwarding(&base, &mic, 20, "Bob's microphone after \"Allow to speak\"").await;

    // Revoked: it stops again.
    let watch = StopWatch::arm(&base, &cam).await;
    let t1 = watch.since;
    alice
        .moderate(json!({"action":"revoke_speak","participant_id":bob}))
        .await;
    let last = watch.last_packet(secs(1), STOP_BUDGET).await;
    eprintln!("[test] revoking speak: Bob's camera's last packet {last}");
    assert_not_forwarding(&base, &cam, secs(1), "Bob's camera after revoke").await;
    assert_not_forwarding(&base, &mic, secs(1), "Bob's microphone after revoke").await;

    let results = bots.stop().await;
    let carol_r = &results["Carol"];
    let video = last_packet_after(carol_r, &bob, "video", t1);
    assert!(
        video.is_none_or(|v| v <= STOP_BUDGET),
        "Carol received Bob's video {video:?} after his permission was revoked"
    );
    let allowed = last_packet_after(carol_r, &bob, "video", t0);
    assert!(
        allowed.is_some(),
        "Carol received Bob's video while he was allowed to speak"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_on_one_node_mutes_a_publisher_on_another_and_the_track_stops_everywhere() {
    let mut cluster = Cluster::start(1).await;
    cluster.start_relay_regions(2).await;
    let base = cluster.base(1);
    let (node1, node2) = (cluster.media_base(1), cluster.media_base(2));
    let room = create_owned_room(&base, "Cascade").await;
    let slug = room.slug();
    let alice_join = ok_json(
        &join_reply(
            &base,
            &slug,
            &json!({ "display_name": "Alice", "region": "r1" }),
            Some(&room.owner_key),
        )
        .await,
        "Alice's join as host in r1",
    );
    assert_eq!(alice_join["node_id"], 1, "Alice is placed on node 1");
    let mut alice = Member::enter(&base, "Alice", alice_join).await;
    let erin_join = join_in_region(&base, &slug, "Erin", "r2").await;
    assert_eq!(erin_join["node_id"], 2, "Erin is placed on node 2");
    let mut erin = Member::enter(&base, "Erin", erin_join).await;
    let mut bots = Bots::new(&base, &slug);
    bots.add("Bob", true, Some("r2"));
    bots.add("Carol", false, Some("r1"));
    bots.add("Dave", false, Some("r2"));
    alice
        .until("Bob publishes, and Carol and Dave are in", secs(30), |m| {
            m.person("Bob").is_some_and(|p| {
                track_id(p, "camera").is_some() && track_id(p, "microphone").is_some()
            }) && m.person("Carol").is_some()
                && m.person("Dave").is_some()
        })
        .await;
    let bob = alice.id_of("Bob");
    let cam = track_id(alice.person("Bob").unwrap(), "camera").unwrap();
    let mic = track_id(alice.person("Bob").unwrap(), "microphone").unwrap();
    assert_forwarding(&node2, &cam, 50, "Bob's node forwards his camera").await;

    let relayed_counted = forwarded_per_track(&node1)
        .await
        .unwrap()
        .contains_key(&cam);
    let watch = StopWatch::arm(&node2, &cam).await;
    let t0 = watch.since;
    alice
        .moderate(json!({"action":"mute","participant_id":bob,"group":"camera"}))
        .await;
    let (last, applied) = tokio::join!(watch.last_packet(secs(1), STOP_BUDGET), async {
        alice
            .until("the policy holds Bob's camera", secs(10), |m| {
                m.held(&bob) == ["camera"]
            })
            .await;
        t0.elapsed()
    });
    println!(
        "mute-to-last-packet: across a cascade hop {last} (moderator on node 1, the \
         publisher's node 2's forwarded counter)"
    );
    println!(
        "[test] the mute's policy reached the moderator on node 1 {} ms after the action",
        applied.as_millis()
    );
    assert!(
        last.after <= STOP_BUDGET,
        "Bob's camera stopped {:?} after the mute",
        last.after
    );
    if relayed_counted {
        eprintln!("[test] node 1 also counts Bob's relayed camera");
    }
    assert_not_forwarding(&node2, &cam, secs(2), "Bob's muted camera on his node").await;
    assert_not_forwarding(&node1, &cam, secs(1), "Bob's muted camera on node 1").await;
    assert_forwarding(&node2, &mic, 20, "Bob's microphone, which nobody muted").await;

    // Hands across the hop: Erin (node 2) raises hers, then Alice (node
    // 1); both lists show the same order.
    erin.sig.send(&json!({"type":"hand","raised":true})).await;
    alice
        .until("Alice sees Erin's hand up", secs(10), |m| {
            m.person("Erin")
                .is_some_and(|p| p["hand_raised_at_ms"].is_u64())
        })
        .await;
    alice.sig.send(&json!({"type":"hand","raised":true})).await;
    for m in [&mut alice, &mut erin] {
        let what = format!("{} sees both hands up", m.name);
        m.until(&what, secs(10), |m| m.hands().len() == 2).await;
    }
    assert_eq!(
        alice.hands(),
        erin.hands(),
        "hands in the same order on both nodes"
    );
    assert_eq!(alice.hands(), ["Erin", "Alice"], "in the order raised");

    let results = bots.stop().await;
    for name in ["Bob", "Carol", "Dave"] {
        assert!(
            results[name].error.is_none(),
            "{name}'s bot: {:?}",
            results[name].error
        );
    }
    assert_eq!(results["Bob"].node_id, Some(2), "Bob publishes on node 2");
    assert_eq!(
        results["Carol"].node_id,
        Some(1),
        "Carol receives on node 1"
    );
    assert_eq!(results["Dave"].node_id, Some(2), "Dave receives on node 2");
    for (name, node) in [("Carol", 1), ("Dave", 2)] {
        camera_stopped_audio_kept(
            &results[name],
            &bob,
            t0,
            &format!("{name} on node {node}"),
            &format!(
                "across a cascade hop, at a receiver on node {node} (moderator on node 1, \
                 publisher on node 2)"
            ),
        );
    }
}

/// After Bob's camera (`bob`, his id) was muted at `t0`: `receiver`
/// (`who`, "Carol on node 1") got no video from him later than
/// [`STOP_BUDGET`], and his microphone, which nobody muted, kept coming
/// (a packet more than 3 s later). Prints the mute-to-last-packet figure
/// for the report, labelled `layout`.
fn camera_stopped_audio_kept(
    receiver: &veche_loadtest::bot::BotResult,
    bob: &str,
    t0: Instant,
    who: &str,
    layout: &str,
) {
    let video = last_packet_after(receiver, bob, "video", t0);
    let audio = last_packet_after(receiver, bob, "audio", t0);
    println!(
        "mute-to-last-packet: {layout}: {}",
        video.map_or("no packet after the action".to_owned(), |v| format!(
            "{} ms",
            v.as_millis()
        ))
    );
    assert!(
        video.is_none_or(|v| v <= STOP_BUDGET),
        "{who} received Bob's video {video:?} after the mute"
    );
    assert!(
        audio.is_some_and(|a| a > secs(3)),
        "{who} kept receiving Bob's audio after his camera was muted: last {audio:?} after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_roles_holds_and_settings_survive_a_leader_kill_and_a_media_node_kill() {
    let mut cluster = Cluster::start(3).await;
    cluster.start_relay_regions(2).await;
    let leader = cluster.wait_for_leader(secs(10)).await;
    // The browsers use a node that survives, as a load balancer would.
    let front = cluster.a_follower(leader);
    let base = cluster.base(front);
    let node1 = cluster.media_base(1);
    let room = create_owned_room(&base, "Durable").await;
    let slug = room.slug();
    let (host, guests) = tokio::join!(Chrome::start("Alice"), Chrome::start("Bob and Carol"));
    dump_on_failure(&[&host, &guests], async {
        let bob = first_window(&guests, "Bob").await;
        let carol = open_window(&guests, "Carol").await;
        let regions = ["&region=r1", "&region=r2", "&region=r2"];
        seat_three(
            (&host, &bob, &carol),
            &base,
            &slug,
            &room.owner_key,
            regions,
        )
        .await;
        on_node(&host, 1, secs(30)).await;
        on_node(&bob, 2, secs(30)).await;
        on_node(&carol, 2, secs(30)).await;
        let bob_id = id_of(&host, "Bob").await;
        let carol_id = id_of(&host, "Carol").await;
        assert_decoding(&host, &bob_id, "Alice decodes Bob across the relay").await;

        // The host makes Carol a moderator, turns off Bob's camera and
        // locks the meeting.
        menu_action(&host, "Carol", "Make Carol a moderator").await;
        shows_moderator(&host, "Carol").await;
        let t0 = menu_action(&host, "Bob", "Turn off Bob's camera").await;
        frames_stop(&host, &bob_id, t0, STOP_BUDGET).await;
        show_participants(&host).await;
        host.click_button("Lock meeting").await;
        wait_for("the meeting refuses newcomers", secs(10), async || {
            let r = http_post_json(
                &format!("{base}/api/rooms/{slug}/join"),
                &json!({ "display_name": "Early Eve" }),
            )
            .await;
            if r.status == 403 {
                Ok(())
            } else {
                Err(format!("{} {}", r.status, r.body))
            }
        })
        .await;

        // The Raft leader dies: the meeting is still locked.
        cluster.kill(leader);
        let new_leader = cluster.wait_for_leader(secs(10)).await;
        assert_ne!(new_leader, leader);
        let msg = http_post_json(
            &format!("{base}/api/rooms/{slug}/join"),
            &json!({ "display_name": "Eve" }),
        )
        .await
        .assert_error(403, "forbidden");
        assert!(msg.to_lowercase().contains("locked"), "{msg:?}");

        // Bob's and Carol's media node dies: they come back on node 1 as
        // the same people, Carol still a moderator, Bob's camera still off.
        cluster.kill_media_node(2);
        let killed = Instant::now();
        on_node(&bob, 1, secs(30)).await;
        on_node(&carol, 1, secs(30)).await;
        eprintln!(
            "[test] Bob and Carol back on node 1 after {:?}",
            killed.elapsed()
        );
        assert_eq!(id_of(&host, "Bob").await, bob_id, "Bob rejoined as himself");
        assert_eq!(
            id_of(&host, "Carol").await,
            carol_id,
            "Carol rejoined as herself"
        );
        shows_moderator(&host, "Carol").await;
        shows_moderator(&bob, "Carol").await;
        shows_moderator(&carol, "Carol").await;
        assert_decoding(&host, &carol_id, "Alice decodes Carol on her new node").await;
        // Bob's page keeps his camera off, and sent anyway it reaches no
        // one: node 1 withholds it as node 2 did.
        send_camera_anyway(&bob, "Bob's page sends video anyway").await;
        let cam = published_track(&host, "Bob", "camera").await;
        assert_not_forwarding(&node1, &cam, secs(2), "Bob's held camera on node 1").await;
        assert_not_decoding(&host, &bob_id, secs(2), "Bob's camera, still turned off").await;

        // Carol still moderates: she mutes Bob's microphone.
        show_participants(&carol).await;
        script_click(&carol, "More actions for Bob").await;
        script_click(&carol, "Mute Bob").await;
        assert_alert(&bob, "Carol muted your microphone").await;

        // Unlocked, a newcomer sees the same roles and holds.
        host.click_button("Unlock meeting").await;
        let dave_join = wait_for(
            "the meeting lets Dave in once unlocked",
            secs(10),
            async || {
                let r = http_post_json(
                    &format!("{base}/api/rooms/{slug}/join"),
                    &json!({ "display_name": "Dave", "region": "r1" }),
                )
                .await;
                if r.status == 200 {
                    Ok(r.json())
                } else {
                    Err(format!("{} {}", r.status, r.body))
                }
            },
        )
        .await;
        let dave = Member::enter(&base, "Dave", dave_join).await;
        assert_eq!(
            dave.people[&carol_id]["role"],
            "moderator",
            "{}",
            dave.describe()
        );
        let held = dave.held(&bob_id);
        assert!(
            held.iter().any(|g| g == "camera") && held.iter().any(|g| g == "microphone"),
            "Dave's policy holds Bob's camera and microphone: {}",
            dave.policy
        );
    })
    .await;
    host.close().await;
    guests.close().await;
}

/// Waits until `p` shows `name` with the moderator role.
async fn shows_moderator(p: &impl Page, name: &str) {
    let what = format!("{name} as a moderator");
    until_person(p, name, &what, |x| x["role"] == "moderator").await;
}
