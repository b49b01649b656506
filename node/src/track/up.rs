//! The up track: one published track as this node's receivers see it, and
//! the fan-out of its packets. Nothing here knows where the packets come
//! from or how feedback reaches the publisher: that is behind [`Upstream`],
//! so the room, the relay and their tests share one type whether the
//! publisher is a browser here, another node, or a test.

use crate::forward::{GapDetector, KeyframeGate};
use crate::metrics::Metrics;
use prometheus::IntCounter;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use veche_protocol::recording::FileId;
use veche_protocol::signal::{MediaKind, TrackInfo};
use veche_protocol::{NodeId, ParticipantId};

/// Who receives an up track's packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// A participant on this node (one down track).
    Participant(ParticipantId),
    /// Another media node, which fans the track out to its own
    /// participants. At most one per node, however many subscribers it has.
    Node(NodeId),
    /// This node's recorder, writing the track into one file.
    Recorder(FileId),
}

/// The publisher's latest RTCP sender report for a track: its wall clock
/// (NTP) at an RTP timestamp. The recorder maps RTP time through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderReportTap {
    /// The publisher's NTP time.
    pub ntp: u64,
    /// The RTP timestamp at that time.
    pub rtp: u32,
    /// When it arrived, node wall clock in µs since the Unix epoch.
    pub received_us: i64,
    /// Counts reports, so a reader sees a new one.
    pub count: u64,
}

/// Where an up track's packets come from. Decides whether the track may be
/// relayed on (only a publisher's own node relays, so a track crosses at
/// most one hop) and whether it counts as one of this node's tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A participant's connection on this node.
    Local,
    /// The publisher's node, over the relay.
    Relayed,
}

/// The way back to a track's publisher: keyframe requests and NACKs.
///
/// A browser's track answers them over its RTCP; a relayed track sends
/// them to the publisher's node as relay datagrams. Keeping this a trait
/// is what lets the data path (and its tests) run without WebRTC or QUIC.
#[async_trait::async_trait]
pub trait Upstream: Send + Sync {
    /// Asks the publisher for a keyframe now. Coalescing already happened
    /// in the up track's [`KeyframeGate`].
    async fn request_keyframe(&self);
    /// Asks the publisher to resend these RTP sequence numbers, which
    /// never arrived here. A browser's own connection repairs loss on its
    /// hop by itself, so its upstream ignores this.
    fn nack(&self, missing: &[u16]);
}

/// A published track as this node's subscribers see it: either received
/// from a browser here, or relayed from the publisher's node.
pub struct UpTrack {
    /// Public description (id, kind, source, stream id).
    pub info: TrackInfo,
    /// Who publishes it.
    pub publisher: ParticipantId,
    /// The publisher's codec, which every down track announces.
    pub codec: RTCRtpCodec,
    /// The msid track id the publisher's browser used, to notice when the
    /// browser stops sending it (empty for a relayed track).
    pub remote_msid: String,
    origin: Origin,
    upstream: Arc<dyn Upstream>,
    /// Current receivers' queues. Read on every packet, written on
    /// (un)subscribe, hence a read-write lock.
    subscribers: RwLock<Vec<(Sink, mpsc::Sender<rtp::Packet>)>>,
    keyframes: Mutex<KeyframeGate>,
    /// Loss on the relay hop, for a relayed track.
    gaps: Mutex<GapDetector>,
    metrics: Metrics,
    /// Set while the room's policy says this track must not reach anyone
    /// (a moderator's hold, or speak mode without permission). Checked on
    /// every packet, so a relaxed atomic.
    withheld: AtomicBool,
    /// Set while the publisher is paired directly with the room's only
    /// other participant (`room/p2p.rs`): its peer receives it directly,
    /// so the node forwards nothing. Apart from `withheld` so the policy
    /// and the path never undo each other's switch.
    direct: AtomicBool,
    /// Packets handed to receivers (once per packet, whatever the number
    /// of receivers).
    forwarded: AtomicU64,
    /// The per-track Prometheus counter mirroring `forwarded`, once the
    /// room labelled it (see [`UpTrack::count_into`]).
    forwarded_metric: OnceLock<IntCounter>,
    /// The latest sender report, for the recorder.
    sender_report: Mutex<Option<SenderReportTap>>,
}

impl UpTrack {
    /// A track whose packets are fed in with [`UpTrack::fan_out`] (or
    /// [`UpTrack::relayed_packet`]) and whose feedback goes to `upstream`.
    pub fn new(
        info: TrackInfo,
        publisher: ParticipantId,
        codec: RTCRtpCodec,
        remote_msid: String,
        origin: Origin,
        upstream: Arc<dyn Upstream>,
        metrics: Metrics,
    ) -> Arc<Self> {
        Arc::new(UpTrack {
            info,
            publisher,
            codec,
            remote_msid,
            origin,
            upstream,
            subscribers: RwLock::new(Vec::new()),
            keyframes: Mutex::new(KeyframeGate::default()),
            gaps: Mutex::new(GapDetector::default()),
            metrics,
            withheld: AtomicBool::new(false),
            direct: AtomicBool::new(false),
            forwarded: AtomicU64::new(0),
            forwarded_metric: OnceLock::new(),
            sender_report: Mutex::new(None),
        })
    }

