//! Participant events for the control plane's statistics: who took a seat
//! on this node and when, and when the seat ended.
//!
//! Rooms emit through an [`EventSink`], a narrow handle that only queues
//! (no I/O, never blocks the room lock); the media node's reporter
//! (`media_node.rs`) sends what is queued in batches and forgets a batch
//! only once the control plane acknowledged it, so a control-plane leader
//! dying mid-report loses nothing (at-least-once; the control plane
//! drops repeats by (node, boot, seq)).
//!
//! The queue itself, [`EventQueue`], and the report timing,
//! [`ReportSchedule`], are I/O-free decisions: the queue is bounded, and
//! when full it drops the oldest event and counts it, so an unreachable
//! control plane costs old history, never the node's memory.

use prometheus::{IntCounter, IntGauge, Registry};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use veche_protocol::limits::stats::{
    EVENT_QUEUE, MAX_EVENTS_PER_BATCH, REPORT_INTERVAL_MS, REPORT_MAX_BACKOFF_MS,
};
use veche_protocol::signal::RoomInfo;
use veche_protocol::stats::{EventKind, NodeEvents, ParticipantEvent};
use veche_protocol::{NodeId, ParticipantId, UnixMillis, UserId};

/// Events not yet acknowledged, in the order they happened.
#[derive(Debug)]
pub struct EventQueue {
    pending: VecDeque<ParticipantEvent>,
    next_seq: u64,
    capacity: usize,
    dropped: u64,
}

impl EventQueue {
    /// An empty queue holding at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        EventQueue {
            pending: VecDeque::new(),
            next_seq: 1,
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// Queues an event with the next sequence number. Returns `false` if
    /// the queue was full and its oldest event was dropped to make room.
    pub fn push(
        &mut self,
        room: &RoomInfo,
        participant_id: ParticipantId,
        at_ms: UnixMillis,
        kind: EventKind,
    ) -> bool {
        let dropped = self.pending.len() >= self.capacity;
        if dropped {
            self.pending.pop_front();
            self.dropped += 1;
        }
        self.pending.push_back(ParticipantEvent {
            seq: self.next_seq,
            room_id: room.id,
            room_name: room.name.clone(),
            room_slug: room.slug.clone(),
            participant_id,
            at_ms,
            kind,
        });
        self.next_seq += 1;
        !dropped
    }

    /// The oldest `max` events, to report (they stay queued until
    /// [`EventQueue::ack`]).
    pub fn batch(&self, max: usize) -> Vec<ParticipantEvent> {
        self.pending.iter().take(max).cloned().collect()
    }

