//! From RTP packets to frames: a small jitter buffer that puts packets back
//! in order and reassembles frames (`rtc`'s `SampleBuilder` with the VP8
//! and Opus depacketizers), and the keyframe discipline after loss.
//!
//! A video frame that lost a packet cannot be repaired here, and every
//! frame after it until the next keyframe refers to it: decoding them
//! would smear. So after a dropped sample the video track drops frames up
//! to the next keyframe and says it wants one ([`Depacketized::want_keyframe`]).

use rtc::media::io::sample_builder::SampleBuilder;
use rtc::rtp;
use rtc::rtp::codec::opus::OpusPacket;
use rtc::rtp::codec::vp8::Vp8Packet;
use std::time::{Duration, Instant};
use veche_protocol::limits::recording::JITTER_MS;

/// Packets the jitter buffer holds at most before it gives up on a gap.
const MAX_LATE_PACKETS: u16 = 512;

/// One reassembled frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The codec bitstream (a VP8 frame, an Opus packet).
    pub data: bytes::Bytes,
    /// Its RTP timestamp.
    pub rtp_ts: u32,
    /// A VP8 keyframe (always `true` for audio: any Opus packet decodes).
    pub key: bool,
}

/// What a batch of packets gave.
#[derive(Debug, Default)]
pub struct Depacketized {
    /// Frames ready to mux, in order.
    pub frames: Vec<Frame>,
    /// Frames dropped (lost packets, or waiting for a keyframe).
    pub dropped: u64,
    /// Loss broke the video: ask the publisher for a keyframe.
    pub want_keyframe: bool,
}

/// Width and height from a VP8 keyframe's header (RFC 6386 §9.1), `None`
/// for an interframe or a truncated frame.
pub fn vp8_keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    (w > 0 && h > 0).then_some((u32::from(w), u32::from(h)))
}

enum Builder {
    Vp8(Box<SampleBuilder<Vp8Packet>>),
    Opus(Box<SampleBuilder<OpusPacket>>),
}

/// The depacketizer of one recorded track.
pub struct TrackDepacketizer {
    builder: Builder,
    /// Video only: drop frames until a keyframe.
    need_keyframe: bool,
}

impl TrackDepacketizer {
    /// For a VP8 track (90 kHz): waits for the first keyframe.
    pub fn vp8() -> Self {
        let b = SampleBuilder::new(MAX_LATE_PACKETS, Vp8Packet::default(), 90_000)
            .with_max_time_delay(Duration::from_millis(JITTER_MS));
        TrackDepacketizer {
            builder: Builder::Vp8(Box::new(b)),
            need_keyframe: true,
        }
    }

    /// For an Opus track (48 kHz).
    pub fn opus() -> Self {
        let b = SampleBuilder::new(MAX_LATE_PACKETS, OpusPacket, 48_000)
            .with_max_time_delay(Duration::from_millis(JITTER_MS));
        TrackDepacketizer {
            builder: Builder::Opus(Box::new(b)),
            need_keyframe: false,
        }
    }

    /// Whether this is a video track.
    pub fn is_video(&self) -> bool {
        matches!(self.builder, Builder::Vp8(_))
    }

    /// Takes one packet (in any order) and returns the frames it completed.
    pub fn push(&mut self, now: Instant, pkt: rtp::Packet) -> Depacketized {
        let mut out = Depacketized::default();
        if pkt.payload.is_empty() && !self.is_video() {
            // Padding on audio (rare): nothing to reassemble. Video
            // padding goes in: the builder recognises it, and skipping it
            // would leave a sequence gap that looks like loss.
            return out;
        }
        let mut samples = Vec::new();
        match &mut self.builder {
            Builder::Vp8(b) => {
                b.push(now, pkt);
                while let Some(s) = b.pop(now) {
                    samples.push(s);
                }
            }
            Builder::Opus(b) => {
                b.push(now, pkt);
                while let Some(s) = b.pop(now) {
                    samples.push(s);
                }
            }
        }
        let video = self.is_video();
        for s in samples {
            let lost = s.prev_dropped_packets > s.prev_padding_packets;
            if video {
                if lost && !self.need_keyframe {
                    self.need_keyframe = true;
                    out.want_keyframe = true;
                }
                let key = vp8_keyframe_size(&s.data).is_some();
                if self.need_keyframe && !key {
                    out.dropped += 1;
                    out.want_keyframe = true;
                    continue;
                }
                self.need_keyframe = false;
                out.frames.push(Frame {
                    data: s.data,
                    rtp_ts: s.packet_timestamp,
                    key,
                });
            } else {
                out.frames.push(Frame {
                    data: s.data,
                    rtp_ts: s.packet_timestamp,
                    key: true,
                });
            }
        }
        out
    }
}
