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
}
