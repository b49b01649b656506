//! TURN credentials against a real coturn: nobody is handed a static TURN
//! password; the control plane, which alone holds the secret (`[turn]`),
//! puts a short-lived credential of the participant's own (the TURN REST
//! scheme) in each join token, and the media node, which has no TURN
//! settings at all, hands it on in `joined` after its STUN servers. coturn,
//! configured with the same `static-auth-secret`, accepts it for an
//! allocation, and a tampered one it refuses. The old `media.turn_*` keys
//! stop a node at start-up, pointing to `[turn]`.
//!
//! Needs Debian's `coturn` (`turnserver`, `turnutils_uclient`):
//! `apt-get install coturn`. Without it the test fails, saying so.

use crate::common::cluster::{token_claims, Cluster};
use crate::common::*;
use std::process::{Child, Command, Stdio};

const SECRET: &str = "a-long-random-secret-shared-with-coturn";

/// A `turnserver` on 127.0.0.1, killed on drop.
struct Coturn {
    child: Child,
    port: u16,
}

impl Coturn {
    fn start() -> Coturn {
        let port = free_port();
        let child = Command::new("turnserver")
            .args([
                "--use-auth-secret",
                &format!("--static-auth-secret={SECRET}"),
                "-L",
                "127.0.0.1",
                "--relay-ip",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--realm",
                "veche",
                "--no-cli",
                "--no-tls",
                "--no-dtls",
                "--allow-loopback-peers",
                "--log-file",
                "stdout",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start turnserver ({e}); install Debian's coturn: apt-get install coturn")
            });
        Coturn { child, port }
    }

