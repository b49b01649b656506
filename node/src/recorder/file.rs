//! One recorded file: a participant's camera and microphone, or their
//! screen share, from packets to muxed, segmented WebM. Synchronous and
//! driven by the caller's `now`; the only I/O is the spool file the muxer
//! writes (uploads and reports are the caller's).
//!
//! The track set is fixed when the file starts. A video track's size comes
//! from its first keyframe (VP8 carries the size in every keyframe, so a
//! later resolution change needs nothing from the container); the muxer
//! waits up to [`KEYFRAME_WAIT`] for it, keeping the audio, and then starts
//! with a placeholder size rather than lose the audio.

use super::clock::{PublisherClock, TrackClock};
use super::depack::{vp8_keyframe_size, TrackDepacketizer};
use super::mux::{MuxError, MuxTrack, Muxer};
use super::segmenter::{Segmenter, Upload};
use super::spool::SpoolHandle;
use rtc::rtp;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use veche_protocol::signal::MediaKind;
use veche_protocol::TrackId;

/// How long a file waits for its video's first keyframe before it starts
/// without knowing the size.
pub const KEYFRAME_WAIT: Duration = Duration::from_secs(2);

/// The size announced for a video whose first keyframe did not come in
/// time (players take the size from the stream).
const PLACEHOLDER_SIZE: (u32, u32) = (640, 360);

/// What the file's owner should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileAction {
    /// The muxer started: the file exists from now on (its track set and
    /// time 0 are fixed), so it can be announced. Comes once, before any
    /// upload.
    Started,
    /// Ask this track's publisher for a keyframe.
    RequestKeyframe(TrackId),
    /// Upload a segment from the spool file.
    Upload(Upload),
}

struct Track {
    id: TrackId,
    depack: TrackDepacketizer,
    clock: TrackClock,
    /// Video: the first keyframe's size.
    size: Option<(u32, u32)>,
}

enum Phase {
    /// Waiting for the video's size; frames so far: (track, time, data, key).
    Waiting {
        since: Instant,
        frames: Vec<(usize, i64, bytes::Bytes, bool)>,
    },
    Muxing(Box<Muxer>, SpoolHandle),
}

/// A file's final numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The last segment and the re-uploads.
    pub uploads: Vec<Upload>,
    /// The file's size.
    pub bytes: u64,
    /// Its media duration.
    pub duration_ms: u64,
}

/// The state of one file.
pub struct FileRecorder {
    path: PathBuf,
    tracks: Vec<Track>,
    publisher: PublisherClock,
    phase: Phase,
    segmenter: Segmenter,
    /// Node time of the file's first frame (its time 0).
    start_us: Option<i64>,
    /// Frames dropped by the depacketizers.
    pub dropped: u64,
}

impl FileRecorder {
    /// A file at `path` for these tracks (fixed from now on), started at
    /// `now`. Returns the keyframe requests to send first.
    pub fn new(
        path: PathBuf,
        tracks: &[(TrackId, MediaKind)],
        now: Instant,
    ) -> (Self, Vec<FileAction>) {
        let tracks: Vec<Track> = tracks
            .iter()
            .map(|(id, kind)| match kind {
                MediaKind::Video => Track {
                    id: id.clone(),
                    depack: TrackDepacketizer::vp8(),
                    clock: TrackClock::new(90_000),
                    size: None,
                },
                MediaKind::Audio => Track {
                    id: id.clone(),
                    depack: TrackDepacketizer::opus(),
                    clock: TrackClock::new(48_000),
                    size: None,
                },
            })
            .collect();
        let asks = Self::video_ids(&tracks)
            .map(FileAction::RequestKeyframe)
            .collect();
        let rec = FileRecorder {
            path,
            tracks,
            publisher: PublisherClock::default(),
            phase: Phase::Waiting {
                since: now,
                frames: Vec::new(),
            },
            segmenter: Segmenter::default(),
            start_us: None,
            dropped: 0,
        };
        (rec, asks)
    }

