//! Media datagrams between nodes: RTP of relayed tracks one way, PLIs and
//! NACKs the other, and [`RelayUpstream`], through which a relayed track
//! sends those back to its publisher's node.

use super::Relay;
use crate::track::Upstream;
use bytes::Bytes;
use rtc::rtp;
use rtc::shared::marshal::Unmarshal;
use veche_protocol::relay::{
    decode_nack, encode_nack, DatagramHeader, DatagramKind, DATAGRAM_HEADER_LEN,
};
use veche_protocol::NodeId;

/// The way back from a relayed track's stand-in to its publisher's node:
/// feedback datagrams for the track's slot on the link from that node.
pub(super) struct RelayUpstream {
    pub(super) relay: Relay,
    /// The publisher's node.
    pub(super) peer: NodeId,
    /// The slot the track has on the link from that node.
    pub(super) slot: u16,
}

#[async_trait::async_trait]
impl Upstream for RelayUpstream {
    async fn request_keyframe(&self) {
        self.relay
            .send_feedback(self.peer, self.slot, DatagramKind::Pli, &[]);
    }

    fn nack(&self, missing: &[u16]) {
        self.relay
            .inner
            .metrics
            .relay_nacks
            .inc_by(missing.len() as u64);
        self.relay.send_feedback(
            self.peer,
            self.slot,
            DatagramKind::Nack,
            &encode_nack(missing),
        );
    }
}

impl Relay {
    /// Sends a PLI or NACK for the track in `slot` to its publisher's node.
    fn send_feedback(&self, peer: NodeId, slot: u16, kind: DatagramKind, payload: &[u8]) {
        let mut d = Vec::with_capacity(DATAGRAM_HEADER_LEN + payload.len());
        DatagramHeader { kind, slot }.write(&mut d);
        d.extend_from_slice(payload);
        self.datagram(peer, Bytes::from(d));
    }

    pub(super) fn datagram(&self, peer: NodeId, d: Bytes) {
        let Some(link) = self.link(peer) else {
            self.inner
                .metrics
                .relay_dropped
                .with_label_values(&["unknown_peer"])
                .inc();
            return;
        };
        let conn = link.conn.read().expect("lock poisoned").clone();
        let Some(conn) = conn else {
            self.inner
                .metrics
                .relay_dropped
                .with_label_values(&["link_not_up"])
                .inc();
            return;
        };
        if conn.max_datagram_size().is_none_or(|max| d.len() > max) {
            self.inner
                .metrics
                .relay_dropped
                .with_label_values(&["too_large"])
                .inc();
            return;
        }
        if conn.send_datagram(d).is_err() {
            self.inner
                .metrics
                .relay_dropped
                .with_label_values(&["send_failed"])
                .inc();
        }
    }

    pub(super) async fn on_datagram(&self, peer: NodeId, d: Bytes) {
        let Some((header, _)) = DatagramHeader::parse(&d) else {
            self.inner
                .metrics
                .relay_dropped
                .with_label_values(&["malformed"])
                .inc();
            return;
        };
        let m = &self.inner.metrics;
        match header.kind {
            DatagramKind::Rtp => {
                let track = self
                    .inner
                    .inbound
                    .read()
                    .expect("lock poisoned")
                    .get(&(peer, header.slot))
                    .cloned();
                let Some(track) = track else {
                    // Packets still in flight after an unsubscribe.
                    m.relay_dropped.with_label_values(&["unknown_slot"]).inc();
                    return;
                };
                let mut payload = d.slice(DATAGRAM_HEADER_LEN..);
                let Ok(pkt) = rtp::Packet::unmarshal(&mut payload) else {
                    m.relay_dropped.with_label_values(&["malformed"]).inc();
                    return;
                };
                m.relay_packets_in.inc();
                // Gaps are NACKed through the track's upstream, which is a
                // `RelayUpstream` back to `peer`.
                track.relayed_packet(pkt);
            }
            DatagramKind::Pli => {
                let leg = self.leg(peer, header.slot);
                if let Some(leg) = leg {
                    leg.up.request_keyframe().await;
                }
            }
            DatagramKind::Nack => {
                let Some(leg) = self.leg(peer, header.slot) else {
                    return;
                };
                let resend: Vec<Bytes> = {
                    let buf = leg.buffer.lock().expect("lock poisoned");
                    decode_nack(&d[DATAGRAM_HEADER_LEN..])
                        .into_iter()
                        .filter_map(|s| buf.get(s).cloned())
                        .collect()
                };
                for p in resend {
                    m.relay_retransmits.inc();
                    self.datagram(peer, p);
                }
            }
        }
    }
}
