//! `veche serve` plus one added `veche media-node` in another region,
//! relaying to each other over QUIC: the smallest room that spans two
//! media nodes, for signalling tests that need one (`relay_signalling.rs`,
//! `e2ee_cluster.rs`).

use super::*;
use serde_json::Value;
use veche_harness::{Launch, Process, Ready};

/// At least 32 bytes: the control plane refuses a shorter cluster secret.
pub const SECRET: &str = "two-nodes-test-secret-of-at-least-32-bytes";

/// `veche serve` (control plane and media node 1, region "a") plus a
/// `veche media-node` 2 in region "b", relaying to each other. Both are
/// killed when this is dropped.
pub struct TwoNodes {
    /// The server, for REST and node 1.
    pub server: Server,
    /// Media node 2.
    _media: Process,
    _dir: TempDir,
}

impl TwoNodes {
    /// Starts both and waits until the control plane sees both alive with
    /// relays.
    pub async fn start() -> TwoNodes {
        let dir = TempDir::new("two-nodes");
        let ca = dir.path().join("ca");
        let (n1, n2) = (dir.path().join("n1"), dir.path().join("n2"));
        veche_ok(&[
            "cluster".as_ref(),
            "ca".as_ref(),
            "--out".as_ref(),
            ca.as_os_str(),
        ]);
        for (id, out) in [("1", &n1), ("2", &n2)] {
            veche_ok(&[
                "cluster".as_ref(),
                "cert".as_ref(),
                "--ca".as_ref(),
                ca.as_os_str(),
                "--node".as_ref(),
                id.as_ref(),
                "--out".as_ref(),
                out.as_os_str(),
            ]);
        }
        let server = Server::start_with_config(&format!(
            "[control_plane]\ncluster_secret = \"{SECRET}\"\n\n[media]\nregion = \"a\"\n\
             relay_listen = \"127.0.0.1:0\"\nrelay_tls_dir = \"{}\"\n",
            n1.display()
        ));
        let base = server.base().to_owned();
        let port = free_port();
        let mut media = Launch::new("media-2", VECHE)
            .args(["media-node", "--id", "2", "--region", "b"])
            .args(["--listen".to_owned(), format!("127.0.0.1:{port}")])
            .args(["--control-plane", &base])
            .args(["--relay-listen", "127.0.0.1:0", "--relay-tls"])
            .arg(&n2)
            .env("VECHE_CLUSTER_SECRET", SECRET)
            .ready(Ready::Line("Media node 2 is running at".into()))
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        media
            .ready(SERVER_START_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        wait_for(
            "both media nodes are alive with relays",
            secs(30),
            async || {
                let status = http()
                    .get(format!("{base}/api/admin/cluster"))
                    .bearer_auth(SECRET)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .json::<Value>()
                    .await
                    .map_err(|e| e.to_string())?;
                let ready = status["media_nodes"]
                    .as_array()
                    .map(|ns| {
                        ns.iter()
                            .filter(|n| n["alive"] == true && n["relay_addr"].is_string())
                            .count()
                    })
                    .unwrap_or(0);
                if ready == 2 {
                    Ok(())
                } else {
                    Err(format!("{status}"))
                }
            },
        )
        .await;
        TwoNodes {
            server,
            _media: media,
            _dir: dir,
        }
    }
}
