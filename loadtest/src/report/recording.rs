//! What recording a meeting cost the media node during a run
//! (`veche loadtest --record`): read from the node's recorder counters just
//! before and just after the measurement window, so joining, the first
//! keyframes and the final upload are left out.

use serde::Serialize;

/// The recorder's counters as the node's metrics page shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RecorderCounters {
    /// `veche_node_recorder_cpu_seconds_total`: thread CPU time spent in
    /// the recorder's packet path.
    pub cpu_seconds: f64,
    /// `veche_node_recorded_packets_total`.
    pub packets: f64,
    /// `veche_node_recording_bytes_written_total`: bytes uploaded to the
    /// object store (segments, and segments rewritten at the end).
    pub bytes: f64,
    /// `veche_node_recording_segments_total`.
    pub segments: f64,
}

impl RecorderCounters {
    /// The metric names, in the order of the fields.
    pub const METRICS: [&'static str; 4] = [
        "veche_node_recorder_cpu_seconds_total",
        "veche_node_recorded_packets_total",
        "veche_node_recording_bytes_written_total",
        "veche_node_recording_segments_total",
    ];

    /// Reads the counters from a Prometheus text page; a counter the page
    /// lacks reads as `None` (a node without a recorder).
    pub fn parse(page: &str) -> Option<RecorderCounters> {
        let value = |name: &str| {
            page.lines()
                .filter(|l| !l.starts_with('#'))
                .find_map(|l| {
                    let rest = l.strip_prefix(name)?;
                    // The bare counter, not a longer name sharing its prefix.
                    rest.starts_with(' ').then(|| rest.trim())
                })
                .and_then(|v| v.parse::<f64>().ok())
        };
        let [cpu, packets, bytes, segments] = Self::METRICS.map(value);
        Some(RecorderCounters {
            cpu_seconds: cpu?,
            packets: packets?,
            bytes: bytes?,
            segments: segments.unwrap_or(0.0),
        })
    }
}

/// The recorder's cost over the window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RecordingFigures {
    /// Packets the recorder took in the window.
    pub packets: u64,
    /// Segments it uploaded in the window.
    pub segments: u64,
    /// Recorder CPU per recorded packet, microseconds.
    pub cpu_us_per_packet: Option<f64>,
    /// Bytes written to the object store per minute.
    pub bytes_per_minute: f64,
    /// The window, seconds.
    pub window_s: f64,
}

impl RecordingFigures {
    /// The figures from the counters read before and after a window of
    /// `window_s` seconds.
    pub fn between(before: RecorderCounters, after: RecorderCounters, window_s: f64) -> Self {
        let packets = (after.packets - before.packets).max(0.0);
        let cpu = (after.cpu_seconds - before.cpu_seconds).max(0.0);
        let bytes = (after.bytes - before.bytes).max(0.0);
        RecordingFigures {
            packets: packets as u64,
            segments: (after.segments - before.segments).max(0.0) as u64,
            cpu_us_per_packet: (packets > 0.0).then(|| cpu * 1e6 / packets),
            bytes_per_minute: if window_s > 0.0 {
                bytes * 60.0 / window_s
            } else {
                0.0
            },
            window_s,
        }
    }

    /// The report's lines.
    pub fn lines(&self) -> String {
        let cpu = self
            .cpu_us_per_packet
            .map_or("n/a".to_owned(), |us| format!("{us:.1} µs"));
        format!(
            "recording           {} packets, {} segments; recorder CPU per packet {cpu}; \
             {:.2} MB written per minute\n",
            self.packets,
            self.segments,
            self.bytes_per_minute / 1e6
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# HELP veche_node_recorded_packets_total x\n\
        veche_node_recorder_cpu_seconds_total 1.5\n\
        veche_node_recorded_packets_total_other 9\n\
        veche_node_recorded_packets_total 3000\n\
        veche_node_recording_bytes_written_total 6000000\n\
        veche_node_recording_segments_total 4\n";

    #[test]
    fn counters_are_read_by_their_exact_names() {
        let c = RecorderCounters::parse(PAGE).unwrap();
        assert_eq!(c.cpu_seconds, 1.5);
        assert_eq!(c.packets, 3000.0);
        assert_eq!(c.bytes, 6e6);
        assert_eq!(c.segments, 4.0);
    }

    #[test]
    fn a_node_without_a_recorder_has_no_counters() {
        assert_eq!(
            RecorderCounters::parse("veche_node_rtp_packets_out_total 5\n"),
            None
        );
    }

    #[test]
    fn figures_are_per_packet_and_per_minute_over_the_window() {
        let before = RecorderCounters {
            cpu_seconds: 1.0,
            packets: 1000.0,
            bytes: 1e6,
            segments: 1.0,
        };
        let after = RecorderCounters {
            cpu_seconds: 1.2,
            packets: 11_000.0,
            bytes: 4e6,
            segments: 3.0,
        };
        let f = RecordingFigures::between(before, after, 30.0);
        assert_eq!(f.packets, 10_000);
        assert_eq!(f.segments, 2);
        assert!((f.cpu_us_per_packet.unwrap() - 20.0).abs() < 1e-9);
        assert!((f.bytes_per_minute - 6e6).abs() < 1e-3);
        assert!(f.lines().contains("20.0 µs"), "{}", f.lines());
        let idle = RecordingFigures::between(before, before, 30.0);
        assert_eq!(idle.cpu_us_per_packet, None);
    }
}
