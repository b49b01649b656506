//! A local TCP port whose connections go on over TLS, verified with
//! rustls, to a server: a TLS client for tools that have none they can be
//! trusted with. `turnutils_uclient -S` stalls after its handshake now and
//! then, with coturn reading the ClientHello as if it were TURN; a browser's
//! `turns:` connection is TLS too, so the test speaks TURN over TCP through
//! this tunnel instead, and coturn sees a TLS client.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long each side's read waits before the other side's turn.
const POLL: Duration = Duration::from_millis(5);

/// The tunnel's listening port. Its threads end with the process, or
/// when either end of a connection closes.
pub struct TlsTunnel {
    /// Where plain TCP clients connect, on 127.0.0.1.
    pub port: u16,
}

impl TlsTunnel {
    /// Carries each connection to `server` over TLS, trusting only the
    /// certificate in `cert_pem` and checking it names `name`.
    pub fn start(server: SocketAddr, name: &str, cert_pem: &Path) -> TlsTunnel {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(cert_pem).expect("the PEM") {
            roots
                .add(cert.expect("a certificate"))
                .expect("a trust anchor");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).expect("a name");
        let listener = TcpListener::bind("127.0.0.1:0").expect("a tunnel port");
        let port = listener.local_addr().expect("bound").port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (config, name) = (config.clone(), name.clone());
                std::thread::spawn(move || {
                    if let Err(e) = carry(client, server, config, name) {
                        eprintln!("[tls tunnel] {e}");
                    }
                });
            }
        });
        TlsTunnel { port }
    }
}

/// Copies bytes both ways between `client` and a TLS connection to
/// `server` until either side closes.
fn carry(
    mut client: TcpStream,
    server: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
) -> std::io::Result<()> {
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(server)?;
    tcp.set_read_timeout(Some(POLL))?;
    client.set_read_timeout(Some(POLL))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut buf = [0u8; 16 * 1024];
    let waiting =
        |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    // The handshake first, so that the client's first bytes are not
    // written into a connection that is still waiting for the server.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tls.conn.is_handshaking() {
        match tls.conn.complete_io(&mut tls.sock) {
            Ok(_) => {}
            Err(e) if waiting(&e) && std::time::Instant::now() < deadline => {}
            Err(e) => return Err(e),
        }
    }
    loop {
        match client.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                tls.write_all(&buf[..n])?;
                tls.flush()?;
            }
            Err(e) if waiting(&e) => {}
            Err(e) => return Err(e),
        }
        match tls.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => client.write_all(&buf[..n])?,
            Err(e) if waiting(&e) => {}
            Err(e) => return Err(e),
        }
    }
}
