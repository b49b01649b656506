//! Media time: mapping a track's RTP timestamps to the node's wall clock.
//!
//! A publisher's RTCP sender reports pair an RTP timestamp with the
//! publisher's NTP wall clock, the same clock for its audio and its video,
//! so mapping through them lines a publisher's tracks up with each other.
//! The publisher's clock is then moved onto the node's by one offset per
//! publisher (the node's time minus the publisher's at the first report,
//! network delay included), so participants line up with each other too.
//! Until a report comes, the first packet's arrival anchors the track.
//!
//! Everything here is pure: the caller passes `now` (node wall clock, in
//! microseconds since the Unix epoch).

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// An NTP timestamp (32.32 fixed point, seconds since 1900) in
/// microseconds since the Unix epoch.
pub fn ntp_to_unix_us(ntp: u64) -> i64 {
    let secs = (ntp >> 32) as i64 - NTP_UNIX_OFFSET_SECS as i64;
    let frac = ((ntp & 0xffff_ffff) * 1_000_000) >> 32;
    secs * 1_000_000 + frac as i64
}

/// The least a track's consecutive frames are apart in the file. WebM
/// stores milliseconds; two frames of one track at the same millisecond
/// (which happens when the first sender report moves the mapping back by a
/// few milliseconds) have no order a decoder can keep, and ffmpeg rejects
/// them as non-increasing timestamps. One millisecond later is inaudible
/// and invisible.
pub const MIN_STEP_US: i64 = 1_000;

/// One publisher's clock relative to the node's: shared by all its
/// tracks, so their relative timing stays what the publisher said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublisherClock {
    /// Node time minus publisher time, fixed at the first sender report.
    offset_us: Option<i64>,
}

impl PublisherClock {
    /// Learns the offset from a sender report that arrived at `now_us`,
    /// the first time only (a drifting offset would make media time jump).
    pub fn observe(&mut self, ntp: u64, now_us: i64) {
        if self.offset_us.is_none() {
            self.offset_us = Some(now_us - ntp_to_unix_us(ntp));
        }
    }

    /// The offset, once a report came.
    pub fn offset_us(&self) -> Option<i64> {
        self.offset_us
    }
}

/// Maps one track's RTP timestamps to node wall-clock microseconds,
/// never going backwards.
#[derive(Clone, Debug)]
pub struct TrackClock {
    clock_rate: u32,
    /// The latest sender report: (publisher time in µs, RTP timestamp).
    report: Option<(i64, u32)>,
    /// Until a report: (RTP timestamp, node time) of the first packet.
    arrival: Option<(u32, i64)>,
    /// The last time returned, to keep the output monotonic.
    last_us: Option<i64>,
}

impl TrackClock {
    /// A clock for a track whose RTP clock runs at `clock_rate` Hz.
    pub fn new(clock_rate: u32) -> Self {
        TrackClock {
            clock_rate: clock_rate.max(1),
            report: None,
            arrival: None,
            last_us: None,
        }
    }

    /// A sender report for this track: (NTP time, RTP time).
    pub fn sender_report(&mut self, ntp: u64, rtp: u32) {
        self.report = Some((ntp_to_unix_us(ntp), rtp));
    }

    fn ticks_to_us(&self, from: u32, to: u32) -> i64 {
        // Signed distance: a frame just before the anchor maps before it.
        let ticks = to.wrapping_sub(from) as i32 as i64;
        ticks * 1_000_000 / self.clock_rate as i64
    }

    /// Node time of a frame with RTP timestamp `rtp`, which reached the
    /// recorder at `now_us`. `publisher` is the offset of the publisher's
    /// clock, when known. The result is at least [`MIN_STEP_US`] after the
    /// previous one.
    pub fn map(&mut self, rtp: u32, now_us: i64, publisher: &PublisherClock) -> i64 {
        let t = match (self.report, publisher.offset_us()) {
            (Some((sr_us, sr_rtp)), Some(offset)) => sr_us + offset + self.ticks_to_us(sr_rtp, rtp),
            _ => {
                let (a_rtp, a_us) = *self.arrival.get_or_insert((rtp, now_us));
                a_us + self.ticks_to_us(a_rtp, rtp)
            }
        };
        let t = match self.last_us {
            Some(last) if t < last + MIN_STEP_US => last + MIN_STEP_US,
            _ => t,
        };
        self.last_us = Some(t);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NTP time for a Unix time in microseconds.
    fn ntp(unix_us: i64) -> u64 {
        let secs = (unix_us / 1_000_000) as u64 + NTP_UNIX_OFFSET_SECS;
        let frac = (((unix_us % 1_000_000) as u64) << 32) / 1_000_000;
        (secs << 32) | frac
    }

    const T0: i64 = 1_800_000_000_000_000;

    #[test]
    fn without_a_sender_report_time_follows_rtp_from_the_first_arrival() {
        let mut c = TrackClock::new(90_000);
        let p = PublisherClock::default();
        assert_eq!(c.map(1_000, T0, &p), T0);
        // Arrival jitter does not matter: RTP time does.
        assert_eq!(c.map(1_000 + 9_000, T0 + 170_000, &p), T0 + 100_000);
        // Timestamps wrap.
        let mut w = TrackClock::new(48_000);
        assert_eq!(w.map(u32::MAX - 479, T0, &p), T0);
        assert_eq!(w.map(480, T0, &p), T0 + 20_000);
    }

    #[test]
    fn sender_reports_line_up_a_publishers_audio_and_video() {
        let mut p = PublisherClock::default();
        // The publisher's clock is 3 s behind the node's.
        let skew = 3_000_000;
        p.observe(ntp(T0 - skew), T0);
        let mut video = TrackClock::new(90_000);
        let mut audio = TrackClock::new(48_000);
        video.sender_report(ntp(T0 - skew), 77_000);
        audio.sender_report(ntp(T0 - skew + 1_000_000), 5_000);
        // 1 s after each report's instant.
        let v = video.map(77_000 + 90_000, T0 + 2_000_000, &p);
        let a = audio.map(5_000, T0 + 900_000, &p);
        assert_eq!(v, T0 + 1_000_000);
        assert_eq!(a, T0 + 1_000_000);
        assert_eq!(p.offset_us(), Some(skew));
    }

    #[test]
    fn a_sender_report_arriving_mid_stream_never_moves_time_back() {
        let mut p = PublisherClock::default();
        let mut c = TrackClock::new(90_000);
        // Arrival-anchored: the first packet arrived late, so its time is
        // later than the report will say.
        assert_eq!(c.map(0, T0 + 500_000, &p), T0 + 500_000);
        assert_eq!(c.map(9_000, T0 + 600_000, &p), T0 + 600_000);
        p.observe(ntp(T0), T0);
        c.sender_report(ntp(T0), 0);
        // By the report the next frame is at T0 + 200 ms: it follows the
        // previous one by a millisecond instead.
        let next = c.map(18_000, T0 + 700_000, &p);
        assert_eq!(next, T0 + 600_000 + MIN_STEP_US);
        assert_eq!(
            c.map(27_000, T0 + 800_000, &p),
            T0 + 600_000 + 2 * MIN_STEP_US
        );
        // Later frames follow the report once it catches up.
        assert_eq!(c.map(90_000, T0 + 1_100_000, &p), T0 + 1_000_000);
    }

    #[test]
    fn ntp_time_converts_to_unix_microseconds() {
        assert!((ntp_to_unix_us(ntp(T0 + 123_456)) - (T0 + 123_456)).abs() <= 1);
        assert_eq!(ntp_to_unix_us(NTP_UNIX_OFFSET_SECS << 32), 0);
    }
}
