//! A resumed session taking back its seat's peer connection.
//!
//! Why: a laptop that changes networks loses its signalling socket and its
//! media path at once. Starting over with a new peer connection costs the
//! seat its tracks: everyone renegotiates, and video is back only after a
//! new publish, a new subscribe and a keyframe on each. The browser keeps
//! its peer connection instead, and so does the node: the seat's actor
//! keeps running through the grace period (the room's seat holds its
//! handle), this registry finds it again for the resumed session, and the
//! browser restarts ICE over the new socket. Nobody else notices more than
//! "reconnecting".

use crate::metrics::Metrics;
use crate::outbox::{cmd_channel, CmdSender, Outbox, WeakCmdSender};
use crate::peer::{self, PeerCmd, PeerCtx, RtcConfig};
use crate::room::{Room, SeatMedia};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::info;
use veche_protocol::signal::Resume;
use veche_protocol::{limits, ParticipantId, RoomId};

/// The peer actors of this node by seat, held weakly: an entry never keeps
/// an actor alive, and one whose actor ended is skipped and swept.
#[derive(Default)]
pub(crate) struct PeerRegistry {
    peers: Mutex<HashMap<(RoomId, ParticipantId), WeakCmdSender<PeerCmd>>>,
}

impl PeerRegistry {
    fn register(&self, room: RoomId, id: ParticipantId, cmd: &CmdSender<PeerCmd>) {
        let mut peers = self.peers.lock().expect("peer registry lock");
        peers.retain(|_, p| p.upgrade().is_some());
        peers.insert((room, id), cmd.downgrade());
    }

    fn live(&self, room: RoomId, id: &ParticipantId) -> Option<CmdSender<PeerCmd>> {
        let peers = self.peers.lock().expect("peer registry lock");
        peers.get(&(room, id.clone()))?.upgrade()
    }
}

/// What a session needs from its node to get a connection (not the whole
/// `Shared`, which holds the registry: no import cycle).
pub(crate) struct NodeMedia<'a> {
    /// The node's registry.
    pub peers: &'a PeerRegistry,
    /// Where new connections bind.
    pub rtc: &'a RtcConfig,
    /// Node metrics.
    pub metrics: &'a Metrics,
}

/// A session's peer connection: a new actor, or the seat's earlier one.
pub(crate) struct Attached {
    /// Its command queue.
    pub cmd: CmdSender<PeerCmd>,
    /// Which of the two.
    pub media: SeatMedia,
}

/// The connection for a session of `id` in `room` whose messages go to
/// `out`. A resume that asks to keep its media, with the right token,
/// gets the seat's running actor (rebound to `out` by [`seated`] once the
/// room has queued its `joined`); anything else gets a new actor.
pub(crate) async fn attach(
    node: NodeMedia<'_>,
    room: &Arc<Room>,
    id: &ParticipantId,
    resume: Option<&Resume>,
    out: &Outbox,
) -> Result<Attached, webrtc::error::Error> {
    if let Some(r) = resume.filter(|r| r.keep_media) {
        if room.check_resume(id, &r.resume_token).is_ok() {
            if let Some(cmd) = node.peers.live(room.id(), id) {
                info!("resume keeps the seat's peer connection");
                return Ok(Attached {
                    cmd,
                    media: SeatMedia::Kept,
                });
            }
        }
    }
    let (cmd, cmd_rx) = cmd_channel::<PeerCmd>(limits::signal::PEER_QUEUE);
    let ctx = PeerCtx {
        id: id.clone(),
        room: room.clone(),
        out: out.clone(),
        metrics: node.metrics.clone(),
    };
    // The actor runs until `Close`; it is not awaited, so that a slow
    // close of its connection holds up no session.
    drop(peer::spawn(ctx, node.rtc.clone(), cmd.clone(), cmd_rx).await?);
    Ok(Attached {
        cmd,
        media: SeatMedia::New,
    })
}

/// After the room seated the session. A new connection becomes the one a
/// later resume of this seat may take back: registered only now, so a
/// refused join (a wrong resume token) never displaces the seat's own. A
/// kept connection answers on the new session's socket from now on (and
/// sends again an offer the old socket may have lost); rebound only now so
/// that `joined` reaches the browser before anything from the connection.
pub(crate) fn seated(
    peers: &PeerRegistry,
    room: RoomId,
    id: &ParticipantId,
    attached: &Attached,
    out: &Outbox,
) {
    match attached.media {
        SeatMedia::New => peers.register(room, id.clone(), &attached.cmd),
        SeatMedia::Kept => {
            let _ = attached.cmd.send(PeerCmd::Rebind(out.clone()));
        }
    }
}

/// A session that did not get its seat gives up its connection, unless it
/// was the seat's (which stays with the seat).
pub(crate) fn abandon(attached: &Attached) {
    if attached.media == SeatMedia::New {
        let _ = attached.cmd.send(PeerCmd::Close);
    }
}
