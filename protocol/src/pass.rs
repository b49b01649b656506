//! Who may enter a room, and guest passes: the wire types, and the
//! decisions about a pass's window (I/O-free: `now` is passed in).
//!
//! A room's access rule ([`RoomAccess`]) is chosen when it is created. In a
//! `signed_in_or_pass` room, someone without an account comes in on a
//! guest pass: a random token in the link (`/r/{slug}?pass=TOKEN`) that
//! admits only inside its window and only until it is revoked. The control
//! plane keeps the token's SHA-256, never the token, so the link is shown
//! once, when the pass is created.

use crate::UnixMillis;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who may join a room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomAccess {
    /// Anyone with the link (the default, and every room made before
    /// access rules existed).
    #[default]
    Open,
    /// Only the organisation's signed-in users.
    SignedIn,
    /// Signed-in users, and guests with a valid pass.
    SignedInOrPass,
}

/// The request header with which an anonymous creator's browser proves it
/// owns a room: the owner key handed out once in the create response.
pub const OWNER_KEY_HEADER: &str = "x-veche-owner-key";

/// A guest pass's id, assigned by the control plane's state machine; unique
/// across rooms. Not a secret: the token in the link is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PassId(pub u64);

impl fmt::Display for PassId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `POST /api/rooms/{slug}/passes` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePassRequest {
    /// Who the pass is for ("Visitor from ACME"), 1 to
    /// [`crate::limits::passes::MAX_LABEL_CHARS`] chars.
    pub label: String,
    /// The first instant the pass admits.
    pub valid_from_ms: UnixMillis,
    /// The instant it stops admitting; after `valid_from_ms`, at most
    /// [`crate::limits::passes::MAX_WINDOW_MS`] later.
    pub valid_until_ms: UnixMillis,
}

/// Where a pass stands at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassStatus {
    /// Its window has not begun.
    Scheduled,
    /// It admits now.
    Active,
    /// Its window is over.
    Expired,
    /// The owner revoked it; it never admits again.
    Revoked,
}

/// A pass as its room's owner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassView {
    /// Id.
    pub id: PassId,
    /// Who it is for.
    pub label: String,
    /// First instant it admits.
    pub valid_from_ms: UnixMillis,
    /// Instant it stops admitting.
    pub valid_until_ms: UnixMillis,
    /// Status at the time of the response.
    pub status: PassStatus,
    /// Creation time.
    pub created_at_ms: UnixMillis,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<UnixMillis>,
}

/// Reply to `POST /api/rooms/{slug}/passes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedPass {
    /// The pass.
    pub pass: PassView,
    /// The link to hand to the guest: `<public url>/r/{slug}?pass=TOKEN`.
    /// Shown only here: the server keeps the token's hash, not the token.
    pub link: String,
}

/// Reply to `GET /api/rooms/{slug}/passes`: every pass of the room, oldest
/// first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassList {
    /// The passes.
    pub passes: Vec<PassView>,
}

/// A pass's status at `now_ms`: revoked wins; otherwise the window
/// `[valid_from_ms, valid_until_ms)` decides.
pub fn status(
    valid_from_ms: UnixMillis,
    valid_until_ms: UnixMillis,
    revoked: bool,
    now_ms: UnixMillis,
) -> PassStatus {
    if revoked {
        PassStatus::Revoked
    } else if now_ms < valid_from_ms {
        PassStatus::Scheduled
    } else if now_ms >= valid_until_ms {
        PassStatus::Expired
    } else {
        PassStatus::Active
    }
}

/// Why a pass does not admit at some instant, in words a guest can act on:
/// the window is stated, so "come back at ten" is possible without asking
/// anyone.
pub fn refusal(
    valid_from_ms: UnixMillis,
    valid_until_ms: UnixMillis,
    revoked: bool,
    now_ms: UnixMillis,
) -> Option<String> {
    match status(valid_from_ms, valid_until_ms, revoked, now_ms) {
        PassStatus::Active => None,
        PassStatus::Revoked => Some("This pass was revoked by the meeting's owner.".to_owned()),
        PassStatus::Expired => Some(format!(
            "This pass expired on {}.",
            format_utc(valid_until_ms)
        )),
        PassStatus::Scheduled => Some(format!(
            "This pass is valid from {} to {}.",
            format_utc(valid_from_ms),
            format_utc(valid_until_ms)
        )),
    }
}

/// An instant as people read it, in UTC: `16 Apr 2026, 13:41 UTC`.
pub fn format_utc(ms: UnixMillis) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{day} {} {year}, {:02}:{:02} UTC",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// The proleptic Gregorian (year, month 1-12, day 1-31) of a day count since
/// 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    #[test]
    fn a_pass_is_scheduled_then_active_then_expired_unless_revoked() {
        let (from, until) = (10 * HOUR, 12 * HOUR);
        assert_eq!(status(from, until, false, from - 1), PassStatus::Scheduled);
        assert_eq!(status(from, until, false, from), PassStatus::Active);
        assert_eq!(status(from, until, false, until - 1), PassStatus::Active);
        assert_eq!(status(from, until, false, until), PassStatus::Expired);
        for now in [from - 1, from, until] {
            assert_eq!(status(from, until, true, now), PassStatus::Revoked);
        }
    }

    #[test]
    fn instants_read_as_day_month_year_and_utc_time() {
        // 2026-04-16T13:41:00Z
        assert_eq!(format_utc(1_776_346_860_000), "16 Apr 2026, 13:41 UTC");
        assert_eq!(format_utc(0), "1 Jan 1970, 00:00 UTC");
        // A leap day: 2024-02-29T23:59:59Z.
        assert_eq!(format_utc(1_709_251_199_000), "29 Feb 2024, 23:59 UTC");
    }

    #[test]
    fn a_refusal_states_the_window_in_words() {
        let (from, until) = (1_776_346_860_000, 1_776_346_860_000 + 2 * HOUR);
        assert_eq!(refusal(from, until, false, from), None);
        assert_eq!(
            refusal(from, until, false, until).unwrap(),
            "This pass expired on 16 Apr 2026, 15:41 UTC."
        );
        assert_eq!(
            refusal(from, until, false, from - 1).unwrap(),
            "This pass is valid from 16 Apr 2026, 13:41 UTC to 16 Apr 2026, 15:41 UTC."
        );
        assert!(refusal(from, until, true, from)
            .unwrap()
            .contains("revoked"));
    }

    #[test]
    fn access_and_status_use_snake_case_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&RoomAccess::SignedInOrPass).unwrap(),
            "\"signed_in_or_pass\""
        );
        assert_eq!(
            serde_json::to_string(&PassStatus::Scheduled).unwrap(),
            "\"scheduled\""
        );
    }
}
