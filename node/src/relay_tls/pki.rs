//! The cluster's private PKI: making the CA, and issuing each media node
//! its relay certificate. Run by `veche cluster ca` and `veche cluster
//! cert` on an operator's machine, not by a running node.

use super::files::{create_dir, parse_cert, read, write, write_new};
use super::{server_name, RelayTlsError, CA_CERT_FILE, CA_KEY_FILE, NODE_CERT_FILE, NODE_KEY_FILE};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use veche_protocol::NodeId;

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
