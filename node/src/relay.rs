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

use crate::forward::RetransmitBuffer;
use crate::metrics::Metrics;
use crate::relay_tls::{self, RelayTls};
use crate::track::{Feedback, Sink, UpSource, UpTrack};
use bytes::Bytes;
use rtc::rtp;
use rtc::shared::marshal::{Marshal, MarshalSize, Unmarshal};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};
use veche_protocol::relay::{
    decode_nack, encode_nack, DatagramHeader, DatagramKind, RelayMsg, DATAGRAM_HEADER_LEN,
    RELAY_VERSION,
};
use veche_protocol::rpc::RelayPeer;
use veche_protocol::{NodeId, RoomId, TrackId};

/// Packets queued per relay leg before the newest are dropped; as for a
/// subscriber's down track.
const LEG_QUEUE: usize = 256;
/// Dial attempts before a peer counts as lost.
const DIAL_ATTEMPTS: u32 = 3;
/// Pause between dial attempts.
const DIAL_RETRY: Duration = Duration::from_millis(250);

/// What the relay hands to the node.
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

/// One of this node's tracks relayed to one peer.
struct Leg {
    up: Arc<UpTrack>,
    track: TrackId,
    buffer: Mutex<RetransmitBuffer>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Leg {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A connection this node dialed, for sending.
struct OutLink {
    frames: mpsc::UnboundedSender<Vec<u8>>,
    conn: RwLock<Option<quinn::Connection>>,
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

    /// Sends a PLI or NACK for the track in `slot` to its publisher's node.
    pub fn send_feedback(&self, peer: NodeId, slot: u16, kind: DatagramKind, payload: &[u8]) {
        let mut d = Vec::with_capacity(DATAGRAM_HEADER_LEN + payload.len());
        DatagramHeader { kind, slot }.write(&mut d);
        d.extend_from_slice(payload);
        self.datagram(peer, Bytes::from(d));
    }

    /// Asks `peer` to relay `track` here. `make` builds the local stand-in
    /// for the track from the feedback handle (which knows the slot).
    pub fn subscribe(
        &self,
        peer: NodeId,
        room: RoomId,
        track: TrackId,
        make: impl FnOnce(Feedback) -> Arc<UpTrack>,
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
        let up = make(Feedback {
            relay: self.clone(),
            peer,
            slot,
        });
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

    /// Starts relaying one of this node's tracks to `peer`, which asked
    /// with `slot`. A second request for the same track replaces the first
    /// (the peer rebuilt its view), so a track crosses a node pair once.
    pub fn start_leg(&self, peer: NodeId, slot: u16, up: Arc<UpTrack>) {
        if matches!(up.source(), UpSource::Relayed(_)) {
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

    fn datagram(&self, peer: NodeId, d: Bytes) {
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

    /// The link to `peer`, dialing it if there is none.
    fn link(&self, peer: NodeId) -> Option<Arc<OutLink>> {
        let mut links = self.inner.links.lock().expect("lock poisoned");
        if let Some(l) = links.get(&peer) {
            return Some(l.clone());
        }
        let addr = self
            .inner
            .addrs
            .lock()
            .expect("lock poisoned")
            .get(&peer)?
            .clone();
        let (frames, rx) = mpsc::unbounded_channel();
        let _ = frames.send(
            RelayMsg::Hello {
                version: RELAY_VERSION,
                relay_addr: self.inner.advertise.clone(),
            }
            .encode(),
        );
        let link = Arc::new(OutLink {
            frames,
            conn: RwLock::new(None),
        });
        links.insert(peer, link.clone());
        let relay = self.clone();
        let l = link.clone();
        tokio::spawn(
            async move { relay.run_link(peer, addr, l, rx).await }
                .instrument(tracing::info_span!("relay_link", node = %self.inner.me, %peer)),
        );
        Some(link)
    }

    async fn dial(&self, peer: NodeId, addr: &str) -> Result<quinn::Connection, String> {
        let sock = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| format!("cannot resolve {addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("{addr} resolves to nothing"))?;
        let connecting = self
            .inner
            .endpoint
            .connect(sock, &relay_tls::server_name(peer))
            .map_err(|e| e.to_string())?;
        connecting.await.map_err(|e| e.to_string())
    }

    async fn run_link(
        &self,
        peer: NodeId,
        addr: String,
        link: Arc<OutLink>,
        mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    ) {
        let mut conn = None;
        for attempt in 1..=DIAL_ATTEMPTS {
            match self.dial(peer, &addr).await {
                Ok(c) => {
                    conn = Some(c);
                    break;
                }
                Err(e) => {
                    warn!(attempt, "dialing {addr} failed: {e}");
                    tokio::time::sleep(DIAL_RETRY).await;
                }
            }
        }
        if let Some(conn) = conn {
            info!("relay link up");
            *link.conn.write().expect("lock poisoned") = Some(conn.clone());
            self.inner.metrics.relay_links.inc();
            if let Ok(mut stream) = conn.open_uni().await {
                loop {
                    tokio::select! {
                        frame = rx.recv() => match frame {
                            Some(f) => if stream.write_all(&f).await.is_err() { break },
                            None => break,
                        },
                        _ = conn.closed() => break,
                    }
                }
            }
            self.inner.metrics.relay_links.dec();
            info!(reason = ?conn.close_reason(), "relay link down");
        }
        {
            let mut links = self.inner.links.lock().expect("lock poisoned");
            if links.get(&peer).is_some_and(|l| Arc::ptr_eq(l, &link)) {
                links.remove(&peer);
            }
        }
        let _ = self.inner.events.send(RelayEvent::LinkLost(peer));
    }

    async fn accept_loop(&self) {
        while let Some(incoming) = self.inner.endpoint.accept().await {
            let relay = self.clone();
            tokio::spawn(
                async move {
                    match incoming.await {
                        Ok(conn) => relay.serve_connection(conn).await,
                        Err(e) => warn!("relay handshake failed: {e}"),
                    }
                }
                .in_current_span(),
            );
        }
    }

    async fn serve_connection(&self, conn: quinn::Connection) {
        let Some(peer) = relay_tls::peer_node_id(&conn) else {
            warn!("relay peer certificate names no node; closing");
            conn.close(1u32.into(), b"certificate names no node");
            return;
        };
        if peer == self.inner.me {
            conn.close(1u32.into(), b"connected to itself");
            return;
        }
        let datagrams = {
            let relay = self.clone();
            let conn = conn.clone();
            tokio::spawn(async move {
                while let Ok(d) = conn.read_datagram().await {
                    relay.on_datagram(peer, d).await;
                }
            })
        };
        match self.read_control(peer, &conn).await {
            Ok(()) => debug!(%peer, "relay connection ended"),
            Err(e) => {
                warn!(%peer, "relay connection failed: {e}");
                conn.close(2u32.into(), e.as_bytes());
            }
        }
        datagrams.abort();
        let _ = self.inner.events.send(RelayEvent::LinkLost(peer));
    }

    async fn read_control(&self, peer: NodeId, conn: &quinn::Connection) -> Result<(), String> {
        let mut stream = conn.accept_uni().await.map_err(|e| e.to_string())?;
        let mut hello = false;
        loop {
            let mut prefix = [0u8; 4];
            if stream.read_exact(&mut prefix).await.is_err() {
                return Ok(());
            }
            let len = RelayMsg::check_len(prefix).map_err(|e| e.to_string())?;
            let mut body = vec![0u8; len];
            stream
                .read_exact(&mut body)
                .await
                .map_err(|e| format!("truncated control frame: {e}"))?;
            let msg = RelayMsg::decode(&body).map_err(|e| e.to_string())?;
            match msg {
                RelayMsg::Hello {
                    version,
                    relay_addr,
                } => {
                    if version != RELAY_VERSION {
                        return Err(format!(
                            "relay protocol version {version}, expected {RELAY_VERSION}"
                        ));
                    }
                    self.learn(&RelayPeer {
                        node_id: peer,
                        relay_addr,
                    });
                    hello = true;
                }
                _ if !hello => return Err("the first control frame must be hello".into()),
                msg => {
                    let _ = self
                        .inner
                        .events
                        .send(RelayEvent::Message { from: peer, msg });
                }
            }
        }
    }

    async fn on_datagram(&self, peer: NodeId, d: Bytes) {
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
                let missing = track.relayed_packet(pkt);
                if !missing.is_empty() {
                    m.relay_nacks.inc_by(missing.len() as u64);
                    self.send_feedback(
                        peer,
                        header.slot,
                        DatagramKind::Nack,
                        &encode_nack(&missing),
                    );
                }
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

    fn leg(&self, peer: NodeId, slot: u16) -> Option<Arc<Leg>> {
        self.inner
            .legs
            .lock()
            .expect("lock poisoned")
            .get(&(peer, slot))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay_tls;
    use veche_protocol::signal::{MediaKind, TrackInfo, TrackSource};
    use veche_protocol::ParticipantId;

    fn codec() -> rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
        rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
            mime_type: "video/VP8".into(),
            clock_rate: 90_000,
            ..Default::default()
        }
    }

    fn info() -> TrackInfo {
        TrackInfo {
            id: TrackId::from_random([5; 8]),
            kind: MediaKind::Video,
            source: TrackSource::Camera,
            stream_id: "s".into(),
        }
    }

    fn packet(seq: u16) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                payload_type: 96,
                sequence_number: seq,
                timestamp: u32::from(seq) * 3000,
                ssrc: 1234,
                ..Default::default()
            },
            payload: Bytes::from(vec![seq as u8; 1000]),
        }
    }

    struct Node {
        relay: Relay,
        events: mpsc::UnboundedReceiver<RelayEvent>,
        peer: RelayPeer,
        metrics: Metrics,
    }

    fn node(ca: &std::path::Path, id: u64) -> Node {
        let dir = ca.join(format!("n{id}"));
        relay_tls::issue_node_cert(ca, NodeId(id), &dir).unwrap();
        let tls = relay_tls::load(&dir, NodeId(id)).unwrap();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap().to_string();
        let metrics = Metrics::new();
        let (relay, events) =
            Relay::start(NodeId(id), socket, tls, addr.clone(), metrics.clone()).unwrap();
        Node {
            relay,
            events,
            peer: RelayPeer {
                node_id: NodeId(id),
                relay_addr: addr,
            },
            metrics,
        }
    }

    async fn next_message(n: &mut Node) -> (NodeId, RelayMsg) {
        match tokio::time::timeout(Duration::from_secs(5), n.events.recv())
            .await
            .expect("no relay event within 5 s")
            .expect("event stream ended")
        {
            RelayEvent::Message { from, msg } => (from, msg),
            RelayEvent::LinkLost(p) => panic!("link to {p} lost"),
        }
    }

    async fn recv_seq(rx: &mut mpsc::Receiver<rtp::Packet>) -> u16 {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no relayed packet within 5 s")
            .expect("queue closed")
            .header
            .sequence_number
    }

    #[tokio::test]
    async fn a_track_crosses_the_relay_once_and_loss_and_keyframe_requests_go_back() {
        let ca = tempfile::tempdir().unwrap();
        relay_tls::generate_ca(ca.path()).unwrap();
        let mut a = node(ca.path(), 1);
        let b = node(ca.path(), 2);
        let room = RoomId(7);
        let published = UpTrack::for_test(info(), codec());

        // B asks A for the track; A sees who asked (from the certificate).
        b.relay.learn(&a.peer);
        let metrics = b.metrics.clone();
        let (stand_in, slot) = b.relay.subscribe(NodeId(1), room, info().id, |fb| {
            UpTrack::relayed(
                info(),
                ParticipantId::from_random([9; 8]),
                codec(),
                fb,
                metrics,
            )
        });
        let (from, msg) = next_message(&mut a).await;
        assert_eq!(from, NodeId(2));
        assert_eq!(
            msg,
            RelayMsg::Subscribe {
                room,
                track: info().id,
                slot
            }
        );
        a.relay.start_leg(NodeId(2), slot, published.clone());
        // A second request for the same track replaces the first leg.
        a.relay.start_leg(NodeId(2), slot, published.clone());
        assert_eq!(
            a.metrics.relay_tracks_out.with_label_values(&["2"]).get(),
            1
        );

        // Two local subscribers on B share the one relayed track.
        let (tx1, mut rx1) = mpsc::channel(64);
        let (tx2, mut rx2) = mpsc::channel(64);
        stand_in.attach(Sink::Participant(ParticipantId::from_random([1; 8])), tx1);
        stand_in.attach(Sink::Participant(ParticipantId::from_random([2; 8])), tx2);
        // Wait for A's link to B (dialed back from B's hello) to come up.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            published.fan_out(packet(1));
            if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(100), rx1.recv()).await
            {
                assert_eq!(p.header.sequence_number, 1);
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no packet crossed the relay within 5 s"
            );
        }
        while rx2.try_recv().is_ok() {}
        while rx1.try_recv().is_ok() {}
        published.fan_out(packet(2));
        assert_eq!(recv_seq(&mut rx1).await, 2);
        assert_eq!(recv_seq(&mut rx2).await, 2);

        // Packet 3 is "lost" on the way: A keeps it for retransmission
        // but does not send it. B notices the gap when 4 arrives, NACKs,
        // and A resends 3.
        {
            let leg = a.relay.leg(NodeId(2), slot).unwrap();
            let mut d = Vec::new();
            DatagramHeader {
                kind: DatagramKind::Rtp,
                slot,
            }
            .write(&mut d);
            d.extend_from_slice(&packet(3).marshal().unwrap());
            leg.buffer.lock().unwrap().insert(3, Bytes::from(d));
        }
        published.fan_out(packet(4));
        assert_eq!(recv_seq(&mut rx1).await, 4);
        assert_eq!(recv_seq(&mut rx1).await, 3, "the NACKed packet came back");
        assert_eq!(b.metrics.relay_nacks.get(), 1);
        assert_eq!(a.metrics.relay_retransmits.get(), 1);

        // A keyframe request on B reaches the publisher on A.
        let UpSource::Test(requests) = published.source() else {
            unreachable!()
        };
        let before = requests.load(std::sync::atomic::Ordering::Relaxed);
        stand_in.request_keyframe().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while requests.load(std::sync::atomic::Ordering::Relaxed) == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "PLI did not reach A"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // The last subscriber on B leaves: B unsubscribes, A stops.
        b.relay.unsubscribe(NodeId(1), room, info().id, slot);
        let (_, msg) = next_message(&mut a).await;
        let RelayMsg::Unsubscribe { track, .. } = msg else {
            panic!("expected unsubscribe, got {msg:?}")
        };
        a.relay.stop_leg(NodeId(2), &track);
        assert_eq!(
            a.metrics.relay_tracks_out.with_label_values(&["2"]).get(),
            0
        );
        assert_eq!(b.metrics.relay_tracks_in.with_label_values(&["1"]).get(), 0);
    }

    #[tokio::test]
    async fn a_peer_that_goes_away_is_reported_lost() {
        let ca = tempfile::tempdir().unwrap();
        relay_tls::generate_ca(ca.path()).unwrap();
        let mut a = node(ca.path(), 1);
        let b = node(ca.path(), 2);
        b.relay.learn(&a.peer);
        b.relay
            .send(NodeId(1), &RelayMsg::RoomClosed { room: RoomId(1) });
        let (from, _) = next_message(&mut a).await;
        assert_eq!(from, NodeId(2));
        b.relay.close();
        let t0 = std::time::Instant::now();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), a.events.recv())
                .await
                .expect("loss not reported within 5 s")
            {
                Some(RelayEvent::LinkLost(p)) => {
                    assert_eq!(p, NodeId(2));
                    break;
                }
                Some(_) => {}
                None => panic!("event stream ended"),
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }

    #[tokio::test]
    async fn a_node_with_a_certificate_from_another_ca_cannot_link() {
        let ca = tempfile::tempdir().unwrap();
        relay_tls::generate_ca(ca.path()).unwrap();
        let other = tempfile::tempdir().unwrap();
        relay_tls::generate_ca(other.path()).unwrap();
        let mut a = node(ca.path(), 1);
        let mut intruder = node(other.path(), 2);
        intruder.relay.learn(&a.peer);
        intruder
            .relay
            .send(NodeId(1), &RelayMsg::RoomClosed { room: RoomId(1) });
        // The intruder's dial fails and it reports A lost; A never hears a
        // message.
        let ev = tokio::time::timeout(Duration::from_secs(10), intruder.events.recv())
            .await
            .expect("dial failure not reported")
            .unwrap();
        assert!(matches!(ev, RelayEvent::LinkLost(NodeId(1))), "{ev:?}");
        assert!(a.events.try_recv().is_err());
    }

    /// Dials `a` as node `id` with a raw QUIC connection, writes `bytes` on
    /// the control stream, and returns why `a` closed the connection.
    async fn closed_after(ca: &std::path::Path, a: &Node, id: u64, bytes: &[u8]) -> String {
        let dir = ca.join(format!("raw{id}"));
        relay_tls::issue_node_cert(ca, NodeId(id), &dir).unwrap();
        let tls = relay_tls::load(&dir, NodeId(id)).unwrap();
        let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        ep.set_default_client_config(tls.client);
        let conn = ep
            .connect(
                a.peer.relay_addr.parse().unwrap(),
                &relay_tls::server_name(NodeId(1)),
            )
            .unwrap()
            .await
            .unwrap();
        let mut s = conn.open_uni().await.unwrap();
        s.write_all(bytes).await.unwrap();
        let reason = tokio::time::timeout(Duration::from_secs(5), conn.closed())
            .await
            .expect("the node did not close a connection sending garbage");
        match reason {
            quinn::ConnectionError::ApplicationClosed(c) => {
                String::from_utf8_lossy(&c.reason).into_owned()
            }
            other => panic!("closed for another reason: {other}"),
        }
    }

    #[tokio::test]
    async fn a_peer_sending_a_broken_control_stream_is_disconnected_with_a_reason() {
        let ca = tempfile::tempdir().unwrap();
        relay_tls::generate_ca(ca.path()).unwrap();
        let mut a = node(ca.path(), 1);
        let chat = RelayMsg::RoomClosed { room: RoomId(1) }.encode();
        let why = closed_after(ca.path(), &a, 2, &chat).await;
        assert!(why.contains("hello"), "{why}");
        let mut hello_then_garbage = RelayMsg::Hello {
            version: RELAY_VERSION,
            relay_addr: "127.0.0.1:1".into(),
        }
        .encode();
        hello_then_garbage.extend_from_slice(&[0, 0, 0, 3, 0xc1, 0xc1, 0xc1]);
        let why = closed_after(ca.path(), &a, 3, &hello_then_garbage).await;
        assert!(why.contains("not a valid message"), "{why}");
        let why = closed_after(ca.path(), &a, 4, &u32::MAX.to_be_bytes()).await;
        assert!(why.contains("exceeds the limit"), "{why}");
        let old = RelayMsg::Hello {
            version: RELAY_VERSION + 1,
            relay_addr: "127.0.0.1:1".into(),
        }
        .encode();
        let why = closed_after(ca.path(), &a, 5, &old).await;
        assert!(why.contains("version"), "{why}");
        // Each broken peer is reported lost; none of its frames got through.
        let mut lost = Vec::new();
        while let Ok(Some(ev)) =
            tokio::time::timeout(Duration::from_millis(200), a.events.recv()).await
        {
            match ev {
                RelayEvent::LinkLost(p) => lost.push(p.0),
                RelayEvent::Message { from, msg } => panic!("{from} got {msg:?} through"),
            }
        }
        lost.sort();
        assert_eq!(lost, vec![2, 3, 4, 5]);
    }
}
