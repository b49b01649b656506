//! Mutual TLS for the QUIC relay between media nodes.
//!
//! Media nodes cascade rooms to each other over QUIC (see
//! [`veche_protocol::relay`]). Each side must know *which node* is on the
//! other end, because that decides which rooms and participants the
//! traffic may speak for. So every node holds a certificate from a private
//! cluster CA, and both sides of a relay connection present and verify one:
//!
//! - the node's identity is its [`NodeId`], written into the certificate as
//!   the DNS name `media-<id>.veche` (see [`server_name`]). `.veche` is not
//!   a public top-level domain, so no public CA can issue such a name, and
//!   the cluster CA is the only trust anchor anyway;
//! - a dialer uses `server_name(peer)` as the TLS server name, so rustls
//!   itself refuses a server whose certificate names another node;
//! - the accepting side reads the dialer's id from its verified client
//!   certificate with [`peer_node_id`].
//!
//! The files live in one directory per node: `ca.crt`, `node.crt` and
//! `node.key`, written by [`issue_node_cert`] (`veche cluster cert`). The
//! CA's own key (`ca.key`, from [`generate_ca`], `veche cluster ca`) is
//! only needed to issue certificates and should stay off the media nodes.
//!
//! By concern: `pki` makes the CA and node certificates, `config`
//! loads them into rustls and quinn configurations, and this file holds
//! the naming rule both share.

mod config;
mod files;
mod pki;
#[cfg(test)]
mod tests;

pub use config::{load, RelayTls};
pub use pki::{generate_ca, issue_node_cert};

use rustls::pki_types::CertificateDer;
use std::io;
use std::path::PathBuf;
use veche_protocol::NodeId;

/// The CA certificate, in the CA directory and copied next to every node
/// certificate.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The CA's private key. Only [`issue_node_cert`] reads it.
pub const CA_KEY_FILE: &str = "ca.key";
/// A node's certificate.
pub const NODE_CERT_FILE: &str = "node.crt";
/// A node's private key.
pub const NODE_KEY_FILE: &str = "node.key";

/// Why relay TLS material could not be made or loaded. Every variant names
/// the file involved, so a node that refuses to start says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayTlsError {
    /// A file the step needs does not exist.
    #[error("{}: no such file; {hint}", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// What makes it (which command).
        hint: &'static str,
    },
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file exists but does not hold what it should (no PEM block of the
    /// right kind, or a certificate that does not parse).
    #[error("{}: not a valid {what}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What it should hold, e.g. "PEM certificate".
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The node certificate names another node (or none): the node was
    /// started with another node's files.
    #[error(
        "{}: this certificate is for {found}, but this node is media node {node} \
         ({expected}); issue one with `veche cluster cert --node {node}`",
        path.display()
    )]
    WrongNode {
        /// The certificate file.
        path: PathBuf,
        /// The node that loaded it.
        node: NodeId,
        /// The name it should carry.
        expected: String,
        /// The names it does carry, or "no media node name".
        found: String,
    },
    /// A private key does not belong to the certificate next to it.
    #[error("{}: this key does not belong to {}", key.display(), cert.display())]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// The node certificate is not valid under the CA next to it: issued
    /// by another CA, expired, not yet valid, or missing a usage.
    #[error("{}: not valid under {}: {reason}", cert.display(), ca.display())]
    NotValidUnderCa {
        /// The node certificate.
        cert: PathBuf,
        /// The CA certificate.
        ca: PathBuf,
        /// What the verifier said.
        reason: rustls::Error,
    },
    /// A file this step would write exists already. Keys are never
    /// overwritten: losing the CA key means re-issuing every node.
    #[error("{}: already exists; refusing to overwrite it (move it away first if you really mean to replace it)", path.display())]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// Generating a key or certificate failed.
    #[error("generating a certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The certificate verifier could not be built (e.g. no usable CA).
    #[error("TLS certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// quinn refused the TLS configuration for QUIC.
    #[error("QUIC TLS configuration: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

/// The DNS name that identifies media node `node` in relay certificates
/// and as the TLS server name when dialing it: `media-<id>.veche`.
pub fn server_name(node: NodeId) -> String {
    format!("media-{}.veche", node.0)
}

/// Parses a name made by [`server_name`] back into the node id. Only the
/// exact canonical form is accepted (no leading zeros or `+`), so one id
/// has exactly one name.
fn node_id_from_name(name: &str) -> Option<NodeId> {
    let id = name.strip_prefix("media-")?.strip_suffix(".veche")?;
    let id: u64 = id.parse().ok()?;
    let node = NodeId(id);
    (server_name(node) == name).then_some(node)
}

/// The DNS names in a certificate's subject alternative names.
fn dns_names(der: &[u8]) -> Result<Vec<String>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let Some(san) = cert.subject_alternative_name().map_err(|e| e.to_string())? else {
        return Ok(Vec::new());
    };
    Ok(san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        })
        .collect())
}

/// The one node a certificate names, if it names exactly one. A
/// certificate naming two nodes could speak for either, so it names none.
fn node_id_in_cert(der: &[u8]) -> Option<NodeId> {
    let mut ids = dns_names(der)
        .ok()?
        .into_iter()
        .filter_map(|n| node_id_from_name(&n));
    let first = ids.next()?;
    ids.all(|other| other == first).then_some(first)
}

/// The media node that the peer of a relay connection is, read from its
/// certificate (which the handshake has already verified against the
/// cluster CA). `None` if the connection has no peer certificate or it
/// names no single media node.
pub fn peer_node_id(conn: &quinn::Connection) -> Option<NodeId> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    node_id_in_cert(certs.first()?)
}
