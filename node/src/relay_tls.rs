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

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, SupportedProtocolVersion};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use veche_protocol::relay::RELAY_ALPN;
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

/// The CA is valid for 10 years: replacing it means issuing every node a
/// new certificate at once, so it should outlive the hardware it was made
/// on. Its key is meant to be kept offline, which is what makes the long
/// life acceptable.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// A node certificate is valid for 2 years: long enough that renewal is a
/// planned chore rather than an outage, short enough that a certificate
/// copied off a retired machine stops working on its own (there is no
/// revocation list).
const NODE_VALIDITY: Duration = Duration::from_secs(2 * 365 * 24 * 3600);
/// Certificates start being valid this long before they are made, so a
/// node whose clock runs a little behind the issuing machine's can use a
/// fresh certificate at once.
const BACKDATE: Duration = Duration::from_secs(3600);

/// The relay sends keep-alives this often, so an idle but healthy
/// connection never reaches [`IDLE_TIMEOUT`].
const KEEP_ALIVE: Duration = Duration::from_millis(500);
/// A relay connection that hears nothing for this long is dead. This
/// bounds how fast the other nodes notice a lost node and show its
/// participants as reconnecting: 2 to 2.5 s after the node falls silent
/// (the timer also restarts when we send the first keep-alive after our
/// last receipt; measured on loopback: 2.11 s), instead of QUIC's usual
/// 30 s. Four missed keep-alives in a row is well past ordinary loss.
/// (QUIC uses the smaller of the two peers' values, and never less than
/// 3 PTO.)
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Datagrams received but not yet read by the relay task. Media arrives
/// in datagrams; at 50 Mbit/s of relayed media 2 MiB is about 300 ms,
/// enough to ride out a scheduling hiccup without queueing stale media for
/// long. Beyond it quinn drops the newest datagrams.
const DATAGRAM_RECEIVE_BUFFER: usize = 2 << 20;
/// Datagrams queued for sending. When it is full `send_datagram` drops the
/// oldest, which is what media wants: a late packet is worse than a lost
/// one, so this is kept smaller than the receive side.
const DATAGRAM_SEND_BUFFER: usize = 1 << 20;
/// The protocol opens exactly one unidirectional control stream per
/// connection; allowing no more bounds what a broken peer can make us
/// buffer.
const MAX_INCOMING_UNI_STREAMS: u32 = 1;

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

/// Makes a new cluster CA: writes `ca.crt` and `ca.key` (PEM, the key
/// readable by its owner only) into `dir`, creating it.
///
/// Refuses if `dir` already holds a `ca.key`: overwriting it would orphan
/// every certificate issued under it.
pub fn generate_ca(dir: &Path) -> Result<(), RelayTlsError> {
    let key_path = dir.join(CA_KEY_FILE);
    if key_path.exists() {
        return Err(RelayTlsError::AlreadyExists { path: key_path });
    }
    create_dir(dir)?;

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Veche");
    // A random tag per CA: two clusters' CAs then differ by name, so a
    // certificate from the wrong one is reported as "unknown issuer"
    // rather than a bad signature, and `openssl x509 -issuer` tells them
    // apart.
    dn.push(
        DnType::CommonName,
        format!("Veche media relay CA {}", random_tag()?),
    );
    params.distinguished_name = dn;
    // Path length 0: the CA signs node certificates directly and nothing
    // it signs can act as a CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_VALIDITY);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;

    // The key first, with create_new: if another run raced us, we fail
    // before touching its certificate.
    write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write(&dir.join(CA_CERT_FILE), cert.pem().as_bytes(), 0o644)
}

