//! Who may use the public HTTP API how often: per-client-address token
//! buckets, and the settings of the HTTP edge (room creation policy,
//! trusted proxy, framing).
//!
//! Decisions only: the time is passed in and nothing here touches a socket,
//! so the limiter is unit-tested without a clock. The axum middleware that
//! applies it lives in `api::edge`.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use veche_protocol::limits::{Rate, TokenBucket};

/// Token buckets keyed by client (address), bounded in memory: at most
/// `max_keys` keys, the least recently seen forgotten first. Forgetting a
/// key gives that client a full bucket again, which is the price of a fixed
/// memory bound; a spray of fresh addresses can only make the limiter
/// forget other addresses, never grow it.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    rate: Rate,
    max_keys: usize,
    /// Each key's bucket and the sequence number of its last use.
    buckets: HashMap<K, (TokenBucket, u64)>,
    /// Last-use sequence number to key, oldest first: the eviction order.
    by_recency: BTreeMap<u64, K>,
    next_seq: u64,
}

impl<K: Eq + Hash + Clone> KeyedLimiter<K> {
    /// A limiter giving each key its own bucket of `rate`.
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        KeyedLimiter {
            rate,
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
            by_recency: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Takes one token from `key`'s bucket. On refusal, the milliseconds
    /// until the next token (for `Retry-After`).
    pub fn check(&mut self, key: &K, now_ms: u64) -> Result<(), u64> {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some((bucket, last)) = self.buckets.get_mut(key) {
            self.by_recency.remove(last);
            *last = seq;
            self.by_recency.insert(seq, key.clone());
            return bucket.try_take(now_ms);
        }
        if self.buckets.len() >= self.max_keys {
            if let Some((_, oldest)) = self.by_recency.pop_first() {
                self.buckets.remove(&oldest);
            }
        }
        let mut bucket = self.rate.bucket(now_ms);
        let verdict = bucket.try_take(now_ms);
        self.buckets.insert(key.clone(), (bucket, seq));
        self.by_recency.insert(seq, key.clone());
        verdict
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// The key a client address is limited under. IPv4 (and IPv4-mapped IPv6)
/// addresses count one by one; an IPv6 address counts as its /64, because
/// one subscriber usually holds a whole /64 and could otherwise take a new
/// address, and a fresh bucket, for every request.
pub fn client_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The client behind one trusted reverse proxy: the last address in the
/// last `X-Forwarded-For` header, which is the one the proxy itself
/// appended (anything before it came from the client and may be forged).
/// `None` when the header is absent or its last entry is not an address.
pub fn forwarded_client<'a>(
    mut values: impl DoubleEndedIterator<Item = &'a str>,
) -> Option<IpAddr> {
    let last_header = values.next_back()?;
    let last = last_header.rsplit(',').next()?.trim();
    last.parse().ok()
}

/// Who may create rooms (`[rooms] create`).
#[derive(Clone, PartialEq, Eq, Default)]
pub enum RoomCreation {
    /// Anyone who can reach the API (the default): guests create meetings.
    #[default]
    Anyone,
    /// Only signed-in users; an anonymous request gets `401`.
    SignedIn,
    /// Only a request with `Authorization: Bearer <secret>`.
    Secret(String),
}

impl std::fmt::Debug for RoomCreation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoomCreation::Anyone => f.write_str("Anyone"),
            RoomCreation::SignedIn => f.write_str("SignedIn"),
            RoomCreation::Secret(_) => f.write_str("Secret(<redacted>)"),
        }
    }
}

/// The settings of the public HTTP edge.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Who may create rooms.
    pub room_creation: RoomCreation,
    /// Take the client address from `X-Forwarded-For` (its last entry)
    /// instead of the TCP peer. Only right when a reverse proxy that sets
    /// the header is the only way in; otherwise clients choose their own
    /// address and the per-address limits mean nothing.
    pub trust_forwarded_for: bool,
    /// Apply the per-address rate limits of `limits::http`. Off only for
    /// load tests that drive hundreds of clients from one address.
    pub rate_limits: bool,
    /// The `frame-ancestors` sources of the web client's
    /// Content-Security-Policy: who may embed a meeting in a frame.
    pub frame_ancestors: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            room_creation: RoomCreation::Anyone,
            trust_forwarded_for: false,
            rate_limits: true,
            frame_ancestors: "'none'".to_owned(),
        }
    }
}

