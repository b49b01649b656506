//! A `veche serve` under test, started with `veche-harness`.

use super::*;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use veche_harness::{Launch, Process, Ready};

/// A running `veche serve` on 127.0.0.1 with its own data directory.
///
/// Its stdout and stderr are copied to the test's stderr, prefixed with
/// `[veche#N]` where N counts restarts. Dropping it kills the process.
pub struct Server {
    proc: Process,
    base: String,
    data_dir: PathBuf,
    // Dropped last, so the directory outlives the process.
    _owned_dir: Option<TempDir>,
}

impl Server {
    /// Starts a server on a fresh temporary data directory.
    pub fn start() -> Server {
        let dir = TempDir::new("data");
        let mut server = Server::start_with_data_dir(dir.path());
        server._owned_dir = Some(dir);
        server
    }

    /// Starts a server on `data_dir`, which the caller owns.
    pub fn start_with_data_dir(data_dir: &Path) -> Server {
        Server::start_with_args(data_dir, Vec::new())
    }

    /// Starts a server on a fresh data directory with a config file holding
    /// `toml` (written next to the data directory).
    pub fn start_with_config(toml: &str) -> Server {
        let dir = TempDir::new("data");
        let config = dir.path().join("veche.toml");
        std::fs::write(&config, toml).expect("write config");
        let data = dir.path().join("data");
        let mut server =
            Server::start_with_args(&data, vec!["--config".into(), config.into_os_string()]);
        server._owned_dir = Some(dir);
        server
    }

    /// Like [`Server::start_with_config`], listening on `ip` instead of
    /// 127.0.0.1 (for browsers in another network namespace).
    pub fn start_on(ip: std::net::IpAddr, toml: &str) -> Server {
        let dir = TempDir::new("data");
        let config = dir.path().join("veche.toml");
        std::fs::write(&config, toml).expect("write config");
        let data = dir.path().join("data");
        let mut server = Server::start_listening(
            &data,
            vec!["--config".into(), config.into_os_string()],
            &format!("{ip}:0"),
        );
        server._owned_dir = Some(dir);
        server
    }

    fn start_with_args(data_dir: &Path, extra_args: Vec<std::ffi::OsString>) -> Server {
        Server::start_listening(data_dir, extra_args, "127.0.0.1:0")
    }

    fn start_listening(
        data_dir: &Path,
        extra_args: Vec<std::ffi::OsString>,
        listen: &str,
    ) -> Server {
        let launch = Launch::new("veche", VECHE)
            .arg("serve")
            .args(extra_args)
            .args(["--listen", listen, "--data-dir"])
            .arg(data_dir)
            .ready(Ready::Url);
        let mut proc = launch.spawn().unwrap_or_else(|e| panic!("{e}"));
        let base = Server::await_url(&mut proc);
        Server {
            proc,
            base,
            data_dir: data_dir.to_owned(),
            _owned_dir: None,
        }
    }

    fn await_url(proc: &mut Process) -> String {
        let base = proc
            .ready_blocking(SERVER_START_TIMEOUT)
            .unwrap_or_else(|e| panic!("veche serve did not come up: {e}"));
        eprintln!(
            "[harness] veche#{} (pid {}) is at {base}",
            proc.starts(),
            proc.pid().unwrap_or(0)
        );
        base
    }

    /// The base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `path` (starting with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    /// Sends SIGTERM and waits up to [`SERVER_STOP_TIMEOUT`] for the process
    /// to exit. Panics if it does not (after killing it), since a server
    /// that ignores SIGTERM would hang every deployment's restart.
    pub fn stop(&mut self) -> ExitStatus {
        assert!(self.proc.is_running(), "the server is not running");
        let pid = self.proc.pid().unwrap_or(0);
        let status = self
            .proc
            .stop_blocking(SERVER_STOP_TIMEOUT)
            .unwrap_or_else(|e| panic!("veche (pid {pid}): {e}"));
        eprintln!(
            "[harness] veche#{} (pid {pid}) exited: {status}",
            self.proc.starts()
        );
        status
    }

    /// Stops the server (as [`Server::stop`]) and starts it again on the same
    /// data directory. The base URL changes, since the port is picked anew.
    /// Returns how the old process exited.
    pub fn restart(&mut self) -> ExitStatus {
        let status = self.stop();
        self.proc.restart().unwrap_or_else(|e| panic!("{e}"));
        self.base = Server::await_url(&mut self.proc);
        status
    }
}
