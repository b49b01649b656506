//! The writers of `veche loadtest-commits`: each commits chat messages back
//! to back, one request in flight, the way a media node does; [`measure`]
//! runs one writer count and reads every process's CPU around the window.

use super::{ClientMode, Options, RunResult};
use crate::proc;
use crate::report::Percentiles;
use std::sync::Arc;
use std::time::{Duration, Instant};
use veche_harness::now_ms;
use veche_protocol::chat::ChatMessage;
use veche_protocol::rpc::{CommitChat, RoomView, RPC_COMMIT_CHAT};
use veche_protocol::ParticipantId;

/// Busy and total jiffies of all CPUs together, from `/proc/stat`.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is
    // already included in user).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

#[derive(Default)]
struct WriterResult {
    latencies_ms: Vec<f64>,
    errors: u64,
    first_error: Option<String>,
}

/// Commits one chat message; returns the committed message.
async fn commit_one(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    body: Vec<u8>,
) -> Result<ChatMessage, String> {
    let resp = http
        .post(url)
        .bearer_auth(secret)
        .header("content-type", "application/msgpack")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the reply: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "{status}: {}",
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    rmp_serde::from_slice(&bytes).map_err(|e| format!("undecodable reply: {e}"))
}

struct Writer {
    http: reqwest::Client,
    url: Arc<str>,
    secret: Arc<str>,
    room: RoomView,
    id: usize,
    run: usize,
    window_start: Instant,
    window_end: Instant,
}

impl Writer {
    async fn run(self) -> WriterResult {
        let mut out = WriterResult::default();
        let participant_id = ParticipantId(format!("pbench{}w{}", self.run, self.id));
        let display_name = format!("bench writer {}", self.id);
        let mut n: u64 = 0;
        loop {
            let started = Instant::now();
            if started >= self.window_end {
                break;
            }
            n += 1;
            let req = CommitChat {
                room_id: self.room.id,
                participant_id: participant_id.clone(),
                display_name: display_name.clone(),
                text: format!("load test message {n} from writer {}", self.id),
                client_msg_id: Some(format!("c{n}")),
                sent_at_ms: now_ms(),
            };
            let body = rmp_serde::to_vec_named(&req).expect("CommitChat always encodes");
            let result = commit_one(&self.http, &self.url, &self.secret, body).await;
            let done = Instant::now();
            let counted = done >= self.window_start && done < self.window_end;
            match result {
                Ok(msg) if msg.room_id == self.room.id => {
                    if counted {
                        out.latencies_ms
                            .push(done.duration_since(started).as_secs_f64() * 1000.0);
                    }
                }
                Ok(msg) => {
                    if counted {
                        out.errors += 1;
                        out.first_error.get_or_insert_with(|| {
                            format!("reply for room {} instead of {}", msg.room_id, self.room.id)
                        });
                    }
                }
                Err(e) => {
                    if counted {
                        out.errors += 1;
                        out.first_error.get_or_insert(e);
                    }
                    // Do not spin on a node that refuses everything.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        out
    }
}

/// An HTTP client for the writers.
pub(super) fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("static client config is valid")
}

/// Runs `writers` writers against `target` for the warm-up and the
/// window, reading the CPU of the processes `pids` around the window.
pub(super) async fn measure(
    opts: &Options,
    pids: &[u32],
    secret: &str,
    target: &str,
    room: &RoomView,
    run: usize,
    writers: usize,
) -> RunResult {
    let shared = new_client();
    let url: Arc<str> = format!("{target}{RPC_COMMIT_CHAT}").into();
    let secret: Arc<str> = secret.into();
    let window_start = Instant::now() + opts.warmup;
    let window_end = window_start + opts.duration;
    let handles: Vec<_> = (0..writers)
        .map(|id| {
            let http = match opts.client {
                ClientMode::Shared => shared.clone(),
                ClientMode::PerWriter => new_client(),
            };
            tokio::spawn(
                Writer {
                    http,
                    url: url.clone(),
                    secret: secret.clone(),
                    room: room.clone(),
                    id,
                    run,
                    window_start,
                    window_end,
                }
                .run(),
            )
        })
        .collect();
    tokio::time::sleep_until(window_start.into()).await;
    let sample_all = || {
        let nodes: Vec<_> = pids.iter().map(|p| proc::sample(*p).ok()).collect();
        (
            nodes,
            proc::sample(std::process::id()).ok(),
            machine_jiffies(),
        )
    };
    let (nodes_before, bench_before, machine_before) = sample_all();
    tokio::time::sleep_until(window_end.into()).await;
    let (nodes_after, bench_after, machine_after) = sample_all();
    let cpu_percent = |b: Option<proc::ProcSample>, a: Option<proc::ProcSample>| match (b, a) {
        (Some(b), Some(a)) => {
            100.0 * (a.cpu_s - b.cpu_s) / a.at.duration_since(b.at).as_secs_f64().max(1e-9)
        }
        _ => f64::NAN,
    };
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for h in handles {
        match h.await {
            Ok(r) => {
                latencies.extend(r.latencies_ms);
                errors += r.errors;
                if first_error.is_none() {
                    first_error = r.first_error;
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("writer task failed: {e}"));
            }
        }
    }
    let commits = latencies.len() as u64;
    let node_cpu_percent: Vec<f64> = nodes_before
        .into_iter()
        .zip(nodes_after)
        .map(|(b, a)| cpu_percent(b, a))
        .collect();
    let bench_cpu_percent = cpu_percent(bench_before, bench_after);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let other_cpu_percent = match (machine_before, machine_after) {
        (Some((b_busy, b_total)), Some((a_busy, a_total))) if a_total > b_total => {
            let all =
                100.0 * cores * a_busy.saturating_sub(b_busy) as f64 / (a_total - b_total) as f64;
            (all - node_cpu_percent.iter().sum::<f64>() - bench_cpu_percent).max(0.0)
        }
        _ => f64::NAN,
    };
    RunResult {
        writers,
        commits,
        commits_per_s: commits as f64 / opts.duration.as_secs_f64().max(1e-9),
        latency_ms: Percentiles::of(latencies),
        errors,
        first_error,
        node_cpu_percent,
        bench_cpu_percent,
        other_cpu_percent,
    }
}
