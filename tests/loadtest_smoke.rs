//! A short run of each load scenario against a real `veche serve`: a few
//! bots for a few seconds. It checks that bots received media and that the
//! report's figures are present and sane — not how fast anything is
//! (that is `veche loadtest`'s job, recorded in docs/benchmarks.md).

use std::time::Duration;
use veche_loadtest::report::{MediaSummary, Report};
use veche_loadtest::scenario::{Options, Scenario, ServerTarget};

async fn run(scenario: Scenario) -> Report {
    run_recorded(scenario, false).await
}

async fn run_recorded(scenario: Scenario, record: bool) -> Report {
    let report = veche_loadtest::run(Options {
        scenario,
        ramp_per_sec: 10.0,
        duration: Duration::from_secs(2),
        video_bps: 1_500_000,
        target: ServerTarget::Spawn {
            exe: env!("CARGO_BIN_EXE_veche").into(),
        },
        progress: false,
        record,
    })
    .await
    .unwrap_or_else(|e| panic!("{scenario:?} did not run: {e}"));
    eprintln!("{}", report.table());
    assert!(report.failed.is_empty(), "bots failed: {:?}", report.failed);
    assert_eq!(report.never_received, 0, "some bots received nothing");
    assert!(
        report.join_ms.n > 0 && report.join_ms.max < 10_000.0,
        "{:?}",
        report.join_ms
    );
    let server = report
        .server
        .as_ref()
        .expect("server CPU and memory were read");
    assert!(server.cpu_s > 0.0 && server.window_s >= 1.9, "{server:?}");
    assert!(server.packets_forwarded.unwrap_or(0) > 0, "{server:?}");
    let us = report.cpu_us_per_packet.expect("CPU per packet");
    assert!(us.is_finite() && us > 0.0, "CPU per packet {us}");
    assert!(report.memory_per_subscription_kib.is_some());
    report
}

fn assert_media(m: &MediaSummary, tracks: usize, kbps: (f64, f64), what: &str) {
    assert_eq!(m.tracks, tracks, "{what}: tracks received");
    assert!(
        m.bitrate_kbps.min >= kbps.0 && m.bitrate_kbps.max <= kbps.1,
        "{what}: bitrate {:?} outside {kbps:?} kbps",
        m.bitrate_kbps
    );
    // Loopback on a busy 2-core machine: no loss expected, a little allowed.
    assert!(m.loss_percent < 2.0, "{what}: loss {} %", m.loss_percent);
    assert!(m.latency_ms.n > 0, "{what}: no latency samples");
    assert!(
        m.latency_ms.p50 >= 0.0 && m.latency_ms.p50 < 100.0,
        "{what}: latency {:?}",
        m.latency_ms
    );
    assert!(m.jitter_ms.max < 50.0, "{what}: jitter {:?}", m.jitter_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_meeting_bots_receive_everyone_and_the_report_is_complete() {
    let r = run(Scenario::Meeting { publishers: 3 }).await;
    // Each of 3 bots receives video and audio from the 2 others.
    assert_media(&r.video, 6, (700.0, 3000.0), "video");
    assert_media(&r.audio, 6, (20.0, 60.0), "audio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_webinar_subscribers_receive_the_one_publisher() {
    let r = run(Scenario::Webinar { subscribers: 3 }).await;
    assert_media(&r.video, 3, (700.0, 3000.0), "video");
    assert_media(&r.audio, 3, (20.0, 60.0), "audio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_audio_subscribers_receive_every_audio_publisher() {
    let r = run(Scenario::Audio {
        publishers: 2,
        subscribers: 2,
    })
    .await;
    // Publishers hear each other (2), subscribers hear both (4).
    assert_media(&r.audio, 6, (20.0, 60.0), "audio");
    assert_eq!(r.video.tracks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_record_reports_what_recording_the_meeting_cost() {
    let report = run_recorded(Scenario::Meeting { publishers: 2 }, true).await;
    let rec = report
        .recording
        .expect("a recorded run reports the recorder");
    assert!(rec.packets > 0, "the recorder took no packet: {rec:?}");
    let us = rec.cpu_us_per_packet.expect("recorder CPU per packet");
    assert!(us.is_finite() && us > 0.0, "recorder CPU per packet {us}");
    assert!(report.table().contains("recorder CPU per packet"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_mute_latency_stops_the_muted_camera_at_every_receiver_and_resumes_it() {
    use veche_loadtest::mute_latency::{run, Options};
    let report = run(Options {
        target: ServerTarget::Spawn {
            exe: env!("CARGO_BIN_EXE_veche").into(),
        },
        publishers: 1,
        subscribers: 1,
        rounds: 2,
        settle: Duration::from_millis(500),
        video_bps: 500_000,
        progress: false,
    })
    .await
    .unwrap_or_else(|e| panic!("the mute-latency run failed: {e}"));
    eprintln!("{}", report.table());
    // The run itself fails if a receiver still gets the camera after the
    // mute, or never gets it back after unmute_self; here, every round ran
    // and both receivers (host, subscriber) were measured each time.
    assert_eq!(report.rounds.len(), 2);
    for r in &report.rounds {
        let names: Vec<&str> = r.receivers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["host", "sub-0"], "round {}", r.round);
        for s in &r.receivers {
            assert!(
                s.withheld_from_ms.is_some() && s.resume_ms.is_some(),
                "round {}: {s:?}",
                r.round
            );
        }
    }
    assert_eq!(
        report.audio_stalled, 0,
        "the unmuted microphone kept flowing"
    );
    assert_eq!(report.policy_ms.n, 2, "the host saw each mute's policy");
}
