//! Meeting statistics: meeting sessions and participant sessions, built
//! from the participant events the media nodes report.
//!
//! Written once against the document tables ([`super::docs`]), so the Raft
//! state machine and [`super::MemStore`] run this same code; the reads are
//! in `stats_read.rs`.
//!
//! - A media node reports its events in batches, and a batch is one
//!   command ([`StatsCommand::Record`]), so one Raft entry, however many
//!   events it carries. Delivery is at-least-once: each (node, boot, seq)
//!   is applied once, by keeping per (node, boot) the highest `seq` stored
//!   (a node sends its events in `seq` order and forgets them only once
//!   acknowledged, so a repeat is always at or below the mark).
//! - A meeting starts when a participant joins a room that has nobody in
//!   it anywhere in the cluster, and ends when the last open participant
//!   session of the room, on any node, closes. Node clocks differ a little
//!   and batches from different nodes interleave: a join stamped before
//!   the end of the room's last meeting reopens that meeting rather than
//!   starting one that began before the previous one ended.
//! - A node that dies cannot report its leaves. The leader closes its open
//!   participant sessions ([`StatsCommand::NodeLost`]) when it declares the
//!   node dead, at its last heartbeat (see `crate::stats_duty`). A node
//!   that restarts quickly, before being declared dead, announces its new
//!   boot in its first report, which closes the old run's sessions at the
//!   report's time.
//! - Counts by UTC day and hour are kept as they happen, so the admin
//!   overview reads 54 small rows, not the history.

use super::db::DbError;
use super::docs::{next_id, DocTable, Docs, DocsMut};
use super::outbox;
use serde::{Deserialize, Serialize};
use veche_protocol::stats::{
    EventKind, MeetingId, ParticipantEvent, WebhookEvent, WebhookKind, WebhookParticipant, DAY_MS,
    HOUR_MS,
};
use veche_protocol::{NodeId, ParticipantId, RoomId, RoomSlug, UnixMillis, UserId};

/// A meeting: a stretch of time in which a room had somebody in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meeting {
    /// Assigned at apply time, increasing in commit order.
    pub id: MeetingId,
    /// The room.
    pub room_id: RoomId,
    /// The room's name as the first event of the meeting gave it.
    pub room_name: String,
    /// The room's link slug.
    pub room_slug: RoomSlug,
    /// The first join (node clock).
    pub started_at_ms: UnixMillis,
    /// The last leave; `None` while open.
    pub ended_at_ms: Option<UnixMillis>,
    /// Participant sessions it had.
    pub participants: u64,
    /// Participant sessions open now.
    pub open: u64,
}

/// One seat of one participant on one node, from join to leave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantSession {
    /// Assigned at apply time.
    pub id: u64,
    /// The meeting it belongs to.
    pub meeting: MeetingId,
    /// The participant.
    pub participant_id: ParticipantId,
    /// The name shown.
    pub display_name: String,
    /// The signed-in account, if any.
    pub user: Option<UserId>,
    /// Came on a guest pass.
    pub guest: bool,
    /// The media node.
    pub node_id: NodeId,
    /// Join (node clock).
    pub joined_at_ms: UnixMillis,
    /// Leave; `None` while open.
    pub left_at_ms: Option<UnixMillis>,
}

/// Meetings and participant sessions that started in one day or hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Meetings started.
    pub meetings: u64,
    /// Participant sessions started.
    pub participants: u64,
}

