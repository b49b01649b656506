//! The shared harness of Veche's integration tests.
//!
//! Everything here drives real things: the `veche` binary as a child process,
//! real headless Chromium through chromedriver, real HTTP and WebSocket
//! clients. Nothing is mocked, so a passing test means a user would see the
//! same.
//!
//! Rules the helpers follow, so that tests can too:
//!
//! - **No bare sleeps.** [`wait_for`] polls a probe and, on timeout, panics
//!   with what was awaited *and* what the probe last saw.
//! - **Loopback only.** Every address is 127.0.0.1, so the tests work inside
//!   the loopback-only network namespace `scripts/test.sh` creates.
//! - **Cleanup on drop.** Servers, browsers and temporary directories go away
//!   when the test ends, pass or fail. A failing test keeps its server data
//!   directories and prints where they are.
//!
//! Each test binary uses a different subset of this module.
#![allow(dead_code)]
pub mod cluster;

use futures::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// How long `veche serve` may take to print its URL.
pub const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `veche` may take to exit after SIGTERM.
pub const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long chromedriver plus Chromium may take to open a session.
pub const BROWSER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// The interval between two probes of [`wait_for`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(150);
/// The Chromium binary, as Debian's `chromium` package installs it.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Shorthand for `Duration::from_secs`.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------

/// Polls `probe` until it returns `Ok`, and returns that value.
///
/// `probe` returns `Err(observed)` while the condition does not hold yet,
/// where `observed` describes what it saw (for example "framesDecoded per
/// track = {..}"). Errors of the browser or the network are "not yet" too:
/// the page may still be loading. If `timeout` passes, this panics with
/// `what` and the last `observed`, which is usually enough to tell why.
///
/// `what` should read as the end of "timed out waiting until ...".
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        // A probe that hangs (a stuck WebDriver command) must not outlive the
        // deadline, so each attempt gets only the time that is left.
        let left = timeout.saturating_sub(start.elapsed()).max(POLL_INTERVAL);
        let last = match tokio::time::timeout(left, probe()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(observed)) => observed,
            Err(_) => format!("the probe itself did not finish within {left:?}"),
        };
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting until {what}; last observed: {last}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

// ---------------------------------------------------------------------------
// Processes: the one harness, `veche-harness`
// ---------------------------------------------------------------------------

// Not every test binary uses both.
#[allow(unused_imports)]
pub use veche_harness::{now_ms, TempDir};
use veche_harness::{Launch, Process, Ready};

/// The `veche` binary under test.
pub const VECHE: &str = env!("CARGO_BIN_EXE_veche");

/// Sends `signal` (e.g. "TERM") to one process, or with `group` to the
/// process group it leads (chromedriver and its Chromium). Uses the `kill`
/// command so the tests need no libc bindings.
fn send_signal(pid: u32, signal: &str, group: bool) -> bool {
    let target = if group {
        format!("-{pid}")
    } else {
        pid.to_string()
    };
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Waits up to `timeout` for `child` to exit.
fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => return None,
        }
    }
}

/// Runs the `veche` binary with `args` for a command that works on local
/// files only (`cluster ca`, `cluster cert`), asserts it succeeded, and
/// returns its stdout.
pub fn veche_ok(args: &[&std::ffi::OsStr]) -> String {
    veche_harness::certs::run_ok(Path::new(VECHE), args).unwrap_or_else(|e| panic!("{e}"))
}

