//! How many wrong passwords a node accepts before it stops listening:
//! failed sign-ins counted per account and per client address over a
//! sliding window.
//!
//! Decisions only: the time is passed in, nothing here touches a socket.
//! Only failures count, so a person who signs in correctly is never
//! slowed; but once an account (or address) has used up its failures, even
//! the right password is refused until the window moves on, or a guesser
//! could keep guessing and simply ignore the refusals.
//!
//! Each control-plane node keeps its own counts (they are not replicated:
//! a Raft write per wrong password would turn a guessing attack into a
//! write flood). In a cluster of N nodes a guesser who spreads attempts
//! over all of them gets at most N times the per-node budget, still a
//! handful of guesses per quarter hour.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use veche_protocol::limits::accounts::{
    LOGIN_FAILURES_PER_ACCOUNT, LOGIN_FAILURES_PER_ADDRESS, LOGIN_FAILURE_WINDOW_MS,
    MAX_TRACKED_LOGIN_KEYS,
};

/// Failure times per key within a sliding window, bounded in memory: at
/// most `max_keys` keys, the least recently failing forgotten first.
#[derive(Debug)]
pub struct FailureWindow<K> {
    max_failures: usize,
    window_ms: u64,
    max_keys: usize,
    /// Each key's failure times (oldest first, at most `max_failures`)
    /// and the sequence number of its last failure.
    keys: HashMap<K, (VecDeque<u64>, u64)>,
    /// Sequence number to key, oldest first: the eviction order.
    by_recency: BTreeMap<u64, K>,
    next_seq: u64,
}

impl<K: Eq + Hash + Clone> FailureWindow<K> {
    /// A window allowing `max_failures` per key per `window_ms`.
    pub fn new(max_failures: usize, window_ms: u64, max_keys: usize) -> Self {
        FailureWindow {
            max_failures: max_failures.max(1),
            window_ms,
            max_keys: max_keys.max(1),
            keys: HashMap::new(),
            by_recency: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// `Ok` if `key` may try now; otherwise the milliseconds until its
    /// oldest counted failure leaves the window.
    pub fn check(&mut self, key: &K, now_ms: u64) -> Result<(), u64> {
        let Some((times, _)) = self.keys.get_mut(key) else {
            return Ok(());
        };
        let window = self.window_ms;
        while times
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) >= window)
        {
            times.pop_front();
        }
        if times.len() < self.max_failures {
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now_ms);
        Err((oldest + window).saturating_sub(now_ms).max(1))
    }

    /// Counts a failure of `key` at `now_ms`.
    pub fn fail(&mut self, key: &K, now_ms: u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if !self.keys.contains_key(key) && self.keys.len() >= self.max_keys {
            if let Some((_, oldest)) = self.by_recency.pop_first() {
                self.keys.remove(&oldest);
            }
        }
        let (times, last) = self
            .keys
            .entry(key.clone())
            .or_insert_with(|| (VecDeque::new(), seq));
        self.by_recency.remove(last);
        *last = seq;
        self.by_recency.insert(seq, key.clone());
        times.push_back(now_ms);
        while times.len() > self.max_failures {
            times.pop_front();
        }
    }

    /// Forgets `key`'s failures (the account's owner signed in).
    pub fn clear(&mut self, key: &K) {
        if let Some((_, last)) = self.keys.remove(key) {
            self.by_recency.remove(&last);
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Why a sign-in attempt was refused before its password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// This account had too many failures; retry after this many ms.
    Account(u64),
    /// This address had too many failures; retry after this many ms.
    Address(u64),
}

impl Blocked {
    /// Milliseconds until an attempt would be considered again.
    pub fn retry_after_ms(self) -> u64 {
        match self {
            Blocked::Account(ms) | Blocked::Address(ms) => ms,
        }
    }

    /// The message for the person at the form.
    pub fn message(self) -> String {
        let minutes = self.retry_after_ms().div_ceil(60_000).max(1);
        let unit = if minutes == 1 { "minute" } else { "minutes" };
        match self {
            Blocked::Account(_) => {
                format!("Too many failed sign-ins for this account; try again in {minutes} {unit}")
            }
            Blocked::Address(_) => format!(
                "Too many failed sign-ins from your network address; try again in {minutes} {unit}"
            ),
        }
    }
}

/// The login limits of one node: per account (lower-cased email) and per
/// client address.
#[derive(Debug)]
pub struct LoginLimiter {
    accounts: FailureWindow<String>,
    addresses: FailureWindow<IpAddr>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            accounts: FailureWindow::new(
                LOGIN_FAILURES_PER_ACCOUNT,
                LOGIN_FAILURE_WINDOW_MS,
                MAX_TRACKED_LOGIN_KEYS,
            ),
            addresses: FailureWindow::new(
                LOGIN_FAILURES_PER_ADDRESS,
                LOGIN_FAILURE_WINDOW_MS,
                MAX_TRACKED_LOGIN_KEYS,
            ),
        }
    }
}

