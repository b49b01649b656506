//! Starting, watching and stopping one Veche process.
//!
//! Every process's stdout and stderr are read by two threads of ours, line
//! by line, which
//!
//! - copy each line to its [`Output`]: a log file of its own, or this
//!   process's stderr prefixed with `[name#start]` (where tests show it next
//!   to the failure it explains);
//! - keep the last lines in memory, for [`Process::tail`] in an error
//!   message;
//! - watch stdout for the [`Ready`] line: Veche prints the URL it serves at
//!   on stdout once it is up (`Veche is running at http://127.0.0.1:43123/`),
//!   so readiness is that line, and the base URL is read from it rather than
//!   guessed. Stderr is not watched: its log lines name URLs before the
//!   process is up.
//!
//! Reading both pipes to the end also means a chatty process never blocks
//! on a full pipe.

use crate::output::{read_lines, Sink, Watch};
pub use crate::output::{Output, Ready};
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often readiness and exits are polled.
const POLL: Duration = Duration::from_millis(20);

/// How to start a process: what [`Process::restart`] starts again.
#[derive(Clone, Debug)]
pub struct Launch {
    name: String,
    exe: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    output: Output,
    ready: Ready,
    die_with_parent: bool,
}

impl Launch {
    /// `exe` with no arguments, named `name` in logs and errors, output to
    /// stderr, ready at the first URL it prints.
    pub fn new(name: impl Into<String>, exe: impl Into<PathBuf>) -> Launch {
        Launch {
            name: name.into(),
            exe: exe.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            output: Output::Stderr,
            ready: Ready::Url,
            die_with_parent: false,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Launch {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (e.g. `VECHE_CLUSTER_SECRET`).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Launch {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Removes an inherited environment variable (e.g. a proxy that could
    /// not reach loopback anyway).
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Launch {
        self.env_remove.push(key.into());
        self
    }

    /// Where the output goes.
    pub fn output(mut self, output: Output) -> Launch {
        self.output = output;
        self
    }

    /// Which line says the process is up.
    pub fn ready(mut self, ready: Ready) -> Launch {
        self.ready = ready;
        self
    }

    /// Has the kernel SIGKILL the process when the thread that started it
    /// dies (`PR_SET_PDEATHSIG`), so a load run killed by SIGKILL leaves no
    /// orphans. Only for processes started from a thread that lives as long
    /// as they should (a tokio worker or the `block_on` thread; not a
    /// `spawn_blocking` thread, which exits when idle).
    pub fn die_with_parent(mut self) -> Launch {
        self.die_with_parent = true;
        self
    }

    /// The name given to [`Launch::new`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command line, for messages: `veche media-node --id 2 ...`.
    pub fn command_line(&self) -> String {
        std::iter::once(self.exe.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Starts the process. It is not ready yet: see [`Process::ready`].
    pub fn spawn(self) -> Result<Process, String> {
        let mut p = Process {
            launch: self,
            child: None,
            watch: Arc::new(Mutex::new(Watch::default())),
            starts: 0,
            url: None,
            readers: Vec::new(),
        };
        p.start()?;
        Ok(p)
    }
}

/// A running (or stopped) process started from a [`Launch`]. Dropping it
/// kills the process if it still runs.
pub struct Process {
    launch: Launch,
    child: Option<Child>,
    watch: Arc<Mutex<Watch>>,
    starts: u32,
    url: Option<String>,
    /// The threads reading the latest start's stdout and stderr.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.launch.name
    }

    /// How it was started.
    pub fn launch(&self) -> &Launch {
        &self.launch
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it was started and has not been seen to exit.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// How many times it was started (1 before any restart).
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The URL its ready line printed, without a trailing slash, once
    /// [`Process::ready`] succeeded.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Its log file, with [`Output::Log`].
    pub fn log_path(&self) -> Option<&Path> {
        match &self.launch.output {
            Output::Log(p) => Some(p),
            Output::Stderr => None,
        }
    }

    /// The last `n` lines it printed (across restarts), to explain a
    /// failure.
    pub fn tail(&self, n: usize) -> String {
        let w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
        let skip = w.lines.len().saturating_sub(n);
        w.lines
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `Ok(Some(url))` once the latest start printed its ready line,
    /// `Ok(None)` while not yet, `Err` if the process exited first.
    pub fn check_ready(&mut self) -> Result<Option<String>, String> {
        if let Some(url) = self
            .watch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ready
            .clone()
        {
            self.url = (!url.is_empty()).then(|| url.clone());
            return Ok(Some(url));
        }
        if let Some(status) = self.try_exit() {
            // Its last words explain why: let the readers reach the end of
            // its output first.
            let deadline = Instant::now() + Duration::from_secs(1);
            while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            return Err(self.failure(&format!("exited during start-up ({status})")));
        }
        Ok(None)
    }

    /// Waits until the latest start printed its ready line and returns the
    /// URL on it (`""` if none), or says why not with the process's last
    /// output lines: it exited, or `timeout` passed (then it is killed).
    pub async fn ready(&mut self, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(url) = self.check_ready()? {
                return Ok(url);
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out(timeout));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// [`Process::ready`] for callers without an async runtime; blocks the
    /// calling thread.
    pub fn ready_blocking(&mut self, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(url) = self.check_ready()? {
                return Ok(url);
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out(timeout));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Its exit status if it has exited (then it no longer counts as
    /// running); `None` while it runs or if it was never started.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Sends SIGTERM (a clean shutdown), without waiting.
    pub fn terminate(&self) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on a child we started and have not reaped;
            // no memory is involved.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
    }

    /// SIGKILL (no clean shutdown) and reap; returns how it ended, `None`
    /// if it was not running.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }

    /// SIGTERM, then up to `timeout` for it to exit. `Err` (after a
    /// SIGKILL) if it did not: a process that ignores SIGTERM would hang
    /// every deployment's restart.
    pub fn stop_blocking(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        self.terminate();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Ok(status);
            }
            if self.child.is_none() {
                return Err(format!("{} is not running", self.name()));
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!(
                    "{} did not exit within {timeout:?} of SIGTERM and was killed",
                    self.name()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Stops every process in `procs` together: SIGTERM to all, up to
    /// `timeout` for all to exit, then SIGKILL to the rest.
    pub async fn stop_all(procs: &mut [&mut Process], timeout: Duration) {
        for p in procs.iter() {
            p.terminate();
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let mut running = false;
            for p in procs.iter_mut() {
                p.try_exit();
                running |= p.is_running();
            }
            if !running {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        for p in procs.iter_mut() {
            p.kill();
        }
    }

    /// Starts it again with the same command line (and so the same ports
    /// and data directory). Not ready yet: see [`Process::ready`].
    pub fn restart(&mut self) -> Result<(), String> {
        self.try_exit();
        assert!(self.child.is_none(), "{} is still running", self.name());
        self.start()
    }

    fn start(&mut self) -> Result<(), String> {
        self.starts += 1;
        self.url = None;
        let l = &self.launch;
        let mut cmd = Command::new(&l.exe);
        cmd.args(&l.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &l.env {
            cmd.env(k, v);
        }
        for k in &l.env_remove {
            cmd.env_remove(k);
        }
        if l.die_with_parent {
            // SAFETY: prctl(2) is async-signal-safe and touches no memory of
            // ours.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let sink = Sink::open(&l.output, format!("[{}#{}]", l.name, self.starts))?;
        sink.line(&format!(
            "[harness] start #{} of {}: {}",
            self.starts,
            l.name,
            l.command_line()
        ));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", l.exe.display()))?;
        {
            let mut w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
            w.start = self.starts;
            w.ready = None;
        }
        self.readers.clear();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        self.child = Some(child);
        // Only stdout is checked for the ready line: Veche prints it there,
        // while its logs on stderr mention URLs (`advertise_addr=http://..`)
        // before it is up.
        let streams = [
            (Box::new(out) as Box<dyn Read + Send>, Some(l.ready.clone())),
            (Box::new(err), None),
        ];
        for (stream, ready) in streams {
            let (sink, watch) = (sink.clone(), self.watch.clone());
            let start = self.starts;
            self.readers.push(std::thread::spawn(move || {
                read_lines(stream, sink, watch, ready, start)
            }));
        }
        Ok(())
    }

    fn failure(&self, why: &str) -> String {
        let log = self
            .log_path()
            .map(|p| format!(" (log {})", p.display()))
            .unwrap_or_default();
        format!(
            "{} ({}) {why}; its last output{log}:\n{}",
            self.name(),
            self.launch.command_line(),
            self.tail(20)
        )
    }

    fn timed_out(&mut self, timeout: Duration) -> String {
        let why = match &self.launch.ready {
            Ready::Url => format!("printed no URL within {timeout:?}"),
            Ready::Line(l) => format!("printed no {l:?} line within {timeout:?}"),
            Ready::AnyLine(l) => format!("printed none of the lines {l:?} within {timeout:?}"),
        };
        self.kill();
        self.failure(&why)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(name: &str, script: &str) -> Launch {
        Launch::new(name, "/bin/sh").args(["-c", script])
    }

    #[test]
    fn a_process_is_ready_at_its_printed_url_and_its_output_is_kept() {
        let mut p = sh(
            "echo",
            "echo starting; echo up at http://127.0.0.1:9/; sleep 30",
        )
        .spawn()
        .unwrap();
        let url = p.ready_blocking(Duration::from_secs(10)).unwrap();
        assert_eq!(url, "http://127.0.0.1:9");
        assert_eq!(p.url(), Some("http://127.0.0.1:9"));
        assert!(p.tail(5).contains("[echo#1] starting"), "{}", p.tail(5));
        assert!(p.stop_blocking(Duration::from_secs(5)).is_ok());
        assert!(!p.is_running());
    }

    #[test]
    fn a_url_in_a_stderr_log_line_is_not_the_ready_line() {
        let mut p = sh(
            "logger",
            "echo store open advertise_addr=http://127.0.0.1:5 >&2; sleep 0.3; \
             echo running at http://127.0.0.1:6/; sleep 30",
        )
        .spawn()
        .unwrap();
        assert_eq!(
            p.ready_blocking(Duration::from_secs(10)).unwrap(),
            "http://127.0.0.1:6"
        );
        assert!(p.tail(5).contains("advertise_addr"), "{}", p.tail(5));
    }

    #[test]
    fn a_process_that_exits_before_its_ready_line_is_an_error_with_its_output() {
        let mut p = sh("quitter", "echo cannot bind >&2; exit 3")
            .ready(Ready::Line("is running at".into()))
            .spawn()
            .unwrap();
        let err = p.ready_blocking(Duration::from_secs(10)).unwrap_err();
        assert!(err.contains("exited during start-up"), "{err}");
        assert!(err.contains("cannot bind"), "{err}");
    }

    #[test]
    fn a_restart_appends_to_the_log_and_waits_for_its_own_ready_line() {
        let dir = crate::TempDir::scratch("harness-selftest");
        let log = dir.path().join("p.log");
        let mut p = sh("p", "echo node is running at http://127.0.0.1:7; sleep 30")
            .output(Output::Log(log.clone()))
            .ready(Ready::Line("is running at".into()))
            .spawn()
            .unwrap();
        p.ready_blocking(Duration::from_secs(10)).unwrap();
        p.kill().expect("it was running");
        p.restart().unwrap();
        assert_eq!(p.starts(), 2);
        p.ready_blocking(Duration::from_secs(10)).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let ready_lines = text.lines().filter(|l| l.starts_with("node is running"));
        assert_eq!(ready_lines.count(), 2, "{text}");
        assert!(text.contains("[harness] start #2 of p"), "{text}");
    }
}
