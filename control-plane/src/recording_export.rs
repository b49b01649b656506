//! The one-file export of a recording: every participant's video in one
//! grid, every audio track mixed, as one WebM (VP8 + Opus), made by
//! Debian's `ffmpeg`. The HTTP route (`GET /api/recordings/{id}/export`)
//! and `veche recording export` both use [`export`]; what ffmpeg is asked
//! to do is decided by [`ffmpeg_args`], which is pure and tested on its
//! own.
//!
//! Files start at different moments of the recording (their offsets).
//! Each input is delayed in the filter graph (`tpad` for video, `adelay`
//! for audio) rather than with `-itsoffset`: `xstack` and `amix` line
//! their inputs up by frames and samples from each input's start, so a
//! timestamp offset alone would either be ignored (amix) or hold the whole
//! grid back until the latest input begins (xstack).

use crate::recording_files::{map_range, stream_file, total_bytes};
use futures::TryStreamExt;
use object_store::ObjectStore;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use veche_protocol::recording::{FileId, RecordingId};

/// The size of the whole grid: tiles are this divided by the grid's
/// columns and rows, so the export stays 720p however many people spoke.
const GRID_WIDTH: u32 = 1280;
/// See [`GRID_WIDTH`].
const GRID_HEIGHT: u32 = 720;
/// Frame rate of the grid (inputs vary; the output needs one).
const FPS: u32 = 25;
/// Longest an export may run: a day-long recording at realtime speed
/// settings on a small machine. A stuck ffmpeg is killed after it.
const TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// What the refusal says when ffmpeg is missing (HTTP 503 and the CLI).
pub const FFMPEG_MISSING: &str = "ffmpeg is not installed on the server: apt-get install ffmpeg";

/// One input of the export: a recorded file on local disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportInput {
    /// Where it is.
    pub path: PathBuf,
    /// Where it starts on the recording's timeline, in milliseconds.
    pub offset_ms: u64,
    /// Whether it has a video stream (a camera file of someone whose
    /// camera was off has none).
    pub has_video: bool,
    /// Whether it has an audio stream.
    pub has_audio: bool,
}

/// The grid for `n` tiles: columns and rows, as square as it gets
/// (columns first: 2 → 2×1, 3 → 2×2, 5 → 3×2).
pub fn grid(n: usize) -> (u32, u32) {
    let mut cols = 1u32;
    while (cols as usize) * (cols as usize) < n {
        cols += 1;
    }
    let rows = (n as u32).div_ceil(cols).max(1);
    (cols, rows)
}

