//! The export's ffmpeg arguments, and real exports with Debian's ffmpeg
//! (scripts/test.sh installs it) of recordings made of real WebM files.

use super::*;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use veche_protocol::recording::segment_key;

fn input(n: usize, offset_ms: u64, has_video: bool, has_audio: bool) -> ExportInput {
    ExportInput {
        path: PathBuf::from(format!("/tmp/in{n}.webm")),
        offset_ms,
        has_video,
        has_audio,
    }
}

fn graph(args: &[String]) -> &str {
    let at = args.iter().position(|a| a == "-filter_complex").unwrap();
    &args[at + 1]
}

#[test]
fn recording_export_grid_is_as_square_as_it_gets() {
    assert_eq!(grid(1), (1, 1));
    assert_eq!(grid(2), (2, 1));
    assert_eq!(grid(3), (2, 2));
    assert_eq!(grid(4), (2, 2));
    assert_eq!(grid(5), (3, 2));
    assert_eq!(grid(9), (3, 3));
    assert_eq!(grid(10), (4, 3));
}

#[test]
fn recording_export_stacks_videos_in_tiles_and_mixes_every_audio() {
    let inputs = [
        input(0, 1000, true, true),
        input(1, 3500, true, true),
        input(2, 1000, false, true),
        input(3, 2000, true, false),
    ];
    let args = ffmpeg_args(&inputs, Path::new("/tmp/out.webm")).unwrap();
    let g = graph(&args);
    // Four inputs, in order.
    let named: Vec<&String> = args
        .iter()
        .zip(args.iter().skip(1))
        .filter(|(a, _)| *a == "-i")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(named.len(), 4);
    assert_eq!(named[3], "/tmp/in3.webm");
    // Three videos: a 2×2 grid of 640×360 tiles; delays from the first file.
    assert!(g.contains("[0:v]scale=640:360"), "{g}");
    assert!(g.contains("[1:v]scale=640:360"), "{g}");
    assert!(g.contains("tpad=start_duration=2.500"), "{g}");
    assert!(g.contains("tpad=start_duration=1.000"), "{g}");
    assert!(!g.contains("[2:v]"), "an audio-only file got a tile: {g}");
    assert!(
        g.contains("[v0][v1][v2]xstack=inputs=3:layout=0_0|640_0|0_360:fill=black[vout]"),
        "{g}"
    );
    // Three audios, mixed at their own levels, delayed in milliseconds.
    assert!(
        g.contains("[1:a]aresample=48000,asetpts=PTS-STARTPTS,adelay=2500:all=1[a1]"),
        "{g}"
    );
    assert!(
        !g.contains("[3:a]"),
        "a video-only file got an audio input: {g}"
    );
    assert!(
        g.contains("[a0][a1][a2]amix=inputs=3:duration=longest:normalize=0[aout]"),
        "{g}"
    );
    let tail = args[args.len() - 10..].join(" ");
    assert!(tail.contains("-c:a libopus"), "{tail}");
    assert!(args.join(" ").contains("-c:v libvpx"));
    assert_eq!(args.last().unwrap(), "/tmp/out.webm");
    assert_eq!(args[args.len() - 2], "webm");
}

#[test]
fn recording_export_of_one_video_or_audio_only_needs_no_grid() {
    let args = ffmpeg_args(&[input(0, 0, true, false)], Path::new("o.webm")).unwrap();
    let g = graph(&args);
    assert!(
        g.contains("scale=1280:720") && g.contains("[v0]null[vout]"),
        "{g}"
    );
    assert!(!args.contains(&"[aout]".to_owned()));
    let args = ffmpeg_args(&[input(0, 0, false, true)], Path::new("o.webm")).unwrap();
    assert!(!args.contains(&"[vout]".to_owned()));
    assert!(!args.contains(&"libvpx".to_owned()));
    assert!(ffmpeg_args(&[input(0, 0, false, false)], Path::new("o.webm")).is_none());
    assert!(ffmpeg_args(&[], Path::new("o.webm")).is_none());
}

