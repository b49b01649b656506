//! A VP8 publisher that replays a shipped clip on a 30 fps schedule.

use std::time::Instant;

use bytes::Bytes;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::rtp::packetizer::Payloader;

use super::ivf::{self, IvfFrame};
use super::{
    initial_sequence_number, Schedule, SendCounters, Stamper, MAX_CATCH_UP_FRAMES, MAX_RTP_PAYLOAD,
    VIDEO_CLOCK_RATE,
};

/// Frame rate of every shipped clip and of the send schedule.
pub const VIDEO_FPS: u32 = 30;

/// One shipped VP8 encoding: 2 s, 60 frames, keyframes at frames 0 and 30.
///
/// The ladder follows what a browser sends. The 500 kbps clip is 640×360, like a simulcast
/// low layer. The 1.5 and 2.5 Mbps clips are 1280×720, a camera's usual send resolution. What
/// loads the SFU is the byte and packet rate, not the resolution. The resolution only affects
/// the cost of decoding in a browser that watches.
#[derive(Debug)]
pub struct VideoEncoding {
    /// Nominal bitrate the clip was encoded at, in bits per second. The clips come out a few
    /// percent below it (see `loadtest/assets/README.md`).
    pub bitrate_bps: u32,
    /// Frame width in pixels.
    pub width: u16,
    /// Frame height in pixels.
    pub height: u16,
    /// The IVF file, embedded in the binary.
    pub ivf: &'static [u8],
}

/// The shipped encodings, in ascending bitrate.
pub static VIDEO_ENCODINGS: [VideoEncoding; 3] = [
    VideoEncoding {
        bitrate_bps: 500_000,
        width: 640,
        height: 360,
        ivf: include_bytes!("../../assets/vp8_640x360_500k.ivf"),
    },
    VideoEncoding {
        bitrate_bps: 1_500_000,
        width: 1280,
        height: 720,
        ivf: include_bytes!("../../assets/vp8_1280x720_1500k.ivf"),
    },
    VideoEncoding {
        bitrate_bps: 2_500_000,
        width: 1280,
        height: 720,
        ivf: include_bytes!("../../assets/vp8_1280x720_2500k.ivf"),
    },
];

impl VideoEncoding {
    /// The shipped encoding closest to `bitrate_bps`.
    ///
    /// Closeness is measured by ratio, not difference, because bitrates are perceived and
    /// budgeted logarithmically. For example, 1 Mbps picks 1.5 Mbps (×1.5 away) over 500 kbps
    /// (×2 away).
    pub fn nearest(bitrate_bps: u32) -> &'static VideoEncoding {
        let distance = |e: &VideoEncoding| {
            (f64::from(bitrate_bps.max(1)) / f64::from(e.bitrate_bps))
                .ln()
                .abs()
        };
        VIDEO_ENCODINGS
            .iter()
            .min_by(|a, b| distance(a).total_cmp(&distance(b)))
            .expect("VIDEO_ENCODINGS is not empty")
    }
}

/// A VP8 publisher: replays a shipped clip as RTP at 30 fps, in a loop.
///
/// - **Packets:** each frame is split into payloads of at most [`MAX_RTP_PAYLOAD`] bytes, each
///   with the RFC 7741 VP8 payload descriptor. The descriptor carries a 15-bit picture ID, as
///   browsers send it. The marker bit is set on the last packet of a frame.
/// - **Continuity:** sequence numbers and picture IDs run on across loops and keyframe jumps,
///   exactly as from a live encoder. The clip starts with a keyframe, so each loop restarts
///   decodable.
/// - **Timing:** all packets of a frame carry the RTP timestamp of the instant they are handed
///   out (see [`super::latency`]).
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use veche_loadtest::media::VideoSource;
/// let epoch = Instant::now();
/// let mut video = VideoSource::new(1_500_000, 0x1234_5678, 96, epoch);
/// let now = epoch + Duration::from_millis(5);
/// let packets = video.poll(now); // The first frame: a keyframe, in several packets.
/// assert!(packets.last().unwrap().header.marker);
/// assert!(video.next_due() > now); // Sleep until then, and poll again.
/// ```
#[derive(Debug)]
pub struct VideoSource {
    encoding: &'static VideoEncoding,
    frames: Vec<IvfFrame>,
    /// Index into `frames` of the next frame to send.
    next_frame: usize,
    /// Set by [`Self::request_keyframe`], cleared when a keyframe is sent.
    keyframe_requested: bool,
    /// Kept across frames: it owns the running picture ID.
    payloader: Vp8Payloader,
    schedule: Schedule,
    stamper: Stamper,
    epoch: Instant,
    ssrc: u32,
    payload_type: u8,
    next_seq: u16,
    counters: SendCounters,
}

