//! The recordings index: every recording, its files and their uploaded
//! segments, through Raft.
//!
//! Written once against the document tables ([`super::docs`]), so the Raft
//! state machine and [`super::MemStore`] run this same code.
//!
//! - A recording enters the index in the same entry as the policy change
//!   that starts it, and is marked stopped in the entry that stops it
//!   (`policies.rs` calls [`on_policy_change`]); a meeting's end stops a
//!   running recording the same way (`capabilities.rs`). So the index never
//!   lags the policy nodes record by.
//! - Media nodes report what they uploaded ([`RecordingCommand::Report`],
//!   one entry per report); each (file, seq) is applied once, so their
//!   retries change nothing. A report about a recording that is not here
//!   (deleted, or never started) is answered `Gone`.
//!   Files are announced when they start, and files reported after the
//!   stop (even after ready) are still added, up to the bound.
//! - At the stop, the index awaits the last report (`done`) of every node
//!   hosting the room then (its open seats in the statistics, or the node
//!   whose last leave ended the meeting) and of every node with a file
//!   still writing, less those that already said done.
//! - A node that dies leaves its files still writing: they are marked
//!   interrupted, and its done is no longer awaited
//!   ([`RecordingCommand::NodeLost`], and with the statistics' own
//!   `NodeLost` and a node's restart, `capabilities.rs`). A node that never
//!   says done is given up on `DONE_WAIT_MS` after the stop
//!   ([`RecordingCommand::StopWaiting`], the leader's duty).
//! - Ready = stopped, no node awaited, and every file complete or
//!   interrupted; becoming ready stores the `recording_ready` webhook event
//!   in the same apply, once.
//!
//! Keys: recordings by id; (room, start, id) and (start, id) for the lists,
//! newest first; (stop, id) for retention; (node, id) for the recordings a
//! node still writes files of, and for those awaiting its done; (stop, id)
//! for the stopped recordings not yet ready (the wait's duty).

use super::access::DocAccess;
use super::db::DbError;
use super::docs::{DocKey, DocsMut};
use super::error::StoreError;
use super::model::{Command, CommandOutput};
use super::seam;
use std::collections::BTreeSet;
use std::future::Future;
use veche_protocol::limits::recording::{
    MAX_FILES_PER_RECORDING, MAX_NAME_CHARS, MAX_SEGMENTS_PER_FILE,
};
use veche_protocol::recording::{
    ActiveRecording, FileState, RecordingId, RecordingReport, RecordingReportReply,
};
use veche_protocol::stats::{MeetingId, WebhookEvent, WebhookKind, WebhookRecording};
use veche_protocol::{NodeId, RoomId, RoomSlug, UnixMillis, UserId};

pub use super::recording_model::{RecordedFile, Recording, RecordingCommand, RecordingOutput};
pub(crate) use super::recordings_read::{
    all_recordings, expired, oldest_finishing, recording, room_recordings, rooms_recordings,
    writing_nodes,
};
use super::recordings_read::{
    decode_id, decode_time_id, AWAITING, BY_ROOM, BY_START, BY_STOP, FINISHING, META, RECORDINGS,
    WRITING,
};

type Applied = Result<RecordingOutput, DbError>;

/// Applies one recording command.
pub(crate) fn apply(d: &mut (impl DocsMut + ?Sized), cmd: RecordingCommand) -> Applied {
    match cmd {
        RecordingCommand::Report { report, webhooks } => {
            set_webhooks(d, webhooks)?;
            Ok(RecordingOutput::Report(apply_report(d, report)?))
        }
        RecordingCommand::Delete { id } => Ok(RecordingOutput::Deleted(delete(d, &id)?)),
        RecordingCommand::NodeLost { node_id, webhooks } => {
            set_webhooks(d, webhooks)?;
            Ok(RecordingOutput::Interrupted(node_lost(d, node_id)?))
        }
        RecordingCommand::StopWaiting { at_ms, webhooks } => {
            set_webhooks(d, webhooks)?;
            Ok(RecordingOutput::WaitsEnded(stop_waiting(d, at_ms)?))
        }
    }
}

