//! Browser helpers of the moderation tests (issue 12), for a whole
//! Chromium ([`Chrome`]) and for one window of a shared one
//! ([`Window`], `windows.rs`) alike, through the [`Page`] trait: the
//! room state, video decoded per sender, `role="alert"` messages, the
//! participant list's order, and a "scripted Bob" who sends his camera
//! whatever the page decided.

use crate::common::windows::Window;
use crate::common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The buttons, menu items and switches a user clicks, by role.
pub const CLICKABLE: &str = "button, [role=\"button\"], [role=\"menuitem\"], \
     [role=\"menuitemcheckbox\"], input[type=\"button\"], input[type=\"submit\"]";
/// Switches and checkboxes ("Lobby", "Speak mode").
pub const SWITCH: &str = "input[type=\"checkbox\"], [role=\"switch\"], [role=\"checkbox\"]";

/// A page one person looks at: a Chromium of its own, or a window of a
/// shared one.
#[allow(async_fn_in_trait)]
pub trait Page {
    /// Whose page, for messages.
    fn who(&self) -> &str;
    /// Runs `body` as an async function in the page (see [`Chrome::js`]).
    async fn run(&self, body: &str, args: Vec<Value>) -> Result<Value, String>;
    /// Clicks the button named `name` as a user would.
    async fn press(&self, name: &str);
}

/// [`Page`] for a type with `label`, `js` and `click_button` of
/// the same shape: [`Chrome`] and [`Window`] both have them, so one body
/// serves both.
macro_rules! page_by_delegation {
    ($t:ty) => {
        impl Page for $t {
            fn who(&self) -> &str {
                &self.label
            }
            async fn run(&self, body: &str, args: Vec<Value>) -> Result<Value, String> {
                self.js(body, args).await
            }
            async fn press(&self, name: &str) {
                self.click_button(name).await
            }
        }
    };
}

page_by_delegation!(Chrome);
page_by_delegation!(Window<'_>);

/// `window.veche.state()`.
pub async fn state(p: &impl Page) -> Result<Value, String> {
    p.run(STATE_JS, vec![]).await
}

/// The participant named `name` in `p`'s state.
pub async fn person(p: &impl Page, name: &str) -> Result<Value, String> {
    let s = state(p).await?;
    s["participants"]
        .as_array()
        .and_then(|ps| ps.iter().find(|x| x["display_name"] == name))
        .cloned()
        .ok_or_else(|| format!("{}: no participant {name} in state {s}", p.who()))
}

/// Waits until `p` lists `name` and returns their participant id.
pub async fn id_of(p: &impl Page, name: &str) -> String {
    wait_for(&format!("{} lists {name}", p.who()), secs(30), async || {
        let x = person(p, name).await?;
        x["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no id in {x}"))
    })
    .await
}

/// Waits until `p` shows `name` publishing a track of `source` and
/// returns its id.
pub async fn published_track(p: &impl Page, name: &str, source: &str) -> String {
    let what = format!("{} sees {name} publishing {source}", p.who());
    wait_for(&what, secs(30), async || {
        let x = person(p, name).await?;
        x["tracks"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["source"] == source))
            .and_then(|t| t["id"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("{name} at {}: {x}", p.who()))
    })
    .await
}

/// Frames decoded so far of the video that `p` receives from the stream
/// `stream` (the publisher's participant id: camera), or `None` when it
/// receives no such video.
pub async fn frames_from(p: &impl Page, stream: &str) -> Result<Option<u64>, String> {
    let inbound = parse_inbound(&p.run(INBOUND_JS, vec![]).await?)?;
    Ok(inbound
        .iter()
        .filter(|t| t.kind == "video" && t.stream.as_deref() == Some(stream))
        .map(|t| t.frames_decoded)
        .max())
}

/// Waits until `p` decodes video from `stream` and it keeps coming.
pub async fn assert_decoding(p: &impl Page, stream: &str, what: &str) {
    let first = wait_for(what, secs(30), async || {
        match frames_from(p, stream).await? {
            Some(n) if n > 0 => Ok(n),
            other => Err(format!("frames decoded from {stream}: {other:?}")),
        }
    })
    .await;
    wait_for(
        &format!("{what} (and keeps coming)"),
        secs(30),
        async || match frames_from(p, stream).await? {
            Some(n) if n > first + 5 => Ok(()),
            other => Err(format!(
                "frames decoded from {stream}: {other:?}, first {first}"
            )),
        },
    )
    .await;
}

