//! Conformance cases for [`StatsStore`]: every sentence of the statistics
//! contract (`stats.rs`), on every store `conformance::run_all` runs.

use super::conformance_kit::{Case, StoreFactory};
use super::stats::{StatsCommand, StatsOutput};
use super::stats_read::StatsStore;
use std::path::Path;
use veche_protocol::stats::{EventKind, MeetingId, ParticipantEvent, DAY_MS, HOUR_MS};
use veche_protocol::{NodeId, ParticipantId, RoomId, RoomSlug, UserId};

/// The statistics cases, named.
pub(crate) fn cases<F: StoreFactory>() -> [(&'static str, Case<F>); 7] {
    [
        (
            "webhook events are stored with their cause and removed once delivered",
            |f, d| Box::pin(webhook_events_are_stored_and_removed(f, d)),
        ),
        (
            "a meeting spans nodes from the first join to the last leave",
            |f, d| Box::pin(a_meeting_spans_nodes(f, d)),
        ),
        ("a repeated batch of events is applied once", |f, d| {
            Box::pin(a_repeated_batch_is_applied_once(f, d))
        }),
        (
            "a lost node or a new boot closes its open sessions",
            |f, d| Box::pin(a_lost_node_or_a_new_boot_closes_its_sessions(f, d)),
        ),
        (
            "a join stamped before the last meeting's end reopens it",
            |f, d| Box::pin(a_late_join_reopens_the_last_meeting(f, d)),
        ),
        ("history is searchable, paged and counted", |f, d| {
            Box::pin(history_is_searchable_paged_and_counted(f, d))
        }),
        ("statistics survive a reopen", |f, d| {
            Box::pin(statistics_survive_a_reopen(f, d))
        }),
    ]
}

/// Day 20000 (in 2024), 10:00 UTC: far enough from 0 for every bucket.
const T0: u64 = 20_000 * DAY_MS + 10 * HOUR_MS;

fn pid(n: u8) -> ParticipantId {
    ParticipantId::from_random([n; 8])
}

fn joined(seq: u64, room: u64, who: u8, at: u64, user: Option<u64>) -> ParticipantEvent {
    ParticipantEvent {
        seq,
        room_id: RoomId(room),
        room_name: format!("Room {room}"),
        room_slug: RoomSlug::from_random([room as u8; 16]),
        participant_id: pid(who),
        at_ms: at,
        kind: EventKind::Joined {
            display_name: format!("P{who}"),
            user: user.map(UserId),
            guest: false,
        },
    }
}

fn left(seq: u64, room: u64, who: u8, at: u64) -> ParticipantEvent {
    ParticipantEvent {
        kind: EventKind::Left,
        ..joined(seq, room, who, at, None)
    }
}

fn record(node: u64, boot: u64, events: Vec<ParticipantEvent>) -> StatsCommand {
    StatsCommand::Record {
        node_id: NodeId(node),
        boot,
        events,
        received_at_ms: T0 + 100_000,
        webhooks: false,
    }
}

async fn a_meeting_spans_nodes<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    s.stats(record(1, 7, vec![joined(1, 5, 1, T0, Some(3))]))
        .await
        .unwrap();
    s.stats(record(2, 8, vec![joined(1, 5, 2, T0 + 1_000, None)]))
        .await
        .unwrap();
    s.stats(record(1, 7, vec![left(2, 5, 1, T0 + 5_000)]))
        .await
        .unwrap();
    let live = s.stats_read(|q| q.live()).await.unwrap();
    assert_eq!(live.len(), 1, "one participant is still in, on node 2");
    assert_eq!(live[0].open, 1);
    s.stats(record(2, 8, vec![left(2, 5, 2, T0 + 9_000)]))
        .await
        .unwrap();
    let (m, sessions) = s
        .stats_read(|q| Ok((q.meeting(MeetingId(1))?, q.sessions(MeetingId(1), 100)?)))
        .await
        .unwrap();
    let m = m.expect("one meeting");
    assert_eq!(m.started_at_ms, T0);
    assert_eq!(m.ended_at_ms, Some(T0 + 9_000), "ends with the last leave");
    assert_eq!(m.participants, 2);
    assert_eq!(m.room_name, "Room 5");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].left_at_ms, Some(T0 + 5_000));
    assert_eq!(sessions[0].user, Some(UserId(3)));
    assert_eq!(sessions[1].node_id, NodeId(2));
    assert!(s.stats_read(|q| q.live()).await.unwrap().is_empty());
    let mine = s
        .stats_read(|q| q.user_meetings(UserId(3), None, 10, T0))
        .await
        .unwrap();
    assert_eq!(mine.meetings.len(), 1, "the account's own history");
    // A second join after the end is a new meeting.
    s.stats(record(1, 7, vec![joined(3, 5, 1, T0 + 20_000, None)]))
        .await
        .unwrap();
    let live = s.stats_read(|q| q.live()).await.unwrap();
    assert_eq!(live[0].id, MeetingId(2));
    f.close(s).await;
}