/// Remembers whether webhooks are configured, writing only a change.
pub(crate) fn set_webhooks(d: &mut (impl DocsMut + ?Sized), on: bool) -> Result<(), DbError> {
    if META.get(d, "webhooks")? != Some(on) {
        META.put(d, "webhooks", &on)?;
    }
    Ok(())
}

/// The index's half of a policy change in `room` from `old` to `new`
/// running recording, in the same apply: a recording that stopped running
/// is marked stopped at `at_ms`, awaiting the nodes hosting the room (its
/// open seats) and `also_hosting` (the node whose last leave ended the
/// meeting); one that started running enters the index, started by
/// `started_by_user`'s account if known.
pub(crate) fn on_policy_change(
    d: &mut (impl DocsMut + ?Sized),
    room: RoomId,
    old: Option<&ActiveRecording>,
    new: Option<&ActiveRecording>,
    at_ms: UnixMillis,
    started_by_user: Option<UserId>,
    also_hosting: Option<NodeId>,
) -> Result<(), DbError> {
    let id = |a: Option<&ActiveRecording>| a.map(|a| a.id.clone());
    if let Some(o) = old {
        if id(new) != Some(o.id.clone()) {
            let mut hosting = super::stats::room_nodes(d, room)?;
            hosting.extend(also_hosting);
            stop(d, &o.id, at_ms, hosting)?;
        }
    }
    if let Some(n) = new {
        if id(old) != Some(n.id.clone()) && !RECORDINGS.contains(d, n.id.as_str())? {
            let rec = Recording {
                id: n.id.clone(),
                room_id: room,
                started_at_ms: n.started_at_ms,
                started_by: n.started_by.clone(),
                started_by_name: n.started_by_name.clone(),
                started_by_user,
                stopped_at_ms: None,
                files: Vec::new(),
                ready: false,
                awaiting: BTreeSet::new(),
                done_nodes: BTreeSet::new(),
            };
            RECORDINGS.put(d, rec.id.as_str(), &rec)?;
            BY_ROOM.put(d, &(room.0, (rec.started_at_ms, rec.id.to_string())), &())?;
            BY_START.put(d, &(rec.started_at_ms, rec.id.to_string()), &())?;
        }
    }
    Ok(())
}

/// Marks a recording stopped at `at_ms` (never before its start),
/// awaiting the last report of the `hosting` nodes and of every node with
/// a file still writing, less those that already said done; a stopped or
/// unknown one is left alone.
fn stop(
    d: &mut (impl DocsMut + ?Sized),
    id: &RecordingId,
    at_ms: UnixMillis,
    hosting: BTreeSet<NodeId>,
) -> Result<(), DbError> {
    let Some(mut rec) = RECORDINGS.get(d, id.as_str())? else {
        return Ok(());
    };
    if rec.stopped_at_ms.is_some() {
        return Ok(());
    }
    let at = at_ms.max(rec.started_at_ms);
    rec.stopped_at_ms = Some(at);
    BY_STOP.put(d, &(at, id.to_string()), &())?;
    let writing = rec
        .files
        .iter()
        .filter(|f| f.state() == FileState::Writing)
        .map(|f| f.node_id);
    rec.awaiting = hosting
        .into_iter()
        .chain(writing)
        .filter(|n| !rec.done_nodes.contains(n))
        .collect();
    settle(d, &mut rec)?;
    save(d, &rec, &BTreeSet::new())
}

/// Stores `rec` with its [`AWAITING`] and [`FINISHING`] rows true to it;
/// `awaited_before` is the awaited set it was read with.
fn save(
    d: &mut (impl DocsMut + ?Sized),
    rec: &Recording,
    awaited_before: &BTreeSet<NodeId>,
) -> Result<(), DbError> {
    let key = rec.id.to_string();
    for n in awaited_before.difference(&rec.awaiting) {
        AWAITING.remove(d, &(n.0, key.clone()))?;
    }
    for n in rec.awaiting.difference(awaited_before) {
        AWAITING.put(d, &(n.0, key.clone()), &())?;
    }
    if let Some(at) = rec.stopped_at_ms {
        if rec.ready {
            FINISHING.remove(d, &(at, key))?;
        } else {
            FINISHING.put(d, &(at, key), &())?;
        }
    }
    RECORDINGS.put(d, rec.id.as_str(), rec)
}

