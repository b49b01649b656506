use super::config::{provider, transport_config, IDLE_TIMEOUT, KEEP_ALIVE, TLS13};
use super::*;
use bytes::Bytes;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::RootCertStore;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use tempfile::TempDir;
use veche_protocol::relay::RELAY_ALPN;

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
                reason: rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
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
