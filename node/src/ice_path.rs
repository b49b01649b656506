//! Which network path each participant's media takes, as metrics.
//!
//! A browser on a strict network reaches the node through TURN (a `relay`
//! candidate), one behind NAT through a reflexive address (`srflx`/`prflx`),
//! one on the LAN directly (`host`). Operators need to see that split to
//! know whether their TURN server carries traffic at all, and tests need it
//! to prove that a UDP-blocked browser really went through TURN. The pair
//! comes from the connection's selected ICE candidate pair, read when ICE
//! connects and again after every ICE restart.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use rtc::peer_connection::transport::RTCIceCandidateType;
use std::sync::Arc;
use webrtc::peer_connection::{PeerConnection, RTCStatsReportEntry, StatsSelector};

/// The label of a candidate type, as in the W3C stats (`host`, `srflx`,
/// `prflx`, `relay`), or `unknown`.
pub fn type_label(t: RTCIceCandidateType) -> &'static str {
    match t {
        RTCIceCandidateType::Host => "host",
        RTCIceCandidateType::Srflx => "srflx",
        RTCIceCandidateType::Prflx => "prflx",
        RTCIceCandidateType::Relay => "relay",
        _ => "unknown",
    }
}

/// The candidate types of a selected pair: (the node's, the browser's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathKind {
    /// The node's candidate (always `host` today: the node gathers no
    /// reflexive or relayed candidates).
    pub local: &'static str,
    /// The browser's candidate as the node sees it: `relay` when the
    /// browser came through TURN.
    pub remote: &'static str,
}

/// The metrics of selected paths.
#[derive(Clone)]
pub struct IcePathMetrics {
    /// `veche_node_ice_selected_pairs_total{local,remote}`: every pair ICE
    /// selected, counting again after a restart or a switch of pair.
    pub selected: IntCounterVec,
    /// `veche_node_ice_sessions{remote}`: connections whose current path
    /// has this remote candidate type.
    pub sessions: IntGaugeVec,
}

impl IcePathMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let selected = IntCounterVec::new(
            Opts::new(
                "ice_selected_pairs_total",
                "ICE candidate pairs selected, by the node's and the browser's candidate type",
            ),
            &["local", "remote"],
        )
        .expect("valid metric");
        let sessions = IntGaugeVec::new(
            Opts::new(
                "ice_sessions",
                "Peer connections by the browser's candidate type on their selected path (relay = TURN)",
            ),
            &["remote"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(selected.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(sessions.clone()))
            .expect("unique metric");
        IcePathMetrics { selected, sessions }
    }
}

/// One connection's current path in the metrics. Dropping it takes the
/// connection out of the `ice_sessions` gauge.
pub struct IcePath {
    metrics: IcePathMetrics,
    current: Option<PathKind>,
}

impl IcePath {
    /// A connection with no path yet.
    pub fn new(metrics: IcePathMetrics) -> Self {
        IcePath {
            metrics,
            current: None,
        }
    }

    /// Records the pair ICE selected. A pair of the same kind as the
    /// current one (ICE re-confirmed it) changes nothing; a new kind moves
    /// the connection in the gauge and counts a selection.
    pub fn selected(&mut self, kind: PathKind) {
        if self.current == Some(kind) {
            return;
        }
        if let Some(old) = self.current.take() {
            self.metrics.sessions.with_label_values(&[old.remote]).dec();
        }
        self.metrics
            .selected
            .with_label_values(&[kind.local, kind.remote])
            .inc();
        self.metrics
            .sessions
            .with_label_values(&[kind.remote])
            .inc();
        self.current = Some(kind);
    }

    /// The current path, if ICE selected one.
    pub fn current(&self) -> Option<PathKind> {
        self.current
    }
}

impl Drop for IcePath {
    fn drop(&mut self) {
        if let Some(old) = self.current.take() {
            self.metrics.sessions.with_label_values(&[old.remote]).dec();
        }
    }
}

