//! Webhooks: other systems hear about meetings (`room_started`,
//! `room_finished`, `participant_joined`, `participant_left`) and
//! recordings (`recording_ready`, stored by `store/recordings.rs`) as
//! signed JSON `POST`s.
//!
//! - The events are stored through Raft with their cause, in the webhook
//!   outbox (`store/outbox.rs`), so they survive any control-plane node and
//!   keep their ids across leaders.
//! - Only the leader delivers (`delivery.rs`), so each event goes out once
//!   per cluster, not once per node; after a leader change the new leader
//!   delivers what is still in the outbox, possibly again (at-least-once:
//!   receivers deduplicate by the event's `id`).
//! - A body is signed with HMAC-SHA256 (ring) under the endpoint's secret:
//!   `Veche-Signature: t=<unix seconds>,v1=<hex of HMAC("<t>.<body>")>`.
//! - A failed delivery is retried with capped exponential backoff
//!   ([`retry_delay`], I/O-free).
//!
//! This file holds the endpoint settings, the signature and the schedule;
//! `delivery.rs` the leader's loop.

mod delivery;

use crate::ControlPlane;
use std::sync::Arc;
use std::time::Duration;

pub use delivery::WebhookMetrics;

/// One configured endpoint. `Debug` never prints the secret.
#[derive(Clone)]
pub struct WebhookEndpoint {
    /// Where to `POST` (`http://` or `https://`).
    pub url: String,
    /// The HMAC key, at least 32 bytes.
    pub secret: String,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl WebhookEndpoint {
    /// Checks the URL's scheme and the secret's length; the message says
    /// what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "webhook url {:?} must start with http:// or https://",
                self.url
            ));
        }
        veche_protocol::secret::check_secret(
            &format!("the secret of webhook {}", self.url),
            &self.secret,
        )
    }
}

/// The value of the signature header for `body` sent at `unix_secs`.
pub fn signature(secret: &str, unix_secs: u64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(unix_secs.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix_secs},v1={hex}")
}

/// Whether `header` is a valid signature of `body` under `secret` (what a
/// receiver checks; used by the tests, and a reference for receivers).
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Some(tag) = (0..v1.len())
        .step_by(2)
        .map(|i| {
            v1.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut msg = t.to_string().into_bytes();
    msg.push(b'.');
    msg.extend_from_slice(body);
    ring::hmac::verify(&key, &msg, &tag).is_ok()
}

/// The first retry waits this long; each further one twice as long.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// No retry waits longer than this.
pub const MAX_RETRY: Duration = Duration::from_secs(300);

/// How long to wait after the `failures`-th failed attempt (1 or more):
/// 1 s, 2 s, 4 s... up to [`MAX_RETRY`]. Retries never stop: an event
/// stays in the outbox until delivered.
pub fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    (FIRST_RETRY * (1u32 << doublings)).min(MAX_RETRY)
}

impl ControlPlane {
    /// Starts delivering webhook events to `endpoints` (checked first).
    /// Give every control-plane node the same list: whichever node is
    /// leader delivers, and any node may store the events. Without a call
    /// (no `[[webhooks]]`), no events are stored at all.
    pub fn enable_webhooks(
        self: &Arc<Self>,
        endpoints: Vec<WebhookEndpoint>,
    ) -> Result<(), crate::CpError> {
        if endpoints.is_empty() {
            return Ok(());
        }
        for e in &endpoints {
            e.validate().map_err(crate::CpError::Config)?;
        }
        let metrics = WebhookMetrics::new();
        self.include_metrics(metrics.registry.clone());
        if self.webhooks.set(endpoints.clone()).is_err() {
            return Err(crate::CpError::Config(
                "webhooks are already enabled".into(),
            ));
        }
        tokio::spawn(delivery::run(Arc::downgrade(self), endpoints, metrics));
        Ok(())
    }

    /// Whether webhooks are configured here: statistics commands proposed
    /// by this node then also store webhook events.
    pub(crate) fn webhooks_enabled(&self) -> bool {
        self.webhooks.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_secret_and_body() {
        let secret = "a-webhook-secret-of-at-least-32-bytes!";
        let sig = signature(secret, 1_700_000_000, b"{\"id\":\"evt_1\"}");
        assert!(sig.starts_with("t=1700000000,v1="));
        assert_eq!(sig.len(), "t=1700000000,v1=".len() + 64);
        assert!(verify(secret, &sig, b"{\"id\":\"evt_1\"}"));
        assert!(!verify(secret, &sig, b"{\"id\":\"evt_2\"}"));
        assert!(!verify(
            "another-secret-of-at-least-32-bytes!!",
            &sig,
            b"{\"id\":\"evt_1\"}"
        ));
        assert!(!verify(secret, "t=1,v1=zz", b""));
    }

    #[test]
    fn retries_back_off_exponentially_to_a_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(5), Duration::from_secs(16));
        assert_eq!(retry_delay(9), Duration::from_secs(256));
        assert_eq!(retry_delay(10), MAX_RETRY);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY);
    }

    #[test]
    fn endpoints_need_a_web_url_and_a_long_secret_which_debug_hides() {
        let ok = WebhookEndpoint {
            url: "https://hooks.example/veche".into(),
            secret: "s".repeat(32),
        };
        assert!(ok.validate().is_ok());
        assert!(!format!("{ok:?}").contains("sss"));
        let short = WebhookEndpoint {
            secret: "short".into(),
            ..ok.clone()
        };
        assert!(short.validate().unwrap_err().contains("32 bytes"));
        let ftp = WebhookEndpoint {
            url: "ftp://x".into(),
            ..ok
        };
        assert!(ftp.validate().is_err());
    }
}
