//! The room's copy of its moderation policy, and what applying a newer one
//! does on this node: roles, which tracks are withheld, what each of this
//! node's participants is told, and who is removed.
//!
//! The control plane decides; the node only compares the policy it had
//! with the new one. Every node does that for its own participants, so
//! whichever node a moderator is on, everyone hears of it from their own
//! node, and a node that missed a relay catches up by the version alone.
//! The comparisons ([`notices_for`], [`withheld_reason`]) are I/O-free.

use super::{Inner, Room};
use crate::core::{Action, CoreError};
use crate::track::{Origin, UpTrack};
use veche_protocol::error::ErrorBody;
use veche_protocol::moderation::{MediaGroup, Notice, PolicyView, Role, RoomPolicy};
use veche_protocol::relay::RelayMsg;
use veche_protocol::rpc::{Actor, PresentParticipant};
use veche_protocol::signal::{LeaveReason, MediaKind, ServerMessage};
use veche_protocol::{ErrorCode, ParticipantId, TrackId, UnixMillis};

/// Where a policy came from, which decides whether other nodes are told.
#[derive(Clone, Debug)]
pub enum PolicySource {
    /// Fetched from the control plane (room opened here, or a heartbeat
    /// said ours is old). Other nodes fetch their own.
    Fetched,
    /// Relayed by another node. Not passed on: the node that got it from
    /// the control plane told every node hosting the room.
    Relayed,
    /// The control plane's reply to a moderation action sent from this
    /// node, by `actor`: other nodes hosting the room are told.
    Moderated(Actor),
}

/// One thing a participant is told, with who did it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Told {
    /// What happened.
    pub notice: Notice,
    /// The moderator's id; empty when no node knows (a grant relayed from
    /// another node: the policy records who placed holds and removals,
    /// not who granted roles).
    pub by: ParticipantId,
    /// The moderator's name ("A moderator" when unknown, as above).
    pub by_name: String,
}

/// What changed for `id` between `old` and `new`, in the order the client
/// is told. `actor` is who acted, when this node knows it (it sent the
/// action); holds and removals carry their own author.
pub fn notices_for(
    old: &RoomPolicy,
    new: &RoomPolicy,
    id: &ParticipantId,
    actor: Option<&Actor>,
) -> Vec<Told> {
    let (actor_id, actor_name) = match actor {
        Some(a) => (a.participant_id.clone(), a.display_name.clone()),
        None => (ParticipantId(String::new()), "A moderator".to_owned()),
    };
    let granted = |notice: Notice| Told {
        notice,
        by: actor_id.clone(),
        by_name: actor_name.clone(),
    };
    let mut out = Vec::new();
    if let Some(hold) = new.holds.get(id) {
        let before = old.holds.get(id);
        for group in &hold.groups {
            if !before.is_some_and(|h| h.groups.contains(group)) {
                out.push(Told {
                    notice: Notice::Muted { group: *group },
                    by: hold.by.clone(),
                    by_name: hold.by_name.clone(),
                });
            }
        }
        if hold.asked_to_unmute && !before.is_some_and(|h| h.asked_to_unmute) {
            out.push(Told {
                notice: Notice::AskedToUnmute,
                by: hold.by.clone(),
                by_name: hold.by_name.clone(),
            });
        }
    }
    match (old.moderators.contains(id), new.moderators.contains(id)) {
        (false, true) => out.push(granted(Notice::MadeModerator)),
        (true, false) => out.push(granted(Notice::ModeratorRevoked)),
        _ => {}
    }
    match (old.speakers.contains(id), new.speakers.contains(id)) {
        (false, true) => out.push(granted(Notice::AllowedToSpeak)),
        (true, false) => out.push(granted(Notice::SpeakRevoked)),
        _ => {}
    }
    if let Some(r) = new.removed.get(id) {
        if old.removed.get(id) != Some(r) {
            let by = match actor {
                Some(a) => a.participant_id.clone(),
                None => ParticipantId(String::new()),
            };
            out.push(Told {
                notice: Notice::Removed { ban: r.ban },
                by,
                by_name: r.by_name.clone(),
            });
        }
    }
    out
}

