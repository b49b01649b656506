//! `--record`: the bot that starts a recording of the load run's meeting.
//!
//! The room is created with an owner key, and the first bot joins with it,
//! so it is the room's host; its signalling socket is tapped to send
//! `{"type":"moderate","action":"start_recording"}` as soon as it has
//! joined, exactly what a host's "Start recording" button sends. What the
//! node answers is watched: a refusal fails the run's report instead of
//! silently measuring a meeting nobody records.

use crate::bot::Tap;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What the host bot has heard about its recording so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RecordingSeen {
    /// Nothing yet.
    #[default]
    Waiting,
    /// A `policy` with a running recording arrived.
    Running,
    /// The node refused the start, with its message.
    Refused(String),
}

/// The host's side of a recorded run: hands out the tap for the first bot
/// and keeps what it heard.
pub struct RecordingHost {
    owner_key: Option<String>,
    seen: Arc<Mutex<RecordingSeen>>,
}

impl RecordingHost {
    /// A host that will join with `owner_key`.
    pub fn new(owner_key: String) -> Self {
        RecordingHost {
            owner_key: Some(owner_key),
            seen: Arc::default(),
        }
    }

    /// The tap for the first bot (then `None`): joins as host and starts
    /// the recording. A task reads what the bot receives until its socket
    /// closes.
    pub fn take_tap(&mut self) -> Option<Tap> {
        let owner_key = self.owner_key.take()?;
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (in_tx, mut in_rx) = mpsc::unbounded_channel::<Value>();
        // Sent once the bot has joined: the tapped bot sends queued frames
        // after its `join`.
        let _ = out_tx.send(json!({ "type": "moderate", "action": "start_recording" }));
        let seen = self.seen.clone();
        tokio::spawn(async move {
            // Keeping the sender alive keeps the bot's outgoing side open.
            let _out = out_tx;
            while let Some(frame) = in_rx.recv().await {
                let next = observe(&frame);
                if let Some(next) = next {
                    let mut s = seen.lock().expect("lock poisoned");
                    if *s == RecordingSeen::Waiting {
                        *s = next;
                    }
                }
            }
        });
        Some(Tap {
            owner_key: Some(owner_key),
            outgoing: out_rx,
            incoming: in_tx,
        })
    }

    /// What the host heard.
    pub fn seen(&self) -> RecordingSeen {
        self.seen.lock().expect("lock poisoned").clone()
    }
}

/// What a frame the host received says about its recording.
fn observe(frame: &Value) -> Option<RecordingSeen> {
    match frame["type"].as_str()? {
        "policy" if frame["policy"]["recording"].is_object() => Some(RecordingSeen::Running),
        "joined" if frame["policy"]["recording"].is_object() => Some(RecordingSeen::Running),
        "error" if frame["request"].as_str() == Some("moderate") => Some(RecordingSeen::Refused(
            frame["message"].as_str().unwrap_or("refused").to_owned(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_with_a_recording_means_it_runs() {
        let f =
            json!({"type":"policy","policy":{"version":2,"recording":{"id":"r0123456789abcdef"}}});
        assert_eq!(observe(&f), Some(RecordingSeen::Running));
        let none = json!({"type":"policy","policy":{"version":3}});
        assert_eq!(observe(&none), None);
    }

    #[test]
    fn a_refused_moderate_is_kept_with_its_message() {
        let f = json!({"type":"error","request":"moderate","code":"forbidden","message":"no"});
        assert_eq!(observe(&f), Some(RecordingSeen::Refused("no".into())));
        let other = json!({"type":"error","request":"chat","message":"x"});
        assert_eq!(observe(&other), None);
    }
}
