//! What a browser's page shows and receives: the app's state, received
//! media (from `getStats()`), the participants list and the chat log, the
//! console, and the checks and failure dumps built on them.

use super::Chrome;
use crate::common::{secs, wait_for};
use futures::FutureExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// A page script listing the inbound RTP streams of
/// `window.veche.pc().getStats()`, each with the sender's stream id (the
/// `a=msid` of its `mid` in the remote description), and those of the
/// peer-to-peer connection `window.__vecheP2p.pc()` if there is one (its
/// `mid`s prefixed `p2p:`, its stream the peer's participant id as the SFU
/// would name it); [`parse_inbound`] reads its answer. Shared by [`Chrome::inbound_tracks`] and the
/// moderation tests' windows.
pub const INBOUND_JS: &str = r#"
if (!window.veche || typeof window.veche.pc !== 'function')
  throw new Error('window.veche.pc is not defined yet');
const out = [];
const pc = window.veche.pc();
if (pc) {
  // mid -> msid stream id, per media section of the remote SDP.
  const streamByMid = {};
  const sdp = (pc.remoteDescription && pc.remoteDescription.sdp) || '';
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section);
    const msid = /^a=msid:(\S+)/m.exec(section);
    if (mid && msid) streamByMid[mid[1]] = msid[1];
  }
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
}
const p2p = window.__vecheP2p;
const direct = p2p && p2p.pc();
if (direct) {
  (await direct.getStats()).forEach((r) => {
    if (r.type !== 'inbound-rtp') return;
    out.push({
      kind: r.kind || r.mediaType || '',
      track: r.trackIdentifier || r.id,
      mid: 'p2p:' + (r.mid || ''),
      stream: p2p.streamOf(r.mid || ''),
      framesDecoded: r.framesDecoded || 0,
      packetsReceived: r.packetsReceived || 0,
    });
  });
}
return out;
"#;

/// Reads [`INBOUND_JS`]'s answer.
pub fn parse_inbound(v: &Value) -> Result<Vec<InboundTrack>, String> {
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

/// A page script returning a copy of `window.veche.state()`, or failing
/// while the app has not defined it yet. Shared by [`Chrome::state`] and
/// the moderation tests' windows.
pub const STATE_JS: &str = "if (!window.veche || typeof window.veche.state !== 'function') \
       throw new Error('window.veche.state is not defined yet'); \
     return JSON.parse(JSON.stringify(window.veche.state()));";

/// A page script returning the text of each entry of the list labelled
/// "Participants" (through the injected `__participantEntries`), or
/// failing when there is no such list. Shared by
/// [`Chrome::participant_entries`] and the moderation tests' windows.
pub const PARTICIPANT_ENTRIES_JS: &str = "const e = __participantEntries(); \
     if (e === null) throw new Error('no element labelled \"Participants\"'); \
     return e;";

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
    /// The media section's `mid`; `p2p:<mid>` on the peer-to-peer connection.
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

impl InboundTrack {
    /// Received over the peer-to-peer connection rather than from the SFU.
    pub fn is_direct(&self) -> bool {
        self.mid.starts_with("p2p:")
    }
}

impl Chrome {
    /// `window.veche.state()`: `{participantId, participants, connected}`.
    pub async fn state(&self) -> Result<Value, String> {
        self.js(STATE_JS, vec![]).await
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
        parse_inbound(&self.js(INBOUND_JS, vec![]).await?)
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
        let v = self.js(PARTICIPANT_ENTRIES_JS, vec![]).await?;
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
