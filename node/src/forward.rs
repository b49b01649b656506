//! Per-packet forwarding decisions, without I/O: rewriting an RTP header
//! for one subscriber leg, and rate-limiting keyframe requests.
//!
//! webrtc-rs drops (with only a log line) any packet whose SSRC, payload
//! type or header-extension ids were not negotiated on the sending leg, so
//! every forwarded packet must be rewritten to the leg's own values.

use std::time::{Duration, Instant};

/// Header rewriting for one (published track, subscriber) leg.
#[derive(Clone, Debug)]
pub struct DownLeg {
    /// The SSRC this leg announces to its subscriber.
    pub out_ssrc: u32,
    /// The payload type the subscriber's connection negotiated for the
    /// track's codec. `None` until negotiation completes; packets are
    /// dropped until then.
    pub out_pt: Option<u8>,
    /// Set once a packet was forwarded, so the edge can ask for a keyframe
    /// exactly when a decoder starts receiving.
    started: bool,
}

/// What to do with one packet on one leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it; it is the first packet on this leg, so also request a
    /// keyframe from the publisher.
    ForwardFirst,
    /// Send it.
    Forward,
    /// The leg is not negotiated yet; drop.
    Drop,
}

impl DownLeg {
    /// A new leg with its own SSRC.
    pub fn new(out_ssrc: u32) -> Self {
        DownLeg {
            out_ssrc,
            out_pt: None,
            started: false,
        }
    }

    /// The packet [`Verdict::ForwardFirst`] was given for could not be
    /// sent (the leg was not bound yet); the next one counts as first again,
    /// so the keyframe request goes out when media really flows.
    pub fn first_not_delivered(&mut self) {
        self.started = false;
    }

    /// Rewrites `header` for this leg. Header extensions are stripped:
    /// their ids are negotiated per connection and the publisher's ids mean
    /// nothing (or something else) on the subscriber's connection.
    pub fn rewrite(&mut self, header: &mut rtc::rtp::header::Header) -> Verdict {
        let Some(pt) = self.out_pt else {
            return Verdict::Drop;
        };
        header.ssrc = self.out_ssrc;
        header.payload_type = pt;
        header.extension = false;
        header.extension_profile = 0;
        header.extensions.clear();
        if self.started {
            Verdict::Forward
        } else {
            self.started = true;
            Verdict::ForwardFirst
        }
    }
}

/// Coalesces keyframe requests for one published track. Every new
/// subscriber and every subscriber PLI asks for a keyframe; a burst of them
/// (ten people joining at once) must reach the publisher as one request,
/// or its encoder spends the whole bitrate on keyframes.
#[derive(Clone, Debug)]
pub struct KeyframeGate {
    min_interval: Duration,
    last: Option<Instant>,
}

impl KeyframeGate {
    /// The default spacing: at most two requests per second.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);

    /// A gate with the given minimum spacing.
    pub fn new(min_interval: Duration) -> Self {
        KeyframeGate {
            min_interval,
            last: None,
        }
    }

    /// Returns true if a request should go to the publisher now.
    pub fn request(&mut self, now: Instant) -> bool {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.min_interval => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

impl Default for KeyframeGate {
    fn default() -> Self {
        KeyframeGate::new(Self::DEFAULT_INTERVAL)
    }
}

/// Chooses the outgoing payload type for a codec from a leg's negotiated
/// codecs: the first with the same MIME type (case-insensitive, as SDP is)
/// and clock rate.
pub fn negotiated_pt<'a>(
    mime_type: &str,
    clock_rate: u32,
    negotiated: impl IntoIterator<Item = (&'a str, u32, u8)>,
) -> Option<u8> {
    negotiated
        .into_iter()
        .find(|(m, c, _)| m.eq_ignore_ascii_case(mime_type) && *c == clock_rate)
        .map(|(_, _, pt)| pt)
}

/// Notices RTP sequence numbers that never arrived on a relayed track, so
/// the receiving node can NACK them to the publisher's node at once,
/// instead of its subscribers NACKing a node that never had them.
#[derive(Clone, Debug, Default)]
pub struct GapDetector {
    highest: Option<u16>,
}

impl GapDetector {
    /// Larger jumps are a stream restart or a long outage, not loss worth
    /// repairing: the subscriber's decoder needs a keyframe instead.
    pub const MAX_GAP: u16 = 64;

    /// Records an arriving sequence number and returns the ones skipped
    /// just before it. Late and repeated packets return nothing.
    pub fn on_packet(&mut self, seq: u16) -> Vec<u16> {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return Vec::new();
        };
        let ahead = seq.wrapping_sub(highest);
        if ahead == 0 || ahead >= 0x8000 {
            // A duplicate, or older than the highest seen (reordered or
            // retransmitted): nothing new is missing.
            return Vec::new();
        }
        self.highest = Some(seq);
        if ahead > Self::MAX_GAP {
            return Vec::new();
        }
        (1..ahead).map(|d| highest.wrapping_add(d)).collect()
    }
}

/// The last packets relayed on one leg, by sequence number, so a NACK from
/// the receiving node can be answered. A fixed ring: a slot holds the
/// packet whose sequence number maps to it, so lookups are O(1) and old
/// packets are overwritten without bookkeeping.
#[derive(Clone, Debug)]
pub struct RetransmitBuffer {
    slots: Vec<Option<(u16, bytes::Bytes)>>,
}

impl RetransmitBuffer {
    /// 512 packets: about 1.5 s of 1.5 Mbps video, far longer than one
    /// NACK round trip between nodes.
    pub const DEFAULT_LEN: usize = 512;