impl VideoSource {
    /// A source sending the shipped encoding nearest to `bitrate_bps`
    /// ([`VideoEncoding::nearest`]) with the given SSRC and payload type.
    ///
    /// RTP timestamps are relative to `epoch`, the shared latency reference. The send schedule
    /// starts at the first [`Self::poll`].
    pub fn new(bitrate_bps: u32, ssrc: u32, payload_type: u8, epoch: Instant) -> Self {
        Self::with_encoding(
            VideoEncoding::nearest(bitrate_bps),
            ssrc,
            payload_type,
            epoch,
        )
    }

    /// A source sending exactly `encoding`.
    ///
    /// # Panics
    ///
    /// If `encoding.ivf` is not a valid IVF clip that starts with a keyframe. The shipped
    /// encodings are checked by this module's tests.
    pub fn with_encoding(
        encoding: &'static VideoEncoding,
        ssrc: u32,
        payload_type: u8,
        epoch: Instant,
    ) -> Self {
        let (_, frames) =
            ivf::parse(&Bytes::from_static(encoding.ivf)).expect("embedded IVF clip parses");
        assert!(
            frames.first().is_some_and(|f| f.keyframe),
            "a video clip must start with a keyframe so that every loop decodes"
        );
        let mut payloader = Vp8Payloader::default();
        payloader.enable_picture_id = true;
        Self {
            encoding,
            frames,
            next_frame: 0,
            keyframe_requested: false,
            payloader,
            schedule: Schedule::new(u64::from(VIDEO_FPS)),
            stamper: Stamper::new(epoch, VIDEO_CLOCK_RATE),
            epoch,
            ssrc,
            payload_type,
            next_seq: initial_sequence_number(ssrc),
            counters: SendCounters::default(),
        }
    }

    /// Packets of every frame due by `now`, in send order. Empty if no frame is due yet.
    ///
    /// The first call sends the first frame and starts the 30 fps schedule. If more than
    /// [`MAX_CATCH_UP_FRAMES`] frames are overdue, the backlog is dropped and only a keyframe
    /// is sent.
    pub fn poll(&mut self, now: Instant) -> Vec<Packet> {
        let mut due = self.schedule.due(now);
        if due > MAX_CATCH_UP_FRAMES {
            let skipped = due - 1;
            self.schedule.advance(skipped);
            self.counters.frames_skipped += skipped;
            // The receiver has missed frames its decoder would need, so restart from a keyframe.
            self.keyframe_requested = true;
            due = 1;
        }
        let mut packets = Vec::new();
        for _ in 0..due {
            self.send_frame(now, &mut packets);
            self.schedule.advance(1);
        }
        packets
    }

    /// Makes the next frame sent a keyframe, as a sender must on a PLI or FIR from a receiver.
    ///
    /// The clip is replayed, not encoded live, so there is no keyframe to make. Instead playback
    /// jumps ahead to the clip's next keyframe, wrapping around to frame 0 at the end. The
    /// receiver sees what a real encoder's forced keyframe looks like:
    /// - the sequence number, picture ID and RTP timestamp all just continue;
    /// - the frame happens to be intra-coded;
    /// - the picture goes on from there.
    ///
    /// If the next frame already is a keyframe, nothing is skipped. Repeated requests before the
    /// next frame count as one.
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// When the next frame is due: the instant to sleep until before calling [`Self::poll`].
    ///
    /// Before the first poll this is the epoch. That is in the past, meaning "poll now".
    pub fn next_due(&self) -> Instant {
        self.schedule.next_due(self.epoch)
    }

