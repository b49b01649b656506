//! Headless Chromium under chromedriver: starting and ending a browser,
//! and running a script in its page. What a page shows and receives is
//! read in `browser/page.rs`; clicking and typing as a user would is in
//! `browser/actions.rs`.

use super::*;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod actions;
mod page;

pub use page::{
    assert_chat_shows, assert_video_flows, dump_on_failure, parse_inbound, InboundTrack,
    INBOUND_JS, PARTICIPANT_ENTRIES_JS, STATE_JS,
};

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

    /// Like [`Chrome::start`], for a server that is not on 127.0.0.1: the
    /// page at `origin` counts as a secure context (or it gets no camera or
    /// microphone), and with `net`, Chromium runs inside that namespace
    /// (chromedriver stays here and drives it over a pipe, so the browser
    /// stays reachable whatever happens to the namespace's network).
    /// Chromium there accepts any certificate, for a TURN server's test
    /// certificate on `turns:`.
    pub async fn start_in(
        label: &str,
        net: Option<&super::netns::ChildNet>,
        origin: &str,
    ) -> Chrome {
        let mut last_err = String::new();
        for _attempt in 0..3 {
            match Chrome::try_start_in(label, net, Some(origin)).await {
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
        Chrome::try_start_in(label, None, None).await
    }

    async fn try_start_in(
        label: &str,
        net: Option<&super::netns::ChildNet>,
        origin: Option<&str>,
    ) -> Result<Chrome, String> {
        let profile = TempDir::scratch("chrome");
        let port = free_port();
        // In a namespace, Chromium starts through a wrapper that enters it,
        // and talks to chromedriver (here) over a pipe: a DevTools TCP port
        // would be on the namespace's own loopback.
        let binary = match net {
            None => CHROMIUM.to_owned(),
            Some(net) => {
                let wrapper = profile.path().join("chromium-in-netns");
                std::fs::write(
                    &wrapper,
                    format!(
                        "#!/bin/sh\nexec nsenter -t {} -n {CHROMIUM} \"$@\"\n",
                        net.pid
                    ),
                )
                .map_err(|e| format!("cannot write the wrapper: {e}"))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| format!("cannot make the wrapper executable: {e}"))?;
                wrapper.display().to_string()
            }
        };
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

        let mut args = vec![
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
        if net.is_some() {
            args.push("--remote-debugging-pipe".into());
            args.push("--ignore-certificate-errors".into());
        }
        if let Some(origin) = origin {
            args.push(format!(
                "--unsafely-treat-insecure-origin-as-secure={origin}"
            ));
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": binary, "args": args },
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
