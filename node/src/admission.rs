//! Admission of a browser's signalling frames, without I/O: which frames
//! the session acts on, which it refuses with `rate_limited`, and when a
//! client that keeps going after being told is cut off.
//!
//! Every frame first takes a token from the session-wide budget
//! ([`limits::signal::ANY`]), malformed ones included, so that garbage
//! costs its sender too; a well-formed frame then takes one from its
//! kind's budget. A refused frame is dropped: nothing beyond the budget
//! reaches the room or the peer connection. Each refusal (over budget or
//! malformed) is a strike; [`limits::signal::MAX_STRIKES`] strikes within
//! [`limits::signal::STRIKE_WINDOW_MS`] close the session with
//! [`veche_protocol::signal::CLOSE_POLICY`].
//!
//! The caller passes the time, so every decision is testable without a
//! clock.

use veche_protocol::limits::{signal, Rate, TokenBucket};

/// The kinds of client frame with a budget of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `media`: device state, rebroadcast to the room.
    Media,
    /// `offer`: a renegotiation, costly for the peer connection.
    Offer,
    /// `answer`: to the node's offer.
    Answer,
    /// `candidate`: a trickled ICE candidate.
    Candidate,
    /// `chat`: a Raft commit and a broadcast.
    Chat,
    /// `ping`: answered with `pong`.
    Ping,
    /// `moderate`: a control-plane commit and a policy broadcast.
    Moderate,
    /// `hand`: rebroadcast to the room.
    Hand,
    /// `peer_signal`: relayed to the other participant of a direct pair.
    PeerSignal,
    /// `p2p_state`: a report on the direct connection.
    P2pState,
    /// Anything else (`join` after joining, `leave`, malformed frames):
    /// only the session-wide budget applies.
    Other,
}

impl Kind {
    /// The kind of a frame whose `type` tag is `ty` (as from
    /// `ClientMessage::kind`).
    pub fn of(ty: &str) -> Kind {
        match ty {
            "media" => Kind::Media,
            "offer" => Kind::Offer,
            "answer" => Kind::Answer,
            "candidate" => Kind::Candidate,
            "chat" => Kind::Chat,
            "ping" => Kind::Ping,
            "moderate" => Kind::Moderate,
            "hand" => Kind::Hand,
            "peer_signal" => Kind::PeerSignal,
            "p2p_state" => Kind::P2pState,
            _ => Kind::Other,
        }
    }

    /// The kind's own rate, if it has one.
    fn rate(self) -> Option<Rate> {
        Some(match self {
            Kind::Media => signal::MEDIA,
            Kind::Offer => signal::OFFER,
            Kind::Answer => signal::ANSWER,
            Kind::Candidate => signal::CANDIDATE,
            Kind::Chat => signal::CHAT,
            Kind::Ping => signal::PING,
            Kind::Moderate => signal::MODERATE,
            Kind::Hand => signal::HAND,
            Kind::PeerSignal => signal::PEER_SIGNAL,
            Kind::P2pState => signal::P2P_STATE,
            Kind::Other => return None,
        })
    }

    const ALL: [Kind; 10] = [
        Kind::Media,
        Kind::Offer,
        Kind::Answer,
        Kind::Candidate,
        Kind::Chat,
        Kind::Ping,
        Kind::Moderate,
        Kind::Hand,
        Kind::PeerSignal,
        Kind::P2pState,
    ];
}

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Act on it.
    Admit,
    /// Drop it and reply `rate_limited`; the next token comes in
    /// `retry_ms`.
    Refuse {
        /// Milliseconds until the budget has room again.
        retry_ms: u64,
    },
    /// Drop it and close the session with `CLOSE_POLICY`: too many
    /// strikes.
    Close,
}

/// The admission state of one session.
#[derive(Debug, Clone)]
pub struct Admission {
    any: TokenBucket,
    kinds: [TokenBucket; 10],
    strikes: u32,
    window_start_ms: u64,
}