    /// The encoding being sent.
    pub fn encoding(&self) -> &'static VideoEncoding {
        self.encoding
    }

    /// The SSRC of the packets.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// What has been sent so far.
    pub fn counters(&self) -> SendCounters {
        self.counters
    }

    fn send_frame(&mut self, now: Instant, out: &mut Vec<Packet>) {
        if self.keyframe_requested {
            self.keyframe_requested = false;
            if !self.frames[self.next_frame].keyframe {
                self.next_frame = self.next_keyframe_from(self.next_frame);
                self.counters.keyframes_forced += 1;
            }
        }
        let frame = &self.frames[self.next_frame];
        self.next_frame = (self.next_frame + 1) % self.frames.len();

        let timestamp = self.stamper.stamp(now);
        // The payloader only fails for an empty frame or a zero MTU, and then returns no
        // payloads rather than an error. An empty frame would simply send nothing.
        let payloads = self
            .payloader
            .payload(MAX_RTP_PAYLOAD, &frame.data)
            .unwrap_or_default();
        let last = payloads.len().saturating_sub(1);
        for (i, payload) in payloads.into_iter().enumerate() {
            self.counters.packets += 1;
            self.counters.payload_bytes += payload.len() as u64;
            out.push(Packet {
                header: Header {
                    version: 2,
                    marker: i == last,
                    payload_type: self.payload_type,
                    sequence_number: self.next_seq,
                    timestamp,
                    ssrc: self.ssrc,
                    ..Default::default()
                },
                payload,
            });
            self.next_seq = self.next_seq.wrapping_add(1);
        }
        self.counters.frames += 1;
    }

    /// Index of the first keyframe at or after `from`, wrapping to frame 0, which is a keyframe.
    fn next_keyframe_from(&self, from: usize) -> usize {
        (from..self.frames.len())
            .find(|&i| self.frames[i].keyframe)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rtc::rtp::codec::vp8::Vp8Packet;
    use rtc::rtp::packetizer::Depacketizer;

    use super::*;

    fn at(epoch: Instant, ms: u64) -> Instant {
        epoch + Duration::from_millis(ms)
    }

    /// Polls every `step_ms` over `[from_ms, to_ms)`, as a timer-driven caller would.
    fn poll_range(
        src: &mut VideoSource,
        epoch: Instant,
        from_ms: u64,
        to_ms: u64,
        step_ms: u64,
    ) -> Vec<Packet> {
        (from_ms..to_ms)
            .step_by(step_ms as usize)
            .flat_map(|ms| src.poll(at(epoch, ms)))
            .collect()
    }

    /// Splits packets into frames at the marker bit and strips the VP8 descriptor from each.
    fn reassemble(packets: &[Packet]) -> Vec<(Vec<u8>, u16)> {
        let mut frames = Vec::new();
        let mut current = Vec::new();
        for p in packets {
            let mut vp8 = Vp8Packet::default();
            let data = vp8.depacketize(&p.payload).expect("valid VP8 descriptor");
            assert_eq!(
                vp8.s == 1,
                current.is_empty(),
                "S bit marks exactly the first packet of a frame"
            );
            current.extend_from_slice(&data);
            if p.header.marker {
                frames.push((std::mem::take(&mut current), vp8.picture_id));
            }
        }
        assert!(current.is_empty(), "the last frame ended with a marker bit");
        frames
    }

    fn clip(encoding: &'static VideoEncoding) -> Vec<IvfFrame> {
        ivf::parse(&Bytes::from_static(encoding.ivf)).unwrap().1
    }

    #[test]
    fn shipped_clips_are_2s_of_30fps_vp8_with_keyframes_every_30_frames() {
        for enc in &VIDEO_ENCODINGS {
            let (header, frames) = ivf::parse(&Bytes::from_static(enc.ivf)).unwrap();
            assert_eq!(&header.fourcc, b"VP80");
            assert_eq!((header.width, header.height), (enc.width, enc.height));
            assert_eq!((header.timebase_den, header.timebase_num), (30, 1));
            assert_eq!(frames.len(), 60);
            let keyframes: Vec<usize> = frames
                .iter()
                .enumerate()
                .filter(|(_, f)| f.keyframe)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(keyframes, [0, 30], "{} bps clip", enc.bitrate_bps);
        }
    }

    #[test]
    fn nearest_encoding_is_chosen_by_ratio() {
        assert_eq!(VideoEncoding::nearest(0).bitrate_bps, 500_000);
        assert_eq!(VideoEncoding::nearest(1_000_000).bitrate_bps, 1_500_000);
        assert_eq!(VideoEncoding::nearest(1_500_000).bitrate_bps, 1_500_000);
        assert_eq!(VideoEncoding::nearest(2_000_000).bitrate_bps, 2_500_000);
        assert_eq!(VideoEncoding::nearest(u32::MAX).bitrate_bps, 2_500_000);
    }

    #[test]
    fn two_seconds_at_1500kbps_carry_1500kbps_of_payload() {
        for enc in &VIDEO_ENCODINGS {
            let epoch = Instant::now();
            let mut src = VideoSource::with_encoding(enc, 1, 96, epoch);
            let packets = poll_range(&mut src, epoch, 0, 2000, 10);
            assert_eq!(src.counters().frames, 60);
            let bytes: usize = packets.iter().map(|p| p.payload.len()).sum();
            let bps = bytes as f64 * 8.0 / 2.0;
            let target = f64::from(enc.bitrate_bps);
            assert!(
                (bps - target).abs() <= 0.15 * target,
                "{bps} bps of payload for a {target} bps encoding"
            );
        }
    }

    #[test]
    fn payloads_fit_1200_bytes_and_marker_ends_each_frame() {
        let epoch = Instant::now();
        let mut src = VideoSource::new(2_500_000, 1, 96, epoch);
        let packets = poll_range(&mut src, epoch, 0, 2000, 33);
        assert!(packets.iter().all(|p| p.payload.len() <= MAX_RTP_PAYLOAD));
        // Every frame at 2.5 Mbps is bigger than one packet, so the marker can't be trivially right.
        let markers = packets.iter().filter(|p| p.header.marker).count();
        assert_eq!(markers, 60);
        for pair in packets.windows(2) {
            let same_frame = pair[0].header.timestamp == pair[1].header.timestamp;
            assert_eq!(
                pair[0].header.marker, !same_frame,
                "marker exactly on the last packet of a frame"
            );
        }
        assert!(packets.last().unwrap().header.marker);
        assert!(packets.iter().all(|p| p.header.version == 2
            && p.header.payload_type == 96
            && p.header.ssrc == 1
            && !p.header.extension));
    }

    #[test]
    fn reassembled_frames_equal_the_clip_byte_for_byte() {
        for enc in &VIDEO_ENCODINGS {
            let epoch = Instant::now();
            let mut src = VideoSource::with_encoding(enc, 7, 96, epoch);
            // Two loops, so picture IDs cross 127 and switch to the 2-byte form.
            let packets = poll_range(&mut src, epoch, 0, 4000, 5);
            let frames = reassemble(&packets);
            let original = clip(enc);
            assert_eq!(frames.len(), 120);
            for (i, (data, _)) in frames.iter().enumerate() {
                assert!(data[..] == original[i % 60].data[..], "frame {i} differs");
            }
        }
    }

    #[test]
    fn sequence_numbers_picture_ids_and_timestamps_continue_across_loops() {
        let epoch = Instant::now();
        // This SSRC makes the stream start at sequence number 65 000, so it also wraps.
        let ssrc = 65_000;
        let mut src = VideoSource::new(500_000, ssrc, 96, epoch);
        let packets = poll_range(&mut src, epoch, 0, 6500, 10);
        assert_eq!(packets[0].header.sequence_number, 65_000);
        for pair in packets.windows(2) {
            assert_eq!(
                pair[1].header.sequence_number,
                pair[0].header.sequence_number.wrapping_add(1)
            );
            assert!(pair[1].header.timestamp >= pair[0].header.timestamp);
        }
        let frames = reassemble(&packets);
        assert_eq!(
            frames.len(),
            195,
            "frames 0..=194 are due by the last poll at 6.49 s"
        );
        for (i, (_, picture_id)) in frames.iter().enumerate() {
            assert_eq!(usize::from(*picture_id), i, "picture ID of frame {i}");
        }
        assert!(
            frames[60].0 == clip(&VIDEO_ENCODINGS[0])[0].data[..],
            "each loop restarts at frame 0"
        );
    }

    #[test]
    fn frames_are_stamped_with_their_send_instant_at_30fps() {
        let epoch = Instant::now();
        let mut src = VideoSource::new(1_500_000, 1, 96, epoch);
        let start = at(epoch, 1000);
        assert!(src.next_due() <= start, "before the first poll: poll now");
        let first = src.poll(start);
        assert!(first.iter().all(|p| p.header.timestamp == 90_000));
        assert!(src.poll(start + Duration::from_millis(33)).is_empty());
        assert_eq!(src.next_due(), start + Duration::from_nanos(33_333_334));
        let late = src.next_due() + Duration::from_millis(2);
        let second = src.poll(late);
        assert!(!second.is_empty());
        assert!(
            second.iter().all(|p| p.header.timestamp == 90_000 + 3_180),
            "stamped at the actual send instant"
        );
    }

    #[test]
    fn request_keyframe_makes_the_next_frame_a_keyframe() {
        let epoch = Instant::now();
        let mut src = VideoSource::new(1_500_000, 1, 96, epoch);
        let original = clip(VideoEncoding::nearest(1_500_000));
        // Send frames 0..=9, then ask for a keyframe.
        poll_range(&mut src, epoch, 0, 310, 10);
        assert_eq!(src.counters().frames, 10);
        src.request_keyframe();
        src.request_keyframe();
        let packets = src.poll(src.next_due());
        let frames = reassemble(&packets);
        assert_eq!(frames.len(), 1);
        assert!(ivf::is_vp8_keyframe(&frames[0].0));
        assert!(
            frames[0].0 == original[30].data[..],
            "jumped ahead to the clip's next keyframe"
        );
        assert_eq!(frames[0].1, 10, "picture ID continues");
        assert_eq!(src.counters().keyframes_forced, 1);
        // Playback goes on after the keyframe, and the request is used up.
        let next = reassemble(&src.poll(src.next_due()));
        assert!(next[0].0 == original[31].data[..]);

        // Past the last keyframe, a request wraps around to frame 0.
        poll_range(&mut src, epoch, 400, 1010, 10);
        src.request_keyframe();
        let wrapped = reassemble(&src.poll(src.next_due()));
        assert!(wrapped[0].0 == original[0].data[..]);
    }

    #[test]
    fn request_keyframe_when_a_keyframe_is_next_skips_nothing() {
        let epoch = Instant::now();
        let mut src = VideoSource::new(500_000, 1, 96, epoch);
        src.request_keyframe();
        let frames = reassemble(&src.poll(epoch));
        assert!(frames[0].0 == clip(&VIDEO_ENCODINGS[0])[0].data[..]);
        assert_eq!(src.counters().keyframes_forced, 0);
    }

    #[test]
    fn a_short_stall_catches_up_and_a_long_one_restarts_at_a_keyframe() {
        let epoch = Instant::now();
        let mut src = VideoSource::new(500_000, 1, 96, epoch);
        src.poll(epoch);
        // 100 ms late: frames 1..=3 are due, all sent now, with distinct increasing timestamps.
        let frames = src.poll(at(epoch, 100));
        let stamps: Vec<u32> = frames
            .iter()
            .filter(|p| p.header.marker)
            .map(|p| p.header.timestamp)
            .collect();
        assert_eq!(stamps, [9_000, 9_001, 9_002]);
        // A 1 s stall: the backlog is dropped and a keyframe goes out.
        let frames = reassemble(&src.poll(at(epoch, 1100)));
        assert_eq!(frames.len(), 1);
        assert!(ivf::is_vp8_keyframe(&frames[0].0));
        assert_eq!(src.counters().frames_skipped, 29);
        assert_eq!(src.counters().frames, 5);
        assert!(
            src.next_due() > at(epoch, 1100),
            "the schedule resumes from now"
        );
    }
}
