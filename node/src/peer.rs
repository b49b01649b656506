//! One participant's peer connection, driven by a single actor task.
//!
//! Everything that touches the connection (applying SDP, adding and
//! removing down tracks, publishing what arrives) goes through the actor's
//! command queue, so negotiation steps never interleave. The decisions
//! about who offers when are in [`crate::negotiation`].

use crate::ice_path::{selected_path, IcePath};
use crate::metrics::Metrics;
use crate::negotiation::{sending_track_ids, Negotiator, Step};
use crate::outbox::{CmdReceiver, CmdSender, Outbox};
pub use crate::peer_conn::RtcConfig;
use crate::peer_conn::{build_pc, ConnEvent, Handler};
use crate::room::{Participant, Room};
use crate::track::{
    forward_browser_track, local_track_for, start_down_track, BrowserUpstream, DownTrack, Origin,
    Sink, UpTrack,
};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, info, warn, Instrument};
use veche_protocol::error::ErrorBody;
use veche_protocol::signal::{IceCandidate, MediaKind, ServerMessage, TrackInfo, TrackSource};
use veche_protocol::{ErrorCode, ParticipantId, TrackId};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::PeerConnection;

/// How long the node waits for its own ICE gathering before sending an
/// SDP without candidates. Host candidates on bound sockets are gathered
/// in milliseconds; this only bounds a pathological case.
const GATHER_WAIT: Duration = Duration::from_secs(2);

/// Commands to a peer actor.
pub enum PeerCmd {
    /// The browser's offer, with what each sent track is.
    ClientOffer {
        /// SDP.
        sdp: String,
        /// msid track id -> source.
        tracks: BTreeMap<String, TrackSource>,
    },
    /// The browser's answer to our offer.
    ClientAnswer {
        /// SDP.
        sdp: String,
    },
    /// A trickled browser candidate.
    Candidate(Option<IceCandidate>),
    /// Start sending this track to the participant.
    Subscribe(Arc<UpTrack>),
    /// Stop sending this track.
    Unsubscribe(TrackId),
    /// A track arrived from the browser (from the connection's handler).
    RemoteTrack(Arc<dyn TrackRemote>),
    /// The connection is up (from the connection's handler).
    Connected,
    /// ICE (re)connected, after a restart too: read the selected path.
    IceConnected,
    /// Ask for keyframes both ways (after a resumed seat's ICE restart).
    Keyframes,
    /// A resumed session took this connection over (`crate::resume`):
    /// messages now go to its socket.
    Rebind(Outbox),
    /// Tear everything down.
    Close,
}

/// The edge-side handle of one participant's session: how the room
/// reaches a browser. Messages go to its WebSocket's queue, media changes
/// to its peer-connection actor.
#[derive(Clone)]
pub struct PeerHandle {
    /// Messages to the participant's WebSocket.
    pub out: Outbox,
    /// Commands to the participant's connection actor.
    pub cmd: CmdSender<PeerCmd>,
    /// Fired when the participant continues on another node: the session
    /// closes its socket without anyone being told they left.
    pub moved: Arc<tokio::sync::Notify>,
    /// Fired when a moderator removed the participant: the session closes
    /// its socket with `CLOSE_REMOVED` after what is queued.
    pub removed: Arc<tokio::sync::Notify>,
}

impl Participant for PeerHandle {
    fn send(&self, msg: ServerMessage) {
        let _ = self.out.send(msg);
    }

    fn subscribe(&self, track: Arc<UpTrack>) {
        let _ = self.cmd.send(PeerCmd::Subscribe(track));
    }

    fn unsubscribe(&self, track: TrackId) {
        let _ = self.cmd.send(PeerCmd::Unsubscribe(track));
    }

    fn close(&self) {
        let _ = self.cmd.send(PeerCmd::Close);
    }

    fn moved(&self) {
        let _ = self.cmd.send(PeerCmd::Close);
        self.moved.notify_one();
    }

    fn removed(&self) {
        self.removed.notify_one();
    }
}

