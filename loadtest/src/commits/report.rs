//! The report of `veche loadtest-commits`: the machine, and per writer
//! count the throughput, latency and CPU of every node.

use super::{ClientMode, Via};
use crate::report::Percentiles;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// The machine the benchmark ran on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// Where the nodes' data directories were (fsync speed depends on it).
    pub data_dir: String,
}

impl Machine {
    /// Reads the machine's description from `/proc`.
    pub fn detect(data_dir: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
            data_dir: data_dir.display().to_string(),
        }
    }
}

/// One writer count's results.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// Concurrent writers.
    pub writers: usize,
    /// Commits that completed in the window.
    pub commits: u64,
    /// Commits per second.
    pub commits_per_s: f64,
    /// Latency of the commits in the window, ms.
    pub latency_ms: Percentiles,
    /// Requests in the window that failed.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// CPU used in the window by each node, percent of one core, in node
    /// order (node 1 first).
    pub node_cpu_percent: Vec<f64>,
    /// CPU used in the window by the benchmark's own process (the
    /// writers), percent of one core.
    pub bench_cpu_percent: f64,
    /// CPU used in the window by everything else on the machine, percent of
    /// one core (from `/proc/stat`). Far above zero means the figures are
    /// disturbed by other work.
    pub other_cpu_percent: f64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct CommitsReport {
    /// Where it ran.
    pub machine: Machine,
    /// Control-plane nodes.
    pub nodes: usize,
    /// The leader's node id during the runs.
    pub leader: u64,
    /// The node the writers sent to.
    pub target_node: u64,
    /// Leader or follower.
    pub via: Via,
    /// Connection handling of the writers.
    pub client: ClientMode,
    /// Warm-up per writer count, seconds.
    pub warmup_s: f64,
    /// Measurement window per writer count, seconds.
    pub window_s: f64,
    /// One entry per writer count.
    pub runs: Vec<RunResult>,
}

impl CommitsReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let m = &self.machine;
        let _ = writeln!(
            t,
            "machine   {} ({} cores), Linux {}, data in {}",
            m.cpu_model, m.cores, m.kernel, m.data_dir
        );
        let _ = writeln!(
            t,
            "cluster   {} nodes on loopback, leader node {}; writers -> node {} ({:?}), {:?} HTTP client",
            self.nodes, self.leader, self.target_node, self.via, self.client
        );
        let _ = writeln!(
            t,
            "window    {:.0} s after {:.0} s warm-up per writer count\n",
            self.window_s, self.warmup_s
        );
        let _ = writeln!(
            t,
            "{:>7} {:>10} {:>9} {:>9} {:>9} {:>7}   CPU % of a core: nodes 1..{} | bench | other",
            "writers", "commits/s", "p50 ms", "p99 ms", "max ms", "errors", self.nodes
        );
        for r in &self.runs {
            let cpu: Vec<String> = r
                .node_cpu_percent
                .iter()
                .map(|c| format!("{c:.0}"))
                .collect();
            let _ = writeln!(
                t,
                "{:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7}   {} | {:.0} | {:.0}",
                r.writers,
                r.commits_per_s,
                r.latency_ms.p50,
                r.latency_ms.p99,
                r.latency_ms.max,
                r.errors,
                cpu.join(" "),
                r.bench_cpu_percent,
                r.other_cpu_percent
            );
        }
        for r in &self.runs {
            if let Some(e) = &r.first_error {
                let _ = writeln!(t, "first error with {} writers: {e}", r.writers);
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn machine_is_described() {
        let m = Machine::detect(Path::new("/tmp"));
        assert!(m.cores >= 1);
        assert!(!m.cpu_model.is_empty());
    }

    #[test]
    fn table_lists_every_run() {
        let report = CommitsReport {
            machine: Machine::detect(Path::new("/tmp")),
            nodes: 3,
            leader: 1,
            target_node: 1,
            via: Via::Leader,
            client: ClientMode::Shared,
            warmup_s: 1.0,
            window_s: 10.0,
            runs: [1, 64]
                .into_iter()
                .map(|w| RunResult {
                    writers: w,
                    commits: 100,
                    commits_per_s: 10.0,
                    latency_ms: Percentiles::of(vec![1.0, 2.0]),
                    errors: 0,
                    first_error: None,
                    node_cpu_percent: vec![50.0, 20.0, 20.0],
                    bench_cpu_percent: 10.0,
                    other_cpu_percent: 0.0,
                })
                .collect(),
        };
        let t = report.table();
        assert!(t.contains("commits/s"));
        assert_eq!(t.lines().filter(|l| l.contains("50 20 20")).count(), 2);
    }
}