/// Issues media node `node` its relay certificate: writes `node.crt`,
/// `node.key` (owner-only) and a copy of `ca.crt` into `out_dir`, which is
/// then everything the node needs (`veche media-node --relay-tls
/// out_dir`).
///
/// The certificate carries the DNS name [`server_name`]`(node)` and both
/// the server- and client-auth usages, because a node both accepts relay
/// connections and dials them. Refuses if `out_dir` already holds a
/// `node.key`.
pub fn issue_node_cert(ca_dir: &Path, node: NodeId, out_dir: &Path) -> Result<(), RelayTlsError> {
    let ca_cert_path = ca_dir.join(CA_CERT_FILE);
    let ca_key_path = ca_dir.join(CA_KEY_FILE);
    let ca_pem = read(&ca_cert_path, "make the CA with `veche cluster ca`")?;
    let ca_key_pem = read(&ca_key_path, "make the CA with `veche cluster ca`")?;
    let ca_der = parse_cert(&ca_cert_path, &ca_pem)?;
    let ca_key = KeyPair::from_pem(&String::from_utf8_lossy(&ca_key_pem)).map_err(|e| {
        RelayTlsError::BadFile {
            path: ca_key_path.clone(),
            what: "PEM private key",
            reason: e.to_string(),
        }
    })?;
    // Signing with a key that does not match the CA certificate would give
    // certificates that no node accepts; say so now instead.
    let (_, ca_x509) =
        x509_parser::parse_x509_certificate(&ca_der).map_err(|e| RelayTlsError::BadFile {
            path: ca_cert_path.clone(),
            what: "X.509 certificate",
            reason: e.to_string(),
        })?;
    if ca_x509.public_key().subject_public_key.data.as_ref() != ca_key.public_key_raw() {
        return Err(RelayTlsError::KeyMismatch {
            key: ca_key_path,
            cert: ca_cert_path,
        });
    }
    let issuer = Issuer::from_ca_cert_der(&ca_der, ca_key)?;

    let key_path = out_dir.join(NODE_KEY_FILE);
    if key_path.exists() {
        return Err(RelayTlsError::AlreadyExists { path: key_path });
    }
    create_dir(out_dir)?;

    let name = server_name(node);
    let mut params = CertificateParams::new(vec![name.clone()])?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Veche");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, NODE_VALIDITY);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write(&out_dir.join(NODE_CERT_FILE), cert.pem().as_bytes(), 0o644)?;
    // Written from memory rather than copied: `out_dir` may be `ca_dir`,
    // and copying a file onto itself truncates it.
    write(&out_dir.join(CA_CERT_FILE), &ca_pem, 0o644)
}

/// A media node's QUIC configuration for the relay: `server` for the
/// endpoint that accepts other nodes, `client` for dialing them (with
/// [`server_name`] of the peer as the server name).
#[derive(Clone)]
pub struct RelayTls {
    /// Accepts only peers with a certificate from the cluster CA.
    pub server: quinn::ServerConfig,
    /// Trusts only the cluster CA and presents this node's certificate.
    pub client: quinn::ClientConfig,
}

impl std::fmt::Debug for RelayTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayTls").finish_non_exhaustive()
    }
}

