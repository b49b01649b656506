//! An Opus publisher that replays a shipped clip as 20 ms packets.

use std::time::Instant;

use bytes::Bytes;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;

use super::{
    initial_sequence_number, ogg, Schedule, SendCounters, Stamper, AUDIO_CLOCK_RATE,
    MAX_CATCH_UP_FRAMES,
};

/// Packets per second: one per 20 ms Opus frame, the WebRTC default (`ptime` 20).
pub const AUDIO_PACKETS_PER_SECOND: u32 = 50;

/// The shipped clip: 2 s of a 440 Hz tone, mono, constant 32 kbps in 20 ms frames. Every packet
/// is 80 bytes, TOC byte included (see `loadtest/assets/README.md`).
static OPUS_CLIP: &[u8] = include_bytes!("../../assets/opus_48k_mono_32k.ogg");

/// An Opus publisher: replays a shipped clip as one RTP packet per 20 ms, in a loop.
///
/// The packets are real Opus frames, so a browser plays them (a tone). The stream is 32 kbps:
/// 80-byte payloads, 50 per second.
/// - **Timing:** RTP timestamps use the 48 kHz Opus clock. They carry the send instant (see
///   [`super::latency`]) rather than advancing exactly 960 per packet. A receiver sees that as
///   capture-clock jitter, which every jitter buffer handles.
/// - **Marker bit:** set on the first packet only, the start of a talkspurt (RFC 3551).
/// - **Continuity:** sequence numbers run on across loops. An Opus decoder needs no keyframes,
///   so the loop point is just one more frame.
#[derive(Debug)]
pub struct AudioSource {
    packets: Vec<Bytes>,
    next_packet: usize,
    schedule: Schedule,
    stamper: Stamper,
    epoch: Instant,
    ssrc: u32,
    payload_type: u8,
    next_seq: u16,
    counters: SendCounters,
}

impl AudioSource {
    /// A source with the given SSRC and payload type. RTP timestamps are relative to `epoch`,
    /// the shared latency reference. The send schedule starts at the first [`Self::poll`].
    pub fn new(ssrc: u32, payload_type: u8, epoch: Instant) -> Self {
        let packets =
            ogg::packets(&Bytes::from_static(OPUS_CLIP)).expect("embedded Ogg clip parses");
        // Skip the OpusHead and OpusTags header packets (RFC 7845 §3). Everything after them is audio.
        let packets: Vec<Bytes> = packets.into_iter().skip(2).collect();
        assert!(!packets.is_empty(), "the Opus clip has audio packets");
        Self {
            packets,
            next_packet: 0,
            schedule: Schedule::new(u64::from(AUDIO_PACKETS_PER_SECOND)),
            stamper: Stamper::new(epoch, AUDIO_CLOCK_RATE),
            epoch,
            ssrc,
            payload_type,
            next_seq: initial_sequence_number(ssrc),
            counters: SendCounters::default(),
        }
    }

    /// The packets due by `now`, one per 20 ms, in send order. Empty if none is due yet.
    ///
    /// The first call starts the schedule. If more than [`MAX_CATCH_UP_FRAMES`] packets are
    /// overdue, the backlog is dropped and only one packet is sent, as an audio device that
    /// overran its buffer would.
    pub fn poll(&mut self, now: Instant) -> Vec<Packet> {
        let mut due = self.schedule.due(now);
        if due > MAX_CATCH_UP_FRAMES {
            let skipped = due - 1;
            self.schedule.advance(skipped);
            self.counters.frames_skipped += skipped;
            due = 1;
        }
        let mut out = Vec::with_capacity(due as usize);
        for _ in 0..due {
            let payload = self.packets[self.next_packet].clone();
            self.next_packet = (self.next_packet + 1) % self.packets.len();
            self.counters.frames += 1;
            self.counters.packets += 1;
            self.counters.payload_bytes += payload.len() as u64;
            out.push(Packet {
                header: Header {
                    version: 2,
                    marker: self.counters.packets == 1,
                    payload_type: self.payload_type,
                    sequence_number: self.next_seq,
                    timestamp: self.stamper.stamp(now),
                    ssrc: self.ssrc,
                    ..Default::default()
                },
                payload,
            });
            self.next_seq = self.next_seq.wrapping_add(1);
            self.schedule.advance(1);
        }
        out
    }

