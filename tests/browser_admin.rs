//! The administrator's view of a real meeting, in Chromium: three people
//! join one room through its pre-join page at known times and leave with
//! the "Leave" button at known times; an administrator signs in through
//! the form, opens "Administration" from the home page, searches the room
//! history, opens the meeting and reads each person's duration as the page
//! shows it, within 2 s of what the test timed. The admin JSON and the CSV
//! download say the same. Before that, an anonymous visitor of a
//! members-only room sees the refusal page with a "Sign in" link and no way
//! to join.
//!
//! One Chromium plays everyone, one window each (`common/windows.rs`), so
//! the steps are ordered: the anonymous visit first, the administrator's
//! sign-in last (the windows share cookies).
//!
//! Needs Debian's `chromium` and `chromium-driver`, and should run in the
//! loopback-only namespace `scripts/test.sh` creates:
//!
//! ```text
//! unshare -rn bash -c 'ip link set lo up; cargo test --test it browser_admin:: -- --nocapture'
//! ```

use crate::common::accounts::*;
use crate::common::windows::*;
use crate::common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long a page may take to show what it should.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long joining (devices, signalling, media) may take on a loaded
/// two-core machine.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The room of the scripted meeting.
const ROOM: &str = "Quarterly review";

/// One participant of the scripted meeting, with the instants the test
/// clicked "Join meeting" and "Leave".
struct Person<'a> {
    name: &'static str,
    window: Window<'a>,
    joined: Option<Instant>,
    left: Option<Instant>,
}

impl Person<'_> {
    /// How long the test saw them in the meeting, in ms.
    fn stayed_ms(&self) -> u64 {
        let (j, l) = (self.joined.expect("joined"), self.left.expect("left"));
        l.duration_since(j).as_millis() as u64
    }
}

/// Opens `link`, types the name on the pre-join page, clicks "Join
/// meeting" and waits until the page is connected. Returns the instant of
/// the click.
async fn join_through_prejoin(w: &Window<'_>, link: &str, name: &str) -> Instant {
    w.goto(link).await;
    wait_for(
        &format!("{name}'s pre-join page asks for a name"),
        PAGE_TIMEOUT,
        async || {
            let v = w
                .js(
                    "const s = document.getElementById('prejoin-screen'); \
                     return !!s && !s.hidden;",
                    vec![],
                )
                .await?;
            (v == Value::Bool(true))
                .then_some(())
                .ok_or_else(|| "the pre-join screen is not shown".to_owned())
        },
    )
    .await;
    w.fill("input", "Your name", name).await;
    w.click_button("Join meeting").await;
    let clicked = Instant::now();
    wait_for(
        &format!("{name} is connected and listed in the meeting"),
        JOIN_TIMEOUT,
        async || {
            let state = w
                .js(
                    "if (!window.veche) throw new Error('no window.veche'); \
                     return JSON.parse(JSON.stringify(window.veche.state()));",
                    vec![],
                )
                .await?;
            let listed = state["participants"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["display_name"] == name));
            if state["connected"] == true && listed {
                Ok(())
            } else {
                Err(format!("state {state}"))
            }
        },
    )
    .await;
    eprintln!(
        "{name}: join click to connected: {} ms",
        clicked.elapsed().as_millis()
    );
    clicked
}

/// Clicks "Leave" and waits for the page to say so. Returns the instant of
/// the click.
async fn leave(w: &Window<'_>) -> Instant {
    w.click_button("Leave").await;
    let clicked = Instant::now();
    wait_for(
        &format!("{}'s page says they left", w.label),
        PAGE_TIMEOUT,
        async || {
            let t = w.text().await?;
            t.contains("You left the meeting")
                .then_some(())
                .ok_or_else(|| format!("page text {t:?}"))
        },
    )
    .await;
    clicked
}

/// Sleeps until `offset` after `t0`: the scenario's timetable, not a wait
/// for something to happen.
async fn at(t0: Instant, offset: Duration) {
    tokio::time::sleep_until((t0 + offset).into()).await;
}

