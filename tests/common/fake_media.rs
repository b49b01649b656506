//! Stand-in media nodes: registrations and heartbeats sent by the test itself, so that what the
//! control plane decides (placement, draining) shows without WebRTC; and the claims of a join
//! token, decoded for inspection.

use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use veche_protocol::rpc::{
    Heartbeat, HeartbeatReply, RegisterNode, RPC_HEARTBEAT, RPC_REGISTER_NODE,
};
use veche_protocol::{NodeId, RoomId};

/// How often a [`FakeMediaNode`] beats: faster than a real node, so that
/// tests see the control plane's answers sooner.
const FAKE_BEAT_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Default)]
pub(super) struct FakeState {
    participants: u32,
    room_ids: Vec<RoomId>,
    last_reply: Option<HeartbeatReply>,
    last_error: Option<String>,
}

/// A media node that exists only as registrations and heartbeats sent by
/// the test; see [`Cluster::fake_media_node`].
pub struct FakeMediaNode {
    pub(super) id: u64,
    pub(super) register: RegisterNode,
    pub(super) bases: Vec<String>,
    pub(super) secret: String,
    pub(super) http: reqwest::Client,
    pub(super) state: Arc<Mutex<FakeState>>,
    pub(super) beats: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl FakeMediaNode {
    /// Its id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its relay address, if it registered one.
    pub fn relay_addr(&self) -> Option<&str> {
        self.register.relay_addr.as_deref()
    }

    /// Its signalling URL, as joins are given it.
    pub fn ws_url(&self) -> &str {
        &self.register.ws_url
    }

    /// What its heartbeats report from now on.
    pub fn set_load(&self, participants: u32, rooms: &[RoomId]) {
        let mut s = self.state.lock().expect("lock");
        s.participants = participants;
        s.room_ids = rooms.to_vec();
    }

    /// The last heartbeat reply, or why the last heartbeat failed.
    pub fn last_reply(&self) -> Result<HeartbeatReply, String> {
        let s = self.state.lock().expect("lock");
        match (&s.last_reply, &s.last_error) {
            (_, Some(e)) => Err(e.clone()),
            (Some(r), None) => Ok(r.clone()),
            (None, None) => Err("no heartbeat answered yet".into()),
        }
    }

    /// Waits until a heartbeat reply satisfies `pred` (and returns it).
    pub async fn wait_for_reply(
        &self,
        what: &str,
        pred: impl Fn(&HeartbeatReply) -> bool,
    ) -> HeartbeatReply {
        super::wait_for(
            &format!("media node {} is told that {what}", self.id),
            Duration::from_secs(10),
            async || {
                let r = self.last_reply()?;
                if pred(&r) {
                    Ok(r)
                } else {
                    Err(format!("last reply: {r:?}"))
                }
            },
        )
        .await
    }

    /// Registers again with the same settings, as its process would on a
    /// restart. Panics unless some control-plane node accepts it within
    /// 20 s.
    pub async fn register_again(&self) {
        let body = rmp_serde::to_vec_named(&self.register).expect("encode RegisterNode");
        let mut last = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            for base in &self.bases {
                match rpc(&self.http, base, RPC_REGISTER_NODE, &self.secret, &body).await {
                    Ok(_) => return,
                    Err(e) => last = e,
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("media node {} could not register: {last}", self.id);
    }

    /// Stops heartbeating, as a node that died would.
    pub fn stop(&self) {
        if let Some(task) = self.beats.lock().expect("lock").take() {
            task.abort();
        }
    }

    pub(super) fn start_beating(&self) {
        let (id, state, http) = (self.id, self.state.clone(), self.http.clone());
        let (bases, secret) = (self.bases.clone(), self.secret.clone());
        let task = tokio::spawn(async move {
            let mut turn = 0;
            loop {
                let beat = {
                    let s = state.lock().expect("lock");
                    Heartbeat {
                        node_id: NodeId(id),
                        participants: s.participants,
                        rooms: s.room_ids.len() as u32,
                        room_ids: s.room_ids.clone(),
                    }
                };
                let body = rmp_serde::to_vec_named(&beat).expect("encode Heartbeat");
                // Like a real node: the first control-plane node that
                // answers, starting with the one that answered last.
                let mut outcome = Err(String::new());
                for i in 0..bases.len() {
                    let base = &bases[(turn + i) % bases.len()];
                    outcome = rpc(&http, base, RPC_HEARTBEAT, &secret, &body).await;
                    if outcome.is_ok() {
                        turn = (turn + i) % bases.len();
                        break;
                    }
                }
                {
                    let mut s = state.lock().expect("lock");
                    match outcome.and_then(|bytes| {
                        rmp_serde::from_slice::<HeartbeatReply>(&bytes)
                            .map_err(|e| format!("undecodable heartbeat reply: {e}"))
                    }) {
                        Ok(reply) => {
                            s.last_reply = Some(reply);
                            s.last_error = None;
                        }
                        Err(e) => s.last_error = Some(e),
                    }
                }
                tokio::time::sleep(FAKE_BEAT_INTERVAL).await;
            }
        });
        *self.beats.lock().expect("lock") = Some(task);
    }
}

impl Drop for FakeMediaNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `POST {base}{path}` with a MessagePack body and the cluster secret; the
/// reply's bytes, or why not.
pub(crate) async fn rpc(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    secret: &str,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let url = format!("{base}{path}");
    let resp = http
        .post(&url)
        .bearer_auth(secret)
        .header("content-type", "application/msgpack")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| format!("POST {url}: {e}"))?;
    if status.is_success() {
        Ok(bytes.to_vec())
    } else {
        Err(format!(
            "POST {url} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        ))
    }
}

/// The claims of a join token (`v1.<base64url JSON>.<signature>`), decoded
/// without checking the signature: what a test wants to see of a token it
/// was given.
pub fn token_claims(token: &str) -> Value {
    let claims = token
        .strip_prefix("v1.")
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_else(|| panic!("not a v1 token: {token:?}"));
    let bytes = base64url_decode(claims)
        .unwrap_or_else(|| panic!("the claims of {token:?} are not base64url"));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("the claims of {token:?} are not JSON: {e}"))
}

/// Decodes unpadded base64url; `None` if `text` is not that.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
