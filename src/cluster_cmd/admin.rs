//! `veche cluster`: the operator's client for the cluster admin API
//! (status, adding and removing control-plane nodes, draining media nodes),
//! and the local certificate commands.

use super::args::{secret, SecretArg};
use crate::config::{base_url, Config};
use clap::{Args, Subcommand};
use std::time::Duration;
use veche_protocol::admin::{
    drain_path, AddMemberRequest, ClusterStatus, MediaNodeStatus, ADMIN_CLUSTER, ADMIN_MEMBERS,
};
use veche_protocol::error::ErrorBody;
use veche_protocol::NodeId;

/// `veche cluster` subcommands.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
    /// Any control-plane node's base URL.
    #[arg(
        long,
        global = true,
        env = "VECHE_CONTROL_PLANE",
        default_value = "http://127.0.0.1:8080"
    )]
    control_plane: String,
    #[command(flatten)]
    secret: SecretArg,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Make the media relay CA (local files; needs no cluster).
    Ca(crate::certs_cmd::CaArgs),
    /// Issue a media node its relay certificate (local files; needs no
    /// cluster).
    Cert(crate::certs_cmd::CertArgs),
    /// Show the leader, the members and their replication, and media nodes.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a control-plane node (started with no --peers) as a voter.
    Add {
        /// Its Raft id.
        id: u64,
        /// Its address (`10.0.0.4:8080` or a URL).
        addr: String,
    },
    /// Remove a control-plane node from the cluster.
    Remove {
        /// Its Raft id.
        id: u64,
    },
    /// Drain a media node: place no one new on it, tell it to move its
    /// participants to other nodes, and wait until it is empty (or has
    /// stopped). Refused if no other media node is in service.
    Drain {
        /// The media node's id.
        node: u64,
        /// Give up waiting after this many seconds (exit status 1); the
        /// node stays draining.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Put a drained media node back in service. (A media node that
    /// restarts is back in service by itself.)
    Undrain {
        /// The media node's id.
        node: u64,
    },
}

struct AdminClient {
    http: reqwest::Client,
    secret: String,
}

impl AdminClient {
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let resp = req
            .bearer_auth(&self.secret)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the control plane: {e}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if status.is_success() {
            return Ok(serde_json::from_slice(&bytes)?);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            anyhow::bail!("the control plane refused the cluster secret");
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => anyhow::bail!("{} ({})", e.message, e.code.as_str()),
            Err(_) => anyhow::bail!("the control plane answered {status}"),
        }
    }

    async fn status(&self, base: &str) -> anyhow::Result<ClusterStatus> {
        self.send(self.http.get(format!("{base}{ADMIN_CLUSTER}")))
            .await
    }

    /// The leader's view if `base` can point to it (only the leader has
    /// replication progress and media nodes), else `base`'s own.
    async fn leader_status(&self, base: &str) -> anyhow::Result<ClusterStatus> {
        let status = self.status(base).await?;
        if let Some(leader) = status.leader.clone() {
            if leader.id != status.node_id {
                if let Ok(s) = self.status(&leader.addr).await {
                    return Ok(s);
                }
            }
        }
        Ok(status)
    }
}

/// How often `veche cluster drain` looks at the node's participant count.
const DRAIN_POLL: Duration = Duration::from_secs(1);

/// Why a media node counts as drained, if it does.
fn drained(n: &MediaNodeStatus) -> Option<&'static str> {
    if !n.alive {
        Some("has stopped sending heartbeats")
    } else if n.participants == 0 {
        Some("has no participants left")
    } else {
        None
    }
}

/// `veche cluster drain`: asks for the drain, then polls the leader's view
/// once a second until the node is empty or gone, or `timeout` passes.
async fn drain(client: &AdminClient, base: &str, node: u64, timeout: u64) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(timeout);
    let url = format!("{base}{}", drain_path(NodeId(node)));
    let first: MediaNodeStatus = client.send(client.http.post(&url)).await?;
    println!("Media node {node} is draining: no new participants are placed on it.");
    let mut last = Some(first.participants);
    let mut current = first;
    loop {
        if let Some(why) = drained(&current) {
            println!(
                "Media node {node} {why}; drained after {} s.",
                started.elapsed().as_secs()
            );
            return Ok(());
        }
        if last != Some(current.participants) || started.elapsed() < DRAIN_POLL {
            println!("node {node}: {} participants left", current.participants);
            last = Some(current.participants);
        }
        if std::time::Instant::now() >= deadline {
            anyhow::bail!(
                "media node {node} still has {} participants after {timeout} s; it stays \
                 draining (wait longer with `veche cluster drain {node}`, or put it back in \
                 service with `veche cluster undrain {node}`)",
                current.participants
            );
        }
        tokio::time::sleep(DRAIN_POLL).await;
        // A failed poll (a leader change, a node restarting) is not the end
        // of the drain: say so and look again.
        match client.leader_status(base).await {
            Ok(status) => match status.media_nodes {
                Some(nodes) => match nodes.into_iter().find(|n| n.info.node_id == NodeId(node)) {
                    Some(n) => current = n,
                    None => anyhow::bail!("media node {node} is no longer registered"),
                },
                None => eprintln!("no control-plane leader to ask right now; retrying"),
            },
            Err(e) => eprintln!("could not read the cluster status ({e}); retrying"),
        }
    }
}

