//! Meeting statistics end to end: participants join and leave through a
//! real media node (WebSocket signalling, a real peer connection each),
//! the node reports the events, the control plane stores them through
//! Raft, and an administrator reads the result in the admin JSON and CSV.
//! Then the statistics survive a full restart, and a control-plane leader
//! kill in a three-node cluster.
//!
//! The control plane and the media node run in this process (see
//! `common/stats_site.rs`: the administrator's session is made through the
//! store). The media node opens WebRTC sockets, so run inside a
//! loopback-only namespace:
//!
//! ```text
//! unshare -rn bash -c 'ip link set lo up; cargo test --test it statistics:: -- --nocapture'
//! ```
//!
//! The `--nocapture` output includes the write cost: Raft entries per
//! participant session (docs/benchmarks.md).

use crate::common::stats_site::*;
use crate::common::*;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A participant in the room, with the wall-clock times of their join and
/// leave as the test saw them.
struct Person {
    name: &'static str,
    signal: Option<Signal>,
    joined_ms: u64,
    left_ms: u64,
}

async fn enter(base: &str, slug: &str, name: &'static str) -> Person {
    let joined_ms = now_ms();
    let resp = join(base, slug, name).await;
    let (signal, _) = Signal::join(base, &resp).await;
    Person {
        name,
        signal: Some(signal),
        joined_ms,
        left_ms: 0,
    }
}

async fn leave(p: &mut Person) {
    let mut s = p.signal.take().expect("in the room");
    s.send(&json!({ "type": "leave" })).await;
    p.left_ms = now_ms();
    // The node answers `leave` by closing the socket; a close frame or a
    // reset both mean it is done. Anything but a timeout ends the wait.
    loop {
        match s.recv(secs(10)).await {
            Ok(_) => continue,
            Err(WsEnd::Timeout) => panic!("{} left, but the node kept the socket open", p.name),
            Err(_) => break,
        }
    }
}

/// The newest meeting of the room named `room`, once it has ended.
async fn ended_meeting(base: &str, admin: &str, room: &str) -> Value {
    let path = format!("/api/admin/meetings?q={}", room.replace(' ', "%20"));
    wait_for(
        &format!("the meeting in {room:?} has ended in the admin JSON"),
        secs(20),
        async || {
            let (status, body) = get_as(base, &path, admin).await;
            let page: Value =
                serde_json::from_str(&body).map_err(|_| format!("{status} {body}"))?;
            match page["meetings"].get(0) {
                Some(m) if !m["ended_at_ms"].is_null() => Ok(m.clone()),
                _ => Err(body),
            }
        },
    )
    .await
}

fn assert_within_2s(what: &str, got: u64, want: u64) {
    assert!(
        got.abs_diff(want) <= 2_000,
        "{what}: {got} ms, expected {want} ms within 2 s"
    );
}

