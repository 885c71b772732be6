//! The adaptive `eth_getLogs` block range: small at first, halved when a provider refuses,
//! shrunk on dense stretches, grown back after successes; never skipping a block.

/// The `eth_getLogs` block range: starts at the configured maximum, halves when the provider
/// says a range or its result is too large, and doubles back after a run of successes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdaptiveRange {
    max: u64,
    current: u64,
    successes: u32,
}

/// Successes in a row after which the range doubles again.
const GROW_AFTER: u32 = 4;

/// Logs per answer above which the range shrinks to fit. Answers of a few thousand logs keep
/// several requests in flight and let committing overlap fetching; on Anvil, 5,000-log answers
/// four at a time are also the fastest way to read a dense chain (docs/benchmarks.md).
const TARGET_LOGS: u64 = 5_000;

/// The first range is the maximum divided by this: the density of the chain is not known
/// yet, several ranges go out at once while far behind, and one huge answer would stall
/// everything behind it. Empty ranges grow it back to the maximum within a few dozen requests.
const FIRST_RANGE_DIVISOR: u64 = 16;

impl AdaptiveRange {
    /// Starts at `max / FIRST_RANGE_DIVISOR` (at least 1 block); successes grow it.
    pub(crate) fn new(max: u64) -> Self {
        let max = max.max(1);
        Self { max, current: (max / FIRST_RANGE_DIVISOR).max(1), successes: 0 }
    }

    /// How many blocks to ask for next.
    pub(crate) const fn blocks(&self) -> u64 {
        self.current
    }

    /// The provider refused `blocks()` blocks; `false` when it was already one block.
    pub(crate) fn shrink(&mut self) -> bool {
        self.successes = 0;
        if self.current == 1 {
            return false;
        }
        self.current = (self.current / 2).max(1);
        true
    }

    /// A request of `blocks` blocks succeeded with `logs` logs. Very dense answers shrink the
    /// range: providers (and Anvil) serve a few mid-sized answers faster than one huge one.
    /// It grows only while twice the range would still fit the target.
    pub(crate) fn succeeded_with(&mut self, blocks: u64, logs: u64) {
        if logs > TARGET_LOGS {
            self.successes = 0;
            self.current = (blocks.saturating_mul(TARGET_LOGS) / logs).clamp(1, self.max);
            return;
        }
        if logs.saturating_mul(2) > TARGET_LOGS {
            return;
        }
        self.succeeded(blocks);
    }

    /// A request of `blocks` blocks succeeded.
    pub(crate) fn succeeded(&mut self, blocks: u64) {
        // A short range at the chain head says nothing about the provider's limit.
        if blocks < self.current {
            return;
        }
        self.successes += 1;
        if self.successes >= GROW_AFTER && self.current < self.max {
            self.current = (self.current * 2).min(self.max);
            self.successes = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_down_to_one_block_and_grows_back_to_the_maximum() {
        let mut range = AdaptiveRange::new(1_000);
        assert_eq!(range.blocks(), 62);
        for _ in 0..20 {
            let blocks = range.blocks();
            range.succeeded(blocks);
        }
        assert_eq!(range.blocks(), 1_000);
        let mut sizes = vec![];
        while range.shrink() {
            sizes.push(range.blocks());
        }
        assert_eq!(sizes, [500, 250, 125, 62, 31, 15, 7, 3, 1]);
        assert!(!range.shrink(), "one block cannot shrink");
        for _ in 0..200 {
            let blocks = range.blocks();
            range.succeeded(blocks);
        }
        assert_eq!(range.blocks(), 1_000);
    }

    #[test]
    fn dense_answers_shrink_the_range_to_fit() {
        let mut range = AdaptiveRange::new(4_000);
        range.succeeded_with(1_000, 100_000);
        assert_eq!(range.blocks(), 50);
        for _ in 0..10 {
            range.succeeded_with(50, 5_000);
        }
        assert_eq!(range.blocks(), 50, "answers of the target size keep it");
        for _ in 0..4 {
            range.succeeded_with(50, 2_000);
        }
        assert_eq!(range.blocks(), 100, "answers of under half the target grow it");
    }

    #[test]
    fn short_ranges_at_the_head_do_not_grow_it() {
        let mut range = AdaptiveRange::new(64);
        range.shrink();
        assert_eq!(range.blocks(), 2);
        for _ in 0..100 {
            range.succeeded(1);
        }
        assert_eq!(range.blocks(), 2);
    }
}
