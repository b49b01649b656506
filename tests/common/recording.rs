//! Helpers of the recording tests (issue 13): the recordings API as an
//! owner (by the room's owner key) or a stranger, waiting for a recording
//! to reach a state, downloading a recorded file, and checking it with
//! Debian's `ffprobe`/`ffmpeg` (installed by `scripts/test.sh`), plus a
//! real S3-compatible server on loopback (PyPI `moto[server]`, also
//! installed by `scripts/test.sh`).

use crate::common::moderation::OWNER_KEY;
use crate::common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use veche_harness::{Launch, Process};

/// How long a stopped recording may take to be `ready`: the nodes finalize
/// each file, upload the last segment and the rewritten header, and report.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// `GET url` presenting `owner_key` (if any) as the room's owner; returns
/// status, headers and body bytes.
pub async fn get_bytes(
    url: &str,
    owner_key: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = http().get(url);
    if let Some(k) = owner_key {
        req = req.header(OWNER_KEY, k);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: reading the body: {e}"))
        .to_vec();
    (status, headers, body)
}

/// `GET url` (JSON) presenting `owner_key` if given, as a [`Reply`].
pub async fn get_json(url: &str, owner_key: Option<&str>) -> Reply {
    let (status, _, body) = get_bytes(url, owner_key, &[]).await;
    Reply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// `DELETE url` presenting `owner_key`; returns the reply.
pub async fn delete(url: &str, owner_key: &str) -> Reply {
    let resp = http()
        .delete(url)
        .header(OWNER_KEY, owner_key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DELETE {url}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    Reply { status, body }
}

/// `GET /api/recordings?room={slug}` as the owner: the recordings of the
/// room, newest first (`RecordingPage.recordings`).
pub async fn room_recordings(
    base: &str,
    slug: &str,
    owner_key: &str,
) -> Result<Vec<Value>, String> {
    let r = get_json(
        &format!("{base}/api/recordings?room={slug}"),
        Some(owner_key),
    )
    .await;
    if r.status != 200 {
        return Err(format!("the list answered {}: {}", r.status, r.body));
    }
    let v: Value = serde_json::from_str(&r.body).map_err(|e| format!("{e}: {}", r.body))?;
    v["recordings"]
        .as_array()
        .cloned()
        .ok_or_else(|| format!("no `recordings` array in {v}"))
}

/// `GET /api/recordings/{id}` as the owner (`RecordingView`).
pub async fn recording(base: &str, id: &str, owner_key: &str) -> Result<Value, String> {
    let r = get_json(&format!("{base}/api/recordings/{id}"), Some(owner_key)).await;
    if r.status != 200 {
        return Err(format!("the recording answered {}: {}", r.status, r.body));
    }
    serde_json::from_str(&r.body).map_err(|e| format!("{e}: {}", r.body))
}

/// Waits until the room's one recording is listed, and returns its id.
pub async fn the_recording_id(base: &str, slug: &str, owner_key: &str) -> String {
    wait_for("the room's recording is listed", secs(15), async || {
        let list = room_recordings(base, slug, owner_key).await?;
        match list.as_slice() {
            [one] => Ok(str_field(one, "id").to_owned()),
            other => Err(format!(
                "the room lists {} recordings: {other:?}",
                other.len()
            )),
        }
    })
    .await
}

/// Waits until recording `id` is `ready` (stopped, every file complete or
/// interrupted) and returns its view.
pub async fn until_ready(base: &str, id: &str, owner_key: &str) -> Value {
    wait_for(
        &format!("recording {id} is ready"),
        READY_TIMEOUT,
        async || {
            let v = recording(base, id, owner_key).await?;
            if v["state"] == "ready" {
                Ok(v)
            } else {
                Err(format!("state {} with files {}", v["state"], summary(&v)))
            }
        },
    )
    .await
}

/// One line per file of a `RecordingView`: name, source, state, segments,
/// duration, for messages.
pub fn summary(view: &Value) -> String {
    view["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .map(|f| {
                    format!(
                        "{} {} {} ({} segments, {} ms, {} bytes)",
                        f["display_name"],
                        f["source"],
                        f["state"],
                        f["segments"],
                        f["duration_ms"],
                        f["bytes"]
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|| format!("(no files in {view})"))
}

/// The file of `view` recorded from `name`'s `source` ("camera"/"screen").
pub fn file_of<'a>(view: &'a Value, name: &str, source: &str) -> Option<&'a Value> {
    view["files"]
        .as_array()?
        .iter()
        .find(|f| f["display_name"] == name && f["source"] == source)
}

/// A file's `url` made absolute against `base` (the API may answer a path).
pub fn absolute(base: &str, url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.to_owned()
    } else {
        format!("{base}{url}")
    }
}

/// `url` without its `share` query parameter: what a stranger who guessed
/// the file's address has.
pub fn without_share(url: &str) -> String {
    let Some((path, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let param = format!("{}=", veche_protocol::recording::SHARE_QUERY);
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with(&param))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// Downloads file `f` (a `FileView`) through its `url` into `dir`, asserts
/// a 200 with `video/webm` and as many bytes as the view says, and returns
/// the path.
pub async fn download(base: &str, f: &Value, dir: &Path) -> PathBuf {
    let url = absolute(base, str_field(f, "url"));
    let (status, headers, body) = get_bytes(&url, None, &[]).await;
    assert_eq!(status, 200, "GET {url}: {}", String::from_utf8_lossy(&body));
    let ty = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(ty.starts_with("video/webm"), "Content-Type {ty:?} of {url}");
    assert_eq!(
        Some(body.len() as u64),
        f["bytes"].as_u64(),
        "the file's bytes as the index says: {f}"
    );
    let path = dir.join(format!("{}.webm", str_field(f, "file_id")));
    std::fs::write(&path, &body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// What `ffprobe` says of a media file.
#[derive(Debug)]
pub struct Probe {
    /// The container's duration in seconds: `None` for a live-style WebM
    /// (no `Duration` element), which is what a file cut short by a node's
    /// death is.
    pub duration_s: Option<f64>,
    /// The codec of each stream, in order (`vp8`, `opus`).
    pub codecs: Vec<String>,
}

/// Runs `ffprobe -v error -show_entries format=duration:stream=codec_name
/// -of json FILE`; panics (with its stderr) if it fails.
pub fn ffprobe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries"])
        .arg("format=duration:stream=codec_name")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run ffprobe ({e}); scripts/test.sh installs it: apt-get install ffmpeg")
        });
    assert!(
        out.status.success(),
        "ffprobe {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe prints JSON");
    let duration_s = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse::<f64>().ok());
    let codecs = v["streams"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| s["codec_name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    Probe { duration_s, codecs }
}

/// Runs `ffmpeg -v error -i FILE -enc_time_base:v 1:1000 -f null -`,
/// decoding every frame, and returns what it printed (empty for a file
/// without errors).
///
/// Why the time base: by default the null output's video stream counts in
/// frames of the rate ffmpeg guesses from the first timestamps, often
/// 30000/1001 for a 30 fps camera. Two frames 32 ms apart (capture jitter
/// around 33.3 ms, in millisecond WebM timestamps) can then land on the
/// same frame number, and the null *muxer* prints "non monotonically
/// increasing dts" although every frame decoded. Counting in milliseconds,
/// the file's own unit, keeps every frame's real time; a decoding error
/// is still printed.
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-enc_time_base:v", "1:1000", "-f", "null", "-"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run ffmpeg ({e}); scripts/test.sh installs it: apt-get install ffmpeg")
        });
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        text.push_str(&format!("\n(exit {})", out.status));
    }
    text.trim().to_owned()
}