/// Loads media node `node`'s relay TLS files (`ca.crt`, `node.crt`,
/// `node.key`) from `dir` and builds its QUIC configurations.
///
/// Everything a handshake would later trip over is checked here, so a
/// misconfigured node fails at start-up with a message naming the file
/// rather than failing every relay connection: the certificate must name
/// this node, be valid now under `ca.crt` for both usages, and match the
/// key.
pub fn load(dir: &Path, node: NodeId) -> Result<RelayTls, RelayTlsError> {
    const HINT: &str = "issue the node's files with `veche cluster cert`";
    let ca_path = dir.join(CA_CERT_FILE);
    let cert_path = dir.join(NODE_CERT_FILE);
    let key_path = dir.join(NODE_KEY_FILE);
    let ca = parse_cert(&ca_path, &read(&ca_path, HINT)?)?;
    let cert = parse_cert(&cert_path, &read(&cert_path, HINT)?)?;
    let key = PrivateKeyDer::from_pem_slice(&read(&key_path, HINT)?).map_err(|e| {
        RelayTlsError::BadFile {
            path: key_path.clone(),
            what: "PEM private key",
            reason: e.to_string(),
        }
    })?;

    let expected = server_name(node);
    if node_id_in_cert(&cert) != Some(node) {
        let names = dns_names(&cert).map_err(|reason| RelayTlsError::BadFile {
            path: cert_path.clone(),
            what: "X.509 certificate",
            reason,
        })?;
        let media: Vec<_> = names
            .into_iter()
            .filter(|n| node_id_from_name(n).is_some())
            .collect();
        return Err(RelayTlsError::WrongNode {
            path: cert_path,
            node,
            expected,
            found: if media.is_empty() {
                "no media node name".to_owned()
            } else {
                media.join(", ")
            },
        });
    }

    let provider = provider();
    let mut roots = RootCertStore::empty();
    roots.add(ca).map_err(|e| RelayTlsError::BadFile {
        path: ca_path.clone(),
        what: "CA certificate",
        reason: e.to_string(),
    })?;
    let roots = Arc::new(roots);

    // Verify our own certificate as a peer would, in both roles.
    let now = UnixTime::now();
    let not_valid = |reason| RelayTlsError::NotValidUnderCa {
        cert: cert_path.clone(),
        ca: ca_path.clone(),
        reason,
    };
    let server_verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()?;
    let our_name = ServerName::try_from(expected.clone()).map_err(|e| RelayTlsError::BadFile {
        path: cert_path.clone(),
        what: "node name",
        reason: e.to_string(),
    })?;
    server_verifier
        .verify_server_cert(&cert, &[], &our_name, &[], now)
        .map_err(not_valid)?;
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
    client_verifier
        .verify_client_cert(&cert, &[], now)
        .map_err(not_valid)?;

    let mismatch = |e: rustls::Error| match e {
        rustls::Error::InconsistentKeys(_) => RelayTlsError::KeyMismatch {
            key: key_path.clone(),
            cert: cert_path.clone(),
        },
        e => RelayTlsError::Rustls(e),
    };
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(TLS13)?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(vec![cert.clone()], key.clone_key())
        .map_err(mismatch)?;
    server.alpn_protocols = vec![RELAY_ALPN.to_vec()];
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(TLS13)?
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![cert], key)
        .map_err(mismatch)?;
    client.alpn_protocols = vec![RELAY_ALPN.to_vec()];

    let transport = Arc::new(transport_config());
    let mut server =
        quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(server)?));
    server.transport_config(transport.clone());
    let mut client = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(client)?));
    client.transport_config(transport);
    Ok(RelayTls { server, client })
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

/// QUIC needs TLS 1.3; offering only that keeps quinn's check simple.
const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// The ring provider, passed explicitly so nothing depends on a
/// process-wide default being installed (or on which one it is).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The relay's transport settings, the same on both sides; see the
/// constants for why each value.
fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE))
        .max_idle_timeout(Some(
            IDLE_TIMEOUT
                .try_into()
                .expect("2 s fits a QUIC idle timeout"),
        ))
        .datagram_receive_buffer_size(Some(DATAGRAM_RECEIVE_BUFFER))
        .datagram_send_buffer_size(DATAGRAM_SEND_BUFFER)
        .max_concurrent_uni_streams(MAX_INCOMING_UNI_STREAMS.into())
        .max_concurrent_bidi_streams(0u32.into())
        // quinn starts at 1200 bytes of UDP payload, which leaves 1162 for a
        // datagram: less than a full-size RTP packet (browsers and our bots
        // send up to ~1215 bytes with the relay header). 1280 fits them and
        // every tunnel between data centres we know of; path-MTU discovery
        // raises it further, and quinn's black-hole detection falls back to
        // 1200 (`min_mtu`) on a path that cannot carry it.
        .initial_mtu(INITIAL_MTU);
    t
}

/// See [`transport_config`].
const INITIAL_MTU: u16 = 1280;

/// Eight random bytes in hex.
fn random_tag() -> Result<String, RelayTlsError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| rcgen::Error::RingUnspecified)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Makes `params` valid from [`BACKDATE`] ago for `valid_for` from now.
/// Time arithmetic goes through rcgen's own date type, so the `time` crate
/// need not be a direct dependency.
fn set_validity(params: &mut CertificateParams, valid_for: Duration) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - BACKDATE;
    params.not_after = now + valid_for;
}

fn create_dir(dir: &Path) -> Result<(), RelayTlsError> {
    std::fs::create_dir_all(dir).map_err(|source| RelayTlsError::Io {
        path: dir.to_owned(),
        source,
    })
}

fn read(path: &Path, hint: &'static str) -> Result<Vec<u8>, RelayTlsError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => RelayTlsError::Missing {
            path: path.to_owned(),
            hint,
        },
        _ => RelayTlsError::Io {
            path: path.to_owned(),
            source,
        },
    })
}