async fn a_repeated_batch_is_applied_once<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    let batch = vec![joined(1, 5, 1, T0, None), joined(2, 5, 2, T0 + 1, None)];
    assert_eq!(
        s.stats(record(1, 7, batch.clone())).await.unwrap(),
        StatsOutput::Recorded {
            stored_through: 2,
            applied: 2
        }
    );
    assert_eq!(
        s.stats(record(1, 7, batch)).await.unwrap(),
        StatsOutput::Recorded {
            stored_through: 2,
            applied: 0
        },
        "a retry after a lost acknowledgement"
    );
    // A batch overlapping the stored part applies only its new events.
    let out = s
        .stats(record(
            1,
            7,
            vec![joined(2, 5, 2, T0 + 1, None), left(3, 5, 1, T0 + 10)],
        ))
        .await
        .unwrap();
    assert_eq!(
        out,
        StatsOutput::Recorded {
            stored_through: 3,
            applied: 1
        }
    );
    let m = s.stats_read(|q| q.meeting(MeetingId(1))).await.unwrap();
    assert_eq!(m.unwrap().participants, 2);
    f.close(s).await;
}

async fn a_lost_node_or_a_new_boot_closes_its_sessions<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    s.stats(record(
        1,
        7,
        vec![joined(1, 5, 1, T0, None), joined(2, 6, 2, T0, None)],
    ))
    .await
    .unwrap();
    s.stats(record(2, 9, vec![joined(1, 6, 3, T0, None)]))
        .await
        .unwrap();
    assert_eq!(
        s.stats_read(|q| q.nodes_with_open_seats()).await.unwrap(),
        vec![NodeId(1), NodeId(2)]
    );
    let lost = StatsCommand::NodeLost {
        node_id: NodeId(1),
        at_ms: T0 + 3_000,
        webhooks: false,
    };
    assert_eq!(s.stats(lost.clone()).await.unwrap(), StatsOutput::Closed(2));
    assert_eq!(s.stats(lost).await.unwrap(), StatsOutput::Closed(0));
    let (room5, room6) = s
        .stats_read(|q| Ok((q.meeting(MeetingId(1))?, q.meeting(MeetingId(2))?)))
        .await
        .unwrap();
    assert_eq!(room5.unwrap().ended_at_ms, Some(T0 + 3_000));
    assert_eq!(room6.unwrap().ended_at_ms, None, "room 6 goes on on node 2");
    // Node 2 restarts: its first report, even empty, ends the old run's
    // sessions; a late retry from the old run changes nothing.
    s.stats(record(2, 10, Vec::new())).await.unwrap();
    let room6 = s.stats_read(|q| q.meeting(MeetingId(2))).await.unwrap();
    assert_eq!(room6.unwrap().ended_at_ms, Some(T0 + 100_000));
    assert_eq!(
        s.stats(record(2, 9, vec![joined(2, 6, 4, T0 + 5, None)]))
            .await
            .unwrap(),
        StatsOutput::Recorded {
            stored_through: 1,
            applied: 0
        }
    );
    assert!(s.stats_read(|q| q.live()).await.unwrap().is_empty());
    f.close(s).await;
}

