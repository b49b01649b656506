//! The admin view's routes over real HTTP on a one-node control plane:
//! who may read them (administrators 200, other users 403, anonymous 401),
//! what a bad query gets (400), and what the JSON and CSV say about events
//! stored the way media nodes store them.

use crate::store::stats::StatsCommand;
use crate::store::StatsStore;
use crate::test_support::{serve_one_node, signed_in_user, Served};
use crate::ControlPlane;
use std::sync::Arc;
use veche_protocol::account::SESSION_COOKIE;
use veche_protocol::stats::{EventKind, ParticipantEvent};
use veche_protocol::{NodeId, ParticipantId, RoomId, RoomSlug, UserId};

struct Fixture {
    cp: Arc<ControlPlane>,
    base: String,
    admin: String,
    user: String,
    _served: Served,
}

async fn fixture() -> Fixture {
    // This test makes more requests from one address than the admin
    // view's rate allows; the limit itself is the edge's, tested there.
    let served = serve_one_node(crate::admission::HttpConfig {
        rate_limits: false,
        ..Default::default()
    })
    .await;
    let cp = served.cp.clone();
    let base = served.base.clone();
    let (_, admin) = signed_in_user(&cp, "admin@example.test", "admin@example.test", true).await;
    let (_, user) = signed_in_user(&cp, "ann@example.test", "ann@example.test", false).await;
    let admin = format!("{SESSION_COOKIE}={admin}");
    let user = format!("{SESSION_COOKIE}={user}");
    Fixture {
        cp,
        base,
        admin,
        user,
        _served: served,
    }
}

async fn get(f: &Fixture, path: &str, cookie: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", f.base));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.expect("request");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

fn event(seq: u64, who: u8, at_ms: u64, kind: EventKind) -> ParticipantEvent {
    ParticipantEvent {
        seq,
        room_id: RoomId(42),
        room_name: "Weekly review".into(),
        room_slug: RoomSlug::from_random([4; 16]),
        participant_id: ParticipantId::from_random([who; 8]),
        at_ms,
        kind,
    }
}

fn joined(name: &str, user: Option<UserId>) -> EventKind {
    EventKind::Joined {
        display_name: name.into(),
        user,
        guest: false,
    }
}

#[tokio::test]
async fn the_admin_view_is_for_administrators_and_checks_its_queries() {
    let f = fixture().await;
    let t0 = crate::now_ms() - 60_000;
    f.cp.replicated()
        .stats(StatsCommand::Record {
            node_id: NodeId(1),
            boot: 9,
            events: vec![
                event(1, 1, t0, joined("Ann, \"the host\"", Some(UserId(2)))),
                event(2, 2, t0 + 5_000, joined("=Bob", None)),
                event(3, 2, t0 + 35_000, EventKind::Left),
                event(4, 1, t0 + 45_000, EventKind::Left),
            ],
            received_at_ms: t0 + 45_000,
            webhooks: false,
        })
        .await
        .unwrap();
    let routes = [
        "/api/admin/overview",
        "/api/admin/meetings",
        "/api/admin/meetings/1",
        "/api/admin/meetings/1/participants.csv",
        "/api/admin/meetings/1/chat",
    ];
    for path in routes {
        let (status, body) = get(&f, path, None).await;
        assert_eq!(status, 401, "{path} anonymous: {body}");
        let (status, body) = get(&f, path, Some(&f.user)).await;
        assert_eq!(status, 403, "{path} as a non-admin: {body}");
        let (status, body) = get(&f, path, Some(&f.admin)).await;
        assert_eq!(status, 200, "{path} as an admin: {body}");
    }
    for bad in [
        "/api/admin/meetings?limit=0",
        "/api/admin/meetings?limit=1000",
        "/api/admin/meetings?before=x",
        "/api/admin/meetings?before=0",
        "/api/admin/meetings?unknown=1",
        "/api/admin/meetings?q=%07",
        "/api/admin/meetings/abc",
        "/api/admin/meetings/0/participants.csv",
    ] {
        let (status, body) = get(&f, bad, Some(&f.admin)).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("bad_request"), "{bad}: {body}");
    }
    let long = format!("/api/admin/meetings?q={}", "a".repeat(101));
    assert_eq!(get(&f, &long, Some(&f.admin)).await.0, 400);
    assert_eq!(
        get(&f, "/api/admin/meetings/99", Some(&f.admin)).await.0,
        404
    );

    let (_, body) = get(&f, "/api/admin/meetings?q=weekly", Some(&f.admin)).await;
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["meetings"][0]["room_name"], "Weekly review");
    assert_eq!(page["meetings"][0]["duration_ms"], 45_000);
    let (_, body) = get(&f, "/api/admin/meetings?q=nothing", Some(&f.admin)).await;
    assert!(body.contains("\"meetings\":[]"), "{body}");
    let (_, body) = get(&f, "/api/admin/meetings/1", Some(&f.admin)).await;
    let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["participants"][0]["email"], "ann@example.test");
    assert_eq!(detail["participants"][1]["duration_ms"], 30_000);
    let (_, csv) = get(&f, "/api/admin/meetings/1/participants.csv", Some(&f.admin)).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "name,email,joined,left,duration_s");
    assert!(
        lines[1].starts_with("\"Ann, \"\"the host\"\"\",ann@example.test,"),
        "{csv}"
    );
    assert!(lines[1].ends_with(",45"), "{csv}");
    assert!(lines[2].starts_with("'=Bob,,"), "{csv}");
    let (_, overview) = get(&f, "/api/admin/overview", Some(&f.admin)).await;
    let o: serde_json::Value = serde_json::from_str(&overview).unwrap();
    assert_eq!(o["rooms_online"], 0);
    assert_eq!(o["by_day"].as_array().unwrap().len(), 30);
    let participants: u64 = o["by_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["participants"].as_u64().unwrap())
        .sum();
    assert_eq!(participants, 2, "{overview}");

    // A user's own history: only signed in, and only their meetings.
    assert_eq!(get(&f, "/api/me/meetings", None).await.0, 401);
    let (status, mine) = get(&f, "/api/me/meetings", Some(&f.user)).await;
    assert_eq!(status, 200);
    assert!(mine.contains("Weekly review"), "{mine}");
    let (_, theirs) = get(&f, "/api/me/meetings", Some(&f.admin)).await;
    assert!(theirs.contains("\"meetings\":[]"), "{theirs}");
    // The page itself is served to anyone (it asks /api/me who is
    // looking); its data is what needs an administrator.
    let (status, page) = get(&f, "/admin", None).await;
    assert_eq!(status, 200);
    assert!(page.contains("<h1>Administration</h1>"), "{page}");
    for asset in [
        "/static/admin.js",
        "/static/admin.css",
        "/static/lib/charts.js",
        "/static/lib/admin-format.js",
    ] {
        assert_eq!(get(&f, asset, None).await.0, 200, "{asset}");
    }
    f.cp.shutdown().await.unwrap();
}
