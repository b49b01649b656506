//! The recorder's jitter buffer: puts one track's RTP packets back in
//! sequence order, waits a short while for a missing one, and then gives
//! up on it (loss). I/O-free: the caller passes `now`.
//!
//! Why our own and not `rtc`'s `SampleBuilder`: that one allocates two
//! 65 536-slot vectors per track (about 12 MB), which is 1.4 GB for a
//! recorded room of 60. This buffer holds only the packets waiting behind
//! a gap, at most [`MAX_LATE_PACKETS`] of them, in a `BTreeMap` keyed by
//! the extended (unwrapped) sequence number. Packets that arrive in order
//! are released at once and never stored, so an idle or healthy track
//! costs the size of [`JitterBuffer`] (under 100 bytes); a track behind
//! a gap costs at most [`HELD_OVERHEAD_BYTES`] per held packet plus the
//! payloads it already had in memory: at most 512 × (160 + ~1 200) bytes,
//! about 0.7 MB, and only for up to `JITTER_MS` after a loss (in practice
//! the packets of 200 ms: tens of KB for a camera).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Packets the buffer holds at most: when a new packet would exceed this,
/// the oldest gap is given up on at once, whatever its age. 512 packets
/// is over a second of a 2.5 Mbit/s camera, far more than `JITTER_MS`
/// holds at real rates, so the cap only bites on a flood or a big jump.
pub const MAX_LATE_PACKETS: usize = 512;

/// Bookkeeping bytes per held packet, for a `Piece`-sized item: the key,
/// the arrival time and the item, plus the map's node overhead (a B-tree
/// leaf holds up to 11 entries in one allocation). Checked in the tests.
pub const HELD_OVERHEAD_BYTES: usize = 160;

/// Consecutive packets far behind the release point (more than
/// [`MAX_LATE_PACKETS`] sequence numbers) after which the stream is taken
/// to have restarted its sequence numbers (a new encoder, a jump of over
/// 32 768) rather than to be sending stale retransmissions.
const RESTART_AFTER: u32 = 8;

/// What the buffer releases, in sequence order.
#[derive(Debug, PartialEq, Eq)]
pub enum Released<T> {
    /// The next packet in order.
    Packet(T),
    /// This many packets were given up on (too late, or the buffer was
    /// full): whatever they carried is lost.
    Lost(u64),
    /// The sequence numbers restarted: what came before and what comes
    /// after are not continuous (a frame may be cut).
    Restart,
}

/// Counters for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets given up on.
    pub lost: u64,
    /// Packets dropped because their place was already released (late
    /// after a gap was skipped, or an old retransmission).
    pub late: u64,
    /// Packets dropped because the same sequence number was held already.
    pub duplicates: u64,
}

struct Held<T> {
    arrived: Instant,
    /// `None` for padding: it fills its sequence number, gives nothing.
    item: Option<T>,
}

/// One track's jitter buffer over items `T` (the payload pieces).
pub struct JitterBuffer<T> {
    /// Extended sequence number of the next packet to release; `None`
    /// before the first packet.
    next: Option<u64>,
    /// The highest extended sequence number seen: the reference that
    /// 16-bit sequence numbers are unwrapped against.
    highest: u64,
    held: BTreeMap<u64, Held<T>>,
    /// Since when the packet at `next` has been missing while later ones
    /// wait (the earliest arrival among those held).
    gap_since: Option<Instant>,
    /// Consecutive packets far behind `next` (see [`RESTART_AFTER`]).
    far_behind: u32,
    wait: Duration,
    cap: usize,
    stats: JitterStats,
}

impl<T> JitterBuffer<T> {
    /// A buffer that waits `wait` for a missing packet and holds at most
    /// `cap` packets (at least 1).
    pub fn new(wait: Duration, cap: usize) -> Self {
        JitterBuffer {
            next: None,
            highest: 0,
            held: BTreeMap::new(),
            gap_since: None,
            far_behind: 0,
            wait,
            cap: cap.max(1),
            stats: JitterStats::default(),
        }
    }

    /// Packets held now (waiting behind a gap).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// What the buffer dropped or gave up on so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Takes the packet with sequence number `seq` (`None` as the item for
    /// a padding packet) and appends what can be released now to `out`.
    pub fn push(&mut self, now: Instant, seq: u16, item: Option<T>, out: &mut Vec<Released<T>>) {
        let Some(next) = self.next else {
            // Start well above 0 so the unwrapped numbers never underflow.
            let ext = (1u64 << 32) | u64::from(seq);
            self.next = Some(ext);
            self.highest = ext;
            self.insert(now, ext, item, out);
            return;
        };
        let delta = i64::from(seq.wrapping_sub(self.highest as u16) as i16);
        let ext = self.highest.wrapping_add_signed(delta);
        if ext < next {
            if next - ext > self.cap as u64 {
                self.far_behind += 1;
                if self.far_behind >= RESTART_AFTER {
                    self.restart(now, seq, item, out);
                    return;
                }
            }
            self.stats.late += 1;
            return;
        }
        self.far_behind = 0;
        if self.held.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        self.highest = self.highest.max(ext);
        self.insert(now, ext, item, out);
    }

