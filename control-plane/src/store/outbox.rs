//! The webhook outbox: events the statistics produce (`stats.rs`) waiting
//! to be delivered to the configured webhook endpoints.
//!
//! Stored through Raft, in the same apply that records what happened, so
//! an event exists exactly when its cause does, with the same id on every
//! replica: a new leader delivers what the old one had not finished, under
//! the same ids (at-least-once; receivers deduplicate by id). Delivery
//! itself is the leader's (`crate::webhooks`), which removes delivered
//! events in batches ([`super::stats::StatsCommand::WebhooksDelivered`]).

use super::db::DbError;
use super::docs::{next_id, DocTable, DocsMut};
use super::stats::{Meeting, ParticipantSession};
use veche_protocol::stats::{WebhookEvent, WebhookKind, WebhookParticipant};
use veche_protocol::UnixMillis;

/// Pending events by id, oldest first.
pub(super) const OUTBOX: DocTable<u64, WebhookEvent> = DocTable::new("webhook_outbox");

/// Stores an event about `meeting` (and `session`, for participant events).
pub(super) fn emit(
    d: &mut (impl DocsMut + ?Sized),
    kind: WebhookKind,
    meeting: &Meeting,
    session: Option<&ParticipantSession>,
    at_ms: UnixMillis,
) -> Result<(), DbError> {
    let id = next_id(d, "webhook_events")?;
    let event = WebhookEvent {
        id: format!("evt_{id}"),
        kind,
        at_ms,
        meeting_id: meeting.id,
        room_id: meeting.room_id,
        room_name: meeting.room_name.clone(),
        room_slug: meeting.room_slug.clone(),
        participant: session.map(|s| WebhookParticipant {
            participant_id: s.participant_id.clone(),
            display_name: s.display_name.clone(),
            user: s.user,
            guest: s.guest,
            node_id: s.node_id,
        }),
    };
    OUTBOX.put(d, &id, &event)
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
