//! `veche cluster ca` and `veche cluster cert`: make the certificates media
//! nodes use to authenticate each other on the relay (mutual TLS under a
//! cluster CA; see `veche_node::relay_tls`). Both work on local files
//! only and need no running cluster.

use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use veche_node::relay_tls::{self, CA_CERT_FILE, CA_KEY_FILE, NODE_CERT_FILE, NODE_KEY_FILE};
use veche_protocol::NodeId;

/// `veche cluster ca`: make the cluster's relay CA.
#[derive(Args, Debug)]
pub struct CaArgs {
    /// Directory to write `ca.crt` and `ca.key` into (created if missing).
    /// Refuses to overwrite an existing `ca.key`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `veche cluster cert`: issue one media node its relay certificate.
#[derive(Args, Debug)]
pub struct CertArgs {
    /// Directory holding the CA (`ca.crt`, `ca.key`) from `veche cluster ca`.
    #[arg(long, value_name = "DIR")]
    pub ca: PathBuf,
    /// The media node's id (its `veche media-node --id`).
    #[arg(long, value_name = "N")]
    pub node: u64,
    /// Directory to write `node.crt`, `node.key` and `ca.crt` into (created
    /// if missing). Refuses to overwrite an existing `node.key`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs `veche cluster ca`.
pub fn run_ca(args: CaArgs) -> anyhow::Result<()> {
    relay_tls::generate_ca(&args.out).context("could not make the relay CA")?;
    let dir = &args.out;
    println!("Made the media relay CA in {}:", dir.display());
    println!(
        "  {}  the CA certificate (public; every media node gets a copy)",
        file(dir, CA_CERT_FILE)
    );
    println!(
        "  {}  the CA private key (readable by you only; keep it offline, never on a media node)",
        file(dir, CA_KEY_FILE)
    );
    println!();
    println!("Next, issue each media node its certificate, e.g. for node 1:");
    println!(
        "  veche cluster cert --ca {} --node 1 --out relay-tls-1",
        dir.display()
    );
    Ok(())
}

/// Runs `veche cluster cert`.
pub fn run_cert(args: CertArgs) -> anyhow::Result<()> {
    let node = NodeId(args.node);
    relay_tls::issue_node_cert(&args.ca, node, &args.out)
        .with_context(|| format!("could not issue a relay certificate for media node {node}"))?;
    let dir = &args.out;
    println!(
        "Issued media node {node} its relay certificate ({}) in {}:",
        relay_tls::server_name(node),
        dir.display()
    );
    println!(
        "  {}  the node certificate (valid 2 years)",
        file(dir, NODE_CERT_FILE)
    );
    println!(
        "  {}  the node private key (readable by you only)",
        file(dir, NODE_KEY_FILE)
    );
    println!("  {}  the CA certificate", file(dir, CA_CERT_FILE));
    if dir.join(CA_KEY_FILE).exists() {
        println!();
        println!(
            "Note: {} also holds the CA key; copy only the three files above to the media node.",
            dir.display()
        );
    }
    println!();
    println!(
        "Copy the directory to media node {node}'s host (keep node.key private) and start it with:"
    );
    println!(
        "  veche media-node --id {node} ... --relay-tls {}",
        dir.display()
    );
    Ok(())
}

fn file(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}
