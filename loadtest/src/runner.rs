//! The scenario runner: ramps the bots in, waits until media flows,
//! measures for the run's duration, stops the bots and asks the target for
//! its report. It knows targets only through [`Target`].

use crate::proc;
use crate::report::Report;
use crate::scenario::{BotResult, Options};
use crate::target::{Measured, ProcWindow, Target};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The error of a run stopped by Ctrl-C.
pub const INTERRUPTED: &str = "interrupted";

/// How long the runner waits for every receiver to have media before it
/// measures anyway (so a broken run still reports what did arrive).
const MEDIA_FLOWS_TIMEOUT: Duration = Duration::from_secs(15);

/// Prepares `target`, measures `opts.scenario` against it and shuts it
/// down again, also on error and on Ctrl-C. A failure carries what the
/// target adds to explain it (its processes' last log lines).
pub async fn run<T: Target>(opts: &Options, target: &mut T) -> Result<Report, String> {
    let result = tokio::select! {
        r = async {
            target.prepare(opts).await?;
            let measured = measure(opts, target).await;
            Ok(target.report(opts, measured))
        } => r,
        _ = tokio::signal::ctrl_c() => Err(INTERRUPTED.to_owned()),
    };
    // The processes' logs explain a failure, not a Ctrl-C.
    let result = result.map_err(|e| match e.as_str() {
        INTERRUPTED => e,
        _ => target.explain(e),
    });
    target.shut_down().await;
    result
}

pub(crate) fn bar(progress: bool, len: u64, msg: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_owned());
    pb
}

/// Runs the scenario's bots against a prepared `target`, reading its
/// processes and calling its probe just before and just after the window,
/// while every bot is still connected.
pub async fn measure<T: Target>(opts: &Options, target: &mut T) -> Measured<T::Probe> {
    let specs = opts.scenario.bots(opts.video_bps);
    let pids = target.pids();
    let receiving = target.receiving();
    let sample_all = || -> Vec<Option<proc::ProcSample>> {
        pids.iter().map(|p| proc::sample(*p).ok()).collect()
    };
    let idle = sample_all();
    let receivers = specs.iter().filter(|s| s.expects_media).count();
    let (stop_tx, stop_rx) = watch::channel(false);
    let ramp = bar(opts.progress, specs.len() as u64, "joining");
    let gap = Duration::from_secs_f64(1.0 / opts.ramp_per_sec.max(0.01));
    let mut handles = Vec::new();
    for spec in specs {
        handles.push(target.spawn_bot(spec, stop_rx.clone()));
        ramp.inc(1);
        tokio::time::sleep(gap).await;
    }
    ramp.finish();

    // Measure only once every receiver has media, plus a moment for the
    // last joiners' renegotiations and first keyframes to settle.
    let settle = bar(opts.progress, receivers as u64, "media flows");
    let deadline = Instant::now() + MEDIA_FLOWS_TIMEOUT;
    loop {
        let n = receiving.load(Ordering::Relaxed);
        settle.set_position(n as u64);
        if n >= receivers || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    settle.finish();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = sample_all();
    let bots_before = proc::sample(std::process::id()).ok();
    let probe_before = target.probe().await;
    let progress = bar(opts.progress, opts.duration.as_secs().max(1), "measuring");
    let t0 = Instant::now();
    while t0.elapsed() < opts.duration {
        tokio::time::sleep(Duration::from_millis(250).min(opts.duration)).await;
        progress.set_position(t0.elapsed().as_secs());
    }
    progress.finish();
    let after = sample_all();
    let bots_after = proc::sample(std::process::id()).ok();
    let probe_after = target.probe().await;
    let window = t0.elapsed();

    let _ = stop_tx.send(true);
    let mut bots: Vec<BotResult> = Vec::new();
    for h in handles {
        match h.await {
            Ok(r) => bots.push(r),
            Err(e) => bots.push(BotResult {
                error: Some(format!("bot task failed: {e}")),
                expects_media: true,
                ..Default::default()
            }),
        }
    }
    let procs = idle
        .into_iter()
        .zip(before)
        .zip(after)
        .map(|((idle, before), after)| ProcWindow {
            idle,
            before,
            after,
        })
        .collect();
    // The bots share the machine with the server; how busy they were
    // tells whether latency and jitter figures include bot-side waiting.
    let bots_cpu_percent = ProcWindow {
        idle: None,
        before: bots_before,
        after: bots_after,
    }
    .cpu_percent();
    Measured {
        bots,
        window,
        procs,
        probe: (probe_before, probe_after),
        bots_cpu_percent,
    }
}
