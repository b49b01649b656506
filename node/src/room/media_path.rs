//! The room's side of peer-to-peer calls for two: after every change it
//! asks the I/O-free [`Planner`] (`p2p.rs`) for the path, tells each of
//! its participants what changed for them (`media_path`), stops or resumes
//! forwarding the pair's tracks, and relays their `peer_signal`s.
//!
//! While two are paired, the SFU forwards nothing between them (their
//! tracks' `direct` switch): the node spends no forwarding on a call of
//! two, and what the browsers still send before they stop is counted and
//! dropped. On the switch back to the SFU the switch opens at once and
//! each video track's publisher is asked for a keyframe, so the SFU's
//! tracks decode while the browsers still show the direct ones (make
//! before break, on the client).
//!
//! A pair that returns to P2P (the room came down from more than two)
//! stays forwarded until both browsers report `connected` (`p2p_state`),
//! so the switch is make before break in that direction too; a `failed`
//! or the planner's timeout turns the room to the SFU.
//!
//! The path state has its own lock, always taken inside the room lock,
//! so [`Room::observe`] (which holds the room lock) can update it.

use super::p2p::{Facts, Member, Planner, StateError, Told};
use super::{Inner, Room};
use crate::core::Home;
use crate::track::Origin;
use std::collections::{HashMap, HashSet};
use std::sync::{MutexGuard, Weak};
use veche_protocol::moderation::RoomPolicy;
use veche_protocol::p2p::{DirectState, Pairing, PeerSignal};
use veche_protocol::signal::{ClientMessage, MediaKind, ServerMessage};
use veche_protocol::{ParticipantId, UnixMillis};

/// One room's path, what each participant was last told, and who can
/// connect directly.
pub(super) struct PathState {
    planner: Planner,
    told: HashMap<ParticipantId, Told>,
    capable: HashSet<ParticipantId>,
    /// The settle-time re-check already scheduled, if any.
    wake_at: Option<UnixMillis>,
    /// The room, for the settle-time re-check (which runs on its own task).
    room: Weak<Room>,
}

impl PathState {
    pub(super) fn new(room: Weak<Room>) -> Self {
        PathState {
            planner: Planner::default(),
            told: HashMap::new(),
            capable: HashSet::new(),
            wake_at: None,
            room,
        }
    }
}

/// Why a `peer_signal` was not relayed (all `invalid_state`: the client's
/// view of the path is behind the node's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeerSignalError {
    /// The sender is not paired with anyone now.
    #[error("you are not in a peer-to-peer call now; your media goes through the media node")]
    NotPaired,
    /// The sender is paired, but under another pairing number.
    #[error("that peer-to-peer attempt is over; use the pairing of the latest media_path")]
    StalePairing,
    /// `to` is not the sender's peer.
    #[error("peer signals go only to the peer named in media_path")]
    NotPeer,
}

impl PeerSignalError {
    /// The `reason` label of `p2p_signals_refused_total`.
    fn label(self) -> &'static str {
        match self {
            PeerSignalError::NotPaired => "not_paired",
            PeerSignalError::StalePairing => "stale_pairing",
            PeerSignalError::NotPeer => "not_peer",
        }
    }
}

/// The facts the planner decides on, from the room's state and policy.
fn facts(inner: &Inner, capable: &HashSet<ParticipantId>) -> Facts {
    let policy = inner.policy.as_ref();
    let members = inner
        .core
        .snapshot()
        .into_iter()
        .map(|p| Member {
            local: inner.core.home(&p.id) == Some(Home::Local) && inner.seats.contains_key(&p.id),
            capable: capable.contains(&p.id),
            held: policy.is_some_and(|pol| held(pol, &p.id)),
            silenced: policy.is_some_and(|pol| {
                pol.settings.speak_mode && !p.role.moderates() && !pol.speakers.contains(&p.id)
            }),
            joined_at_ms: p.joined_at_ms,
            id: p.id,
        })
        .collect();
    Facts {
        members,
        // Before the first copy of the policy the node cannot know of a
        // recording or a hold: the SFU until then.
        allowed: policy.is_some_and(|p| p.settings.p2p),
        recording: policy.is_some_and(|p| p.recording.is_some()),
    }
}

fn held(policy: &RoomPolicy, id: &ParticipantId) -> bool {
    policy.holds.get(id).is_some_and(|h| !h.groups.is_empty())
}

