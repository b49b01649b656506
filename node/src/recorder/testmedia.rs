//! Real media for the recorder's tests: Debian's ffmpeg encodes a test
//! pattern (VP8) and a tone (Opus), the `rtc` readers read the frames
//! back and the `rtc` payloaders packetize them as a browser would. The
//! results are checked with ffprobe and ffmpeg's decoder.

use bytes::Bytes;
use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;
use rtc::rtp;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::Payloader;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Seconds of media generated.
pub const SECONDS: u64 = 13;

/// Encoded frames: video (rtp timestamp at 90 kHz, data) at 30 fps with a
/// keyframe every 2 s, audio 20 ms Opus packets.
pub struct Media {
    pub video: Vec<Bytes>,
    pub audio: Vec<Bytes>,
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e}; install ffmpeg (apt-get install ffmpeg)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// VP8 frames of a test pattern of `size` (`WxH`) for `secs` seconds, at
/// 30 fps with a keyframe every 2 s (the first frame is one).
fn vp8_frames(name: &str, size: &str, secs: u64) -> Vec<Bytes> {
    let ivf = dir().join(format!("{name}.ivf"));
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size={size}:rate=30"))
        .args([
            "-t",
            &secs.to_string(),
            "-c:v",
            "libvpx",
            "-g",
            "60",
            "-deadline",
            "realtime",
            "-b:v",
            "300k",
        ])
        .arg(&ivf));
    let (mut r, _) = IVFReader::new(std::fs::File::open(&ivf).unwrap()).unwrap();
    let mut video = Vec::new();
    while let Ok((frame, _)) = r.parse_next_frame() {
        video.push(frame.freeze());
    }
    video
}

/// The media, encoded once per test process.
pub fn media() -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let ogg = dir().join("a.ogg");
        let t = SECONDS.to_string();
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .args([
                "sine=frequency=440:sample_rate=48000",
                "-t",
                &t,
                "-ac",
                "2",
                "-c:a",
                "libopus",
                "-frame_duration",
                "20",
                "-page_duration",
                "20000",
            ])
            .arg(&ogg));
        let (mut r, _) = OggReader::new(std::fs::File::open(&ogg).unwrap(), true).unwrap();
        let mut audio = Vec::new();
        while let Ok((page, _)) = r.parse_next_page() {
            if page.starts_with(b"OpusTags") || page.is_empty() {
                continue;
            }
            audio.push(page.freeze());
        }
        Media {
            video: vp8_frames("v", "320x240", SECONDS),
            audio,
        }
    })
}

/// The same length of media, whose camera switches from 320x240 to
/// 640x360 after 6 s (at a keyframe, as a browser does when it adapts
/// its resolution).
pub fn resized() -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let mut video = vp8_frames("small", "320x240", 6);
        video.extend(vp8_frames("large", "640x360", SECONDS - 6));
        Media {
            video,
            audio: media().audio.clone(),
        }
    })
}

/// The sizes of the decoded video frames of a file.
pub fn frame_sizes(path: &Path) -> std::collections::BTreeSet<(u32, u32)> {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v"])
        .args(["-show_entries", "frame=width,height", "-of", "csv=p=0"])
        .arg(path));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (w, h) = l.trim().split_once(',')?;
            Some((w.parse().ok()?, h.parse().ok()?))
        })
        .collect()
}

/// One packet as it reaches the recorder: when (µs after the start), for
/// which track (0 video, 1 audio).
pub struct Arrival {
    pub at_us: i64,
    pub track: usize,
    pub pkt: rtp::Packet,
}

fn packet(seq: u16, ts: u32, ssrc: u32, pt: u8, marker: bool, payload: Bytes) -> rtp::Packet {
    rtp::Packet {
        header: rtp::header::Header {
            version: 2,
            marker,
            payload_type: pt,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            ..Default::default()
        },
        payload,
    }
}

/// The media as RTP arrivals in arrival order: the video's timestamps
/// start at `video_ts0`, each packet arrives 5 ms after its frame's time
/// (jittered), every 40th pair of packets swapped, and the packets whose
/// indexes are in `lose` never arrive.
pub fn arrivals(video_ts0: u32, lose: &[usize]) -> Vec<Arrival> {
    arrivals_with(video_ts0, lose, false)
}

/// [`arrivals`], and with `padding` an empty padding packet after every
/// 10th video frame, as libWebRTC sends to smooth its rate.
pub fn arrivals_with(video_ts0: u32, lose: &[usize], padding: bool) -> Vec<Arrival> {
    arrivals_of(media(), video_ts0, lose, padding)
}

/// [`arrivals_with`] of media `m`.
pub fn arrivals_of(m: &Media, video_ts0: u32, lose: &[usize], padding: bool) -> Vec<Arrival> {
    let mut out = Vec::new();
    let mut pay = Vp8Payloader::default();
    let mut seq = 1000u16;
    for (i, f) in m.video.iter().enumerate() {
        let t_us = i as i64 * 1_000_000 / 30;
        let ts = video_ts0.wrapping_add(i as u32 * 3000);
        let parts = pay.payload(1200, f).unwrap();
        let n = parts.len();
        for (k, p) in parts.into_iter().enumerate() {
            seq = seq.wrapping_add(1);
            out.push(Arrival {
                at_us: t_us + 5_000 + (i as i64 % 7) * 1_000,
                track: 0,
                pkt: packet(seq, ts, 1, 96, k + 1 == n, p),
            });
        }
        if padding && i % 10 == 5 {
            seq = seq.wrapping_add(1);
            out.push(Arrival {
                at_us: t_us + 12_000,
                track: 0,
                pkt: packet(seq, ts, 1, 96, false, Bytes::new()),
            });
        }
    }
    for (j, a) in m.audio.iter().enumerate() {
        out.push(Arrival {
            at_us: j as i64 * 20_000 + 5_000,
            track: 1,
            pkt: packet(j as u16, 7_000 + j as u32 * 960, 2, 111, false, a.clone()),
        });
    }
    out.sort_by_key(|a| a.at_us);
    for i in (10..out.len() - 1).step_by(40) {
        out.swap(i, i + 1);
    }
    let mut i = 0;
    out.retain(|_| {
        i += 1;
        !lose.contains(&(i - 1))
    });
    out
}

/// Index (in [`arrivals`] order) of a video packet of a delta frame
/// around `secs` seconds.
pub fn a_video_packet_near(secs: i64) -> usize {
    let all = arrivals(0, &[]);
    all.iter()
        .position(|a| a.track == 0 && a.at_us > secs * 1_000_000 && a.pkt.payload[1] & 1 == 1)
        .or_else(|| {
            all.iter()
                .position(|a| a.track == 0 && a.at_us > secs * 1_000_000)
        })
        .expect("a video packet")
}

/// `ffprobe`'s duration (seconds) and codec names of a file.
pub fn probe(path: &Path) -> (f64, Vec<String>) {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_name",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(path));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut duration = f64::NAN;
    let mut codecs = Vec::new();
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("duration=") {
            duration = d.parse().unwrap_or(f64::NAN);
        }
        if let Some(c) = line.strip_prefix("codec_name=") {
            codecs.push(c.to_owned());
        }
    }
    codecs.sort();
    (duration, codecs)
}

/// What `ffmpeg -v error` says decoding the whole file (empty when clean).
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh path in the test's temp dir.
pub fn path(name: &str) -> PathBuf {
    let d = tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(dir())
        .unwrap();
    d.keep().join(name)
}
