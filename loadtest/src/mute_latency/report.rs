//! The report of a mute-latency run: what each round measured, the
//! percentiles over rounds, and a table. Plain data built from the
//! rounds; it knows nothing of bots or servers.

use crate::commits::Machine;
use crate::report::Percentiles;
use serde::Serialize;
use std::fmt::Write as _;

/// What one receiver saw in one round.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiverSample {
    /// The bot's name (`host`, `sub-0`, `pub-1`, ...).
    pub name: String,
    /// The media node it was on, if the join response said.
    pub node: Option<u64>,
    /// 0 on the muted publisher's node, 1 on another (every pair of media
    /// nodes has its own link, so no track crosses more than one hop);
    /// `None` where a node is unknown.
    pub hops: Option<u32>,
    /// From sending the `moderate` frame to the last packet of the muted
    /// camera this receiver got, ms; `None` if nothing arrived after the
    /// frame was sent (counted as 0 ms in the percentiles).
    pub stop_ms: Option<f64>,
    /// From sending the `moderate` frame to when the publisher sent the
    /// first camera frame this receiver never got (the frame after its
    /// last one), ms: the mute was in force on this path by then. Video
    /// frames leave 33 ms apart, so the mute took effect between
    /// `stop_ms` and this, less the transit time. Near 0 (or below, as 0)
    /// would mean the frame before the click was lost.
    pub withheld_from_ms: Option<f64>,
    /// From the publisher's `unmute_self` to the camera's packets arriving
    /// here again, ms (to within one poll of the receive records).
    pub resume_ms: Option<f64>,
    /// Whether the muted publisher's microphone, which nobody muted, still
    /// reached this receiver when the camera had gone quiet.
    pub audio_flowing: bool,
}

/// One mute, its settle and the unmute that follows.
#[derive(Clone, Debug, Serialize)]
pub struct RoundResult {
    /// 0-based.
    pub round: usize,
    /// The muted publisher's bot name.
    pub publisher: String,
    /// Its media node.
    pub publisher_node: Option<u64>,
    /// From sending the `moderate` frame to the host receiving the
    /// `policy` that holds the camera, ms.
    pub policy_ms: f64,
    /// Everyone else in the room.
    pub receivers: Vec<ReceiverSample>,
}

impl RoundResult {
    /// The slowest receiver's stop time: when the mute was complete
    /// everywhere.
    pub fn slowest_stop_ms(&self) -> f64 {
        self.receivers
            .iter()
            .map(|r| r.stop_ms.unwrap_or(0.0))
            .fold(0.0, f64::max)
    }
}

/// Stop times of the receivers at one distance from the publisher.
#[derive(Clone, Debug, Serialize)]
pub struct HopGroup {
    /// 0, 1, or `None` for receivers on an unknown node.
    pub hops: Option<u32>,
    /// Every (round, receiver) stop time at this distance, ms.
    pub stop_ms: Percentiles,
    /// Every (round, receiver) first-withheld-frame time at this
    /// distance, ms.
    pub withheld_from_ms: Percentiles,
    /// Every (round, receiver) resume time at this distance, ms.
    pub resume_ms: Percentiles,
}

/// How the run was set up.
#[derive(Clone, Debug, Serialize)]
pub struct Setup {
    /// "veche serve", "cluster: 1 control plane, 2 media nodes", or a URL.
    pub server: String,
    /// Publishers (each sends VP8 video and Opus-sized audio).
    pub publishers: usize,
    /// Receive-only bots besides the host.
    pub subscribers: usize,
    /// Rounds asked for.
    pub rounds: usize,
    /// How long the muted camera must stay silent at every receiver.
    pub settle_ms: u64,
    /// Publishers' video bitrate, kbit/s.
    pub video_kbps: u32,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct MuteReport {
    /// Where it ran.
    pub machine: Machine,
    /// How.
    pub setup: Setup,
    /// `moderate` sent to `policy` received by the host, over rounds.
    pub policy_ms: Percentiles,
    /// Per round, the slowest receiver's stop time.
    pub slowest_stop_ms: Percentiles,
    /// Stop and resume times by distance from the publisher, nearest
    /// first.
    pub by_hops: Vec<HopGroup>,
    /// (round, receiver) pairs where no packet of the camera arrived after
    /// the `moderate` frame was sent.
    pub nothing_after_mute: usize,
    /// (round, receiver) pairs where the publisher's microphone had
    /// stopped too (it should not: only the camera was muted).
    pub audio_stalled: usize,
    /// Every round, for the JSON output.
    pub rounds: Vec<RoundResult>,
}

impl MuteReport {
    /// Summarises `rounds`.
    pub fn build(machine: Machine, setup: Setup, rounds: Vec<RoundResult>) -> MuteReport {
        let samples = || rounds.iter().flat_map(|r| &r.receivers);
        let mut hops: Vec<Option<u32>> = samples().map(|s| s.hops).collect();
        // Known distances first, nearest first; unknown last.
        hops.sort_by_key(|h| h.map_or(u32::MAX, |h| h));
        hops.dedup();
        let by_hops = hops
            .into_iter()
            .map(|h| {
                let at = || samples().filter(move |s| s.hops == h);
                HopGroup {
                    hops: h,
                    stop_ms: Percentiles::of(at().map(|s| s.stop_ms.unwrap_or(0.0)).collect()),
                    withheld_from_ms: Percentiles::of(
                        at().filter_map(|s| s.withheld_from_ms).collect(),
                    ),
                    resume_ms: Percentiles::of(at().filter_map(|s| s.resume_ms).collect()),
                }
            })
            .collect();
        MuteReport {
            machine,
            setup,
            policy_ms: Percentiles::of(rounds.iter().map(|r| r.policy_ms).collect()),
            slowest_stop_ms: Percentiles::of(rounds.iter().map(|r| r.slowest_stop_ms()).collect()),
            by_hops,
            nothing_after_mute: samples().filter(|s| s.stop_ms.is_none()).count(),
            audio_stalled: samples().filter(|s| !s.audio_flowing).count(),
            rounds,
        }
    }

