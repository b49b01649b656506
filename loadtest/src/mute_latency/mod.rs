//! `veche loadtest --scenario mute-latency`: how long after a moderator's
//! click a muted camera stops reaching the others, on one media node and
//! across a cascade hop (issue 12).
//!
//! The run starts the server (`veche serve`, or with `--nodes N` a
//! cluster, see [`crate::cluster`]), creates a room as an anonymous
//! creator and keeps its owner key, then starts bots (real WebRTC clients,
//! [`crate::bot`]):
//!
//! - `host`, which joins with the owner key (so it is the room's host) in
//!   region `r1` and receives everything;
//! - `pub-0..`, which publish VP8 video and Opus-sized audio, all in the
//!   last region `rN` (with two nodes: node 2), and keep sending whatever
//!   they are told, as a client that ignores a mute would;
//! - `sub-0..`, receive-only, round-robin over `r1..rN`.
//!
//! The host switches `allow_self_unmute` on. Then each round (publishers
//! in turn): the host sends `{"type":"moderate","action":"mute",
//! "participant_id":..,"group":"camera"}`; every other bot's receive
//! records are watched until that camera has been silent at each of them
//! for the settle time; the stop time is from sending the frame to the
//! last camera packet a receiver got, and the policy time is until the
//! host received the `policy` holding the camera. The publisher then
//! sends `unmute_self` for its camera and the round ends when every
//! receiver has the camera again. Nothing is timed in a test: the figures
//! are printed by this command and recorded in docs/benchmarks.md.

pub mod report;
mod rounds;

use crate::bot::{create_owned_room, run_tapped, Room, Tap};
use crate::client::Shared;
use crate::cluster::procs::Procs;
use crate::commits::Machine;
use crate::scenario::{BotResult, BotSpec, ServerTarget};
pub use report::MuteReport;
use report::{RoundResult, Setup};
use rounds::{LiveBot, RoomBots};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use veche_harness::{Process, TempDir};

/// Everything a mute-latency run needs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The server: `Spawn` (one `veche serve`), `Cluster` or `External`.
    pub target: ServerTarget,
    /// Publishers, muted in turn.
    pub publishers: usize,
    /// Receive-only bots besides the host.
    pub subscribers: usize,
    /// Mutes to measure.
    pub rounds: usize,
    /// How long the muted camera must stay silent at every receiver before
    /// a round counts it stopped.
    pub settle: Duration,
    /// Publishers' video bitrate.
    pub video_bps: u32,
    /// Say what is happening on stderr.
    pub progress: bool,
}

/// The server under test while the run lasts.
enum Server {
    Serve { proc: Box<Process>, _dir: TempDir },
    Cluster(Procs),
    External,
}

impl Server {
    async fn start(
        target: &ServerTarget,
        http: &reqwest::Client,
        note: &dyn Fn(&str),
    ) -> Result<(Server, String, usize, String), String> {
        match target {
            ServerTarget::Spawn { exe } => {
                note("starting veche serve");
                let (proc, dir, base) = crate::veche::start_serve(exe).await?;
                let server = Server::Serve {
                    proc: Box::new(proc),
                    _dir: dir,
                };
                Ok((server, base, 1, "veche serve (one process)".into()))
            }
            ServerTarget::Cluster { exe, media_nodes } => {
                if *media_nodes == 0 || *media_nodes > 250 {
                    return Err("--nodes must be between 1 and 250".into());
                }
                let mut procs = Procs::new();
                let started = procs.start(exe, *media_nodes, http, note).await;
                let base = procs.control_plane().to_owned();
                let server = Server::Cluster(procs);
                started.map_err(|e| server.explain(e))?;
                let what = format!(
                    "cluster on loopback: 1 control plane, {media_nodes} media node(s) with relays"
                );
                Ok((server, base, *media_nodes, what))
            }
            ServerTarget::External { base, .. } => {
                let base = base.trim_end_matches('/').to_owned();
                Ok((Server::External, base.clone(), 1, base))
            }
            ServerTarget::Janus => Err("the mute-latency scenario runs against Veche only".into()),
        }
    }

    fn explain(&self, error: String) -> String {
        match self {
            Server::Serve { proc, .. } => {
                format!(
                    "{error}\n--- veche serve, last log lines:\n{}",
                    proc.tail(15)
                )
            }
            Server::Cluster(procs) => format!("{error}\n{}", procs.log_tails()),
            Server::External => error,
        }
    }

    async fn stop(&mut self) {
        match self {
            Server::Serve { proc, .. } => {
                Process::stop_all(&mut [&mut **proc], crate::veche::STOP_TIMEOUT).await
            }
            Server::Cluster(procs) => procs.stop().await,
            Server::External => {}
        }
    }
}

