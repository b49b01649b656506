//! The edge of one file: a tokio task that takes the file's packets from
//! its up tracks' queues, drives the [`FileRecorder`], asks publishers for
//! keyframes, and hands segments to an uploader task that puts them in
//! object storage and queues the reports, in order.

use super::file::{FileAction, FileRecorder, Finished};
use super::reporter::{DoneMarker, Reporter};
use super::segmenter::Upload;
use super::RecordingStorage;
use crate::metrics::RecorderMetrics;
use crate::track::{Sink, UpTrack};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use rtc::rtp;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn, Instrument};
use veche_protocol::limits::recording::PACKET_QUEUE;
use veche_protocol::recording::{
    segment_key, ActiveRecording, FileEnd, FileId, FileReport, RecordedSource, RecordingReport,
    SegmentInfo,
};
use veche_protocol::{NodeId, ParticipantId, RoomId, TrackId};

/// Everything a file's task needs.
#[derive(Clone)]
pub struct FileCtx {
    /// The running recording.
    pub recording: ActiveRecording,
    /// The room.
    pub room_id: RoomId,
    /// This node.
    pub node_id: NodeId,
    /// The file.
    pub file_id: FileId,
    /// Whose media.
    pub participant_id: ParticipantId,
    /// Their name when the file started.
    pub display_name: String,
    /// Which media.
    pub source: RecordedSource,
    /// Where it goes.
    pub storage: RecordingStorage,
    /// Where reports go.
    pub reporter: Reporter,
    /// What it costs.
    pub metrics: RecorderMetrics,
    /// The recording's `done` report, queued once every holder let go:
    /// this file's task and uploader hold it until its last report is
    /// queued.
    pub done: Arc<DoneMarker>,
    /// The file is announced once its muxer started and it is this old
    /// (the room's restart grace: a younger file may still be dropped
    /// for a new one, and a dropped file must never have been announced).
    pub announce_after: Duration,
}

impl FileCtx {
    /// The file's spool path.
    pub fn spool_path(&self) -> PathBuf {
        self.storage
            .spool_dir
            .join(self.recording.id.as_str())
            .join(format!("{}.webm", self.file_id))
    }
}

/// How a file ends.
enum Stop {
    /// Finalize and upload the rest.
    Finish,
    /// Drop it (it never really started, or the recording is gone).
    Abort,
}

/// The room recorder's handle on a running file.
pub struct FileHandle {
    /// The file.
    pub file_id: FileId,
    /// Its tracks (fixed at the start).
    pub tracks: Vec<Arc<UpTrack>>,
    /// When it started.
    pub started: Instant,
    stop: Option<oneshot::Sender<Stop>>,
}

impl FileHandle {
    /// Stops feeding one track (unpublished: the file has a gap).
    pub fn detach(&self, track: &TrackId) {
        for t in self.tracks.iter().filter(|t| &t.info.id == track) {
            t.detach(&Sink::Recorder(self.file_id.clone()));
        }
    }

    fn stop(mut self, how: Stop) {
        for t in &self.tracks {
            t.detach(&Sink::Recorder(self.file_id.clone()));
        }
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(how);
        }
    }

    /// Ends the file: finalize, upload the rest, report its end.
    pub fn finish(self) {
        self.stop(Stop::Finish);
    }

    /// Drops the file without a trace when nothing was reported yet; a
    /// file already announced is finished instead, so the index gets its
    /// end.
    pub fn abort(self) {
        self.stop(Stop::Abort);
    }
}

/// Starts recording `tracks` into a new file.
pub fn start(ctx: FileCtx, tracks: Vec<Arc<UpTrack>>) -> FileHandle {
    let mut rxs = Vec::new();
    for t in &tracks {
        let (tx, rx) = mpsc::channel(PACKET_QUEUE);
        t.attach(Sink::Recorder(ctx.file_id.clone()), tx);
        rxs.push(Some(rx));
    }
    let (stop_tx, stop_rx) = oneshot::channel();
    ctx.metrics.active.inc();
    let span = tracing::debug_span!("recorder", file = %ctx.file_id);
    let started = Instant::now();
    tokio::spawn(run(ctx.clone(), tracks.clone(), rxs, stop_rx, started).instrument(span));
    FileHandle {
        file_id: ctx.file_id,
        tracks,
        started,
        stop: Some(stop_tx),
    }
}

