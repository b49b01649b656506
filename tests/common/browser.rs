//! Headless Chromium under chromedriver, and checks of what a page shows and receives.

use super::*;
use futures::FutureExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Functions that the browser helpers share, prepended to their scripts.
///
/// `__name(el)` approximates the accessible name: `aria-label`, then
/// `aria-labelledby`, then `<label>`s, then the text of a button, then
/// `title` and `placeholder`. `__byName(selector, name)` finds the element
/// matching `selector` whose accessible name (or, for buttons, trimmed text)
/// is `name`, preferring visible ones.
const JS_PRELUDE: &str = r#"
const __norm = (s) => (s || '').replace(/\s+/g, ' ').trim();
const __names = (el) => {
  const out = [];
  const al = el.getAttribute('aria-label');
  if (al) out.push(al);
  const lb = el.getAttribute('aria-labelledby');
  if (lb) out.push(lb.split(/\s+/).map((id) => {
    const e = document.getElementById(id);
    return e ? e.textContent : '';
  }).join(' '));
  if (el.labels) for (const l of el.labels) out.push(l.textContent);
  if (el.tagName === 'BUTTON' || el.getAttribute('role') === 'button') out.push(el.textContent);
  if (el.tagName === 'INPUT' && (el.type === 'button' || el.type === 'submit')) out.push(el.value);
  if (el.title) out.push(el.title);
  if (el.placeholder) out.push(el.placeholder);
  return out.map(__norm).filter((s) => s);
};
const __visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
const __byName = (selector, name) => {
  const all = Array.from(document.querySelectorAll(selector)).filter((el) => __names(el).includes(name));
  return all.find(__visible) || all[0] || null;
};
const __participants = () => __byName('ul, ol, [role="list"]', 'Participants')
  || __byName('[aria-label], [aria-labelledby]', 'Participants');
const __participantEntries = () => {
  const list = __participants();
  if (!list) return null;
  let items = list.querySelectorAll(':scope > li, :scope > [role="listitem"]');
  if (!items.length) items = list.querySelectorAll('li, [role="listitem"]');
  return Array.from(items).map((li) => __norm(li.textContent));
};
const __chatLog = () => {
  const logs = Array.from(document.querySelectorAll('[role="log"]'));
  return logs.find((l) => __names(l).some((n) => /chat/i.test(n))) || logs[0]
    || __byName('[aria-label], [aria-labelledby]', 'Chat messages')
    || __byName('[aria-label], [aria-labelledby]', 'Chat');
};
"#;

/// Media statistics of one received track, from `getStats()`.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundTrack {
    /// `audio` or `video`.
    pub kind: String,
    /// The receiving `MediaStreamTrack.id` (`trackIdentifier`). Chrome takes
    /// it from the SDP's `a=msid` only for transceivers the remote side
    /// created; on one the browser created in its own offer it is a random
    /// UUID. So identify senders by `stream`, not by this.
    pub track: String,
    /// The media section's `mid`.
    pub mid: String,
    /// The sender's stream id: the `a=msid` stream of this `mid` in the
    /// remote description. For camera and microphone the protocol makes it
    /// the publisher's participant id.
    pub stream: Option<String>,
    /// Video frames decoded so far (0 for audio).
    pub frames_decoded: u64,
    /// RTP packets received so far.
    pub packets_received: u64,
}

/// One headless Chromium, driven through its own chromedriver process.
///
/// A separate chromedriver per browser is the simplest isolation: nothing
/// (profile, port, process) is shared between two browsers or two tests.
pub struct Chrome {
    /// The WebDriver session, for commands the helpers do not cover.
    pub driver: WebDriver,
    /// A label for messages, e.g. "Alice".
    pub label: String,
    driver_process: Child,
    /// Set once the session is ended, so Drop does not end it again.
    session_closed: bool,
    // Dropped after the processes are killed (field order).
    _profile: TempDir,
}

