//! TURN credentials against a real coturn: the node never hands out a
//! static TURN password; each participant's `joined` carries a short-lived
//! credential of its own (the TURN REST scheme), which coturn, configured
//! with the same `static-auth-secret`, accepts for an allocation, and a
//! tampered one it refuses.
//!
//! Needs Debian's `coturn` (`turnserver`, `turnutils_uclient`):
//! `apt-get install coturn`. Without it the test fails, saying so.

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
        "[media]\nturn_urls = [\"turn:127.0.0.1:{}\"]\nturn_secret = \"{SECRET}\"\nturn_ttl_secs = 600\n\
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
        let stun = servers
            .iter()
            .find(|s| {
                s["urls"][0]
                    .as_str()
                    .is_some_and(|u| u.starts_with("stun:"))
            })
            .expect("the STUN server is handed out");
        assert!(
            stun.get("credential").is_none() && stun.get("username").is_none(),
            "STUN carries no credentials: {stun}"
        );
        let turn = servers
            .iter()
            .find(|s| {
                s["urls"][0]
                    .as_str()
                    .is_some_and(|u| u.starts_with("turn:"))
            })
            .expect("a TURN server is handed out");
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
