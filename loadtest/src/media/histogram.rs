//! A latency histogram of log-spaced buckets: fixed memory per track, about 1 % precision,
//! mergeable over many tracks for a run's summary. No I/O.

use std::time::Duration;

/// Sub-buckets per power of two in [`LatencyHistogram`]: 2^7 = 128. Bucket width is then at
/// most 1/128 of the value, and the reported midpoint is within 0.4 % of any sample in the
/// bucket.
const SUB_BUCKET_BITS: u32 = 7;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;

/// A latency histogram with about 1 % precision (HDR-histogram style), recording microseconds.
///
/// Values below 256 µs get a bucket per microsecond. Above that, every power of two is split
/// into 128 equal buckets. A quantile is reported as its bucket's midpoint, which is within
/// 0.4 % of the true sample. The minimum, maximum and mean are exact. The bucket array grows
/// only as far as the largest value seen: about 11 KB for latencies up to 100 ms, 18 KB up to
/// 10 s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    count: u64,
    sum_us: u128,
    min_us: u64,
    max_us: u64,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one sample, truncated to whole microseconds.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = bucket_of(us);
        if bucket >= self.counts.len() {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += 1;
        self.min_us = if self.count == 0 {
            us
        } else {
            self.min_us.min(us)
        };
        self.max_us = self.max_us.max(us);
        self.count += 1;
        self.sum_us += u128::from(us);
    }

    /// Adds all of `other`'s samples, for example to summarise every track of a run.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.count == 0 {
            return;
        }
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.min_us = if self.count == 0 {
            other.min_us
        } else {
            self.min_us.min(other.min_us)
        };
        self.max_us = self.max_us.max(other.max_us);
        self.count += other.count;
        self.sum_us += other.sum_us;
    }

    /// Number of samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The smallest sample, exact. `None` if empty.
    pub fn min(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_micros(self.min_us))
    }

    /// The largest sample, exact. `None` if empty.
    pub fn max(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_micros(self.max_us))
    }

    /// The mean of the samples, exact to the microsecond. `None` if empty.
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| {
            Duration::from_micros(
                u64::try_from(self.sum_us / u128::from(self.count)).unwrap_or(u64::MAX),
            )
        })
    }

    /// The `q`-quantile (for example 0.99 for p99), within about 0.4 %. `None` if empty.
    ///
    /// This is the smallest recorded value with at least `q` of the samples at or below it
    /// (nearest-rank). `q` is clamped to `[0, 1]`. `q = 0` and `q = 1` give the exact minimum
    /// and maximum.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        if rank == 1 {
            return self.min();
        }
        if rank >= self.count {
            return self.max();
        }
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, width) = bucket_range(bucket);
                let mid = low + (width - 1) / 2;
                return Some(Duration::from_micros(mid.clamp(self.min_us, self.max_us)));
            }
        }
        self.max() // Unreachable: the counts add up to `count`.
    }

    /// The usual summary: count, min, mean, p50, p95, p99 and max.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            samples: self.count,
            min: self.min(),
            mean: self.mean(),
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
            max: self.max(),
        }
    }
}

/// Bucket index of a value in microseconds.
fn bucket_of(us: u64) -> usize {
    if us < 2 * SUB_BUCKETS {
        return us as usize;
    }
    // Keep the top 8 significant bits: a mantissa in [128, 256) and a shift.
    let shift = (63 - us.leading_zeros()) - SUB_BUCKET_BITS;
    let mantissa = us >> shift;
    (SUB_BUCKETS * u64::from(shift + 1) + (mantissa - SUB_BUCKETS)) as usize
}

/// The lowest value of a bucket and its width, both in microseconds.
fn bucket_range(bucket: usize) -> (u64, u64) {
    let bucket = bucket as u64;
    if bucket < 2 * SUB_BUCKETS {
        return (bucket, 1);
    }
    let shift = bucket / SUB_BUCKETS - 1;
    let mantissa = bucket % SUB_BUCKETS + SUB_BUCKETS;
    (mantissa << shift, 1 << shift)
}

/// Latency percentiles of a [`LatencyHistogram`]. Every figure is `None` when there are no
/// samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Number of samples.
    pub samples: u64,
    /// Smallest sample.
    pub min: Option<Duration>,
    /// Mean.
    pub mean: Option<Duration>,
    /// Median.
    pub p50: Option<Duration>,
    /// 95th percentile.
    pub p95: Option<Duration>,
    /// 99th percentile.
    pub p99: Option<Duration>,
    /// Largest sample.
    pub max: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_one_percent() {
        // A deterministic spread from 1 µs to about 30 s.
        let mut samples: Vec<u64> = (1..20_000u64)
            .map(|i| (i * i * 7919) % 30_000_000 + 1)
            .collect();
        let mut h = LatencyHistogram::new();
        for &s in &samples {
            h.record(Duration::from_micros(s));
        }
        samples.sort_unstable();
        for q in [0.01, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999] {
            let rank = ((q * samples.len() as f64).ceil() as usize).max(1);
            let exact = samples[rank - 1] as f64;
            let got = h.quantile(q).unwrap().as_micros() as f64;
            assert!(
                (got - exact).abs() <= 0.01 * exact,
                "q={q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.quantile(0.0), Some(Duration::from_micros(samples[0])));
        assert_eq!(
            h.quantile(1.0),
            Some(Duration::from_micros(*samples.last().unwrap()))
        );
        assert!(
            h.counts.len() < 3_000,
            "bounded memory: {} buckets",
            h.counts.len()
        );
    }

    #[test]
    fn merged_histograms_equal_one_fed_everything() {
        let (mut a, mut b, mut all) = (
            LatencyHistogram::new(),
            LatencyHistogram::new(),
            LatencyHistogram::new(),
        );
        for i in 0..1000u64 {
            let d = Duration::from_micros(i * 37 % 5000);
            if i % 3 == 0 {
                a.record(d)
            } else {
                b.record(d)
            }
            all.record(d);
        }
        let mut merged = LatencyHistogram::new();
        merged.merge(&a);
        merged.merge(&b);
        merged.merge(&LatencyHistogram::new());
        assert_eq!(merged, all);
    }

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut prev = 0;
        for us in [0u64, 1, 255, 256, 257, 511, 512, 1_000, 65_535, 1 << 40] {
            let b = bucket_of(us);
            assert!(b >= prev);
            prev = b;
            let (low, width) = bucket_range(b);
            assert!(
                low <= us && us < low + width,
                "{us} in bucket {b} = [{low}, +{width})"
            );
            assert!(
                width == 1 || width * SUB_BUCKETS <= low,
                "width at most 1/128 of the value"
            );
        }
    }
}
