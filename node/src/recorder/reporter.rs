//! The node's reports to the control plane about what its recorders
//! uploaded: one queue for the whole node, sent in order, each report
//! until acknowledged (the control plane applies each segment once, so a
//! repeat is harmless). A file's last report, once acknowledged, lets its
//! spool file go. A `Gone` answer (the recording was deleted) stops that
//! recording here and drops its spool.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tracing::{info, warn};
use veche_protocol::recording::{RecordingId, RecordingReport, RecordingReportReply};
use veche_protocol::{NodeId, RoomId};

/// Where reports go: the control plane's RPC, or a test's recorder.
#[async_trait::async_trait]
pub trait ReportSink: Send + Sync {
    /// Sends one report; `Err` means "try again later".
    async fn send(&self, report: &RecordingReport) -> Result<RecordingReportReply, String>;
}

#[async_trait::async_trait]
impl ReportSink for crate::cp_client::ControlPlaneClient {
    async fn send(&self, report: &RecordingReport) -> Result<RecordingReportReply, String> {
        self.recording_report(report).await.map_err(|e| e.message)
    }
}

struct Pending {
    report: RecordingReport,
    /// Deleted once the report is acknowledged (a finished file's spool).
    delete_after: Option<PathBuf>,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Pending>,
    gone: HashSet<RecordingId>,
}

/// The node-wide report queue. Cheap to clone.
#[derive(Clone, Default)]
pub struct Reporter {
    inner: Arc<Mutex<Inner>>,
    wake: Arc<Notify>,
}

/// Wait between attempts while the control plane does not answer.
const RETRY: Duration = Duration::from_secs(1);

impl Reporter {
    /// Queues a report; `delete_after` is removed once it is acknowledged.
    pub fn push(&self, report: RecordingReport, delete_after: Option<PathBuf>) {
        self.inner
            .lock()
            .expect("lock poisoned")
            .queue
            .push_back(Pending {
                report,
                delete_after,
            });
        self.wake.notify_one();
    }

    /// Whether the control plane said this recording is gone.
    pub fn is_gone(&self, id: &RecordingId) -> bool {
        self.inner.lock().expect("lock poisoned").gone.contains(id)
    }

