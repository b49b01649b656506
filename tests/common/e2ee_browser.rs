//! Browser helpers of the end-to-end encryption tests (issue 14): an
//! encrypted room, the page's E2EE hooks (`window.__vecheE2ee`: the frame
//! worker's counters, the MLS epoch, the verification code), what the
//! security indicator says, scripts injected before the page's own (a
//! browser without the encryption APIs, a receiver that skips
//! decryption), and the CPU time of a Chromium's processes for the
//! benchmark.

use crate::common::moderation::OwnedRoom;
use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// What a browser that cannot encrypt media is told, word for word
/// (`docs/e2ee.md`, the pre-join page).
pub const CANNOT_ENCRYPT: &str = "This meeting is end-to-end encrypted, and this browser \
     cannot encrypt media. Use a current Chrome, Edge, Firefox or Safari.";

/// Run before the page's scripts: the browser looks like one with neither
/// `RTCRtpScriptTransform` nor `createEncodedStreams` (an old Firefox, a
/// Chromium before insertable streams).
pub const NO_ENCRYPTION_API_JS: &str = r#"
delete window.RTCRtpScriptTransform;
delete RTCRtpSender.prototype.createEncodedStreams;
delete RTCRtpReceiver.prototype.createEncodedStreams;
"#;

/// Run before the page's scripts: the app as it is, except that nothing it
/// receives is decrypted. Setting a receiver's `transform` is ignored
/// (counted in `window.__plainReceiverSkips`), the receiver-side
/// `createEncodedStreams` is gone so the app cannot take that path
/// instead, and `encodedInsertableStreams` is stripped from new peer
/// connections, so a receiver without a transform hands what the server
/// forwards straight to the decoder. Senders still encrypt. Whatever this
/// page decodes, the server could decode too.
pub const PLAIN_RECEIVER_JS: &str = r#"
(() => {
  window.__plainReceiverSkips = 0;
  Object.defineProperty(RTCRtpReceiver.prototype, 'transform', {
    configurable: true,
    get() { return null; },
    set(_t) { window.__plainReceiverSkips += 1; },
  });
  delete RTCRtpReceiver.prototype.createEncodedStreams;
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(config, ...rest) {
      const c = Object.assign({}, config || {});
      delete c.encodedInsertableStreams;
      super(c, ...rest);
    }
  };
})();
"#;

/// `POST /api/rooms {"name": .., "e2ee": true}` as an anonymous creator;
/// panics unless the room comes back encrypted, with an owner key.
pub async fn create_e2ee_room(base: &str, name: &str) -> OwnedRoom {
    let room = crate::common::e2ee::create_e2ee_room(base, name).await;
    let owner_key = room["owner_key"]
        .as_str()
        .unwrap_or_else(|| panic!("an anonymous creator gets an owner_key: {room}"))
        .to_owned();
    OwnedRoom { room, owner_key }
}

/// The frame worker's counters, as `window.__vecheE2ee.stats()` gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct E2eeStats {
    /// Frames the senders encrypted.
    pub encrypted: u64,
    /// Frames the receivers decrypted.
    pub decrypted: u64,
    /// Frames dropped because no key for their epoch and sender was known.
    pub dropped_no_key: u64,
    /// Frames whose authentication failed.
    pub decrypt_failed: u64,
    /// Frames that left unencrypted. Must stay 0.
    pub plaintext_out: u64,
}

impl Chrome {
    /// `window.__vecheE2ee.stats()`; an error until the page defines it.
    pub async fn e2ee_stats(&self) -> Result<E2eeStats, String> {
        let v = self
            .js(
                "if (!window.__vecheE2ee) throw new Error('window.__vecheE2ee is not defined'); \
                 return await window.__vecheE2ee.stats();",
                vec![],
            )
            .await?;
        let n = |k: &str| {
            v[k].as_u64()
                .ok_or_else(|| format!("{}: no counter {k} in stats {v}", self.label))
        };
        Ok(E2eeStats {
            encrypted: n("encrypted")?,
            decrypted: n("decrypted")?,
            dropped_no_key: n("dropped_no_key")?,
            decrypt_failed: n("decrypt_failed")?,
            plaintext_out: n("plaintext_out")?,
        })
    }

    /// `window.__vecheE2ee.epoch()`: the MLS epoch in use, `None` while the
    /// page is in no group.
    pub async fn e2ee_epoch(&self) -> Result<Option<u64>, String> {
        let v = self
            .js(
                "if (!window.__vecheE2ee) throw new Error('window.__vecheE2ee is not defined'); \
                 const e = await window.__vecheE2ee.epoch(); \
                 return e === null || e === undefined ? null : Number(e);",
                vec![],
            )
            .await?;
        Ok(v.as_u64())
    }

