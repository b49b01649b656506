//! A room's recorder: which files are being written for which of this
//! node's publishers, kept in step with the room by a diff.
//!
//! The room calls [`RoomRecorder::sync`] under its lock after anything
//! that changes its local tracks or participants, with the tracks of this
//! node's publishers (never relayed stand-ins) and who is present. The
//! recorder then, per participant and source (camera + microphone, or
//! screen + screen audio):
//! - starts a file when there is none;
//! - when a track of that source appears that the file does not have,
//!   ends the file and starts a new one (a file's track set is fixed), or,
//!   if the file is younger than [`RecorderEnv::restart_grace`] (camera and microphone
//!   arrive a moment apart at a join), drops it and starts again;
//! - when a track goes, stops feeding it (the file has a gap);
//! - when the participant left, ends their files.
//!
//! Every call only attaches or detaches queues and signals tasks, so it
//! never blocks the room.

use super::reporter::{DoneMarker, Reporter};
use super::task::{self, FileCtx, FileHandle};
use super::RecordingStorage;
use crate::metrics::RecorderMetrics;
use crate::track::UpTrack;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tracing::{info, warn};
use veche_protocol::limits::recording::MAX_FILES_PER_NODE;
use veche_protocol::recording::{ActiveRecording, FileId, RecordedSource};
use veche_protocol::signal::TrackSource;
use veche_protocol::{NodeId, ParticipantId, RoomId, TrackId};

/// What a room needs from its node to record.
#[derive(Clone)]
pub struct RecorderEnv {
    /// This node.
    pub node_id: NodeId,
    /// Where recordings go; `None` when the node has no storage.
    pub storage: Option<RecordingStorage>,
    /// The node's report queue.
    pub reporter: Reporter,
    /// The recorder's metrics.
    pub metrics: RecorderMetrics,
    /// A file younger than this that gets a new track is dropped and
    /// started again rather than kept as a file of its own (normally
    /// [`super::file::KEYFRAME_WAIT`]: camera and microphone arrive a moment apart).
    /// A file is announced to the control plane only once it is this old,
    /// so a dropped file leaves no trace in the index.
    pub restart_grace: std::time::Duration,
}

/// The file a track belongs to.
pub fn recorded_source(source: TrackSource) -> RecordedSource {
    match source {
        TrackSource::Camera | TrackSource::Microphone => RecordedSource::Camera,
        TrackSource::Screen | TrackSource::ScreenAudio => RecordedSource::Screen,
    }
}

/// A file's place: whose, and which media.
type FileKey = (ParticipantId, RecordedSource);

/// A local track to record, with its publisher's name.
pub struct LiveTrack {
    /// The track.
    pub track: Arc<UpTrack>,
    /// Its publisher's display name.
    pub display_name: String,
}

/// One recording running in one room on this node.
pub struct RoomRecorder {
    recording: ActiveRecording,
    room_id: RoomId,
    env: RecorderEnv,
    storage: RecordingStorage,
    files: HashMap<FileKey, FileHandle>,
    /// Tracks each file is still fed.
    fed: HashMap<FileId, HashSet<TrackId>>,
    stopped: bool,
    /// Held until the recorder stops (each file holds a clone until its
    /// last report is queued): then the recording's `done` report goes.
    done: Option<Arc<DoneMarker>>,
}

fn random_file_id() -> FileId {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("system randomness");
    FileId::from_random(b)
}

impl RoomRecorder {
    /// A recorder for `recording` in room `room_id`, or `None` (logged and
    /// counted) when the node has no storage.
    pub fn new(recording: ActiveRecording, room_id: RoomId, env: RecorderEnv) -> Option<Self> {
        let Some(storage) = env.storage.clone() else {
            warn!(room = %room_id, recording = %recording.id,
                "the room is being recorded, but this node has no recording storage configured");
            env.metrics.refused.inc();
            return None;
        };
        info!(room = %room_id, recording = %recording.id, "recording starts");
        let done = DoneMarker::new(
            env.reporter.clone(),
            env.node_id,
            room_id,
            recording.id.clone(),
        );
        Some(RoomRecorder {
            recording,
            room_id,
            env,
            storage,
            files: HashMap::new(),
            fed: HashMap::new(),
            stopped: false,
            done: Some(done),
        })
    }