/// A free TCP port on 127.0.0.1 (see [`veche_harness::free_port`]).
/// Another process could take it in between; callers that bind it retry.
pub fn free_port() -> u16 {
    veche_harness::free_port(std::net::Ipv4Addr::LOCALHOST).unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// A running `veche serve` on 127.0.0.1 with its own data directory.
///
/// Its stdout and stderr are copied to the test's stderr, prefixed with
/// `[veche#N]` where N counts restarts. Dropping it kills the process.
pub struct Server {
    proc: Process,
    base: String,
    data_dir: PathBuf,
    // Dropped last, so the directory outlives the process.
    _owned_dir: Option<TempDir>,
}

impl Server {
    /// Starts a server on a fresh temporary data directory.
    pub fn start() -> Server {
        let dir = TempDir::new("data");
        let mut server = Server::start_with_data_dir(dir.path());
        server._owned_dir = Some(dir);
        server
    }

    /// Starts a server on `data_dir`, which the caller owns.
    pub fn start_with_data_dir(data_dir: &Path) -> Server {
        Server::start_with_args(data_dir, Vec::new())
    }

    /// Starts a server on a fresh data directory with a config file holding
    /// `toml` (written next to the data directory).
    pub fn start_with_config(toml: &str) -> Server {
        let dir = TempDir::new("data");
        let config = dir.path().join("veche.toml");
        std::fs::write(&config, toml).expect("write config");
        let data = dir.path().join("data");
        let mut server =
            Server::start_with_args(&data, vec!["--config".into(), config.into_os_string()]);
        server._owned_dir = Some(dir);
        server
    }

    fn start_with_args(data_dir: &Path, extra_args: Vec<std::ffi::OsString>) -> Server {
        let launch = Launch::new("veche", VECHE)
            .arg("serve")
            .args(extra_args)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .ready(Ready::Url);
        let mut proc = launch.spawn().unwrap_or_else(|e| panic!("{e}"));
        let base = Server::await_url(&mut proc);
        Server {
            proc,
            base,
            data_dir: data_dir.to_owned(),
            _owned_dir: None,
        }
    }

    fn await_url(proc: &mut Process) -> String {
        let base = proc
            .ready_blocking(SERVER_START_TIMEOUT)
            .unwrap_or_else(|e| panic!("veche serve did not come up: {e}"));
        eprintln!(
            "[harness] veche#{} (pid {}) is at {base}",
            proc.starts(),
            proc.pid().unwrap_or(0)
        );
        base
    }

    /// The base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `path` (starting with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    /// Sends SIGTERM and waits up to [`SERVER_STOP_TIMEOUT`] for the process
    /// to exit. Panics if it does not (after killing it), since a server
    /// that ignores SIGTERM would hang every deployment's restart.
    pub fn stop(&mut self) -> ExitStatus {
        assert!(self.proc.is_running(), "the server is not running");
        let pid = self.proc.pid().unwrap_or(0);
        let status = self
            .proc
            .stop_blocking(SERVER_STOP_TIMEOUT)
            .unwrap_or_else(|e| panic!("veche (pid {pid}): {e}"));
        eprintln!(
            "[harness] veche#{} (pid {pid}) exited: {status}",
            self.proc.starts()
        );
        status
    }

    /// Stops the server (as [`Server::stop`]) and starts it again on the same
    /// data directory. The base URL changes, since the port is picked anew.
    /// Returns how the old process exited.
    pub fn restart(&mut self) -> ExitStatus {
        let status = self.stop();
        self.proc.restart().unwrap_or_else(|e| panic!("{e}"));
        self.base = Server::await_url(&mut self.proc);
        status
    }
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// An HTTP response: status and body text.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The Content-Type header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// The body as JSON; panics, showing the body, if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body with status {}, got {e}: {:?}",
                self.status, self.body
            )
        })
    }

    /// Asserts that this is an error reply in the API's one error shape,
    /// `{"code": .., "message": ..}`, with the given code, and returns the
    /// message.
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "wrong status; body: {}", self.body);
        let v = self.json();
        assert_eq!(v["code"], code, "wrong error code in {v}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(!message.trim().is_empty(), "error without a message: {v}");
        message.to_owned()
    }
}

/// An HTTP client that never uses a proxy (a proxy from the environment
/// could not reach 127.0.0.1 inside the test namespace anyway).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(secs(30))
        .build()
        .expect("reqwest client")
}

async fn into_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().await.expect("read response body");
    Reply {
        status,
        content_type,
        body,
    }
}

/// `GET url`.
pub async fn http_get(url: &str) -> Reply {
    let resp = http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    into_reply(resp).await
}

/// `POST url` with a JSON body.
pub async fn http_post_json(url: &str, body: &Value) -> Reply {
    let resp = http()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    into_reply(resp).await
}

/// `POST url` with a JSON body and extra headers (e.g. the load balancer's
/// region header).
pub async fn http_post_json_with_headers(
    url: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = http().post(url).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    into_reply(resp).await
}

/// `POST url` with any body and content type, for malformed-input tests.
pub async fn http_post_raw(url: &str, content_type: &str, body: &str) -> Reply {
    let resp = http()
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    into_reply(resp).await
}

/// `POST /api/rooms {"name": name}`; panics unless it succeeds. Returns the
/// room (`id`, `slug`, `name`, `link`, `created_at_ms`).
pub async fn create_room(base: &str, name: &str) -> Value {
    let reply = http_post_json(&format!("{base}/api/rooms"), &json!({ "name": name })).await;
    assert!(
        (200..300).contains(&reply.status),
        "creating room {name:?} failed with {}: {}",
        reply.status,
        reply.body
    );
    reply.json()
}

