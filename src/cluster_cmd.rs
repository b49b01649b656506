//! `veche control-plane`, `veche media-node` and `veche cluster`: the parts
//! of a multi-machine deployment. This file runs the two kinds of node;
//! their flags are in `cluster_cmd/args.rs`, and `veche cluster`, the
//! operator's client for the cluster admin API, is `cluster_cmd/admin.rs`.

mod admin;
mod args;

pub use admin::{run_cluster, ClusterArgs};
pub use args::{ControlPlaneArgs, MediaNodeArgs};

use crate::config::{base_url, parse_peer};
use crate::serve::{serve_until_signal, shutdown_signal, Serving};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpListener;
use veche_control_plane::{Bootstrap, ControlPlane, ControlPlaneConfig};
use veche_node::{MediaNode, NodeConfig, RtcConfig};
use veche_protocol::NodeId;

/// Runs one control-plane node until a shutdown signal.
pub async fn run_control_plane(args: ControlPlaneArgs) -> anyhow::Result<()> {
    let (cfg, secret) = args.resolve()?;
    let id = cfg.control_plane.node_id;
    let listener = TcpListener::bind(cfg.server.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    let advertise = cfg
        .control_plane
        .advertise_url
        .as_deref()
        .map(base_url)
        .unwrap_or_else(|| format!("http://{addr}"));
    let bootstrap = if cfg.control_plane.peers.is_empty() {
        Bootstrap::Join
    } else {
        let mut members = BTreeMap::new();
        for p in &cfg.control_plane.peers {
            let (pid, url) = parse_peer(p)?;
            if members.insert(pid, url).is_some() {
                anyhow::bail!("--peers names node {pid} twice");
            }
        }
        match members.get(&id) {
            Some(url) if *url != advertise => anyhow::bail!(
                "--peers gives this node ({id}) the address {url}, but it advertises {advertise}; \
                 pass --advertise {url} or fix --peers"
            ),
            Some(_) => {}
            None => anyhow::bail!("--peers must include this node ({id}={advertise})"),
        }
        Bootstrap::Members(members)
    };
    let cp = ControlPlane::open(ControlPlaneConfig {
        node_id: id,
        data_dir: cfg.server.data_dir.clone(),
        advertise_addr: advertise.clone(),
        public_url: cfg.server.public_url.clone(),
        token_ttl: Duration::from_secs(cfg.control_plane.token_ttl_secs),
        cluster_secret: secret,
        bootstrap: bootstrap.clone(),
        bind_ip: (!addr.ip().is_unspecified()).then_some(addr.ip()),
        http: cfg.http_config(crate::serve::create_secret_from_env())?,
        oidc: cfg.oidc_config(crate::serve::oidc_secret_from_env())?,
        avatar_dir: cfg.storage.avatars.clone(),
        cover_dir: cfg.storage.covers.clone(),
        recordings: cfg.recordings.control_plane(
            cfg.recordings
                .object_store(&cfg.server.data_dir, crate::config::s3_secret_from_env())?,
        ),
        turn: cfg.turn.to_config(crate::config::turn_secret_from_env())?,
    })
    .await
    .map_err(|e| anyhow::anyhow!("control plane failed to start: {e}"))?;
    cp.enable_webhooks(cfg.webhook_endpoints())
        .map_err(|e| anyhow::anyhow!("webhooks: {e}"))?;
    match bootstrap {
        Bootstrap::Join => println!(
            "Control-plane node {id} is listening at {advertise}; add it to the cluster with\n  \
             veche cluster add {id} {advertise} --control-plane <a member's URL>"
        ),
        _ => println!("Control-plane node {id} is running at {advertise}"),
    }
    serve_until_signal(listener, cp.router()).await;
    cp.shutdown()
        .await
        .map_err(|e| anyhow::anyhow!("control plane shutdown: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

/// Runs one media node until a shutdown signal.
pub async fn run_media_node(args: MediaNodeArgs) -> anyhow::Result<()> {
    let (cfg, secret) = args.resolve()?;
    veche_control_plane::secret::check_secret("the cluster secret", &secret)
        .map_err(|e| anyhow::anyhow!(e))?;
    // Left over from when media nodes issued TURN credentials: the secret
    // belongs on the control plane only.
    if crate::config::turn_secret_from_env().is_some() {
        tracing::warn!(
            "VECHE_TURN_SECRET is set, but media nodes no longer use it (the control plane \
             issues TURN credentials, see [turn]): remove it from this node's environment"
        );
    }
    let listener = TcpListener::bind(cfg.server.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    if addr.ip().is_unspecified() && cfg.media.public_ws_url.is_none() {
        anyhow::bail!(
            "listening on {addr}, browsers need a real address: pass --public-ws-url \
             (e.g. wss://media1.example.com/media/ws)"
        );
    }
    let node = MediaNode::new(NodeConfig {
        node_id: NodeId(cfg.media.node_id),
        control_plane_urls: cfg
            .media
            .control_plane
            .iter()
            .map(|u| base_url(u))
            .collect(),
        cluster_secret: secret,
        public_ws_url: cfg
            .media
            .public_ws_url
            .clone()
            .unwrap_or_else(|| format!("ws://{addr}{}", veche_node::WS_PATH)),
        region: cfg.media.region.clone(),
        capacity: cfg.media.capacity,
        rtc: RtcConfig {
            bind_ip: cfg.media.rtc_ip.unwrap_or(addr.ip()),
        },
        reconnect_grace: Duration::from_secs(cfg.media.reconnect_grace_secs),
        lobby_unattended: Duration::from_secs(cfg.media.lobby_unattended_secs),
        ice_servers: crate::serve::ice_servers(&cfg)?,
        recordings: Some(
            cfg.recordings.media_node(
                cfg.recordings
                    .object_store(&cfg.server.data_dir, crate::config::s3_secret_from_env())?,
                &cfg.server.data_dir,
            ),
        ),
    });
    let relay = crate::serve::enable_relay(&node, &cfg)?;
    let router = node.router();
    // The node stops on a signal, or by itself once an operator's drain
    // has moved everyone off it.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = {
        let node = node.clone();
        async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = node.drained() => println!("Drained: no participants left; exiting"),
            }
            let _ = stop_tx.send(true);
        }
    };
    tokio::spawn(stopping);
    let serving = Serving::spawn(listener, router);
    node.register(Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("media node could not register: {}", e.message))?;
    println!(
        "Media node {} is running at {addr}, registered with {}{}",
        cfg.media.node_id,
        cfg.media.control_plane.join(", "),
        relay
            .map(|a| format!("; relay at {a}"))
            .unwrap_or_else(|| "; no relay (rooms stay on this node)".into())
    );
    let beats = node.clone();
    let mut rx = stop_rx.clone();
    tokio::spawn(async move {
        beats
            .heartbeat_loop(async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
    });
    let mut rx = stop_rx;
    let _ = rx.wait_for(|s| *s).await;
    serving.stop().await;
    node.close_relay();
    tracing::info!("stopped");
    Ok(())
}
