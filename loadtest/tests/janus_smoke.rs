//! Smoke test for the Janus comparison target: one publisher, three
//! subscribers, a few seconds. Skips (passes with a message) when `janus`
//! is not installed. Run WebRTC tests in a loopback-only network namespace:
//! `unshare -n bash -c 'ip link set lo up; cargo test -p veche-loadtest --test janus_smoke -- --nocapture'`.

use std::time::Duration;
use veche_loadtest::scenario::{Options, Scenario, ServerTarget};

fn janus_installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("janus").is_file()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janus_webinar_smoke() {
    if !janus_installed() {
        println!(
            "skipping janus_webinar_smoke: `janus` is not installed (apt-get install -y janus)"
        );
        return;
    }
    let secs = std::env::var("JANUS_SMOKE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let subscribers = std::env::var("JANUS_SMOKE_SUBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let scenario = match std::env::var("JANUS_SMOKE_MEETING")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(publishers) => Scenario::Meeting { publishers },
        None => Scenario::Webinar { subscribers },
    };
    let opts = Options {
        scenario,
        ramp_per_sec: 10.0,
        duration: Duration::from_secs(secs),
        video_bps: 1_500_000,
        target: ServerTarget::Janus,
        progress: false,
    };
    let report = veche_loadtest::scenario::run(opts)
        .await
        .expect("janus run");
    print!("{}", report.table());
    assert!(report.failed.is_empty(), "bots failed: {:?}", report.failed);
    assert_eq!(report.never_received, 0, "some bots received nothing");
    let server = report.server.as_ref().expect("janus cost sampled");
    assert!(server.packets_forwarded.unwrap_or(0) > 0);
}