async fn a_late_join_reopens_the_last_meeting<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    s.stats(record(
        1,
        7,
        vec![joined(1, 5, 1, T0, None), left(2, 5, 1, T0 + 10_000)],
    ))
    .await
    .unwrap();
    // Node 2's join at T0 + 5 s arrives after node 1's leave.
    s.stats(record(2, 8, vec![joined(1, 5, 2, T0 + 5_000, None)]))
        .await
        .unwrap();
    let live = s.stats_read(|q| q.live()).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, MeetingId(1), "the same meeting, reopened");
    assert_eq!(live[0].ended_at_ms, None);
    s.stats(record(2, 8, vec![left(2, 5, 2, T0 + 12_000)]))
        .await
        .unwrap();
    let m = s.stats_read(|q| q.meeting(MeetingId(1))).await.unwrap();
    assert_eq!(m.unwrap().ended_at_ms, Some(T0 + 12_000));
    f.close(s).await;
}

async fn history_is_searchable_paged_and_counted<F: StoreFactory>(f: &F, dir: &Path) {
    let s = f.open(dir).await;
    // Rooms 1..=5, one meeting each, on successive days; room 3 twice.
    let mut seq = 0;
    let mut ev = |e: fn(u64, u64, u8, u64) -> ParticipantEvent, room, who, at| {
        seq += 1;
        e(seq, room, who, at)
    };
    let j = |seq, room, who, at| joined(seq, room, who, at, None);
    let mut events = Vec::new();
    for day in 0..5u64 {
        let at = T0 - (4 - day) * DAY_MS;
        events.push(ev(j, day + 1, 1, at));
        events.push(ev(left, day + 1, 1, at + 60_000));
    }
    events.push(ev(j, 3, 2, T0 + 120_000));
    events.push(ev(j, 3, 3, T0 + 121_000));
    s.stats(record(1, 7, events)).await.unwrap();
    let all = s
        .stats_read(|q| q.meetings("", None, 100, T0 + 200_000))
        .await
        .unwrap();
    let ids: Vec<u64> = all.meetings.iter().map(|m| m.id.0).collect();
    assert_eq!(ids, [6, 5, 4, 3, 2, 1], "newest first");
    assert_eq!(all.next_before, None);
    assert_eq!(all.meetings[1].duration_ms, 60_000);
    assert_eq!(
        all.meetings[0].duration_ms, 80_000,
        "an open meeting runs to now"
    );
    let first = s.stats_read(|q| q.meetings("", None, 4, T0)).await.unwrap();
    assert_eq!(first.meetings.len(), 4);
    assert_eq!(first.next_before, Some(MeetingId(3)));
    let rest = s
        .stats_read(|q| q.meetings("", Some(MeetingId(3)), 4, T0))
        .await
        .unwrap();
    let ids: Vec<u64> = rest.meetings.iter().map(|m| m.id.0).collect();
    assert_eq!(ids, [2, 1]);
    let found = s
        .stats_read(|q| q.meetings("ROOM 3", None, 10, T0))
        .await
        .unwrap();
    let ids: Vec<u64> = found.meetings.iter().map(|m| m.id.0).collect();
    assert_eq!(ids, [6, 3], "search ignores case");
    let o = s.stats_read(|q| q.overview(T0 + 200_000)).await.unwrap();
    assert_eq!(o.rooms_online, 1);
    assert_eq!(o.participants_online, 2);
    assert_eq!(o.by_day.len(), 30);
    assert_eq!(o.by_hour.len(), 24);
    let today = o.by_day.last().unwrap();
    assert_eq!(today.start_ms, 20_000 * DAY_MS);
    assert_eq!((today.meetings, today.participants), (2, 3));
    assert_eq!((o.by_day[28].meetings, o.by_day[28].participants), (1, 1));
    let this_hour = o.by_hour.last().unwrap();
    assert_eq!(this_hour.start_ms, T0);
    assert_eq!((this_hour.meetings, this_hour.participants), (2, 3));
    f.close(s).await;
}