/// Seconds with millisecond precision, as ffmpeg options take them.
fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The arguments of one ffmpeg run that writes the export of `inputs` to
/// `out`: videos scaled to equal tiles (aspect kept, black bars) in an
/// `xstack` grid, every audio `amix`ed without level normalisation (one
/// speaker at a time stays at their level), each input delayed by its
/// offset from the earliest file. `None` when no input has any stream.
pub fn ffmpeg_args(inputs: &[ExportInput], out: &Path) -> Option<Vec<String>> {
    let first = inputs.iter().map(|i| i.offset_ms).min()?;
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-v", "error", "-y"]
        .map(String::from)
        .to_vec();
    for input in inputs {
        args.push("-i".into());
        args.push(input.path.display().to_string());
    }
    let videos: Vec<usize> = (0..inputs.len()).filter(|i| inputs[*i].has_video).collect();
    let audios: Vec<usize> = (0..inputs.len()).filter(|i| inputs[*i].has_audio).collect();
    if videos.is_empty() && audios.is_empty() {
        return None;
    }
    let mut graph: Vec<String> = Vec::new();
    if !videos.is_empty() {
        let (cols, rows) = grid(videos.len());
        // Even sizes: VP8 in WebM and most players want them.
        let w = (GRID_WIDTH / cols) & !1;
        let h = (GRID_HEIGHT / rows) & !1;
        for (j, i) in videos.iter().enumerate() {
            let delay = inputs[*i].offset_ms - first;
            graph.push(format!(
                "[{i}:v]scale={w}:{h}:force_original_aspect_ratio=decrease,\
                 pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={FPS},setpts=PTS-STARTPTS,\
                 tpad=start_duration={}:start_mode=add:color=black[v{j}]",
                secs(delay)
            ));
        }
        if videos.len() == 1 {
            graph.push("[v0]null[vout]".into());
        } else {
            let labels: String = (0..videos.len()).map(|j| format!("[v{j}]")).collect();
            let layout: Vec<String> = (0..videos.len() as u32)
                .map(|j| format!("{}_{}", (j % cols) * w, (j / cols) * h))
                .collect();
            graph.push(format!(
                "{labels}xstack=inputs={}:layout={}:fill=black[vout]",
                videos.len(),
                layout.join("|")
            ));
        }
    }
    if !audios.is_empty() {
        for (j, i) in audios.iter().enumerate() {
            let delay = inputs[*i].offset_ms - first;
            graph.push(format!(
                "[{i}:a]aresample=48000,asetpts=PTS-STARTPTS,adelay={delay}:all=1[a{j}]"
            ));
        }
        let labels: String = (0..audios.len()).map(|j| format!("[a{j}]")).collect();
        graph.push(format!(
            "{labels}amix=inputs={}:duration=longest:normalize=0[aout]",
            audios.len()
        ));
    }
    args.push("-filter_complex".into());
    args.push(graph.join(";"));
    if !videos.is_empty() {
        args.extend(
            [
                "-map",
                "[vout]",
                "-c:v",
                "libvpx",
                "-b:v",
                "1500k",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
            ]
            .map(String::from),
        );
    }
    if !audios.is_empty() {
        args.extend(["-map", "[aout]", "-c:a", "libopus", "-b:a", "96k"].map(String::from));
    }
    args.extend(["-f", "webm"].map(String::from));
    args.push(out.display().to_string());
    Some(args)
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// `ffmpeg` (or `ffprobe`) is not on the PATH.
    #[error("{FFMPEG_MISSING}")]
    FfmpegMissing,
    /// The recording has no file with any media yet.
    #[error("the recording has no audio or video to export")]
    Empty,
    /// Reading the recorded files from the store, or the scratch disk,
    /// failed.
    #[error("{0}")]
    Io(String),
    /// ffmpeg ran and failed; the message ends with its last error lines.
    #[error("ffmpeg failed: {0}")]
    Ffmpeg(String),
}

/// One recorded file to export: where its segments are and where it
/// starts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportFile {
    /// The file.
    pub file_id: FileId,
    /// Where it starts on the recording's timeline.
    pub offset_ms: u64,
    /// Its segments, `(seq, bytes)` in order, as the index has them.
    pub segments: Vec<(u32, u64)>,
}

/// What `veche recording export` needs from the index to export a
/// recording itself: its files. Served as JSON behind the cluster secret
/// at [`export_plan_path`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportPlan {
    /// The recording.
    pub recording_id: RecordingId,
    /// Its files, with their segments so far.
    pub files: Vec<ExportFile>,
}

/// Internal route of [`ExportPlan`] (axum pattern).
pub const RPC_EXPORT_PLAN: &str = "/internal/v1/recordings/{id}/export-plan";

/// [`RPC_EXPORT_PLAN`] for one recording.
pub fn export_plan_path(id: &RecordingId) -> String {
    RPC_EXPORT_PLAN.replace("{id}", id.as_str())
}

/// Runs exports, one at a time per process (each is a full-machine ffmpeg
/// run: a second waits rather than halving both).
pub struct Exporter {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
    one_at_a_time: tokio::sync::Semaphore,
}

impl Default for Exporter {
    fn default() -> Self {
        Exporter::with_programs("ffmpeg".into(), "ffprobe".into())
    }
}

impl Exporter {
    /// An exporter running these programs (tests name a missing one).
    pub fn with_programs(ffmpeg: PathBuf, ffprobe: PathBuf) -> Self {
        Exporter {
            ffmpeg,
            ffprobe,
            one_at_a_time: tokio::sync::Semaphore::new(1),
        }
    }