/// Polls the frames `p` decodes from `stream` until they have not risen
/// for a second; returns how long after `since` they last rose (zero if
/// not at all). Panics if they still rise after `budget`.
pub async fn frames_stop(
    p: &impl Page,
    stream: &str,
    since: Instant,
    budget: Duration,
) -> Duration {
    let quiet = secs(1);
    let mut last = frames_from(p, stream)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or(0);
    let mut last_rise = since;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = frames_from(p, stream)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or(0);
        let at = Instant::now();
        if now > last {
            last = now;
            last_rise = at;
        }
        if at.duration_since(last_rise) >= quiet {
            return last_rise.duration_since(since);
        }
        assert!(
            at.duration_since(since) < budget + quiet,
            "{} still decodes video from {stream} {:?} after the action ({last} frames)",
            p.who(),
            at.duration_since(since)
        );
    }
}

/// Asserts that `p` decodes no new frame from `stream` for `during`.
pub async fn assert_not_decoding(p: &impl Page, stream: &str, during: Duration, what: &str) {
    let before = frames_from(p, stream)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or(0);
    let t0 = Instant::now();
    while t0.elapsed() < during {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = frames_from(p, stream)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or(0);
        assert!(
            now <= before,
            "{what}: {} decoded {} new frames from {stream} within {:?}",
            p.who(),
            now - before,
            t0.elapsed()
        );
    }
}

