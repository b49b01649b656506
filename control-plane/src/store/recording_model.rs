//! The data of the recordings index: a stored [`Recording`] with its
//! [`RecordedFile`]s, and the commands that change one. Apart from
//! `recordings.rs` (which applies and queries them) so that the command
//! model (`model.rs`) can name them without importing the code that needs
//! the model: no import cycle.
//!
//! The bytes of a recording are objects in the object store
//! (`veche_protocol::recording::segment_key`); only what is needed to find,
//! list, play and expire them is kept here, through Raft.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use veche_protocol::recording::{
    FileEnd, FileId, FileState, RecordedSource, RecordingId, RecordingReport, RecordingReportReply,
    RecordingState, SegmentInfo,
};
use veche_protocol::{NodeId, ParticipantId, RoomId, UnixMillis, UserId};

/// One recording: from "Start recording" to "Stop recording" (or the
/// meeting's end), with every file the nodes reported for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// Its id (chosen by the control plane when the start was proposed).
    pub id: RecordingId,
    /// The room recorded.
    pub room_id: RoomId,
    /// When the start committed (the media node's clock at the action).
    pub started_at_ms: UnixMillis,
    /// The participant who started it.
    pub started_by: ParticipantId,
    /// Their name then.
    pub started_by_name: String,
    /// Their account, if their join token named one: that account may view
    /// the recording afterwards without owning the room.
    pub started_by_user: Option<UserId>,
    /// When it stopped; `None` while it runs.
    pub stopped_at_ms: Option<UnixMillis>,
    /// Its files, in the order they were first reported.
    pub files: Vec<RecordedFile>,
    /// Stopped, no node's last report awaited, and every file complete or
    /// interrupted; the `recording_ready` webhook event was stored when
    /// this became true. Files reported afterwards are still added.
    pub ready: bool,
    /// Once stopped: the nodes whose last report (`done`) is still
    /// awaited. At the stop, the nodes hosting the room then and every node
    /// with a file still writing, less those that already said done; a
    /// node leaves it by saying done, by dying, or when the wait
    /// (`limits::recording::DONE_WAIT_MS`) is over. Without it a node that
    /// had not yet announced its files would find the recording ready
    /// without them.
    #[serde(default)]
    pub awaiting: BTreeSet<NodeId>,
    /// The nodes whose last report said done (and that announced no new
    /// file since: a room that closed on a node and opened there again
    /// records anew). A done that arrives before the stop commits is kept
    /// here so the stop does not wait for it.
    #[serde(default)]
    pub done_nodes: BTreeSet<NodeId>,
}

/// One recorded file: a participant's camera and microphone, or their
/// screen, written by the node hosting their publisher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFile {
    /// Its id (chosen by the node).
    pub file_id: FileId,
    /// Whose media.
    pub participant_id: ParticipantId,
    /// Their name when the file started.
    pub display_name: String,
    /// Which media.
    pub source: RecordedSource,
    /// Where it starts on the recording's timeline, in milliseconds.
    pub offset_ms: u64,
    /// The node writing it: if that node dies first, the file is
    /// interrupted.
    pub node_id: NodeId,
    /// Its uploaded segments, by `seq`.
    pub segments: Vec<SegmentInfo>,
    /// Set when its node finished it.
    pub end: Option<FileEnd>,
    /// Its node died (or restarted) before finishing it: the uploaded
    /// segments are all there is.
    pub interrupted: bool,
}

impl Recording {
    /// Recording while not stopped; finishing until every file is
    /// complete or interrupted; then ready.
    pub fn state(&self) -> RecordingState {
        if self.stopped_at_ms.is_none() {
            RecordingState::Recording
        } else if self.ready {
            RecordingState::Ready
        } else {
            RecordingState::Finishing
        }
    }

    /// Its length on the common timeline: the latest end of a file
    /// (offset plus duration).
    pub fn duration_ms(&self) -> u64 {
        self.files
            .iter()
            .map(|f| f.offset_ms.saturating_add(f.duration_ms()))
            .max()
            .unwrap_or(0)
    }