/// This thread's CPU time in seconds.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn wall_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// How far a track's packets have come in media time (from its RTP
/// timestamps), to serve the track that is furthest behind first.
struct MediaProgress {
    rate: i64,
    last: Option<u32>,
    us: i64,
}

impl MediaProgress {
    fn new(kind: veche_protocol::signal::MediaKind) -> Self {
        let rate = match kind {
            veche_protocol::signal::MediaKind::Video => 90_000,
            veche_protocol::signal::MediaKind::Audio => 48_000,
        };
        MediaProgress {
            rate,
            last: None,
            us: 0,
        }
    }

    fn advance(&mut self, ts: u32) {
        if let Some(last) = self.last {
            let ticks = ts.wrapping_sub(last) as i32 as i64;
            if ticks > 0 {
                self.us += ticks * 1_000_000 / self.rate;
                self.last = Some(ts);
            }
        } else {
            self.last = Some(ts);
        }
    }
}

/// Work for the uploader, in order.
enum Job {
    /// Announce the file (a report without segments), at this offset.
    Announce(u64),
    Segment(Upload, u64),
    End(Finished, u64),
}

async fn run(
    ctx: FileCtx,
    tracks: Vec<Arc<UpTrack>>,
    mut rxs: Vec<Option<mpsc::Receiver<rtp::Packet>>>,
    mut stop: oneshot::Receiver<Stop>,
    started: Instant,
) {
    let path = ctx.spool_path();
    if let Some(dir) = path.parent() {
        if let Err(e) = tokio::fs::create_dir_all(dir).await {
            warn!(file = %ctx.file_id, "cannot create the recording spool: {e}");
            ctx.metrics.active.dec();
            return;
        }
    }
    let kinds: Vec<_> = tracks
        .iter()
        .map(|t| (t.info.id.clone(), t.info.kind))
        .collect();
    let (mut rec, asks) = FileRecorder::new(path.clone(), &kinds, Instant::now());
    let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
    let uploader = tokio::spawn(upload(ctx.clone(), path.clone(), jobs_rx));
    ask(&tracks, asks).await;
    let mut srs_seen = vec![0u64; tracks.len()];
    let mut progress: Vec<MediaProgress> = tracks
        .iter()
        .map(|t| MediaProgress::new(t.info.kind))
        .collect();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut dropped_before = 0;
    // The muxer started (the file exists), and whether it was announced.
    let mut muxing = false;
    let mut announced = false;
    let how = loop {
        // The track furthest behind in media time is served first, so a
        // backlog (a slow disk, a busy moment) is drained in time order
        // and the muxer's interleaving need not clamp anything.
        let mut order: Vec<usize> = (0..rxs.len()).collect();
        order.sort_by_key(|&i| progress[i].us);
        let next = std::future::poll_fn(|cx| {
            let mut open = false;
            for &i in &order {
                let slot = &mut rxs[i];
                let Some(rx) = slot else { continue };
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(p)) => return Poll::Ready(Some((i, p))),
                    Poll::Ready(None) => *slot = None,
                    Poll::Pending => open = true,
                }
            }
            if open {
                Poll::Pending
            } else {
                Poll::Ready(None)
            }
        });
        let mut actions = Vec::new();
        tokio::select! {
            how = &mut stop => break stop_how(&ctx, how, announced),
            _ = tick.tick() => {
                if ctx.reporter.is_gone(&ctx.recording.id) {
                    break Stop::Abort;
                }
                if let Err(e) = rec.tick(Instant::now(), &mut actions) {
                    warn!(file = %ctx.file_id, "recording failed: {e}");
                    break Stop::Abort;
                }
            }
            got = next => {
                let Some((i, pkt)) = got else {
                    // Every track unpublished (or detached by the stop
                    // itself): a gap until the file ends.
                    break stop_how(&ctx, (&mut stop).await, announced);
                };
                progress[i].advance(pkt.header.timestamp);
                let cpu = thread_cpu_secs();
                let now_us = wall_us();
                if let Some(sr) = tracks[i].last_sender_report() {
                    if sr.count != srs_seen[i] {
                        srs_seen[i] = sr.count;
                        rec.sender_report(i, sr.ntp, sr.rtp, sr.received_us);
                    }
                }
                ctx.metrics.packets.inc();
                match rec.push(i, pkt, Instant::now(), now_us) {
                    Ok(a) => actions = a,
                    Err(e) => {
                        warn!(file = %ctx.file_id, "recording failed: {e}");
                        break Stop::Abort;
                    }
                }
                ctx.metrics.packets_dropped.inc_by(rec.dropped - dropped_before);
                dropped_before = rec.dropped;
                ctx.metrics.cpu_seconds.inc_by((thread_cpu_secs() - cpu).max(0.0));
            }
        }
        let mut keyframes = Vec::new();
        for a in actions {
            match a {
                FileAction::Started => muxing = true,
                FileAction::RequestKeyframe(t) => keyframes.push(FileAction::RequestKeyframe(t)),
                FileAction::Upload(up) => {
                    announce(&ctx, &rec, &jobs_tx, &mut announced);
                    let _ = jobs_tx.send(Job::Segment(up, offset_ms(&ctx, &rec)));
                }
            }
        }
        if muxing && started.elapsed() >= ctx.announce_after {
            announce(&ctx, &rec, &jobs_tx, &mut announced);
        }
        ask(&tracks, keyframes).await;
    };
    if let Stop::Finish = how {
        // What was queued before the stop still belongs to the file,
        // taken furthest-behind first like above.
        loop {
            let mut order: Vec<usize> = (0..rxs.len()).collect();
            order.sort_by_key(|&i| progress[i].us);
            let got = order.into_iter().find_map(|i| {
                let rx = rxs[i].as_mut()?;
                rx.try_recv().ok().map(|p| (i, p))
            });
            let Some((i, pkt)) = got else { break };
            progress[i].advance(pkt.header.timestamp);
            ctx.metrics.packets.inc();
            let Ok(actions) = rec.push(i, pkt, Instant::now(), wall_us()) else {
                break;
            };
            for a in actions {
                if let FileAction::Upload(up) = a {
                    announce(&ctx, &rec, &jobs_tx, &mut announced);
                    let _ = jobs_tx.send(Job::Segment(up, offset_ms(&ctx, &rec)));
                }
            }
        }
    }
    match how {
        Stop::Finish => {
            let offset = offset_ms(&ctx, &rec);
            match rec.finish(Instant::now()) {
                Ok(Some(fin)) => {
                    let _ = jobs_tx.send(Job::End(fin, offset));
                }
                Ok(None) => {
                    let _ = tokio::fs::remove_file(&path).await;
                }
                Err(e) => warn!(file = %ctx.file_id, "finalizing the recording failed: {e}"),
            }
        }
        Stop::Abort => {
            drop(rec);
            uploader.abort();
            let _ = tokio::fs::remove_file(&path).await;
        }
    }
    drop(jobs_tx);
    ctx.metrics.active.dec();
}

