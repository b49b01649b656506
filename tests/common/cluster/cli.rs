//! `veche cluster ...`, the operator's CLI, run against a test cluster.

use super::{Cluster, VECHE};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::Instant;

impl Cluster {
    /// [`Cluster::cli`] that must succeed: panics with its output if it
    /// failed, else returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "`veche cluster {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `veche cluster ARGS...` (blocking) with the secret in the
    /// environment and `--control-plane` defaulting to the first running
    /// member, and returns its output. A successful `add ID ..` makes the
    /// node a member in [`Cluster::ids`]; a successful `remove ID` makes it
    /// no longer one (its process keeps running until killed).
    pub fn cli(&self, args: &[&str]) -> Output {
        let default_cp = self
            .ids()
            .first()
            .map(|id| self.base(*id))
            .unwrap_or_default();
        let started = Instant::now();
        let out = Command::new(VECHE)
            .arg("cluster")
            .args(args)
            .env("VECHE_CLUSTER_SECRET", &self.secret)
            .env("VECHE_CONTROL_PLANE", default_cp)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY")
            .stdin(Stdio::null())
            .output()
            .expect("cannot run the veche binary");
        eprintln!(
            "[harness] veche cluster {} -> {} in {} ms\n[cli stdout] {}\n[cli stderr] {}",
            args.join(" "),
            out.status,
            started.elapsed().as_millis(),
            String::from_utf8_lossy(&out.stdout).trim_end(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
        let id = args.get(1).and_then(|s| s.parse::<u64>().ok());
        let node = id.and_then(|id| self.nodes.get(&id));
        match (args.first().copied(), node) {
            (Some("add"), Some(n)) if out.status.success() => {
                n.member.store(true, Ordering::Relaxed)
            }
            (Some("remove"), Some(n)) if out.status.success() => {
                n.member.store(false, Ordering::Relaxed)
            }
            _ => {}
        }
        out
    }
}