/// A write to the statistics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatsCommand {
    /// A batch of a node's participant events, applied in order; events
    /// at or below the (node, boot) mark are repeats and skipped. The
    /// first batch of a new boot closes the node's sessions of earlier
    /// boots at `received_at_ms`. A batch of a boot older than the node's
    /// current one (a late retry of a dead process) changes nothing.
    Record {
        /// The node.
        node_id: NodeId,
        /// Its run.
        boot: u64,
        /// The events, `seq` increasing.
        events: Vec<ParticipantEvent>,
        /// The proposer's clock when the batch arrived.
        received_at_ms: UnixMillis,
        /// Also store webhook events for what the batch changes (the
        /// proposer has webhooks configured; every control-plane node has
        /// the same `[[webhooks]]`).
        #[serde(default)]
        webhooks: bool,
    },
    /// The node is dead: close its open participant sessions at `at_ms`
    /// (its last heartbeat). Idempotent: a second time finds none open.
    NodeLost {
        /// The node.
        node_id: NodeId,
        /// When it was last heard from.
        at_ms: UnixMillis,
        /// Also store webhook events, as in `Record`.
        #[serde(default)]
        webhooks: bool,
    },
    /// Webhook events delivered to every endpoint: removed from the
    /// outbox. Removing a removed one changes nothing.
    WebhooksDelivered {
        /// Outbox keys (the `n` of `evt_<n>`).
        ids: Vec<u64>,
    },
}

impl StatsCommand {
    /// Both commands may be applied twice with the effect of once: events
    /// are deduplicated by their mark, and a lost node has nothing left
    /// open the second time.
    pub fn is_idempotent(&self) -> bool {
        true
    }
}

/// What a statistics command answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatsOutput {
    /// The batch is stored: the (node, boot) mark after it, and how many
    /// of its events were new.
    Recorded {
        /// Highest `seq` of the boot stored.
        stored_through: u64,
        /// Events applied by this command (repeats excluded).
        applied: u64,
    },
    /// Participant sessions closed.
    Closed(u64),
    /// Webhook events removed from the outbox.
    Delivered(u64),
}

/// Per (node, boot): the highest `seq` stored.
pub(super) const MARKS: DocTable<(u64, u64), u64> = DocTable::new("stats_marks");
/// Per node: its current boot.
pub(super) const NODE_BOOT: DocTable<u64, u64> = DocTable::new("stats_node_boot");
/// Meetings by id.
pub(super) const MEETINGS: DocTable<u64, Meeting> = DocTable::new("meetings");
/// (UTC day of the start, meeting id), for the history.
pub(super) const MEETINGS_BY_DAY: DocTable<(u64, u64), ()> = DocTable::new("meetings_by_day");
/// Room to its open meeting.
pub(super) const ROOM_LIVE: DocTable<u64, u64> = DocTable::new("rooms_live");
/// Room to its last meeting (open or not).
pub(super) const ROOM_LAST: DocTable<u64, u64> = DocTable::new("rooms_last_meeting");
/// (meeting, participant session id) to the session.
pub(super) const SESSIONS: DocTable<(u64, u64), ParticipantSession> =
    DocTable::new("participant_sessions");
/// (node, (room, participant)) to (meeting, session id) of an open seat.
pub(super) const OPEN_SEATS: DocTable<(u64, (u64, String)), (u64, u64)> =
    DocTable::new("open_seats");
/// (user, meeting), for a user's own history.
pub(super) const USER_MEETINGS: DocTable<(u64, u64), ()> = DocTable::new("user_meetings");
/// UTC day number to its counts.
pub(super) const DAILY: DocTable<u64, Counts> = DocTable::new("stats_daily");
/// Hour number (since the epoch) to its counts.
pub(super) const HOURLY: DocTable<u64, Counts> = DocTable::new("stats_hourly");
/// `first_day` and `last_day` with a meeting start: the bounds of the
/// history's walk by day.
pub(super) const META: DocTable<str, u64> = DocTable::new("stats_meta");

type Applied = Result<StatsOutput, DbError>;

/// What a statistics command did that other capabilities follow in the
/// same apply (`capabilities.rs`): meetings that ended stop their room's
/// recording, and nodes lost (dead, or restarted) interrupt the files they
/// were writing. Data, not a callback, so this module imports neither.
#[derive(Debug, Default)]
pub(crate) struct StatsEffects {
    /// Rooms whose meeting ended, with when, and the node of the last
    /// seat that closed (it hosted the room to the end).
    pub ended: Vec<(RoomId, UnixMillis, NodeId)>,
    /// Nodes whose earlier run is over (declared dead, or a new boot).
    pub lost: Vec<NodeId>,
    /// Seats that closed, by room and participant: the participant may
    /// have left the room for good (see [`seated_anywhere`]).
    pub left: Vec<(RoomId, ParticipantId)>,
}