/// Applies a node's report: new files (up to [`MAX_FILES_PER_RECORDING`],
/// also after the stop or ready), new segments (each seq once, up to
/// [`MAX_SEGMENTS_PER_FILE`]), ends, and the node's done.
fn apply_report(
    d: &mut (impl DocsMut + ?Sized),
    report: RecordingReport,
) -> Result<RecordingReportReply, DbError> {
    let Some(mut rec) = RECORDINGS.get(d, report.recording_id.as_str())? else {
        return Ok(RecordingReportReply::Gone);
    };
    if rec.room_id != report.room_id {
        return Ok(RecordingReportReply::Gone);
    }
    let awaited_before = rec.awaiting.clone();
    let node = report.node_id;
    for f in report.files {
        let at = match rec.files.iter().position(|x| x.file_id == f.file_id) {
            Some(i) if rec.files[i].node_id == report.node_id => i,
            // Another node's file id: not this node's to change.
            Some(_) => continue,
            None if rec.files.len() >= MAX_FILES_PER_RECORDING => continue,
            None => {
                // A new file: the node records (again), so a done it said
                // before (its room closed there) is over.
                rec.done_nodes.remove(&node);
                rec.files.push(RecordedFile {
                    file_id: f.file_id,
                    participant_id: f.participant_id,
                    display_name: f.display_name.chars().take(MAX_NAME_CHARS).collect(),
                    source: f.source,
                    offset_ms: f.offset_ms,
                    node_id: report.node_id,
                    segments: Vec::new(),
                    end: None,
                    interrupted: false,
                });
                rec.files.len() - 1
            }
        };
        let file = &mut rec.files[at];
        for seg in f.segments {
            if file.segments.len() >= MAX_SEGMENTS_PER_FILE {
                break;
            }
            if let Err(i) = file.segments.binary_search_by_key(&seg.seq, |s| s.seq) {
                file.segments.insert(i, seg);
            }
        }
        if file.end.is_none() {
            if let Some(end) = f.end {
                file.end = Some(end);
                file.interrupted = false;
            }
        }
    }
    if report.done {
        // Nothing more comes from this node: a file it left unended is
        // all there is (an end reported later still completes it).
        for f in rec.files.iter_mut() {
            if f.node_id == node && f.state() == FileState::Writing {
                f.interrupted = true;
            }
        }
        rec.done_nodes.insert(node);
        rec.awaiting.remove(&node);
    }
    sync_writing(d, &rec)?;
    settle(d, &mut rec)?;
    save(d, &rec, &awaited_before)?;
    Ok(RecordingReportReply::Stored)
}

/// Keeps [`WRITING`] true to `rec`: a (node, id) row exactly for each
/// node with a file of `rec` still writing.
fn sync_writing(d: &mut (impl DocsMut + ?Sized), rec: &Recording) -> Result<(), DbError> {
    let nodes: BTreeSet<u64> = rec.files.iter().map(|f| f.node_id.0).collect();
    for node in nodes {
        let writing = rec
            .files
            .iter()
            .any(|f| f.node_id.0 == node && f.end.is_none() && !f.interrupted);
        let key = (node, rec.id.to_string());
        if writing {
            WRITING.put(d, &key, &())?;
        } else {
            WRITING.remove(d, &key)?;
        }
    }
    Ok(())
}

/// Marks `rec` ready if it now is, storing the `recording_ready` event
/// when webhooks are configured. The caller stores `rec`.
fn settle(d: &mut (impl DocsMut + ?Sized), rec: &mut Recording) -> Result<(), DbError> {
    if rec.ready || !rec.is_settled() {
        return Ok(());
    }
    rec.ready = true;
    if META.get(d, "webhooks")? == Some(true) {
        ready_event(d, rec)?;
    }
    Ok(())
}