/// `POST /api/rooms/{slug}/join {"display_name": ..}`; panics unless it
/// succeeds. Returns `token`, `ws_url`, `participant_id`, `expires_at_ms`,
/// `room`.
pub async fn join(base: &str, slug: &str, display_name: &str) -> Value {
    let reply = http_post_json(
        &format!("{base}/api/rooms/{slug}/join"),
        &json!({ "display_name": display_name }),
    )
    .await;
    assert!(
        (200..300).contains(&reply.status),
        "joining room {slug} as {display_name:?} failed with {}: {}",
        reply.status,
        reply.body
    );
    reply.json()
}

/// The text of a JSON string field; panics, showing the object, if absent.
pub fn str_field<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("expected a string field {field:?} in {v}"))
}

// ---------------------------------------------------------------------------
// Signalling over WebSocket
// ---------------------------------------------------------------------------

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Resolves the `ws_url` of a join response against the server's base URL:
/// absolute `ws(s)://` URLs are kept, `http(s)://` become `ws(s)://`, and a
/// path such as `/media/ws` is put on the base's origin.
pub fn resolve_ws_url(base: &str, ws_url: &str) -> String {
    if ws_url.starts_with("ws://") || ws_url.starts_with("wss://") {
        ws_url.to_owned()
    } else if let Some(rest) = ws_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = ws_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if ws_url.starts_with('/') {
        let origin = base
            .strip_prefix("http://")
            .map(|h| format!("ws://{h}"))
            .or_else(|| base.strip_prefix("https://").map(|h| format!("wss://{h}")))
            .unwrap_or_else(|| panic!("base URL {base} is not http(s)"));
        format!("{}{ws_url}", origin.trim_end_matches('/'))
    } else {
        panic!("cannot resolve ws_url {ws_url:?} against {base}");
    }
}

/// What a signalling socket delivered instead of the expected message.
#[derive(Debug)]
pub enum WsEnd {
    /// A close frame: code and reason.
    Closed(u16, String),
    /// The connection ended without a close frame, or failed.
    Broken(String),
    /// Nothing arrived in time.
    Timeout,
}

/// A signalling WebSocket, as a browser would hold it, speaking JSON text
/// frames.
pub struct Signal {
    ws: Ws,
    /// Every message received so far, for failure messages.
    pub seen: Vec<Value>,
}

impl Signal {
    /// Opens the socket named by a join response's `ws_url`.
    pub async fn connect(base: &str, join_response: &Value) -> Signal {
        let url = resolve_ws_url(base, str_field(join_response, "ws_url"));
        let ws = match tokio::time::timeout(secs(10), tokio_tungstenite::connect_async(&url)).await
        {
            Err(_) => panic!("connecting to {url} timed out"),
            Ok(Err(e)) => panic!("connecting to {url} failed: {e}"),
            Ok(Ok((ws, _response))) => ws,
        };
        Signal {
            ws,
            seen: Vec::new(),
        }
    }

    /// Opens the socket, sends `join` with the response's token and waits for
    /// `joined`, which it returns.
    pub async fn join(base: &str, join_response: &Value) -> (Signal, Value) {
        let mut s = Signal::connect(base, join_response).await;
        s.send(&json!({ "type": "join", "token": str_field(join_response, "token") }))
            .await;
        let joined = s.recv_type("joined", secs(10)).await;
        (s, joined)
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, msg: &Value) {
        self.send_text(&msg.to_string()).await;
    }