/// The kind of the pair `pc` selected, from its stats (the transport's
/// `selectedCandidatePairId` and that pair's candidates); `None` until ICE
/// selected one. The stats rather than a transceiver's transport: a
/// connection that only receives has no transceiver with a transport yet
/// when it connects.
pub async fn selected_path(pc: &Arc<dyn PeerConnection>) -> Option<PathKind> {
    let report = pc
        .get_stats(std::time::Instant::now(), StatsSelector::None)
        .await;
    let pair_id = report.iter().find_map(|e| match e {
        RTCStatsReportEntry::Transport(t) if !t.selected_candidate_pair_id.is_empty() => {
            Some(t.selected_candidate_pair_id.clone())
        }
        _ => None,
    })?;
    let Some(RTCStatsReportEntry::IceCandidatePair(pair)) = report.get(&pair_id) else {
        return None;
    };
    // rtc 0.21.1 keys candidate stats `RTC{Local,Remote}IceCandidate_<id>`
    // but names them by the bare id in the pair, and registers only
    // signalled remote candidates: one it lacks was learned from a
    // connectivity check, which is what peer-reflexive means.
    let local = match report.get(&format!("RTCLocalIceCandidate_{}", pair.local_candidate_id)) {
        Some(RTCStatsReportEntry::LocalCandidate(c)) => type_label(c.candidate_type),
        _ => "unknown",
    };
    let remote = match report.get(&format!(
        "RTCRemoteIceCandidate_{}",
        pair.remote_candidate_id
    )) {
        Some(RTCStatsReportEntry::RemoteCandidate(c)) => type_label(c.candidate_type),
        // A check from the browser's TURN relay often arrives before the
        // browser's relay candidate does: the pair stays "prflx", but its
        // address is the relay candidate's.
        _ => match selected_remote_addr(pc).await {
            Some((ip, port)) => {
                tracing::debug!(%ip, port, known = ?report.iter().filter_map(|e| match e {
                    RTCStatsReportEntry::RemoteCandidate(c) => Some((c.address.clone(), c.port, type_label(c.candidate_type))),
                    _ => None,
                }).collect::<Vec<_>>(), "selected remote candidate not in the stats");
                report
                    .iter()
                    .find_map(|e| match e {
                        RTCStatsReportEntry::RemoteCandidate(c)
                            if c.port == port && c.address.as_deref() == Some(ip.as_str()) =>
                        {
                            Some(type_label(c.candidate_type))
                        }
                        _ => None,
                    })
                    .unwrap_or("prflx")
            }
            None => {
                tracing::debug!("selected remote candidate not in the stats, and no transport");
                "prflx"
            }
        },
    };
    Some(PathKind { local, remote })
}

/// The address of the selected pair's remote candidate, through a
/// transceiver's transport (there is none on a connection that has not
/// negotiated one yet).
async fn selected_remote_addr(pc: &Arc<dyn PeerConnection>) -> Option<(String, u16)> {
    let mut transports = Vec::new();
    for r in pc.get_receivers().await {
        transports.push(r.transport().await);
    }
    for s in pc.get_senders().await {
        transports.push(s.transport().await);
    }
    let transport = transports.into_iter().find_map(|t| t.ok().flatten())?;
    let pair = transport
        .ice_transport()
        .get_selected_candidate_pair()
        .await
        .ok()??;
    Some((pair.remote().address.clone(), pair.remote().port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge(m: &IcePathMetrics, remote: &str) -> i64 {
        m.sessions.with_label_values(&[remote]).get()
    }

    #[test]
    fn a_connection_moves_between_kinds_and_leaves_the_gauge_when_dropped() {
        let m = IcePathMetrics::register(&Registry::new());
        let host = PathKind {
            local: "host",
            remote: "host",
        };
        let relay = PathKind {
            local: "host",
            remote: "relay",
        };
        let mut p = IcePath::new(m.clone());
        p.selected(host);
        p.selected(host);
        assert_eq!(gauge(&m, "host"), 1);
        assert_eq!(m.selected.with_label_values(&["host", "host"]).get(), 1);
        // An ICE restart onto TURN.
        p.selected(relay);
        assert_eq!((gauge(&m, "host"), gauge(&m, "relay")), (0, 1));
        assert_eq!(m.selected.with_label_values(&["host", "relay"]).get(), 1);
        drop(p);
        assert_eq!(gauge(&m, "relay"), 0);
    }

    #[test]
    fn candidate_types_get_their_stats_names() {
        assert_eq!(type_label(RTCIceCandidateType::Relay), "relay");
        assert_eq!(type_label(RTCIceCandidateType::Prflx), "prflx");
        assert_eq!(type_label(RTCIceCandidateType::Unspecified), "unknown");
    }
}
