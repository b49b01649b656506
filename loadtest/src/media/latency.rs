//! One-way latency carried in the RTP timestamp.
//!
//! A publisher stamps each packet with [`rtp_ts_for`] at its send instant. A subscriber in the
//! same process (so using the same `epoch`) gets the latency back with [`one_way_latency`].
//! The value survives the SFU because an SFU forwards RTP timestamps unchanged. The payload is
//! untouched too, so it still decodes.
//!
//! # Resolution and range
//!
//! One RTP tick is the resolution: about 11.1 µs at 90 kHz (video) and about 20.8 µs at 48 kHz
//! (audio). Both ends round down to whole ticks, so a recovered latency is within one tick of
//! the truth ([`resolution`]). The 32-bit timestamp wraps every 2^32 ticks: 13.3 h at 90 kHz
//! and 24.9 h at 48 kHz. The subtraction is done modulo 2^32, so a wrap between send and receive
//! doesn't matter. The only requirement is that the packet arrives within half a wrap of its
//! sending, 6.6 h at 90 kHz.
//!
//! # Caveat
//!
//! Only packets from this harness's own publishers carry such timestamps. A browser or any other
//! publisher starts its RTP timestamps at a random value, which gives meaningless "latencies".
//! [`one_way_latency`] rejects almost all of them as implausible, but not quite all of them.
//! Measure latency only on tracks whose publisher is a bot.

use std::time::{Duration, Instant};

/// A receive instant this far *before* the encoded send time still counts as zero latency.
///
/// Both ends round down to whole ticks, so an in-process measurement is never negative. The
/// slack covers instants read on different threads, which can be ordered slightly differently
/// from the packets themselves.
pub const NEGATIVE_TOLERANCE: Duration = Duration::from_millis(1);

/// Latencies above this are rejected as not plausibly real.
///
/// Such a value almost always means the timestamp did not come from a bot of this run, for
/// example a browser's random timestamp base. No real-time media sits in an SFU for 10 s. If
/// it did, the run has failed anyway, and the rejections are counted
/// ([`super::ReceiveReport::latency_rejected`]). A random 32-bit timestamp gets past this bound
/// with probability about 0.02 % at 90 kHz.
pub const MAX_PLAUSIBLE_LATENCY: Duration = Duration::from_secs(10);

/// The RTP timestamp for a packet sent at `send`: `((send - epoch) * clock_rate) mod 2^32`,
/// rounded down to a whole tick.
///
/// A `send` before `epoch` counts as `epoch`.
pub fn rtp_ts_for(send: Instant, epoch: Instant, clock_rate: u32) -> u32 {
    let nanos = send.saturating_duration_since(epoch).as_nanos();
    // Truncating to u32 is the intended wrap modulo 2^32.
    (nanos * u128::from(clock_rate) / 1_000_000_000) as u32
}

/// The one-way latency of a packet stamped by [`rtp_ts_for`] with the same `epoch` and
/// `clock_rate`, received at `recv`.
///
/// Returns `None` if the packet would have arrived more than [`NEGATIVE_TOLERANCE`] before it
/// was sent, or more than [`MAX_PLAUSIBLE_LATENCY`] after. Either way, the timestamp did not
/// come from a publisher using this epoch. A small negative value is returned as zero.
pub fn one_way_latency(
    rtp_ts: u32,
    recv: Instant,
    epoch: Instant,
    clock_rate: u32,
) -> Option<Duration> {
    let recv_ts = rtp_ts_for(recv, epoch, clock_rate);
    // Modulo-2^32 difference read as signed: correct across a wrap as long as the packet is less
    // than half a wrap old.
    let ticks = recv_ts.wrapping_sub(rtp_ts) as i32;
    let latency = ticks_to_duration(ticks.unsigned_abs(), clock_rate);
    if ticks < 0 {
        (latency <= NEGATIVE_TOLERANCE).then_some(Duration::ZERO)
    } else {
        (latency <= MAX_PLAUSIBLE_LATENCY).then_some(latency)
    }
}

