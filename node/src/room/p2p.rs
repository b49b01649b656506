//! Which path a room's media takes, without I/O: the facts about the room
//! go in with the time, the path and its pairing number come out.
//!
//! A room goes peer-to-peer ([`veche_protocol::p2p`]) iff exactly two
//! participants are seated, both on this node (no one via the cascade:
//! the other node would then forward nothing to its own participants),
//! both joined with `p2p: true`, the room's `p2p` setting is on, nothing
//! records, neither has a moderator's hold on any media, and in speak mode
//! both may speak. The server cannot police a direct path, so anything it
//! must enforce keeps the room on the SFU instead of trusting the clients.
//!
//! Every change of path (a new pair, or back to the SFU) takes the next
//! [`Pairing`], so a late signal of an abandoned attempt is refused. A room
//! that had more than two participants waits
//! [`limits::signal::P2P_SETTLE_MS`] after it is down to two before it
//! pairs them again: someone who drops and comes back within it does not
//! cost the other two two switches.
//!
//! The browsers report how their direct connection went (`p2p_state`).
//! A pair that had been forwarded through the SFU (the room came down
//! from more than two) stays forwarded until both said `connected`, so
//! their video never freezes while the direct path is being built; a
//! fresh pair (a second joiner) is not forwarded from the start. A
//! `failed`, or not both `connected` within
//! [`limits::signal::P2P_CONNECT_TIMEOUT_MS`], switches the room to the
//! SFU with a new pairing, and those two are not paired again until the
//! room's membership changes: two networks with no route between them
//! would fail the same way again.

use std::collections::BTreeSet;
use veche_protocol::limits;
use veche_protocol::p2p::{DirectState, MediaPath, Pairing};
use veche_protocol::{ParticipantId, UnixMillis};

/// What the decision needs to know about one seated participant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Who.
    pub id: ParticipantId,
    /// When they joined; the earlier of a pair makes the offer.
    pub joined_at_ms: UnixMillis,
    /// Connected to this node (not another node's participant).
    pub local: bool,
    /// Joined with `p2p: true`.
    pub capable: bool,
    /// A moderator holds some of their media.
    pub held: bool,
    /// Speak mode would withhold their microphone.
    pub silenced: bool,
}

/// The room as the decision sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Everyone seated, here and on other nodes.
    pub members: Vec<Member>,
    /// The room's policy is known here and its `p2p` setting is on.
    pub allowed: bool,
    /// A recording runs.
    pub recording: bool,
}

/// The room's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Path {
    /// Everyone through the SFU.
    Sfu,
    /// The two connect directly; `offerer` joined first.
    P2p {
        /// Makes the direct connection's offer.
        offerer: ParticipantId,
        /// Answers it.
        answerer: ParticipantId,
    },
}

impl Path {
    /// Whether two are paired.
    pub fn is_direct(&self) -> bool {
        matches!(self, Path::P2p { .. })
    }

    /// The other participant of the pair, when `id` is in it.
    pub fn peer_of(&self, id: &ParticipantId) -> Option<&ParticipantId> {
        match self {
            Path::P2p { offerer, answerer } if offerer == id => Some(answerer),
            Path::P2p { offerer, answerer } if answerer == id => Some(offerer),
            _ => None,
        }
    }
}

/// What one participant is told (`media_path`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Told {
    /// The path.
    pub path: MediaPath,
    /// The current pairing.
    pub pairing: Pairing,
    /// The other participant, on the direct path.
    pub peer: Option<ParticipantId>,
    /// Whether this participant makes the offer.
    pub offerer: bool,
}

/// The outcome of one [`Planner::decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The path changed (and so did the pairing).
    pub changed: bool,
    /// A new pair started.
    pub paired: bool,
    /// Decide again at this time: the settle time, or the time the pair
    /// has to connect, ends then.
    pub recheck_at: Option<UnixMillis>,
    /// The direct attempt was given up (a `failed`, or the timeout).
    pub fell_back: Option<Fallback>,
}

/// Why a pair was switched back to the SFU by its own attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// One of the two reported `failed`.
    Failed,
    /// Not both reported `connected` in time.
    Timeout,
}

impl Fallback {
    /// The `reason` label of `p2p_fallbacks_total`.
    pub fn label(self) -> &'static str {
        match self {
            Fallback::Failed => "failed",
            Fallback::Timeout => "timeout",
        }
    }
}