impl Admission {
    /// Full budgets at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Admission {
            any: signal::ANY.bucket(now_ms),
            kinds: Kind::ALL.map(|k| k.rate().expect("listed kinds have a rate").bucket(now_ms)),
            strikes: 0,
            window_start_ms: now_ms,
        }
    }

    /// Decides on a frame of `kind` arriving at `now_ms`.
    pub fn admit(&mut self, kind: Kind, now_ms: u64) -> Verdict {
        let taken = self.any.try_take(now_ms).and_then(|()| {
            match Kind::ALL.iter().position(|k| *k == kind) {
                Some(i) => self.kinds[i].try_take(now_ms),
                None => Ok(()),
            }
        });
        match taken {
            Ok(()) => Verdict::Admit,
            Err(retry_ms) => {
                if self.strike(now_ms) {
                    Verdict::Close
                } else {
                    Verdict::Refuse { retry_ms }
                }
            }
        }
    }

    /// Counts a refused frame (over budget, malformed, over a size or
    /// count limit). True when the session has used up its strikes and
    /// must be closed.
    pub fn strike(&mut self, now_ms: u64) -> bool {
        // Fixed windows: simple, and a client flooding across a window
        // boundary still reaches the limit within two windows.
        if now_ms.saturating_sub(self.window_start_ms) >= signal::STRIKE_WINDOW_MS {
            self.window_start_ms = now_ms;
            self.strikes = 0;
        }
        self.strikes += 1;
        self.strikes > signal::MAX_STRIKES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_admits_its_burst_and_refuses_the_next() {
        for kind in Kind::ALL {
            let mut a = Admission::new(0);
            let burst = kind.rate().unwrap().burst;
            for i in 0..burst {
                assert_eq!(a.admit(kind, 0), Verdict::Admit, "{kind:?} frame {i}");
            }
            assert!(
                matches!(a.admit(kind, 0), Verdict::Refuse { retry_ms } if retry_ms > 0),
                "{kind:?} over its burst"
            );
        }
    }

    #[test]
    fn one_kind_over_budget_leaves_the_others_alone() {
        let mut a = Admission::new(0);
        while a.admit(Kind::Media, 0) == Verdict::Admit {}
        assert_eq!(a.admit(Kind::Ping, 0), Verdict::Admit);
        assert_eq!(a.admit(Kind::Chat, 0), Verdict::Admit);
    }

    #[test]
    fn the_session_wide_budget_caps_frames_without_a_kind() {
        let mut a = Admission::new(0);
        for i in 0..signal::ANY.burst {
            assert_eq!(a.admit(Kind::Other, 0), Verdict::Admit, "frame {i}");
        }
        assert!(matches!(a.admit(Kind::Other, 0), Verdict::Refuse { .. }));
        // And it caps the kinds too.
        assert!(matches!(a.admit(Kind::Ping, 0), Verdict::Refuse { .. }));
    }

    #[test]
    fn the_budget_refills_at_its_rate() {
        let mut a = Admission::new(0);
        while a.admit(Kind::Offer, 0) == Verdict::Admit {}
        let per_token_ms = (1000.0 / signal::OFFER.per_second) as u64;
        assert!(matches!(
            a.admit(Kind::Offer, per_token_ms - 1),
            Verdict::Refuse { .. }
        ));
        assert_eq!(a.admit(Kind::Offer, per_token_ms + 1), Verdict::Admit);
    }

    #[test]
    fn a_persistent_flooder_is_closed_after_max_strikes() {
        let mut a = Admission::new(0);
        let mut refused = 0;
        let mut t = 0;
        loop {
            match a.admit(Kind::Media, t) {
                Verdict::Admit => {}
                Verdict::Refuse { .. } => refused += 1,
                Verdict::Close => break,
            }
            t += 1;
            assert!(t < 100_000, "never closed");
        }
        assert_eq!(refused, signal::MAX_STRIKES);
        assert!(t < signal::STRIKE_WINDOW_MS, "closed within one window");
    }

    #[test]
    fn strikes_spread_over_windows_never_close() {
        let mut a = Admission::new(0);
        for w in 0..10 {
            for _ in 0..signal::MAX_STRIKES {
                assert!(!a.strike(w * signal::STRIKE_WINDOW_MS));
            }
        }
    }
}