/// Stores the `recording_ready` event of `rec`, with the room's name and
/// slug and the meeting as the statistics know them (the room's last
/// meeting: the one recorded).
fn ready_event(d: &mut (impl DocsMut + ?Sized), rec: &Recording) -> Result<(), DbError> {
    let meeting = match super::stats::ROOM_LAST.get(d, &rec.room_id.0)? {
        Some(id) => super::stats::MEETINGS.get(d, &id)?,
        None => None,
    };
    let (meeting_id, room_name, room_slug) = match meeting {
        Some(m) => (m.id, m.room_name, m.room_slug),
        None => (MeetingId(0), String::new(), RoomSlug::from_random([0; 16])),
    };
    let recording = WebhookRecording {
        recording_id: rec.id.clone(),
        duration_ms: rec.duration_ms(),
        files: rec.files.len() as u32,
    };
    let at_ms = rec.stopped_at_ms.unwrap_or(rec.started_at_ms);
    super::outbox::push(d, |id| WebhookEvent {
        id,
        kind: WebhookKind::RecordingReady,
        at_ms,
        meeting_id,
        room_id: rec.room_id,
        room_name,
        room_slug,
        participant: None,
        recording: Some(recording),
    })
}

/// Marks every file `node` still writes interrupted and stops awaiting
/// its last reports; returns how many files.
pub(crate) fn node_lost(d: &mut (impl DocsMut + ?Sized), node: NodeId) -> Result<u64, DbError> {
    let prefix = node.0.key_bytes();
    let mut ids = BTreeSet::new();
    for (key, ()) in WRITING.scan_keys(d, &prefix, false, usize::MAX)? {
        let id = decode_id(&key[8..])?;
        WRITING.remove(d, &(node.0, id.clone()))?;
        ids.insert(id);
    }
    for (key, ()) in AWAITING.scan_keys(d, &prefix, false, usize::MAX)? {
        ids.insert(decode_id(&key[8..])?);
    }
    let mut interrupted = 0;
    for id in ids {
        let Some(mut rec) = RECORDINGS.get(d, &id)? else {
            continue;
        };
        let awaited_before = rec.awaiting.clone();
        for f in rec.files.iter_mut() {
            if f.node_id == node && f.state() == FileState::Writing {
                f.interrupted = true;
                interrupted += 1;
            }
        }
        rec.awaiting.remove(&node);
        settle(d, &mut rec)?;
        save(d, &rec, &awaited_before)?;
    }
    Ok(interrupted)
}

/// Every recording whose wait for its nodes is over at `at_ms`
/// ([`Recording::wait_is_over`]) stops waiting: its files still writing
/// are interrupted and it becomes ready. Returns how many.
fn stop_waiting(d: &mut (impl DocsMut + ?Sized), at_ms: UnixMillis) -> Result<u64, DbError> {
    let mut ended = 0;
    for (key, ()) in FINISHING.scan_keys(d, &[], false, usize::MAX)? {
        let (_, id) = decode_time_id(&key)?;
        let Some(mut rec) = RECORDINGS.get(d, &id)? else {
            continue;
        };
        if !rec.wait_is_over(at_ms) {
            // Oldest stop first: the rest stopped later still.
            break;
        }
        let awaited_before = std::mem::take(&mut rec.awaiting);
        for f in rec.files.iter_mut() {
            if f.state() == FileState::Writing {
                f.interrupted = true;
            }
        }
        sync_writing(d, &rec)?;
        settle(d, &mut rec)?;
        save(d, &rec, &awaited_before)?;
        ended += 1;
    }
    Ok(ended)
}

/// Removes a recording and its index rows; whether it was there.
fn delete(d: &mut (impl DocsMut + ?Sized), id: &RecordingId) -> Result<bool, DbError> {
    let Some(rec) = RECORDINGS.get(d, id.as_str())? else {
        return Ok(false);
    };
    let key = id.to_string();
    BY_ROOM.remove(d, &(rec.room_id.0, (rec.started_at_ms, key.clone())))?;
    BY_START.remove(d, &(rec.started_at_ms, key.clone()))?;
    if let Some(at) = rec.stopped_at_ms {
        BY_STOP.remove(d, &(at, key.clone()))?;
        FINISHING.remove(d, &(at, key.clone()))?;
    }
    for node in &rec.awaiting {
        AWAITING.remove(d, &(node.0, key.clone()))?;
    }
    for node in rec
        .files
        .iter()
        .map(|f| f.node_id.0)
        .collect::<BTreeSet<_>>()
    {
        WRITING.remove(d, &(node, key.clone()))?;
    }
    RECORDINGS.remove(d, id.as_str())?;
    Ok(true)
}