impl Room {
    fn path_state(&self) -> MutexGuard<'_, PathState> {
        self.path.lock().expect("path lock poisoned")
    }

    /// Records whether `id` joined able to connect directly.
    pub(super) fn set_p2p_capable(&self, id: &ParticipantId, capable: bool) {
        let mut state = self.path_state();
        if capable {
            state.capable.insert(id.clone());
        } else {
            state.capable.remove(id);
        }
    }

    /// Forgets what `id` was told, so the next decision tells them again
    /// (a resumed session has not heard it).
    pub(super) fn forget_told(&self, id: &ParticipantId) {
        self.path_state().told.remove(id);
    }

    /// Decides the path after a change and carries it out: the forwarding
    /// switches, `media_path` to each participant it changed for (and to
    /// new ones), and a re-check when a settle time ends.
    pub(super) fn sync_path(&self, inner: &Inner) {
        let now = wall_clock_ms();
        let mut state = self.path_state();
        let state = &mut *state;
        state.capable.retain(|id| inner.seats.contains_key(id));
        state.told.retain(|id, _| inner.seats.contains_key(id));
        let was_direct = state.planner.path().is_direct();
        let decision = state.planner.decide(&facts(inner, &state.capable), now);
        let direct = state.planner.path().is_direct();
        if decision.paired {
            self.metrics.p2p.pairs_started.inc();
        }
        if let Some(why) = decision.fell_back {
            self.metrics
                .p2p
                .fallbacks
                .with_label_values(&[why.label()])
                .inc();
            tracing::info!(room = %self.info.id, reason = why.label(), "direct path given up");
        }
        match (was_direct, direct) {
            (false, true) => self.metrics.p2p.rooms.inc(),
            (true, false) => self.metrics.p2p.rooms.dec(),
            _ => {}
        }
        if decision.changed {
            tracing::info!(
                room = %self.info.id,
                path = if direct { "p2p" } else { "sfu" },
                pairing = state.planner.pairing().0,
                "media path changed"
            );
        }
        for up in inner.tracks.values() {
            let gate = up.origin() == Origin::Local && state.planner.gated(&up.publisher);
            if up.set_direct(gate) && !gate && up.info.kind == MediaKind::Video {
                super::policy::resume_keyframe(up.clone());
            }
        }
        // Clients that did not join with `p2p` (load bots, older pages)
        // always use the SFU and are never told.
        for (id, seat) in inner
            .seats
            .iter()
            .filter(|(id, _)| state.capable.contains(*id))
        {
            let told = state.planner.told(id);
            if state.told.get(id) != Some(&told) {
                seat.participant.send(ServerMessage::MediaPath {
                    path: told.path,
                    pairing: told.pairing,
                    peer: told.peer.clone(),
                    offerer: told.offerer,
                });
                state.told.insert(id.clone(), told);
            }
        }
        if let Some(at) = decision.recheck_at {
            if state.wake_at != Some(at) {
                state.wake_at = Some(at);
                recheck_at(state.room.clone(), at.saturating_sub(now));
            }
        }
    }

    /// Stops forwarding a track just published by a paired participant,
    /// before anyone is subscribed to it (`sync_path` would do it too, but
    /// only after the subscriptions).
    pub(super) fn gate_track(&self, up: &crate::track::UpTrack) {
        let state = self.path_state();
        if up.origin() == Origin::Local && state.planner.gated(&up.publisher) {
            up.set_direct(true);
        }
    }

    /// Carries out a `peer_signal` or `p2p_state` of `from`; a refusal's
    /// message (`invalid_state`) otherwise.
    pub fn p2p_message(&self, from: &ParticipantId, m: ClientMessage) -> Result<(), String> {
        match m {
            ClientMessage::PeerSignal {
                to,
                pairing,
                signal,
            } => self
                .peer_signal(from, &to, pairing, signal)
                .map_err(|e| e.to_string()),
            ClientMessage::P2pState { pairing, state } => self
                .p2p_state(from, pairing, state)
                .map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }

    /// Takes a browser's report on its direct connection (`p2p_state`):
    /// both `connected` stops the forwarding a returning pair still had; a
    /// `failed` switches the room to the SFU at once.
    pub fn p2p_state(
        &self,
        from: &ParticipantId,
        pairing: Pairing,
        direct: DirectState,
    ) -> Result<(), StateError> {
        let inner = self.lock();
        let reported = self.path_state().planner.report(from, pairing, direct);
        let label = match reported {
            Ok(_) => direct.as_str(),
            Err(_) => "refused",
        };
        self.metrics.p2p.states.with_label_values(&[label]).inc();
        let both = reported?;
        if both || direct == DirectState::Failed {
            self.sync_path(&inner);
        }
        Ok(())
    }

    /// Relays a `peer_signal` from `from` to `to` when it belongs to the
    /// room's current pairing; otherwise refuses it and relays nothing.
    pub fn peer_signal(
        &self,
        from: &ParticipantId,
        to: &ParticipantId,
        pairing: Pairing,
        signal: PeerSignal,
    ) -> Result<(), PeerSignalError> {
        let inner = self.lock();
        let state = self.path_state();
        let planner = &state.planner;
        let refused = if planner.relays(from, to, pairing) {
            None
        } else if planner.path().peer_of(from).is_none() {
            Some(PeerSignalError::NotPaired)
        } else if pairing != planner.pairing() {
            Some(PeerSignalError::StalePairing)
        } else {
            Some(PeerSignalError::NotPeer)
        };
        let seat = inner.seats.get(to);
        let refused = refused.or(seat.is_none().then_some(PeerSignalError::NotPeer));
        if let Some(e) = refused {
            self.metrics
                .p2p
                .signals_refused
                .with_label_values(&[e.label()])
                .inc();
            return Err(e);
        }
        self.metrics
            .p2p
            .signals_relayed
            .with_label_values(&[signal.kind()])
            .inc();
        if let Some(seat) = seat {
            seat.participant.send(ServerMessage::PeerSignal {
                from: from.clone(),
                pairing,
                signal,
            });
        }
        Ok(())
    }

    /// What `id` was last told of the path (tests and diagnostics).
    pub fn media_path_of(&self, id: &ParticipantId) -> Option<Told> {
        self.path_state().told.get(id).cloned()
    }

    /// Decides again once a settle time is over.
    fn recheck_path(&self) {
        let inner = self.lock();
        self.path_state().wake_at = None;
        self.sync_path(&inner);
    }
}

/// Re-checks `room`'s path after `delay_ms`, on its own task. Without a
/// runtime (unit tests) the next change re-checks instead.
fn recheck_at(room: Weak<Room>, delay_ms: u64) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            if let Some(room) = room.upgrade() {
                room.recheck_path();
            }
        });
    }
}

/// The wall clock in Unix ms, as `node::now_ms` reads it (not imported, so
/// the room does not depend on the node that holds it).
fn wall_clock_ms() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
