//! A coturn (`turnserver`) for browsers on strict networks: TURN over TCP
//! on a free port and, when asked, TURN over TLS on 443 with a test
//! certificate made by `openssl`, both on one address of the test's
//! namespace, with the REST-credential scheme the control plane issues.
//!
//! Needs Debian's `coturn` and `openssl`.

use super::*;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};

/// The secret coturn shares with the control plane.
pub const TURN_SECRET: &str = "strict-network-test-secret-shared-with-coturn";

/// A running coturn, killed on drop.
pub struct Coturn {
    child: Child,
    /// Where it listens.
    pub ip: Ipv4Addr,
    /// Its plain TURN port (UDP and TCP).
    pub port: u16,
    /// True when it also serves TLS on 443.
    pub tls: bool,
    _dir: TempDir,
}

impl Coturn {
    /// Starts coturn on `ip`, with TLS on 443 if `tls`, and waits until
    /// its ports accept connections.
    pub async fn start(ip: Ipv4Addr, tls: bool) -> Coturn {
        let dir = TempDir::scratch("coturn");
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--use-auth-secret".into(),
            format!("--static-auth-secret={TURN_SECRET}"),
            "-L".into(),
            ip.to_string(),
            "--relay-ip".into(),
            ip.to_string(),
            "-p".into(),
            port.to_string(),
            "--realm".into(),
            "veche".into(),
            "--no-cli".into(),
            "--no-dtls".into(),
            "--simple-log".into(),
            "--log-file".into(),
            "stdout".into(),
            "--pidfile".into(),
            dir.path().join("turnserver.pid").display().to_string(),
        ];
        if tls {
            let cert = dir.path().join("cert.pem");
            let key = dir.path().join("key.pem");
            let out = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args(["-subj", "/CN=veche-test-turn"])
                .arg("-addext")
                .arg(format!("subjectAltName=IP:{ip}"))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            args.extend([
                "--tls-listening-port".into(),
                "443".into(),
                "--cert".into(),
                cert.display().to_string(),
                "--pkey".into(),
                key.display().to_string(),
            ]);
        } else {
            args.push("--no-tls".into());
        }
        let child = Command::new("turnserver")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start turnserver ({e}); apt-get install coturn"));
        let coturn = Coturn {
            child,
            ip,
            port,
            tls,
            _dir: dir,
        };
        let mut ports = vec![port];
        if tls {
            ports.push(443);
        }
        for p in ports {
            wait_for(
                &format!("coturn listens on {ip}:{p}"),
                secs(20),
                async || {
                    tokio::net::TcpStream::connect((ip, p))
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                },
            )
            .await;
        }
        coturn
    }

    /// The URL browsers use: TURN over TCP, or TURN over TLS on 443.
    pub fn url(&self) -> String {
        if self.tls {
            format!("turns:{}:443?transport=tcp", self.ip)
        } else {
            format!("turn:{}:{}?transport=tcp", self.ip, self.port)
        }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
