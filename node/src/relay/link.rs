//! The QUIC connections between nodes: dialing (one outgoing connection
//! per peer, for sending), accepting (for receiving), and reading the
//! control stream of an accepted connection.

use super::{Relay, RelayEvent};
use crate::relay_tls;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};
use veche_protocol::relay::{RelayMsg, RELAY_VERSION};
use veche_protocol::rpc::RelayPeer;
use veche_protocol::NodeId;

/// Dial attempts before a peer counts as lost.
const DIAL_ATTEMPTS: u32 = 3;
/// Pause between dial attempts.
const DIAL_RETRY: Duration = Duration::from_millis(250);

/// A connection this node dialed, for sending.
pub(super) struct OutLink {
    pub(super) frames: mpsc::UnboundedSender<Vec<u8>>,
    pub(super) conn: RwLock<Option<quinn::Connection>>,
}

impl Relay {
    /// The link to `peer`, dialing it if there is none.
    pub(super) fn link(&self, peer: NodeId) -> Option<Arc<OutLink>> {
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

    pub(super) async fn accept_loop(&self) {
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
}
