//! Helpers for the end-to-end encryption signalling tests
//! (`e2ee_signalling.rs`, `e2ee_cluster.rs`): creating an encrypted room,
//! the MLS handshake frames as a browser sends them (with opaque bytes
//! standing in for MLS, which the server never reads), and a room spanning
//! two media nodes.

pub use super::two_nodes::TwoNodes;
use super::*;
use serde_json::{json, Value};

/// `POST /api/rooms {"name", "e2ee": true}`; panics unless the room is
/// created encrypted. Returns the room.
pub async fn create_e2ee_room(base: &str, name: &str) -> Value {
    let reply = http_post_json(
        &format!("{base}/api/rooms"),
        &json!({ "name": name, "e2ee": true }),
    )
    .await;
    assert!(
        (200..300).contains(&reply.status),
        "creating encrypted room {name:?} failed with {}: {}",
        reply.status,
        reply.body
    );
    let room = reply.json();
    assert_eq!(room["e2ee"], true, "the room is created encrypted: {room}");
    room
}

/// Joins `name` to `slug` and opens their signalling socket; asserts that
/// `joined` says whether the room is encrypted. Returns the socket and the
/// participant id.
pub async fn enter(base: &str, slug: &str, name: &str, e2ee: bool) -> (Signal, String) {
    let reply = join(base, slug, name).await;
    let (sig, joined) = Signal::join(base, &reply).await;
    assert_eq!(
        joined["room"]["e2ee"], e2ee,
        "joined says whether the room is encrypted: {joined}"
    );
    let id = str_field(&joined, "participant_id").to_owned();
    (sig, id)
}

/// Opaque base64url standing in for MLS bytes: `len` characters derived
/// from `seed`, so each message is recognisable where it arrives.
pub fn opaque(seed: &str, len: usize) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out: String = seed
        .bytes()
        .filter(|b| alphabet.contains(b))
        .map(char::from)
        .collect();
    while out.len() < len {
        out.push(char::from(alphabet[out.len() % alphabet.len()]));
    }
    out.truncate(len.max(1));
    out
}

/// An `e2ee_key_package` frame.
pub fn key_package_frame(key_package: &str) -> Value {
    json!({ "type": "e2ee_key_package", "key_package": key_package })
}

/// An `e2ee_commit` frame from `group`/`epoch` adding `added`, with
/// `commit` as the commit and a welcome when it adds anyone.
pub fn commit_frame(group: u64, epoch: u64, added: &[&str], commit: &str) -> Value {
    let mut frame = json!({
        "type": "e2ee_commit",
        "group": group,
        "epoch": epoch,
        "added": added,
        "removed": [],
        "commit": commit,
    });
    if !added.is_empty() {
        frame["welcome"] = json!(opaque(&format!("welcome{commit}"), 64));
    }
    frame
}

/// True for the three handshake messages a node sends.
pub fn is_handshake(v: &Value) -> bool {
    matches!(
        v["type"].as_str(),
        Some("e2ee_found" | "e2ee_key_package" | "e2ee_commit")
    )
}

/// The next `error` answering `request`; panics on anything else of
/// interest first (a handshake message the sender must not get).
pub async fn refusal(s: &mut Signal, request: &str) -> Value {
    let v = s
        .recv_matching(
            &format!("an error for {request}, or a handshake message"),
            secs(10),
            |v| (v["type"] == "error" && v["request"] == request) || is_handshake(v),
        )
        .await;
    assert_eq!(v["type"], "error", "expected a refusal, got {v}");
    v
}

/// Raises (or lowers) `s`'s hand and waits until `watcher` sees it: a
/// marker sent after something that must not reach `watcher`. Messages are
/// delivered in order, so anything `watcher` got before the marker is in
/// what this returns, for the caller to inspect.
pub async fn marker(s: &mut Signal, id: &str, watcher: &mut Signal, raised: bool) -> Vec<Value> {
    let from = watcher.seen.len();
    s.send(&json!({ "type": "hand", "raised": raised })).await;
    watcher
        .recv_matching("the marker (a raised hand)", secs(10), |v| {
            v["type"] == "participant_updated"
                && v["participant"]["id"] == id
                && v["participant"]["hand_raised_at_ms"].is_u64() == raised
        })
        .await;
    watcher.seen[from..].to_vec()
}

/// Asserts that none of `seen` is a handshake message.
pub fn assert_no_handshake(seen: &[Value], who: &str) {
    let got: Vec<&Value> = seen.iter().filter(|v| is_handshake(v)).collect();
    assert!(
        got.is_empty(),
        "{who} must not get these handshake messages: {got:?}"
    );
}

impl TwoNodes {
    /// Joins `name` to `slug` in `region` ("a" is node 1, "b" node 2),
    /// asserts the placement, and opens their socket. Returns it and the
    /// participant id.
    pub async fn enter(&self, slug: &str, name: &str, region: &str) -> (Signal, String) {
        let base = self.server.base();
        let r = http_post_json(
            &format!("{base}/api/rooms/{slug}/join"),
            &json!({ "display_name": name, "region": region }),
        )
        .await;
        assert_eq!(r.status, 200, "join as {name}: {}", r.body);
        let reply = r.json();
        let node = if region == "a" { 1 } else { 2 };
        assert_eq!(
            reply["node_id"], node,
            "{name} is placed in region {region}: {reply}"
        );
        let (sig, joined) = Signal::join(base, &reply).await;
        assert_eq!(joined["room"]["e2ee"], true, "{joined}");
        (sig, str_field(&joined, "participant_id").to_owned())
    }
}