async fn statistics_survive_a_reopen<F: StoreFactory>(f: &F, dir: &Path) {
    if !F::DURABLE {
        eprintln!("  (skipped: this store does not persist)");
        return;
    }
    let s = f.open(dir).await;
    s.stats(record(
        1,
        7,
        vec![joined(1, 5, 1, T0, None), left(2, 5, 1, T0 + 7_000)],
    ))
    .await
    .unwrap();
    f.close(s).await;
    let s = f.open(dir).await;
    let m = s.stats_read(|q| q.meeting(MeetingId(1))).await.unwrap();
    assert_eq!(m.unwrap().ended_at_ms, Some(T0 + 7_000));
    assert_eq!(
        s.stats(record(1, 7, vec![left(2, 5, 1, T0 + 7_000)]))
            .await
            .unwrap(),
        StatsOutput::Recorded {
            stored_through: 2,
            applied: 0
        },
        "the dedupe mark survives too"
    );
    f.close(s).await;
}

async fn webhook_events_are_stored_and_removed<F: StoreFactory>(f: &F, dir: &Path) {
    use veche_protocol::stats::WebhookKind;
    let s = f.open(dir).await;
    let with_hooks = |node, events| StatsCommand::Record {
        node_id: NodeId(node),
        boot: 7,
        events,
        received_at_ms: T0,
        webhooks: true,
    };
    s.stats(with_hooks(
        1,
        vec![joined(1, 5, 1, T0, None), joined(2, 5, 2, T0 + 1, None)],
    ))
    .await
    .unwrap();
    // The same batch again stores no second copy of its events.
    s.stats(with_hooks(1, vec![joined(2, 5, 2, T0 + 1, None)]))
        .await
        .unwrap();
    s.stats(with_hooks(
        1,
        vec![left(3, 5, 2, T0 + 5), left(4, 5, 1, T0 + 9)],
    ))
    .await
    .unwrap();
    let pending = s.stats_read(|q| q.outbox(100)).await.unwrap();
    let kinds: Vec<WebhookKind> = pending.iter().map(|(_, e)| e.kind).collect();
    assert_eq!(
        kinds,
        [
            WebhookKind::RoomStarted,
            WebhookKind::ParticipantJoined,
            WebhookKind::ParticipantJoined,
            WebhookKind::ParticipantLeft,
            WebhookKind::ParticipantLeft,
            WebhookKind::RoomFinished,
        ]
    );
    let (first_key, first) = &pending[0];
    assert_eq!(first.id, format!("evt_{first_key}"));
    assert_eq!(
        pending[1].1.participant.as_ref().unwrap().display_name,
        "P1"
    );
    assert_eq!(pending[5].1.at_ms, T0 + 9);
    let ids: Vec<u64> = pending.iter().take(4).map(|(k, _)| *k).collect();
    assert_eq!(
        s.stats(StatsCommand::WebhooksDelivered { ids: ids.clone() })
            .await
            .unwrap(),
        StatsOutput::Delivered(4)
    );
    assert_eq!(
        s.stats(StatsCommand::WebhooksDelivered { ids })
            .await
            .unwrap(),
        StatsOutput::Delivered(0)
    );
    assert_eq!(s.stats_read(|q| q.outbox(100)).await.unwrap().len(), 2);
    // Without webhooks configured, nothing is queued.
    s.stats(record(2, 8, vec![joined(1, 6, 3, T0, None)]))
        .await
        .unwrap();
    assert_eq!(s.stats_read(|q| q.outbox(100)).await.unwrap().len(), 2);
    f.close(s).await;
}