impl HttpConfig {
    /// Refuses settings that would be unsafe or break the header they go
    /// into, with a message an operator can act on.
    pub fn validate(&self) -> Result<(), String> {
        if let RoomCreation::Secret(s) = &self.room_creation {
            crate::secret::check_secret("rooms.create_secret", s)?;
        }
        let fa = self.frame_ancestors.trim();
        if fa.is_empty() {
            return Err(
                "http.frame_ancestors must not be empty; \"'none'\" forbids framing".into(),
            );
        }
        if fa
            .chars()
            .any(|c| c == ';' || c == ',' || c.is_control() || !c.is_ascii())
        {
            return Err(format!(
                "http.frame_ancestors {fa:?} may only list sources separated by spaces \
                 (e.g. \"'self' https://intranet.example.com\")"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        burst: 2,
        per_second: 1.0,
    };

    #[test]
    fn each_address_gets_its_own_burst_then_waits_for_the_refill() {
        let mut l = KeyedLimiter::new(RATE, 10);
        let (a, b) = ("10.0.0.1", "10.0.0.2");
        assert_eq!(l.check(&a, 0), Ok(()));
        assert_eq!(l.check(&a, 0), Ok(()));
        assert_eq!(l.check(&a, 0), Err(1000));
        assert_eq!(l.check(&b, 0), Ok(()), "another address is not limited");
        assert_eq!(l.check(&a, 400), Err(600));
        assert_eq!(l.check(&a, 1000), Ok(()));
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_the_least_recently_seen_first() {
        let mut l = KeyedLimiter::new(RATE, 3);
        for k in [1, 2, 3] {
            l.check(&k, 0).unwrap();
            l.check(&k, 0).unwrap();
        }
        // 1 is seen again, so 2 is now the least recently seen.
        assert!(l.check(&1, 0).is_err());
        l.check(&4, 0).unwrap();
        assert_eq!(l.len(), 3);
        // 2 was forgotten (a full bucket again); 1 and 3 were not.
        assert_eq!(l.check(&2, 0), Ok(()), "2 should have been forgotten");
        assert!(l.check(&1, 0).is_err(), "1 should still be limited");
        for k in 100..1000 {
            let _ = l.check(&k, 0);
        }
        assert_eq!(l.len(), 3, "a spray of keys must not grow the table");
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_key(v4), v4);
    }

    #[test]
    fn the_forwarded_client_is_the_last_address_the_proxy_appended() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            forwarded_client(["203.0.113.9"].into_iter()),
            ip("203.0.113.9")
        );
        // The client forged the first entries; the proxy appended the last.
        assert_eq!(
            forwarded_client(["1.1.1.1, 2.2.2.2", "9.9.9.9, 203.0.113.9"].into_iter()),
            ip("203.0.113.9")
        );
        assert_eq!(
            forwarded_client(["2001:db8::1"].into_iter()),
            ip("2001:db8::1")
        );
        assert_eq!(forwarded_client(std::iter::empty()), None);
        assert_eq!(forwarded_client(["1.1.1.1, junk"].into_iter()), None);
    }

    #[test]
    fn frame_ancestors_must_be_space_separated_sources() {
        let with = |fa: &str| HttpConfig {
            frame_ancestors: fa.into(),
            ..HttpConfig::default()
        };
        assert!(HttpConfig::default().validate().is_ok());
        assert!(with("'self' https://intranet.example.com")
            .validate()
            .is_ok());
        for bad in ["", "'self'; script-src *", "a,b", "x\ny"] {
            assert!(with(bad).validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_short_create_secret_is_refused_and_debug_never_shows_it() {
        let c = HttpConfig {
            room_creation: RoomCreation::Secret("short".into()),
            ..HttpConfig::default()
        };
        let e = c.validate().unwrap_err();
        assert!(e.contains("rooms.create_secret"), "{e}");
        let long = "x".repeat(40);
        let c = HttpConfig {
            room_creation: RoomCreation::Secret(long.clone()),
            ..HttpConfig::default()
        };
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains(&long), "{c:?}");
    }
}
