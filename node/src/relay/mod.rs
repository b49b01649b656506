//! Cascading between media nodes over QUIC: the links, and the data path
//! of relayed tracks.
//!
//! The wire format is in [`veche_protocol::relay`]. Each node dials every
//! peer it shares a room with and sends only on the connection it dialed;
//! it receives on the connections it accepted. Rooms talk to peers through
//! [`Relay::send`]; what arrives is handed to the node as [`RelayEvent`]s,
//! in order per sending node, except media, which this module routes
//! itself:
//!
//! - RTP for a relayed track goes straight into that track's fan-out
//!   ([`UpTrack::relayed_packet`]), and gaps in its sequence numbers are
//!   NACKed back to the publisher's node at once;
//! - a PLI from a peer goes to the local publisher's keyframe gate;
//! - a NACK from a peer is answered from the leg's retransmit buffer.
//!
//! A lost link (either direction) is reported once as
//! [`RelayEvent::LinkLost`]: the node treats the peer as gone, and both
//! sides rebuild their view from full room states when a link comes back.
//!
//! By concern: `link` holds the QUIC connections (dialing, accepting,
//! the control stream), `legs` this node's tracks relayed out, and
//! `datagrams` the media datagrams in both directions, including the
//! [`crate::track::Upstream`] through which a relayed track's keyframe
//! requests and NACKs go back to the publisher's node.

mod datagrams;
mod legs;
mod link;
#[cfg(test)]
mod tests;

use self::datagrams::RelayUpstream;
use self::legs::Leg;
use self::link::OutLink;

use crate::metrics::Metrics;
use crate::relay_tls::RelayTls;
use crate::track::{UpTrack, Upstream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc;
use tracing::{warn, Instrument};
use veche_protocol::relay::RelayMsg;
use veche_protocol::rpc::RelayPeer;
use veche_protocol::{NodeId, RoomId, TrackId};

/// What the relay hands to the node.
// The policy in a message (since recordings, with its running recording)
// makes messages large; they are short-lived, so boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum RelayEvent {
    /// A control message from another node.
    Message {
        /// The sending node, as its certificate names it.
        from: NodeId,
        /// The message.
        msg: RelayMsg,
    },
    /// A link to or from `peer` broke, or `peer` could not be dialed.
    LinkLost(NodeId),
}

struct Inner {
    me: NodeId,
    advertise: String,
    endpoint: quinn::Endpoint,
    links: Mutex<HashMap<NodeId, Arc<OutLink>>>,
    addrs: Mutex<HashMap<NodeId, String>>,
    /// Tracks relayed to this node: (publisher's node, slot) -> track.
    inbound: RwLock<HashMap<(NodeId, u16), Arc<UpTrack>>>,
    next_slot: Mutex<HashMap<NodeId, u16>>,
    /// This node's tracks relayed out: (peer, the peer's slot) -> leg.
    legs: Mutex<HashMap<(NodeId, u16), Arc<Leg>>>,
    events: mpsc::UnboundedSender<RelayEvent>,
    metrics: Metrics,
}

/// The relay endpoint of a media node. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

