//! The room's lobby on this node: people whose join token says to wait
//! until a moderator lets them in. A waiter has no seat: no tracks, not in
//! the participant list; hosts and moderators on every node see the list.
//!
//! [`Lobby`] holds the waiters and decides, without I/O, when an
//! unattended lobby (waiters, and nobody who moderates present on any
//! node) has waited long enough that the node asks the control plane to
//! admit its waiters itself. [`Room`]'s part carries it out.

use super::{Inner, Room};
use std::collections::BTreeMap;
use veche_protocol::limits::moderation::MAX_LOBBY;
use veche_protocol::moderation::LobbyEntry;
use veche_protocol::relay::RelayMsg;
use veche_protocol::signal::ServerMessage;
use veche_protocol::{NodeId, ParticipantId, UnixMillis};

/// How a wait in the lobby ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LobbyDecision {
    /// The policy admits them: seat them on the same connection.
    Admitted,
    /// A moderator turned them away.
    Denied,
    /// The same participant started waiting from another connection.
    Replaced,
}

/// How the room reaches a waiter's connection. Called under the room's
/// lock: queue and return.
pub trait Waiter: Send + Sync {
    /// Queues a message (`lobby_waiting`).
    fn send(&self, msg: ServerMessage);
    /// The wait is over.
    fn decided(&self, decision: LobbyDecision);
}

/// Why someone could not start waiting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LobbyError {
    /// [`MAX_LOBBY`] people already wait here.
    #[error("the lobby of this meeting is full; try again later")]
    Full,
}

struct Waiting {
    entry: LobbyEntry,
    waiter: Box<dyn Waiter>,
    /// When this node last asked the control plane to let them in because
    /// the lobby was unattended.
    asked_at_ms: Option<UnixMillis>,
}

/// The lobby's waiters here, and the other nodes' as they announced them.
#[derive(Default)]
pub struct Lobby {
    local: BTreeMap<ParticipantId, Waiting>,
    remote: BTreeMap<NodeId, Vec<LobbyEntry>>,
    /// Since when this node has had waiters and seen nobody who moderates.
    unattended_since: Option<UnixMillis>,
}

impl Lobby {
    /// True when nobody waits on this node.
    pub fn is_empty(&self) -> bool {
        self.local.is_empty()
    }

    /// This node's waiters, longest-waiting first.
    pub fn local_entries(&self) -> Vec<LobbyEntry> {
        sorted(self.local.values().map(|w| w.entry.clone()).collect())
    }

    /// Everyone waiting, on every node, longest-waiting first.
    pub fn all_entries(&self) -> Vec<LobbyEntry> {
        let mut all: Vec<LobbyEntry> = self.local.values().map(|w| w.entry.clone()).collect();
        for entries in self.remote.values() {
            all.extend(entries.iter().cloned());
        }
        sorted(all)
    }

    /// Whom of this node's waiters to ask admission for at `now_ms`: all of
    /// them once the lobby has had waiters and no moderator present for
    /// `timeout_ms`, each again only after another `timeout_ms` (in case
    /// the control plane did not answer).
    pub fn unattended_due(
        &mut self,
        now_ms: UnixMillis,
        moderator_present: bool,
        timeout_ms: u64,
    ) -> Vec<ParticipantId> {
        if self.local.is_empty() || moderator_present {
            self.unattended_since = None;
            return Vec::new();
        }
        let since = *self.unattended_since.get_or_insert(now_ms);
        if now_ms.saturating_sub(since) < timeout_ms {
            return Vec::new();
        }
        let mut due = Vec::new();
        for (id, w) in self.local.iter_mut() {
            if w.asked_at_ms
                .is_none_or(|t| now_ms.saturating_sub(t) >= timeout_ms)
            {
                w.asked_at_ms = Some(now_ms);
                due.push(id.clone());
            }
        }
        due
    }
}