    /// When the next packet is due: the instant to sleep until before calling [`Self::poll`].
    ///
    /// Before the first poll this is the epoch. That is in the past, meaning "poll now".
    pub fn next_due(&self) -> Instant {
        self.schedule.next_due(self.epoch)
    }

    /// The SSRC of the packets.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// What has been sent so far.
    pub fn counters(&self) -> SendCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Frame duration in µs that an Opus TOC byte declares (RFC 6716 §3.1).
    fn toc_frame_duration_us(toc: u8) -> u32 {
        let config = toc >> 3;
        match config {
            0..=11 => [10_000, 20_000, 40_000, 60_000][usize::from(config % 4)],
            12..=15 => [10_000, 20_000][usize::from(config % 2)],
            _ => [2_500, 5_000, 10_000, 20_000][usize::from(config % 4)],
        }
    }

    #[test]
    fn sends_50_packets_of_80_byte_20ms_opus_frames_per_second() {
        let epoch = Instant::now();
        let mut src = AudioSource::new(42, 111, epoch);
        let packets: Vec<Packet> = (0..1000)
            .step_by(5)
            .flat_map(|ms| src.poll(epoch + Duration::from_millis(ms)))
            .collect();
        assert_eq!(packets.len(), 50);
        for p in &packets {
            assert_eq!(p.payload.len(), 80, "32 kbps CBR");
            assert_eq!(toc_frame_duration_us(p.payload[0]), 20_000);
            // One frame per packet: TOC code 0, or code 3 with a frame count of 1, which is how
            // libopus pads a packet up to the constant bitrate (RFC 6716 §3.2.5).
            match p.payload[0] & 0x03 {
                0 => {}
                3 => assert_eq!(p.payload[1] & 0x3f, 1, "code 3 frame count"),
                code => panic!("TOC code {code}"),
            }
            assert_eq!((p.header.payload_type, p.header.ssrc), (111, 42));
        }
        let bytes: usize = packets.iter().map(|p| p.payload.len()).sum();
        assert_eq!(bytes * 8, 32_000);
        assert!(packets[0].header.marker);
        assert!(packets[1..].iter().all(|p| !p.header.marker));
        // 20 ms at 48 kHz is 960 ticks, and every packet here was polled on time.
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(p.header.timestamp, 960 * i as u32);
        }
    }

    #[test]
    fn sequence_numbers_continue_across_a_loop() {
        let epoch = Instant::now();
        let mut src = AudioSource::new(0x0001_fff0, 111, epoch);
        let clip_len = src.packets.len();
        let packets: Vec<Packet> = (0..5000)
            .step_by(20)
            .flat_map(|ms| src.poll(epoch + Duration::from_millis(ms)))
            .collect();
        assert!(packets.len() > 2 * clip_len, "looped twice");
        assert_eq!(packets[0].header.sequence_number, 0xfff1);
        for pair in packets.windows(2) {
            assert_eq!(
                pair[1].header.sequence_number,
                pair[0].header.sequence_number.wrapping_add(1)
            );
        }
        assert_eq!(
            packets[clip_len].payload, packets[0].payload,
            "the loop restarts the clip"
        );
    }

    #[test]
    fn a_long_stall_drops_the_backlog() {
        let epoch = Instant::now();
        let mut src = AudioSource::new(1, 111, epoch);
        src.poll(epoch);
        assert_eq!(src.poll(epoch + Duration::from_millis(100)).len(), 5);
        assert_eq!(src.poll(epoch + Duration::from_millis(1100)).len(), 1);
        assert_eq!(src.counters().frames_skipped, 49);
        assert_eq!(src.next_due(), epoch + Duration::from_millis(1120));
    }
}