    /// Changes how often keyframe requests may reach the publisher. The
    /// default ([`KeyframeGate::DEFAULT_INTERVAL`]) protects a browser's
    /// encoder; a source without one (a test feed) can take every request.
    pub fn set_keyframe_interval(&self, min_interval: Duration) {
        *self.keyframes.lock().expect("lock poisoned") = KeyframeGate::new(min_interval);
    }

    /// Where the packets come from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Stops (`true`) or resumes (`false`) forwarding. Returns whether
    /// the switch changed. The publisher keeps sending meanwhile; its
    /// packets are counted and dropped here, so a held track reaches no
    /// participant and no other node.
    pub fn set_withheld(&self, withheld: bool) -> bool {
        self.withheld.swap(withheld, Ordering::Relaxed) != withheld
    }

    /// Whether forwarding is stopped by the room's policy.
    pub fn is_withheld(&self) -> bool {
        self.withheld.load(Ordering::Relaxed)
    }

    /// Stops (`true`) or resumes (`false`) forwarding because the
    /// publisher's peer receives it directly. Returns whether the switch
    /// changed.
    pub fn set_direct(&self, direct: bool) -> bool {
        self.direct.swap(direct, Ordering::Relaxed) != direct
    }

    /// Whether forwarding is stopped by a direct pairing.
    pub fn is_direct(&self) -> bool {
        self.direct.load(Ordering::Relaxed)
    }

    /// Packets forwarded so far (each once, however many receivers).
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }

    /// Also counts forwarded packets into `counter` (the room's labelled
    /// `track_packets_forwarded_total`), so tests and operators can see
    /// from outside whether a track flows. Only the first call counts.
    pub fn count_into(&self, counter: IntCounter) {
        let _ = self.forwarded_metric.set(counter);
    }

    /// Hands a packet to every receiver without waiting for any of them;
    /// drops it (counted) while the track is withheld.
    pub fn fan_out(&self, pkt: rtp::Packet) {
        if self.is_withheld() {
            self.metrics.packets_withheld.inc();
            return;
        }
        if self.is_direct() {
            self.metrics.p2p.packets_not_forwarded.inc();
            return;
        }
        self.forwarded.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.forwarded_metric.get() {
            c.inc();
        }
        let subs = self.subscribers.read().expect("lock poisoned");
        for (sink, tx) in subs.iter() {
            if tx.try_send(pkt.clone()).is_err() {
                if let Sink::Recorder(_) = sink {
                    // A stalled recorder (slow disk) loses its own packets.
                    self.metrics.recorder.packets_dropped.inc();
                    continue;
                }
                self.metrics
                    .packets_dropped
                    .with_label_values(&["subscriber_queue_full"])
                    .inc();
            }
        }
    }

    /// A packet of a relayed track arrived from the publisher's node. Gaps
    /// just before it are NACKed upstream at once, so the publisher's node
    /// resends them before this node's subscribers notice.
    pub fn relayed_packet(&self, pkt: rtp::Packet) {
        let missing = self
            .gaps
            .lock()
            .expect("lock poisoned")
            .on_packet(pkt.header.sequence_number);
        self.fan_out(pkt);
        if !missing.is_empty() {
            self.upstream.nack(&missing);
        }
    }

    /// The publisher sent an RTCP sender report for this track.
    pub fn sender_report(&self, ntp: u64, rtp: u32, received_us: i64) {
        let mut sr = self.sender_report.lock().expect("lock poisoned");
        let count = sr.map_or(1, |s| s.count + 1);
        *sr = Some(SenderReportTap {
            ntp,
            rtp,
            received_us,
            count,
        });
    }

    /// The latest sender report, if one came.
    pub fn last_sender_report(&self) -> Option<SenderReportTap> {
        *self.sender_report.lock().expect("lock poisoned")
    }

    /// Adds a receiver's queue, replacing any earlier one of the same sink.
    pub fn attach(&self, sink: Sink, tx: mpsc::Sender<rtp::Packet>) {
        let mut subs = self.subscribers.write().expect("lock poisoned");
        subs.retain(|(s, _)| s != &sink);
        subs.push((sink, tx));
    }

    /// The receivers now (for tests and diagnostics).
    pub fn sinks(&self) -> Vec<Sink> {
        self.subscribers
            .read()
            .expect("lock poisoned")
            .iter()
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Removes a receiver's queue.
    pub fn detach(&self, sink: &Sink) {
        self.subscribers
            .write()
            .expect("lock poisoned")
            .retain(|(s, _)| s != sink);
    }

    /// Removes `sink`'s queue if it is still `queue`, and leaves a newer
    /// queue of the same sink (a resumed seat's new connection) alone.
    pub fn detach_queue(&self, sink: &Sink, queue: &mpsc::Sender<rtp::Packet>) {
        self.subscribers
            .write()
            .expect("lock poisoned")
            .retain(|(s, q)| !(s == sink && q.same_channel(queue)));
    }

    /// Asks the publisher for a keyframe, coalescing bursts. For a relayed
    /// track the request goes to the publisher's node, whose own gate
    /// coalesces again across all the nodes asking.
    pub async fn request_keyframe(&self) {
        if self.info.kind == MediaKind::Audio {
            return;
        }
        let go = self
            .keyframes
            .lock()
            .expect("lock poisoned")
            .request(Instant::now());
        if !go {
            return;
        }
        self.metrics.keyframe_requests.inc();
        self.upstream.request_keyframe().await;
    }
}