    /// Releases what waited long enough, without a new packet (a track
    /// that went quiet behind a gap).
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Released<T>>) {
        self.drain(now, out);
    }

    fn insert(&mut self, now: Instant, ext: u64, item: Option<T>, out: &mut Vec<Released<T>>) {
        self.held.insert(ext, Held { arrived: now, item });
        self.drain(now, out);
    }

    /// Gives up on every gap and releases everything held, then starts
    /// again at `seq` with a sequence space above all earlier numbers.
    fn restart(&mut self, now: Instant, seq: u16, item: Option<T>, out: &mut Vec<Released<T>>) {
        let mut next = self.next.unwrap_or(0);
        for (ext, h) in std::mem::take(&mut self.held) {
            if ext > next {
                self.lose(ext - next, out);
            }
            if let Some(item) = h.item {
                out.push(Released::Packet(item));
            }
            next = ext + 1;
        }
        out.push(Released::Restart);
        let base = (next.max(self.highest) >> 16) + 1;
        let ext = (base << 16) | u64::from(seq);
        self.next = Some(ext);
        self.highest = ext;
        self.gap_since = None;
        self.far_behind = 0;
        self.insert(now, ext, item, out);
    }

    fn lose(&mut self, n: u64, out: &mut Vec<Released<T>>) {
        self.stats.lost += n;
        out.push(Released::Lost(n));
    }

    fn drain(&mut self, now: Instant, out: &mut Vec<Released<T>>) {
        let Some(mut next) = self.next else { return };
        loop {
            let Some(entry) = self.held.first_entry() else {
                self.gap_since = None;
                break;
            };
            let first = *entry.key();
            if first == next {
                if let Some(item) = entry.remove().item {
                    out.push(Released::Packet(item));
                }
                next += 1;
                self.gap_since = None;
                continue;
            }
            // A gap at `next`: it was first seen when the earliest of the
            // packets now held behind it arrived.
            let since = *self
                .gap_since
                .get_or_insert_with(|| self.held.values().map(|h| h.arrived).min().unwrap_or(now));
            if self.held.len() > self.cap || now.saturating_duration_since(since) >= self.wait {
                self.lose(first - next, out);
                next = first;
                self.gap_since = None;
                continue;
            }
            break;
        }
        self.next = Some(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    fn buf() -> JitterBuffer<u16> {
        JitterBuffer::new(Duration::from_millis(200), MAX_LATE_PACKETS)
    }

    /// Pushes `seq` (its own item) and returns what came out.
    fn push(b: &mut JitterBuffer<u16>, at: Instant, seq: u16) -> Vec<Released<u16>> {
        let mut out = Vec::new();
        b.push(at, seq, Some(seq), &mut out);
        out
    }

    fn packets(v: &[u16]) -> Vec<Released<u16>> {
        v.iter().map(|&s| Released::Packet(s)).collect()
    }

    #[test]
    fn packets_in_order_come_out_at_once_and_are_not_held() {
        let t0 = Instant::now();
        let mut b = buf();
        for s in 10..20 {
            assert_eq!(push(&mut b, t0, s), packets(&[s]));
            assert_eq!(b.held(), 0);
        }
    }

    #[test]
    fn packets_reordered_within_the_wait_come_out_in_order() {
        let t0 = Instant::now();
        let mut b = buf();
        assert_eq!(push(&mut b, t0, 1), packets(&[1]));
        assert_eq!(push(&mut b, ms(t0, 1), 3), vec![]);
        assert_eq!(push(&mut b, ms(t0, 2), 4), vec![]);
        assert_eq!(push(&mut b, ms(t0, 150), 2), packets(&[2, 3, 4]));
        assert_eq!(b.stats(), JitterStats::default());
    }

    #[test]
    fn a_gap_is_skipped_as_loss_after_the_wait_and_its_late_packet_dropped() {
        let t0 = Instant::now();
        let mut b = buf();
        push(&mut b, t0, 1);
        assert_eq!(push(&mut b, ms(t0, 10), 4), vec![]);
        assert_eq!(push(&mut b, ms(t0, 100), 5), vec![], "still waiting");
        let out = push(&mut b, ms(t0, 210), 6);
        assert_eq!(
            out,
            vec![
                Released::Lost(2),
                Released::Packet(4),
                Released::Packet(5),
                Released::Packet(6)
            ],
            "the wait runs from when the gap was first seen, not the last packet"
        );
        assert_eq!(push(&mut b, ms(t0, 220), 2), vec![], "too late");
        assert_eq!(b.stats().late, 1);
        assert_eq!(b.stats().lost, 2);
    }

    #[test]
    fn a_quiet_track_releases_behind_a_gap_when_polled() {
        let t0 = Instant::now();
        let mut b = buf();
        push(&mut b, t0, 1);
        push(&mut b, ms(t0, 10), 3);
        let mut out = Vec::new();
        b.poll(ms(t0, 100), &mut out);
        assert!(out.is_empty());
        b.poll(ms(t0, 300), &mut out);
        assert_eq!(out, vec![Released::Lost(1), Released::Packet(3)]);
    }

    #[test]
    fn padding_fills_its_sequence_number_and_is_not_loss() {
        let t0 = Instant::now();
        let mut b = buf();
        push(&mut b, t0, 1);
        let mut out = Vec::new();
        b.push(ms(t0, 1), 2, None, &mut out);
        assert!(out.is_empty(), "padding gives nothing");
        assert_eq!(push(&mut b, ms(t0, 500), 3), packets(&[3]));
        assert_eq!(b.stats().lost, 0);
    }

    #[test]
    fn sequence_numbers_wrap_around_65535() {
        let t0 = Instant::now();
        let mut b = buf();
        push(&mut b, t0, 65_534);
        assert_eq!(push(&mut b, t0, 0), vec![], "65535 missing");
        assert_eq!(push(&mut b, t0, 65_535), packets(&[65_535, 0]));
        assert_eq!(push(&mut b, t0, 1), packets(&[1]));
        assert_eq!(push(&mut b, t0, 65_535), vec![], "old, not a future packet");
        assert_eq!(b.stats().late, 1);
        // Many laps around the sequence space stay continuous.
        let mut s = 2u16;
        for _ in 0..200_000 {
            assert_eq!(push(&mut b, t0, s), packets(&[s]));
            s = s.wrapping_add(1);
        }
        assert_eq!(b.stats().lost, 0);
    }

    #[test]
    fn duplicates_are_dropped_held_or_released() {
        let t0 = Instant::now();
        let mut b = buf();
        push(&mut b, t0, 1);
        assert_eq!(push(&mut b, t0, 1), vec![], "already released");
        push(&mut b, t0, 3);
        assert_eq!(push(&mut b, t0, 3), vec![], "already held");
        assert_eq!(push(&mut b, t0, 2), packets(&[2, 3]));
        assert_eq!(b.stats().duplicates, 1);
        assert_eq!(b.stats().late, 1);
    }

    #[test]
    fn a_permanent_gap_never_holds_more_than_the_cap() {
        let t0 = Instant::now();
        let mut b = buf();
        push(&mut b, t0, 0);
        // Every other sequence number never comes, and time stands still,
        // so only the cap releases anything; 100 000 packets lap the
        // 16-bit space three times.
        let mut released = 0u64;
        for i in 1..=100_000u32 {
            for r in push(&mut b, t0, (2 * i) as u16) {
                if let Released::Packet(_) = r {
                    released += 1;
                }
            }
            assert!(b.held() <= MAX_LATE_PACKETS, "held {}", b.held());
        }
        assert_eq!(b.held(), MAX_LATE_PACKETS);
        let out = 100_000 - MAX_LATE_PACKETS as u64;
        assert_eq!(released, out);
        assert_eq!(b.stats().lost, out, "one lost before each released");
    }

    #[test]
    fn a_held_packet_costs_less_than_its_stated_overhead() {
        // Key + arrival + item (a `Piece`: payload handle, timestamp,
        // marker) plus a B-tree leaf's share: its 11 slots, its parent
        // pointer and lengths, spread over at least 5.5 used entries.
        let entry =
            std::mem::size_of::<u64>() + std::mem::size_of::<Held<(bytes::Bytes, u32, bool)>>();
        let leaf_share = (11 * entry + 16) * 2 / 11;
        assert!(
            leaf_share <= HELD_OVERHEAD_BYTES,
            "{leaf_share} bytes per held packet"
        );
        assert!(std::mem::size_of::<JitterBuffer<(bytes::Bytes, u32, bool)>>() < 128);
    }

    #[test]
    fn a_sequence_restart_is_followed_rather_than_dropped_forever() {
        let t0 = Instant::now();
        let mut b = buf();
        for s in 0..100 {
            push(&mut b, t0, s);
        }
        // The encoder restarts at a number that unwraps as far behind.
        let mut out = Vec::new();
        for s in 40_000..40_000 + RESTART_AFTER as u16 {
            out.extend(push(&mut b, t0, s));
        }
        assert_eq!(out, vec![Released::Restart, Released::Packet(40_007)]);
        assert_eq!(
            push(&mut b, t0, 40_008),
            packets(&[40_008]),
            "continues after the restart"
        );
    }
}
