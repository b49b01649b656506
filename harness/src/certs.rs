//! Relay certificates, made the way an operator makes them: with `veche
//! cluster ca` once and `veche cluster cert` per media node.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A relay CA in a directory, and the `veche` binary that issues node
/// certificates from it.
#[derive(Clone, Debug)]
pub struct Certs {
    exe: PathBuf,
    ca: PathBuf,
}

impl Certs {
    /// Makes a relay CA in `dir` (`veche cluster ca --out DIR`), or reuses
    /// the one already there.
    pub fn make(exe: &Path, dir: &Path) -> Result<Certs, String> {
        let certs = Certs {
            exe: exe.to_owned(),
            ca: dir.to_owned(),
        };
        if !dir.join("ca.key").exists() {
            certs.run(&["cluster", "ca", "--out", &dir.display().to_string()])?;
        }
        Ok(certs)
    }

    /// The CA's directory.
    pub fn ca_dir(&self) -> &Path {
        &self.ca
    }

    /// Issues media node `id` its certificate in `dir` (`veche cluster cert
    /// --ca CA --node ID --out DIR`), unless one is already there, and
    /// returns `dir`: what `--relay-tls` takes.
    pub fn node(&self, id: u64, dir: &Path) -> Result<PathBuf, String> {
        if !dir.join("node.key").exists() {
            self.run(&[
                "cluster",
                "cert",
                "--ca",
                &self.ca.display().to_string(),
                "--node",
                &id.to_string(),
                "--out",
                &dir.display().to_string(),
            ])?;
        }
        Ok(dir.to_owned())
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        run_ok(&self.exe, args).map(drop)
    }
}

/// Runs `exe ARGS` to completion (a command that works on local files
/// only) and returns its stdout, or why it failed with its output.
pub fn run_ok<S: AsRef<OsStr>>(exe: &Path, args: &[S]) -> Result<String, String> {
    let out = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(format!(
        "`veche {}` failed ({}): {}{}",
        args.iter()
            .map(|a| a.as_ref().to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}