/// The duration of one RTP tick at `clock_rate`: the resolution of [`one_way_latency`].
///
/// About 11.1 µs at 90 kHz and 20.8 µs at 48 kHz.
pub fn resolution(clock_rate: u32) -> Duration {
    ticks_to_duration(1, clock_rate)
}

fn ticks_to_duration(ticks: u32, clock_rate: u32) -> Duration {
    Duration::from_nanos(u64::from(ticks) * 1_000_000_000 / u64::from(clock_rate.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{AUDIO_CLOCK_RATE, VIDEO_CLOCK_RATE};

    fn assert_within_one_tick(got: Duration, want: Duration, clock_rate: u32) {
        let err = got.abs_diff(want);
        assert!(
            err <= resolution(clock_rate),
            "latency {got:?} vs true {want:?}: error {err:?} exceeds one tick at {clock_rate} Hz"
        );
    }

    #[test]
    fn resolution_is_one_tick() {
        assert_eq!(resolution(VIDEO_CLOCK_RATE), Duration::from_nanos(11_111));
        assert_eq!(resolution(AUDIO_CLOCK_RATE), Duration::from_nanos(20_833));
    }

    #[test]
    fn latency_round_trips_within_one_tick() {
        let epoch = Instant::now();
        for clock_rate in [VIDEO_CLOCK_RATE, AUDIO_CLOCK_RATE] {
            for (send_ns, latency_ns) in [
                (0u64, 0u64),
                (1, 1),
                (123_456_789, 15_000_000),
                (987_654_321_000, 37_123),
                (5_000_000_007, 250_000_001),
            ] {
                let send = epoch + Duration::from_nanos(send_ns);
                let latency = Duration::from_nanos(latency_ns);
                let ts = rtp_ts_for(send, epoch, clock_rate);
                let got = one_way_latency(ts, send + latency, epoch, clock_rate).unwrap();
                assert_within_one_tick(got, latency, clock_rate);
            }
        }
    }

    #[test]
    fn latency_round_trips_across_rtp_timestamp_wrap() {
        let epoch = Instant::now();
        for clock_rate in [VIDEO_CLOCK_RATE, AUDIO_CLOCK_RATE] {
            // The timestamp wraps at 2^32 ticks after the epoch. Send 3 ms before it and
            // receive 40 ms later, after it.
            let wrap = ticks_to_duration(u32::MAX, clock_rate) + resolution(clock_rate);
            let send = epoch + wrap - Duration::from_millis(3);
            let recv = send + Duration::from_millis(40);
            let ts = rtp_ts_for(send, epoch, clock_rate);
            assert!(ts > u32::MAX - 1_000, "sent just before the wrap: {ts}");
            assert!(
                rtp_ts_for(recv, epoch, clock_rate) < 10_000,
                "received just after"
            );
            let got = one_way_latency(ts, recv, epoch, clock_rate).unwrap();
            assert_within_one_tick(got, Duration::from_millis(40), clock_rate);
        }
    }

    #[test]
    fn latency_rejects_negative_and_implausible_values() {
        let epoch = Instant::now();
        let send = epoch + Duration::from_secs(100);
        let ts = rtp_ts_for(send, epoch, VIDEO_CLOCK_RATE);
        let early = send - Duration::from_millis(5);
        assert_eq!(one_way_latency(ts, early, epoch, VIDEO_CLOCK_RATE), None);
        let slightly_early = send - Duration::from_micros(500);
        assert_eq!(
            one_way_latency(ts, slightly_early, epoch, VIDEO_CLOCK_RATE),
            Some(Duration::ZERO)
        );
        let much_later = send + Duration::from_secs(11);
        assert_eq!(
            one_way_latency(ts, much_later, epoch, VIDEO_CLOCK_RATE),
            None
        );
    }

    #[test]
    fn send_before_epoch_counts_as_epoch() {
        let epoch = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            rtp_ts_for(epoch - Duration::from_millis(1), epoch, VIDEO_CLOCK_RATE),
            0
        );
    }
}