/// The recordings index as the API uses it. Implemented once for every
/// store ([`DocAccess`]); the contract is checked by the conformance cases
/// in `conformance_recordings.rs` on every store.
pub trait RecordingStore: DocAccess {
    /// Runs a recording command.
    fn recording_command(
        &self,
        cmd: RecordingCommand,
    ) -> impl Future<Output = Result<RecordingOutput, StoreError>> + Send {
        async move {
            seam::expect(
                self.commit(Command::Recordings(cmd)).await?,
                "a recording command",
                |o| match o {
                    CommandOutput::Recordings(r) => Ok(*r),
                    other => Err(other),
                },
            )
        }
    }

    /// The recording with this id.
    fn recording(
        &self,
        id: RecordingId,
    ) -> impl Future<Output = Result<Option<Recording>, StoreError>> + Send {
        self.read_docs(move |d| recording(d, &id))
    }

    /// Up to `limit` of `room`'s recordings started before `before_ms`,
    /// newest first.
    fn room_recordings(
        &self,
        room: RoomId,
        before_ms: Option<u64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Recording>, StoreError>> + Send {
        self.read_docs(move |d| room_recordings(d, room, before_ms, limit))
    }

    /// Up to `limit` recordings of any of `rooms`, newest first: one read.
    fn rooms_recordings(
        &self,
        rooms: Vec<RoomId>,
        before_ms: Option<u64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Recording>, StoreError>> + Send {
        self.read_docs(move |d| rooms_recordings(d, &rooms, before_ms, limit))
    }

    /// Up to `limit` recordings of every room, newest first.
    fn all_recordings(
        &self,
        before_ms: Option<u64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Recording>, StoreError>> + Send {
        self.read_docs(move |d| all_recordings(d, before_ms, limit))
    }

    /// Stores a node's report: `Gone` when the recording is not indexed
    /// (deleted, or never started), so the node stops writing it.
    fn report_recording(
        &self,
        report: RecordingReport,
        webhooks: bool,
    ) -> impl Future<Output = Result<RecordingReportReply, StoreError>> + Send {
        async move {
            match self
                .recording_command(RecordingCommand::Report { report, webhooks })
                .await?
            {
                RecordingOutput::Report(r) => Ok(r),
                other => Err(StoreError::Inconsistent(format!(
                    "a report was answered with {other:?}"
                ))),
            }
        }
    }

    /// Forgets a recording (the index only: delete its objects first);
    /// whether it was there.
    fn delete_recording(
        &self,
        id: RecordingId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async move {
            match self
                .recording_command(RecordingCommand::Delete { id })
                .await?
            {
                RecordingOutput::Deleted(found) => Ok(found),
                other => Err(StoreError::Inconsistent(format!(
                    "a deletion was answered with {other:?}"
                ))),
            }
        }
    }

    /// Up to `limit` recordings stopped before `stopped_before_ms`,
    /// oldest first.
    fn expired_recordings(
        &self,
        stopped_before_ms: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordingId>, StoreError>> + Send {
        self.read_docs(move |d| expired(d, stopped_before_ms, limit))
    }

    /// When the oldest stopped recording that is not ready stopped.
    fn oldest_finishing_recording(
        &self,
    ) -> impl Future<Output = Result<Option<UnixMillis>, StoreError>> + Send {
        self.read_docs(|d| oldest_finishing(d))
    }

    /// Stops waiting for the nodes of every recording stopped at least
    /// `DONE_WAIT_MS` before `at_ms`; how many recordings that settled.
    fn stop_waiting_for_nodes(
        &self,
        at_ms: UnixMillis,
        webhooks: bool,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async move {
            match self
                .recording_command(RecordingCommand::StopWaiting { at_ms, webhooks })
                .await?
            {
                RecordingOutput::WaitsEnded(n) => Ok(n),
                other => Err(StoreError::Inconsistent(format!(
                    "stopping the wait was answered with {other:?}"
                ))),
            }
        }
    }

    /// The nodes still writing a file of some recording, or awaited.
    fn recording_nodes(&self) -> impl Future<Output = Result<Vec<NodeId>, StoreError>> + Send {
        self.read_docs(|d| writing_nodes(d))
    }
}

impl<S: DocAccess + ?Sized> RecordingStore for S {}

#[cfg(test)]
#[path = "recordings_tests.rs"]
mod tests;
