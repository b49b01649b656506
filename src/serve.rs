//! `veche serve`: control plane, media node and web client on one
//! listener, talking to each other through the same HTTP interfaces a
//! cluster uses.

use crate::config::Config;
pub use crate::serving::Serving;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::net::TcpListener;
use veche_control_plane::{Bootstrap, ControlPlane, ControlPlaneConfig};
use veche_node::{MediaNode, NodeConfig, RtcConfig};
use veche_protocol::signal::IceServer;
use veche_protocol::NodeId;

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The room creation secret from `VECHE_CREATE_SECRET`, which keeps it out
/// of the config file.
pub fn create_secret_from_env() -> Option<String> {
    std::env::var("VECHE_CREATE_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The OIDC client secret from `VECHE_OIDC_CLIENT_SECRET`, which takes
/// precedence over `[oidc] client_secret` (so the file need hold no secret).
pub fn oidc_secret_from_env() -> Option<String> {
    std::env::var("VECHE_OIDC_CLIENT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The STUN servers of the config, as handed to browsers. A static TURN
/// credential would reach every guest with a room link, so a config with
/// one is refused, pointing to `[turn]`.
pub fn ice_servers(cfg: &Config) -> anyhow::Result<Vec<IceServer>> {
    cfg.media
        .ice_servers
        .iter()
        .map(|s| {
            if s.credential.is_some() || s.username.is_some() {
                anyhow::bail!(
                    "[[media.ice_servers]] {:?} has a static username/credential, which every \
                     guest would receive; set [turn] urls and secret (coturn's \
                     static-auth-secret) instead, and the control plane issues short-lived \
                     credentials per participant",
                    s.urls
                );
            }
            Ok(IceServer {
                urls: s.urls.clone(),
                username: None,
                credential: None,
            })
        })
        .collect()
}

/// Serves `app` on `listener` until a shutdown signal.
pub async fn serve_until_signal(listener: TcpListener, app: axum::Router) {
    let serving = Serving::spawn(listener, app);
    shutdown_signal().await;
    serving.stop().await;
}

/// Starts the media node's QUIC relay if the config asks for one
/// (`media.relay_listen` with `media.relay_tls_dir`), so its rooms can span
/// other media nodes. Returns the address other nodes dial.
pub fn enable_relay(node: &MediaNode, cfg: &Config) -> anyhow::Result<Option<String>> {
    let (listen, dir) = match (&cfg.media.relay_listen, &cfg.media.relay_tls_dir) {
        (Some(listen), Some(dir)) => (listen, dir),
        (None, None) => return Ok(None),
        _ => anyhow::bail!(
            "relay_listen and relay_tls_dir (--relay-listen, --relay-tls) go together: the \
             relay needs an address and this node's certificate (veche cluster cert)"
        ),
    };
    let tls = veche_node::relay_tls::load(dir, NodeId(cfg.media.node_id))
        .map_err(|e| anyhow::anyhow!("relay TLS: {e}"))?;
    let socket = std::net::UdpSocket::bind(listen)
        .map_err(|e| anyhow::anyhow!("cannot bind the relay to {listen}: {e}"))?;
    let bound = socket.local_addr()?;
    let advertise = match &cfg.media.relay_advertise {
        Some(a) => a.clone(),
        None if bound.ip().is_unspecified() => anyhow::bail!(
            "the relay listens on {bound}; other nodes need a real address: set \
             relay_advertise (--relay-advertise host:port)"
        ),
        None => bound.to_string(),
    };
    node.enable_relay(socket, tls, advertise.clone())
        .map_err(|e| anyhow::anyhow!("relay: {e}"))?;
    Ok(Some(advertise))
}

/// Runs until a shutdown signal.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(cfg.server.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    // The address this process reaches itself at, for the node's RPC.
    let self_ip = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    let self_url = format!("http://{}", std::net::SocketAddr::new(self_ip, addr.port()));
    // Media nodes added to a `veche serve` need the secret too: the
    // environment (as for the cluster commands) or the config file; without
    // either it is random, kept in the data directory (owner-only) so that
    // `veche admin` on this machine can use it.
    let secret = match std::env::var("VECHE_CLUSTER_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| cfg.control_plane.cluster_secret.clone())
    {
        Some(s) => s,
        None => crate::admin_cmd::local_secret(&cfg.server.data_dir)?,
    };

    // One store for both: what the node records, the control plane serves.
    let recordings = cfg
        .recordings
        .object_store(&cfg.server.data_dir, crate::config::s3_secret_from_env())?;
    let cp = ControlPlane::open(ControlPlaneConfig {
        node_id: cfg.control_plane.node_id,
        data_dir: cfg.server.data_dir.clone(),
        advertise_addr: self_url.clone(),
        public_url: cfg.server.public_url.clone(),
        token_ttl: Duration::from_secs(cfg.control_plane.token_ttl_secs),
        cluster_secret: secret.clone(),
        bootstrap: Bootstrap::Single,
        bind_ip: None,
        http: cfg.http_config(create_secret_from_env())?,
        oidc: cfg.oidc_config(oidc_secret_from_env())?,
        avatar_dir: cfg.storage.avatars.clone(),
        cover_dir: cfg.storage.covers.clone(),
        recordings: cfg.recordings.control_plane(recordings.clone()),
        turn: cfg.turn.to_config(crate::config::turn_secret_from_env())?,
    })
    .await
    .map_err(|e| anyhow::anyhow!("control plane failed to start: {e}"))?;

    cp.enable_webhooks(cfg.webhook_endpoints())
        .map_err(|e| anyhow::anyhow!("webhooks: {e}"))?;
    let node = MediaNode::new(NodeConfig {
        node_id: NodeId(cfg.media.node_id),
        control_plane_urls: vec![self_url.clone()],
        cluster_secret: secret,
        public_ws_url: veche_node::WS_PATH.to_owned(),
        region: cfg.media.region.clone(),
        capacity: cfg.media.capacity,
        rtc: RtcConfig {
            bind_ip: cfg.media.rtc_ip.unwrap_or(addr.ip()),
        },
        reconnect_grace: Duration::from_secs(cfg.media.reconnect_grace_secs),
        lobby_unattended: Duration::from_secs(cfg.media.lobby_unattended_secs),
        ice_servers: ice_servers(&cfg)?,
        recordings: Some(cfg.recordings.media_node(recordings, &cfg.server.data_dir)),
    });

    let relay = enable_relay(&node, &cfg)?;
    cp.include_metrics(node.metrics().registry.clone());
    let app = cp.router().merge(node.router());
    let serving = Serving::spawn(listener, app);
    node.register(Duration::from_secs(30))
        .await
        .map_err(|e| anyhow::anyhow!("media node could not register: {}", e.message))?;

    let shown = match &cfg.server.public_url {
        Some(u) => format!("{}/", u.trim_end_matches('/')),
        None => format!("{self_url}/"),
    };
    println!("Veche is running at {shown}");
    if let Some(r) = relay {
        println!(
            "Media relay at {r}: media nodes added with `veche media-node` can share its rooms."
        );
    }
    println!("Open it in a browser, create a meeting and share its link. Ctrl-C stops.");
    let beats = node.clone();
    let (beat_stop_tx, beat_stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        beats
            .heartbeat_loop(async move {
                let _ = beat_stop_rx.await;
            })
            .await
    });

    shutdown_signal().await;
    let _ = beat_stop_tx.send(());
    serving.stop().await;
    node.close_relay();
    cp.shutdown()
        .await
        .map_err(|e| anyhow::anyhow!("control plane shutdown: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        toml::from_str(toml).expect("config parses")
    }

    #[test]
    fn a_static_turn_credential_is_refused_with_a_pointer_to_the_turn_section() {
        let cfg = config(
            "[[media.ice_servers]]\nurls = [\"turn:t.example:3478\"]\n\
             username = \"veche\"\ncredential = \"hunter2\"\n",
        );
        let err = ice_servers(&cfg).unwrap_err().to_string();
        assert!(err.contains("[turn] urls and secret"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "the error repeats the secret: {err}"
        );
    }

    #[test]
    fn stun_servers_pass_as_they_are() {
        let cfg = config("[[media.ice_servers]]\nurls = [\"stun:s.example:3478\"]\n");
        assert_eq!(
            ice_servers(&cfg).unwrap()[0].urls,
            vec!["stun:s.example:3478"]
        );
    }
}
