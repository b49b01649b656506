//! The reading side of a started process: each output line goes to its sink (a log file, or
//! stderr with a prefix), into the kept tail, and (stdout only) past the ready check.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Output lines kept in memory per process.
pub(crate) const KEPT_LINES: usize = 200;

/// Where a process's output goes.
#[derive(Clone, Debug)]
pub enum Output {
    /// Appended to this file (created if missing), which a restart appends
    /// to after a `[harness] start #N` line.
    Log(PathBuf),
    /// Copied to this process's stderr, each line prefixed `[name#N]`.
    Stderr,
}

/// The line that says a process is up.
#[derive(Clone, Debug)]
pub enum Ready {
    /// The first stdout line with an `http://HOST:PORT` URL (port not 0),
    /// e.g. `veche serve`'s `Veche is running at http://127.0.0.1:43123/`.
    Url,
    /// A stdout line containing this text (e.g. `Media node 2 is running at`).
    /// A URL on that line becomes [`Process::url`].
    Line(String),
    /// A stdout line containing any of these (a control-plane node prints `is
    /// running at` when it starts a cluster or rejoins one, and `is
    /// listening at` when it waits to be added).
    AnyLine(Vec<String>),
}

/// What the reader threads saw.
#[derive(Default)]
pub(crate) struct Watch {
    /// Which start the reader threads report on; lines of an earlier start
    /// (still draining) do not make a later one ready.
    pub(crate) start: u32,
    /// `Some(url)` once the ready line of `start` was seen (`""` if it had
    /// no URL).
    pub(crate) ready: Option<String>,
    /// The last lines of output, every start.
    pub(crate) lines: VecDeque<String>,
}

/// Where the reader threads put each line.
#[derive(Clone)]
pub(crate) struct Sink {
    file: Option<Arc<Mutex<File>>>,
    pub(crate) prefix: String,
}

impl Sink {
    pub(crate) fn open(output: &Output, prefix: String) -> Result<Sink, String> {
        let file = match output {
            Output::Stderr => None,
            Output::Log(path) => Some(Arc::new(Mutex::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
            ))),
        };
        Ok(Sink { file, prefix })
    }

    pub(crate) fn line(&self, line: &str) {
        match &self.file {
            Some(f) => {
                let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(f, "{line}");
            }
            None => eprintln!("{} {line}", self.prefix),
        }
    }
}

pub(crate) fn read_lines(
    from: Box<dyn Read + Send>,
    sink: Sink,
    watch: Arc<Mutex<Watch>>,
    ready: Option<Ready>,
    start: u32,
) {
    let mut reader = BufReader::new(from);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end();
        sink.line(line);
        let mut w = watch.lock().unwrap_or_else(|e| e.into_inner());
        if w.lines.len() == KEPT_LINES {
            w.lines.pop_front();
        }
        w.lines.push_back(format!("{} {line}", sink.prefix));
        let Some(ready) = &ready else { continue };
        if w.start == start && w.ready.is_none() {
            w.ready = match ready {
                Ready::Url => find_url(line),
                Ready::Line(needle) if line.contains(needle.as_str()) => {
                    Some(find_url(line).unwrap_or_default())
                }
                Ready::Line(_) => None,
                Ready::AnyLine(needles) if needles.iter().any(|n| line.contains(n.as_str())) => {
                    Some(find_url(line).unwrap_or_default())
                }
                Ready::AnyLine(_) => None,
            };
        }
    }
}

/// The first `http://HOST:PORT...` URL in `line` whose port is not 0,
/// without a trailing slash.
pub fn find_url(line: &str) -> Option<String> {
    let mut rest = line;
    while let Some(at) = rest.find("http://") {
        let url: String = rest[at..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        let url = url.trim_end_matches('/').to_owned();
        let port = url["http://".len()..].rsplit_once(':').map(|(_, p)| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        });
        if port.is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p != 0)) {
            return Some(url);
        }
        rest = &rest[at + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_on_a_ready_line_is_found_without_its_slash() {
        assert_eq!(
            find_url("Veche is running at http://127.0.0.1:43123/").as_deref(),
            Some("http://127.0.0.1:43123")
        );
        assert_eq!(
            find_url("Media node 2 is running at http://127.0.0.3:80 (region r2)").as_deref(),
            Some("http://127.0.0.3:80")
        );
        assert_eq!(find_url("listening on http://127.0.0.1:0/"), None);
        assert_eq!(find_url("no address here"), None);
    }
}