    /// Forgets every event with `seq <= through`: the control plane has
    /// stored them.
    pub fn ack(&mut self, through: u64) {
        while self.pending.front().is_some_and(|e| e.seq <= through) {
            self.pending.pop_front();
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Events dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// When to report next: every [`REPORT_INTERVAL_MS`] while reports
/// succeed (events of one interval share a report, so a Raft entry), and
/// after a failure twice as long as the last wait, up to
/// [`REPORT_MAX_BACKOFF_MS`].
#[derive(Debug, Default)]
pub struct ReportSchedule {
    failures: u32,
}

impl ReportSchedule {
    /// Records the outcome of a report and returns how long to wait before
    /// the next one.
    pub fn after(&mut self, ok: bool) -> Duration {
        if ok {
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
        }
        let factor = 1u64 << self.failures.min(16);
        Duration::from_millis((REPORT_INTERVAL_MS * factor).min(REPORT_MAX_BACKOFF_MS))
    }
}

/// Where rooms put their participant events. Cheap to clone.
#[derive(Clone)]
pub struct EventSink {
    inner: Arc<SinkInner>,
}

struct SinkInner {
    queue: Mutex<EventQueue>,
    wake: tokio::sync::Notify,
    boot: u64,
    dropped_total: IntCounter,
    pending: IntGauge,
    reported_total: IntCounter,
}

fn wall_ms() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random id for this run of the process.
fn random_boot() -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("OS RNG available");
    u64::from_be_bytes(b)
}

impl EventSink {
    /// A sink for this run of the node (a fresh random boot id), with its
    /// metrics registered in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str| {
            let m = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let pending = IntGauge::new(
            "participant_events_pending",
            "Participant events waiting for the control plane's acknowledgement",
        )
        .expect("valid metric");
        registry
            .register(Box::new(pending.clone()))
            .expect("unique metric");
        EventSink {
            inner: Arc::new(SinkInner {
                queue: Mutex::new(EventQueue::new(EVENT_QUEUE)),
                wake: tokio::sync::Notify::new(),
                boot: random_boot(),
                dropped_total: counter(
                    "participant_events_dropped_total",
                    "Participant events dropped unreported because the queue was full",
                ),
                pending,
                reported_total: counter(
                    "participant_events_reported_total",
                    "Participant events the control plane acknowledged",
                ),
            }),
        }
    }

    fn push(&self, room: &RoomInfo, participant_id: ParticipantId, kind: EventKind) {
        let mut q = self.inner.queue.lock().expect("lock poisoned");
        if !q.push(room, participant_id, wall_ms(), kind) {
            self.inner.dropped_total.inc();
        }
        self.inner.pending.set(q.len() as i64);
        drop(q);
        self.inner.wake.notify_one();
    }

    /// A participant took a seat in `room` on this node.
    pub fn joined(
        &self,
        room: &RoomInfo,
        participant_id: ParticipantId,
        display_name: String,
        user: Option<UserId>,
        guest: bool,
    ) {
        self.push(
            room,
            participant_id,
            EventKind::Joined {
                display_name,
                user,
                guest,
            },
        );
    }

    /// A participant's seat in `room` on this node ended.
    pub fn left(&self, room: &RoomInfo, participant_id: ParticipantId) {
        self.push(room, participant_id, EventKind::Left);
    }

    /// The next report to send: up to [`MAX_EVENTS_PER_BATCH`] events.
    pub fn next_report(&self, node_id: NodeId) -> NodeEvents {
        let q = self.inner.queue.lock().expect("lock poisoned");
        NodeEvents {
            node_id,
            boot: self.inner.boot,
            events: q.batch(MAX_EVENTS_PER_BATCH),
            dropped: q.dropped(),
        }
    }

    /// The control plane stored every event up to `through`.
    pub fn acknowledged(&self, through: u64) {
        let mut q = self.inner.queue.lock().expect("lock poisoned");
        let before = q.len();
        q.ack(through);
        self.inner.reported_total.inc_by((before - q.len()) as u64);
        self.inner.pending.set(q.len() as i64);
    }

    /// Whether events wait.
    pub fn has_pending(&self) -> bool {
        !self.inner.queue.lock().expect("lock poisoned").is_empty()
    }

    /// Resolves when an event is queued (or was since the last call).
    pub async fn queued(&self) {
        self.inner.wake.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veche_protocol::{RoomId, RoomSlug};

    fn room() -> RoomInfo {
        RoomInfo {
            id: RoomId(1),
            slug: RoomSlug::from_random([1; 16]),
            name: "Standup".into(),
            e2ee: false,
        }
    }

    fn pid(n: u8) -> ParticipantId {
        ParticipantId::from_random([n; 8])
    }

    #[test]
    fn events_stay_queued_until_acknowledged_and_are_batched_in_order() {
        let mut q = EventQueue::new(100);
        for n in 0..5 {
            q.push(&room(), pid(n), 1_000 + u64::from(n), EventKind::Left);
        }
        let first = q.batch(3);
        assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(q.batch(3), first, "a failed report sends the same again");
        q.ack(3);
        assert_eq!(
            q.batch(10).iter().map(|e| e.seq).collect::<Vec<_>>(),
            [4, 5]
        );
        q.ack(2);
        assert_eq!(q.len(), 2, "an old acknowledgement forgets nothing more");
        q.ack(5);
        assert!(q.is_empty());
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let mut q = EventQueue::new(2);
        assert!(q.push(&room(), pid(1), 1, EventKind::Left));
        assert!(q.push(&room(), pid(2), 2, EventKind::Left));
        assert!(!q.push(&room(), pid(3), 3, EventKind::Left));
        assert_eq!(q.dropped(), 1);
        assert_eq!(
            q.batch(10).iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 3]
        );
    }

    #[test]
    fn failed_reports_back_off_to_a_cap_and_success_resets() {
        let mut s = ReportSchedule::default();
        assert_eq!(s.after(true), Duration::from_millis(REPORT_INTERVAL_MS));
        assert_eq!(
            s.after(false),
            Duration::from_millis(2 * REPORT_INTERVAL_MS)
        );
        assert_eq!(
            s.after(false),
            Duration::from_millis(4 * REPORT_INTERVAL_MS)
        );
        for _ in 0..40 {
            s.after(false);
        }
        assert_eq!(s.after(false), Duration::from_millis(REPORT_MAX_BACKOFF_MS));
        assert_eq!(s.after(true), Duration::from_millis(REPORT_INTERVAL_MS));
    }
}