/// Where the media of `path` ends, in seconds: the largest `pts_time +
/// duration_time` of its packets (`ffprobe -show_entries
/// packet=pts_time,duration_time`), for a file whose container has no
/// duration.
pub fn media_end_s(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=pts_time,duration_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run ffprobe ({e}); scripts/test.sh installs it: apt-get install ffmpeg")
        });
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(',');
            let pts: f64 = fields.next()?.trim().parse().ok()?;
            let dur: f64 = fields
                .next()
                .and_then(|d| d.trim().parse().ok())
                .unwrap_or(0.0);
            Some(pts + dur)
        })
        .fold(0.0, f64::max)
}

/// Asserts that `path` holds a VP8 and an Opus stream, decodes without an
/// error, and that `duration` (read from it) is `expected_s` ±
/// `tolerance_s`.
fn assert_decodes(path: &Path, what: &str, duration: f64, expected_s: f64, tolerance_s: f64) {
    let probe = ffprobe(path);
    let mut codecs = probe.codecs.clone();
    codecs.sort();
    assert_eq!(
        codecs,
        ["opus", "vp8"],
        "{what}: streams of {}",
        path.display()
    );
    assert!(
        (duration - expected_s).abs() <= tolerance_s,
        "{what}: {duration} s long, expected {expected_s} ± {tolerance_s} s ({probe:?})"
    );
    let errors = decode_errors(path);
    assert!(
        errors.is_empty(),
        "{what}: ffmpeg decoding {}: {errors}",
        path.display()
    );
}

