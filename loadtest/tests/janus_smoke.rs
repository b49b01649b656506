//! Smoke test for the Janus comparison target: one publisher, three
//! subscribers, a few seconds. Fails, saying how to install it, when
//! `janus` is not installed: a comparison that silently did not run would
//! pass for the wrong reason (`scripts/test.sh` installs the Debian
//! package). Run WebRTC tests in a loopback-only network namespace:
//! `unshare -n bash -c 'ip link set lo up; cargo test -p veche-loadtest --test janus_smoke -- --nocapture'`.

use std::time::Duration;
use veche_loadtest::scenario::{Options, Scenario, ServerTarget};

fn janus_installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("janus").is_file()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janus_webinar_smoke() {
    assert!(
        janus_installed(),
        "`janus` is not installed, and this test compares against it: install it with \
         `apt-get install -y janus` (./scripts/test.sh does)"
    );
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
        record: false,
    };
    let report = veche_loadtest::run(opts).await.expect("janus run");
    print!("{}", report.table());
    assert!(report.failed.is_empty(), "bots failed: {:?}", report.failed);
    assert_eq!(report.never_received, 0, "some bots received nothing");
    let server = report.server.as_ref().expect("janus cost sampled");
    assert!(server.packets_forwarded.unwrap_or(0) > 0);
}