    /// Sends a raw text frame, which need not be valid JSON.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("sending a signalling frame failed: {e}"));
    }

    /// The next JSON text message, or why there is none.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Value, WsEnd> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err(WsEnd::Timeout),
                Ok(next) => next,
            };
            match next {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                        panic!("the server sent a non-JSON text frame ({e}): {text}")
                    });
                    self.seen.push(v.clone());
                    return Ok(v);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(match frame {
                        Some(f) => WsEnd::Closed(u16::from(f.code), f.reason.as_str().to_owned()),
                        None => WsEnd::Closed(1005, String::new()),
                    })
                }
                Some(Ok(_)) => continue, // ping/pong/binary
                Some(Err(e)) => return Err(WsEnd::Broken(e.to_string())),
                None => return Err(WsEnd::Broken("the stream ended".into())),
            }
        }
    }

    /// The next message of type `ty`, skipping others (candidates,
    /// participant updates). Panics on close or timeout, listing what came.
    pub async fn recv_type(&mut self, ty: &str, timeout: Duration) -> Value {
        self.recv_matching(&format!("a {ty:?} message"), timeout, |v| v["type"] == ty)
            .await
    }

    /// The next message for which `pred` holds, skipping others. Panics on
    /// close or timeout with `what` and the types of the messages skipped.
    pub async fn recv_matching(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                Ok(v) if pred(&v) => return v,
                Ok(v) => skipped.push(v),
                Err(end) => panic!(
                    "waiting for {what}, the socket gave {end:?}; it sent before that: {}",
                    summarize(&skipped)
                ),
            }
        }
    }

    /// Waits for the server to close the socket, skipping any messages, and
    /// returns the close code and reason.
    pub async fn expect_close(&mut self, timeout: Duration) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                Ok(v) => skipped.push(v),
                Err(WsEnd::Closed(code, reason)) => return (code, reason),
                Err(end) => panic!(
                    "expected the server to close the socket with a close frame, got {end:?}; \
                     it sent: {}",
                    summarize(&skipped)
                ),
            }
        }
    }

    /// Sends `ping` with `seq` and waits for the matching `pong`, proving
    /// the connection is alive and still being served.
    pub async fn ping(&mut self, seq: u64) {
        self.send(&json!({ "type": "ping", "seq": seq })).await;
        self.recv_matching(&format!("pong {seq}"), secs(10), |v| {
            v["type"] == "pong" && v["seq"] == seq
        })
        .await;
    }

    /// Posts a chat message and waits for its committed echo, which it
    /// returns.
    pub async fn chat(&mut self, text: &str) -> Value {
        self.send(&json!({ "type": "chat", "text": text })).await;
        self.recv_matching(&format!("the chat echo of {text:?}"), secs(10), |v| {
            v["type"] == "chat" && v["message"]["text"] == text
        })
        .await
    }
}

/// A short summary of messages, for failure output: whole messages, with
/// long strings (SDP) cut.
fn summarize(msgs: &[Value]) -> String {
    if msgs.is_empty() {
        return "nothing".into();
    }
    msgs.iter()
        .map(|m| {
            let s = m.to_string();
            if s.chars().count() > 300 {
                format!("{}…", s.chars().take(300).collect::<String>())
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------
// Browsers
// ---------------------------------------------------------------------------

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

/// The key of a W3C WebDriver element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A page element, as a WebDriver element reference.
#[derive(Clone, Debug)]
pub struct WebElement(pub String);

/// A minimal W3C WebDriver client for chromedriver on loopback: plain HTTP
/// and JSON through reqwest.
///
/// (fantoccini's `rustls()` connector panics in this workspace: `rtc` turns
/// on rustls' `ring` provider and hyper-rustls its `aws-lc-rs` one, so
/// rustls cannot pick a default. Chromedriver needs no TLS anyway.)
#[derive(Clone, Debug)]
pub struct WebDriver {
    /// `http://127.0.0.1:PORT/session/ID`.
    session_url: String,
}

impl WebDriver {
    /// Opens a session with `capabilities` on the chromedriver at `driver_url`.
    pub async fn new_session(driver_url: &str, capabilities: Value) -> Result<WebDriver, String> {
        let resp = http()
            .post(format!("{driver_url}/session"))
            .timeout(BROWSER_START_TIMEOUT)
            .json(&json!({ "capabilities": { "alwaysMatch": capabilities } }))
            .send()
            .await
            .map_err(|e| format!("POST /session: {e}"))?;
        let value = webdriver_value(resp).await?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {value}"))?;
        Ok(WebDriver {
            session_url: format!("{driver_url}/session/{id}"),
        })
    }

    /// One command: `method` on the session URL plus `path` (which is empty
    /// or starts with `/`), with a JSON body for POST. Returns `value`.
    pub async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.session_url);
        let mut req = http().request(method.clone(), &url).timeout(secs(60));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        webdriver_value(resp)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))
    }

    /// A POST command.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }
}

/// The `value` of a WebDriver response, or its error and message.
async fn webdriver_value(resp: reqwest::Response) -> Result<Value, String> {
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("HTTP {status} with a non-JSON body: {e}"))?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "{}: {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"].as_str().unwrap_or_default()
        ))
    }
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

/// `DELETE /session/{id}` on chromedriver, with a plain blocking socket since
/// `Drop` cannot await. Best effort, bounded to a few seconds.
fn delete_session_blocking(session_url: &str) {
    use std::io::Write;
    // session_url is http://127.0.0.1:PORT/session/ID.
    let Some((port, path)) = session_url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.split_once('/'))
    else {
        return;
    };
    let Ok(port) = port.parse::<u16>() else {
        return;
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(secs(10)));
    let _ = stream.set_write_timeout(Some(secs(2)));
    let request = format!(
        "DELETE /{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        // Chromedriver answers once Chromium has quit.
        let _ = stream.read(&mut [0u8; 512]);
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
