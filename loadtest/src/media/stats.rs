//! Receive-side statistics of one subscribed track. No I/O.
//!
//! A subscriber bot feeds each RTP packet it receives into [`ReceiveStats::record`]. At the
//! end of the measurement window, [`ReceiveStats::report`] gives:
//! - loss and duplicates, counted as RFC 3550 §6.4.1 does;
//! - interarrival jitter (RFC 3550 §6.4.1 and A.8);
//! - the bitrate;
//! - the time of the first packet;
//! - one-way latency percentiles.
//!
//! Memory per track is fixed. Latency samples go into a [`LatencyHistogram`] of log-spaced
//! buckets (in [`super::histogram`]), not a list, so an hour-long run costs no more than a
//! minute-long one.

use std::time::Instant;

pub use super::histogram::{LatencyHistogram, LatencySummary};
use super::latency::{one_way_latency, rtp_ts_for};

/// How far back [`SequenceTracker`] remembers which sequence numbers arrived. This is how late a
/// duplicate can come and still be recognised: 1024 packets, about 1.5 s of 1.5 Mbps video.
const DUPLICATE_WINDOW: u64 = 1024;

/// Extends 16-bit sequence numbers and counts what arrived against what was expected.
///
/// Each sequence number is placed at the extended value nearest to the highest one so far. That
/// copes with wraparound, and with reordering by up to 32767 packets in either direction.
/// Extended numbers start at `65536 + first`, so a packet reordered ahead of the first one
/// still has a positive number. A late packet lowers the base instead of counting as loss.
#[derive(Debug, Clone)]
struct SequenceTracker {
    /// Lowest extended sequence number received.
    base: u64,
    /// Highest extended sequence number received.
    max: u64,
    /// Bitmap of arrivals among the last [`DUPLICATE_WINDOW`] numbers, indexed modulo its size.
    seen: [u64; (DUPLICATE_WINDOW / 64) as usize],
}

impl SequenceTracker {
    fn new(first: u16) -> Self {
        let ext = (1 << 16) + u64::from(first);
        let mut tracker = Self {
            base: ext,
            max: ext,
            seen: [0; (DUPLICATE_WINDOW / 64) as usize],
        };
        tracker.set(ext, true);
        tracker
    }

    /// Records an arrival and returns whether it is new (`false` for a duplicate).
    fn on_arrival(&mut self, seq: u16) -> bool {
        let delta = i64::from(seq.wrapping_sub(self.max as u16) as i16);
        let ext = self.max.saturating_add_signed(delta);
        if ext > self.max {
            // Moving forward: forget the numbers now leaving the window.
            if ext - self.max >= DUPLICATE_WINDOW {
                self.seen = [0; (DUPLICATE_WINDOW / 64) as usize];
            } else {
                for e in self.max + 1..=ext {
                    self.set(e, false);
                }
            }
            self.max = ext;
            self.set(ext, true);
            return true;
        }
        let in_window = self.max - ext < DUPLICATE_WINDOW;
        if in_window {
            if self.get(ext) {
                return false;
            }
            self.set(ext, true);
        }
        // A late packet, or too old to check for duplication. Either way, count it as
        // received. A duplicate counted here could make `received` exceed `expected`, so
        // `lost` saturates at zero.
        self.base = self.base.min(ext);
        true
    }

    fn expected(&self) -> u64 {
        self.max - self.base + 1
    }

    fn get(&self, ext: u64) -> bool {
        let i = ext % DUPLICATE_WINDOW;
        self.seen[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, ext: u64, on: bool) {
        let i = ext % DUPLICATE_WINDOW;
        let word = &mut self.seen[(i / 64) as usize];
        if on {
            *word |= 1 << (i % 64);
        } else {
            *word &= !(1 << (i % 64));
        }
    }
}

/// Receive statistics of one subscribed track.
///
/// The measurement window runs from construction, or the last [`Self::reset`], to the `now`
/// passed to [`Self::report`]. Reset after warm-up to leave join and ramp-up out of the
/// figures.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    clock_rate: u32,
    epoch: Instant,
    seq: Option<SequenceTracker>,
    packets: u64,
    duplicates: u64,
    bytes: u64,
    /// RFC 3550 `J`, in RTP ticks, kept as a float rather than the RFC's fixed-point form.
    jitter_ticks: f64,
    /// RFC 3550 relative transit time (arrival minus RTP timestamp, in ticks, modulo 2^32) of
    /// the previous packet.
    last_transit: Option<u32>,
    first_packet: Option<Instant>,
    last_packet: Option<Instant>,
    latency: LatencyHistogram,
    latency_rejected: u64,
}