    fn video_ids(tracks: &[Track]) -> impl Iterator<Item = TrackId> + '_ {
        tracks
            .iter()
            .filter(|t| t.depack.is_video())
            .map(|t| t.id.clone())
    }

    /// The index of a track of this file.
    pub fn track_index(&self, id: &TrackId) -> Option<usize> {
        self.tracks.iter().position(|t| &t.id == id)
    }

    /// Node time (µs) of the file's first frame, once there is one.
    pub fn start_us(&self) -> Option<i64> {
        self.start_us
    }

    /// A sender report of track `track`, received at `now_us`.
    pub fn sender_report(&mut self, track: usize, ntp: u64, rtp: u32, now_us: i64) {
        self.publisher.observe(ntp, now_us);
        self.tracks[track].clock.sender_report(ntp, rtp);
    }

    /// A packet of track `track` arrived at `now` (node wall clock
    /// `now_us`).
    pub fn push(
        &mut self,
        track: usize,
        pkt: rtp::Packet,
        now: Instant,
        now_us: i64,
    ) -> Result<Vec<FileAction>, MuxError> {
        let mut actions = Vec::new();
        let t = &mut self.tracks[track];
        let out = t.depack.push(now, pkt);
        self.dropped += out.dropped;
        if out.want_keyframe {
            actions.push(FileAction::RequestKeyframe(t.id.clone()));
        }
        for f in out.frames {
            let t = &mut self.tracks[track];
            let t_us = t.clock.map(f.rtp_ts, now_us, &self.publisher);
            if t.size.is_none() {
                t.size = vp8_keyframe_size(&f.data);
            }
            self.start_us.get_or_insert(t_us);
            match &mut self.phase {
                Phase::Waiting { frames, .. } => frames.push((track, t_us, f.data, f.key)),
                Phase::Muxing(m, _) => {
                    if let Some(ms) = m.push(track, t_us, f.data, f.key)? {
                        let settled = m.settled();
                        self.step(ms, settled, &mut actions);
                    }
                }
            }
        }
        self.tick(now, &mut actions)?;
        Ok(actions)
    }

    /// Starts the muxer once every video's size is known, or the wait is
    /// over. Call it now and then even without packets.
    pub fn tick(&mut self, now: Instant, actions: &mut Vec<FileAction>) -> Result<(), MuxError> {
        let Phase::Waiting { since, frames } = &mut self.phase else {
            return Ok(());
        };
        let sized = self
            .tracks
            .iter()
            .all(|t| !t.depack.is_video() || t.size.is_some());
        let waited = now.duration_since(*since) >= KEYFRAME_WAIT;
        let Some(start_us) = self.start_us else {
            return Ok(());
        };
        if !(sized || waited) {
            return Ok(());
        }
        let frames = std::mem::take(frames);
        let kinds: Vec<MuxTrack> = self
            .tracks
            .iter()
            .map(|t| {
                if t.depack.is_video() {
                    let (width, height) = t.size.unwrap_or(PLACEHOLDER_SIZE);
                    MuxTrack::Vp8 { width, height }
                } else {
                    MuxTrack::Opus
                }
            })
            .collect();
        let (mut m, h) = Muxer::create(&self.path, &kinds, start_us)?;
        let mut last = None;
        for (track, t_us, data, key) in frames {
            last = m.push(track, t_us, data, key)?.or(last);
        }
        let settled = m.settled();
        self.phase = Phase::Muxing(Box::new(m), h);
        actions.push(FileAction::Started);
        if let Some(ms) = last {
            self.step(ms, settled, actions);
        }
        Ok(())
    }

    fn step(&mut self, media_ms: u64, settled: (u64, u64), actions: &mut Vec<FileAction>) {
        let step = self.segmenter.on_frame(media_ms, settled.0, settled.1);
        if step.request_keyframe {
            actions.extend(Self::video_ids(&self.tracks).map(FileAction::RequestKeyframe));
        }
        if let Some(up) = step.upload {
            if let Phase::Muxing(_, h) = &self.phase {
                h.freeze(up.range.end);
            }
            actions.push(FileAction::Upload(up));
        }
    }

    /// Ends the file: finalizes it and returns what is left to upload.
    /// `None` when no frame ever came (there is no file).
    pub fn finish(mut self, now: Instant) -> Result<Option<Finished>, MuxError> {
        let mut ignored = Vec::new();
        if let Phase::Waiting { since, .. } = &mut self.phase {
            // Stop waiting for a keyframe: whatever came is the file.
            *since = now.checked_sub(KEYFRAME_WAIT).unwrap_or(*since);
            self.tick(now, &mut ignored)?;
        }
        let Phase::Muxing(m, h) = self.phase else {
            return Ok(None);
        };
        let duration_ms = m.finish()?;
        let s = h.snapshot();
        let uploads = self.segmenter.finish(s.len, duration_ms, &s.dirty);
        Ok(Some(Finished {
            uploads,
            bytes: s.len,
            duration_ms,
        }))
    }
}
