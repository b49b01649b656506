//! The room's side of recording: while its policy names a running
//! recording (and this node has recording storage), the room keeps a
//! [`RoomRecorder`] in step with its local tracks and participants. Only
//! this node's publishers are recorded here (`Origin::Local`); relayed
//! stand-ins are recorded by their publishers' nodes. A moderator's hold
//! withholds a track from the recorder like from anyone: a gap.

use super::{Inner, Room};
use crate::recorder::room::{LiveTrack, RecorderEnv, RoomRecorder};
use crate::track::Origin;
use std::collections::HashSet;

impl Room {
    /// Lets the room record when its policy says so. Called once, by the
    /// node, when it creates the room.
    pub fn enable_recording(&self, env: RecorderEnv) {
        let _ = self.recorder_env.set(env);
        let mut inner = self.lock();
        self.sync_recording(&mut inner);
    }

    /// Starts, stops or updates the room's recorder after a change of
    /// policy, tracks or participants.
    pub(super) fn sync_recording(&self, inner: &mut Inner) {
        let Some(env) = self.recorder_env.get() else {
            return;
        };
        let wanted = inner.policy.as_ref().and_then(|p| p.recording.clone());
        let running = inner.recorder.as_ref().map(|r| r.recording().id.clone());
        if running.is_some() && running != wanted.as_ref().map(|w| w.id.clone()) {
            if let Some(mut r) = inner.recorder.take() {
                r.stop();
            }
        }
        let Some(wanted) = wanted else {
            inner.refused_recording = None;
            return;
        };
        if inner.recorder.is_none() {
            if inner.refused_recording.as_ref() == Some(&wanted.id) {
                return;
            }
            match RoomRecorder::new(wanted.clone(), self.info.id, env.clone()) {
                Some(r) => inner.recorder = Some(r),
                None => {
                    // Logged and counted once per recording.
                    inner.refused_recording = Some(wanted.id);
                    return;
                }
            }
        }
        let present: HashSet<_> = inner.seats.keys().cloned().collect();
        let tracks = inner
            .tracks
            .values()
            .filter(|t| t.origin() == Origin::Local && present.contains(&t.publisher))
            .map(|t| LiveTrack {
                track: t.clone(),
                display_name: inner
                    .core
                    .participant(&t.publisher)
                    .map(|p| p.display_name.clone())
                    .unwrap_or_default(),
            })
            .collect();
        if let Some(r) = inner.recorder.as_mut() {
            r.sync(tracks, &present);
        }
    }

    /// The files being recorded here: (participant, source, file).
    pub fn recorded_files(
        &self,
    ) -> Vec<(
        veche_protocol::ParticipantId,
        veche_protocol::recording::RecordedSource,
        veche_protocol::recording::FileId,
    )> {
        self.lock()
            .recorder
            .as_ref()
            .map(|r| r.files())
            .unwrap_or_default()
    }

    /// Ends the room's recording here (the room closes on this node).
    pub(super) fn stop_recording(&self, inner: &mut Inner) {
        if let Some(mut r) = inner.recorder.take() {
            r.stop();
        }
    }
}