/// The text of every `role="alert"` element on the page.
pub async fn alerts(p: &impl Page) -> Result<Vec<String>, String> {
    let v = p
        .run(
            "return Array.from(document.querySelectorAll('[role=\"alert\"]'))\
               .map((e) => __norm(e.textContent)).filter((t) => t);",
            vec![],
        )
        .await?;
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// Waits until an alert on `p` says `text`.
pub async fn assert_alert(p: &impl Page, text: &str) {
    wait_for(
        &format!("{} shows an alert {text:?}", p.who()),
        secs(10),
        async || {
            let all = alerts(p).await?;
            if all.iter().any(|a| a.contains(text)) {
                Ok(())
            } else {
                Err(format!("alerts: {all:?}"))
            }
        },
    )
    .await;
}

/// The page's visible text.
pub async fn page_text(p: &impl Page) -> Result<String, String> {
    let v = p
        .run(
            "return document.body ? document.body.innerText : '';",
            vec![],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// Waits until `p`'s page says `text`.
pub async fn assert_page_says(p: &impl Page, text: &str) {
    wait_for(
        &format!("{}'s page says {text:?}", p.who()),
        secs(15),
        async || {
            let t = page_text(p).await?;
            if t.contains(text) {
                Ok(())
            } else {
                Err(format!("page text: {t:?}"))
            }
        },
    )
    .await;
}

/// Whether `p` has a visible element matching `selector` named `name`.
pub async fn has_control(p: &impl Page, selector: &str, name: &str) -> Result<bool, String> {
    let v = p
        .run(
            "const el = __byName(arguments[0], arguments[1]); return !!el && __visible(el);",
            vec![json!(selector), json!(name)],
        )
        .await?;
    Ok(v.as_bool() == Some(true))
}

/// The names among `names` in the order `p`'s participant list shows
/// their entries (an entry counts for the name it contains).
pub async fn list_order(p: &impl Page, names: &[&str]) -> Result<Vec<String>, String> {
    let v = p.run(PARTICIPANT_ENTRIES_JS, vec![]).await?;
    let entries: Vec<String> = serde_json::from_value(v).map_err(|e| e.to_string())?;
    Ok(entries
        .iter()
        .filter_map(|e| {
            names
                .iter()
                .find(|n| e.contains(**n))
                .map(|n| n.to_string())
        })
        .collect())
}

/// Opens `room` in `chrome` as its host: the owner key goes where the
/// home page keeps an anonymous creator's key (localStorage
/// `veche.ownerKey.{slug}`), then the room's link.
pub async fn open_as_host(chrome: &Chrome, base: &str, slug: &str, owner_key: &str, query: &str) {
    chrome.keep_owner_key(base, slug, owner_key).await;
    chrome.goto(&format!("{base}/r/{slug}?{query}")).await;
}

/// Brings Alice (the host, in `host`), then Bob and Carol into the room
/// `slug`, straight past the pre-join screen, each link's query ending in
/// the matching `extra` ("&region=r2", or ""). Returns once the page
/// of each has been opened, not once they are in.
pub async fn seat_three(
    (host, bob, carol): (&Chrome, &Window<'_>, &Window<'_>),
    base: &str,
    slug: &str,
    owner_key: &str,
    extra: [&str; 3],
) {
    let query = |name: &str, extra: &str| format!("name={name}&skipPrejoin=1{extra}");
    open_as_host(host, base, slug, owner_key, &query("Alice", extra[0])).await;
    bob.goto(&format!("{base}/r/{slug}?{}", query("Bob", extra[1])))
        .await;
    carol
        .goto(&format!("{base}/r/{slug}?{}", query("Carol", extra[2])))
        .await;
}

/// Clicks the control matching `selector` named `name` in `chrome` (a real
/// WebDriver click), waiting up to 10 s for it.
pub async fn click_named(chrome: &Chrome, selector: &str, name: &str) {
    let el = chrome.find_by_name(selector, name).await;
    chrome
        .click(&el)
        .await
        .unwrap_or_else(|e| panic!("{}: clicking {name:?}: {e}", chrome.label));
}

/// Opens "More actions for {target}" and clicks `item` in it ("Turn off
/// Bob's camera"). Returns the instant just before the item's click.
pub async fn menu_action(chrome: &Chrome, target: &str, item: &str) -> Instant {
    let el = menu_item(chrome, target, item).await;
    let t0 = Instant::now();
    chrome
        .click(&el)
        .await
        .unwrap_or_else(|e| panic!("{}: clicking {item:?}: {e}", chrome.label));
    t0
}

/// Opens "More actions for {target}" and returns its item `item`, not
/// clicked yet (to read something right before the click).
pub async fn menu_item(chrome: &Chrome, target: &str, item: &str) -> WebElement {
    show_participants(chrome).await;
    click_named(chrome, CLICKABLE, &format!("More actions for {target}")).await;
    chrome.find_by_name(CLICKABLE, item).await
}

/// The first of `names` that is a visible control on `chrome` now.
pub async fn first_present(chrome: &Chrome, names: &[String]) -> Option<String> {
    for n in names {
        if has_control(chrome, CLICKABLE, n).await == Ok(true) {
            return Some(n.clone());
        }
    }
    None
}

/// Sets the switch `name` ("Lobby", "Speak mode") in the "Meeting
/// settings" dialog to `on`, then closes the dialog if it has a "Close"
/// button. Returns the instant just before the switch's click.
pub async fn meeting_setting(chrome: &Chrome, name: &str, on: bool) -> Instant {
    show_participants(chrome).await;
    chrome.click_button("Meeting settings").await;
    let el = chrome.find_by_name(SWITCH, name).await;
    let checked = chrome
        .js(
            "const el = __byName(arguments[0], arguments[1]); \
             return el.type === 'checkbox' ? el.checked : el.getAttribute('aria-checked') === 'true';",
            vec![json!(SWITCH), json!(name)],
        )
        .await
        .unwrap_or_else(|e| panic!("reading the {name:?} switch: {e}"));
    let t0 = Instant::now();
    if checked.as_bool() != Some(on) {
        chrome
            .click(&el)
            .await
            .unwrap_or_else(|e| panic!("{}: clicking the {name:?} switch: {e}", chrome.label));
    }
    for close in ["Close meeting settings", "Close", "Done"] {
        if has_control(chrome, CLICKABLE, close).await == Ok(true) {
            click_named(chrome, CLICKABLE, close).await;
            break;
        }
    }
    t0
}

/// Makes `p` send its camera whatever the page decided after a
/// moderator's mute: puts a fresh camera track on the video sender, as a
/// modified client would. Returns the sender's track label.
pub async fn force_camera(p: &impl Page) -> String {
    let v = p
        .run(
            r#"
            const pc = window.veche.pc();
            // The camera's transceiver: the one video sender the page
            // published (it may have taken the track off after the mute).
            const t = pc.getTransceivers().find((t) => !t.stopped
              && t.receiver.track.kind === 'video'
              && ((t.sender.track && t.sender.track.kind === 'video')
                  || (t.currentDirection || '').includes('send')));
            const sender = t && t.sender;
            if (!sender) throw new Error('no video sender left on the connection');
            const stream = await navigator.mediaDevices.getUserMedia({ video: true });
            const track = stream.getVideoTracks()[0];
            track.enabled = true;
            await sender.replaceTrack(track);
            return track.label;
            "#,
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("{}: forcing the camera: {e}", p.who()));
    v.as_str().unwrap_or_default().to_owned()
}

/// Forces `p`'s camera out ([`force_camera`]) and waits until its page
/// has sent more than 50 further video packets: the scripted client
/// really sends, so whatever does not arrive was withheld. `what` names
/// the wait ("Bob's page sends video anyway").
pub async fn send_camera_anyway(p: &impl Page, what: &str) {
    let label = force_camera(p).await;
    let sent = video_packets_sent(p).await.unwrap();
    wait_for(what, secs(10), async || {
        let now = video_packets_sent(p).await?;
        if now > sent + 50 {
            Ok(())
        } else {
            Err(format!("packetsSent {sent} then {now} (camera {label})"))
        }
    })
    .await;
}

/// Waits until `p` shows the participant `name` in a state for which
/// `holds` is true; `what` says which ("Carol's hand up").
pub async fn until_person(p: &impl Page, name: &str, what: &str, holds: impl Fn(&Value) -> bool) {
    wait_for(&format!("{} sees {what}", p.who()), secs(10), async || {
        let x = person(p, name).await?;
        if holds(&x) {
            Ok(())
        } else {
            Err(x.to_string())
        }
    })
    .await;
}

/// RTP packets `p` has sent on video so far (getStats `outbound-rtp`).
pub async fn video_packets_sent(p: &impl Page) -> Result<u64, String> {
    let v = p
        .run(
            "let n = 0; (await window.veche.pc().getStats()).forEach((r) => { \
               if (r.type === 'outbound-rtp' && (r.kind || r.mediaType) === 'video') n += r.packetsSent || 0; \
             }); return n;",
            vec![],
        )
        .await?;
    v.as_u64().ok_or_else(|| format!("packetsSent = {v}"))
}

/// Clicks the visible control named `name` on `p` from a script (for a
/// window of a shared Chromium, whose WebDriver clicks reach buttons
/// only), waiting up to 10 s for it to appear.
pub async fn script_click(p: &impl Page, name: &str) {
    wait_for(
        &format!("{} has a control named {name:?} to click", p.who()),
        secs(10),
        async || {
            let v = p
                .run(
                    "const el = __byName(arguments[0], arguments[1]); \
                     if (!el || !__visible(el)) return false; el.click(); return true;",
                    vec![json!(CLICKABLE), json!(name)],
                )
                .await?;
            if v.as_bool() == Some(true) {
                Ok(())
            } else {
                Err("not there (or hidden)".to_owned())
            }
        },
    )
    .await;
}

/// Waits until `p` is connected to media node `node` (`nodeId` in its
/// state).
pub async fn on_node(p: &impl Page, node: u64, timeout: Duration) {
    wait_for(
        &format!("{} is connected to media node {node}", p.who()),
        timeout,
        async || {
            let s = state(p).await?;
            if s["connected"] == true && s["nodeId"].as_u64() == Some(node) {
                Ok(())
            } else {
                Err(format!(
                    "connected {} nodeId {}",
                    s["connected"], s["nodeId"]
                ))
            }
        },
    )
    .await;
}

/// Opens `p`'s participants panel (where the moderator controls, the
/// lobby list and each entry's "More actions" menu are) unless it is open.
pub async fn show_participants(p: &impl Page) {
    let open = p
        .run(
            "const l = __participants(); return !!l && __visible(l);",
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("{}: looking for the participants list: {e}", p.who()));
    if open.as_bool() != Some(true) {
        p.press("Participants").await;
    }
    wait_for(
        &format!("{}'s participants list is visible", p.who()),
        secs(10),
        async || {
            let v = p
                .run(
                    "const l = __participants(); return !!l && __visible(l);",
                    vec![],
                )
                .await?;
            if v.as_bool() == Some(true) {
                Ok(())
            } else {
                Err("hidden".to_owned())
            }
        },
    )
    .await;
}

/// Turns the device button `name` ("Camera", "Microphone") on if it is
/// off (`aria-pressed="false"`), as the participant would.
pub async fn turn_on(p: &impl Page, name: &str) {
    let pressed = p
        .run(
            "const b = __byName('button', arguments[0]); \
             if (!b) throw new Error('no button ' + arguments[0]); \
             return b.getAttribute('aria-pressed');",
            vec![json!(name)],
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.who()));
    if pressed.as_str() == Some("false") {
        p.press(name).await;
    }
}
