//! The muxer: libwebm (through the `webm` crate) writing one WebM file to
//! the spool, in file mode (Cues and Duration written at finalize).
//!
//! libwebm wants timestamps that never go back across tracks. Frames of a
//! publisher's audio and video reach the recorder a little out of step
//! (different jitter buffers, different packet sizes), so they wait in a
//! short interleaving queue and leave it in time order; a frame later than
//! what was already written is clamped to it.

use super::spool::{SpoolHandle, SpoolWriter};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::BufWriter;
use webm::mux::{AudioCodecId, Segment, SegmentBuilder, SegmentMode, VideoCodecId, Writer};

/// How long frames wait to be put in time order across tracks, in µs.
pub const INTERLEAVE_US: i64 = 300_000;

/// How long a file's video may be silent (camera off, track unpublished)
/// while audio goes on before the last keyframe is written again, in ns.
/// libwebm holds a file's audio back until the next video frame (to keep
/// a keyframe's audio in its cluster), so without video no cluster would
/// close: no segment could be cut, and the held audio would grow. The
/// repeat shows the last keyframe's picture, which is what a player shows
/// over a gap anyway.
const VIDEO_SILENCE_NS: u64 = 4_000_000_000;

/// The OpusHead (RFC 7845 §5.1) a WebM Opus track carries as codec
/// private: WebRTC's Opus is declared stereo at 48 kHz, with no pre-skip.
pub fn opus_head() -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1); // version
    h.push(2); // channels
    h.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
    h.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate
    h.extend_from_slice(&0i16.to_le_bytes()); // output gain
    h.push(0); // mapping family
    h
}

/// What a file's tracks are, fixed when the muxer starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MuxTrack {
    /// VP8 video of this size (the first keyframe's).
    Vp8 {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// Opus audio.
    Opus,
}

/// Why the muxer failed.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    /// The spool file could not be created.
    #[error("spool file: {0}")]
    Io(#[from] std::io::Error),
    /// libwebm refused.
    #[error("libwebm: {0}")]
    Webm(#[from] webm::mux::Error),
    /// libwebm's finalize failed (no frame was written).
    #[error("libwebm could not finalize the file")]
    Finalize,
}

struct Queued {
    t_us: i64,
    order: u64,
    track: usize,
    data: bytes::Bytes,
    key: bool,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.t_us, self.order) == (o.t_us, o.order)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.t_us, self.order).cmp(&(o.t_us, o.order))
    }
}

/// One WebM file being written.
pub struct Muxer {
    segment: Segment<SpoolWriter<BufWriter<File>>>,
    /// libwebm track numbers, by the caller's track index.
    tracks: Vec<u64>,
    queue: BinaryHeap<Reverse<Queued>>,
    order: u64,
    newest_us: i64,
    /// Node time of the file's time 0.
    start_us: i64,
    /// Last timestamp handed to libwebm, in ns from the start.
    last_ns: u64,
    /// Each track's last timestamp, in whole ms (what WebM stores): a
    /// frame clamped up to `last_ns` must still land on a later ms than
    /// its track's previous frame, or ffmpeg rejects the file's
    /// timestamps as non-increasing.
    track_ms: Vec<Option<u64>>,
    written_any: bool,
    /// The video track's index, if the file has one.
    video: Option<usize>,
    /// Its last keyframe, repeated over long silences.
    last_key: Option<bytes::Bytes>,
    /// When video was last written, in ns.
    last_video_ns: u64,
    spool: SpoolHandle,
    /// The latest settled point and the media time (ms) of the frame
    /// whose cluster settled it.
    settled: (u64, u64),
}

impl Muxer {
    /// Starts a file at `path` with `tracks` (indexed by position), whose
    /// time 0 is node time `start_us`.
    pub fn create(
        path: &std::path::Path,
        tracks: &[MuxTrack],
        start_us: i64,
    ) -> Result<(Self, SpoolHandle), MuxError> {
        let (w, handle) = SpoolWriter::create(path)?;
        let mut b = SegmentBuilder::new(Writer::new(w))?
            .set_mode(SegmentMode::File)?
            .set_writing_app("veche")?;
        let mut nums = Vec::new();
        for t in tracks {
            match *t {
                MuxTrack::Vp8 { width, height } => {
                    let (nb, v) = b.add_video_track(width, height, VideoCodecId::VP8, None)?;
                    b = nb;
                    nums.push(v.into());
                }
                MuxTrack::Opus => {
                    let (nb, a) = b.add_audio_track(48_000, 2, AudioCodecId::Opus, None)?;
                    b = nb.set_codec_private(a, &opus_head())?;
                    nums.push(a.into());
                }
            }
        }
        Ok((
            Muxer {
                segment: b.build(),
                tracks: nums,
                queue: BinaryHeap::new(),
                order: 0,
                newest_us: i64::MIN,
                start_us,
                last_ns: 0,
                track_ms: vec![None; tracks.len()],
                written_any: false,
                video: tracks
                    .iter()
                    .position(|t| matches!(t, MuxTrack::Vp8 { .. })),
                last_key: None,
                last_video_ns: 0,
                spool: handle.clone(),
                settled: (0, 0),
            },
            handle,
        ))
    }

