//! Janus 1.1 (VideoRoom plugin) as a comparison [`Target`] for the load
//! harness: the same bots, media sources and receive-side measurement as
//! [`crate::bot`], speaking Janus's WebSocket JSON API instead of Veche's
//! signalling.
//!
//! - [`server`]: [`JanusServer`] writes a private config folder, starts
//!   `janus` on a free loopback port and stops it on drop.
//! - [`api`]: the WebSocket JSON API client.
//! - [`bot`]: [`run_bot`], one participant.
//! - [`Janus`] is the [`Target`]: it starts the server, creates a room and,
//!   since Janus has no metrics endpoint, counts as "packets forwarded" the
//!   RTP packets all bots received during the window, which undercounts
//!   Janus's output by the packets lost on the way (about zero on loopback).

pub mod api;
pub mod bot;
pub mod server;

pub use api::create_room;
pub use bot::{run_bot, JanusRoom, SentTimestamps};
pub use server::JanusServer;

use crate::client;
use crate::report::Report;
use crate::scenario::{BotResult, BotSpec, Options};
use crate::target::{Measured, Target};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Janus under load, started when the run is prepared.
#[derive(Default)]
pub struct Janus {
    server: Option<JanusServer>,
    room: Option<JanusRoom>,
}

impl Janus {
    /// A Janus to be started by [`Target::prepare`].
    pub fn new() -> Janus {
        Janus::default()
    }

    fn room(&self) -> &JanusRoom {
        self.room.as_ref().expect("prepared before bots start")
    }
}

impl Target for Janus {
    /// RTP packets all bots received so far.
    type Probe = Option<u64>;

    async fn prepare(&mut self, opts: &Options) -> Result<(), String> {
        let server = tokio::task::spawn_blocking(JanusServer::start)
            .await
            .map_err(|e| format!("starting janus: {e}"))??;
        let ws_url = server.ws_url();
        self.server = Some(server);
        let bots = opts.scenario.bots(opts.video_bps).len();
        let room = 1000 + u64::from(client::random_u32() % 1_000_000);
        create_room(&ws_url, room, bots + 1).await?;
        self.room = Some(JanusRoom {
            ws_url,
            room,
            epoch: Instant::now(),
            receiving: Default::default(),
            packets_received: Default::default(),
            sent: Default::default(),
        });
        Ok(())
    }

    fn pids(&self) -> Vec<u32> {
        self.server.iter().filter_map(JanusServer::pid).collect()
    }

    fn receiving(&self) -> Arc<AtomicUsize> {
        self.room().receiving.clone()
    }

    fn spawn_bot(&mut self, spec: BotSpec, stop: watch::Receiver<bool>) -> JoinHandle<BotResult> {
        tokio::spawn(run_bot(spec, self.room().clone(), stop))
    }

    async fn probe(&self) -> Option<u64> {
        Some(self.room().packets_received.load(Ordering::Relaxed))
    }

    fn report(&self, opts: &Options, measured: Measured<Option<u64>>) -> Report {
        measured.single_process_report(opts, "janus")
    }

    fn explain(&self, error: String) -> String {
        match &self.server {
            Some(s) => format!("{error}\n--- janus, last log lines:\n{}", s.tail(15)),
            None => error,
        }
    }

    async fn shut_down(&mut self) {
        // Dropping the server stops it (SIGTERM, then SIGKILL).
        if let Some(server) = self.server.take() {
            let _ = tokio::task::spawn_blocking(move || drop(server)).await;
        }
    }
}
