//! The leader's webhook delivery: read the outbox, `POST` what is due to
//! each endpoint, and remove what every endpoint accepted, in one Raft
//! entry per pass. Which attempt is due is decided by [`Attempts`], which
//! takes `now` and does no I/O.

use super::{retry_delay, signature, WebhookEndpoint};
use crate::store::stats::StatsCommand;
use crate::store::StatsStore;
use crate::ControlPlane;
use prometheus::{IntCounter, IntGauge, Registry};
use std::collections::{BTreeSet, HashMap};
use std::sync::Weak;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use veche_protocol::stats::WEBHOOK_SIGNATURE_HEADER;

/// How often the leader looks at the outbox.
const PASS_INTERVAL: Duration = Duration::from_millis(500);
/// Events looked at per pass, oldest first.
const PASS_EVENTS: usize = 100;
/// How long one delivery may take before it counts as failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Webhook metrics, namespaced `veche_cp_webhook_`.
#[derive(Clone)]
pub struct WebhookMetrics {
    pub(super) registry: Registry,
    delivered: IntCounter,
    failed: IntCounter,
    pending: IntGauge,
}

impl WebhookMetrics {
    pub(super) fn new() -> Self {
        let registry =
            Registry::new_custom(Some("veche_cp".into()), None).expect("static prefix is valid");
        let delivered = IntCounter::new(
            "webhook_deliveries_total",
            "Webhook deliveries an endpoint accepted (2xx)",
        )
        .expect("valid metric");
        let failed = IntCounter::new(
            "webhook_delivery_failures_total",
            "Webhook delivery attempts that failed (error, timeout or non-2xx); retried",
        )
        .expect("valid metric");
        let pending = IntGauge::new(
            "webhook_events_pending",
            "Webhook events in the outbox as the leader last saw it (up to 100)",
        )
        .expect("valid metric");
        for m in [
            Box::new(delivered.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failed.clone()),
            Box::new(pending.clone()),
        ] {
            registry.register(m).expect("unique metric");
        }
        WebhookMetrics {
            registry,
            delivered,
            failed,
            pending,
        }
    }
}

/// Where each (event, endpoint) delivery stands, in the leader's memory
/// (a new leader starts afresh, so it may deliver an event again).
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    delivered: BTreeSet<(u64, usize)>,
    /// Failures so far and when the next attempt is due.
    failing: HashMap<(u64, usize), (u32, Instant)>,
}

impl Attempts {
    /// Whether to try `event` at `endpoint` now.
    pub(crate) fn due(&self, event: u64, endpoint: usize, now: Instant) -> bool {
        !self.delivered.contains(&(event, endpoint))
            && self
                .failing
                .get(&(event, endpoint))
                .is_none_or(|(_, next)| *next <= now)
    }

    /// Records an attempt's outcome at `now`.
    pub(crate) fn record(&mut self, event: u64, endpoint: usize, ok: bool, now: Instant) {
        if ok {
            self.failing.remove(&(event, endpoint));
            self.delivered.insert((event, endpoint));
        } else {
            let failures = self.failing.get(&(event, endpoint)).map_or(0, |f| f.0) + 1;
            self.failing
                .insert((event, endpoint), (failures, now + retry_delay(failures)));
        }
    }

    /// Whether every one of `endpoints` has accepted `event`.
    pub(crate) fn done(&self, event: u64, endpoints: usize) -> bool {
        (0..endpoints).all(|i| self.delivered.contains(&(event, i)))
    }

    /// Forgets everything but `events` (the rest left the outbox).
    pub(crate) fn keep_only(&mut self, events: &BTreeSet<u64>) {
        self.delivered.retain(|(e, _)| events.contains(e));
        self.failing.retain(|(e, _), _| events.contains(e));
    }
}

/// Runs until the control plane is dropped; delivers only while leader.
pub(super) async fn run(
    cp: Weak<ControlPlane>,
    endpoints: Vec<WebhookEndpoint>,
    metrics: WebhookMetrics,
) {
    let http = reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_millis(
            veche_protocol::limits::http::CLIENT_POOL_IDLE_MS,
        ))
        .build()
        .expect("static client config is valid");
    let mut attempts = Attempts::default();
    let mut tick = tokio::time::interval(PASS_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(cp) = cp.upgrade() else { return };
        if !cp.is_leader() {
            attempts = Attempts::default();
            continue;
        }
        if let Err(e) = pass(&cp, &http, &endpoints, &metrics, &mut attempts).await {
            tracing::debug!("webhook delivery pass: {e}");
        }
    }
}

/// One pass over the outbox.
async fn pass(
    cp: &ControlPlane,
    http: &reqwest::Client,
    endpoints: &[WebhookEndpoint],
    metrics: &WebhookMetrics,
    attempts: &mut Attempts,
) -> Result<(), crate::store::StoreError> {
    let pending = cp.store.stats_read(|q| q.outbox(PASS_EVENTS)).await?;
    metrics.pending.set(pending.len() as i64);
    attempts.keep_only(&pending.iter().map(|(k, _)| *k).collect());
    let now = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for (key, event) in &pending {
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(id = %event.id, "webhook event does not encode: {e}");
                continue;
            }
        };
        for (i, endpoint) in endpoints.iter().enumerate() {
            if !attempts.due(*key, i, now) {
                continue;
            }
            let (http, url, secret, body) = (
                http.clone(),
                endpoint.url.clone(),
                endpoint.secret.clone(),
                body.clone(),
            );
            let (key, id) = (*key, event.id.clone());
            sends.spawn(async move {
                let t = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let result = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header(WEBHOOK_SIGNATURE_HEADER, signature(&secret, t, &body))
                    .body(body)
                    .send()
                    .await;
                let ok = match result {
                    Ok(r) if r.status().is_success() => true,
                    Ok(r) => {
                        tracing::warn!(%url, %id, status = %r.status(), "webhook refused");
                        false
                    }
                    Err(e) => {
                        tracing::warn!(%url, %id, "webhook delivery failed: {e}");
                        false
                    }
                };
                (key, i, ok)
            });
        }
    }
    while let Some(done) = sends.join_next().await {
        let Ok((key, i, ok)) = done else { continue };
        if ok {
            metrics.delivered.inc();
        } else {
            metrics.failed.inc();
        }
        attempts.record(key, i, ok, Instant::now());
    }
    let delivered: Vec<u64> = pending
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| attempts.done(*k, endpoints.len()))
        .collect();
    if !delivered.is_empty() {
        cp.store
            .stats(StatsCommand::WebhooksDelivered { ids: delivered })
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_delivery_waits_its_backoff_and_a_done_one_is_not_repeated() {
        let t0 = Instant::now();
        let mut a = Attempts::default();
        assert!(a.due(1, 0, t0));
        a.record(1, 0, false, t0);
        assert!(!a.due(1, 0, t0 + Duration::from_millis(999)));
        assert!(a.due(1, 0, t0 + Duration::from_secs(1)));
        a.record(1, 0, false, t0 + Duration::from_secs(1));
        assert!(!a.due(1, 0, t0 + Duration::from_secs(2)), "now 2 s");
        assert!(a.due(1, 0, t0 + Duration::from_secs(3)));
        a.record(1, 0, true, t0 + Duration::from_secs(3));
        assert!(!a.due(1, 0, t0 + Duration::from_secs(60)), "delivered");
        assert!(!a.done(1, 2), "endpoint 1 has not accepted it");
        a.record(1, 1, true, t0);
        assert!(a.done(1, 2));
        a.keep_only(&BTreeSet::new());
        assert!(a.due(1, 0, t0), "forgotten once out of the outbox");
    }
}