fn sorted(mut entries: Vec<LobbyEntry>) -> Vec<LobbyEntry> {
    entries.sort_by(|a, b| (a.since_ms, &a.participant_id).cmp(&(b.since_ms, &b.participant_id)));
    entries
}

impl Room {
    /// Puts a joiner in the lobby: they are sent `lobby_waiting`, and the
    /// room's moderators (here and on other nodes) see them. If the policy
    /// already decided about them, the decision is given at once instead.
    pub fn wait_in_lobby(
        &self,
        entry: LobbyEntry,
        waiter: impl Waiter + 'static,
    ) -> Result<(), LobbyError> {
        let mut inner = self.lock();
        let id = entry.participant_id.clone();
        if let Some(p) = &inner.policy {
            if p.admitted.contains(&id) {
                waiter.decided(LobbyDecision::Admitted);
                return Ok(());
            }
            if p.bars(&id) {
                waiter.decided(LobbyDecision::Denied);
                return Ok(());
            }
        }
        if !inner.lobby.local.contains_key(&id) && inner.lobby.local.len() >= MAX_LOBBY {
            return Err(LobbyError::Full);
        }
        waiter.send(ServerMessage::LobbyWaiting {
            room: self.info.clone(),
        });
        let old = inner.lobby.local.insert(
            id,
            Waiting {
                entry,
                waiter: Box::new(waiter),
                asked_at_ms: None,
            },
        );
        if let Some(old) = old {
            old.waiter.decided(LobbyDecision::Replaced);
        }
        self.lobby_changed(&inner);
        Ok(())
    }

    /// A waiter gave up (left, or their connection dropped).
    pub fn leave_lobby(&self, id: &ParticipantId) {
        let mut inner = self.lock();
        if inner.lobby.local.remove(id).is_some() {
            self.lobby_changed(&inner);
        }
    }

    /// Whom to ask the control plane to admit at `now_ms` because the
    /// lobby stayed unattended for `timeout_ms`.
    pub fn lobby_due(&self, now_ms: UnixMillis, timeout_ms: u64) -> Vec<ParticipantId> {
        let mut inner = self.lock();
        let moderated = inner.core.roles().iter().any(|(_, r)| r.moderates());
        inner.lobby.unattended_due(now_ms, moderated, timeout_ms)
    }

    /// Everyone waiting, on every node.
    pub fn lobby(&self) -> Vec<LobbyEntry> {
        self.lock().lobby.all_entries()
    }

    /// Gives waiters the policy's decision about them; `opened` (a
    /// moderator switched the lobby off) lets everyone waiting in who is
    /// not barred. Returns whether the lobby changed.
    pub(super) fn settle_lobby(&self, inner: &mut Inner, opened: bool) -> bool {
        let Some(policy) = &inner.policy else {
            return false;
        };
        let decided: Vec<(ParticipantId, LobbyDecision)> = inner
            .lobby
            .local
            .keys()
            .filter_map(|id| {
                if policy.bars(id) {
                    Some((id.clone(), LobbyDecision::Denied))
                } else if opened || policy.admitted.contains(id) {
                    Some((id.clone(), LobbyDecision::Admitted))
                } else {
                    None
                }
            })
            .collect();
        for (id, d) in &decided {
            if let Some(w) = inner.lobby.local.remove(id) {
                w.waiter.decided(*d);
            }
        }
        if !decided.is_empty() {
            self.tell_peers(inner, &self.lobby_relay(inner));
        }
        !decided.is_empty()
    }

    /// Another node's waiters changed (`None`: it no longer hosts the room).
    pub(super) fn remote_lobby(
        &self,
        inner: &mut Inner,
        from: NodeId,
        waiting: Option<Vec<LobbyEntry>>,
    ) {
        let changed = match waiting {
            Some(w) if !w.is_empty() => {
                inner.lobby.remote.insert(from, w);
                true
            }
            _ => inner.lobby.remote.remove(&from).is_some(),
        };
        if changed {
            self.lobby_to_moderators(inner);
        }
    }

