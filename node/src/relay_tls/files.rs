//! Reading and writing the PEM files, with the permissions a private key
//! needs from the moment it exists.

use super::RelayTlsError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::io;
use std::path::Path;

pub(super) fn create_dir(dir: &Path) -> Result<(), RelayTlsError> {
    std::fs::create_dir_all(dir).map_err(|source| RelayTlsError::Io {
        path: dir.to_owned(),
        source,
    })
}

pub(super) fn read(path: &Path, hint: &'static str) -> Result<Vec<u8>, RelayTlsError> {
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
pub(super) fn parse_cert(
    path: &Path,
    pem: &[u8],
) -> Result<CertificateDer<'static>, RelayTlsError> {
    CertificateDer::from_pem_slice(pem).map_err(|e| RelayTlsError::BadFile {
        path: path.to_owned(),
        what: "PEM certificate",
        reason: e.to_string(),
    })
}

/// Writes a file that must not exist yet, with `mode` from the start (a
/// key is never readable by others, not even briefly).
pub(super) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), RelayTlsError> {
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
pub(super) fn write(path: &Path, contents: &[u8], mode: u32) -> Result<(), RelayTlsError> {
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
