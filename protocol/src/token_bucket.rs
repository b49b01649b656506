//! The token bucket behind every rate in `limits.rs`, apart from the
//! table so the table stays a table.

/// A token bucket. Decisions only: the caller passes the time.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    refill_per_ms: f64,
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens, refilled at `per_second`.
    pub fn new(burst: u32, per_second: f64, now_ms: u64) -> Self {
        TokenBucket {
            capacity: f64::from(burst),
            refill_per_ms: per_second / 1000.0,
            tokens: f64::from(burst),
            last_ms: now_ms,
        }
    }

    /// Takes one token if available. On refusal returns how many
    /// milliseconds until the next token, for the error message and
    /// `Retry-After`.
    pub fn try_take(&mut self, now_ms: u64) -> Result<(), u64> {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64;
        self.last_ms = self.last_ms.max(now_ms);
        self.tokens = (self.tokens + elapsed * self.refill_per_ms).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - self.tokens;
            Err((missing / self.refill_per_ms).ceil() as u64)
        }
    }

    /// True when the bucket is full again at `now_ms`, so a per-address
    /// table may forget it without changing any decision.
    pub fn is_full(&self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64;
        self.tokens + elapsed * self.refill_per_ms >= self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut b = TokenBucket::new(3, 2.0, 1_000);
        for _ in 0..3 {
            assert_eq!(b.try_take(1_000), Ok(()));
        }
        assert_eq!(b.try_take(1_000), Err(500));
        assert_eq!(b.try_take(1_499), Err(2));
        assert_eq!(b.try_take(1_500), Ok(()));
        assert!(!b.is_full(1_500));
        assert!(b.is_full(3_000));
    }

    #[test]
    fn time_going_backwards_neither_refills_nor_panics() {
        let mut b = TokenBucket::new(1, 1.0, 10_000);
        assert_eq!(b.try_take(10_000), Ok(()));
        assert!(b.try_take(5_000).is_err());
        assert!(b.try_take(10_500).is_err());
        assert_eq!(b.try_take(11_000), Ok(()));
    }
}