    /// The report for people.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let (m, s) = (&self.machine, &self.setup);
        let _ = writeln!(
            t,
            "machine   {} ({} cores), Linux {}",
            m.cpu_model, m.cores, m.kernel
        );
        let _ = writeln!(t, "server    {}", s.server);
        let _ = writeln!(
            t,
            "room      1 host, {} publisher(s) at {} kbit/s video + audio, {} subscriber(s); \
             {} of {} rounds; settle {} ms\n",
            s.publishers,
            s.video_kbps,
            s.subscribers,
            self.rounds.len(),
            s.rounds,
            s.settle_ms
        );
        let _ = writeln!(
            t,
            "{:<52} {:>5} {:>8} {:>8} {:>8}",
            "from the host's moderate frame (mute camera) to", "n", "p50 ms", "p95 ms", "max ms"
        );
        let row = |t: &mut String, what: &str, p: &Percentiles| {
            let _ = writeln!(
                t,
                "{what:<52} {:>5} {:>8.1} {:>8.1} {:>8.1}",
                p.n, p.p50, p.p95, p.max
            );
        };
        row(&mut t, "  the host receives the policy", &self.policy_ms);
        for g in &self.by_hops {
            row(
                &mut t,
                &format!("  last camera packet at a receiver {}", where_(g.hops)),
                &g.stop_ms,
            );
            row(
                &mut t,
                "  first camera frame withheld from it, sent",
                &g.withheld_from_ms,
            );
        }
        row(
            &mut t,
            "  last camera packet at the slowest receiver",
            &self.slowest_stop_ms,
        );
        let _ = writeln!(t, "{:<52}", "from the publisher's unmute_self to");
        for g in &self.by_hops {
            row(
                &mut t,
                &format!("  camera packets again at a receiver {}", where_(g.hops)),
                &g.resume_ms,
            );
        }
        let _ = writeln!(
            t,
            "\nnothing after the mute frame: {} receiver-rounds (counted as 0 ms); \
             microphone stalled with the camera: {} receiver-rounds",
            self.nothing_after_mute, self.audio_stalled
        );
        // Frames leave 33 ms apart, so one round only brackets the moment
        // the mute took hold; over rounds clicked at random phases, the
        // latest frame that still got through and the earliest that did
        // not narrow it down.
        for g in &self.by_hops {
            let _ = writeln!(
                t,
                "receivers {}: the latest camera packet to get through arrived {:.1} ms after \
                 the click; the earliest frame withheld was sent {:.1} ms after it",
                where_(g.hops),
                g.stop_ms.max,
                g.withheld_from_ms.min
            );
        }
        t
    }
}

fn where_(hops: Option<u32>) -> &'static str {
    match hops {
        Some(0) => "on its node",
        Some(1) => "one hop away",
        Some(_) => "further away",
        None => "(node unknown)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sample(name: &str, hops: u32, stop: Option<f64>) -> ReceiverSample {
        ReceiverSample {
            name: name.into(),
            node: Some(1 + u64::from(hops)),
            hops: Some(hops),
            stop_ms: stop,
            withheld_from_ms: stop.map(|s| s + 20.0),
            resume_ms: Some(20.0),
            audio_flowing: true,
        }
    }

    fn setup() -> Setup {
        Setup {
            server: "veche serve".into(),
            publishers: 1,
            subscribers: 2,
            rounds: 2,
            settle_ms: 1000,
            video_kbps: 1500,
        }
    }

    #[test]
    fn stop_times_are_grouped_by_hops_and_a_silent_receiver_counts_as_zero() {
        let rounds = vec![
            RoundResult {
                round: 0,
                publisher: "pub-0".into(),
                publisher_node: Some(1),
                policy_ms: 4.0,
                receivers: vec![sample("host", 1, Some(30.0)), sample("sub-0", 0, None)],
            },
            RoundResult {
                round: 1,
                publisher: "pub-0".into(),
                publisher_node: Some(1),
                policy_ms: 6.0,
                receivers: vec![sample("host", 1, Some(50.0)), sample("sub-0", 0, Some(8.0))],
            },
        ];
        let r = MuteReport::build(Machine::detect(Path::new("/tmp")), setup(), rounds);
        assert_eq!(r.by_hops.len(), 2);
        assert_eq!(r.by_hops[0].hops, Some(0));
        assert_eq!((r.by_hops[0].stop_ms.n, r.by_hops[0].stop_ms.max), (2, 8.0));
        assert_eq!(r.by_hops[0].stop_ms.min, 0.0);
        assert_eq!(
            (r.by_hops[1].stop_ms.p50, r.by_hops[1].stop_ms.max),
            (30.0, 50.0)
        );
        assert_eq!((r.slowest_stop_ms.min, r.slowest_stop_ms.max), (30.0, 50.0));
        assert_eq!(r.policy_ms.max, 6.0);
        assert_eq!(r.nothing_after_mute, 1);
        let table = r.table();
        assert!(table.contains("on its node"), "{table}");
        assert!(table.contains("one hop away"), "{table}");
    }
}
