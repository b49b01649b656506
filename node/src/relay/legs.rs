//! This node's tracks relayed out: one leg per (track, peer node), with
//! the buffer that answers the peer's NACKs.

use super::Relay;
use crate::forward::RetransmitBuffer;
use crate::track::{Origin, Sink, UpTrack};
use bytes::Bytes;
use rtc::rtp;
use rtc::shared::marshal::{Marshal, MarshalSize};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tracing::{debug, info};
use veche_protocol::relay::{DatagramHeader, DatagramKind, DATAGRAM_HEADER_LEN};
use veche_protocol::{NodeId, TrackId};

/// Packets queued per relay leg before the newest are dropped; as for a
/// subscriber's down track.
const LEG_QUEUE: usize = 256;

/// One of this node's tracks relayed to one peer.
pub(super) struct Leg {
    pub(super) up: Arc<UpTrack>,
    pub(super) track: TrackId,
    pub(super) buffer: Mutex<RetransmitBuffer>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Leg {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// Starts relaying one of this node's tracks to `peer`, which asked
    /// with `slot`. A second request for the same track replaces the first
    /// (the peer rebuilt its view), so a track crosses a node pair once.
    pub fn start_leg(&self, peer: NodeId, slot: u16, up: Arc<UpTrack>) {
        if up.origin() == Origin::Relayed {
            debug!(%peer, track = %up.info.id, "refusing to relay a relayed track");
            return;
        }
        self.stop_leg(peer, &up.info.id);
        let (tx, mut rx) = mpsc::channel::<rtp::Packet>(LEG_QUEUE);
        let relay = self.clone();
        let track = up.info.id.clone();
        let leg = Arc::new_cyclic(|weak: &std::sync::Weak<Leg>| {
            let weak = weak.clone();
            let task = tokio::spawn(async move {
                while let Some(mut pkt) = rx.recv().await {
                    // Header-extension ids are negotiated per connection and
                    // mean nothing on the other node, which strips them
                    // anyway; dropping them here keeps packets small enough
                    // for a datagram.
                    pkt.header.extension = false;
                    pkt.header.extension_profile = 0;
                    pkt.header.extensions.clear();
                    // One allocation per packet: header, then the packet
                    // marshalled in place behind it.
                    let len = DATAGRAM_HEADER_LEN + pkt.marshal_size();
                    let mut d = Vec::with_capacity(len);
                    DatagramHeader {
                        kind: DatagramKind::Rtp,
                        slot,
                    }
                    .write(&mut d);
                    d.resize(len, 0);
                    if pkt.marshal_to(&mut d[DATAGRAM_HEADER_LEN..]).is_err() {
                        continue;
                    }
                    let d = Bytes::from(d);
                    if let Some(leg) = weak.upgrade() {
                        leg.buffer
                            .lock()
                            .expect("lock poisoned")
                            .insert(pkt.header.sequence_number, d.clone());
                    }
                    relay.inner.metrics.relay_packets_out.inc();
                    relay.inner.metrics.relay_bytes_out.inc_by(d.len() as u64);
                    relay.datagram(peer, d);
                }
            });
            Leg {
                up: up.clone(),
                track,
                buffer: Mutex::new(RetransmitBuffer::default()),
                task,
            }
        });
        up.attach(Sink::Node(peer), tx);
        self.inner
            .legs
            .lock()
            .expect("lock poisoned")
            .insert((peer, slot), leg);
        self.inner
            .metrics
            .relay_tracks_out
            .with_label_values(&[&peer.to_string()])
            .inc();
        info!(%peer, track = %up.info.id, slot, "relaying track");
        // The peer's subscribers need a keyframe to start decoding.
        tokio::spawn(async move { up.request_keyframe().await });
    }

    /// Stops relaying `track` to `peer`.
    pub fn stop_leg(&self, peer: NodeId, track: &TrackId) {
        let mut legs = self.inner.legs.lock().expect("lock poisoned");
        let keys: Vec<(NodeId, u16)> = legs
            .iter()
            .filter(|((p, _), l)| *p == peer && &l.track == track)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some(leg) = legs.remove(&k) {
                leg.up.detach(&Sink::Node(peer));
                self.inner
                    .metrics
                    .relay_tracks_out
                    .with_label_values(&[&peer.to_string()])
                    .dec();
            }
        }
    }

    /// Stops relaying `track` to every node (its publisher is gone).
    pub fn stop_track(&self, track: &TrackId) {
        let peers: Vec<NodeId> = self
            .inner
            .legs
            .lock()
            .expect("lock poisoned")
            .iter()
            .filter(|(_, l)| &l.track == track)
            .map(|((p, _), _)| *p)
            .collect();
        for p in peers {
            self.stop_leg(p, track);
        }
    }

    /// The leg the peer knows as `slot`.
    pub(super) fn leg(&self, peer: NodeId, slot: u16) -> Option<Arc<Leg>> {
        self.inner
            .legs
            .lock()
            .expect("lock poisoned")
            .get(&(peer, slot))
            .cloned()
    }
}
