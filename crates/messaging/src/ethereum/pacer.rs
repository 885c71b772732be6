//! A client-side limit on the calls sent to one endpoint per second (`--l1.max-rps`). Hosted
//! providers refuse calls above their plan's rate with HTTP 429 and count every call of a
//! batch; a node that paces itself under the limit waits less than one that is refused and
//! backs off, and its calls are not wasted.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// A token bucket holding one second's calls. A reservation may take it below zero: whoever
/// comes next waits for the debt too, so callers go in the order they came.
#[derive(Debug)]
pub(super) struct Pacer {
    calls_per_second: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Pacer {
    pub(super) fn new(calls_per_second: u32) -> Self {
        let calls_per_second = f64::from(calls_per_second.max(1));
        let bucket = Bucket { tokens: calls_per_second, refilled: Instant::now() };
        Self { calls_per_second, bucket: Mutex::new(bucket) }
    }

    /// How long `calls` must wait before they are sent, their tokens taken now.
    fn reserve(&self, calls: usize, now: Instant) -> Duration {
        let mut bucket = self.bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let refill = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + refill * self.calls_per_second).min(self.calls_per_second);
        bucket.refilled = now;
        bucket.tokens -= calls as f64;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / self.calls_per_second)
        }
    }

    /// Waits until `calls` more calls keep the endpoint within its rate. Each wait is recorded
    /// (`ferry_l1_pacing_wait_seconds`): an operator sees how much the limit holds the node
    /// back.
    pub(super) async fn admit(&self, calls: usize) {
        let wait = self.reserve(calls, Instant::now());
        if !wait.is_zero() {
            metrics::histogram!("ferry_l1_pacing_wait_seconds").record(wait.as_secs_f64());
            tokio::time::sleep(wait).await;
        }
    }

    /// The most calls one JSON-RPC batch may hold: half a second's worth. A batch larger than
    /// a second's is refused by a provider limiting per second whatever the wait, and one that
    /// needs all of it is refused when it arrives a little before the one sent ahead of it.
    pub(super) fn max_batch(&self) -> usize {
        (self.calls_per_second as usize / 2).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_of_calls_goes_at_once_and_later_calls_wait_their_turn_in_order() {
        let pacer = Pacer::new(25);
        let start = Instant::now();
        assert_eq!(pacer.reserve(20, start), Duration::ZERO, "within the first second's calls");
        assert_eq!(pacer.reserve(5, start), Duration::ZERO);
        let wait = pacer.reserve(25, start);
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-9, "a second's calls more: {wait:?}");
        let behind = pacer.reserve(5, start);
        assert!((behind.as_secs_f64() - 1.2).abs() < 1e-9, "behind the one before: {behind:?}");
        // Two seconds later the debt is paid and the bucket refilled no further than a second's.
        let later = start + Duration::from_secs(4);
        assert_eq!(pacer.reserve(25, later), Duration::ZERO);
        let wait = pacer.reserve(1, later);
        assert!((wait.as_secs_f64() - 0.04).abs() < 1e-9, "{wait:?}");
        assert_eq!(pacer.max_batch(), 12);
        assert_eq!(Pacer::new(1).max_batch(), 1);
    }
}
