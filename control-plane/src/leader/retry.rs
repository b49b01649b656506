//! When a request for the leader is tried again: a pure policy, no I/O and
//! no clock (the caller passes `now`).
//!
//! Leadership can move while a request is in flight. The policy:
//!
//! - "Not the leader" and "never sent" (connection refused, no leader known
//!   yet) did nothing, so any request is retried.
//! - An ambiguous failure (sent, then no answer; the leader lost its
//!   quorum) may or may not have taken effect, so only an idempotent
//!   request is retried. Any other gives up at once, and the caller says
//!   that the outcome is unknown instead of guessing.
//! - Retries back off from [`RetryPolicy::first_backoff`], doubling up to
//!   [`RetryPolicy::max_backoff`], and stop when the next one would start
//!   after [`RetryPolicy::deadline`]: then there is no leader to be had.

use std::time::{Duration, Instant};

/// How a failed attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The receiver was not (or no longer) the leader. Nothing happened.
    NotLeader,
    /// The request never left: no leader known, or nothing listening.
    NotSent,
    /// Sent, but the outcome is unknown.
    Ambiguous,
}

/// Why the caller should stop trying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// A non-idempotent request failed ambiguously: it may have taken
    /// effect, so trying again could do it twice.
    OutcomeUnknown,
    /// The deadline passed without a leader answering.
    NoLeader,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Stop.
    GiveUp(GiveUp),
}

/// The numbers of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long after the first attempt a retry may still start.
    pub deadline: Duration,
    /// The wait before the first retry.
    pub first_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// Leader forwarding: 10 s, because an election takes up to
    /// `election_timeout_max` after the old leader's last heartbeat and this
    /// leaves room for two failed ones; 20 ms doubling to 200 ms, so a new
    /// leader is found within a fifth of a second of its election.
    pub const FORWARDING: RetryPolicy = RetryPolicy {
        deadline: Duration::from_secs(10),
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    };

    /// The retry state of one request, first attempted at `now`.
    pub fn start(self, idempotent: bool, now: Instant) -> Retries {
        Retries {
            policy: self,
            idempotent,
            started: now,
            backoff: self.first_backoff,
        }
    }
}

/// The retry state of one request.
#[derive(Clone, Debug)]
pub struct Retries {
    policy: RetryPolicy,
    idempotent: bool,
    started: Instant,
    backoff: Duration,
}

impl Retries {
    /// The decision after an attempt failed with `failure` at `now`.
    pub fn after(&mut self, failure: Failure, now: Instant) -> Decision {
        if failure == Failure::Ambiguous && !self.idempotent {
            return Decision::GiveUp(GiveUp::OutcomeUnknown);
        }
        if now + self.backoff > self.started + self.policy.deadline {
            return Decision::GiveUp(GiveUp::NoLeader);
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(self.policy.max_backoff);
        Decision::RetryAfter(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy::FORWARDING;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_request_that_did_nothing_is_retried_with_a_doubling_capped_backoff() {
        for failure in [Failure::NotLeader, Failure::NotSent] {
            for idempotent in [false, true] {
                let t0 = Instant::now();
                let mut r = P.start(idempotent, t0);
                let waits: Vec<Decision> = (0..6).map(|_| r.after(failure, t0)).collect();
                let expected = [20, 40, 80, 160, 200, 200].map(|w| Decision::RetryAfter(ms(w)));
                assert_eq!(waits, expected, "{failure:?}, idempotent {idempotent}");
            }
        }
    }

    #[test]
    fn an_ambiguous_failure_of_an_idempotent_request_is_retried() {
        let t0 = Instant::now();
        let mut r = P.start(true, t0);
        assert_eq!(
            r.after(Failure::Ambiguous, t0),
            Decision::RetryAfter(ms(20))
        );
        assert_eq!(
            r.after(Failure::Ambiguous, t0 + ms(100)),
            Decision::RetryAfter(ms(40))
        );
    }

    #[test]
    fn an_ambiguous_failure_of_another_request_gives_up_at_once_as_outcome_unknown() {
        let t0 = Instant::now();
        let mut r = P.start(false, t0);
        assert_eq!(
            r.after(Failure::Ambiguous, t0),
            Decision::GiveUp(GiveUp::OutcomeUnknown)
        );
        // Even after retries that did nothing.
        let mut r = P.start(false, t0);
        assert!(matches!(
            r.after(Failure::NotLeader, t0),
            Decision::RetryAfter(_)
        ));
        assert_eq!(
            r.after(Failure::Ambiguous, t0 + ms(50)),
            Decision::GiveUp(GiveUp::OutcomeUnknown)
        );
    }

    #[test]
    fn no_retry_starts_after_the_deadline() {
        let t0 = Instant::now();
        for failure in [Failure::NotLeader, Failure::NotSent, Failure::Ambiguous] {
            let mut r = P.start(true, t0);
            // The first retry would start exactly at the deadline: allowed.
            assert_eq!(
                r.after(failure, t0 + P.deadline - ms(20)),
                Decision::RetryAfter(ms(20)),
                "{failure:?}"
            );
            // The next would start 40 ms after it: no.
            assert_eq!(
                r.after(failure, t0 + P.deadline - ms(20)),
                Decision::GiveUp(GiveUp::NoLeader),
                "{failure:?}"
            );
        }
    }

    #[test]
    fn retries_keep_coming_until_the_deadline_and_then_stop() {
        let t0 = Instant::now();
        let mut r = P.start(true, t0);
        let mut now = t0;
        let mut attempts = 1;
        let last = loop {
            match r.after(Failure::NotLeader, now) {
                Decision::RetryAfter(w) => {
                    now += w;
                    attempts += 1;
                }
                d => break d,
            }
        };
        assert_eq!(last, Decision::GiveUp(GiveUp::NoLeader));
        assert!(now <= t0 + P.deadline && now + P.max_backoff > t0 + P.deadline);
        // 20+40+80+160 ms, then 200 ms each: about 50 attempts in 10 s.
        assert!((45..=55).contains(&attempts), "{attempts} attempts");
    }
}
