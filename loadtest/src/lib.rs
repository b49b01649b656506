//! `veche loadtest`: bots that join rooms through the normal HTTP API and
//! signalling, publish synthetic media and subscribe to each other,
//! measuring what they receive.
//!
//! Modules import only downward, in this order (each line may use the ones
//! below it):
//!
//! - [`run`] (here): picks the [`target::Target`] that
//!   [`scenario::ServerTarget`] names and hands it to the runner;
//! - [`veche`], [`cluster`], [`janus`]: the targets (Veche on one process,
//!   a Veche cluster, Janus), which start their processes with
//!   `veche-harness`; [`commits`], the control-plane benchmark;
//!   [`mute_latency`], the moderation benchmark (it starts `veche serve`
//!   or a cluster through [`veche`] and [`cluster`], and drives bots
//!   through [`bot`]);
//! - [`runner`]: ramps the bots in and measures, through the trait only;
//! - [`target`]: the trait, and what a run measured;
//! - [`record`]: `--record`'s host, which taps a bot;
//! - [`bot`], with the WebRTC client under it: the Veche bot;
//! - [`report`]: the report, which knows no target;
//! - [`scenario`], [`media`], [`proc`]: plain data, the synthetic media
//!   source and receive-side measurement, and process readings.
#![deny(missing_docs)]

pub mod bot;
mod client;
pub mod cluster;
pub mod commits;
pub mod janus;
mod keyframes;
pub mod media;
pub mod mute_latency;
pub mod proc;
pub mod record;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod target;
pub mod veche;

use scenario::{Options, ServerTarget};

/// Runs `opts.scenario` against the server `opts.target` names, starting
/// and stopping it if the harness owns it, and reports.
pub async fn run(opts: Options) -> Result<report::Report, String> {
    let one_process = matches!(
        opts.target,
        ServerTarget::Spawn { .. } | ServerTarget::External { .. }
    );
    if opts.record && !one_process {
        return Err(
            "--record works with Veche on one process (no --nodes, no --target janus)".into(),
        );
    }
    match &opts.target {
        ServerTarget::Spawn { exe } => {
            runner::run(&opts, &mut veche::VecheServer::spawn(exe.clone())).await
        }
        ServerTarget::External { base, pid } => {
            runner::run(&opts, &mut veche::VecheServer::external(base, *pid)).await
        }
        ServerTarget::Cluster { exe, media_nodes } => {
            let mut cluster = cluster::VecheCluster::new(exe.clone(), *media_nodes)?;
            runner::run(&opts, &mut cluster).await
        }
        ServerTarget::Janus => runner::run(&opts, &mut janus::Janus::new()).await,
    }
}