/// Why a track of `group` from `id` (role `role`) is not forwarded under
/// `policy`, in words for its publisher; `None` when it is forwarded.
pub fn withheld_reason(
    policy: &RoomPolicy,
    id: &ParticipantId,
    role: Role,
    group: MediaGroup,
) -> Option<String> {
    if !policy.withholds(id, role, group) {
        return None;
    }
    let held = policy
        .holds
        .get(id)
        .is_some_and(|h| h.groups.contains(&group));
    Some(if held {
        match group {
            MediaGroup::Microphone => "a moderator muted your microphone",
            MediaGroup::Camera => "a moderator turned off your camera",
            MediaGroup::Screen => "a moderator stopped your screen share",
        }
        .to_owned()
    } else {
        "only permitted speakers may publish in this meeting".to_owned()
    })
}

impl Room {
    /// The version of the policy this node has, `None` before the first
    /// fetch succeeded.
    pub fn policy_version(&self) -> Option<u64> {
        self.lock().policy.as_ref().map(|p| p.version)
    }

    /// The policy as clients see it.
    pub fn policy_view(&self) -> PolicyView {
        self.lock()
            .policy
            .as_ref()
            .map(RoomPolicy::view)
            .unwrap_or_default()
    }

    /// Whether `id` may not take a seat: removed with a ban, or denied at
    /// the lobby.
    pub fn bars(&self, id: &ParticipantId) -> bool {
        self.lock().policy.as_ref().is_some_and(|p| p.bars(id))
    }

    /// Whether a moderator (or the unattended lobby) already let `id` in.
    pub fn admitted(&self, id: &ParticipantId) -> bool {
        self.lock()
            .policy
            .as_ref()
            .is_some_and(|p| p.admitted.contains(id))
    }

    /// Takes `policy` if it is newer than the one this node has, and
    /// carries out what changed. Returns whether it was taken.
    pub fn apply_policy(&self, policy: RoomPolicy, source: PolicySource) -> bool {
        let mut inner = self.lock();
        let taken = self.apply_policy_locked(&mut inner, policy, source);
        self.observe(&inner);
        taken
    }

    pub(super) fn apply_policy_locked(
        &self,
        inner: &mut Inner,
        policy: RoomPolicy,
        source: PolicySource,
    ) -> bool {
        let first = inner.policy.is_none();
        if inner
            .policy
            .as_ref()
            .is_some_and(|p| p.version >= policy.version)
        {
            return false;
        }
        let old = inner.policy.replace(policy.clone()).unwrap_or_default();
        let actor = match &source {
            PolicySource::Moderated(a) => Some(a),
            _ => None,
        };
        let ids: Vec<ParticipantId> = inner.seats.keys().cloned().collect();
        let mut removed = Vec::new();
        let mut roles_changed = false;
        for id in &ids {
            let seat = &inner.seats[id];
            // A first copy has nothing to compare with: nobody is told
            // of old decisions, and only a ban still removes.
            let told = if first {
                Vec::new()
            } else {
                notices_for(&old, &policy, id, actor)
            };
            for t in told {
                seat.participant.send(ServerMessage::Moderated {
                    notice: t.notice,
                    by: t.by,
                    by_name: t.by_name,
                });
            }
            let gone = if first {
                policy.bars(id)
            } else {
                policy
                    .removed
                    .get(id)
                    .is_some_and(|r| old.removed.get(id) != Some(r))
            };
            if gone {
                removed.push(id.clone());
                continue;
            }
            let role = policy.role_of(id, seat.claims.role);
            if let Ok(actions) = inner.core.set_role(id, role) {
                roles_changed |= !actions.is_empty();
                self.run(inner, actions);
            }
        }
        for id in removed {
            if let Some(seat) = inner.seats.get(&id) {
                seat.participant.removed();
            }
            self.leave_locked(inner, &id, LeaveReason::Removed);
        }
        self.enforce(inner);
        self.run(
            inner,
            vec![Action::Broadcast {
                msg: ServerMessage::Policy {
                    policy: policy.view(),
                },
                except: None,
            }],
        );
        // Switching the lobby off lets its waiters in. Only a change seen
        // here counts: a stale copy that says "off" must not open the
        // lobby for tokens issued while it was on.
        let opened = !first && old.settings.lobby && !policy.settings.lobby;
        let lobby_changed = self.settle_lobby(inner, opened);
        if lobby_changed || roles_changed {
            self.lobby_to_moderators(inner);
        }
        self.sync_recording(inner);
        if let PolicySource::Moderated(_) = source {
            self.tell_peers(
                inner,
                &RelayMsg::Policy {
                    room: self.info.id,
                    policy,
                },
            );
        }
        true
    }

