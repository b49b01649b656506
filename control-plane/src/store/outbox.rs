//! The webhook outbox: events the statistics (`stats.rs`) and the
//! recordings index (`recordings.rs`) produce, waiting to be delivered to
//! the configured webhook endpoints.
//!
//! Stored through Raft, in the same apply that records what happened, so
//! an event exists exactly when its cause does, with the same id on every
//! replica: a new leader delivers what the old one had not finished, under
//! the same ids (at-least-once; receivers deduplicate by id). Delivery
//! itself is the leader's (`crate::webhooks`), which removes delivered
//! events in batches ([`super::stats::StatsCommand::WebhooksDelivered`]).

use super::db::DbError;
use super::docs::{next_id, DocTable, DocsMut};
use veche_protocol::stats::WebhookEvent;

/// Pending events by id, oldest first.
pub(super) const OUTBOX: DocTable<u64, WebhookEvent> = DocTable::new("webhook_outbox");

/// Stores the event `make` builds from its new id (`evt_<n>`).
pub(super) fn push(
    d: &mut (impl DocsMut + ?Sized),
    make: impl FnOnce(String) -> WebhookEvent,
) -> Result<(), DbError> {
    let id = next_id(d, "webhook_events")?;
    OUTBOX.put(d, &id, &make(format!("evt_{id}")))
}

/// Removes delivered events; returns how many were pending.
pub(super) fn remove(d: &mut (impl DocsMut + ?Sized), ids: &[u64]) -> Result<u64, DbError> {
    let mut removed = 0;
    for id in ids {
        if OUTBOX.contains(d, id)? {
            OUTBOX.remove(d, id)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The number in an event id (`evt_<n>`), the outbox key.
pub fn event_key(id: &str) -> Option<u64> {
    id.strip_prefix("evt_")?.parse().ok()
}
