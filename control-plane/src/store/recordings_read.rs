//! The read side of the recordings index (`recordings.rs` applies the
//! commands): its tables and their keys, and the queries the API and the
//! leader's duties use. Apart so that neither file grows past a screenful
//! of concerns; `recordings.rs` imports this, never the other way.

use super::db::DbError;
use super::docs::{DocKey, DocTable, Docs};
use super::recording_model::Recording;
use std::collections::BTreeSet;
use veche_protocol::recording::RecordingId;
use veche_protocol::{NodeId, RoomId, UnixMillis};

/// Recordings by id.
pub(super) const RECORDINGS: DocTable<str, Recording> = DocTable::new("recordings");
/// (room, started at, id): a room's recordings in start order.
pub(super) const BY_ROOM: DocTable<(u64, (u64, String)), ()> = DocTable::new("recordings_by_room");
/// (started at, id): every recording in start order.
pub(super) const BY_START: DocTable<(u64, String), ()> = DocTable::new("recordings_by_start");
/// (stopped at, id): stopped recordings in stop order, for retention.
pub(super) const BY_STOP: DocTable<(u64, String), ()> = DocTable::new("recordings_by_stop");
/// (node, id): recordings with a file the node is still writing.
pub(super) const WRITING: DocTable<(u64, String), ()> = DocTable::new("recordings_writing");
/// (node, id): stopped recordings awaiting the node's last report.
pub(super) const AWAITING: DocTable<(u64, String), ()> = DocTable::new("recordings_awaiting");
/// (stopped at, id): stopped recordings not yet ready, oldest first.
pub(super) const FINISHING: DocTable<(u64, String), ()> = DocTable::new("recordings_finishing");
/// `webhooks`: whether the last command that knew said webhooks are
/// configured (every control-plane node has the same `[[webhooks]]`), for
/// the commands that do not carry it (a policy change).
pub(super) const META: DocTable<str, bool> = DocTable::new("recordings_meta");

/// A string key's text back from its bytes (without the terminating zero).
pub(super) fn decode_id(key: &[u8]) -> Result<String, DbError> {
    let bad = || DbError::Inconsistent(format!("recording index key of {} bytes", key.len()));
    let text = key.strip_suffix(&[0]).ok_or_else(bad)?;
    String::from_utf8(text.to_vec()).map_err(|_| bad())
}

/// A (time, id) key suffix back from its bytes.
pub(super) fn decode_time_id(key: &[u8]) -> Result<(u64, String), DbError> {
    let bad = || DbError::Inconsistent(format!("recording index key of {} bytes", key.len()));
    let at = u64::from_be_bytes(
        key.get(..8)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    Ok((at, decode_id(&key[8..])?))
}

/// The recording with this id.
pub(crate) fn recording(
    d: &(impl Docs + ?Sized),
    id: &RecordingId,
) -> Result<Option<Recording>, DbError> {
    RECORDINGS.get(d, id.as_str())
}

/// Up to `limit` recordings whose (time, id) keys in `table` under
/// `prefix` have a time before `before_ms`, newest first.
fn newest<K: DocKey + ?Sized>(
    d: &(impl Docs + ?Sized),
    table: &DocTable<K, ()>,
    prefix: &[u8],
    before_ms: Option<u64>,
    limit: usize,
) -> Result<Vec<Recording>, DbError> {
    let mut out = Vec::new();
    // Keys only, newest first: the ones at or after `before` are skipped
    // without reading their recordings.
    for (key, ()) in table.scan_keys(d, prefix, true, usize::MAX)? {
        if out.len() >= limit {
            break;
        }
        let (at, id) = decode_time_id(&key[prefix.len()..])?;
        if before_ms.is_some_and(|b| at >= b) {
            continue;
        }
        if let Some(r) = RECORDINGS.get(d, &id)? {
            out.push(r);
        }
    }
    Ok(out)
}

/// A room's recordings started before `before_ms`, newest first.
pub(crate) fn room_recordings(
    d: &(impl Docs + ?Sized),
    room: RoomId,
    before_ms: Option<u64>,
    limit: usize,
) -> Result<Vec<Recording>, DbError> {
    newest(d, &BY_ROOM, &room.0.key_bytes(), before_ms, limit)
}

/// The recordings of any of `rooms` started before `before_ms`, newest
/// first.
pub(crate) fn rooms_recordings(
    d: &(impl Docs + ?Sized),
    rooms: &[RoomId],
    before_ms: Option<u64>,
    limit: usize,
) -> Result<Vec<Recording>, DbError> {
    let mut all = Vec::new();
    for room in rooms {
        all.extend(room_recordings(d, *room, before_ms, limit)?);
    }
    all.sort_by(|a, b| (b.started_at_ms, &b.id).cmp(&(a.started_at_ms, &a.id)));
    all.truncate(limit);
    Ok(all)
}

/// Every recording started before `before_ms`, newest first.
pub(crate) fn all_recordings(
    d: &(impl Docs + ?Sized),
    before_ms: Option<u64>,
    limit: usize,
) -> Result<Vec<Recording>, DbError> {
    newest(d, &BY_START, &[], before_ms, limit)
}

/// Up to `limit` recordings that stopped before `stopped_before_ms`,
/// oldest first: what retention deletes.
pub(crate) fn expired(
    d: &(impl Docs + ?Sized),
    stopped_before_ms: u64,
    limit: usize,
) -> Result<Vec<RecordingId>, DbError> {
    let mut out = Vec::new();
    for (key, ()) in BY_STOP.scan_keys(d, &[], false, usize::MAX)? {
        let (at, id) = decode_time_id(&key)?;
        if at >= stopped_before_ms || out.len() >= limit {
            break;
        }
        if let Ok(id) = id.parse() {
            out.push(id);
        }
    }
    Ok(out)
}

/// The nodes that still write a file of some recording, or whose last
/// report a stopped recording awaits: the dead-node duty's candidates
/// besides the nodes with open seats.
pub(crate) fn writing_nodes(d: &(impl Docs + ?Sized)) -> Result<Vec<NodeId>, DbError> {
    let mut rows = WRITING.scan_keys(d, &[], false, usize::MAX)?;
    rows.extend(AWAITING.scan_keys(d, &[], false, usize::MAX)?);
    let nodes: BTreeSet<u64> = rows
        .iter()
        .filter_map(|(k, ())| k.get(..8)?.try_into().ok().map(u64::from_be_bytes))
        .collect();
    Ok(nodes.into_iter().map(NodeId).collect())
}

/// When the oldest stopped recording that is not ready yet stopped: the
/// leader's duty proposes [`RecordingCommand::StopWaiting`] once
/// `DONE_WAIT_MS` has passed since.
pub(crate) fn oldest_finishing(d: &(impl Docs + ?Sized)) -> Result<Option<UnixMillis>, DbError> {
    Ok(match FINISHING.scan_keys(d, &[], false, 1)?.first() {
        Some((key, ())) => Some(decode_time_id(key)?.0),
        None => None,
    })
}
