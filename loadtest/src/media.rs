//! Synthetic media for load-test bots, and what their subscribers measure. No I/O, no clock.
//!
//! Publishers use [`VideoSource`] (VP8) and [`AudioSource`] (Opus). Each one sends real encoded
//! frames that ship in `loadtest/assets/` (see its README for the ffmpeg commands). Chromium can
//! decode them, so a browser in the same room shows a picture. The caller owns the socket and the
//! timer: it calls `poll(now)` when `next_due()` has passed and writes out the packets it gets.
//! That keeps a 30-second schedule testable in microseconds.
//!
//! Subscribers feed every received packet into a [`stats::ReceiveStats`]. It reports loss,
//! jitter, bitrate and one-way latency.
//!
//! # How latency survives the SFU
//!
//! The SFU rewrites SSRC and payload type and strips header extensions. It passes RTP sequence
//! numbers and timestamps through unchanged, and never touches the payload. So the send time
//! travels in the RTP timestamp. A packet sent at instant `t` carries
//! `((t - epoch) * clock_rate) mod 2^32`, where `epoch` is one [`Instant`] that all bots in the
//! process share (see [`latency`]). Using the actual send instant, not the frame's nominal
//! capture time, means a late timer on the sender does not show up as network latency. A real
//! decoder doesn't mind: RTP timestamps only have to increase with the frames.
//!
//! [`Instant`]: std::time::Instant
//! [`VideoSource`]: video::VideoSource
//! [`AudioSource`]: audio::AudioSource

use std::time::{Duration, Instant};

pub mod audio;
pub mod histogram;
pub mod ivf;
pub mod latency;
pub mod ogg;
pub mod stats;
pub mod video;

pub use audio::AudioSource;
pub use histogram::{LatencyHistogram, LatencySummary};
pub use stats::{ReceiveReport, ReceiveStats};
pub use video::{VideoEncoding, VideoSource, VIDEO_ENCODINGS};

/// RTP clock rate of VP8 video (RFC 7741): 90 kHz, so one tick is about 11.1 µs.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;

/// RTP clock rate of Opus (RFC 7587), whatever the real sample rate: 48 kHz, so one tick is
/// about 20.8 µs.
pub const AUDIO_CLOCK_RATE: u32 = 48_000;

/// Largest RTP payload a source emits, codec descriptor included.
///
/// This matches what browsers send (libwebrtc aims at about 1200 bytes). It stays under the
/// usual 1280-byte IPv6 minimum MTU once the RTP, SRTP, UDP and IP headers are added.
pub const MAX_RTP_PAYLOAD: usize = 1200;

/// How many overdue frames `poll` still sends in one burst.
///
/// A caller that stalls, for example on an overloaded runtime, would otherwise get a whole
/// backlog of frames back at once. That is an unrealistic burst, and it would distort exactly
/// the measurements a load test is for. Past this many overdue frames the source drops the
/// backlog, sends only the current frame and counts the rest in
/// [`SendCounters::frames_skipped`]. A video source also jumps to a keyframe, as a real encoder
/// does after dropping frames.
pub const MAX_CATCH_UP_FRAMES: u64 = 5;

/// Why an embedded clip could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The data ended inside a header or a frame.
    #[error("{container} data truncated at byte {offset}")]
    Truncated {
        /// Which container was being read: `"IVF"` or `"Ogg"`.
        container: &'static str,
        /// Byte offset where more data was needed.
        offset: usize,
    },
    /// The data does not start with the container's signature (`DKIF` or `OggS`).
    #[error("{container} signature missing at byte {offset}")]
    BadSignature {
        /// Which container was being read: `"IVF"` or `"Ogg"`.
        container: &'static str,
        /// Byte offset where the signature was expected.
        offset: usize,
    },
}

/// What a source has sent so far, for the harness's sender-side report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendCounters {
    /// Frames sent. Audio sends one frame per packet.
    pub frames: u64,
    /// RTP packets sent.
    pub packets: u64,
    /// RTP payload bytes sent, codec descriptors included and RTP headers excluded. This
    /// counts the same bytes as [`ReceiveReport::bytes`].
    pub payload_bytes: u64,
    /// Keyframes sent because of [`VideoSource::request_keyframe`] or a dropped backlog.
    pub keyframes_forced: u64,
    /// Frames dropped because `poll` was called too late (see [`MAX_CATCH_UP_FRAMES`]). A
    /// non-zero value means the bot's host was overloaded and its measurements are suspect.
    pub frames_skipped: u64,
}

