//! The media node's Prometheus metrics, namespaced `veche_node_`.
//!
//! Counters are updated on the forwarding path with relaxed atomics (what
//! the prometheus crate does internally), so they cost a few nanoseconds a
//! packet.

use prometheus::{Counter, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// All metrics of one media node.
#[derive(Clone)]
pub struct Metrics {
    /// The registry these are registered in, served at `/metrics`.
    pub registry: Registry,
    /// Rooms with at least one participant on this node.
    pub rooms: IntGauge,
    /// Participants connected to this node.
    pub participants: IntGauge,
    /// Published tracks received by this node.
    pub tracks: IntGauge,
    /// Down tracks (one per track and subscriber).
    pub subscriptions: IntGauge,
    /// RTP packets received from publishers.
    pub packets_in: IntCounter,
    /// RTP payload bytes received from publishers.
    pub bytes_in: IntCounter,
    /// RTP packets handed to subscriber connections.
    pub packets_out: IntCounter,
    /// RTP payload bytes handed to subscriber connections.
    pub bytes_out: IntCounter,
    /// Packets dropped on the forwarding path, by reason.
    pub packets_dropped: IntCounterVec,
    /// Keyframe requests sent to publishers.
    pub keyframe_requests: IntCounter,
    /// RTP packets of withheld tracks (a moderator's hold, speak mode)
    /// that were dropped instead of forwarded.
    pub packets_withheld: IntCounter,
    /// Packets forwarded per published track, on its publisher's node
    /// (labels `room`, `track`, `source`). Removed when the track is
    /// unpublished, so cardinality follows live tracks. Integration tests
    /// read it to tell whether a track flows.
    pub track_packets_forwarded: IntCounterVec,
    /// Signalling errors returned to clients, by code.
    pub signalling_errors: IntCounterVec,
    /// MLS handshake messages by `type` (`found`, `key_package`, `commit`)
    /// and `outcome`: `relayed` (ordered by the control plane and passed
    /// on), `refused` (to its sender, by this node or the control plane),
    /// `from_peer` (relayed here by another node) or `dropped_from_peer`.
    pub e2ee_handshake: IntCounterVec,
    /// Participants per room (label `room`, the room id). The label is
    /// removed when the room empties, so cardinality follows live rooms.
    pub room_participants: IntGaugeVec,
    /// Published tracks per room.
    pub room_tracks: IntGaugeVec,
    /// Tracks of this node's publishers relayed to another node (label
    /// `peer`, the node id). Each (track, peer node) is relayed at most
    /// once, however many subscribers the peer has.
    pub relay_tracks_out: IntGaugeVec,
    /// Tracks relayed to this node from another (label `peer`).
    pub relay_tracks_in: IntGaugeVec,
    /// Relay connections this node dialed that are up.
    pub relay_links: IntGauge,
    /// RTP packets sent to other nodes.
    pub relay_packets_out: IntCounter,
    /// RTP packets received from other nodes.
    pub relay_packets_in: IntCounter,
    /// RTP bytes (whole packets) sent to other nodes.
    pub relay_bytes_out: IntCounter,
    /// Sequence numbers this node asked a publisher's node to resend.
    pub relay_nacks: IntCounter,
    /// Packets resent to another node after its NACK.
    pub relay_retransmits: IntCounter,
    /// Datagrams not sent or not used, by reason.
    pub relay_dropped: IntCounterVec,
    /// The recorder's costs and output (see [`RecorderMetrics`]).
    pub recorder: RecorderMetrics,
    /// Which ICE path each connection took (see [`crate::ice_path`]).
    pub ice: crate::ice_path::IcePathMetrics,
    /// Peer-to-peer calls for two (see [`P2pMetrics`]).
    pub p2p: P2pMetrics,
}

/// Peer-to-peer calls for two (`room/p2p.rs`): how often rooms pair, what
/// the node relays for them, and that it forwards none of their media.
#[derive(Clone)]
pub struct P2pMetrics {
    /// Direct pairs started (each new pairing of two).
    pub pairs_started: IntCounter,
    /// Rooms whose two participants are paired directly now.
    pub rooms: IntGauge,
    /// `peer_signal`s relayed, by `kind` (offer, answer, candidate).
    pub signals_relayed: IntCounterVec,
    /// `peer_signal`s refused, by `reason` (not_paired, stale_pairing,
    /// not_peer).
    pub signals_refused: IntCounterVec,
    /// RTP packets a paired participant still sent to the node, dropped
    /// instead of forwarded to the peer (who receives them directly).
    pub packets_not_forwarded: IntCounter,
    /// `p2p_state` reports, by `state` (connected, failed, refused).
    pub states: IntCounterVec,
    /// Pairs switched back to the SFU because their direct path did not
    /// work, by `reason` (failed, timeout).
    pub fallbacks: IntCounterVec,
}

/// What recording costs the node and what it produced. The load test
/// divides CPU by packets to report the recorder's cost per packet.
#[derive(Clone)]
pub struct RecorderMetrics {
    /// Thread CPU time spent depacketizing and muxing recorded packets.
    pub cpu_seconds: Counter,
    /// RTP packets the recorder consumed.
    pub packets: IntCounter,
    /// Recording bytes written to object storage (segments, re-uploads
    /// included): what recording costs in storage traffic.
    pub bytes_written: IntCounter,
    /// Segments uploaded to object storage (re-uploads included).
    pub segments: IntCounter,
    /// Segment uploads that failed (each attempt).
    pub upload_failures: IntCounter,
    /// Packets dropped before the recorder (queue full) or in it
    /// (waiting for a keyframe, unrepairable loss).
    pub packets_dropped: IntCounter,
    /// Files being recorded now.
    pub active: IntGauge,
    /// Recordings a room's policy asked for that this node could not
    /// make (no storage configured, too many files).
    pub refused: IntCounter,
}

impl Metrics {
    /// Creates and registers the metrics in a fresh registry.
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("veche_node".into()), None).expect("static prefix is valid");
        let g = |name: &str, help: &str| {
            let m = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let c = |name: &str, help: &str| {
            let m = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let cv = |name: &str, help: &str, label: &str| {
            let m = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let gv = |name: &str, help: &str| {
            let m = IntGaugeVec::new(Opts::new(name, help), &["room"]).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let peer_gauge = |name: &str, help: &str| {
            let m = IntGaugeVec::new(Opts::new(name, help), &["peer"]).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        Metrics {
            relay_tracks_out: peer_gauge(
                "relay_tracks_out",
                "Tracks relayed to another media node, by peer node id",
            ),
            relay_tracks_in: peer_gauge(
                "relay_tracks_in",
                "Tracks relayed from another media node, by peer node id",
            ),
            relay_links: g(
                "relay_links",
                "Relay connections dialed by this node that are up",
            ),
            relay_packets_out: c(
                "relay_rtp_packets_out_total",
                "RTP packets relayed to other nodes",
            ),
            relay_packets_in: c(
                "relay_rtp_packets_in_total",
                "RTP packets relayed from other nodes",
            ),
            relay_bytes_out: c(
                "relay_rtp_bytes_out_total",
                "RTP bytes relayed to other nodes",
            ),
            relay_nacks: c(
                "relay_nacks_total",
                "Sequence numbers NACKed to a publisher's node",
            ),
            relay_retransmits: c(
                "relay_retransmits_total",
                "Packets resent to another node after its NACK",
            ),
            relay_dropped: cv(
                "relay_datagrams_dropped_total",
                "Relay datagrams not sent or not used",
                "reason",
            ),
            room_participants: gv("room_participants", "Participants in the room on this node"),
            room_tracks: gv("room_tracks", "Tracks published in the room on this node"),
            rooms: g("rooms", "Rooms with participants on this node"),
            participants: g("participants", "Participants connected to this node"),
            tracks: g("tracks", "Published tracks received by this node"),
            subscriptions: g("subscriptions", "Down tracks: one per (track, subscriber)"),
            packets_in: c(
                "rtp_packets_in_total",
                "RTP packets received from publishers",
            ),
            bytes_in: c(
                "rtp_bytes_in_total",
                "RTP payload bytes received from publishers",
            ),
            packets_out: c(
                "rtp_packets_out_total",
                "RTP packets forwarded to subscribers",
            ),
            bytes_out: c(
                "rtp_bytes_out_total",
                "RTP payload bytes forwarded to subscribers",
            ),
            packets_dropped: cv(
                "rtp_packets_dropped_total",
                "RTP packets dropped on the forwarding path",
                "reason",
            ),
            keyframe_requests: c("keyframe_requests_total", "PLIs sent to publishers"),
            packets_withheld: c(
                "rtp_packets_withheld_total",
                "RTP packets of tracks withheld by the room's moderation policy, dropped",
            ),
            track_packets_forwarded: {
                let m = IntCounterVec::new(
                    Opts::new(
                        "track_packets_forwarded_total",
                        "RTP packets forwarded per published track, on the publisher's node",
                    ),
                    &["room", "track", "source"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(m.clone()))
                    .expect("unique metric");
                m
            },
            signalling_errors: cv(
                "signalling_errors_total",
                "Error replies sent to signalling clients",
                "code",
            ),
            e2ee_handshake: {
                let m = IntCounterVec::new(
                    Opts::new(
                        "e2ee_handshake_messages_total",
                        "MLS handshake messages passed on or refused, by type and outcome",
                    ),
                    &["type", "outcome"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(m.clone()))
                    .expect("unique metric");
                m
            },
            recorder: RecorderMetrics {
                cpu_seconds: {
                    let m = Counter::new(
                        "recorder_cpu_seconds_total",
                        "Thread CPU time spent in the recorder's packet path",
                    )
                    .expect("valid metric");
                    registry
                        .register(Box::new(m.clone()))
                        .expect("unique metric");
                    m
                },
                packets: c(
                    "recorded_packets_total",
                    "RTP packets consumed by the recorder",
                ),
                bytes_written: c(
                    "recording_bytes_written_total",
                    "Recording bytes written to object storage (re-uploads included)",
                ),
                segments: c(
                    "recording_segments_total",
                    "Recording segments uploaded to object storage",
                ),
                upload_failures: c(
                    "recording_upload_failures_total",
                    "Recording segment uploads that failed",
                ),
                packets_dropped: c(
                    "recording_packets_dropped_total",
                    "Packets the recorder dropped (queue full, loss, waiting for a keyframe)",
                ),
                active: g("recordings_active", "Files being recorded on this node"),
                refused: c(
                    "recordings_refused_total",
                    "Recordings this node could not make (no storage, too many files)",
                ),
            },
            ice: crate::ice_path::IcePathMetrics::register(&registry),
            p2p: P2pMetrics {
                pairs_started: c(
                    "p2p_pairs_started_total",
                    "Pairs of two participants switched to a direct connection",
                ),
                rooms: g(
                    "p2p_rooms",
                    "Rooms whose two participants are paired directly",
                ),
                signals_relayed: cv(
                    "p2p_signals_relayed_total",
                    "peer_signal messages relayed to the other participant of a pair",
                    "kind",
                ),
                signals_refused: cv(
                    "p2p_signals_refused_total",
                    "peer_signal messages refused with invalid_state",
                    "reason",
                ),
                packets_not_forwarded: c(
                    "p2p_rtp_packets_not_forwarded_total",
                    "RTP packets of a directly paired participant dropped instead of forwarded",
                ),
                states: cv(
                    "p2p_states_total",
                    "p2p_state reports of direct connections (refused: not the current pair)",
                    "state",
                ),
                fallbacks: cv(
                    "p2p_fallbacks_total",
                    "Pairs switched back to the SFU because the direct connection failed or timed out",
                    "reason",
                ),
            },
            registry,
        }
    }

    /// Counts one handshake message of `kind` (from [`e2ee_kind`]).
    pub fn e2ee_outcome(&self, kind: &str, outcome: &str) {
        self.e2ee_handshake
            .with_label_values(&[kind, outcome])
            .inc();
    }

    /// Text exposition of all metrics.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding never fails");
        String::from_utf8(buf).expect("text encoder emits UTF-8")
    }
}

/// The `type` label of a handshake message in
/// `e2ee_handshake_messages_total`.
pub fn e2ee_kind(msg: &veche_protocol::signal::ServerMessage) -> &'static str {
    use veche_protocol::signal::ServerMessage as S;
    match msg {
        S::E2eeFound { .. } => "found",
        S::E2eeKeyPackage { .. } => "key_package",
        S::E2eeCommit { .. } => "commit",
        _ => "other",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