/// Everything the actor needs besides its command queue.
pub struct PeerCtx {
    /// This participant.
    pub id: ParticipantId,
    /// Their room.
    pub room: Arc<Room>,
    /// Their WebSocket's outgoing queue.
    pub out: Outbox,
    /// Node metrics.
    pub metrics: Metrics,
}

/// `N` bytes from the OS random generator (SSRCs, ids, resume tokens).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("OS RNG available");
    b
}

/// How long a new remote track may take to show its SSRC and codec. 1 s
/// was too short on a loaded 2-core CI machine: a load bot's camera, sent
/// from its first moment, was discarded once after 1 s there.
const CODING_WAIT: Duration = Duration::from_secs(3);

/// The SSRC and codec of a new remote track. The connection usually fills
/// them in before announcing the track, but not always (a track opened
/// from a packet that arrived while the offer was still being applied):
/// giving up at once left such a track unread for the whole session, a
/// camera that never appeared for others. So wait a little.
async fn ssrc_and_codec(
    remote: &Arc<dyn TrackRemote>,
) -> Option<(u32, rtc::rtp_transceiver::rtp_sender::RTCRtpCodec)> {
    let deadline = tokio::time::Instant::now() + CODING_WAIT;
    loop {
        if let Some(&ssrc) = remote.ssrcs().await.first() {
            if let Some(codec) = remote.codec(ssrc).await {
                return Some((ssrc, codec));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts the actor. Returns its command sender; the actor ends on
/// [`PeerCmd::Close`] or when every sender is dropped.
pub async fn spawn(
    ctx: PeerCtx,
    rtc: RtcConfig,
    cmd_tx: CmdSender<PeerCmd>,
    cmd_rx: CmdReceiver<PeerCmd>,
) -> Result<tokio::task::JoinHandle<()>, webrtc::error::Error> {
    let (gathered_tx, gathered_rx) = watch::channel(false);
    let (connected_tx, connected_rx) = watch::channel(false);
    let retry = cmd_tx.clone();
    let handler = Arc::new(Handler {
        events: Box::new(move |e| {
            let _ = cmd_tx.send(match e {
                ConnEvent::Connected => PeerCmd::Connected,
                ConnEvent::IceConnected => PeerCmd::IceConnected,
                ConnEvent::RemoteTrack(t) => PeerCmd::RemoteTrack(t),
            });
        }),
        gathered: gathered_tx,
        connected: connected_tx,
        participant: ctx.id.clone(),
    });
    let pc = build_pc(&rtc, handler).await?;
    let span = tracing::info_span!("peer", participant = %ctx.id, room = %ctx.room.id());
    let path = IcePath::new(ctx.metrics.ice.clone());
    let actor = Actor {
        path,
        retry,
        path_reads: 0,
        ctx,
        pc,
        neg: Negotiator::new(),
        downs: HashMap::new(),
        declared: BTreeMap::new(),
        published: HashMap::new(),
        rebound: false,
        gathered: gathered_rx,
        connected: connected_rx,
    };
    Ok(tokio::spawn(actor.run(cmd_rx).instrument(span)))
}

struct Actor {
    ctx: PeerCtx,
    pc: Arc<dyn PeerConnection>,
    neg: Negotiator,
    downs: HashMap<TrackId, (DownTrack, Arc<UpTrack>)>,
    /// What the browser said each of its msid track ids is.
    declared: BTreeMap<String, TrackSource>,
    /// Browser msid -> our up track, for tracks this participant publishes.
    published: HashMap<String, Arc<UpTrack>>,
    /// Rebound to a resumed session, whose browser restarts ICE with its
    /// next offer: once that is answered, keyframes are asked for both
    /// ways, so video resumes without waiting for the decoders to notice
    /// their loss. (Neither end may ever have left ICE `connected`, so
    /// there need be no ICE event to wait for.)
    rebound: bool,
    gathered: watch::Receiver<bool>,
    connected: watch::Receiver<bool>,
    /// The connection's ICE path in the metrics.
    path: IcePath,
    /// To ask itself to read the path again later.
    retry: CmdSender<PeerCmd>,
    /// Reads of a path that looked peer-reflexive, for the retry limit.
    path_reads: u32,
}

/// A path that looks peer-reflexive is read again this many times, this
/// far apart: a browser's TURN relay is often seen first as peer-reflexive,
/// and it takes its candidate (and the stats) a moment to name it.
const PATH_REREADS: u32 = 5;
const PATH_REREAD_AFTER: Duration = Duration::from_millis(500);
/// When keyframes are asked for after answering a resumed seat's ICE
/// restart, each wait after the one before: ICE connects in a few round
/// trips, and the second request covers a slower path (the keyframe gate
/// passes one request per 500 ms).
const KEYFRAMES_AFTER_RESUME: [Duration; 2] =
    [Duration::from_millis(300), Duration::from_millis(700)];

impl Actor {
    async fn run(mut self, mut rx: CmdReceiver<PeerCmd>) {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                PeerCmd::ClientOffer { sdp, tracks } => self.client_offer(sdp, tracks).await,
                PeerCmd::ClientAnswer { sdp } => self.client_answer(sdp).await,
                PeerCmd::Candidate(c) => self.candidate(c).await,
                PeerCmd::Subscribe(up) => self.subscribe(up).await,
                PeerCmd::Unsubscribe(t) => self.unsubscribe(&t).await,
                PeerCmd::RemoteTrack(t) => self.remote_track(t).await,
                PeerCmd::Connected => {
                    self.ctx.room.media_connected(&self.ctx.id);
                    self.read_path().await;
                }
                PeerCmd::IceConnected => self.read_path().await,
                PeerCmd::Keyframes => self.keyframes_both_ways().await,
                PeerCmd::Rebind(out) => self.rebind(out).await,
                PeerCmd::Close => break,
            }
        }
        for (_, (down, up)) in self.downs.drain() {
            down.detach(&up, &Sink::Participant(self.ctx.id.clone()));
            drop(down);
            self.ctx.metrics.subscriptions.dec();
        }
        self.ctx.metrics.tracks.sub(self.published.len() as i64);
        if let Err(e) = self.pc.close().await {
            debug!("close: {e}");
        }
    }

    /// Answers on a resumed session's socket from now on. An offer of
    /// ours still waiting for its answer may have died with the old
    /// socket: it goes again (a browser that did get it answers the same
    /// offer twice, which changes nothing).
    async fn rebind(&mut self, out: Outbox) {
        self.ctx.out = out;
        self.rebound = true;
        if self.neg.offer_in_flight() {
            self.send_local_description(|sdp| ServerMessage::Offer { sdp })
                .await;
        }
    }

    /// The first browser offer answered after a rebind restarted ICE: ask
    /// for keyframes once the new path is likely up, and again a little
    /// later in case it was not (requests are coalesced per track).
    fn after_resumed_offer(&mut self) {
        if !std::mem::take(&mut self.rebound) {
            return;
        }
        let retry = self.retry.clone();
        tokio::spawn(async move {
            for wait in KEYFRAMES_AFTER_RESUME {
                tokio::time::sleep(wait).await;
                if retry.send(PeerCmd::Keyframes).is_err() {
                    return;
                }
            }
        });
    }

    /// Keyframes from this browser for everyone watching it, and for it
    /// from everyone it watches.
    async fn keyframes_both_ways(&mut self) {
        for up in self
            .published
            .values()
            .chain(self.downs.values().map(|(_, up)| up))
        {
            up.request_keyframe().await;
        }
    }

    /// Puts the selected ICE pair in the metrics, if ICE selected one.
    async fn read_path(&mut self) {
        match selected_path(&self.pc).await {
            Some(kind) => {
                if self.path.current() != Some(kind) {
                    info!(local = kind.local, remote = kind.remote, "ICE path");
                }
                self.path.selected(kind);
                if kind.remote == "prflx" && self.path_reads < PATH_REREADS {
                    self.path_reads += 1;
                    let retry = self.retry.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(PATH_REREAD_AFTER).await;
                        let _ = retry.send(PeerCmd::IceConnected);
                    });
                }
            }
            None => debug!("ICE connected without a selected pair in the stats"),
        }
    }

    fn error(&self, code: ErrorCode, message: String, request: &str) {
        self.ctx
            .metrics
            .signalling_errors
            .with_label_values(&[code.as_str()])
            .inc();
        let _ = self.ctx.out.send(ServerMessage::Error {
            error: ErrorBody::new(code, message),
            request: Some(request.to_owned()),
            client_msg_id: None,
        });
    }

    /// Sends the local description once ICE gathering is done, so it
    /// carries the node's candidates and the node needs no trickle.
    async fn send_local_description(&mut self, wrap: impl FnOnce(String) -> ServerMessage) {
        let t0 = std::time::Instant::now();
        let _ = tokio::time::timeout(GATHER_WAIT, self.gathered.wait_for(|g| *g)).await;
        debug!(waited = ?t0.elapsed(), "ICE gathering done");
        if let Some(local) = self.pc.local_description().await {
            let _ = self.ctx.out.send(wrap(local.sdp));
        }
    }

    async fn client_offer(&mut self, sdp: String, tracks: BTreeMap<String, TrackSource>) {
        if self.neg.client_offer() == Step::RejectOffer {
            self.error(
                ErrorCode::InvalidState,
                "the node has an offer outstanding; answer it, then offer again".into(),
                "offer",
            );
            return;
        }
        self.declared.extend(tracks);
        let result = async {
            let offer = RTCSessionDescription::offer(sdp.clone())?;
            self.pc.set_remote_description(offer).await?;
            let answer = self.pc.create_answer(None).await?;
            self.pc.set_local_description(answer).await?;
            Ok::<_, webrtc::error::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                self.send_local_description(|sdp| ServerMessage::Answer { sdp })
                    .await;
                self.after_resumed_offer();
                // A track the browser no longer sends was removed on its
                // side (it stopped sharing its screen): stop forwarding it.
                let sending = sending_track_ids(&sdp);
                for t in self.ctx.room.stale_tracks(&self.ctx.id, &sending) {
                    self.published.retain(|_, up| up.info.id != t);
                    self.ctx.metrics.tracks.dec();
                    self.ctx.room.unpublish(&t);
                }
            }
            Err(e) => {
                warn!("client offer refused: {e}");
                self.error(
                    ErrorCode::BadRequest,
                    format!("offer could not be applied: {e}"),
                    "offer",
                );
            }
        }
        if self.neg.client_offer_answered() == Step::SendOffer {
            self.send_offer().await;
        }
    }

    async fn client_answer(&mut self, sdp: String) {
        if self.neg.client_answer() == Step::RejectAnswer {
            self.error(
                ErrorCode::InvalidState,
                "no offer is outstanding".into(),
                "answer",
            );
            return;
        }
        let result = async {
            let answer = RTCSessionDescription::answer(sdp)?;
            self.pc.set_remote_description(answer).await
        }
        .await;
        if let Err(e) = result {
            warn!("client answer refused: {e}");
            self.error(
                ErrorCode::BadRequest,
                format!("answer could not be applied: {e}"),
                "answer",
            );
        }
        if self.neg.answer_applied() == Step::SendOffer {
            self.send_offer().await;
        }
    }

    async fn send_offer(&mut self) {
        self.neg.offer_sent();
        let result = async {
            let offer = self.pc.create_offer(None).await?;
            self.pc.set_local_description(offer).await?;
            Ok::<_, webrtc::error::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                self.send_local_description(|sdp| ServerMessage::Offer { sdp })
                    .await
            }
            Err(e) => {
                warn!("creating an offer failed: {e}");
                self.neg.offer_failed();
            }
        }
    }

    async fn candidate(&mut self, c: Option<IceCandidate>) {
        let Some(c) = c else { return };
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_m_line_index,
            username_fragment: c.username_fragment,
            url: None,
        };
        if let Err(e) = self.pc.add_ice_candidate(init).await {
            debug!("candidate refused: {e}");
            self.error(
                ErrorCode::BadRequest,
                format!("candidate refused: {e}"),
                "candidate",
            );
        } else if *self.connected.borrow() {
            // The candidate may name the connected pair's remote end (a
            // relay candidate that came after its first check).
            self.read_path().await;
        }
    }

    async fn subscribe(&mut self, up: Arc<UpTrack>) {
        if self.downs.contains_key(&up.info.id) {
            return;
        }
        let out_ssrc = u32::from_be_bytes(random_bytes());
        let local = local_track_for(&up, out_ssrc);
        let sender = match self
            .pc
            .add_track(local.clone() as Arc<dyn TrackLocal>)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                warn!(track = %up.info.id, "add_track failed: {e}");
                return;
            }
        };
        let down = start_down_track(
            up.clone(),
            self.ctx.id.clone(),
            local,
            sender,
            out_ssrc,
            self.connected.clone(),
            self.ctx.metrics.clone(),
        );
        self.ctx.metrics.subscriptions.inc();
        self.downs.insert(up.info.id.clone(), (down, up));
        if self.neg.tracks_changed() == Step::SendOffer {
            self.send_offer().await;
        }
    }

    async fn unsubscribe(&mut self, track: &TrackId) {
        let Some((down, up)) = self.downs.remove(track) else {
            return;
        };
        down.detach(&up, &Sink::Participant(self.ctx.id.clone()));
        if let Err(e) = self.pc.remove_track(&down.sender).await {
            debug!(track = %track, "remove_track: {e}");
        }
        drop(down);
        self.ctx.metrics.subscriptions.dec();
        if self.neg.tracks_changed() == Step::SendOffer {
            self.send_offer().await;
        }
    }

    async fn remote_track(&mut self, remote: Arc<dyn TrackRemote>) {
        let msid = remote.track_id().await;
        if self.published.contains_key(&msid) {
            return;
        }
        let Some((ssrc, codec)) = ssrc_and_codec(&remote).await else {
            warn!(%msid, "remote track without SSRC or codec; discarding its packets");
            // Unread, the connection's queue for this track fills and the
            // driver logs every packet it drops: read and discard instead.
            tokio::spawn(async move { while remote.poll().await.is_some() {} });
            return;
        };
        let kind = if codec.mime_type.to_ascii_lowercase().starts_with("audio/") {
            MediaKind::Audio
        } else {
            MediaKind::Video
        };
        let source = self.declared.get(&msid).copied().unwrap_or(match kind {
            MediaKind::Audio => TrackSource::Microphone,
            MediaKind::Video => TrackSource::Camera,
        });
        let stream_id = match source {
            TrackSource::Screen | TrackSource::ScreenAudio => format!("{}-screen", self.ctx.id),
            _ => self.ctx.id.to_string(),
        };
        let info = TrackInfo {
            id: TrackId::from_random(random_bytes()),
            kind,
            source,
            stream_id,
        };
        info!(track = %info.id, ?source, codec = %codec.mime_type, "publishing");
        let upstream = BrowserUpstream::new(remote.clone(), ssrc, info.id.clone());
        let up = UpTrack::new(
            info.clone(),
            self.ctx.id.clone(),
            codec,
            msid.clone(),
            Origin::Local,
            upstream,
            self.ctx.metrics.clone(),
        );
        if let Err(e) = self.ctx.room.publish(up.clone()) {
            warn!("publish refused: {e}");
            return;
        }
        self.ctx.metrics.tracks.inc();
        self.published.insert(msid, up.clone());
        let room = self.ctx.room.clone();
        let metrics = self.ctx.metrics.clone();
        tokio::spawn(
            async move {
                forward_browser_track(up.clone(), remote, metrics).await;
                room.unpublish(&up.info.id);
            }
            .in_current_span(),
        );
    }
}