/// Why a `p2p_state` was refused (`invalid_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The sender is not paired with anyone now.
    #[error("you are not in a peer-to-peer call now; your media goes through the media node")]
    NotPaired,
    /// The sender is paired, but under another pairing number.
    #[error("that peer-to-peer attempt is over; report on the pairing of the latest media_path")]
    StalePairing,
}

/// One room's path and the memory the decision needs.
#[derive(Clone, Debug)]
pub struct Planner {
    path: Path,
    pairing: Pairing,
    /// More than two were seated at the last decision.
    crowded: bool,
    /// When the room last came down from more than two.
    settled_from: Option<UnixMillis>,
    /// Who was left when the room last came down from more than two: their
    /// media was being forwarded, so pairing them is a return to P2P.
    came_down_with: BTreeSet<ParticipantId>,
    /// Everyone seated at the last decision.
    members: BTreeSet<ParticipantId>,
    /// Who of the current pair reported `connected`.
    connected: BTreeSet<ParticipantId>,
    /// The current pair keeps being forwarded until both are connected.
    returning: bool,
    /// Both of the current pair must be connected by then.
    deadline: Option<UnixMillis>,
    /// The membership when a direct attempt was given up: no pair until it
    /// changes.
    failed_with: Option<BTreeSet<ParticipantId>>,
    /// A `failed` report the next decision carries out.
    failing: Option<Fallback>,
}

impl Default for Planner {
    fn default() -> Self {
        Planner {
            path: Path::Sfu,
            pairing: Pairing(0),
            crowded: false,
            settled_from: None,
            came_down_with: BTreeSet::new(),
            members: BTreeSet::new(),
            connected: BTreeSet::new(),
            returning: false,
            deadline: None,
            failed_with: None,
            failing: None,
        }
    }
}

impl Planner {
    /// The current path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current pairing number.
    pub fn pairing(&self) -> Pairing {
        self.pairing
    }

    /// Decides the path for `facts` at `now`.
    pub fn decide(&mut self, facts: &Facts, now: UnixMillis) -> Decision {
        let crowded = facts.members.len() > 2;
        self.members = facts.members.iter().map(|m| m.id.clone()).collect();
        if self.crowded && !crowded {
            self.settled_from = Some(now);
            self.came_down_with = self.members.clone();
        }
        self.crowded = crowded;
        if self.failed_with.as_ref() != Some(&self.members) {
            self.failed_with = None;
        }
        let mut fell_back = self.failing.take();
        if self.deadline.is_some_and(|d| d <= now) && self.path.is_direct() {
            fell_back = Some(Fallback::Timeout);
            self.failed_with = Some(self.members.clone());
        }
        let settle_end = self
            .settled_from
            .map(|t| t.saturating_add(limits::signal::P2P_SETTLE_MS))
            .filter(|end| *end > now);
        let mut recheck_at = None;
        let wanted = match pair_of(facts) {
            _ if self.failed_with.is_some() => Path::Sfu,
            Some(pair) if settle_end.is_none() => pair,
            Some(_) => {
                recheck_at = settle_end;
                Path::Sfu
            }
            None => Path::Sfu,
        };
        if wanted == self.path {
            return Decision {
                changed: false,
                paired: false,
                recheck_at: recheck_at.or(self.deadline),
                fell_back,
            };
        }
        let paired = matches!(wanted, Path::P2p { .. });
        self.connected.clear();
        self.deadline = None;
        self.returning = false;
        if let Path::P2p { offerer, answerer } = &wanted {
            self.returning = [offerer, answerer]
                .iter()
                .all(|id| self.came_down_with.contains(*id));
            self.deadline = Some(now.saturating_add(limits::signal::P2P_CONNECT_TIMEOUT_MS));
            recheck_at = self.deadline;
        }
        self.path = wanted;
        self.pairing = Pairing(self.pairing.0 + 1);
        Decision {
            changed: true,
            paired,
            recheck_at,
            fell_back,
        }
    }