/// Runs a `veche cluster` subcommand.
pub async fn run_cluster(args: ClusterArgs) -> anyhow::Result<()> {
    // The certificate commands work on local files: no secret, no cluster.
    let command = match args.command {
        ClusterCommand::Ca(a) => return crate::certs_cmd::run_ca(a),
        ClusterCommand::Cert(a) => return crate::certs_cmd::run_cert(a),
        other => other,
    };
    let cfg = Config::default();
    let client = AdminClient {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(70))
            .pool_idle_timeout(std::time::Duration::from_millis(
                veche_protocol::limits::http::CLIENT_POOL_IDLE_MS,
            ))
            .build()?,
        secret: secret(&args.secret, &cfg)?,
    };
    let base = base_url(&args.control_plane);
    let status = match command {
        ClusterCommand::Ca(_) | ClusterCommand::Cert(_) => unreachable!("handled above"),
        ClusterCommand::Status { json } => {
            let status = client.leader_status(&base).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
                return Ok(());
            }
            status
        }
        ClusterCommand::Add { id, addr } => {
            let body = AddMemberRequest {
                id,
                addr: base_url(&addr),
            };
            let s = client
                .send(
                    client
                        .http
                        .post(format!("{base}{ADMIN_MEMBERS}"))
                        .json(&body),
                )
                .await?;
            println!("Node {id} is now a voter.");
            s
        }
        ClusterCommand::Remove { id } => {
            let s = client
                .send(client.http.delete(format!("{base}{ADMIN_MEMBERS}/{id}")))
                .await?;
            println!("Node {id} is no longer a member.");
            s
        }
        ClusterCommand::Drain { node, timeout } => {
            return drain(&client, &base, node, timeout).await;
        }
        ClusterCommand::Undrain { node } => {
            let url = format!("{base}{}", drain_path(NodeId(node)));
            let _: MediaNodeStatus = client.send(client.http.delete(&url)).await?;
            println!("Media node {node} is back in service.");
            return Ok(());
        }
    };
    print_status(&status);
    Ok(())
}

fn print_status(s: &ClusterStatus) {
    println!(
        "answered by node {} ({}), term {}, leader: {}",
        s.node_id,
        s.state,
        s.term,
        s.leader
            .as_ref()
            .map_or("none".to_owned(), |l| format!("{} at {}", l.id, l.addr))
    );
    println!(
        "last log index {}, applied {}",
        s.last_log_index.map_or("-".into(), |i| i.to_string()),
        s.last_applied.map_or("-".into(), |i| i.to_string())
    );
    println!("\n{:<6} {:<8} {:<10} ADDRESS", "ID", "ROLE", "MATCHED");
    for m in &s.members {
        let role = if Some(m.id) == s.leader.as_ref().map(|l| l.id) {
            "leader"
        } else if m.voter {
            "voter"
        } else {
            "learner"
        };
        println!(
            "{:<6} {:<8} {:<10} {}",
            m.id,
            role,
            m.matched_index.map_or("-".into(), |i| i.to_string()),
            m.addr
        );
    }
    if let Some(nodes) = &s.media_nodes {
        println!(
            "\n{:<6} {:<6} {:<9} {:<12} {:<8} {:<10} SIGNALLING",
            "MEDIA", "ALIVE", "DRAINING", "REGION", "PEOPLE", "LAST BEAT"
        );
        for n in nodes {
            println!(
                "{:<6} {:<6} {:<9} {:<12} {:<8} {:<10} {}",
                n.info.node_id.0,
                if n.alive { "yes" } else { "no" },
                if n.draining { "yes" } else { "no" },
                if n.info.region.is_empty() {
                    "-"
                } else {
                    &n.info.region
                },
                n.participants,
                n.last_heartbeat_ms_ago
                    .map_or("-".into(), |ms| format!("{ms} ms")),
                n.info.ws_url
            );
        }
    }
}