/// How the room said to stop. An announced file is finished even when
/// the room drops it (a new track set came just as it was announced), so
/// the index gets its end; a dropped handle means finish.
fn stop_how(ctx: &FileCtx, how: Result<Stop, oneshot::error::RecvError>, announced: bool) -> Stop {
    match how {
        Ok(Stop::Abort) if announced && !ctx.reporter.is_gone(&ctx.recording.id) => Stop::Finish,
        Ok(how) => how,
        Err(_) => Stop::Finish,
    }
}

/// Queues the file's announcement (its description, no segments) once,
/// ahead of its first segment.
fn announce(
    ctx: &FileCtx,
    rec: &FileRecorder,
    jobs: &mpsc::UnboundedSender<Job>,
    announced: &mut bool,
) {
    if !std::mem::replace(announced, true) {
        let _ = jobs.send(Job::Announce(offset_ms(ctx, rec)));
    }
}

fn offset_ms(ctx: &FileCtx, rec: &FileRecorder) -> u64 {
    let start_ms = rec.start_us().unwrap_or_else(wall_us) / 1000;
    (start_ms - ctx.recording.started_at_ms as i64).max(0) as u64
}

async fn ask(tracks: &[Arc<UpTrack>], actions: Vec<FileAction>) {
    for a in actions {
        if let FileAction::RequestKeyframe(id) = a {
            if let Some(t) = tracks.iter().find(|t| t.info.id == id) {
                t.request_keyframe().await;
            }
        }
    }
}

