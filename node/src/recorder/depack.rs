//! From RTP packets to frames: [`super::jitter`] puts packets back in
//! order (bounded: see there for what a track costs), this module
//! reassembles frames and applies the keyframe discipline after loss.
//!
//! Opus: one packet is one frame. VP8 (RFC 7741): a frame is the run of
//! consecutive packets with one RTP timestamp, from the packet that starts
//! partition 0 (`S` set, `PID` 0) to the one with the marker bit; the
//! payload descriptors are stripped by [`vp8_payload`].
//!
//! A video frame that lost a packet cannot be repaired here, and every
//! frame after it until the next keyframe refers to it: decoding them
//! would smear. So after a loss the video track drops the broken frame and
//! every frame up to the next keyframe, and says it wants one
//! ([`Depacketized::want_keyframe`]). A lost Opus packet is just a short
//! silence.

use super::jitter::{JitterBuffer, Released, MAX_LATE_PACKETS};
use bytes::{Bytes, BytesMut};
use rtc::rtp;
use std::time::{Duration, Instant};
use veche_protocol::limits::recording::JITTER_MS;

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

/// What the jitter buffer holds of a packet: just what reassembly needs.
struct Piece {
    payload: Bytes,
    ts: u32,
    marker: bool,
}

/// A VP8 frame being put together.
struct Assembly {
    ts: u32,
    parts: Vec<Bytes>,
    /// A packet of it is missing (or malformed): it will be dropped.
    broken: bool,
}