    /// Queues a frame of track `track` at node time `t_us`; writes the
    /// frames that have waited long enough. Returns the media time (ms
    /// from the file's start) of the last frame written, if any was.
    pub fn push(
        &mut self,
        track: usize,
        t_us: i64,
        data: bytes::Bytes,
        key: bool,
    ) -> Result<Option<u64>, MuxError> {
        self.order += 1;
        self.newest_us = self.newest_us.max(t_us);
        self.queue.push(Reverse(Queued {
            t_us,
            order: self.order,
            track,
            data,
            key,
        }));
        self.drain(self.newest_us - INTERLEAVE_US)
    }

    fn drain(&mut self, upto_us: i64) -> Result<Option<u64>, MuxError> {
        let mut last = None;
        while self.queue.peek().is_some_and(|q| q.0.t_us <= upto_us) {
            let Reverse(q) = self.queue.pop().expect("peeked");
            let ns = ((q.t_us - self.start_us).max(0) as u64 * 1_000).max(self.last_ns);
            let ns = self.after_track(q.track, ns);
            if Some(q.track) == self.video {
                self.last_video_ns = ns;
                if q.key {
                    self.last_key = Some(q.data.clone());
                }
            } else if let (Some(v), Some(key)) = (self.video, &self.last_key) {
                if ns >= self.last_video_ns + VIDEO_SILENCE_NS {
                    // At least VIDEO_SILENCE_NS after the video's last frame,
                    // so past its last millisecond too.
                    self.track_ms[v] = Some(ns / 1_000_000);
                    self.segment.add_frame(self.tracks[v], key, ns, true)?;
                    self.last_video_ns = ns;
                }
            }
            self.segment
                .add_frame(self.tracks[q.track], &q.data, ns, q.key)?;
            let settled = self.spool.snapshot().settled;
            if settled != self.settled.0 {
                // libwebm closed the previous cluster to start this
                // frame's: the boundary is at this frame's time.
                self.settled = (settled, ns / 1_000_000);
            }
            self.last_ns = ns;
            self.written_any = true;
            last = Some(ns / 1_000_000);
        }
        Ok(last)
    }

    /// `ns`, moved to the next whole millisecond if `track` already has a
    /// frame at that millisecond or later; records it as the track's last.
    fn after_track(&mut self, track: usize, ns: u64) -> u64 {
        let ms = ns / 1_000_000;
        let ns = match self.track_ms[track] {
            Some(last) if ms <= last => (last + 1) * 1_000_000,
            _ => ns,
        };
        self.track_ms[track] = Some(ns / 1_000_000);
        ns
    }

    /// The latest settled point and the media time (ms) at it.
    pub fn settled(&self) -> (u64, u64) {
        self.settled
    }

    /// Media time written so far, in ms.
    pub fn written_ms(&self) -> u64 {
        self.last_ns / 1_000_000
    }

    /// Writes what is queued and finalizes the file (Cues, Duration, the
    /// header's sizes). Returns the duration in ms.
    pub fn finish(mut self) -> Result<u64, MuxError> {
        self.drain(i64::MAX)?;
        if !self.written_any {
            return Err(MuxError::Finalize);
        }
        let duration = self.written_ms();
        let mut w = self
            .segment
            .finalize(None)
            .map_err(|_| MuxError::Finalize)?
            .into_inner();
        std::io::Write::flush(&mut w)?;
        Ok(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CI failure this guards against: a video frame later than the
    /// interleaving window is clamped up to the last written time, which
    /// was its own track's previous millisecond, and ffmpeg refused the
    /// file ("non monotonically increasing dts").
    #[test]
    fn a_late_frame_clamped_to_the_last_written_time_still_lands_after_its_tracks_previous_millisecond(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let tracks = [
            MuxTrack::Vp8 {
                width: 64,
                height: 48,
            },
            MuxTrack::Opus,
        ];
        let (mut m, _h) = Muxer::create(&dir.path().join("f.webm"), &tracks, 0).unwrap();
        assert_eq!(m.after_track(0, 21_264_200_000), 21_264_200_000);
        // Same millisecond again (a clamp to `last_ns`): the next one.
        assert_eq!(m.after_track(0, 21_264_200_000), 21_265_000_000);
        assert_eq!(m.after_track(0, 21_264_900_000), 21_266_000_000);
        // Other tracks keep their own sequence.
        assert_eq!(m.after_track(1, 21_264_900_000), 21_264_900_000);
        assert_eq!(m.after_track(0, 21_270_000_000), 21_270_000_000);
    }
}