    /// Takes `from`'s report on its direct connection of `pairing`. A
    /// `failed` gives the attempt up: the next [`Planner::decide`] switches
    /// the room to the SFU. Returns whether the pair is now connected on
    /// both sides (its forwarding may stop).
    pub fn report(
        &mut self,
        from: &ParticipantId,
        pairing: Pairing,
        state: DirectState,
    ) -> Result<bool, StateError> {
        if self.path.peer_of(from).is_none() {
            return Err(StateError::NotPaired);
        }
        if pairing != self.pairing {
            return Err(StateError::StalePairing);
        }
        match state {
            DirectState::Connected => {
                self.connected.insert(from.clone());
                let both = self.connected.len() == 2;
                if both {
                    self.deadline = None;
                    self.returning = false;
                }
                Ok(both)
            }
            DirectState::Failed => {
                // Due now: the next decision falls back (and says why).
                self.deadline = None;
                self.failed_with = Some(self.members.clone());
                self.failing = Some(Fallback::Failed);
                Ok(false)
            }
        }
    }

    /// Whether the SFU forwards nothing of `publisher` now: paired, and
    /// not a returning pair still waiting for both to be connected.
    pub fn gated(&self, publisher: &ParticipantId) -> bool {
        self.path.peer_of(publisher).is_some() && !self.returning
    }

    /// What `id` is told now.
    pub fn told(&self, id: &ParticipantId) -> Told {
        match self.path.peer_of(id) {
            Some(peer) => Told {
                path: MediaPath::P2p,
                pairing: self.pairing,
                peer: Some(peer.clone()),
                offerer: matches!(&self.path, Path::P2p { offerer, .. } if offerer == id),
            },
            None => Told {
                path: MediaPath::Sfu,
                pairing: self.pairing,
                peer: None,
                offerer: false,
            },
        }
    }

    /// Whether a signal from `from` to `to` with `pairing` belongs to the
    /// current attempt: the room is direct with that pairing and `to` is
    /// the sender's peer.
    pub fn relays(&self, from: &ParticipantId, to: &ParticipantId, pairing: Pairing) -> bool {
        pairing == self.pairing && self.path.peer_of(from) == Some(to)
    }
}

