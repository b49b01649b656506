//! Loading a node's relay files into the rustls and quinn configurations
//! it accepts and dials with, after checking everything a handshake would
//! later trip over.

use super::files::{parse_cert, read};
use super::{
    dns_names, node_id_from_name, node_id_in_cert, server_name, RelayTlsError, CA_CERT_FILE,
    NODE_CERT_FILE, NODE_KEY_FILE,
};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, SupportedProtocolVersion};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use veche_protocol::relay::RELAY_ALPN;
use veche_protocol::NodeId;

/// The relay sends keep-alives this often, so an idle but healthy
/// connection never reaches [`IDLE_TIMEOUT`].
pub(super) const KEEP_ALIVE: Duration = Duration::from_millis(500);
/// A relay connection that hears nothing for this long is dead. This
/// bounds how fast the other nodes notice a lost node and show its
/// participants as reconnecting: 2 to 2.5 s after the node falls silent
/// (the timer also restarts when we send the first keep-alive after our
/// last receipt; measured on loopback: 2.11 s), instead of QUIC's usual
/// 30 s. Four missed keep-alives in a row is well past ordinary loss.
/// (QUIC uses the smaller of the two peers' values, and never less than
/// 3 PTO.)
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
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

/// QUIC needs TLS 1.3; offering only that keeps quinn's check simple.
pub(super) const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// The ring provider, passed explicitly so nothing depends on a
/// process-wide default being installed (or on which one it is).
pub(super) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The relay's transport settings, the same on both sides; see the
/// constants for why each value.
pub(super) fn transport_config() -> quinn::TransportConfig {
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