    /// Allocates a relay with `turnutils_uclient` and sends one message
    /// through it; Ok when coturn accepted the credentials.
    fn allocate(&self, username: &str, password: &str) -> Result<(), String> {
        let out = Command::new("timeout")
            .args(["20", "turnutils_uclient", "-p", &self.port.to_string()])
            .args(["-u", username, "-w", password])
            .args(["-n", "1", "-y", "-c", "-e", "127.0.0.1", "127.0.0.1"])
            .output()
            .map_err(|e| format!("cannot run turnutils_uclient ({e}); install coturn"))?;
        if out.status.success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&out.stdout);
            Err(format!(
                "turnutils_uclient exited with {}: {}",
                out.status,
                text.lines().rev().take(3).collect::<Vec<_>>().join(" / ")
            ))
        }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn each_guest_gets_a_short_lived_turn_credential_that_coturn_accepts() {
    let coturn = Coturn::start();
    let server = Server::start_with_config(&format!(
        "[turn]\nurls = [\"turn:127.0.0.1:{}\"]\nsecret = \"{SECRET}\"\nttl_secs = 600\n\
         [[media.ice_servers]]\nurls = [\"stun:127.0.0.1:{}\"]\n",
        coturn.port, coturn.port
    ));
    let room = create_room(server.base(), "TURN").await;
    let slug = str_field(&room, "slug");
    let ann = join(server.base(), slug, "Ann").await;
    let bo = join(server.base(), slug, "Bo").await;
    let (_ann_ws, ann_joined) = Signal::join(server.base(), &ann).await;
    let (_bo_ws, bo_joined) = Signal::join(server.base(), &bo).await;

    let turn_of = |joined: &serde_json::Value| {
        let servers = joined["ice_servers"].as_array().expect("ice_servers");
        // The node's STUN server, then what the join token carries.
        let [stun, turn] = servers.as_slice() else {
            panic!("not one STUN and one TURN server: {joined}");
        };
        assert!(
            stun["urls"][0]
                .as_str()
                .is_some_and(|u| u.starts_with("stun:"))
                && stun.get("credential").is_none()
                && stun.get("username").is_none(),
            "STUN first, with no credentials: {stun}"
        );
        assert!(
            turn["urls"][0]
                .as_str()
                .is_some_and(|u| u.starts_with("turn:")),
            "{turn}"
        );
        (
            str_field(turn, "username").to_owned(),
            str_field(turn, "credential").to_owned(),
        )
    };
    let (ann_user, ann_pass) = turn_of(&ann_joined);
    let (bo_user, bo_pass) = turn_of(&bo_joined);

    // Per participant, expiring within the configured lifetime.
    let (expiry, who) = ann_user.split_once(':').expect("<expiry>:<participant>");
    assert_eq!(who, str_field(&ann_joined, "participant_id"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiry: u64 = expiry.parse().expect("expiry in Unix seconds");
    assert!(
        expiry > now && expiry <= now + 601,
        "expiry {expiry} is not within 600 s of {now}"
    );
    assert_ne!(
        ann_pass, bo_pass,
        "each participant has a credential of their own"
    );
    assert!(!ann_pass.contains(SECRET) && !ann_joined.to_string().contains(SECRET));
    // Each came in the participant's join token, which the browser holds
    // and can decode: the secret is in neither the token nor the response.
    for (response, joined) in [(&ann, &ann_joined), (&bo, &bo_joined)] {
        let claims = token_claims(str_field(response, "token"));
        assert_eq!(
            claims["ice_servers"],
            serde_json::json!([joined["ice_servers"][1]]),
            "{claims}"
        );
        assert!(!claims.to_string().contains(SECRET) && !response.to_string().contains(SECRET));
    }

    // coturn, with the same secret, accepts each issued credential (the
    // first attempt also waits for coturn to be up).
    wait_for(
        "coturn allocates with Ann's issued credential",
        secs(20),
        async || coturn.allocate(&ann_user, &ann_pass),
    )
    .await;
    coturn
        .allocate(&bo_user, &bo_pass)
        .expect("coturn accepts Bo's credential");
    // A credential does not work under another username.
    assert!(
        coturn.allocate(&bo_user, &ann_pass).is_err(),
        "coturn accepted Ann's password for Bo's username"
    );
}

/// The TURN REST credential for `username` under `secret`, computed here
/// as coturn does, so the test can make one that has already expired.
fn credential_for(secret: &str, username: &str) -> String {
    veche_protocol::turn::credential(&veche_protocol::turn::TurnSecret::new(secret), username)
}

#[tokio::test]
async fn coturn_refuses_a_username_whose_expiry_has_passed() {
    let coturn = Coturn::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The same participant, the same secret: only the expiry differs, so a
    // refusal can only be coturn enforcing it.
    let fresh = format!("{}:p-traveller", now + 600);
    let expired = format!("{}:p-traveller", now - 60);
    wait_for(
        "coturn allocates with a credential that has not expired",
        secs(20),
        async || coturn.allocate(&fresh, &credential_for(SECRET, &fresh)),
    )
    .await;
    let refused = coturn.allocate(&expired, &credential_for(SECRET, &expired));
    assert!(
        refused.is_err(),
        "coturn accepted a username that expired 60 s ago"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_node_without_any_turn_hands_on_the_credential_of_the_control_planes_token() {
    // `[turn]` on the control plane only; the media node gets no config
    // file, and no process here has VECHE_TURN_SECRET.
    let dir = TempDir::new("turn-cp");
    let config = dir.path().join("control-plane.toml");
    std::fs::write(
        &config,
        format!(
            "[turn]\nurls = [\"turn:turn.example.com:3478?transport=udp\", \
             \"turns:turn.example.com:443?transport=tcp\"]\nsecret = \"{SECRET}\"\n"
        ),
    )
    .unwrap();
    let mut cluster = Cluster::start_with_config(1, Some(config)).await;
    cluster.start_media_node(1).await;
    let base = cluster.base(1);
    let room = create_room(&base, "TURN from the control plane").await;
    let ann = join(&base, str_field(&room, "slug"), "Ann").await;

    let claims = token_claims(str_field(&ann, "token"));
    let [turn] = claims["ice_servers"]
        .as_array()
        .expect("ice_servers")
        .as_slice()
    else {
        panic!("not one TURN server in the token: {claims}");
    };
    let user = str_field(turn, "username");
    let (expiry, who) = user.split_once(':').expect("<expiry>:<participant>");
    assert_eq!(who, str_field(&ann, "participant_id"));
    let expiry: u64 = expiry.parse().expect("Unix seconds");
    let now = now_ms() / 1000;
    assert!(
        (now + 3600 - 60..=now + 3600).contains(&expiry),
        "the default lifetime is an hour: {expiry} at {now}"
    );
    assert_eq!(str_field(turn, "credential"), credential_for(SECRET, user));
    assert!(!claims.to_string().contains(SECRET));

    // The node, which has no STUN servers either, hands on exactly that.
    let (_ws, joined) = Signal::join(&base, &ann).await;
    assert_eq!(joined["ice_servers"], serde_json::json!([turn]), "{joined}");
}

#[test]
fn the_old_media_turn_keys_stop_a_node_at_start_up_pointing_to_the_turn_section() {
    let dir = TempDir::new("old-turn");
    let config = dir.path().join("veche.toml");
    std::fs::write(
        &config,
        format!("[media]\nturn_urls = [\"turn:t.example:3478\"]\nturn_secret = \"{SECRET}\"\n"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().expect("a UTF-8 path");
    for args in [
        vec!["serve", "--listen", "127.0.0.1:0", "--data-dir", data],
        vec![
            "control-plane",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
        ],
        vec![
            "media-node",
            "--listen",
            "127.0.0.1:0",
            "--control-plane",
            "127.0.0.1:9",
        ],
    ] {
        let out = Command::new(VECHE)
            .args(&args)
            .arg("--config")
            .arg(&config)
            .env_remove("VECHE_TURN_SECRET")
            .stdin(Stdio::null())
            .output()
            .expect("running veche");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started: {err}");
        assert!(
            err.contains("media.turn_urls moved to the [turn] section as `urls`")
                || err.contains("media.turn_secret moved to the [turn] section as `secret`"),
            "{args:?}: {err}"
        );
        assert!(!err.contains(SECRET), "{args:?} shows the secret: {err}");
    }
}