/// Applies one statistics command, telling `fx` what other capabilities
/// follow. Statistics refuse nothing: an event that makes no sense (a
/// leave without a join) is skipped.
pub(crate) fn apply_observed(
    d: &mut (impl DocsMut + ?Sized),
    cmd: StatsCommand,
    fx: &mut StatsEffects,
) -> Applied {
    match cmd {
        StatsCommand::Record {
            node_id,
            boot,
            events,
            received_at_ms,
            webhooks,
        } => {
            let node = node_id.0;
            let mark = MARKS.get(d, &(node, boot))?;
            let current = NODE_BOOT.get(d, &node)?;
            if current != Some(boot) {
                if mark.is_some() {
                    // A boot this node had before its current one.
                    return Ok(StatsOutput::Recorded {
                        stored_through: mark.unwrap_or(0),
                        applied: 0,
                    });
                }
                close_node(d, node, received_at_ms, webhooks, fx)?;
                if current.is_some() {
                    fx.lost.push(node_id);
                }
                NODE_BOOT.put(d, &node, &boot)?;
            }
            let mut mark = mark.unwrap_or(0);
            let mut applied = 0;
            for ev in events {
                if ev.seq <= mark {
                    continue;
                }
                mark = ev.seq;
                applied += 1;
                match ev.kind {
                    EventKind::Joined {
                        display_name,
                        user,
                        guest,
                    } => {
                        let seat = (node, (ev.room_id.0, ev.participant_id.as_str().to_owned()));
                        if OPEN_SEATS.contains(d, &seat)? {
                            continue;
                        }
                        let meeting = meeting_for_join(
                            d,
                            ev.room_id,
                            &ev.room_name,
                            &ev.room_slug,
                            ev.at_ms,
                            webhooks,
                        )?;
                        let session = ParticipantSession {
                            id: next_id(d, "participant_sessions")?,
                            meeting: meeting.id,
                            participant_id: ev.participant_id,
                            display_name,
                            user,
                            guest,
                            node_id,
                            joined_at_ms: ev.at_ms,
                            left_at_ms: None,
                        };
                        SESSIONS.put(d, &(meeting.id.0, session.id), &session)?;
                        OPEN_SEATS.put(d, &seat, &(meeting.id.0, session.id))?;
                        if let Some(u) = user {
                            USER_MEETINGS.put(d, &(u.0, meeting.id.0), &())?;
                        }
                        let m = Meeting {
                            participants: meeting.participants + 1,
                            open: meeting.open + 1,
                            ..meeting
                        };
                        MEETINGS.put(d, &m.id.0, &m)?;
                        count(d, ev.at_ms, |c| c.participants += 1)?;
                        if webhooks {
                            hook(
                                d,
                                WebhookKind::ParticipantJoined,
                                &m,
                                Some(&session),
                                ev.at_ms,
                            )?;
                        }
                    }
                    EventKind::Left => {
                        let seat = (node, (ev.room_id.0, ev.participant_id.as_str().to_owned()));
                        close_seat(d, &seat, ev.at_ms, webhooks, fx)?;
                    }
                }
            }
            MARKS.put(d, &(node, boot), &mark)?;
            Ok(StatsOutput::Recorded {
                stored_through: mark,
                applied,
            })
        }
        StatsCommand::NodeLost {
            node_id,
            at_ms,
            webhooks,
        } => {
            fx.lost.push(node_id);
            Ok(StatsOutput::Closed(close_node(
                d, node_id.0, at_ms, webhooks, fx,
            )?))
        }
        StatsCommand::WebhooksDelivered { ids } => {
            Ok(StatsOutput::Delivered(outbox::remove(d, &ids)?))
        }
    }
}

