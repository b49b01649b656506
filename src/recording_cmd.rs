//! `veche recording export ID --out FILE`: one WebM of a whole recording
//! (every video in a grid, every audio mixed), made on this machine with
//! Debian's `ffmpeg`, by the same builder as the player's "Download
//! everything as one file" ([`veche_control_plane::recording_export`]).
//!
//! The recording's files come from a running server's index (an internal
//! route behind the cluster secret, like `veche admin`), their bytes from
//! the object store the config's `[recordings]` names, read directly: the
//! export never passes through the server.

use crate::admin_cmd::{answer, ServerArgs};
use crate::config::{base_url, s3_secret_from_env};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use veche_control_plane::recording_export::{export_plan_path, ExportPlan, Exporter};
use veche_protocol::recording::RecordingId;

/// `veche recording` arguments.
#[derive(Args)]
pub struct RecordingArgs {
    #[command(subcommand)]
    command: RecordingCommand,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand)]
enum RecordingCommand {
    /// Write one WebM of a recording: a grid of every video with every
    /// audio mixed (needs ffmpeg: apt-get install ffmpeg).
    Export {
        /// The recording's id (`r` and 16 hex digits, as in its URL).
        id: String,
        /// Where to write the WebM.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `veche recording`.
pub async fn run(args: RecordingArgs) -> anyhow::Result<()> {
    let (cfg, data_dir) = args.server.config_and_data_dir()?;
    match args.command {
        RecordingCommand::Export { id, out } => {
            let id: RecordingId = id.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let exporter = Exporter::default();
            if !exporter.available() {
                anyhow::bail!("ffmpeg is not installed: apt-get install ffmpeg");
            }
            let secret = args.server.secret(&cfg, &data_dir)?;
            let plan = fetch_plan(&base_url(&args.server.control_plane), &secret, &id).await?;
            let store = cfg
                .recordings
                .object_store(&data_dir, s3_secret_from_env())?;
            export(&exporter, store, &plan, &out).await?;
            println!("Wrote {}", out.display());
            Ok(())
        }
    }
}

/// The recording's files, from the server's index.
async fn fetch_plan(base: &str, secret: &str, id: &RecordingId) -> anyhow::Result<ExportPlan> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    answer(
        http.get(format!("{base}{}", export_plan_path(id)))
            .bearer_auth(secret),
        base,
    )
    .await
}

/// Writes the export of `plan`, read from `store`, to `out`.
pub async fn export(
    exporter: &Exporter,
    store: Arc<dyn object_store::ObjectStore>,
    plan: &ExportPlan,
    out: &Path,
) -> anyhow::Result<()> {
    exporter
        .export(store, &plan.recording_id, &plan.files, out)
        .await
        .map_err(|e| match e {
            veche_control_plane::recording_export::ExportError::FfmpegMissing => {
                anyhow::anyhow!("ffmpeg is not installed: apt-get install ffmpeg")
            }
            other => anyhow::anyhow!("export of {} failed: {other}", plan.recording_id),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use object_store::path::Path as ObjectPath;
    use object_store::{ObjectStoreExt, PutPayload};
    use veche_control_plane::recording_export::ExportFile;
    use veche_protocol::recording::{segment_key, FileId};

    /// A real WebM made by ffmpeg (testsrc + a tone), cut into `pieces`
    /// segment objects of the store the config names.
    async fn recorded(
        store: &dyn object_store::ObjectStore,
        dir: &Path,
        rec: &RecordingId,
        n: u8,
        offset_ms: u64,
    ) -> ExportFile {
        let path = dir.join(format!("src{n}.webm"));
        let status = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc=size=320x240:rate=15:duration=2")
            .args(["-f", "lavfi", "-i", "sine=frequency=300:duration=2"])
            .args(["-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libopus"])
            .arg(&path)
            .status()
            .expect("ffmpeg runs (apt-get install ffmpeg)");
        assert!(status.success());
        let bytes = std::fs::read(&path).unwrap();
        let file_id = FileId::from_random([n; 8]);
        let mut segments = Vec::new();
        for (seq, chunk) in bytes.chunks(bytes.len() / 3 + 1).enumerate() {
            store
                .put(
                    &ObjectPath::from(segment_key(rec, &file_id, seq as u32)),
                    PutPayload::from(chunk.to_vec()),
                )
                .await
                .unwrap();
            segments.push((seq as u32, chunk.len() as u64));
        }
        ExportFile {
            file_id,
            offset_ms,
            segments,
        }
    }

    #[tokio::test]
    async fn recording_export_command_writes_one_playable_webm_from_the_configured_store() {
        let dir = std::env::temp_dir().join(format!("veche-rec-cmd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The default config: the local store in the data directory.
        let cfg = Config::default();
        let store = cfg.recordings.object_store(&dir, None).unwrap();
        let rec = RecordingId::from_random([9; 8]);
        let plan = ExportPlan {
            recording_id: rec.clone(),
            files: vec![
                recorded(store.as_ref(), &dir, &rec, 1, 0).await,
                recorded(store.as_ref(), &dir, &rec, 2, 1000).await,
            ],
        };
        // What the server's internal route sends survives JSON.
        let plan: ExportPlan =
            serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
        let out = dir.join("everything.webm");
        export(&Exporter::default(), store, &plan, &out)
            .await
            .expect("exported");
        let probe = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name:format=duration",
                "-of",
                "csv=p=0",
            ])
            .arg(&out)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&probe.stdout);
        assert!(text.contains("vp8") && text.contains("opus"), "{text}");
        let duration: f64 = text
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .next()
            .unwrap_or_else(|| panic!("no duration in {text}"));
        assert!((2.6..=3.6).contains(&duration), "duration {duration}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn recording_export_command_names_the_missing_program() {
        let dir =
            std::env::temp_dir().join(format!("veche-rec-cmd-missing-{}", std::process::id()));
        let store = Config::default()
            .recordings
            .object_store(&dir, None)
            .unwrap();
        let exporter =
            Exporter::with_programs("/nonexistent/ffmpeg".into(), "/nonexistent/ffprobe".into());
        let plan = ExportPlan {
            recording_id: RecordingId::from_random([1; 8]),
            files: vec![],
        };
        let e = export(&exporter, store, &plan, &dir.join("o.webm"))
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(e, "ffmpeg is not installed: apt-get install ffmpeg");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