    /// The recording this recorder writes.
    pub fn recording(&self) -> &ActiveRecording {
        &self.recording
    }

    /// Brings the files in line with the room: `tracks` are the local
    /// tracks now, `present` the participants here now.
    pub fn sync(&mut self, tracks: Vec<LiveTrack>, present: &HashSet<ParticipantId>) {
        if self.stopped {
            return;
        }
        if self.env.reporter.is_gone(&self.recording.id) {
            // Deleted: nothing more is uploaded or reported.
            self.stopped = true;
            self.done = None;
            for (_, h) in self.files.drain() {
                h.abort();
            }
            return;
        }
        let mut groups: BTreeMap<FileKey, (Vec<Arc<UpTrack>>, String)> = BTreeMap::new();
        for t in tracks {
            let key = (
                t.track.publisher.clone(),
                recorded_source(t.track.info.source),
            );
            let g = groups
                .entry(key)
                .or_insert_with(|| (Vec::new(), t.display_name));
            g.0.push(t.track);
        }
        // Files whose participant left end; files whose tracks went have gaps.
        let keys: Vec<_> = self.files.keys().cloned().collect();
        for key in keys {
            if !present.contains(&key.0) {
                self.end(&key);
                continue;
            }
            let live: HashSet<TrackId> = groups
                .get(&key)
                .map(|g| g.0.iter().map(|t| t.info.id.clone()).collect())
                .unwrap_or_default();
            let h = &self.files[&key];
            let fed = self.fed.entry(h.file_id.clone()).or_default();
            for gone in fed.iter().filter(|t| !live.contains(*t)) {
                h.detach(gone);
            }
            fed.retain(|t| live.contains(t));
        }
        for (key, (tracks, name)) in groups {
            if let Some(h) = self.files.get(&key) {
                let new = tracks
                    .iter()
                    .any(|t| !h.tracks.iter().any(|o| o.info.id == t.info.id));
                if !new {
                    continue;
                }
                let h = self.files.remove(&key).expect("present");
                self.fed.remove(&h.file_id);
                if h.started.elapsed() < self.env.restart_grace {
                    h.abort();
                } else {
                    h.finish();
                }
            }
            if self.env.metrics.active.get() >= MAX_FILES_PER_NODE as i64 {
                warn!(room = %self.room_id, "too many recorded files on this node; not recording more");
                self.env.metrics.refused.inc();
                continue;
            }
            let Some(done) = self.done.clone() else {
                return;
            };
            let ctx = FileCtx {
                recording: self.recording.clone(),
                room_id: self.room_id,
                node_id: self.env.node_id,
                file_id: random_file_id(),
                participant_id: key.0.clone(),
                display_name: name,
                source: key.1,
                storage: self.storage.clone(),
                reporter: self.env.reporter.clone(),
                metrics: self.env.metrics.clone(),
                done,
                announce_after: self.env.restart_grace,
            };
            let ids = tracks.iter().map(|t| t.info.id.clone()).collect();
            let h = task::start(ctx, tracks);
            self.fed.insert(h.file_id.clone(), ids);
            self.files.insert(key, h);
        }
    }

    fn end(&mut self, key: &FileKey) {
        if let Some(h) = self.files.remove(key) {
            self.fed.remove(&h.file_id);
            h.finish();
        }
    }

    /// Ends every file: the recording stopped or the room closed. Once
    /// every file's last report is queued, the recording's `done` report
    /// follows.
    pub fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        info!(room = %self.room_id, recording = %self.recording.id, "recording stops");
        for (_, h) in self.files.drain() {
            h.finish();
        }
        self.fed.clear();
        self.done = None;
    }

    /// Files being written, by participant and source.
    pub fn files(&self) -> Vec<(ParticipantId, RecordedSource, FileId)> {
        self.files
            .iter()
            .map(|((p, s), h)| (p.clone(), *s, h.file_id.clone()))
            .collect()
    }
}

impl Drop for RoomRecorder {
    fn drop(&mut self) {
        self.stop();
    }
}