    /// Reports not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.inner.lock().expect("lock poisoned").queue.len()
    }

    /// The reports not yet acknowledged, oldest first.
    pub fn queued(&self) -> Vec<RecordingReport> {
        let inner = self.inner.lock().expect("lock poisoned");
        inner.queue.iter().map(|p| p.report.clone()).collect()
    }

    /// Sends queued reports forever, in order, each until acknowledged.
    /// `spool_dir` is where a gone recording's spool files are deleted.
    pub async fn run(self, sink: Arc<dyn ReportSink>, spool_dir: PathBuf) {
        clear_old_spool(&spool_dir).await;
        let mut failing = false;
        loop {
            let next = {
                let inner = self.inner.lock().expect("lock poisoned");
                inner.queue.front().map(|p| p.report.clone())
            };
            let Some(report) = next else {
                self.wake.notified().await;
                continue;
            };
            match sink.send(&report).await {
                Ok(reply) => {
                    if failing {
                        info!("recording reports reach the control plane again");
                        failing = false;
                    }
                    let done = {
                        let mut inner = self.inner.lock().expect("lock poisoned");
                        if reply == RecordingReportReply::Gone {
                            inner.gone.insert(report.recording_id.clone());
                        }
                        inner.queue.pop_front()
                    };
                    if reply == RecordingReportReply::Gone {
                        info!(recording = %report.recording_id, "recording gone: dropping its spool");
                        self.inner
                            .lock()
                            .expect("lock poisoned")
                            .queue
                            .retain(|p| p.report.recording_id != report.recording_id);
                        let dir = spool_dir.join(report.recording_id.as_str());
                        let _ = tokio::fs::remove_dir_all(dir).await;
                    } else if let Some(path) = done.and_then(|p| p.delete_after) {
                        let _ = tokio::fs::remove_file(&path).await;
                    }
                }
                Err(e) => {
                    if !failing {
                        warn!(recording = %report.recording_id, "recording report failed: {e}");
                        failing = true;
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

/// A recording's `done` report, queued when the last holder lets go. The
/// room's recorder holds it until it stops, and every file's task and
/// uploader until they queued the file's last report; so `done` follows
/// every file's end in the (ordered) queue, comes once per recorder, and
/// comes even when nothing was recorded. The control plane waits for it
/// from every node that hosted the room before it calls the recording
/// ready.
pub struct DoneMarker {
    reporter: Reporter,
    node_id: NodeId,
    room_id: RoomId,
    recording_id: RecordingId,
}

impl DoneMarker {
    /// A marker for `recording_id` in room `room_id` on node `node_id`.
    pub fn new(
        reporter: Reporter,
        node_id: NodeId,
        room_id: RoomId,
        recording_id: RecordingId,
    ) -> Arc<Self> {
        Arc::new(DoneMarker {
            reporter,
            node_id,
            room_id,
            recording_id,
        })
    }
}

impl Drop for DoneMarker {
    fn drop(&mut self) {
        // A deleted recording waits for nothing.
        if self.reporter.is_gone(&self.recording_id) {
            return;
        }
        self.reporter.push(
            RecordingReport {
                node_id: self.node_id,
                room_id: self.room_id,
                recording_id: self.recording_id.clone(),
                files: Vec::new(),
                done: true,
            },
            None,
        );
    }
}

/// Deletes what an earlier run of the node left in the spool: its files
/// can no longer be finished (the control plane marks them interrupted;
/// what was uploaded stays). Only folders named like a recording id are
/// touched, so a spool directory shared with anything else is safe.
async fn clear_old_spool(spool_dir: &std::path::Path) {
    let Ok(mut dir) = tokio::fs::read_dir(spool_dir).await else {
        return;
    };
    while let Ok(Some(entry)) = dir.next_entry().await {
        let name = entry.file_name();
        let is_recording = name
            .to_str()
            .is_some_and(|n| n.parse::<RecordingId>().is_ok());
        if is_recording {
            info!(dir = %entry.path().display(), "removing an earlier run's recording spool");
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::eventually;
    use veche_protocol::recording::{FileId, FileReport, RecordedSource};
    use veche_protocol::ParticipantId;

    /// A control plane in memory: fails the first `fail` calls, then
    /// answers `reply`; keeps what it was sent.
    struct Plane {
        fail: Mutex<u32>,
        reply: RecordingReportReply,
        got: Mutex<Vec<RecordingReport>>,
    }

    #[async_trait::async_trait]
    impl ReportSink for Plane {
        async fn send(&self, r: &RecordingReport) -> Result<RecordingReportReply, String> {
            self.got.lock().unwrap().push(r.clone());
            let mut fail = self.fail.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err("unavailable".into());
            }
            Ok(self.reply)
        }
    }

    fn report(rec: u8) -> RecordingReport {
        RecordingReport {
            node_id: NodeId(1),
            room_id: RoomId(1),
            recording_id: RecordingId::from_random([rec; 8]),
            files: vec![FileReport {
                file_id: FileId::from_random([1; 8]),
                participant_id: ParticipantId::from_random([1; 8]),
                display_name: "Ann".into(),
                source: RecordedSource::Camera,
                offset_ms: 0,
                segments: Vec::new(),
                end: None,
            }],
            done: false,
        }
    }

    #[tokio::test]
    async fn a_report_is_sent_again_until_acknowledged_and_then_its_spool_goes() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("f.webm");
        std::fs::write(&spool, b"webm").unwrap();
        let plane = Arc::new(Plane {
            fail: Mutex::new(2),
            reply: RecordingReportReply::Stored,
            got: Mutex::new(Vec::new()),
        });
        // An earlier run's spool goes; anything else in the folder stays.
        let old = dir.path().join(RecordingId::from_random([5; 8]).as_str());
        std::fs::create_dir_all(&old).unwrap();
        let other = dir.path().join("keep-me");
        std::fs::create_dir_all(&other).unwrap();
        let r = Reporter::default();
        r.push(report(1), Some(spool.clone()));
        tokio::spawn(r.clone().run(plane.clone(), dir.path().to_owned()));
        eventually("acknowledged", || r.pending() == 0).await;
        assert!(!old.exists() && other.exists());
        assert_eq!(
            plane.got.lock().unwrap().len(),
            3,
            "two failures, then stored"
        );
        eventually("the spool file is deleted", || !spool.exists()).await;
    }

    #[test]
    fn done_is_queued_once_when_the_last_holder_lets_go() {
        let r = Reporter::default();
        let rec = RecordingId::from_random([3; 8]);
        let room = DoneMarker::new(r.clone(), NodeId(1), RoomId(1), rec.clone());
        let file = room.clone();
        drop(room);
        assert_eq!(r.pending(), 0, "a file still holds it");
        r.push(report(3), None);
        drop(file);
        let q = r.queued();
        assert_eq!(q.len(), 2);
        assert!(!q[0].done && q[1].done, "done after the file's report");
        assert!(q[1].files.is_empty() && q[1].recording_id == rec);
    }

    #[tokio::test]
    async fn a_gone_recording_is_stopped_and_its_spool_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let rec = RecordingId::from_random([2; 8]);
        let rec_dir = dir.path().join(rec.as_str());
        std::fs::create_dir_all(&rec_dir).unwrap();
        std::fs::write(rec_dir.join("f.webm"), b"webm").unwrap();
        let plane = Arc::new(Plane {
            fail: Mutex::new(0),
            reply: RecordingReportReply::Gone,
            got: Mutex::new(Vec::new()),
        });
        let r = Reporter::default();
        r.push(report(2), None);
        r.push(report(2), None);
        tokio::spawn(r.clone().run(plane.clone(), dir.path().to_owned()));
        eventually("gone", || r.is_gone(&rec)).await;
        eventually("queue dropped", || r.pending() == 0).await;
        eventually("spool dropped", || !rec_dir.exists()).await;
        assert_eq!(
            plane.got.lock().unwrap().len(),
            1,
            "the rest of the recording's reports are dropped"
        );
    }
}
