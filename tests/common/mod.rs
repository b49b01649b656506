//! The shared harness of Veche's integration tests.
//!
//! Everything here drives real things: the `veche` binary as a child process,
//! real headless Chromium through chromedriver, real HTTP and WebSocket
//! clients. Nothing is mocked, so a passing test means a user would see the
//! same.
//!
//! Rules the helpers follow, so that tests can too:
//!
//! - **No bare sleeps.** [`wait_for`] polls a probe and, on timeout, panics
//!   with what was awaited *and* what the probe last saw.
//! - **Loopback only.** Every address is 127.0.0.1, so the tests work inside
//!   the loopback-only network namespace `scripts/test.sh` creates.
//! - **Cleanup on drop.** Servers, browsers and temporary directories go away
//!   when the test ends, pass or fail. A failing test keeps its server data
//!   directories and prints where they are.
//!
//! The integration tests are one binary (`tests/it.rs`), so each helper
//! here is compiled once, and one that no test uses any more is a warning.
//! The helpers of a few test families are modules of their own, which those
//! tests import by name: [`accounts`], [`moderation`] (with
//! [`moderation_member`] and [`moderation_browser`]), [`e2ee`], [`recording`],
//! [`oidc_provider`], [`stats_site`], [`windows`] and [`e2ee_browser`].
pub mod accounts;
pub mod browser;
pub mod cluster;
pub mod cluster_chat;
pub mod compose;
pub mod coturn;
pub mod deploy;
pub mod e2ee;
pub mod e2ee_browser;
pub mod fake_media;
pub mod http;
pub mod moderation;
pub mod moderation_browser;
pub mod moderation_member;
pub mod netns;
pub mod oidc_provider;
pub mod recording;
pub mod server;
pub mod signal;
pub mod stats_site;
pub mod tls_tunnel;
pub mod two_nodes;
pub mod webdriver;
pub mod windows;

pub use {browser::*, http::*, server::*, signal::*, webdriver::*};

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long `veche serve` may take to print its URL.
pub const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `veche` may take to exit after SIGTERM.
pub const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long chromedriver plus Chromium may take to open a session.
pub const BROWSER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// The interval between two probes of [`wait_for`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(150);
/// The Chromium binary, as Debian's `chromium` package installs it.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Shorthand for `Duration::from_secs`.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------

/// Polls `probe` until it returns `Ok`, and returns that value.
///
/// `probe` returns `Err(observed)` while the condition does not hold yet,
/// where `observed` describes what it saw (for example "framesDecoded per
/// track = {..}"). Errors of the browser or the network are "not yet" too:
/// the page may still be loading. If `timeout` passes, this panics with
/// `what` and the last `observed`, which is usually enough to tell why.
///
/// `what` should read as the end of "timed out waiting until ...".
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        // A probe that hangs (a stuck WebDriver command) must not outlive the
        // deadline, so each attempt gets only the time that is left.
        let left = timeout.saturating_sub(start.elapsed()).max(POLL_INTERVAL);
        let last = match tokio::time::timeout(left, probe()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(observed)) => observed,
            Err(_) => format!("the probe itself did not finish within {left:?}"),
        };
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting until {what}; last observed: {last}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

// ---------------------------------------------------------------------------
// Processes: the one harness, `veche-harness`
// ---------------------------------------------------------------------------

pub use veche_harness::{now_ms, TempDir};

/// The `veche` binary under test.
pub const VECHE: &str = env!("CARGO_BIN_EXE_veche");

/// Sends `signal` (e.g. "TERM") to one process, or with `group` to the
/// process group it leads (chromedriver and its Chromium). Uses the `kill`
/// command so the tests need no libc bindings.
fn send_signal(pid: u32, signal: &str, group: bool) -> bool {
    let target = if group {
        format!("-{pid}")
    } else {
        pid.to_string()
    };
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Waits up to `timeout` for `child` to exit.
fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => return None,
        }
    }
}

/// Runs the `veche` binary with `args` for a command that works on local
/// files only (`cluster ca`, `cluster cert`), asserts it succeeded, and
/// returns its stdout.
pub fn veche_ok(args: &[&std::ffi::OsStr]) -> String {
    veche_harness::certs::run_ok(Path::new(VECHE), args).unwrap_or_else(|e| panic!("{e}"))
}

/// A free TCP port on 127.0.0.1 (see [`veche_harness::free_port`]).
/// Another process could take it in between; callers that bind it retry.
pub fn free_port() -> u16 {
    veche_harness::free_port(std::net::Ipv4Addr::LOCALHOST).unwrap_or_else(|e| panic!("{e}"))
}