    /// Sets every local track's withheld switch from the policy. A video
    /// track that resumes gets a keyframe request, since its receivers
    /// cannot decode from the middle of a stream.
    pub(super) fn enforce(&self, inner: &Inner) {
        let Some(policy) = &inner.policy else { return };
        for up in inner.tracks.values() {
            if up.origin() != Origin::Local {
                continue;
            }
            let role = inner
                .core
                .participant(&up.publisher)
                .map_or(Role::Guest, |p| p.role);
            let hold = policy.withholds(&up.publisher, role, up.info.source.group());
            if up.set_withheld(hold) && !hold && up.info.kind == MediaKind::Video {
                resume_keyframe(up.clone());
            }
        }
    }

    /// Applies the policy to a track just published, labels its forwarded
    /// counter, and tells a publisher whose track is withheld why.
    pub(super) fn admit_track(&self, inner: &Inner, up: &UpTrack) {
        let room = self.info.id.to_string();
        up.count_into(self.metrics.track_packets_forwarded.with_label_values(&[
            &room,
            &up.info.id.to_string(),
            source_label(up),
        ]));
        let Some(policy) = &inner.policy else { return };
        let role = inner
            .core
            .participant(&up.publisher)
            .map_or(Role::Guest, |p| p.role);
        let reason = withheld_reason(policy, &up.publisher, role, up.info.source.group());
        up.set_withheld(reason.is_some());
        if let (Some(reason), Some(seat)) = (reason, inner.seats.get(&up.publisher)) {
            seat.participant.send(ServerMessage::Error {
                error: ErrorBody::new(ErrorCode::Forbidden, reason),
                request: Some("offer".into()),
                client_msg_id: None,
            });
        }
    }

    /// Drops the labelled counter of a track that is gone.
    pub(super) fn forget_track_metric(&self, up: &UpTrack) {
        let _ = self.metrics.track_packets_forwarded.remove_label_values(&[
            &self.info.id.to_string(),
            &up.info.id.to_string(),
            source_label(up),
        ]);
    }

    /// Raises (with this node's clock, `now_ms`) or lowers a participant's
    /// hand; everyone on every node sees their entry change.
    pub fn set_hand(
        &self,
        id: &ParticipantId,
        raised: bool,
        now_ms: UnixMillis,
    ) -> Result<(), CoreError> {
        let mut inner = self.lock();
        let actions = inner.core.set_hand(id, raised.then_some(now_ms))?;
        self.run(&mut inner, actions);
        Ok(())
    }

    /// Everyone in the room on every node with what their tokens claim,
    /// for a moderation request (whom `mute_everyone` holds, what a ban
    /// covers).
    pub fn present(&self) -> Vec<PresentParticipant> {
        let inner = self.lock();
        inner
            .core
            .snapshot()
            .into_iter()
            .map(|p| {
                let claims = inner
                    .seats
                    .get(&p.id)
                    .map(|s| &s.claims)
                    .or_else(|| inner.remote_claims.get(&p.id))
                    .cloned()
                    .unwrap_or_default();
                PresentParticipant {
                    participant_id: p.id,
                    claimed_role: claims.role,
                    user: claims.user,
                    pass: claims.pass,
                }
            })
            .collect()
    }

    /// Whether `track` is withheld here (tests and diagnostics).
    pub fn is_withheld(&self, track: &TrackId) -> Option<bool> {
        self.lock().tracks.get(track).map(|t| t.is_withheld())
    }
}

fn source_label(up: &UpTrack) -> &'static str {
    use veche_protocol::signal::TrackSource;
    match up.info.source {
        TrackSource::Microphone => "microphone",
        TrackSource::Camera => "camera",
        TrackSource::Screen => "screen",
        TrackSource::ScreenAudio => "screen_audio",
    }
}

/// Asks a resumed video track's publisher for a keyframe, off the room
/// lock (the request is async). Without a runtime (unit tests) nothing is
/// asked.
pub(super) fn resume_keyframe(up: std::sync::Arc<UpTrack>) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move { up.request_keyframe().await });
    }
}