/// The first certificate in a PEM file.
fn parse_cert(path: &Path, pem: &[u8]) -> Result<CertificateDer<'static>, RelayTlsError> {
    CertificateDer::from_pem_slice(pem).map_err(|e| RelayTlsError::BadFile {
        path: path.to_owned(),
        what: "PEM certificate",
        reason: e.to_string(),
    })
}

/// Writes a file that must not exist yet, with `mode` from the start (a
/// key is never readable by others, not even briefly).
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), RelayTlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    set_mode(&mut opts, mode);
    let mut f = opts.open(path).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => RelayTlsError::AlreadyExists {
            path: path.to_owned(),
        },
        _ => RelayTlsError::Io {
            path: path.to_owned(),
            source,
        },
    })?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(|source| RelayTlsError::Io {
            path: path.to_owned(),
            source,
        })
}

/// Writes a public file, replacing what was there.
fn write(path: &Path, contents: &[u8], mode: u32) -> Result<(), RelayTlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    set_mode(&mut opts, mode);
    let io_err = |source| RelayTlsError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = opts.open(path).map_err(io_err)?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(io_err)
}

#[cfg(unix)]
fn set_mode(opts: &mut std::fs::OpenOptions, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    opts.mode(mode);
}

#[cfg(not(unix))]
fn set_mode(_: &mut std::fs::OpenOptions, _: u32) {}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;
    use tempfile::TempDir;

    /// Long enough for any loopback handshake, short enough that a hang
    /// fails the test instead of the CI job.
    const STEP: Duration = Duration::from_secs(10);

    /// A CA in `root/<name>` and relay files for `nodes` under it in
    /// `root/<name>-node-<id>`.
    fn cluster(root: &Path, name: &str, nodes: &[u64]) -> Vec<PathBuf> {
        let ca = root.join(name);
        generate_ca(&ca).unwrap();
        nodes
            .iter()
            .map(|&id| {
                let dir = root.join(format!("{name}-node-{id}"));
                issue_node_cert(&ca, NodeId(id), &dir).unwrap();
                dir
            })
            .collect()
    }

    fn endpoint(tls: &RelayTls) -> quinn::Endpoint {
        quinn::Endpoint::server(tls.server.clone(), "127.0.0.1:0".parse().unwrap()).unwrap()
    }

    fn cert_and_key(dir: &Path) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let cert = CertificateDer::from_pem_file(dir.join(NODE_CERT_FILE)).unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join(NODE_KEY_FILE)).unwrap();
        (cert, key)
    }

    /// A relay client that trusts `trust_ca_dir`'s CA and presents
    /// `identity_dir`'s certificate (or none), bypassing `load`'s checks
    /// so a test can build a client that `load` would refuse.
    fn client_config(trust_ca_dir: &Path, identity_dir: Option<&Path>) -> quinn::ClientConfig {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(trust_ca_dir.join(CA_CERT_FILE)).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(TLS13)
            .unwrap()
            .with_root_certificates(roots);
        let mut cfg = match identity_dir {
            Some(dir) => {
                let (cert, key) = cert_and_key(dir);
                builder.with_client_auth_cert(vec![cert], key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![RELAY_ALPN.to_vec()];
        let mut cfg = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(cfg).unwrap()));
        cfg.transport_config(Arc::new(transport_config()));
        cfg
    }

    /// Dials `server` at `addr` and has it accept; returns both sides'
    /// outcomes.
    async fn handshake(
        dialer: &quinn::Endpoint,
        cfg: quinn::ClientConfig,
        server: &quinn::Endpoint,
        addr: SocketAddr,
        name: &str,
    ) -> (
        Result<quinn::Connection, quinn::ConnectionError>,
        Result<quinn::Connection, quinn::ConnectionError>,
    ) {
        let connecting = dialer.connect_with(cfg, addr, name).unwrap();
        let accepted = async { server.accept().await.expect("endpoint open").await };
        tokio::time::timeout(STEP, async { tokio::join!(connecting, accepted) })
            .await
            .expect("handshake neither finished nor failed within 10 s")
    }

    /// A dialer whose handshake "succeeded" must still be refused: with
    /// TLS 1.3 the client finishes before the server has judged its
    /// certificate, so the refusal arrives as the connection closing.
    async fn assert_refused(client: Result<quinn::Connection, quinn::ConnectionError>) {
        if let Ok(conn) = client {
            let err = tokio::time::timeout(STEP, conn.closed())
                .await
                .expect("a refused client's connection should close promptly");
            assert!(
                matches!(
                    err,
                    quinn::ConnectionError::TransportError(_)
                        | quinn::ConnectionError::ConnectionClosed(_)
                ),
                "closed for the wrong reason: {err}"
            );
            assert!(conn.accept_uni().await.is_err());
        }
    }

    #[tokio::test]
    async fn nodes_under_one_ca_connect_and_learn_each_others_id() {
        let root = TempDir::new().unwrap();
        let dirs = cluster(root.path(), "ca", &[1, 2]);
        let a = load(&dirs[0], NodeId(1)).unwrap();
        let b = load(&dirs[1], NodeId(2)).unwrap();
        let (ea, eb) = (endpoint(&a), endpoint(&b));
        let addr = eb.local_addr().unwrap();

        let (client, server) =
            handshake(&ea, a.client.clone(), &eb, addr, &server_name(NodeId(2))).await;
        let (client, server) = (client.unwrap(), server.unwrap());
        assert_eq!(peer_node_id(&client), Some(NodeId(2)));
        assert_eq!(peer_node_id(&server), Some(NodeId(1)));
        let alpn = server
            .handshake_data()
            .unwrap()
            .downcast::<quinn::crypto::rustls::HandshakeData>()
            .unwrap()
            .protocol;
        assert_eq!(alpn.as_deref(), Some(RELAY_ALPN));

        let max = client.max_datagram_size().expect("datagrams negotiated");
        eprintln!("max_datagram_size right after the handshake: {max}");
        client.send_datagram(Bytes::from_static(b"rtp")).unwrap();
        let got = tokio::time::timeout(STEP, server.read_datagram())
            .await
            .expect("no datagram within 10 s")
            .unwrap();
        assert_eq!(&got[..], b"rtp");

        let mut tx = client.open_uni().await.unwrap();
        tx.write_all(b"control").await.unwrap();
        tx.finish().unwrap();
        let mut rx = tokio::time::timeout(STEP, server.accept_uni())
            .await
            .expect("no stream within 10 s")
            .unwrap();
        assert_eq!(rx.read_to_end(1024).await.unwrap(), b"control");
        client.close(0u32.into(), b"done");
    }

    #[tokio::test]
    async fn client_with_certificate_from_another_ca_is_refused() {
        let root = TempDir::new().unwrap();
        let ours = cluster(root.path(), "ours", &[2]);
        let theirs = cluster(root.path(), "theirs", &[1]);
        let b = load(&ours[0], NodeId(2)).unwrap();
        let eb = endpoint(&b);
        let ea = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        // Trusts our CA (so the server passes) but proves itself with a
        // certificate from another CA.
        let cfg = client_config(&ours[0], Some(&theirs[0]));

        let addr = eb.local_addr().unwrap();
        let (client, server) = handshake(&ea, cfg, &eb, addr, &server_name(NodeId(2))).await;
        assert!(server.is_err(), "the server accepted a foreign client");
        assert_refused(client).await;
    }

    #[tokio::test]
    async fn client_without_certificate_is_refused() {
        let root = TempDir::new().unwrap();
        let dirs = cluster(root.path(), "ca", &[2]);
        let b = load(&dirs[0], NodeId(2)).unwrap();
        let eb = endpoint(&b);
        let ea = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let cfg = client_config(&dirs[0], None);

        let addr = eb.local_addr().unwrap();
        let (client, server) = handshake(&ea, cfg, &eb, addr, &server_name(NodeId(2))).await;
        assert!(server.is_err(), "the server accepted an anonymous client");
        assert_refused(client).await;
    }

    #[tokio::test]
    async fn dialing_a_node_under_another_nodes_name_fails() {
        let root = TempDir::new().unwrap();
        let dirs = cluster(root.path(), "ca", &[1, 2]);
        let a = load(&dirs[0], NodeId(1)).unwrap();
        let b = load(&dirs[1], NodeId(2)).unwrap();
        let (ea, eb) = (endpoint(&a), endpoint(&b));
        let addr = eb.local_addr().unwrap();

        // We think node 3 lives there, but node 2 answers.
        let (client, server) =
            handshake(&ea, a.client.clone(), &eb, addr, &server_name(NodeId(3))).await;
        let err = client.expect_err("the client accepted node 2 as node 3");
        assert!(
            matches!(err, quinn::ConnectionError::TransportError(_)),
            "{err}"
        );
        assert!(server.is_err());
    }

    #[tokio::test]
    async fn dead_peer_is_noticed_within_the_idle_timeout() {
        let root = TempDir::new().unwrap();
        let dirs = cluster(root.path(), "ca", &[1, 2]);
        let a = load(&dirs[0], NodeId(1)).unwrap();
        let b = load(&dirs[1], NodeId(2)).unwrap();
        let (ea, eb) = (endpoint(&a), endpoint(&b));
        let (proxy, cut) = black_hole_proxy(eb.local_addr().unwrap()).await;

        let (client, server) =
            handshake(&ea, a.client.clone(), &eb, proxy, &server_name(NodeId(2))).await;
        let (client, server) = (client.unwrap(), server.unwrap());
        // Idle for longer than the timeout: keep-alives hold it open.
        tokio::time::sleep(IDLE_TIMEOUT + Duration::from_millis(500)).await;
        assert!(client.close_reason().is_none(), "keep-alives did not work");

        cut.store(true, Ordering::Relaxed);
        let cut_at = Instant::now();
        let (c, s) = tokio::time::timeout(STEP, async {
            tokio::join!(client.closed(), server.closed())
        })
        .await
        .expect("a silent peer was not noticed within 10 s");
        let took = cut_at.elapsed();
        assert!(matches!(c, quinn::ConnectionError::TimedOut), "{c}");
        assert!(matches!(s, quinn::ConnectionError::TimedOut), "{s}");
        // At most one keep-alive interval past the idle timeout (see
        // IDLE_TIMEOUT), plus slack for a loaded test machine.
        assert!(
            took < IDLE_TIMEOUT + KEEP_ALIVE + Duration::from_secs(1),
            "took {took:?} to notice"
        );
    }

    /// A one-client UDP relay to `server` that drops everything once the
    /// returned flag is set: a peer that vanished without closing.
    async fn black_hole_proxy(server: SocketAddr) -> (SocketAddr, Arc<AtomicBool>) {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let flag = cut.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            let mut client = None;
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                if flag.load(Ordering::Relaxed) {
                    continue;
                }
                let to = if from == server {
                    match client {
                        Some(c) => c,
                        None => continue,
                    }
                } else {
                    client = Some(from);
                    server
                };
                let _ = sock.send_to(&buf[..n], to).await;
            }
        });
        (addr, cut)
    }

    #[test]
    fn load_refuses_another_nodes_certificate() {
        let root = TempDir::new().unwrap();
        let dirs = cluster(root.path(), "ca", &[3]);
        let err = load(&dirs[0], NodeId(4)).unwrap_err();
        match &err {
            RelayTlsError::WrongNode {
                node,
                expected,
                found,
                ..
            } => {
                assert_eq!(*node, NodeId(4));
                assert_eq!(expected, "media-4.veche");
                assert_eq!(found, "media-3.veche");
            }
            other => panic!("wrong error: {other}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("node.crt") && msg.contains("media-3.veche"),
            "{msg}"
        );
    }

    #[test]
    fn load_refuses_a_certificate_from_another_ca() {
        let root = TempDir::new().unwrap();
        let ours = cluster(root.path(), "ours", &[1]);
        let theirs = cluster(root.path(), "theirs", &[2]);
        std::fs::copy(theirs[0].join(CA_CERT_FILE), ours[0].join(CA_CERT_FILE)).unwrap();
        let err = load(&ours[0], NodeId(1)).unwrap_err();
        assert!(
            matches!(
                err,
                RelayTlsError::NotValidUnderCa {
                    reason: rustls::Error::InvalidCertificate(
                        rustls::CertificateError::UnknownIssuer
                    ),
                    ..
                }
            ),
            "wrong error: {err}"
        );
    }

    #[test]
    fn load_refuses_a_key_of_another_node() {
        let root = TempDir::new().unwrap();
        let dirs = cluster(root.path(), "ca", &[1, 2]);
        std::fs::remove_file(dirs[0].join(NODE_KEY_FILE)).unwrap();
        std::fs::copy(dirs[1].join(NODE_KEY_FILE), dirs[0].join(NODE_KEY_FILE)).unwrap();
        let err = load(&dirs[0], NodeId(1)).unwrap_err();
        assert!(
            matches!(err, RelayTlsError::KeyMismatch { .. }),
            "wrong error: {err}"
        );
    }

    #[test]
    fn load_names_the_missing_file() {
        let root = TempDir::new().unwrap();
        let dirs = cluster(root.path(), "ca", &[1]);
        std::fs::remove_file(dirs[0].join(NODE_KEY_FILE)).unwrap();
        let err = load(&dirs[0], NodeId(1)).unwrap_err();
        match &err {
            RelayTlsError::Missing { path, .. } => assert!(path.ends_with(NODE_KEY_FILE)),
            other => panic!("wrong error: {other}"),
        }
    }

    #[test]
    fn generate_ca_twice_fails_and_keeps_the_key() {
        let root = TempDir::new().unwrap();
        let dir = root.path().join("ca");
        generate_ca(&dir).unwrap();
        let key = std::fs::read(dir.join(CA_KEY_FILE)).unwrap();
        let cert = std::fs::read(dir.join(CA_CERT_FILE)).unwrap();

        let err = generate_ca(&dir).unwrap_err();
        assert!(
            matches!(&err, RelayTlsError::AlreadyExists { path } if path.ends_with(CA_KEY_FILE)),
            "wrong error: {err}"
        );
        assert_eq!(std::fs::read(dir.join(CA_KEY_FILE)).unwrap(), key);
        assert_eq!(std::fs::read(dir.join(CA_CERT_FILE)).unwrap(), cert);
    }

    #[test]
    fn issue_node_cert_twice_fails_and_keeps_the_key() {
        let root = TempDir::new().unwrap();
        let dirs = cluster(root.path(), "ca", &[1]);
        let key = std::fs::read(dirs[0].join(NODE_KEY_FILE)).unwrap();
        let err = issue_node_cert(&root.path().join("ca"), NodeId(1), &dirs[0]).unwrap_err();
        assert!(
            matches!(&err, RelayTlsError::AlreadyExists { path } if path.ends_with(NODE_KEY_FILE)),
            "wrong error: {err}"
        );
        assert_eq!(std::fs::read(dirs[0].join(NODE_KEY_FILE)).unwrap(), key);
    }

    #[cfg(unix)]
    #[test]
    fn private_keys_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = TempDir::new().unwrap();
        let dirs = cluster(root.path(), "ca", &[1]);
        for key in [
            root.path().join("ca").join(CA_KEY_FILE),
            dirs[0].join(NODE_KEY_FILE),
        ] {
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
    }

    #[test]
    fn issuing_into_the_ca_directory_keeps_the_ca_intact() {
        let root = TempDir::new().unwrap();
        let ca = root.path().join("ca");
        generate_ca(&ca).unwrap();
        let before = std::fs::read(ca.join(CA_CERT_FILE)).unwrap();
        issue_node_cert(&ca, NodeId(7), &ca).unwrap();
        assert_eq!(std::fs::read(ca.join(CA_CERT_FILE)).unwrap(), before);
        load(&ca, NodeId(7)).unwrap();
    }

    #[test]
    fn server_name_parses_back_only_in_canonical_form() {
        for id in [0, 3, u64::MAX] {
            assert_eq!(
                node_id_from_name(&server_name(NodeId(id))),
                Some(NodeId(id))
            );
        }
        assert_eq!(server_name(NodeId(3)), "media-3.veche");
        for bad in [
            "media-03.veche",
            "media-+3.veche",
            "media-.veche",
            "media-3.veche.example",
            "xmedia-3.veche",
            "media-18446744073709551616.veche",
        ] {
            assert_eq!(node_id_from_name(bad), None, "{bad}");
        }
    }
}
