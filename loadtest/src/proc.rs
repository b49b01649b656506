//! What the server process costs, read from `/proc` (Linux): CPU time from
//! `/proc/PID/stat`, resident memory from `/proc/PID/status`.

use std::time::Instant;

/// One reading of a process.
#[derive(Clone, Copy, Debug)]
pub struct ProcSample {
    /// When it was taken.
    pub at: Instant,
    /// User plus system CPU time, in seconds.
    pub cpu_s: f64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Peak resident set size since the process started, KiB.
    pub peak_rss_kib: u64,
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Reads CPU time and memory of `pid`.
pub fn sample(pid: u32) -> std::io::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces; fields after the last
    // ')' are space-separated, starting with field 3 (state).
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| std::io::Error::other("unparsable /proc/PID/stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15, i.e. indices 11 and 12 here.
    let ticks = |i: usize| -> std::io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| std::io::Error::other("unparsable CPU time"))
    };
    let cpu_s = (ticks(11)? + ticks(12)?) as f64 / clock_ticks_per_sec();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample {
        at: Instant::now(),
        cpu_s,
        rss_kib: kib("VmRSS:"),
        peak_rss_kib: kib("VmHWM:"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_reports_cpu_time_and_memory() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0 && s.peak_rss_kib >= s.rss_kib);
        assert!(s.cpu_s >= 0.0);
    }
}