impl Chrome {
    /// Starts chromedriver and a headless Chromium with a fake camera and
    /// microphone and a fresh profile, and opens a WebDriver session.
    pub async fn start(label: &str) -> Chrome {
        let mut last_err = String::new();
        // A port found free may be taken before chromedriver binds it.
        for _attempt in 0..3 {
            match Chrome::try_start(label).await {
                Ok(chrome) => return chrome,
                Err(e) => {
                    eprintln!("[harness] starting the browser for {label} failed: {e}");
                    last_err = e;
                }
            }
        }
        panic!("could not start a browser for {label}: {last_err}");
    }

    async fn try_start(label: &str) -> Result<Chrome, String> {
        let profile = TempDir::scratch("chrome");
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that on drop we can end chromedriver
            // and the browser it started, and nothing else.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run chromedriver: {e}"))?;
        let mut guard = DriverGuard(Some(driver));
        let driver_url = format!("http://127.0.0.1:{port}");

        // Wait until chromedriver answers /status.
        let start = Instant::now();
        loop {
            if let Some(status) = guard.0.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("chromedriver exited: {status}"));
            }
            if let Ok(resp) = http().get(format!("{driver_url}/status")).send().await {
                if resp.status().is_success() {
                    break;
                }
            }
            if start.elapsed() > secs(20) {
                return Err("chromedriver did not answer /status within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            // Three fake cameras and microphones, so device switching can be
            // tested. Chromium's second fake camera (fake_device_1) emits a
            // pixel format its WebRTC encoder never encodes (checked with two
            // in-page peer connections and no server), so tests switch to
            // fake_device_2.
            "--use-fake-device-for-media-stream=device-count=3".into(),
            "--use-fake-ui-for-media-stream".into(),
            "--allow-loopback-in-peer-connection".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-proxy-server".into(),
            "--autoplay-policy=no-user-gesture-required".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.path().display()),
            "--window-size=1280,800".into(),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let driver = WebDriver::new_session(&driver_url, caps)
            .await
            .map_err(|e| format!("WebDriver session failed: {e}"))?;
        // The Chrome value owns the process from here on.
        let driver_process = guard.0.take().expect("the guard still holds chromedriver");
        Ok(Chrome {
            driver,
            label: label.to_owned(),
            driver_process,
            session_closed: false,
            _profile: profile,
        })
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.driver
            .post("/url", json!({ "url": url }))
            .await
            .unwrap_or_else(|e| panic!("{}: navigating to {url} failed: {e}", self.label));
    }

