//! Reads of the statistics (`stats.rs`), shaped as the admin view wants
//! them. All of them run inside one [`super::DocAccess::read_docs`], so a
//! page is read at one point.

use super::access::DocAccess;
use super::db::DbError;
use super::docs::{DocKey, Docs};
use super::error::StoreError;
use super::model::{Command, CommandOutput};
use super::seam;
use super::stats::{
    Counts, Meeting, ParticipantSession, DAILY, HOURLY, MEETINGS, MEETINGS_BY_DAY, META,
    OPEN_SEATS, ROOM_LIVE, SESSIONS, USER_MEETINGS,
};
use super::stats::{StatsCommand, StatsOutput};
use std::collections::BTreeSet;
use std::future::Future;
use veche_protocol::limits::stats::MAX_MEETING_PARTICIPANTS;
use veche_protocol::stats::WebhookEvent;
use veche_protocol::stats::{
    Bucket, MeetingDetail, MeetingId, MeetingPage, MeetingView, Overview, ParticipantView, DAY_MS,
    HOUR_MS, OVERVIEW_DAYS, OVERVIEW_HOURS,
};
use veche_protocol::{NodeId, UnixMillis, UserId};

/// The statistics, as of one read.
pub struct StatsQuery<'a> {
    d: &'a dyn Docs,
}

/// A meeting as listed: its duration runs to `now_ms` while it is open.
pub fn meeting_view(m: &Meeting, now_ms: UnixMillis) -> MeetingView {
    let end = m.ended_at_ms.unwrap_or(now_ms.max(m.started_at_ms));
    MeetingView {
        id: m.id,
        room_id: m.room_id,
        room_name: m.room_name.clone(),
        room_slug: m.room_slug.clone(),
        started_at_ms: m.started_at_ms,
        ended_at_ms: m.ended_at_ms,
        duration_ms: end.saturating_sub(m.started_at_ms),
        participants: m.participants,
    }
}

/// Whether `name` contains `q`, ignoring case.
fn matches(name: &str, q: &str) -> bool {
    q.is_empty() || name.to_lowercase().contains(&q.to_lowercase())
}

impl<'a> StatsQuery<'a> {
    pub(super) fn new(d: &'a dyn Docs) -> Self {
        StatsQuery { d }
    }

    /// The meeting with this id.
    pub fn meeting(&self, id: MeetingId) -> Result<Option<Meeting>, DbError> {
        MEETINGS.get(self.d, &id.0)
    }

    /// The participant sessions of a meeting, by join order (at most
    /// `limit`).
    pub fn sessions(
        &self,
        id: MeetingId,
        limit: usize,
    ) -> Result<Vec<ParticipantSession>, DbError> {
        SESSIONS.scan(self.d, &id.0.key_bytes(), false, limit)
    }

    /// One meeting and its participant sessions (at most
    /// [`MAX_MEETING_PARTICIPANTS`]), with the accounts' emails;
    /// durations of what is still open run to `now_ms`.
    pub fn meeting_detail(
        &self,
        id: MeetingId,
        now_ms: UnixMillis,
    ) -> Result<Option<MeetingDetail>, DbError> {
        let Some(m) = self.meeting(id)? else {
            return Ok(None);
        };
        let mut participants = Vec::new();
        for s in self.sessions(id, MAX_MEETING_PARTICIPANTS)? {
            let email = match s.user {
                Some(u) => self.email(u)?,
                None => None,
            };
            let end = s.left_at_ms.unwrap_or(now_ms.max(s.joined_at_ms));
            participants.push(ParticipantView {
                duration_ms: end.saturating_sub(s.joined_at_ms),
                participant_id: s.participant_id,
                display_name: s.display_name,
                user: s.user,
                email,
                guest: s.guest,
                joined_at_ms: s.joined_at_ms,
                left_at_ms: s.left_at_ms,
                node_id: s.node_id,
            });
        }
        Ok(Some(MeetingDetail {
            meeting: meeting_view(&m, now_ms),
            participants,
        }))
    }