impl Relay {
    /// Starts the endpoint on an already-bound UDP socket. `advertise` is
    /// the `host:port` other nodes dial. Returns the relay and the stream
    /// of events the node must handle.
    pub fn start(
        me: NodeId,
        socket: std::net::UdpSocket,
        tls: RelayTls,
        advertise: String,
        metrics: Metrics,
    ) -> std::io::Result<(Relay, mpsc::UnboundedReceiver<RelayEvent>)> {
        let mut endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(tls.server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        endpoint.set_default_client_config(tls.client);
        let (events, rx) = mpsc::unbounded_channel();
        let relay = Relay {
            inner: Arc::new(Inner {
                me,
                advertise,
                endpoint,
                links: Mutex::new(HashMap::new()),
                addrs: Mutex::new(HashMap::new()),
                inbound: RwLock::new(HashMap::new()),
                next_slot: Mutex::new(HashMap::new()),
                legs: Mutex::new(HashMap::new()),
                events,
                metrics,
            }),
        };
        let accept = relay.clone();
        tokio::spawn(
            async move { accept.accept_loop().await }
                .instrument(tracing::info_span!("relay", node = %me)),
        );
        Ok((relay, rx))
    }

    /// The address other nodes dial.
    pub fn advertise(&self) -> &str {
        &self.inner.advertise
    }

    /// Closes every connection. Peers see the links go at once.
    pub fn close(&self) {
        self.inner
            .endpoint
            .close(0u32.into(), b"node shutting down");
    }

    /// Remembers where a peer can be dialed.
    pub fn learn(&self, peer: &RelayPeer) {
        if peer.node_id != self.inner.me {
            self.inner
                .addrs
                .lock()
                .expect("lock poisoned")
                .insert(peer.node_id, peer.relay_addr.clone());
        }
    }

    /// Queues a control message for `peer`, dialing it if needed. Never
    /// blocks, so rooms call it while holding their lock.
    pub fn send(&self, peer: NodeId, msg: &RelayMsg) {
        match self.link(peer) {
            Some(link) => {
                let _ = link.frames.send(msg.encode());
            }
            None => {
                self.inner
                    .metrics
                    .relay_dropped
                    .with_label_values(&["unknown_peer"])
                    .inc();
                warn!(%peer, "no relay address known for node; message dropped");
            }
        }
    }

    /// Asks `peer` to relay `track` here. `make` builds the local stand-in
    /// for the track around the way back to its publisher (which knows
    /// the slot).
    pub fn subscribe(
        &self,
        peer: NodeId,
        room: RoomId,
        track: TrackId,
        make: impl FnOnce(Arc<dyn Upstream>) -> Arc<UpTrack>,
    ) -> (Arc<UpTrack>, u16) {
        let slot = {
            let inbound = self.inner.inbound.read().expect("lock poisoned");
            let mut next = self.inner.next_slot.lock().expect("lock poisoned");
            let n = next.entry(peer).or_insert(0);
            while inbound.contains_key(&(peer, *n)) {
                *n = n.wrapping_add(1);
            }
            let slot = *n;
            *n = n.wrapping_add(1);
            slot
        };
        let up = make(Arc::new(RelayUpstream {
            relay: self.clone(),
            peer,
            slot,
        }));
        self.inner
            .inbound
            .write()
            .expect("lock poisoned")
            .insert((peer, slot), up.clone());
        self.inner
            .metrics
            .relay_tracks_in
            .with_label_values(&[&peer.to_string()])
            .inc();
        self.send(peer, &RelayMsg::Subscribe { room, track, slot });
        (up, slot)
    }

    /// Stops a relay started with [`Relay::subscribe`].
    pub fn unsubscribe(&self, peer: NodeId, room: RoomId, track: TrackId, slot: u16) {
        let removed = self
            .inner
            .inbound
            .write()
            .expect("lock poisoned")
            .remove(&(peer, slot));
        if removed.is_some() {
            self.inner
                .metrics
                .relay_tracks_in
                .with_label_values(&[&peer.to_string()])
                .dec();
        }
        // A peer that is not linked any more (it was lost) has dropped the
        // relay itself; dialing it just to say so would only delay.
        let linked = self
            .inner
            .links
            .lock()
            .expect("lock poisoned")
            .contains_key(&peer);
        if linked {
            self.send(peer, &RelayMsg::Unsubscribe { room, track });
        }
    }

    /// Stops every relay to and from `peer` (it is gone).
    pub fn forget_peer(&self, peer: NodeId) {
        let tracks: Vec<TrackId> = self
            .inner
            .legs
            .lock()
            .expect("lock poisoned")
            .iter()
            .filter(|((p, _), _)| *p == peer)
            .map(|(_, l)| l.track.clone())
            .collect();
        for t in tracks {
            self.stop_leg(peer, &t);
        }
        let mut inbound = self.inner.inbound.write().expect("lock poisoned");
        let before = inbound.len();
        inbound.retain(|(p, _), _| *p != peer);
        let gone = (before - inbound.len()) as i64;
        if gone > 0 {
            self.inner
                .metrics
                .relay_tracks_in
                .with_label_values(&[&peer.to_string()])
                .sub(gone);
        }
    }
}