    /// Whether ffmpeg runs here (checked once per exporter's program name
    /// and cached for the process's life: installing it needs a restart to
    /// show in the player, which says so).
    pub fn available(&self) -> bool {
        static FOUND: OnceLock<std::sync::Mutex<Vec<(PathBuf, bool)>>> = OnceLock::new();
        let cache = FOUND.get_or_init(Default::default);
        let mut cache = cache.lock().expect("lock poisoned");
        if let Some((_, ok)) = cache.iter().find(|(p, _)| *p == self.ffmpeg) {
            return *ok;
        }
        let ok = std::process::Command::new(&self.ffmpeg)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        cache.push((self.ffmpeg.clone(), ok));
        ok
    }

    /// Writes the export of `files` (read from `store`) to `out`. The
    /// files are copied to a scratch directory first (ffmpeg seeks in its
    /// inputs), removed afterwards.
    pub async fn export(
        &self,
        store: Arc<dyn ObjectStore>,
        recording: &RecordingId,
        files: &[ExportFile],
        out: &Path,
    ) -> Result<(), ExportError> {
        if !self.available() {
            return Err(ExportError::FfmpegMissing);
        }
        let _turn = self
            .one_at_a_time
            .acquire()
            .await
            .map_err(|_| ExportError::Io("the exporter is shutting down".into()))?;
        let r: [u8; 8] = crate::random_bytes();
        let scratch = std::env::temp_dir().join(format!(
            "veche-export-{recording}-{}",
            r.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ));
        let result = self.export_in(store, recording, files, out, &scratch).await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        result
    }

    async fn export_in(
        &self,
        store: Arc<dyn ObjectStore>,
        recording: &RecordingId,
        files: &[ExportFile],
        out: &Path,
        scratch: &Path,
    ) -> Result<(), ExportError> {
        let io = |what: &str, e: &dyn std::fmt::Display| ExportError::Io(format!("{what}: {e}"));
        tokio::fs::create_dir_all(scratch)
            .await
            .map_err(|e| io("creating the scratch directory", &e))?;
        let mut inputs = Vec::new();
        for f in files.iter().filter(|f| total_bytes(&f.segments) > 0) {
            let path = scratch.join(format!("{}.webm", f.file_id));
            let mut disk = tokio::fs::File::create(&path)
                .await
                .map_err(|e| io("scratch file", &e))?;
            let mut bytes = stream_file(
                store.clone(),
                recording.clone(),
                f.file_id.clone(),
                map_range(&f.segments, 0..total_bytes(&f.segments)),
            );
            while let Some(chunk) = bytes
                .try_next()
                .await
                .map_err(|e| io(&format!("reading file {}", f.file_id), &e))?
            {
                disk.write_all(&chunk)
                    .await
                    .map_err(|e| io("scratch file", &e))?;
            }
            disk.flush().await.map_err(|e| io("scratch file", &e))?;
            let (has_video, has_audio) = self.streams(&path).await?;
            inputs.push(ExportInput {
                path,
                offset_ms: f.offset_ms,
                has_video,
                has_audio,
            });
        }
        inputs.retain(|i| i.has_video || i.has_audio);
        let args = ffmpeg_args(&inputs, out).ok_or(ExportError::Empty)?;
        tracing::info!(%recording, inputs = inputs.len(), "exporting a recording with ffmpeg");
        let run = tokio::process::Command::new(&self.ffmpeg)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(TIMEOUT, run)
            .await
            .map_err(|_| ExportError::Ffmpeg(format!("still running after {TIMEOUT:?}")))?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ExportError::FfmpegMissing,
                _ => io("running ffmpeg", &e),
            })?;
        if !output.status.success() {
            let err = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = err.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(ExportError::Ffmpeg(format!(
                "{}: {}",
                output.status,
                tail.join(" / ")
            )));
        }
        Ok(())
    }

    /// Which kinds of stream a file has, by `ffprobe`. A file ffprobe
    /// cannot read (an interrupted file's first segment never arrived)
    /// has none and is left out.
    async fn streams(&self, path: &Path) -> Result<(bool, bool), ExportError> {
        let out = tokio::process::Command::new(&self.ffprobe)
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type",
                "-of",
                "csv=p=0",
            ])
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ExportError::FfmpegMissing,
                _ => ExportError::Io(format!("running ffprobe: {e}")),
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok((
            text.lines().any(|l| l.trim() == "video"),
            text.lines().any(|l| l.trim() == "audio"),
        ))
    }
}

#[cfg(test)]
#[path = "recording_export_tests.rs"]
mod tests;
