use super::*;
use crate::relay_tls;
use crate::track::testing::{local_track, vp8};
use crate::track::{Origin, Sink};
use bytes::Bytes;
use rtc::rtp;
use rtc::shared::marshal::Marshal;
use std::time::Duration;
use veche_protocol::relay::{DatagramHeader, DatagramKind, RELAY_VERSION};
use veche_protocol::signal::{MediaKind, TrackInfo, TrackSource};
use veche_protocol::ParticipantId;

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
    let (published, publisher) = local_track(info(), ParticipantId::from_random([9; 8]));

    // B asks A for the track; A sees who asked (from the certificate).
    b.relay.learn(&a.peer);
    let metrics = b.metrics.clone();
    let (stand_in, slot) = b.relay.subscribe(NodeId(1), room, info().id, |upstream| {
        UpTrack::new(
            info(),
            ParticipantId::from_random([9; 8]),
            vp8(),
            String::new(),
            Origin::Relayed,
            upstream,
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
        if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(100), rx1.recv()).await {
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
    let before = publisher.keyframes();
    stand_in.request_keyframe().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while publisher.keyframes() == before {
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
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), a.events.recv()).await
    {
        match ev {
            RelayEvent::LinkLost(p) => lost.push(p.0),
            RelayEvent::Message { from, msg } => panic!("{from} got {msg:?} through"),
        }
    }
    lost.sort();
    assert_eq!(lost, vec![2, 3, 4, 5]);
}