async fn read_range(
    path: &std::path::Path,
    range: &std::ops::Range<u64>,
) -> std::io::Result<Vec<u8>> {
    let mut f = tokio::fs::File::open(path).await?;
    f.seek(std::io::SeekFrom::Start(range.start)).await?;
    let mut buf = vec![0; (range.end - range.start) as usize];
    f.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Puts one segment in the store, retrying until it succeeds or the
/// recording is gone. Returns whether it was stored.
async fn put(ctx: &FileCtx, path: &std::path::Path, up: &Upload) -> bool {
    let key = ObjectPath::from(segment_key(&ctx.recording.id, &ctx.file_id, up.seq));
    let mut wait = Duration::from_millis(500);
    loop {
        let result = match read_range(path, &up.range).await {
            Ok(bytes) => ctx
                .storage
                .store
                .put(&key, PutPayload::from(bytes))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(_) => {
                ctx.metrics.segments.inc();
                ctx.metrics
                    .bytes_written
                    .inc_by(up.range.end - up.range.start);
                return true;
            }
            Err(e) => {
                ctx.metrics.upload_failures.inc();
                warn!(file = %ctx.file_id, seq = up.seq, "segment upload failed: {e}");
            }
        }
        if ctx.reporter.is_gone(&ctx.recording.id) {
            return false;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}

fn report(
    ctx: &FileCtx,
    offset_ms: u64,
    segments: Vec<SegmentInfo>,
    end: Option<FileEnd>,
) -> RecordingReport {
    RecordingReport {
        node_id: ctx.node_id,
        room_id: ctx.room_id,
        recording_id: ctx.recording.id.clone(),
        files: vec![FileReport {
            file_id: ctx.file_id.clone(),
            participant_id: ctx.participant_id.clone(),
            display_name: ctx.display_name.clone(),
            source: ctx.source,
            offset_ms,
            segments,
            end,
        }],
        done: false,
    }
}

fn info(up: &Upload) -> SegmentInfo {
    SegmentInfo {
        seq: up.seq,
        bytes: up.range.end - up.range.start,
        start_ms: up.start_ms,
        end_ms: up.end_ms,
    }
}

/// Uploads segments in order and queues a report after each.
async fn upload(ctx: FileCtx, path: PathBuf, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Announce(offset) => {
                ctx.reporter
                    .push(report(&ctx, offset, Vec::new(), None), None);
            }
            Job::Segment(up, offset) => {
                if !put(&ctx, &path, &up).await {
                    return;
                }
                ctx.reporter
                    .push(report(&ctx, offset, vec![info(&up)], None), None);
            }
            Job::End(fin, offset) => {
                let mut segments = Vec::new();
                let mut rewritten = Vec::new();
                for up in &fin.uploads {
                    if !put(&ctx, &path, up).await {
                        return;
                    }
                    if up.rewrite {
                        rewritten.push(up.seq);
                    } else {
                        segments.push(info(up));
                    }
                }
                let end = FileEnd {
                    bytes: fin.bytes,
                    duration_ms: fin.duration_ms,
                    rewritten,
                };
                debug!(file = %ctx.file_id, bytes = fin.bytes, "recorded file complete");
                ctx.reporter.push(
                    report(&ctx, offset, segments, Some(end)),
                    Some(path.clone()),
                );
            }
        }
    }
}