    /// The text of the element labelled "Verification code" (shown or
    /// not), trimmed; an error while there is none or it is empty.
    pub async fn verification_code(&self) -> Result<String, String> {
        let v = self
            .js(
                "const el = __byName('[aria-label], [aria-labelledby]', 'Verification code'); \
                 if (!el) throw new Error('no element labelled \"Verification code\"'); \
                 return __norm(el.textContent);",
                vec![],
            )
            .await?;
        match v.as_str() {
            Some(s) if !s.is_empty() => Ok(s.to_owned()),
            _ => Err(format!("{}: the verification code is {v}", self.label)),
        }
    }

    /// The texts of the visible `role="status"` elements that speak of
    /// encryption (the security indicator; the recording indicator is a
    /// `role="status"` too).
    pub async fn security_indicator(&self) -> Result<String, String> {
        let v = self
            .js(
                "return Array.from(document.querySelectorAll('[role=\"status\"]')) \
                   .filter(__visible).map((e) => __norm(e.textContent)) \
                   .filter((t) => /ncrypted/.test(t)).join(' | ');",
                vec![],
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Adds `source` to run in every new document of this browser before
    /// its own scripts (CDP `Page.addScriptToEvaluateOnNewDocument`, through
    /// chromedriver); returns the identifier that removes it again.
    pub async fn run_before_page_scripts(&self, source: &str) -> String {
        let v = self
            .driver
            .post(
                "/goog/cdp/execute",
                json!({
                    "cmd": "Page.addScriptToEvaluateOnNewDocument",
                    "params": { "source": source },
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: adding a script: {e}", self.label));
        v["identifier"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no script identifier in {v}", self.label))
            .to_owned()
    }

    /// Undoes [`Chrome::run_before_page_scripts`] for new documents.
    pub async fn stop_running_before_page_scripts(&self, identifier: &str) {
        self.driver
            .post(
                "/goog/cdp/execute",
                json!({
                    "cmd": "Page.removeScriptToEvaluateOnNewDocument",
                    "params": { "identifier": identifier },
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: removing a script: {e}", self.label));
    }

    /// The page's visible text.
    pub async fn page_text(&self) -> Result<String, String> {
        let v = self
            .js(
                "return document.body ? __norm(document.body.innerText) : '';",
                vec![],
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }
}

/// Waits until `b`'s worker has encrypted and decrypted frames, and
/// asserts that none left in the clear. Returns the counters.
pub async fn assert_worker_encrypts_and_decrypts(b: &Chrome) -> E2eeStats {
    let s = wait_for(
        &format!("{}'s frame worker encrypts and decrypts", b.label),
        secs(20),
        async || {
            let s = b.e2ee_stats().await?;
            if s.plaintext_out > 0 || (s.encrypted > 0 && s.decrypted > 0) {
                Ok(s)
            } else {
                Err(format!("{s:?}"))
            }
        },
    )
    .await;
    assert_eq!(
        s.plaintext_out, 0,
        "{}: frames left in the clear: {s:?}",
        b.label
    );
    s
}

/// Asserts that no frame ever left `b` in the clear.
pub async fn assert_no_plaintext_out(b: &Chrome) {
    let s = b
        .e2ee_stats()
        .await
        .unwrap_or_else(|e| panic!("{}: reading the worker's counters: {e}", b.label));
    assert_eq!(
        s.plaintext_out, 0,
        "{}: frames left in the clear: {s:?}",
        b.label
    );
}

/// Waits until each of `pages` shows the same, non-empty verification
/// code, different from `not` when given; returns it.
pub async fn same_code_everywhere(pages: &[&Chrome], not: Option<&str>) -> String {
    let labels: Vec<&str> = pages.iter().map(|b| b.label.as_str()).collect();
    wait_for(
        &format!("{labels:?} show one verification code (not {not:?})"),
        secs(20),
        async || {
            let mut codes = Vec::new();
            for b in pages {
                codes.push(b.verification_code().await?);
            }
            let first = codes[0].clone();
            if codes.iter().all(|c| *c == first) && not != Some(first.as_str()) {
                Ok(first)
            } else {
                Err(format!("codes {codes:?}"))
            }
        },
    )
    .await
}

/// Waits until `b`'s security indicator `holds`; `what` ends "... whose
/// indicator ...".
pub async fn until_indicator(b: &Chrome, what: &str, holds: impl Fn(&str) -> bool) -> String {
    wait_for(
        &format!("{}'s security indicator {what}", b.label),
        secs(10),
        async || {
            let t = b.security_indicator().await?;
            if holds(&t) {
                Ok(t)
            } else {
                Err(format!("role=status texts about encryption: {t:?}"))
            }
        },
    )
    .await
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_holding(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            {
                out.push(p);
            }
        }
    }
    out
}

/// CPU time (user + system, in seconds) used so far by the processes of
/// `b`'s Chromium: the renderers (`--type=renderer`, where the page and its
/// frame worker run) and all of them (browser, GPU, network, renderers).
/// Found through chromedriver's process group, which holds them all.
pub fn chromium_cpu_seconds(b: &Chrome) -> (f64, f64) {
    let port = b
        .driver
        .session_url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let procs: Vec<(u32, String, Vec<String>)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command's closing parenthesis.
            let rest: Vec<String> = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ");
            Some((pid, cmd, rest))
        })
        .collect();
    let driver_pid = procs
        .iter()
        .find(|(_, cmd, _)| cmd.contains("chromedriver") && cmd.contains(&format!("--port={port}")))
        .map(|(pid, _, _)| *pid)
        .unwrap_or_else(|| panic!("{}: no chromedriver on port {port}", b.label));
    let ticks = clock_ticks_per_second();
    let (mut renderer, mut all) = (0.0, 0.0);
    for (_, cmd, rest) in &procs {
        // rest[0] is the state, rest[2] the process group, rest[11] and
        // rest[12] utime and stime (fields 14 and 15 of proc(5)).
        if rest.get(2).and_then(|g| g.parse::<u32>().ok()) != Some(driver_pid) {
            continue;
        }
        let t: f64 = [11, 12]
            .iter()
            .filter_map(|i| rest.get(*i)?.parse::<f64>().ok())
            .sum::<f64>()
            / ticks;
        all += t;
        if cmd.contains("--type=renderer") {
            renderer += t;
        }
    }
    (renderer, all)
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// `getStats()` totals of `b`'s peer connection: video frames encoded and
/// the time spent encoding them, frames decoded and the time decoding
/// them, and the largest sent frame width and height.
pub async fn codec_times(b: &Chrome) -> Result<Value, String> {
    b.js(
        "const pc = window.veche && window.veche.pc && window.veche.pc(); \
         if (!pc) throw new Error('no peer connection'); \
         const t = { encoded: 0, encodeS: 0, decoded: 0, decodeS: 0, width: 0, height: 0 }; \
         (await pc.getStats()).forEach((r) => { \
           if (r.type === 'outbound-rtp' && r.kind === 'video') { \
             t.encoded += r.framesEncoded || 0; t.encodeS += r.totalEncodeTime || 0; \
             t.width = Math.max(t.width, r.frameWidth || 0); \
             t.height = Math.max(t.height, r.frameHeight || 0); } \
           if (r.type === 'inbound-rtp' && r.kind === 'video') { \
             t.decoded += r.framesDecoded || 0; t.decodeS += r.totalDecodeTime || 0; } \
         }); \
         return t;",
        vec![],
    )
    .await
}

/// How many of `b`'s video tracks decode new frames within 300 ms.
pub async fn live_video_tracks(b: &Chrome) -> usize {
    let Ok(first) = b.frames_decoded_per_track().await else {
        return 0;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let Ok(now) = b.frames_decoded_per_track().await else {
        return 0;
    };
    now.iter()
        .filter(|(mid, f)| first.get(*mid).is_some_and(|g| *f > g))
        .count()
}

/// CPU and codec figures of one browser over a measurement window.
pub struct Sample {
    /// [`chromium_cpu_seconds`].
    pub cpu: (f64, f64),
    /// [`codec_times`].
    pub codec: Value,
}

/// Samples `b`'s CPU time and codec totals.
pub async fn sample(b: &Chrome) -> Sample {
    Sample {
        cpu: chromium_cpu_seconds(b),
        codec: codec_times(b).await.unwrap_or_else(|e| panic!("{e}")),
    }
}

/// Prints `b`'s figures between two samples: renderer and whole-Chromium
/// CPU (percent of one core), and milliseconds per frame encoded and
/// decoded by `getStats()`.
pub fn report(what: &str, b: &Chrome, t0: &Sample, t1: &Sample, over: Duration) {
    let s = over.as_secs_f64();
    let per_frame = |frames: &str, secs: &str| {
        let n = t1.codec[frames].as_f64().unwrap_or(0.0) - t0.codec[frames].as_f64().unwrap_or(0.0);
        let t = t1.codec[secs].as_f64().unwrap_or(0.0) - t0.codec[secs].as_f64().unwrap_or(0.0);
        if n > 0.0 {
            format!("{:.2} ms/frame over {n} frames", 1000.0 * t / n)
        } else {
            "no frames".to_owned()
        }
    };
    eprintln!(
        "[bench] {what} {}: renderer CPU {:.1}%, all Chromium processes {:.1}%, \
         encode {}, decode {}, sent {}x{}",
        b.label,
        100.0 * (t1.cpu.0 - t0.cpu.0) / s,
        100.0 * (t1.cpu.1 - t0.cpu.1) / s,
        per_frame("encoded", "encodeS"),
        per_frame("decoded", "decodeS"),
        t1.codec["width"],
        t1.codec["height"],
    );
}