/// Asserts that `path` is a finished recording: `ffprobe` shows its
/// duration (written at finalize) as `expected_s` ± `tolerance_s`, a VP8
/// and an Opus stream, and `ffmpeg -v error` decodes it silently.
pub fn assert_plays(path: &Path, what: &str, expected_s: f64, tolerance_s: f64) -> Probe {
    let probe = ffprobe(path);
    let duration = probe.duration_s.unwrap_or_else(|| {
        panic!(
            "{what}: ffprobe shows no duration for {}: {probe:?}",
            path.display()
        )
    });
    assert_decodes(path, what, duration, expected_s, tolerance_s);
    probe
}

/// Like [`assert_plays`] for a file that may be live-style (cut short, so
/// without a duration in its header): its length is where its media ends.
pub fn assert_plays_cut_short(path: &Path, what: &str, expected_s: f64, tolerance_s: f64) -> f64 {
    let end = ffprobe(path)
        .duration_s
        .unwrap_or_else(|| media_end_s(path));
    assert_decodes(path, what, end, expected_s, tolerance_s);
    end
}

/// Every file under `dir` (recursively) whose path contains `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(needle) {
                out.push(p);
            }
        }
    }
    out
}

/// Whether `participant` (as signalling describes them) publishes both a
/// camera and a microphone: a file's track set is fixed when it starts, so
/// a recording started earlier would have no audio in the camera file.
pub fn publishes_camera_and_microphone(participant: &Value) -> bool {
    crate::common::moderation::track_id(participant, "camera").is_some()
        && crate::common::moderation::track_id(participant, "microphone").is_some()
}

/// The `moderate` action that starts a recording (the control plane picks
/// its id).
pub fn start_recording() -> Value {
    json!({ "action": "start_recording" })
}

/// The `moderate` action that stops the running recording.
pub fn stop_recording() -> Value {
    json!({ "action": "stop_recording" })
}

// ---------------------------------------------------------------------------
// A real S3-compatible server on loopback
// ---------------------------------------------------------------------------

/// `moto_server` (PyPI `moto[server]`, pinned in `tests/moto/requirements.txt`):
/// `VECHE_MOTO_SERVER` if set, else the venv `scripts/test.sh` makes in
/// `tests/moto/venv`, else whatever is on `PATH`.
pub fn moto_server_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("VECHE_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto/venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("moto_server")
}

/// A `moto_server` on 127.0.0.1 with one bucket; killed on drop.
pub struct S3 {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket made at start.
    pub bucket: String,
    _proc: Process,
}

impl S3 {
    /// Starts `moto_server -H 127.0.0.1 -p PORT` and makes `bucket` with a
    /// plain `PUT /{bucket}` (moto takes any credentials).
    pub async fn start(bucket: &str) -> S3 {
        let exe = moto_server_exe();
        let port = free_port();
        // moto says where it listens on stderr, which the harness does not
        // read for readiness: it is up once it answers HTTP.
        let mut proc = Launch::new("moto", &exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); scripts/test.sh installs moto[server] in tests/moto/venv",
                    exe.display()
                )
            });
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_for("moto_server answers HTTP", secs(30), async || {
            if let Some(status) = proc.try_exit() {
                return Err(format!("moto_server exited: {status}; {}", proc.tail(20)));
            }
            match http().get(format!("{endpoint}/")).send().await {
                Ok(_) => Ok(()),
                Err(e) => Err(format!("GET {endpoint}/: {e}")),
            }
        })
        .await;
        let resp = http()
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating bucket {bucket}: {e}"));
        assert!(
            resp.status().is_success(),
            "creating bucket {bucket}: {}",
            resp.status()
        );
        S3 {
            endpoint,
            bucket: bucket.to_owned(),
            _proc: proc,
        }
    }

    /// The keys under `prefix`, with their sizes (`ListObjectsV2`, every
    /// page).
    pub async fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/{}?list-type=2&prefix={prefix}",
                self.endpoint, self.bucket
            );
            if let Some(t) = &token {
                url.push_str(&format!("&continuation-token={}", urlencode(t)));
            }
            let xml = http()
                .get(&url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"))
                .text()
                .await
                .expect("list body");
            for contents in xml.split("<Contents>").skip(1) {
                let key = between(contents, "<Key>", "</Key>").unwrap_or_default();
                let size = between(contents, "<Size>", "</Size>")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                out.push((key.to_owned(), size));
            }
            token = between(&xml, "<NextContinuationToken>", "</NextContinuationToken>")
                .map(str::to_owned);
            if token.is_none() {
                return out;
            }
        }
    }

    /// The `[recordings.store]` section that points a server at this bucket.
    pub fn store_toml(&self) -> String {
        format!(
            "[recordings.store]\nkind = \"s3\"\nendpoint = \"{}\"\nbucket = \"{}\"\n\
             region = \"us-east-1\"\naccess_key_id = \"veche-test\"\n\
             secret_access_key = \"veche-test-secret\"\nallow_http = true\n",
            self.endpoint, self.bucket
        )
    }
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