    /// An empty buffer of `len` packets (a power of two divides `u16`
    /// evenly, so wrap-around keeps the mapping).
    pub fn new(len: usize) -> Self {
        assert!(len.is_power_of_two() && len <= 1 << 16);
        RetransmitBuffer {
            slots: vec![None; len],
        }
    }

    /// Stores a sent packet.
    pub fn insert(&mut self, seq: u16, packet: bytes::Bytes) {
        let n = self.slots.len();
        self.slots[seq as usize % n] = Some((seq, packet));
    }

    /// The packet with `seq`, if it is still held.
    pub fn get(&self, seq: u16) -> Option<&bytes::Bytes> {
        match &self.slots[seq as usize % self.slots.len()] {
            Some((s, p)) if *s == seq => Some(p),
            _ => None,
        }
    }
}

impl Default for RetransmitBuffer {
    fn default() -> Self {
        Self::new(Self::DEFAULT_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::header::{Extension, Header};

    fn header() -> Header {
        Header {
            version: 2,
            ssrc: 0xdead_beef,
            payload_type: 120,
            sequence_number: 7,
            timestamp: 90_000,
            extension: true,
            extension_profile: 0xBEDE,
            extensions: vec![Extension {
                id: 3,
                payload: bytes::Bytes::from_static(&[1, 2, 3]),
            }],
            ..Header::default()
        }
    }

    #[test]
    fn packets_are_dropped_until_the_leg_has_a_payload_type() {
        let mut leg = DownLeg::new(42);
        let mut h = header();
        assert_eq!(leg.rewrite(&mut h), Verdict::Drop);
        assert_eq!(h.ssrc, 0xdead_beef, "a dropped packet is not modified");
    }

    #[test]
    fn ssrc_and_payload_type_are_rewritten_and_extensions_stripped() {
        let mut leg = DownLeg::new(42);
        leg.out_pt = Some(96);
        let mut h = header();
        assert_eq!(leg.rewrite(&mut h), Verdict::ForwardFirst);
        assert_eq!((h.ssrc, h.payload_type), (42, 96));
        assert!(!h.extension && h.extensions.is_empty());
        // Sequence numbers and timestamps pass through untouched: the
        // subscriber's jitter buffer and NACKs rely on the publisher's.
        assert_eq!((h.sequence_number, h.timestamp), (7, 90_000));
        let mut h2 = header();
        assert_eq!(leg.rewrite(&mut h2), Verdict::Forward);
    }

    #[test]
    fn keyframe_requests_are_coalesced() {
        let t0 = Instant::now();
        let mut gate = KeyframeGate::new(Duration::from_millis(500));
        assert!(gate.request(t0));
        assert!(!gate.request(t0 + Duration::from_millis(100)));
        assert!(!gate.request(t0 + Duration::from_millis(499)));
        assert!(gate.request(t0 + Duration::from_millis(500)));
    }

    #[test]
    fn payload_type_is_chosen_by_codec_not_by_number() {
        let negotiated = [("video/VP9", 90_000, 98), ("video/VP8", 90_000, 96)];
        assert_eq!(negotiated_pt("video/vp8", 90_000, negotiated), Some(96));
        assert_eq!(negotiated_pt("video/H264", 90_000, negotiated), None);
        assert_eq!(
            negotiated_pt("audio/opus", 48_000, [("audio/opus", 48_000, 111)]),
            Some(111)
        );
    }

    #[test]
    fn gaps_in_a_relayed_sequence_are_reported_once_across_wraparound() {
        let mut g = GapDetector::default();
        assert!(g.on_packet(65533).is_empty());
        assert_eq!(g.on_packet(1), vec![65534, 65535, 0]);
        assert!(g.on_packet(0).is_empty(), "a late packet is not a gap");
        assert!(g.on_packet(1).is_empty(), "nor is a duplicate");
        assert_eq!(g.on_packet(3), vec![2]);
        assert!(
            g.on_packet(3 + GapDetector::MAX_GAP + 1).is_empty(),
            "a restart is not loss"
        );
    }

    #[test]
    fn the_retransmit_buffer_answers_only_for_packets_it_still_holds() {
        let mut b = RetransmitBuffer::new(4);
        for seq in 10..16u16 {
            b.insert(seq, bytes::Bytes::from(vec![seq as u8]));
        }
        assert_eq!(b.get(15).map(|p| p[0]), Some(15));
        assert_eq!(b.get(12).map(|p| p[0]), Some(12));
        assert!(b.get(11).is_none(), "overwritten by 15");
        assert!(b.get(99).is_none());
    }
}