/// Runs the mute-latency scenario and reports; stops what it started, also
/// on error and on Ctrl-C.
pub async fn run(opts: Options) -> Result<MuteReport, String> {
    if opts.publishers == 0 || opts.rounds == 0 {
        return Err("the mute-latency scenario needs a publisher and a round".into());
    }
    let progress = opts.progress;
    let note = move |msg: &str| {
        if progress {
            eprintln!("{msg}");
        }
    };
    let http = crate::target::http_client();
    let (mut server, base, media_nodes, what) = tokio::select! {
        r = Server::start(&opts.target, &http, &note) => r?,
        _ = tokio::signal::ctrl_c() => return Err(crate::runner::INTERRUPTED.into()),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut bots = Vec::new();
    let measured = tokio::select! {
        r = measure(&opts, &http, &base, media_nodes, stop_rx, &mut bots, &note) => r,
        _ = tokio::signal::ctrl_c() => Err(crate::runner::INTERRUPTED.into()),
    };
    let _ = stop_tx.send(true);
    let mut failed = Vec::new();
    for b in bots {
        match b.handle.await {
            Ok(BotResult {
                error: Some(e),
                name,
                ..
            }) => failed.push(format!("{name}: {e}")),
            Ok(_) => {}
            Err(e) => failed.push(format!("{}: task failed: {e}", b.name)),
        }
    }
    let result = match measured {
        Ok(_) if !failed.is_empty() => Err(format!("bots failed: {}", failed.join("; "))),
        Ok(rounds) => Ok(rounds),
        Err(e) if e == crate::runner::INTERRUPTED => Err(e),
        Err(e) if failed.is_empty() => Err(server.explain(e)),
        Err(e) => Err(server.explain(format!("{e}\nbots failed: {}", failed.join("; ")))),
    };
    note("stopping the server");
    server.stop().await;
    let rounds = result?;
    let setup = Setup {
        server: what,
        publishers: opts.publishers,
        subscribers: opts.subscribers,
        rounds: opts.rounds,
        settle_ms: opts.settle.as_millis() as u64,
        video_kbps: opts.video_bps / 1000,
    };
    Ok(MuteReport::build(
        Machine::detect(&std::env::temp_dir()),
        setup,
        rounds,
    ))
}

/// Starts one bot; `owner_key` makes it the host; `tapped` opens its
/// signalling socket to the run.
fn start_bot(
    spec: BotSpec,
    room: &Room,
    region: Option<String>,
    tapped: bool,
    owner_key: Option<String>,
    stop: &watch::Receiver<bool>,
) -> LiveBot {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let (send, frames, tap) = if tapped {
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let tap = Tap {
            owner_key,
            outgoing: out_rx,
            incoming: in_tx,
        };
        (Some(out_tx), Some(in_rx), Some(tap))
    } else {
        (None, None, None)
    };
    LiveBot {
        name: spec.name.clone(),
        shared: shared.clone(),
        send,
        frames,
        handle: tokio::spawn(run_tapped(
            spec,
            room.clone(),
            region,
            tap,
            shared,
            stop.clone(),
        )),
    }
}

/// Creates the room, starts the bots into `bots` (so the caller can stop
/// and collect them whatever happens) and runs the rounds.
async fn measure(
    opts: &Options,
    http: &reqwest::Client,
    base: &str,
    media_nodes: usize,
    stop: watch::Receiver<bool>,
    bots: &mut Vec<LiveBot>,
    note: &dyn Fn(&str),
) -> Result<Vec<RoundResult>, String> {
    let (slug, owner_key) = create_owned_room(http, base).await?;
    let owner_key = owner_key.ok_or("the create-room response carried no owner key")?;
    let room = Room {
        base: base.to_owned(),
        slug,
        epoch: Instant::now(),
        receiving: Arc::default(),
    };
    // Regions only mean something to a cluster's control plane.
    let cluster = matches!(opts.target, ServerTarget::Cluster { .. });
    let region = |i: usize| cluster.then(|| format!("r{}", i % media_nodes + 1));
    let last_region = media_nodes - 1;
    let spec = |name: String, video_bps: Option<u32>| BotSpec {
        name,
        audio: video_bps.is_some(),
        video_bps,
        expects_media: true,
    };

    note("starting the host and the bots");
    let host_spec = spec("host".into(), None);
    bots.push(start_bot(
        host_spec,
        &room,
        region(0),
        true,
        Some(owner_key),
        &stop,
    ));
    let mut publishers = Vec::new();
    for i in 0..opts.publishers {
        publishers.push(bots.len());
        let s = spec(format!("pub-{i}"), Some(opts.video_bps));
        bots.push(start_bot(s, &room, region(last_region), true, None, &stop));
    }
    for i in 0..opts.subscribers {
        let s = spec(format!("sub-{i}"), None);
        bots.push(start_bot(s, &room, region(i), false, None, &stop));
    }
    let mut room_bots = RoomBots {
        bots,
        host: 0,
        publishers,
    };
    rounds(opts, &mut room_bots, note).await
}

async fn rounds(
    opts: &Options,
    bots: &mut RoomBots<'_>,
    note: &dyn Fn(&str),
) -> Result<Vec<RoundResult>, String> {
    bots.until_flowing().await?;
    bots.allow_self_unmute().await?;
    note(&format!(
        "media flows; {} rounds of mute, {} ms settle, unmute",
        opts.rounds,
        opts.settle.as_millis()
    ));
    let mut out = Vec::new();
    for round in 0..opts.rounds {
        let r = bots
            .round(round, round % opts.publishers, opts.settle)
            .await?;
        note(&format!(
            "round {}/{}: {} muted, host had the policy after {:.1} ms, slowest receiver's last \
             camera packet {:.1} ms",
            round + 1,
            opts.rounds,
            r.publisher,
            r.policy_ms,
            r.slowest_stop_ms()
        ));
        out.push(r);
    }
    Ok(out)
}