/// A duration as the admin page writes it ("7 s", "12 min 05 s", "2 min",
/// "1 h 05 min"), in ms; `None` if it is not one.
fn shown_duration_ms(text: &str) -> Option<u64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut ms = 0;
    for pair in words.chunks(2) {
        let [n, unit] = pair else { return None };
        let n: u64 = n.parse().ok()?;
        ms += n * match *unit {
            "h" => 3_600_000,
            "min" => 60_000,
            "s" => 1_000,
            _ => return None,
        };
    }
    (!words.is_empty()).then_some(ms)
}

#[test]
fn the_admin_pages_durations_read_back() {
    assert_eq!(shown_duration_ms("7 s"), Some(7_000));
    assert_eq!(shown_duration_ms("12 min 05 s"), Some(725_000));
    assert_eq!(shown_duration_ms("1 h 05 min"), Some(3_900_000));
    assert_eq!(shown_duration_ms("7 s (ongoing)"), None);
}

fn assert_within_2s(what: &str, got: u64, want: u64) {
    assert!(
        got.abs_diff(want) <= 2_000,
        "{what}: {got} ms, expected {want} ms within 2 s"
    );
}

/// The cells of each row of the table `id`'s body, as text.
async fn table_rows(w: &Window<'_>, id: &str) -> Result<Vec<Vec<String>>, String> {
    let v = w
        .js(
            "const t = document.getElementById(arguments[0]); \
             if (!t) throw new Error('no table #' + arguments[0]); \
             return Array.from(t.tBodies[0].rows).map((r) => \
               Array.from(r.cells).map((c) => c.innerText.trim()));",
            vec![json!(id)],
        )
        .await?;
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// `GET path` with the session cookie `session`: status and body.
async fn get_with_session(base: &str, path: &str, session: &str) -> (u16, String) {
    let resp = http()
        .get(format!("{base}{path}"))
        .header(
            reqwest::header::COOKIE,
            format!("{SESSION_COOKIE}={session}"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_reads_a_browser_meetings_durations_on_the_admin_page() {
    let server = Server::start();
    let base = server.base().to_owned();
    cli_create_user_ok(&server, "root@example.test", true);
    cli_create_user_ok(&server, "member@example.test", false);

    // A member makes a room for signed-in members only (over HTTP: the
    // browser's cookies stay anonymous for the refusal check).
    let mut member = Visitor::new(&base);
    member
        .sign_in_ok("member@example.test", GOOD_PASSWORD)
        .await;
    let made = member
        .post(
            "/api/rooms",
            &json!({"name": "Members only", "access": "signed_in"}),
        )
        .await;
    assert_eq!(
        made.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&made.body)
    );
    let members_link = str_field(&made.json(), "link").to_owned();
    let room = create_room(&base, ROOM).await;
    let link = str_field(&room, "link").to_owned();

    let chrome = Chrome::start("everyone").await;
    dump_on_failure(&[&chrome], async {
        // An anonymous visitor of the members-only room: the refusal, a
        // way to sign in, no way to join.
        let visitor = first_window(&chrome, "Visitor").await;
        visitor.goto(&members_link).await;
        let text = wait_for(
            "the page refuses the anonymous visitor",
            PAGE_TIMEOUT,
            async || {
                let t = visitor.text().await?;
                t.contains("This meeting is for signed-in members of the organisation")
                    .then(|| t.clone())
                    .ok_or_else(|| format!("page text {t:?}"))
            },
        )
        .await;
        assert!(!text.contains("Join meeting"), "no join offered: {text}");
        let sign_in = visitor
            .js(
                "const a = Array.from(document.querySelectorAll('a')) \
                   .find((e) => __norm(e.textContent) === 'Sign in' && __visible(e)); \
                 const join = document.getElementById('join-button'); \
                 return { href: a ? a.getAttribute('href') : null, \
                          join: !!join && __visible(join) };",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            sign_in["href"]
                .as_str()
                .is_some_and(|h| h.starts_with("/signin")),
            "a visible \"Sign in\" link to the sign-in page: {sign_in}"
        );
        assert_eq!(
            sign_in["join"], false,
            "the join button is not shown: {sign_in}"
        );

        // The scripted meeting, by the timetable (s after the first join):
        // Ann 0–10, Bob 1–8, Cleo 2–6.
        let mut people = Vec::new();
        for (i, name) in ["Ann", "Bob", "Cleo"].into_iter().enumerate() {
            // Ann takes over the visitor's window.
            let window = if i == 0 {
                first_window(&chrome, name).await
            } else {
                open_window(&chrome, name).await
            };
            people.push(Person {
                name,
                window,
                joined: None,
                left: None,
            });
        }
        let t0 = Instant::now();
        for (i, p) in people.iter_mut().enumerate() {
            at(t0, Duration::from_secs(i as u64)).await;
            p.joined = Some(join_through_prejoin(&p.window, &link, p.name).await);
        }
        // Everyone sees everyone: the meeting really had three people.
        for p in &people {
            wait_for(
                &format!("{} lists all three", p.name),
                JOIN_TIMEOUT,
                async || {
                    let state = p
                        .window
                        .js(
                            "return JSON.parse(JSON.stringify(window.veche.state()));",
                            vec![],
                        )
                        .await?;
                    let n = state["participants"].as_array().map_or(0, Vec::len);
                    (n == 3)
                        .then_some(())
                        .ok_or_else(|| format!("state {state}"))
                },
            )
            .await;
        }
        for (i, stay) in [(2, 4), (1, 7), (0, 10)] {
            let p = &mut people[i];
            at(p.joined.unwrap(), Duration::from_secs(stay)).await;
            p.left = Some(leave(&p.window).await);
        }
        let meeting_ms = people[0].stayed_ms();
        for p in &people {
            eprintln!(
                "{} stayed {} ms (as the test timed it)",
                p.name,
                p.stayed_ms()
            );
        }

        // The administrator signs in through the form and opens the page
        // from the home page's "Administration" link.
        let admin = &people[0].window;
        admin.goto(&format!("{base}/")).await;
        admin.click_link("Sign in").await;
        admin.fill("input", "Email", "root@example.test").await;
        admin.fill("input", "Password", GOOD_PASSWORD).await;
        admin.click_button("Sign in").await;
        admin.click_link("Administration").await;
        wait_for(
            "the admin page shows its content",
            PAGE_TIMEOUT,
            async || {
                let v = admin
                    .js(
                        "const c = document.getElementById('admin-content'); \
                     return [location.pathname, !!c && !c.hidden];",
                        vec![],
                    )
                    .await?;
                (v == json!(["/admin", true]))
                    .then_some(())
                    .ok_or_else(|| format!("{v}"))
            },
        )
        .await;

        // The statistics are written in batches: wait (through the JSON,
        // with the administrator's session as the browser holds it) until
        // the meeting has ended, then search for it as an administrator
        // would.
        let session = admin.cookie(SESSION_COOKIE).await.unwrap();
        wait_for(
            "the admin JSON has the meeting as ended",
            PAGE_TIMEOUT,
            async || {
                // Paced: statistics requests are rate-limited per address.
                tokio::time::sleep(Duration::from_millis(500)).await;
                let (status, body) =
                    get_with_session(&base, "/api/admin/meetings?q=Quarterly", &session).await;
                let page: Value =
                    serde_json::from_str(&body).map_err(|_| format!("{status} {body}"))?;
                match page["meetings"].get(0) {
                    Some(m) if !m["ended_at_ms"].is_null() => Ok(()),
                    _ => Err(format!("{status} {body}")),
                }
            },
        )
        .await;
        admin
            .fill("input", "Search by room name", "Quarterly")
            .await;
        admin.click_button("Search").await;
        let history = wait_for(
            "the history lists the meeting as ended",
            PAGE_TIMEOUT,
            async || {
                let rows = table_rows(admin, "history").await?;
                match rows.as_slice() {
                    [row]
                        if row.get(1).is_some_and(|r| r == ROOM)
                            && row.get(2).is_some_and(|d| !d.contains("ongoing")) =>
                    {
                        Ok(row.clone())
                    }
                    _ => Err(format!("history rows {rows:?}")),
                }
            },
        )
        .await;
        eprintln!("history row on the page: {history:?}");
        let shown = shown_duration_ms(&history[2])
            .unwrap_or_else(|| panic!("a duration in the history row {history:?}"));
        assert_within_2s("the meeting's duration in the history", shown, meeting_ms);
        assert_eq!(history[3], "3", "three people in {history:?}");

        // Its detail: each participant's duration as the page writes it.
        admin.click_link(ROOM).await;
        let rows = wait_for(
            "the meeting's participants are shown",
            PAGE_TIMEOUT,
            async || {
                let rows = table_rows(admin, "participants").await?;
                (rows.len() == 3)
                    .then_some(rows.clone())
                    .ok_or_else(|| format!("rows {rows:?}"))
            },
        )
        .await;
        eprintln!("participants on the page: {rows:?}");
        for p in &people {
            let row = rows
                .iter()
                .find(|r| r[0] == p.name)
                .unwrap_or_else(|| panic!("{} is not listed: {rows:?}", p.name));
            let shown =
                shown_duration_ms(&row[3]).unwrap_or_else(|| panic!("a duration in {row:?}"));
            assert_within_2s(
                &format!("{}'s duration on the page", p.name),
                shown,
                p.stayed_ms(),
            );
        }

        // The JSON and the CSV behind it.
        let csv_href = admin
            .js(
                "return document.getElementById('download-list').getAttribute('href');",
                vec![],
            )
            .await
            .unwrap();
        let csv_path = csv_href.as_str().unwrap().to_owned();
        let id: u64 = csv_path
            .strip_prefix("/api/admin/meetings/")
            .and_then(|r| r.strip_suffix("/participants.csv"))
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("the download link {csv_path}"));
        let (status, body) =
            get_with_session(&base, &format!("/api/admin/meetings/{id}"), &session).await;
        assert_eq!(status, 200, "{body}");
        let detail: Value = serde_json::from_str(&body).unwrap();
        assert_within_2s(
            "the meeting's duration in the JSON",
            detail["meeting"]["duration_ms"].as_u64().unwrap(),
            meeting_ms,
        );
        let listed = detail["participants"].as_array().unwrap();
        assert_eq!(listed.len(), 3, "{body}");
        for p in &people {
            let r = listed
                .iter()
                .find(|r| r["display_name"] == p.name)
                .unwrap_or_else(|| panic!("{} is not in the JSON: {body}", p.name));
            assert_within_2s(
                &format!("{}'s duration in the JSON", p.name),
                r["duration_ms"].as_u64().unwrap(),
                p.stayed_ms(),
            );
        }
        let (status, csv) = get_with_session(&base, &csv_path, &session).await;
        assert_eq!(status, 200, "{csv}");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "a header and three participants: {csv}");
        for p in &people {
            assert!(
                lines.iter().any(|l| l.starts_with(&format!("{},", p.name))),
                "{} in the CSV: {csv}",
                p.name
            );
        }

        // The administrator's own history, on the Profile page: they
        // read the meeting's figures but were not in it.
        admin.goto(&format!("{base}/profile")).await;
        wait_for(
            "the Profile page says the administrator has no meetings of their own",
            PAGE_TIMEOUT,
            async || {
                let text = admin.text().await?;
                (text.contains("My meetings") && text.contains("No meetings yet."))
                    .then_some(())
                    .ok_or(text)
            },
        )
        .await;
    })
    .await;
    chrome.close().await;
}