/// A real WebM (VP8 + Opus, or VP8 only) of `secs` seconds, made by ffmpeg.
fn make_webm(dir: &Path, name: &str, secs: u32, size: &str, audio: bool) -> Vec<u8> {
    let path = dir.join(name);
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size={size}:rate=15:duration={secs}"));
    if audio {
        cmd.args(["-f", "lavfi", "-i"])
            .arg(format!(
                "sine=frequency=440:sample_rate=48000:duration={secs}"
            ))
            .args(["-c:a", "libopus"]);
    }
    let status = cmd
        .args(["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg could not make a test file");
    std::fs::read(&path).unwrap()
}

/// Stores `bytes` as segments cut at `cuts` (so a file is really read back
/// from several objects).
async fn put_file(
    store: &dyn ObjectStore,
    rec: &RecordingId,
    file: &FileId,
    bytes: &[u8],
    pieces: usize,
) -> Vec<(u32, u64)> {
    let size = bytes.len().div_ceil(pieces);
    let mut segs = Vec::new();
    for (seq, chunk) in bytes.chunks(size).enumerate() {
        store
            .put(
                &ObjectPath::from(segment_key(rec, file, seq as u32)),
                PutPayload::from(chunk.to_vec()),
            )
            .await
            .unwrap();
        segs.push((seq as u32, chunk.len() as u64));
    }
    segs
}

fn probe(path: &Path, entries: &str) -> String {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", entries, "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn recording_export_makes_one_webm_with_a_grid_and_mixed_audio_from_stored_segments() {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    std::fs::create_dir_all(&objects).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&objects).unwrap());
    let rec = RecordingId::from_random([7; 8]);
    let a = FileId::from_random([1; 8]);
    let b = FileId::from_random([2; 8]);
    let c = FileId::from_random([3; 8]);
    let a_bytes = make_webm(dir.path(), "a.webm", 3, "320x240", true);
    let b_bytes = make_webm(dir.path(), "b.webm", 2, "640x360", true);
    let c_bytes = make_webm(dir.path(), "c.webm", 2, "160x120", false);
    let files = vec![
        ExportFile {
            file_id: a.clone(),
            offset_ms: 500,
            segments: put_file(store.as_ref(), &rec, &a, &a_bytes, 3).await,
        },
        ExportFile {
            file_id: b.clone(),
            offset_ms: 2500,
            segments: put_file(store.as_ref(), &rec, &b, &b_bytes, 2).await,
        },
        ExportFile {
            file_id: c.clone(),
            offset_ms: 1500,
            segments: put_file(store.as_ref(), &rec, &c, &c_bytes, 1).await,
        },
    ];
    let out = dir.path().join("export.webm");
    Exporter::default()
        .export(store, &rec, &files, &out)
        .await
        .expect("the export runs");
    let streams = probe(&out, "stream=codec_name,width,height");
    assert!(streams.contains("vp8,1280,720"), "{streams}");
    assert!(streams.contains("opus"), "{streams}");
    // b starts 2 s after a (the earliest) and lasts 2 s: 4 s in all.
    let duration: f64 = probe(&out, "format=duration").trim().parse().unwrap();
    assert!((3.6..=4.6).contains(&duration), "duration {duration}");
    let decode = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&out)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "the export does not decode cleanly: {}",
        String::from_utf8_lossy(&decode.stderr)
    );
}

#[tokio::test]
async fn recording_export_without_ffmpeg_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let exporter = Exporter::with_programs(
        "/nonexistent/veche-test/ffmpeg".into(),
        "/nonexistent/veche-test/ffprobe".into(),
    );
    assert!(!exporter.available());
    let err = exporter
        .export(
            store,
            &RecordingId::from_random([1; 8]),
            &[],
            &dir.path().join("o.webm"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ExportError::FfmpegMissing), "{err}");
    assert!(err.to_string().contains("apt-get install ffmpeg"), "{err}");
}

#[tokio::test]
async fn recording_export_of_a_recording_without_media_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let rec = RecordingId::from_random([1; 8]);
    let empty = ExportFile {
        file_id: FileId::from_random([2; 8]),
        offset_ms: 0,
        segments: vec![],
    };
    let err = Exporter::default()
        .export(store, &rec, &[empty], &dir.path().join("o.webm"))
        .await
        .unwrap_err();
    assert!(matches!(err, ExportError::Empty), "{err}");
}