    fn lobby_relay(&self, inner: &Inner) -> RelayMsg {
        RelayMsg::Lobby {
            room: self.info.id,
            waiting: inner.lobby.local_entries(),
        }
    }

    /// Sends this node's waiters to `peer` (a node just linked).
    pub(super) fn send_lobby(&self, inner: &Inner, peer: NodeId) {
        if let (Some(relay), false) = (&self.relay, inner.lobby.is_empty()) {
            relay.send(peer, &self.lobby_relay(inner));
        }
    }

    fn lobby_changed(&self, inner: &Inner) {
        self.tell_peers(inner, &self.lobby_relay(inner));
        self.lobby_to_moderators(inner);
    }

    /// Sends the whole list to every host and moderator on this node.
    pub(super) fn lobby_to_moderators(&self, inner: &Inner) {
        let waiting = inner.lobby.all_entries();
        for (id, seat) in &inner.seats {
            if inner
                .core
                .participant(id)
                .is_some_and(|p| p.role.moderates())
            {
                seat.participant.send(ServerMessage::Lobby {
                    waiting: waiting.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nobody;
    impl Waiter for Nobody {
        fn send(&self, _: ServerMessage) {}
        fn decided(&self, _: LobbyDecision) {}
    }

    fn waiting(n: u8, since_ms: UnixMillis) -> (ParticipantId, Waiting) {
        let id = ParticipantId::from_random([n; 8]);
        let entry = LobbyEntry {
            participant_id: id.clone(),
            display_name: format!("W{n}"),
            guest: false,
            since_ms,
        };
        (
            id,
            Waiting {
                entry,
                waiter: Box::new(Nobody),
                asked_at_ms: None,
            },
        )
    }

    #[test]
    fn an_unattended_lobby_asks_for_admission_after_the_timeout_and_not_before() {
        let mut lobby = Lobby::default();
        assert!(
            lobby.unattended_due(0, false, 1_000).is_empty(),
            "nobody waits"
        );
        let (id, w) = waiting(1, 0);
        lobby.local.insert(id.clone(), w);
        assert!(
            lobby.unattended_due(100, false, 1_000).is_empty(),
            "clock starts"
        );
        assert!(lobby.unattended_due(1_099, false, 1_000).is_empty());
        assert_eq!(lobby.unattended_due(1_100, false, 1_000), vec![id.clone()]);
        assert!(
            lobby.unattended_due(1_200, false, 1_000).is_empty(),
            "asked once per timeout"
        );
        assert_eq!(lobby.unattended_due(2_100, false, 1_000), vec![id]);
    }

    #[test]
    fn a_moderator_present_resets_the_unattended_clock() {
        let mut lobby = Lobby::default();
        let (id, w) = waiting(1, 0);
        lobby.local.insert(id.clone(), w);
        lobby.unattended_due(0, false, 1_000);
        assert!(lobby.unattended_due(900, true, 1_000).is_empty());
        assert!(
            lobby.unattended_due(1_500, false, 1_000).is_empty(),
            "the clock restarted when the moderator left"
        );
        assert_eq!(lobby.unattended_due(2_500, false, 1_000), vec![id]);
    }

    #[test]
    fn waiters_are_listed_longest_waiting_first_across_nodes() {
        let mut lobby = Lobby::default();
        let (a, w) = waiting(1, 50);
        lobby.local.insert(a.clone(), w);
        let (b, wb) = waiting(2, 10);
        lobby.remote.insert(NodeId(9), vec![wb.entry]);
        let order: Vec<ParticipantId> = lobby
            .all_entries()
            .into_iter()
            .map(|e| e.participant_id)
            .collect();
        assert_eq!(order, vec![b, a]);
        assert_eq!(lobby.local_entries().len(), 1);
    }
}