    /// Bytes of every file together.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(RecordedFile::bytes).sum()
    }

    /// The file with this id.
    pub fn file(&self, id: &FileId) -> Option<&RecordedFile> {
        self.files.iter().find(|f| &f.file_id == id)
    }

    /// Whether readiness holds now: stopped, no node's last report
    /// awaited, and no file still writing.
    pub fn is_settled(&self) -> bool {
        self.stopped_at_ms.is_some()
            && self.awaiting.is_empty()
            && self.files.iter().all(|f| f.state() != FileState::Writing)
    }

    /// Whether the wait for nodes' last reports is over at `now_ms`: the
    /// recording stopped at least [`DONE_WAIT_MS`] ago and is not ready.
    ///
    /// [`DONE_WAIT_MS`]: veche_protocol::limits::recording::DONE_WAIT_MS
    pub fn wait_is_over(&self, now_ms: UnixMillis) -> bool {
        !self.ready
            && self.stopped_at_ms.is_some_and(|at| {
                now_ms >= at.saturating_add(veche_protocol::limits::recording::DONE_WAIT_MS)
            })
    }
}

impl RecordedFile {
    /// Complete once ended; interrupted when its node died first;
    /// writing otherwise.
    pub fn state(&self) -> FileState {
        if self.end.is_some() {
            FileState::Complete
        } else if self.interrupted {
            FileState::Interrupted
        } else {
            FileState::Writing
        }
    }

    /// Its media duration: the end's, or the last segment's end so far.
    pub fn duration_ms(&self) -> u64 {
        match &self.end {
            Some(e) => e.duration_ms,
            None => self.segments.iter().map(|s| s.end_ms).max().unwrap_or(0),
        }
    }

    /// Its size: the end's, or the segments' so far.
    pub fn bytes(&self) -> u64 {
        match &self.end {
            Some(e) => e.bytes,
            None => self.segments.iter().map(|s| s.bytes).sum(),
        }
    }
}

/// A write to the recordings index. Starting and stopping are not here:
/// they happen in the same entry as the policy change that starts or stops
/// the recording (`policies.rs` calls `recordings::on_policy_change`), and
/// a meeting's end stops a running one (`capabilities.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordingCommand {
    /// A media node's report of files and segments it uploaded. Applied
    /// once per (file, seq): a retry changes nothing.
    Report {
        /// The report, validated by the RPC handler.
        report: RecordingReport,
        /// Also store the `recording_ready` webhook event when this makes
        /// the recording ready (webhooks are configured).
        #[serde(default)]
        webhooks: bool,
    },
    /// Forget a recording (its objects were deleted first). Deleting a
    /// deleted one changes nothing.
    Delete {
        /// The recording.
        id: RecordingId,
    },
    /// A media node died (or restarted): its files still writing are
    /// interrupted and its last reports are no longer awaited, which may
    /// make recordings ready. Idempotent.
    NodeLost {
        /// The node.
        node_id: NodeId,
        /// Also store webhook events, as in `Report`.
        #[serde(default)]
        webhooks: bool,
    },
    /// The leader's duty: every recording stopped at least
    /// `limits::recording::DONE_WAIT_MS` before `at_ms` and not ready stops
    /// waiting for its nodes; their files still writing are interrupted.
    /// The time is carried so every replica decides the same.
    /// Idempotent: a second apply finds nothing waiting that long.
    StopWaiting {
        /// The leader's clock when it proposed this.
        at_ms: UnixMillis,
        /// Also store webhook events, as in `Report`.
        #[serde(default)]
        webhooks: bool,
    },
}

impl RecordingCommand {
    /// Every recording command may be applied twice with the effect of
    /// once: segments are keyed by (file, seq), a deletion finds nothing
    /// the second time, and a lost node has nothing left writing.
    pub fn is_idempotent(&self) -> bool {
        true
    }
}

/// What a recording command answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordingOutput {
    /// The answer to a report.
    Report(RecordingReportReply),
    /// Whether a deletion found the recording.
    Deleted(bool),
    /// How many files a lost node left interrupted.
    Interrupted(u64),
    /// How many recordings stopped waiting for their nodes.
    WaitsEnded(u64),
}