impl ReceiveStats {
    /// Statistics for a track with the given RTP clock rate, for example
    /// [`super::VIDEO_CLOCK_RATE`].
    ///
    /// `epoch` is the latency reference shared with the publishers (see [`super::latency`]).
    pub fn new(clock_rate: u32, epoch: Instant) -> Self {
        Self {
            clock_rate,
            epoch,
            seq: None,
            packets: 0,
            duplicates: 0,
            bytes: 0,
            jitter_ticks: 0.0,
            last_transit: None,
            first_packet: None,
            last_packet: None,
            latency: LatencyHistogram::new(),
            latency_rejected: 0,
        }
    }

    /// Starts a new measurement window. Everything counted so far is forgotten.
    pub fn reset(&mut self) {
        *self = Self::new(self.clock_rate, self.epoch);
    }

    /// Accounts one received RTP packet. `payload_len` is the RTP payload only, with no header
    /// and no padding. `recv` is when it arrived.
    ///
    /// A duplicate is counted in `duplicates` and otherwise ignored.
    pub fn record(&mut self, seq: u16, rtp_ts: u32, payload_len: usize, recv: Instant) {
        let new = match &mut self.seq {
            None => {
                self.seq = Some(SequenceTracker::new(seq));
                true
            }
            Some(tracker) => tracker.on_arrival(seq),
        };
        if !new {
            self.duplicates += 1;
            return;
        }
        self.packets += 1;
        self.bytes += payload_len as u64;
        self.first_packet.get_or_insert(recv);
        self.last_packet = Some(recv);

        // RFC 3550 A.8: D = (arrival - ts) - previous (arrival - ts), and J += (|D| - J) / 16.
        // Only differences of transit times matter, so this is right for any publisher's clock,
        // not just one stamping against our epoch.
        let arrival = rtp_ts_for(recv, self.epoch, self.clock_rate);
        let transit = arrival.wrapping_sub(rtp_ts);
        if let Some(last) = self.last_transit {
            let d = f64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            self.jitter_ticks += (d - self.jitter_ticks) / 16.0;
        }
        self.last_transit = Some(transit);

        match one_way_latency(rtp_ts, recv, self.epoch, self.clock_rate) {
            Some(latency) => self.latency.record(latency),
            None => self.latency_rejected += 1,
        }
    }

    /// The latency samples so far. To summarise a run, [`LatencyHistogram::merge`] these
    /// across tracks rather than collecting raw samples.
    pub fn latency(&self) -> &LatencyHistogram {
        &self.latency
    }

    /// Distinct packets received. Duplicates are not counted.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Packets the sequence numbers say were sent, from the lowest to the highest received.
    pub fn expected(&self) -> u64 {
        self.seq.as_ref().map_or(0, SequenceTracker::expected)
    }

    /// `expected() - packets()`, never below zero.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.packets)
    }

    /// RFC 3550 interarrival jitter, in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter_ticks * 1000.0 / f64::from(self.clock_rate.max(1))
    }

    /// Payload bitrate from the first to the last packet received, in bits per second.
    ///
    /// This needs no `now`. A stream that stopped early still shows its rate while it flowed,
    /// so check [`Self::last_packet`] or use [`Self::report`] with the window's end. Zero
    /// before two packets have arrived.
    pub fn bitrate_bps(&self) -> f64 {
        match (self.first_packet, self.last_packet) {
            (Some(first), Some(last)) => bitrate(self.bytes, first, last),
            _ => 0.0,
        }
    }

    /// When the first packet of the window arrived.
    pub fn first_packet(&self) -> Option<Instant> {
        self.first_packet
    }

    /// When the latest packet arrived.
    pub fn last_packet(&self) -> Option<Instant> {
        self.last_packet
    }

    /// The figures for the window ending at `now`. The bitrate here covers the time from the
    /// first packet to `now`, so a stream that stalled shows a lower rate.
    pub fn report(&self, now: Instant) -> ReceiveReport {
        ReceiveReport {
            packets: self.packets,
            duplicates: self.duplicates,
            bytes: self.bytes,
            expected: self.expected(),
            lost: self.lost(),
            jitter_ms: self.jitter_ms(),
            bitrate_bps: self
                .first_packet
                .map_or(0.0, |first| bitrate(self.bytes, first, now)),
            first_packet: self.first_packet,
            last_packet: self.last_packet,
            latency: self.latency.summary(),
            latency_rejected: self.latency_rejected,
        }
    }
}