    /// The page's current URL.
    pub async fn current_url(&self) -> Result<String, String> {
        let v = self
            .driver
            .command(reqwest::Method::GET, "/url", None)
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Runs `body` as the body of an async function in the page (so it may
    /// `await` and must `return` its result), with the helper prelude in
    /// scope and `args` as `arguments`. A thrown error becomes `Err`.
    pub async fn js(&self, body: &str, args: Vec<Value>) -> Result<Value, String> {
        let script = format!(
            "{JS_PRELUDE}\nconst __args = arguments;\nreturn (async function () {{ {body} \n}}).apply(null, __args);"
        );
        self.driver
            .post("/execute/sync", json!({ "script": script, "args": args }))
            .await
            .map_err(|e| format!("script failed in {}'s browser: {e}", self.label))
    }

    /// `window.veche.state()`: `{participantId, participants, connected}`.
    pub async fn state(&self) -> Result<Value, String> {
        self.js(
            "if (!window.veche || typeof window.veche.state !== 'function') \
               throw new Error('window.veche.state is not defined yet'); \
             return JSON.parse(JSON.stringify(window.veche.state()));",
            vec![],
        )
        .await
    }

    /// The participant in `window.veche.state()` whose `display_name` is
    /// `name`.
    pub async fn participant_state(&self, name: &str) -> Result<Value, String> {
        let state = self.state().await?;
        state["participants"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["display_name"] == name))
            .cloned()
            .ok_or_else(|| format!("no participant named {name} in state {state}"))
    }

    /// Inbound RTP streams from `window.veche.pc().getStats()`.
    pub async fn inbound_tracks(&self) -> Result<Vec<InboundTrack>, String> {
        let v = self
            .js(
                r#"
                if (!window.veche || typeof window.veche.pc !== 'function')
                  throw new Error('window.veche.pc is not defined yet');
                const pc = window.veche.pc();
                if (!pc) return [];
                // mid -> msid stream id, per media section of the remote SDP.
                const streamByMid = {};
                const sdp = (pc.remoteDescription && pc.remoteDescription.sdp) || '';
                for (const section of sdp.split(/\r?\nm=/).slice(1)) {
                  const mid = /^a=mid:(\S+)/m.exec(section);
                  const msid = /^a=msid:(\S+)/m.exec(section);
                  if (mid && msid) streamByMid[mid[1]] = msid[1];
                }
                const out = [];
                (await pc.getStats()).forEach((r) => {
                  if (r.type !== 'inbound-rtp') return;
                  out.push({
                    kind: r.kind || r.mediaType || '',
                    track: r.trackIdentifier || r.id,
                    mid: r.mid || '',
                    stream: streamByMid[r.mid] || null,
                    framesDecoded: r.framesDecoded || 0,
                    packetsReceived: r.packetsReceived || 0,
                  });
                });
                return out;
                "#,
                vec![],
            )
            .await?;
        let list = v
            .as_array()
            .ok_or_else(|| format!("getStats helper returned {v}"))?;
        Ok(list
            .iter()
            .map(|r| InboundTrack {
                kind: r["kind"].as_str().unwrap_or_default().to_owned(),
                track: r["track"].as_str().unwrap_or_default().to_owned(),
                mid: r["mid"].as_str().unwrap_or_default().to_owned(),
                stream: r["stream"].as_str().map(str::to_owned),
                frames_decoded: r["framesDecoded"].as_u64().unwrap_or(0),
                packets_received: r["packetsReceived"].as_u64().unwrap_or(0),
            })
            .collect())
    }

    /// `framesDecoded` of every received video track, keyed by
    /// `trackIdentifier`.
    pub async fn frames_decoded_per_track(&self) -> Result<BTreeMap<String, u64>, String> {
        Ok(self
            .inbound_tracks()
            .await?
            .into_iter()
            .filter(|t| t.kind == "video")
            .map(|t| (t.track, t.frames_decoded))
            .collect())
    }

    /// `packetsReceived` of every received audio track, keyed by
    /// `trackIdentifier`.
    pub async fn audio_packets_per_track(&self) -> Result<BTreeMap<String, u64>, String> {
        Ok(self
            .inbound_tracks()
            .await?
            .into_iter()
            .filter(|t| t.kind == "audio")
            .map(|t| (t.track, t.packets_received))
            .collect())
    }

    /// The text of each entry of the list labelled "Participants".
    pub async fn participant_entries(&self) -> Result<Vec<String>, String> {
        let v = self
            .js(
                "const e = __participantEntries(); \
                 if (e === null) throw new Error('no element labelled \"Participants\"'); \
                 return e;",
                vec![],
            )
            .await?;
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    /// The text content of the chat log (the element with `role="log"`).
    pub async fn chat_log_text(&self) -> Result<String, String> {
        let v = self
            .js(
                "const log = __chatLog(); \
                 if (!log) throw new Error('no chat log (role=log) on the page'); \
                 return log.textContent;",
                vec![],
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// How many elements inside the chat log match the CSS `selector`.
    pub async fn chat_log_count(&self, selector: &str) -> Result<u64, String> {
        let v = self
            .js(
                "const log = __chatLog(); \
                 if (!log) throw new Error('no chat log (role=log) on the page'); \
                 return log.querySelectorAll(arguments[0]).length;",
                vec![json!(selector)],
            )
            .await?;
        v.as_u64().ok_or_else(|| format!("count was {v}"))
    }

    /// How many elements in the page match the CSS `selector`.
    pub async fn count(&self, selector: &str) -> Result<u64, String> {
        let v = self
            .js(
                "return document.querySelectorAll(arguments[0]).length;",
                vec![json!(selector)],
            )
            .await?;
        v.as_u64().ok_or_else(|| format!("count was {v}"))
    }

    /// Waits up to 10 s for an element matching `selector` with accessible
    /// name `name` to appear, and returns it as a WebDriver element.
    pub async fn find_by_name(&self, selector: &str, name: &str) -> WebElement {
        let what = format!("{}'s page has {selector} named {name:?}", self.label);
        let found = wait_for(&what, secs(10), async || {
            let v = self
                .js(
                    "return __byName(arguments[0], arguments[1]);",
                    vec![json!(selector), json!(name)],
                )
                .await?;
            match v.get(ELEMENT_KEY).and_then(Value::as_str) {
                Some(id) => Ok(WebElement(id.to_owned())),
                None => Err(format!("no such element yet (script returned {v})")),
            }
        })
        .await;
        found
    }

    /// Clicks `element` as a user would: WebDriver scrolls it into view and
    /// refuses if it is hidden, covered or disabled.
    pub async fn click(&self, element: &WebElement) -> Result<(), String> {
        self.driver
            .post(&format!("/element/{}/click", element.0), json!({}))
            .await
            .map(drop)
    }

    /// Types `text` into `element` with real key events.
    pub async fn type_into(&self, element: &WebElement, text: &str) -> Result<(), String> {
        self.driver
            .post(
                &format!("/element/{}/value", element.0),
                json!({ "text": text }),
            )
            .await
            .map(drop)
    }

    /// Clicks the button whose `aria-label` or text is `name`, the way a
    /// user would (a WebDriver click, so it must be visible and enabled).
    pub async fn click_button(&self, name: &str) {
        let button = self
            .find_by_name(
                "button, [role=\"button\"], input[type=\"button\"], input[type=\"submit\"]",
                name,
            )
            .await;
        self.click(&button)
            .await
            .unwrap_or_else(|e| panic!("{}: clicking {name:?} failed: {e}", self.label));
    }

    /// Types `text` into the textbox named "Chat message" and clicks "Send".
    /// If the chat sits in a closed panel, first clicks "Chat" to open it,
    /// as a user would.
    pub async fn send_chat(&self, text: &str) {
        const TEXTBOX: &str = "input, textarea, [contenteditable=\"true\"], [role=\"textbox\"]";
        let visible = async || {
            let v = self
                .js(
                    "const el = __byName(arguments[0], arguments[1]); \
                     return !!el && __visible(el);",
                    vec![json!(TEXTBOX), json!("Chat message")],
                )
                .await?;
            match v.as_bool() {
                Some(true) => Ok(()),
                _ => Err("the \"Chat message\" textbox is not visible".to_owned()),
            }
        };
        if visible().await.is_err() {
            self.click_button("Chat").await;
            let what = format!(
                "{}'s chat textbox is visible after clicking Chat",
                self.label
            );
            wait_for(&what, secs(10), visible).await;
        }
        let input = self.find_by_name(TEXTBOX, "Chat message").await;
        self.type_into(&input, text)
            .await
            .unwrap_or_else(|e| panic!("{}: typing into the chat failed: {e}", self.label));
        self.click_button("Send").await;
    }

    /// The browser's console messages since the last call, via chromedriver's
    /// log endpoint. Empty if that is unavailable.
    pub async fn console_log(&self) -> Vec<String> {
        let Ok(v) = self
            .driver
            .post("/se/log", json!({ "type": "browser" }))
            .await
        else {
            return vec![];
        };
        v.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["level"].as_str().unwrap_or("?"),
                            e["message"].as_str().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Prints what this browser shows, for a failing test: URL, the app's
    /// state, participants, inbound media and the console.
    pub async fn dump(&self) {
        fn show<T: std::fmt::Debug>(r: Result<T, String>) -> String {
            r.map_or_else(|e| format!("(unavailable: {e})"), |v| format!("{v:?}"))
        }
        let label = &self.label;
        eprintln!("----- {label}'s browser -----");
        eprintln!("url: {}", show(self.current_url().await));
        let state = self.state().await.map(|v| v.to_string());
        eprintln!("window.veche.state(): {}", show(state));
        eprintln!(
            "participants list: {}",
            show(self.participant_entries().await)
        );
        eprintln!("inbound media: {}", show(self.inbound_tracks().await));
        eprintln!("chat log: {}", show(self.chat_log_text().await));
        let body = self
            .js(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
            .map(|v| v.as_str().unwrap_or_default().to_owned());
        eprintln!("page text: {}", show(body));
        for line in self.console_log().await {
            eprintln!("console: {line}");
        }
    }

    /// Ends the WebDriver session (which closes Chromium), then chromedriver.
    pub async fn close(mut self) {
        let ended = self.driver.command(reqwest::Method::DELETE, "", None).await;
        self.session_closed = ended.is_ok();
        // Drop ends chromedriver and anything left in its process group.
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // After a panic there was no `close()`: ask chromedriver to end the
        // session, so it shuts Chromium down in order, before ending it.
        if !self.session_closed {
            delete_session_blocking(&self.driver.session_url);
        }
        end_process_group(&mut self.driver_process);
    }
}

/// Ends chromedriver and its process group if `try_start` fails midway.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            end_process_group(&mut child);
        }
    }
}

/// SIGTERM to the group `child` leads, a moment's grace, then SIGKILL.
/// Chromium's helper processes stay in chromedriver's group, so this ends
/// them all; the test started every one of them.
fn end_process_group(child: &mut Child) {
    let pid = child.id();
    send_signal(pid, "TERM", true);
    if wait_exit(child, Duration::from_secs(3)).is_none() {
        send_signal(pid, "KILL", true);
        let _ = child.kill();
        let _ = child.wait();
    } else {
        // chromedriver is gone; make sure nothing of Chromium outlives it.
        send_signal(pid, "KILL", true);
    }
}

/// Waits until `b` has decoded video from `n` remote tracks, then until all
/// of them decode more frames, so a frozen picture cannot pass.
pub async fn assert_video_flows(b: &Chrome, n: usize, timeout: Duration) {
    let first = wait_for(
        &format!("{} decodes video from {n} others", b.label),
        timeout,
        async || {
            let frames = b.frames_decoded_per_track().await?;
            let live: Vec<(String, u64)> = frames.into_iter().filter(|(_, f)| *f > 0).collect();
            if live.len() >= n {
                Ok(live)
            } else {
                Err(format!("framesDecoded per video track = {live:?}"))
            }
        },
    )
    .await;
    wait_for(
        &format!("{}'s video keeps being decoded", b.label),
        timeout,
        async || {
            let now = b.frames_decoded_per_track().await?;
            let stalled: Vec<&String> = first
                .iter()
                .filter(|(mid, f)| now.get(mid).is_none_or(|g| g <= f))
                .map(|(mid, _)| mid)
                .collect();
            if stalled.is_empty() {
                Ok(())
            } else {
                Err(format!("no new frames on {stalled:?}; now {now:?}"))
            }
        },
    )
    .await;
}

/// Waits until `b`'s chat log shows `text` (as text).
pub async fn assert_chat_shows(b: &Chrome, text: &str, timeout: Duration) {
    wait_for(
        &format!("{}'s chat log shows {text:?}", b.label),
        timeout,
        async || {
            let log = b.chat_log_text().await?;
            if log.contains(text) {
                Ok(())
            } else {
                Err(format!("chat log text = {log:?}"))
            }
        },
    )
    .await;
}

/// Runs `scenario`; if it panics, prints what each browser shows (state,
/// participants, media, console) before passing the panic on.
pub async fn dump_on_failure<F: Future>(browsers: &[&Chrome], scenario: F) -> F::Output {
    match std::panic::AssertUnwindSafe(scenario).catch_unwind().await {
        Ok(out) => out,
        Err(panic) => {
            for b in browsers {
                let _ = tokio::time::timeout(secs(20), b.dump()).await;
            }
            std::panic::resume_unwind(panic)
        }
    }
}