/// Reads a VP8 RTP payload descriptor (RFC 7741 §4.2): whether the packet
/// starts partition 0 of a frame (`S` set, partition index 0), and where
/// the VP8 data begins. `None` for a payload too short for its
/// descriptor plus one byte of data.
///
/// Ours rather than `rtc`'s `Vp8Packet`, which refuses any payload under
/// 4 bytes: a frame's last packet can carry a single byte of data (a
/// packetizer that fills packets to the MTU leaves whatever remains), and
/// refusing it dropped the frame and every frame up to the next keyframe.
pub fn vp8_payload(p: &[u8]) -> Option<(bool, usize)> {
    let first = *p.first()?;
    let start = first & 0x10 != 0 && first & 0x07 == 0;
    let mut at = 1;
    if first & 0x80 != 0 {
        let x = *p.get(at)?;
        at += 1;
        if x & 0x80 != 0 {
            // PictureID: 7 bits, or 15 with M set.
            let m = *p.get(at)? & 0x80 != 0;
            at += if m { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID/Y/KEYIDX
        }
    }
    (p.len() > at).then_some((start, at))
}

/// The depacketizer of one recorded track.
pub struct TrackDepacketizer {
    video: bool,
    jitter: JitterBuffer<Piece>,
    /// Video only: the frame in progress.
    frame: Option<Assembly>,
    /// Video only: drop frames until a keyframe.
    need_keyframe: bool,
    /// Reused between pushes, to allocate once.
    released: Vec<Released<Piece>>,
}

impl TrackDepacketizer {
    fn new(video: bool) -> Self {
        TrackDepacketizer {
            video,
            jitter: JitterBuffer::new(Duration::from_millis(JITTER_MS), MAX_LATE_PACKETS),
            frame: None,
            need_keyframe: video,
            released: Vec::new(),
        }
    }

    /// For a VP8 track (90 kHz): waits for the first keyframe.
    pub fn vp8() -> Self {
        Self::new(true)
    }

    /// For an Opus track (48 kHz).
    pub fn opus() -> Self {
        Self::new(false)
    }

    /// Whether this is a video track.
    pub fn is_video(&self) -> bool {
        self.video
    }

    /// Takes one packet (in any order) and returns the frames it completed.
    /// A padding packet (empty payload) fills its sequence number, so the
    /// jitter buffer never takes it for loss, and gives nothing.
    pub fn push(&mut self, now: Instant, pkt: rtp::Packet) -> Depacketized {
        let mut out = Depacketized::default();
        let piece = (!pkt.payload.is_empty()).then(|| Piece {
            payload: pkt.payload,
            ts: pkt.header.timestamp,
            marker: pkt.header.marker,
        });
        let mut released = std::mem::take(&mut self.released);
        self.jitter
            .push(now, pkt.header.sequence_number, piece, &mut released);
        for r in released.drain(..) {
            if self.video {
                self.take_video(r, &mut out);
            } else {
                match r {
                    Released::Packet(p) => out.frames.push(Frame {
                        data: p.payload,
                        rtp_ts: p.ts,
                        key: true,
                    }),
                    Released::Lost(n) => out.dropped += n,
                    Released::Restart => {}
                }
            }
        }
        self.released = released;
        out
    }

    fn take_video(&mut self, r: Released<Piece>, out: &mut Depacketized) {
        let p = match r {
            Released::Packet(p) => p,
            Released::Lost(_) | Released::Restart => {
                // The missing packets belonged to the frame in progress
                // or to frames not seen at all: either way the picture
                // is broken until a keyframe.
                if let Some(f) = &mut self.frame {
                    f.broken = true;
                }
                self.broken(out);
                return;
            }
        };
        if self.frame.as_ref().is_some_and(|f| f.ts != p.ts) {
            // A new timestamp before the marker: the frame's tail is gone.
            self.frame = None;
            out.dropped += 1;
            self.broken(out);
        }
        let body = vp8_payload(&p.payload);
        let head = body.as_ref().is_some_and(|(start, _)| *start);
        let body = body.map(|(_, at)| p.payload.slice(at..));
        let f = self.frame.get_or_insert_with(|| Assembly {
            ts: p.ts,
            parts: Vec::new(),
            // Without its first packet the frame cannot be decoded.
            broken: !head,
        });
        match body {
            // A second start of partition 0 at the same timestamp means
            // the frame is not what we think it is.
            Some(b) if !head || f.parts.is_empty() => f.parts.push(b),
            _ => f.broken = true,
        }
        if !p.marker {
            return;
        }
        let Some(f) = self.frame.take() else { return };
        if f.broken {
            out.dropped += 1;
            self.broken(out);
            return;
        }
        let data = if f.parts.len() == 1 {
            f.parts.into_iter().next().unwrap_or_default()
        } else {
            let mut b = BytesMut::with_capacity(f.parts.iter().map(Bytes::len).sum());
            for part in &f.parts {
                b.extend_from_slice(part);
            }
            b.freeze()
        };
        let key = vp8_keyframe_size(&data).is_some();
        if self.need_keyframe && !key {
            out.dropped += 1;
            out.want_keyframe = true;
            return;
        }
        self.need_keyframe = false;
        out.frames.push(Frame {
            data,
            rtp_ts: f.ts,
            key,
        });
    }

    /// Loss broke the video: wait for a keyframe, and ask for one.
    fn broken(&mut self, out: &mut Depacketized) {
        self.need_keyframe = true;
        out.want_keyframe = true;
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn vp8_descriptors_of_every_shape_are_read_down_to_one_byte_of_data() {
        // Minimal: S=1, partition 0, one byte of data.
        assert_eq!(vp8_payload(&[0x10, 0xAB]), Some((true, 1)));
        // Not a start, or a start of another partition.
        assert_eq!(vp8_payload(&[0x00, 0xAB]), Some((false, 1)));
        assert_eq!(vp8_payload(&[0x11, 0xAB]), Some((false, 1)));
        // X with a 7-bit PictureID.
        assert_eq!(vp8_payload(&[0x90, 0x80, 0x05, 0xAB]), Some((true, 3)));
        // X with a 15-bit PictureID, TL0PICIDX and TID/KEYIDX.
        assert_eq!(
            vp8_payload(&[0x90, 0xF0, 0x81, 0x02, 0x07, 0x20, 0xAB]),
            Some((true, 6))
        );
        // A descriptor with no data after it, or cut short.
        assert_eq!(vp8_payload(&[0x10]), None);
        assert_eq!(vp8_payload(&[0x90, 0x80, 0x85]), None);
        assert_eq!(vp8_payload(&[]), None);
    }
    use super::*;

    /// A VP8 frame's bitstream: a keyframe header (640×360) or an
    /// interframe, then `id` repeated so frames differ.
    fn bitstream(key: bool, id: u8) -> Vec<u8> {
        let mut v = if key {
            vec![0x10, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]
        } else {
            vec![0x11, 0, 0]
        };
        v.extend(std::iter::repeat_n(id, 30));
        v
    }

    fn packet(seq: u16, ts: u32, marker: bool, payload: Vec<u8>) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                marker,
                payload_type: 96,
                sequence_number: seq,
                timestamp: ts,
                ..Default::default()
            },
            payload: Bytes::from(payload),
        }
    }

    /// A frame as three RTP packets from `seq` (RFC 7741 descriptor: `S`
    /// on the first, marker on the last).
    fn frame(seq: u16, ts: u32, key: bool, id: u8) -> Vec<rtp::Packet> {
        let data = bitstream(key, id);
        let chunks: Vec<&[u8]> = data.chunks(data.len().div_ceil(3)).collect();
        let n = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(k, c)| {
                let mut p = vec![if k == 0 { 0x10 } else { 0x00 }];
                p.extend_from_slice(c);
                packet(seq.wrapping_add(k as u16), ts, k + 1 == n, p)
            })
            .collect()
    }

    /// Frames of 3 packets each, 3000 ticks apart, keyframes where `key`
    /// says, sequence numbers from `seq0`.
    fn stream(seq0: u16, keys: &[bool]) -> Vec<rtp::Packet> {
        keys.iter()
            .enumerate()
            .flat_map(|(i, &k)| frame(seq0.wrapping_add(3 * i as u16), 3000 * i as u32, k, i as u8))
            .collect()
    }

    /// Pushes all packets 1 ms apart and collects what came out.
    fn run(d: &mut TrackDepacketizer, t0: Instant, pkts: Vec<rtp::Packet>) -> Depacketized {
        run_every(d, t0, 1, pkts)
    }

    /// Pushes the packets `step_ms` apart from `t0` and collects what came
    /// out.
    fn run_every(
        d: &mut TrackDepacketizer,
        t0: Instant,
        step_ms: u64,
        pkts: Vec<rtp::Packet>,
    ) -> Depacketized {
        let mut all = Depacketized::default();
        for (i, p) in pkts.into_iter().enumerate() {
            let out = d.push(t0 + Duration::from_millis(i as u64 * step_ms), p);
            all.frames.extend(out.frames);
            all.dropped += out.dropped;
            all.want_keyframe |= out.want_keyframe;
        }
        all
    }

    fn ids(out: &Depacketized) -> Vec<u8> {
        out.frames.iter().map(|f| *f.data.last().unwrap()).collect()
    }

    #[test]
    fn a_held_piece_is_as_small_as_the_jitter_buffers_cost_assumes() {
        // jitter.rs states its per-packet cost for this shape.
        assert_eq!(
            std::mem::size_of::<Piece>(),
            std::mem::size_of::<(Bytes, u32, bool)>()
        );
    }

    #[test]
    fn vp8_frames_in_order_are_reassembled_whole() {
        let mut d = TrackDepacketizer::vp8();
        let out = run(&mut d, Instant::now(), stream(100, &[true, false, false]));
        assert_eq!(ids(&out), vec![0, 1, 2]);
        assert_eq!(out.frames[0].data.as_ref(), bitstream(true, 0).as_slice());
        assert_eq!(out.frames[1].data.as_ref(), bitstream(false, 1).as_slice());
        assert_eq!(
            out.frames
                .iter()
                .map(|f| (f.rtp_ts, f.key))
                .collect::<Vec<_>>(),
            vec![(0, true), (3000, false), (6000, false)]
        );
        assert_eq!((out.dropped, out.want_keyframe), (0, false));
    }

    #[test]
    fn vp8_packets_reordered_within_the_wait_lose_nothing() {
        let mut d = TrackDepacketizer::vp8();
        let mut pkts = stream(100, &[true, false, false]);
        pkts.swap(1, 2);
        pkts.swap(3, 5);
        let out = run(&mut d, Instant::now(), pkts);
        assert_eq!(ids(&out), vec![0, 1, 2]);
        assert_eq!((out.dropped, out.want_keyframe), (0, false));
    }

    #[test]
    fn a_lost_packet_drops_its_frame_and_those_after_until_a_keyframe() {
        let mut d = TrackDepacketizer::vp8();
        let mut pkts = stream(100, &[true, false, false, false, true, false]);
        pkts.remove(4); // the middle of frame 1
                        // 50 ms apart: the gap, seen at the 5th packet, is given up on
                        // four packets later, and everything held is then released.
        let out = run_every(&mut d, Instant::now(), 50, pkts);
        assert!(out.want_keyframe, "asks for a keyframe");
        assert_eq!(ids(&out), vec![0, 4, 5], "1 broken; 2 and 3 refer to it");
        assert_eq!(out.dropped, 3);
    }

    #[test]
    fn a_packet_arriving_after_its_gap_was_skipped_is_dropped() {
        let t0 = Instant::now();
        let mut d = TrackDepacketizer::vp8();
        let mut pkts = stream(100, &[true, false, true, false]);
        let lost = pkts.remove(4);
        let out = run_every(&mut d, t0, 50, pkts);
        assert_eq!(ids(&out), vec![0, 2, 3]);
        let out = d.push(t0 + Duration::from_secs(1), lost);
        assert!(out.frames.is_empty() && out.dropped == 0 && !out.want_keyframe);
    }

    #[test]
    fn padding_between_frames_is_not_taken_for_loss() {
        let mut d = TrackDepacketizer::vp8();
        let mut pkts = frame(100, 0, true, 0);
        pkts.push(packet(103, 0, false, Vec::new()));
        pkts.push(packet(104, 0, false, Vec::new()));
        pkts.extend(frame(105, 3000, false, 1));
        // The padding arrives long after: nothing waits for it as a gap.
        pkts.swap(3, 5);
        let out = run(&mut d, Instant::now(), pkts);
        assert_eq!(ids(&out), vec![0, 1]);
        assert_eq!((out.dropped, out.want_keyframe), (0, false));
    }

    #[test]
    fn vp8_frames_across_the_sequence_wrap_are_whole() {
        let mut d = TrackDepacketizer::vp8();
        let out = run(
            &mut d,
            Instant::now(),
            stream(65_531, &[true, false, false, false]),
        );
        assert_eq!(ids(&out), vec![0, 1, 2, 3]);
        assert_eq!(out.dropped, 0);
    }

    #[test]
    fn duplicated_packets_give_each_frame_once() {
        let mut d = TrackDepacketizer::vp8();
        let pkts: Vec<_> = stream(100, &[true, false])
            .into_iter()
            .flat_map(|p| [p.clone(), p])
            .collect();
        let out = run(&mut d, Instant::now(), pkts);
        assert_eq!(ids(&out), vec![0, 1]);
        assert_eq!(out.dropped, 0);
    }

    #[test]
    fn video_waits_for_its_first_keyframe() {
        let mut d = TrackDepacketizer::vp8();
        // Joined mid-frame, then an interframe, then a keyframe.
        let mut pkts = stream(100, &[false, false, true]);
        pkts.remove(0);
        let out = run(&mut d, Instant::now(), pkts);
        assert_eq!(ids(&out), vec![2]);
        assert!(out.want_keyframe);
    }

    #[test]
    fn opus_packets_are_frames_and_a_lost_one_is_a_dropped_frame() {
        let mut d = TrackDepacketizer::opus();
        assert!(!d.is_video());
        let mut pkts: Vec<_> = (0..10u16)
            .map(|i| {
                packet(
                    65_534u16.wrapping_add(i),
                    960 * u32::from(i),
                    false,
                    vec![i as u8; 20],
                )
            })
            .collect();
        pkts.remove(2);
        let out = run_every(&mut d, Instant::now(), 50, pkts);
        let got: Vec<u8> = out.frames.iter().map(|f| f.data[0]).collect();
        assert_eq!(
            got,
            vec![0, 1, 3, 4, 5, 6, 7, 8, 9],
            "in order across the wrap"
        );
        assert!(out.frames.iter().all(|f| f.key));
        assert_eq!((out.dropped, out.want_keyframe), (1, false));
    }
}