/// The room's open meeting, a reopened last one (a join stamped before
/// its end), or a new one.
fn meeting_for_join(
    d: &mut (impl DocsMut + ?Sized),
    room: RoomId,
    room_name: &str,
    room_slug: &RoomSlug,
    at_ms: UnixMillis,
    webhooks: bool,
) -> Result<Meeting, DbError> {
    if let Some(id) = ROOM_LIVE.get(d, &room.0)? {
        if let Some(m) = MEETINGS.get(d, &id)? {
            return Ok(m);
        }
    }
    if let Some(id) = ROOM_LAST.get(d, &room.0)? {
        if let Some(m) = MEETINGS.get(d, &id)? {
            if m.ended_at_ms.is_some_and(|end| at_ms <= end) {
                ROOM_LIVE.put(d, &room.0, &id)?;
                return Ok(Meeting {
                    ended_at_ms: None,
                    ..m
                });
            }
        }
    }
    let m = Meeting {
        id: MeetingId(next_id(d, "meetings")?),
        room_id: room,
        room_name: room_name.to_owned(),
        room_slug: room_slug.clone(),
        started_at_ms: at_ms,
        ended_at_ms: None,
        participants: 0,
        open: 0,
    };
    let day = at_ms / DAY_MS;
    MEETINGS_BY_DAY.put(d, &(day, m.id.0), &())?;
    if META.get(d, "first_day")?.is_none_or(|f| day < f) {
        META.put(d, "first_day", &day)?;
    }
    if META.get(d, "last_day")?.is_none_or(|l| day > l) {
        META.put(d, "last_day", &day)?;
    }
    ROOM_LIVE.put(d, &room.0, &m.id.0)?;
    ROOM_LAST.put(d, &room.0, &m.id.0)?;
    count(d, at_ms, |c| c.meetings += 1)?;
    MEETINGS.put(d, &m.id.0, &m)?;
    if webhooks {
        hook(d, WebhookKind::RoomStarted, &m, None, at_ms)?;
    }
    Ok(m)
}

/// Closes one open seat at `at_ms` (never before its join), and its
/// meeting if it was the last open one. A seat not open is skipped.
fn close_seat(
    d: &mut (impl DocsMut + ?Sized),
    seat: &(u64, (u64, String)),
    at_ms: UnixMillis,
    webhooks: bool,
    fx: &mut StatsEffects,
) -> Result<bool, DbError> {
    let Some((meeting, id)) = OPEN_SEATS.get(d, seat)? else {
        return Ok(false);
    };
    OPEN_SEATS.remove(d, seat)?;
    fx.left
        .push((RoomId(seat.1 .0), ParticipantId(seat.1 .1.clone())));
    let mut left = at_ms;
    let session = SESSIONS.get(d, &(meeting, id))?;
    if let Some(mut s) = session.clone() {
        left = left.max(s.joined_at_ms);
        s.left_at_ms = Some(left);
        SESSIONS.put(d, &(meeting, id), &s)?;
    }
    if let Some(mut m) = MEETINGS.get(d, &meeting)? {
        m.open = m.open.saturating_sub(1);
        if m.open == 0 {
            m.ended_at_ms = Some(left.max(m.started_at_ms));
            fx.ended
                .push((m.room_id, left.max(m.started_at_ms), NodeId(seat.0)));
            if ROOM_LIVE.get(d, &m.room_id.0)? == Some(meeting) {
                ROOM_LIVE.remove(d, &m.room_id.0)?;
            }
        }
        MEETINGS.put(d, &meeting, &m)?;
        if webhooks {
            if let Some(s) = &session {
                hook(d, WebhookKind::ParticipantLeft, &m, Some(s), left)?;
            }
            if m.open == 0 {
                hook(d, WebhookKind::RoomFinished, &m, None, left)?;
            }
        }
    }
    Ok(true)
}

/// The nodes hosting `room` now: those of the open participant sessions of
/// its live meeting (a read of that meeting's sessions only). A stopped
/// recording awaits each one's last report.
pub(super) fn room_nodes(
    d: &(impl Docs + ?Sized),
    room: RoomId,
) -> Result<std::collections::BTreeSet<NodeId>, DbError> {
    use super::docs::DocKey;
    let Some(meeting) = ROOM_LIVE.get(d, &room.0)? else {
        return Ok(Default::default());
    };
    Ok(SESSIONS
        .scan(d, &meeting.key_bytes(), false, usize::MAX)?
        .into_iter()
        .filter(|s: &ParticipantSession| s.left_at_ms.is_none())
        .map(|s| s.node_id)
        .collect())
}