fn bitrate(bytes: u64, from: Instant, to: Instant) -> f64 {
    let secs = to.saturating_duration_since(from).as_secs_f64();
    if secs > 0.0 {
        bytes as f64 * 8.0 / secs
    } else {
        0.0
    }
}

/// The figures of one track over one measurement window.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiveReport {
    /// Distinct packets received (duplicates excluded).
    pub packets: u64,
    /// Packets received more than once, counted from the second copy on.
    pub duplicates: u64,
    /// RTP payload bytes of the distinct packets. This counts the same bytes as
    /// [`super::SendCounters::payload_bytes`].
    pub bytes: u64,
    /// Packets the sequence numbers say were sent, from the lowest to the highest received.
    pub expected: u64,
    /// `expected - packets`, never below zero. Packets still in flight at the end of the window
    /// are not counted as lost, because nothing after them has arrived yet.
    pub lost: u64,
    /// RFC 3550 interarrival jitter, in milliseconds.
    pub jitter_ms: f64,
    /// Payload bitrate from the first packet to the end of the window, in bits per second.
    pub bitrate_bps: f64,
    /// When the first packet arrived. Compared with the join time, this gives time to first
    /// media.
    pub first_packet: Option<Instant>,
    /// When the last packet arrived.
    pub last_packet: Option<Instant>,
    /// One-way latency of the packets.
    pub latency: LatencySummary,
    /// Packets whose RTP timestamp gave no plausible latency (see
    /// [`super::latency::one_way_latency`]). Many of these mean the publisher is not a bot of
    /// this run.
    pub latency_rejected: u64,
}