/// The pair, when the room qualifies for a direct path (settle time
/// aside).
fn pair_of(facts: &Facts) -> Option<Path> {
    if !facts.allowed || facts.recording {
        return None;
    }
    let [a, b] = facts.members.as_slice() else {
        return None;
    };
    let fit = |m: &Member| m.local && m.capable && !m.held && !m.silenced;
    if !fit(a) || !fit(b) || a.id == b.id {
        return None;
    }
    let (first, second) = if (a.joined_at_ms, &a.id) <= (b.joined_at_ms, &b.id) {
        (a, b)
    } else {
        (b, a)
    };
    Some(Path::P2p {
        offerer: first.id.clone(),
        answerer: second.id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, joined: u64) -> Member {
        Member {
            id: ParticipantId(id.into()),
            joined_at_ms: joined,
            local: true,
            capable: true,
            held: false,
            silenced: false,
        }
    }

    fn facts(members: Vec<Member>) -> Facts {
        Facts {
            members,
            allowed: true,
            recording: false,
        }
    }

    fn pid(s: &str) -> ParticipantId {
        ParticipantId(s.into())
    }

    #[test]
    fn two_able_local_participants_pair_with_the_earlier_joiner_offering() {
        let mut p = Planner::default();
        let d = p.decide(&facts(vec![member("p-b", 10), member("p-a", 20)]), 100);
        assert!(d.changed && d.paired);
        assert_eq!(
            p.path(),
            &Path::P2p {
                offerer: pid("p-b"),
                answerer: pid("p-a")
            }
        );
        let b = p.told(&pid("p-b"));
        let a = p.told(&pid("p-a"));
        assert_eq!(
            (b.path, b.offerer, b.peer),
            (MediaPath::P2p, true, Some(pid("p-a")))
        );
        assert_eq!(
            (a.path, a.offerer, a.peer),
            (MediaPath::P2p, false, Some(pid("p-b")))
        );
        assert_eq!(a.pairing, b.pairing);
    }

    #[test]
    fn anything_the_server_must_enforce_keeps_the_room_on_the_sfu() {
        type Tweak = fn(&mut Facts);
        let cases: [(&str, Tweak); 9] = [
            ("one participant", |f| {
                f.members.pop();
            }),
            ("three participants", |f| f.members.push(member("p-c", 30))),
            ("setting off", |f| f.allowed = false),
            ("recording", |f| f.recording = true),
            ("a remote participant", |f| f.members[1].local = false),
            ("a client without p2p", |f| f.members[0].capable = false),
            ("a hold", |f| f.members[1].held = true),
            ("speak mode silences one", |f| f.members[0].silenced = true),
            ("the same id twice", |f| f.members[1].id = pid("p-a")),
        ];
        for (case, tweak) in cases {
            let mut f = facts(vec![member("p-a", 1), member("p-b", 2)]);
            tweak(&mut f);
            let mut p = Planner::default();
            let d = p.decide(&f, 0);
            assert_eq!(p.path(), &Path::Sfu, "{case}");
            assert!(!d.changed, "{case}");
        }
    }

    #[test]
    fn a_third_joiner_turns_the_pair_to_the_sfu_with_a_new_pairing() {
        let mut p = Planner::default();
        let two = facts(vec![member("p-a", 1), member("p-b", 2)]);
        p.decide(&two, 0);
        let first = p.pairing();
        let d = p.decide(
            &facts(vec![member("p-a", 1), member("p-b", 2), member("p-c", 3)]),
            1_000,
        );
        assert!(d.changed && !d.paired);
        assert_eq!(p.path(), &Path::Sfu);
        assert!(p.pairing() > first);
        assert_eq!(p.told(&pid("p-a")).path, MediaPath::Sfu);
    }

    #[test]
    fn back_to_two_pairs_again_only_after_the_settle_time() {
        let settle = limits::signal::P2P_SETTLE_MS;
        let mut p = Planner::default();
        let two = facts(vec![member("p-a", 1), member("p-b", 2)]);
        let three = facts(vec![member("p-a", 1), member("p-b", 2), member("p-c", 3)]);
        p.decide(&two, 0);
        p.decide(&three, 1_000);
        let sfu = p.pairing();
        let d = p.decide(&two, 2_000);
        assert_eq!(p.path(), &Path::Sfu);
        assert_eq!(d.recheck_at, Some(2_000 + settle));
        // Other changes within the settle time do not restart it.
        let d = p.decide(&two, 2_000 + settle - 1);
        assert_eq!((p.path(), d.recheck_at), (&Path::Sfu, Some(2_000 + settle)));
        let d = p.decide(&two, 2_000 + settle);
        assert!(d.changed && d.paired);
        assert_eq!(p.pairing(), Pairing(sfu.0 + 1));
        let deadline = 2_000 + settle + limits::signal::P2P_CONNECT_TIMEOUT_MS;
        assert_eq!(d.recheck_at, Some(deadline));
    }

    #[test]
    fn a_pair_that_never_had_company_pairs_at_once_after_one_left() {
        let mut p = Planner::default();
        p.decide(&facts(vec![member("p-a", 1), member("p-b", 2)]), 0);
        p.decide(&facts(vec![member("p-a", 1)]), 10);
        let d = p.decide(&facts(vec![member("p-a", 1), member("p-c", 20)]), 20);
        assert!(d.paired);
        assert_eq!(p.told(&pid("p-c")).peer, Some(pid("p-a")));
    }

    #[test]
    fn an_unchanged_pair_keeps_its_pairing() {
        let mut p = Planner::default();
        let two = facts(vec![member("p-a", 1), member("p-b", 2)]);
        p.decide(&two, 0);
        let n = p.pairing();
        let d = p.decide(&two, 50);
        assert!(!d.changed);
        assert_eq!(p.pairing(), n);
    }

    #[test]
    fn only_the_peer_with_the_current_pairing_is_relayed_to() {
        let mut p = Planner::default();
        p.decide(&facts(vec![member("p-a", 1), member("p-b", 2)]), 0);
        let n = p.pairing();
        assert!(p.relays(&pid("p-a"), &pid("p-b"), n));
        assert!(p.relays(&pid("p-b"), &pid("p-a"), n));
        assert!(!p.relays(&pid("p-a"), &pid("p-a"), n));
        assert!(!p.relays(&pid("p-c"), &pid("p-a"), n));
        assert!(!p.relays(&pid("p-a"), &pid("p-b"), Pairing(n.0 + 1)));
        p.decide(&facts(vec![member("p-a", 1)]), 10);
        assert!(!p.relays(&pid("p-a"), &pid("p-b"), p.pairing()));
    }
}