/// Whether `who` has an open seat in `room` on any media node: a seat
/// that closed on one node while another is open (a move after a node
/// loss, a newer connection elsewhere) is not a leave. One lookup per node
/// that ever reported.
pub(super) fn seated_anywhere(
    d: &(impl Docs + ?Sized),
    room: RoomId,
    who: &ParticipantId,
) -> Result<bool, DbError> {
    for (key, _) in NODE_BOOT.scan_keys(d, &[], false, usize::MAX)? {
        let node = u64::from_be_bytes(key.as_slice().try_into().map_err(|_| {
            DbError::Inconsistent(format!("stats_node_boot key of {} bytes", key.len()))
        })?);
        if OPEN_SEATS.contains(d, &(node, (room.0, who.as_str().to_owned())))? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `room` has a meeting open now.
pub(super) fn is_live(d: &(impl Docs + ?Sized), room: RoomId) -> Result<bool, DbError> {
    ROOM_LIVE.contains(d, &room.0)
}

/// Closes every open seat of `node` at `at_ms`; returns how many.
fn close_node(
    d: &mut (impl DocsMut + ?Sized),
    node: u64,
    at_ms: UnixMillis,
    webhooks: bool,
    fx: &mut StatsEffects,
) -> Result<u64, DbError> {
    use super::docs::DocKey;
    let open = OPEN_SEATS.scan_keys(d, &node.key_bytes(), false, usize::MAX)?;
    let mut closed = 0;
    for (key, _) in open {
        let seat = decode_seat(&key)?;
        if close_seat(d, &seat, at_ms, webhooks, fx)? {
            closed += 1;
        }
    }
    Ok(closed)
}

/// The key of [`OPEN_SEATS`] back from its bytes: node and room
/// big-endian, then the participant id and its terminating zero.
pub(super) fn decode_seat(key: &[u8]) -> Result<(u64, (u64, String)), DbError> {
    let bad = || DbError::Inconsistent(format!("open_seats key of {} bytes", key.len()));
    if key.len() < 17 || key[key.len() - 1] != 0 {
        return Err(bad());
    }
    let node = u64::from_be_bytes(key[..8].try_into().map_err(|_| bad())?);
    let room = u64::from_be_bytes(key[8..16].try_into().map_err(|_| bad())?);
    let pid = std::str::from_utf8(&key[16..key.len() - 1])
        .map_err(|_| bad())?
        .to_owned();
    Ok((node, (room, pid)))
}

/// Adds to the counts of the day and hour of `at_ms`.
fn count(
    d: &mut (impl DocsMut + ?Sized),
    at_ms: UnixMillis,
    add: impl Fn(&mut Counts),
) -> Result<(), DbError> {
    for (table, bucket) in [(&DAILY, at_ms / DAY_MS), (&HOURLY, at_ms / HOUR_MS)] {
        let mut c = table.get(d, &bucket)?.unwrap_or_default();
        add(&mut c);
        table.put(d, &bucket, &c)?;
    }
    Ok(())
}

/// Stores a webhook event about meeting `m` (and session `s`) in the
/// outbox.
fn hook(
    d: &mut (impl DocsMut + ?Sized),
    kind: WebhookKind,
    m: &Meeting,
    s: Option<&ParticipantSession>,
    at_ms: UnixMillis,
) -> Result<(), DbError> {
    outbox::push(d, |id| WebhookEvent {
        id,
        kind,
        at_ms,
        meeting_id: m.id,
        room_id: m.room_id,
        room_name: m.room_name.clone(),
        room_slug: m.room_slug.clone(),
        participant: s.map(|s| WebhookParticipant {
            participant_id: s.participant_id.clone(),
            display_name: s.display_name.clone(),
            user: s.user,
            guest: s.guest,
            node_id: s.node_id,
        }),
        recording: None,
    })
}