impl LoginLimiter {
    /// Whether an attempt for `email` from `address` may be checked now.
    /// The address is checked first: a sprayer learns nothing about which
    /// accounts are locked.
    pub fn check(&mut self, email: &str, address: IpAddr, now_ms: u64) -> Result<(), Blocked> {
        self.addresses
            .check(&address, now_ms)
            .map_err(Blocked::Address)?;
        self.accounts
            .check(&email.to_owned(), now_ms)
            .map_err(Blocked::Account)
    }

    /// Counts a wrong password (or unknown email) for both keys.
    pub fn failed(&mut self, email: &str, address: IpAddr, now_ms: u64) {
        self.accounts.fail(&email.to_owned(), now_ms);
        self.addresses.fail(&address, now_ms);
    }

    /// A correct password: the account's failures are forgotten (its owner
    /// is back). The address's are kept, so that one account an attacker
    /// controls cannot reset their spraying budget.
    pub fn succeeded(&mut self, email: &str) {
        self.accounts.clear(&email.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn an_account_is_refused_after_its_failures_until_the_oldest_leaves_the_window() {
        let mut l = LoginLimiter::default();
        let t0 = 1_000_000;
        for i in 0..LOGIN_FAILURES_PER_ACCOUNT as u64 {
            assert_eq!(l.check("ada@example.com", A, t0 + i), Ok(()));
            l.failed("ada@example.com", A, t0 + i);
        }
        let blocked = l.check("ada@example.com", B, t0 + 10).unwrap_err();
        assert_eq!(blocked, Blocked::Account(LOGIN_FAILURE_WINDOW_MS - 10));
        assert!(
            blocked.message().contains("15 minutes"),
            "{}",
            blocked.message()
        );
        assert_eq!(l.check("bob@example.com", B, t0 + 10), Ok(()));
        assert_eq!(
            l.check("ada@example.com", B, t0 + LOGIN_FAILURE_WINDOW_MS),
            Ok(())
        );
    }

    #[test]
    fn an_address_spraying_many_accounts_is_refused() {
        let mut l = LoginLimiter::default();
        for i in 0..LOGIN_FAILURES_PER_ADDRESS {
            let email = format!("user{i}@example.com");
            assert_eq!(l.check(&email, A, 5), Ok(()));
            l.failed(&email, A, 5);
        }
        assert!(matches!(
            l.check("fresh@example.com", A, 6),
            Err(Blocked::Address(_))
        ));
        assert_eq!(l.check("fresh@example.com", B, 6), Ok(()));
    }

    #[test]
    fn a_correct_sign_in_forgets_the_accounts_failures_but_not_the_addresses() {
        let mut l = LoginLimiter::default();
        for _ in 0..LOGIN_FAILURES_PER_ACCOUNT - 1 {
            l.failed("ada@example.com", A, 1);
        }
        l.succeeded("ada@example.com");
        for _ in 0..LOGIN_FAILURES_PER_ACCOUNT - 1 {
            l.failed("ada@example.com", A, 2);
        }
        assert_eq!(l.check("ada@example.com", A, 3), Ok(()));
        l.failed("ada@example.com", A, 3);
        assert!(matches!(
            l.check("ada@example.com", B, 3),
            Err(Blocked::Account(_))
        ));
    }

    #[test]
    fn memory_is_bounded_by_forgetting_the_least_recent_key() {
        let mut w = FailureWindow::new(1, 1_000, 2);
        w.fail(&"a", 0);
        w.fail(&"b", 0);
        w.fail(&"c", 0);
        assert_eq!(w.len(), 2);
        assert_eq!(w.check(&"a", 1), Ok(()), "a was forgotten");
        assert!(w.check(&"c", 1).is_err());
    }
}