/// `veche_cp_participant_event_reports_total` on `base`: one per Raft
/// entry the statistics wrote through this node.
async fn reports(base: &str) -> u64 {
    let text = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("veche_cp_participant_event_reports_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no report counter in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scripted_meeting_shows_its_durations_in_the_admin_json_and_csv_and_survives_a_restart() {
    let dir = veche_harness::TempDir::new("statistics");
    let mut cps = cluster(dir.path(), 1).await;
    let cp = cps.remove(0);
    let (_media, _, media_task) = media_node(1, vec![cp.base.clone()]).await;
    let admin = session_cookie(&cp.cp, "admin@example.test", true, 1).await;
    let base = cp.base.clone();
    let room = create_room(&base, "Design review").await;
    let slug = str_field(&room, "slug").to_owned();

    // Ann 0–6 s, Bob 1–5 s, Cleo 2–4 s.
    let reports_before = reports(&base).await;
    let mut ann = enter(&base, &slug, "Ann").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut bob = enter(&base, &slug, "Bob").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut cleo = enter(&base, &slug, "Cleo").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    leave(&mut cleo).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    leave(&mut bob).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    leave(&mut ann).await;

    let meeting = ended_meeting(&base, &admin, "Design review").await;
    assert_within_2s(
        "the meeting's duration",
        meeting["duration_ms"].as_u64().unwrap(),
        ann.left_ms - ann.joined_ms,
    );
    assert_eq!(meeting["participants"], 3);
    let id = meeting["id"].as_u64().unwrap();
    let (status, body) = get_as(&base, &format!("/api/admin/meetings/{id}"), &admin).await;
    assert_eq!(status, 200, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    for p in [&ann, &bob, &cleo] {
        let row = detail["participants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["display_name"] == p.name)
            .unwrap_or_else(|| panic!("{} is not listed: {body}", p.name));
        assert_within_2s(
            &format!("{}'s duration", p.name),
            row["duration_ms"].as_u64().unwrap(),
            p.left_ms - p.joined_ms,
        );
        assert_within_2s(
            &format!("{}'s join time", p.name),
            row["joined_at_ms"].as_u64().unwrap(),
            p.joined_ms,
        );
    }
    let (status, csv) = get_as(
        &base,
        &format!("/api/admin/meetings/{id}/participants.csv"),
        &admin,
    )
    .await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three participants: {csv}");
    for name in ["Ann", "Bob", "Cleo"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{name},"))),
            "{name} in the CSV: {csv}"
        );
    }
    let scripted = reports(&base).await - reports_before;
    println!(
        "raft entries per participant session, scripted meeting (events 1 s apart): {:.2} ({scripted} entries / 3 sessions)",
        scripted as f64 / 3.0
    );

    // Ten people joining and leaving together: their events share reports.
    let before = reports(&base).await;
    let crowd_room = create_room(&base, "All hands").await;
    let crowd_slug = str_field(&crowd_room, "slug").to_owned();
    const NAMES: [&str; 10] = ["P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9"];
    let mut crowd = futures::future::join_all(NAMES.map(|n| enter(&base, &crowd_slug, n))).await;
    futures::future::join_all(crowd.iter_mut().map(leave)).await;
    let all_hands = ended_meeting(&base, &admin, "All hands").await;
    assert_eq!(all_hands["participants"], 10);
    let crowd_entries = reports(&base).await - before;
    println!(
        "raft entries per participant session, 10 joining and leaving together: {:.2} ({crowd_entries} entries / 10 sessions)",
        crowd_entries as f64 / 10.0
    );

    // A full restart: the media node and the control plane stop, the
    // control plane starts again on the same data.
    media_task.abort();
    let data = dir.path().join("cp1");
    cp.kill().await;
    let cp = CpNode::open(
        1,
        listener().await,
        &data,
        veche_control_plane::Bootstrap::Single,
    )
    .await;
    let (status, body) = get_as(&cp.base, &format!("/api/admin/meetings/{id}"), &admin).await;
    assert_eq!(
        status, 200,
        "the admin's session and the meeting survive: {body}"
    );
    let after: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(after, detail, "the same meeting after a restart");
    let (_, body) = get_as(&cp.base, "/api/admin/overview", &admin).await;
    let overview: Value = serde_json::from_str(&body).unwrap();
    let meetings: u64 = overview["by_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["meetings"].as_u64().unwrap())
        .sum();
    assert_eq!(meetings, 2, "{body}");
    assert_eq!(overview["rooms_online"], 0);
    cp.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statistics_written_before_and_after_a_leader_kill_are_all_there() {
    let dir = veche_harness::TempDir::new("statistics-cluster");
    let mut cps = cluster(dir.path(), 3).await;
    let first = leader_index(&cps).await;
    let bases: Vec<String> = cps.iter().map(|n| n.base.clone()).collect();
    let (_media, _, _media_task) = media_node(1, bases.clone()).await;
    let admin = session_cookie(&cps[first].cp, "admin@example.test", true, 1).await;
    let room = create_room(&bases[first], "Failover review").await;
    let slug = str_field(&room, "slug").to_owned();
    let mut ann = enter(&bases[first], &slug, "Ann").await;
    let mut bob = enter(&bases[first], &slug, "Bob").await;
    let base = bases[first].clone();
    wait_for("both joins are stored", secs(20), async || {
        let (_, body) = get_as(&base, "/api/admin/overview", &admin).await;
        let o: Value = serde_json::from_str(&body).map_err(|_| body.clone())?;
        (o["participants_online"] == 2).then_some(()).ok_or(body)
    })
    .await;

    // The leader dies; Bob leaves while the cluster elects another.
    let killed = cps.remove(first);
    killed.kill().await;
    leave(&mut bob).await;
    let next = leader_index(&cps).await;
    let base = cps[next].base.clone();
    tokio::time::sleep(Duration::from_secs(1)).await;
    leave(&mut ann).await;

    let meeting = ended_meeting(&base, &admin, "Failover review").await;
    let id = meeting["id"].as_u64().unwrap();
    assert_within_2s(
        "the meeting's duration",
        meeting["duration_ms"].as_u64().unwrap(),
        ann.left_ms - ann.joined_ms,
    );
    let (_, body) = get_as(&base, &format!("/api/admin/meetings/{id}"), &admin).await;
    let detail: Value = serde_json::from_str(&body).unwrap();
    let rows = detail["participants"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "each participant once: {body}");
    for p in [&ann, &bob] {
        let row = rows
            .iter()
            .find(|r| r["display_name"] == p.name)
            .unwrap_or_else(|| panic!("{} is not listed: {body}", p.name));
        assert_within_2s(
            &format!("{}'s duration", p.name),
            row["duration_ms"].as_u64().unwrap(),
            p.left_ms - p.joined_ms,
        );
    }
    for n in cps {
        n.kill().await;
    }
}

/// Joins `slug` with a session cookie, as a signed-in browser does.
async fn enter_signed_in(base: &str, slug: &str, cookie: &str, name: &'static str) -> Person {
    let joined_ms = now_ms();
    let resp: Value = http()
        .post(format!("{base}/api/rooms/{slug}/join"))
        .header("cookie", cookie)
        .json(&json!({ "display_name": "ignored for members" }))
        .send()
        .await
        .expect("join")
        .json()
        .await
        .expect("a join response");
    let (signal, _) = Signal::join(base, &resp).await;
    Person {
        name,
        signal: Some(signal),
        joined_ms,
        left_ms: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_in_participant_is_counted_online_and_finds_the_meeting_in_their_own_history() {
    let dir = veche_harness::TempDir::new("statistics-own");
    let mut cps = cluster(dir.path(), 1).await;
    let cp = cps.remove(0);
    let (_media, _, media_task) = media_node(1, vec![cp.base.clone()]).await;
    let admin = session_cookie(&cp.cp, "admin@example.test", true, 1).await;
    let dana = session_cookie(&cp.cp, "dana@example.test", false, 2).await;
    let base = cp.base.clone();
    let room = create_room(&base, "Standup").await;
    let slug = str_field(&room, "slug").to_owned();

    let mut d = enter_signed_in(&base, &slug, &dana, "Dana").await;
    let mut eve = enter(&base, &slug, "Eve").await;
    wait_for(
        "Dana counted among the users online (Eve is anonymous)",
        secs(10),
        async || {
            let (_, body) = get_as(&base, "/api/admin/overview", &admin).await;
            let o: Value = serde_json::from_str(&body).map_err(|_| body.clone())?;
            if o["users_online"] == 1 && o["rooms_online"] == 1 {
                Ok(())
            } else {
                Err(body)
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    leave(&mut eve).await;
    leave(&mut d).await;

    let mine = wait_for(
        "the meeting in Dana's own history, ended",
        secs(20),
        async || {
            let (status, body) = get_as(&base, "/api/me/meetings", &dana).await;
            let page: Value =
                serde_json::from_str(&body).map_err(|_| format!("{status} {body}"))?;
            match page["meetings"].get(0) {
                Some(m) if !m["ended_at_ms"].is_null() => Ok(page.clone()),
                _ => Err(body),
            }
        },
    )
    .await;
    let meetings = mine["meetings"].as_array().unwrap();
    assert_eq!(meetings.len(), 1, "{mine}");
    assert_eq!(meetings[0]["room_name"], "Standup");
    assert_within_2s(
        "the meeting's duration in Dana's history",
        meetings[0]["duration_ms"].as_u64().unwrap(),
        d.left_ms - d.joined_ms,
    );
    let (_, body) = get_as(&base, "/api/me/meetings", &admin).await;
    let theirs: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        theirs["meetings"].as_array().map(Vec::len),
        Some(0),
        "the administrator was not there: {body}"
    );
    media_task.abort();
    cp.kill().await;
}