/// A fixed-rate frame schedule that starts at the first poll.
///
/// Frame `n` is due `ceil(n * 1e9 / fps)` ns after the start, computed from `n` each time
/// rather than accumulated, so the schedule never drifts.
#[derive(Debug, Clone)]
struct Schedule {
    fps: u64,
    start: Option<Instant>,
    /// Index of the next frame due.
    index: u64,
}

impl Schedule {
    fn new(fps: u64) -> Self {
        Self {
            fps,
            start: None,
            index: 0,
        }
    }

    /// How many frames are due by `now`, starting the schedule at `now` on first use.
    fn due(&mut self, now: Instant) -> u64 {
        let start = *self.start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start).as_nanos();
        // Frame n is due iff ceil(n * 1e9 / fps) <= elapsed, that is iff n * 1e9 <= elapsed * fps.
        let last_due = elapsed * u128::from(self.fps) / 1_000_000_000;
        let last_due = u64::try_from(last_due).unwrap_or(u64::MAX);
        (last_due + 1).saturating_sub(self.index)
    }

    fn advance(&mut self, frames: u64) {
        self.index += frames;
    }

    /// When the next frame is due. Before the first poll there is no schedule yet, so the
    /// answer is `fallback`, meaning "poll now".
    fn next_due(&self, fallback: Instant) -> Instant {
        match self.start {
            None => fallback,
            Some(start) => {
                let nanos = (u128::from(self.index) * 1_000_000_000).div_ceil(u128::from(self.fps));
                start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            }
        }
    }
}

/// Turns send instants into RTP timestamps that always increase from one frame to the next.
///
/// If several frames go out in the same `poll` (a short catch-up), they share one send instant.
/// Each frame after the first is then bumped one tick past the previous frame. A receiver's
/// jitter buffer keys frames by timestamp, so two frames must never share one. One tick (at
/// most about 21 µs) is far below anything the latency figures resolve.
#[derive(Debug, Clone)]
struct Stamper {
    epoch: Instant,
    clock_rate: u32,
    last: Option<u32>,
}

impl Stamper {
    fn new(epoch: Instant, clock_rate: u32) -> Self {
        Self {
            epoch,
            clock_rate,
            last: None,
        }
    }

    fn stamp(&mut self, now: Instant) -> u32 {
        let mut ts = latency::rtp_ts_for(now, self.epoch, self.clock_rate);
        if let Some(last) = self.last {
            // Compare in wrapping (serial-number) arithmetic: at 90 kHz the timestamp wraps every 13 h.
            if (ts.wrapping_sub(last) as i32) <= 0 {
                ts = last.wrapping_add(1);
            }
        }
        self.last = Some(ts);
        ts
    }
}

/// The first sequence number of a stream: derived from the SSRC rather than random, so a run is
/// reproducible, but still different from stream to stream. Then some streams wrap past 65535
/// early in a run, which tests every receiver's wraparound handling.
fn initial_sequence_number(ssrc: u32) -> u16 {
    ((ssrc >> 16) as u16) ^ (ssrc as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_starts_at_first_poll_and_does_not_drift() {
        let t0 = Instant::now();
        let mut s = Schedule::new(30);
        assert_eq!(s.next_due(t0), t0, "before the first poll: poll now");
        assert_eq!(s.due(t0), 1);
        s.advance(1);
        assert_eq!(s.next_due(t0), t0 + Duration::from_nanos(33_333_334));
        assert_eq!(s.due(t0 + Duration::from_nanos(33_333_333)), 0);
        assert_eq!(s.due(t0 + Duration::from_nanos(33_333_334)), 1);
        // After an hour of frames, frame 108 000 is due exactly at 3600 s.
        s.advance(108_000 - 1);
        assert_eq!(s.next_due(t0), t0 + Duration::from_secs(3600));
    }

    #[test]
    fn stamper_keeps_timestamps_increasing_within_one_instant() {
        let epoch = Instant::now();
        let mut st = Stamper::new(epoch, VIDEO_CLOCK_RATE);
        let now = epoch + Duration::from_secs(1);
        assert_eq!(st.stamp(now), 90_000);
        assert_eq!(st.stamp(now), 90_001);
        assert_eq!(st.stamp(now + Duration::from_millis(10)), 90_900);
    }
}
