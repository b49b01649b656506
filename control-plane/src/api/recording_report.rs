//! `RPC_RECORDING_REPORT`: a media node reports the files and segments of
//! a recording it uploaded (MessagePack, behind the cluster secret, like
//! the other internal RPCs). The report is checked here against the
//! limits, then stored through Raft as one command; the index applies each
//! (file, seq) once (`store/recordings.rs`), so the node sends a report
//! again after any failure until it is acknowledged.

use super::internal::{decode_rpc, rpc_reply};
use super::write_error;
use crate::error::{ApiError, RpcError};
use crate::store::RecordingStore;
use crate::ControlPlane;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use std::sync::Arc;
use veche_protocol::limits::recording::{
    MAX_FILES_PER_REPORT, MAX_NAME_CHARS, MAX_REPORT_BODY_BYTES, MAX_SEGMENTS_PER_REPORT,
};
use veche_protocol::recording::{RecordingReport, RecordingReportReply};
use veche_protocol::ErrorCode;

/// What is wrong with a report, if anything: counts over the limits, an
/// overlong name, segments out of order or ending before they start, an
/// end with fewer bytes than its segments.
pub(crate) fn check_report(r: &RecordingReport) -> Result<(), String> {
    if r.files.len() > MAX_FILES_PER_REPORT {
        return Err(format!(
            "{} files in one report; at most {MAX_FILES_PER_REPORT}",
            r.files.len()
        ));
    }
    for f in &r.files {
        let file = &f.file_id;
        if f.segments.len() > MAX_SEGMENTS_PER_REPORT {
            return Err(format!(
                "file {file}: {} segments in one report; at most {MAX_SEGMENTS_PER_REPORT}",
                f.segments.len()
            ));
        }
        if f.display_name.chars().count() > MAX_NAME_CHARS {
            return Err(format!(
                "file {file}: the name is longer than {MAX_NAME_CHARS} characters"
            ));
        }
        if f.segments.windows(2).any(|w| w[0].seq >= w[1].seq) {
            return Err(format!("file {file}: segment numbers must increase"));
        }
        if let Some(s) = f.segments.iter().find(|s| s.end_ms < s.start_ms) {
            return Err(format!(
                "file {file}: segment {} ends before it starts",
                s.seq
            ));
        }
    }
    Ok(())
}

/// `RPC_RECORDING_REPORT`: checked, stored, answered `Stored` or `Gone`
/// (the recording was deleted or never started: the node stops writing it
/// and drops its spool).
pub(super) async fn report(
    State(cp): State<Arc<ControlPlane>>,
    body: Bytes,
) -> Result<Response, RpcError> {
    if body.len() > MAX_REPORT_BODY_BYTES {
        return Err(RpcError(super::edge::too_large()));
    }
    let req: RecordingReport = decode_rpc(&body)?;
    check_report(&req).map_err(|m| RpcError(ApiError::new(ErrorCode::BadRequest, m)))?;
    let (node, recording) = (req.node_id, req.recording_id.clone());
    let reply = cp
        .replicated()
        .report_recording(req, cp.webhooks_enabled())
        .await
        .map_err(write_error)?;
    cp.metrics.recording_reports.inc();
    match reply {
        RecordingReportReply::Stored => {
            tracing::debug!(%node, %recording, "recording report stored")
        }
        RecordingReportReply::Gone => {
            tracing::info!(%node, %recording, "recording report for a recording that is gone")
        }
    }
    Ok(rpc_reply(&reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use veche_protocol::recording::{FileId, FileReport, RecordedSource, RecordingId, SegmentInfo};
    use veche_protocol::{NodeId, ParticipantId, RoomId};

    fn report(files: Vec<FileReport>) -> RecordingReport {
        RecordingReport {
            node_id: NodeId(1),
            room_id: RoomId(1),
            recording_id: RecordingId::from_random([1; 8]),
            files,
            done: false,
        }
    }

    fn file(name: &str, segs: &[(u32, u64, u64)]) -> FileReport {
        FileReport {
            file_id: FileId::from_random([2; 8]),
            participant_id: ParticipantId("p1".into()),
            display_name: name.into(),
            source: RecordedSource::Camera,
            offset_ms: 0,
            segments: segs
                .iter()
                .map(|&(seq, start_ms, end_ms)| SegmentInfo {
                    seq,
                    bytes: 10,
                    start_ms,
                    end_ms,
                })
                .collect(),
            end: None,
        }
    }

    #[test]
    fn a_well_formed_report_passes_and_a_malformed_one_says_what_is_wrong() {
        assert_eq!(
            check_report(&report(vec![file("Ann", &[(0, 0, 10), (1, 10, 20)])])),
            Ok(())
        );
        let out_of_order = check_report(&report(vec![file("Ann", &[(1, 0, 10), (1, 10, 20)])]));
        assert!(out_of_order.unwrap_err().contains("must increase"));
        let backwards = check_report(&report(vec![file("Ann", &[(0, 20, 10)])]));
        assert!(backwards.unwrap_err().contains("ends before it starts"));
        let long = check_report(&report(vec![file(&"x".repeat(MAX_NAME_CHARS + 1), &[])]));
        assert!(long.unwrap_err().contains("longer than"));
        let many = check_report(&report(vec![file("A", &[]); MAX_FILES_PER_REPORT + 1]));
        assert!(many.unwrap_err().contains("files in one report"));
        let segs: Vec<_> = (0..=MAX_SEGMENTS_PER_REPORT as u32)
            .map(|i| (i, 0, 1))
            .collect();
        let too_many = check_report(&report(vec![file("A", &segs)]));
        assert!(too_many.unwrap_err().contains("segments in one report"));
    }
}