    /// Up to `limit` webhook events waiting for delivery, oldest first,
    /// with their outbox keys.
    pub fn outbox(&self, limit: usize) -> Result<Vec<(u64, WebhookEvent)>, DbError> {
        let rows = super::outbox::OUTBOX.scan_keys(self.d, &[], false, limit)?;
        rows.into_iter()
            .map(|(k, e)| {
                let key = k
                    .as_slice()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| DbError::Inconsistent("webhook_outbox key".into()))?;
                Ok((key, e))
            })
            .collect()
    }

    /// An account's email, if the account still exists.
    pub fn email(&self, user: UserId) -> Result<Option<String>, DbError> {
        Ok(super::accounts::user(self.d, user)?.map(|u| u.email))
    }

    /// The open meetings, longest-running first.
    pub fn live(&self) -> Result<Vec<Meeting>, DbError> {
        let ids = ROOM_LIVE.scan(self.d, &[], false, usize::MAX)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(m) = MEETINGS.get(self.d, &id)? {
                out.push(m);
            }
        }
        out.sort_by_key(|m| (m.started_at_ms, m.id));
        Ok(out)
    }

    /// The media nodes with open participant sessions.
    pub fn nodes_with_open_seats(&self) -> Result<Vec<NodeId>, DbError> {
        let seats = OPEN_SEATS.scan_keys(self.d, &[], false, usize::MAX)?;
        let nodes: BTreeSet<u64> = seats
            .iter()
            .filter_map(|(k, _)| k.get(..8)?.try_into().ok().map(u64::from_be_bytes))
            .collect();
        Ok(nodes.into_iter().map(NodeId).collect())
    }

    /// Rooms and people online now, and the counts of the last
    /// [`OVERVIEW_DAYS`] days and [`OVERVIEW_HOURS`] hours ending with the
    /// ones `now_ms` is in.
    pub fn overview(&self, now_ms: UnixMillis) -> Result<Overview, DbError> {
        let live = self.live()?;
        let mut participants = 0;
        let mut users = BTreeSet::new();
        for m in &live {
            for s in SESSIONS.scan(self.d, &m.id.0.key_bytes(), false, usize::MAX)? {
                if s.left_at_ms.is_none() {
                    participants += 1;
                    if let Some(u) = s.user {
                        users.insert(u);
                    }
                }
            }
        }
        let buckets = |table: &super::docs::DocTable<u64, Counts>, size: u64, n: u64| {
            let last = now_ms / size;
            (last + 1 - n.min(last + 1)..=last)
                .map(|b| {
                    let c = table.get(self.d, &b)?.unwrap_or_default();
                    Ok(Bucket {
                        start_ms: b * size,
                        meetings: c.meetings,
                        participants: c.participants,
                    })
                })
                .collect::<Result<Vec<_>, DbError>>()
        };
        Ok(Overview {
            rooms_online: live.len() as u64,
            participants_online: participants,
            users_online: users.len() as u64,
            by_day: buckets(&DAILY, DAY_MS, OVERVIEW_DAYS)?,
            by_hour: buckets(&HOURLY, HOUR_MS, OVERVIEW_HOURS)?,
            live: live.iter().map(|m| meeting_view(m, now_ms)).collect(),
        })
    }

    /// Up to `limit` meetings whose room name contains `q` (any case),
    /// newest first by (start day, id), after the meeting `before` in that
    /// order. Walks the history a day at a time, back to the first day
    /// with a meeting.
    pub fn meetings(
        &self,
        q: &str,
        before: Option<MeetingId>,
        limit: usize,
        now_ms: UnixMillis,
    ) -> Result<MeetingPage, DbError> {
        let (Some(first), Some(last)) = (
            META.get(self.d, "first_day")?,
            META.get(self.d, "last_day")?,
        ) else {
            return Ok(MeetingPage {
                meetings: Vec::new(),
                next_before: None,
            });
        };
        let start = match before {
            Some(b) => match MEETINGS.get(self.d, &b.0)? {
                Some(m) => m.started_at_ms / DAY_MS,
                None => {
                    return Ok(MeetingPage {
                        meetings: Vec::new(),
                        next_before: None,
                    })
                }
            },
            None => last,
        };
        let mut out: Vec<Meeting> = Vec::new();
        let mut day = start;
        'days: loop {
            let ids = MEETINGS_BY_DAY.scan_keys(self.d, &day.key_bytes(), true, usize::MAX)?;
            for (key, ()) in ids {
                let id = key
                    .get(8..16)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| DbError::Inconsistent("meetings_by_day key".into()))?;
                if day == start && before.is_some_and(|b| id >= b.0) {
                    continue;
                }
                let Some(m) = MEETINGS.get(self.d, &id)? else {
                    continue;
                };
                if matches(&m.room_name, q) {
                    out.push(m);
                    if out.len() > limit {
                        break 'days;
                    }
                }
            }
            if day <= first {
                break;
            }
            day -= 1;
        }
        Ok(page(out, limit, now_ms))
    }

    /// Up to `limit` meetings `user` took part in, newest first, with an
    /// id below `before`.
    pub fn user_meetings(
        &self,
        user: UserId,
        before: Option<MeetingId>,
        limit: usize,
        now_ms: UnixMillis,
    ) -> Result<MeetingPage, DbError> {
        let keys = USER_MEETINGS.scan_keys(self.d, &user.0.key_bytes(), true, usize::MAX)?;
        let mut out = Vec::new();
        for (key, ()) in keys {
            let Some(id) = key
                .get(8..16)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
            else {
                continue;
            };
            if before.is_some_and(|b| id >= b.0) {
                continue;
            }
            if let Some(m) = MEETINGS.get(self.d, &id)? {
                out.push(m);
                if out.len() > limit {
                    break;
                }
            }
        }
        Ok(page(out, limit, now_ms))
    }
}

/// A page of `limit` from `found` (which holds up to `limit + 1`: one
/// more means another page follows).
fn page(mut found: Vec<Meeting>, limit: usize, now_ms: UnixMillis) -> MeetingPage {
    let more = found.len() > limit;
    found.truncate(limit);
    MeetingPage {
        next_before: if more {
            found.last().map(|m| m.id)
        } else {
            None
        },
        meetings: found.iter().map(|m| meeting_view(m, now_ms)).collect(),
    }
}

/// Statistics as the API and the leader's duties use them. Implemented
/// once for every store ([`DocAccess`]); the contract is checked by the
/// conformance cases in `conformance_stats.rs` on both stores.
pub trait StatsStore: DocAccess {
    /// Runs a statistics command.
    fn stats(
        &self,
        cmd: StatsCommand,
    ) -> impl Future<Output = Result<StatsOutput, StoreError>> + Send {
        async move {
            seam::expect(
                self.commit(Command::Stats(cmd)).await?,
                "a statistics command",
                |o| match o {
                    CommandOutput::Stats(s) => Ok(s),
                    other => Err(other),
                },
            )
        }
    }

    /// Reads the statistics at one linearizable point.
    fn stats_read<T: Send + 'static>(
        &self,
        q: impl FnOnce(&StatsQuery<'_>) -> Result<T, DbError> + Send,
    ) -> impl Future<Output = Result<T, StoreError>> + Send {
        self.read_docs(move |d: &dyn Docs| q(&StatsQuery::new(d)))
    }
}

impl<S: DocAccess + ?Sized> StatsStore for S {}