impl ReceiveReport {
    /// `lost / expected`, in `[0, 1]`. Zero when nothing was expected.
    pub fn loss_fraction(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost as f64 / self.expected as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{AUDIO_CLOCK_RATE, VIDEO_CLOCK_RATE};
    use std::time::Duration;

    /// An audio-like stream: packet `i` is sent at `i * 20 ms` after `start`, with a matching
    /// RTP timestamp. It is received `delay(i)` later.
    fn feed(
        stats: &mut ReceiveStats,
        epoch: Instant,
        seqs: &[u16],
        delay: impl Fn(usize) -> Duration,
    ) {
        for (i, &seq) in seqs.iter().enumerate() {
            let send = epoch + Duration::from_millis(1000 + 20 * i as u64);
            let ts = rtp_ts_for(send, epoch, AUDIO_CLOCK_RATE);
            stats.record(seq, ts, 80, send + delay(i));
        }
    }

    fn fixed(ms: u64) -> impl Fn(usize) -> Duration {
        move |_| Duration::from_millis(ms)
    }

    fn report_of(seqs: &[u16]) -> ReceiveReport {
        let epoch = Instant::now();
        let mut stats = ReceiveStats::new(AUDIO_CLOCK_RATE, epoch);
        feed(&mut stats, epoch, seqs, fixed(5));
        stats.report(epoch + Duration::from_secs(10))
    }

    #[test]
    fn a_gap_counts_as_loss() {
        let epoch = Instant::now();
        let mut stats = ReceiveStats::new(AUDIO_CLOCK_RATE, epoch);
        feed(&mut stats, epoch, &[0, 1, 2, 5, 6, 7, 8, 9], fixed(5));
        assert_eq!(
            (stats.packets(), stats.expected(), stats.lost()),
            (8, 10, 2)
        );
        let r = stats.report(epoch + Duration::from_secs(2));
        assert_eq!((r.packets, r.expected, r.lost), (8, 10, 2));
        assert!((r.loss_fraction() - 0.2).abs() < 1e-9);
    }

    #[test]
    fn reordering_is_not_loss() {
        let r = report_of(&[0, 1, 3, 2, 4, 6, 5]);
        assert_eq!((r.packets, r.expected, r.lost), (7, 7, 0));
        // Reordered ahead of the very first packet.
        let r = report_of(&[10, 9, 11, 8]);
        assert_eq!((r.packets, r.expected, r.lost), (4, 4, 0));
    }

    #[test]
    fn duplicates_are_counted_apart_and_are_not_loss() {
        let r = report_of(&[0, 1, 1, 2, 0, 3]);
        assert_eq!((r.packets, r.duplicates, r.expected, r.lost), (4, 2, 4, 0));
        assert_eq!(r.bytes, 4 * 80, "a duplicate's bytes are not counted");
    }

    #[test]
    fn sequence_wraparound_is_handled() {
        let seqs: Vec<u16> = (65_530..=65_535).chain(0..=10).collect();
        let r = report_of(&seqs);
        assert_eq!((r.packets, r.expected, r.lost), (17, 17, 0));
        // A gap spanning the wrap: 65535 and 0 are missing.
        let seqs: Vec<u16> = (65_530..=65_534).chain(1..=10).collect();
        let r = report_of(&seqs);
        assert_eq!((r.expected, r.lost), (17, 2));
        // Several wraps in a long stream: nothing is lost.
        let seqs: Vec<u16> = (0..200_000u32).map(|i| i as u16).collect();
        let r = report_of(&seqs);
        assert_eq!((r.packets, r.expected, r.lost), (200_000, 200_000, 0));
    }

    #[test]
    fn perfectly_paced_stream_has_no_jitter() {
        let seqs: Vec<u16> = (0..500).collect();
        let r = report_of(&seqs);
        assert!(r.jitter_ms < 0.05, "jitter {} ms", r.jitter_ms);
    }

    #[test]
    fn alternating_delay_converges_to_that_jitter() {
        let epoch = Instant::now();
        let mut stats = ReceiveStats::new(AUDIO_CLOCK_RATE, epoch);
        let seqs: Vec<u16> = (0..500).collect();
        // Delay alternates 5 ms / 15 ms, so |D| = 10 ms for every packet and J tends to 10 ms.
        feed(&mut stats, epoch, &seqs, |i| {
            Duration::from_millis(if i % 2 == 0 { 5 } else { 15 })
        });
        let r = stats.report(epoch + Duration::from_secs(20));
        assert!(
            (r.jitter_ms - 10.0).abs() < 0.1,
            "jitter {} ms",
            r.jitter_ms
        );
    }

    #[test]
    fn bitrate_and_first_packet_cover_the_window() {
        let epoch = Instant::now();
        let mut stats = ReceiveStats::new(AUDIO_CLOCK_RATE, epoch);
        let seqs: Vec<u16> = (0..100).collect();
        feed(&mut stats, epoch, &seqs, fixed(5));
        let first = epoch + Duration::from_millis(1005);
        let r = stats.report(first + Duration::from_secs(2));
        assert_eq!(r.first_packet, Some(first));
        assert!(
            (r.bitrate_bps - 32_000.0).abs() < 1.0,
            "{} bps",
            r.bitrate_bps
        );
        // From first to last packet: 100 packets over 99 intervals of 20 ms.
        assert!((stats.bitrate_bps() - 64_000.0 / 1.98).abs() < 1.0);
        // A window that runs on after the stream stopped shows the stall.
        let r = stats.report(first + Duration::from_secs(4));
        assert!((r.bitrate_bps - 16_000.0).abs() < 1.0);

        stats.reset();
        let r = stats.report(first + Duration::from_secs(3));
        assert_eq!((r.packets, r.bitrate_bps, r.first_packet), (0, 0.0, None));
    }

    #[test]
    fn latency_percentiles_come_from_rtp_timestamps() {
        let epoch = Instant::now();
        let mut stats = ReceiveStats::new(VIDEO_CLOCK_RATE, epoch);
        // 1000 packets with latencies of 1..=100 ms, ten of each.
        for i in 0..1000u64 {
            let send = epoch + Duration::from_millis(500 + 33 * i);
            let ts = rtp_ts_for(send, epoch, VIDEO_CLOCK_RATE);
            let latency = Duration::from_millis(1 + i % 100);
            stats.record(i as u16, ts, 1000, send + latency);
        }
        // And one from a publisher with a foreign timestamp base.
        stats.record(1000, 0x8000_0000, 1000, epoch + Duration::from_secs(40));
        let r = stats.report(epoch + Duration::from_secs(40));
        let ms = |d: Option<Duration>| d.unwrap().as_secs_f64() * 1000.0;
        assert_eq!(r.latency.samples, 1000);
        assert_eq!(r.latency_rejected, 1);
        // Within one tick (11 µs) plus histogram precision (0.4 %).
        assert!(
            (ms(r.latency.p50) - 50.0).abs() < 0.25,
            "p50 {}",
            ms(r.latency.p50)
        );
        assert!(
            (ms(r.latency.p95) - 95.0).abs() < 0.45,
            "p95 {}",
            ms(r.latency.p95)
        );
        assert!(
            (ms(r.latency.p99) - 99.0).abs() < 0.45,
            "p99 {}",
            ms(r.latency.p99)
        );
        assert!((ms(r.latency.max) - 100.0).abs() < 0.02);
        assert!((ms(r.latency.min) - 1.0).abs() < 0.02);
        assert!((ms(r.latency.mean) - 50.5).abs() < 0.02);
    }
}
