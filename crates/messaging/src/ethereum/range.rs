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

/// Logs per answer above which the range shrinks to fit.
const TARGET_LOGS: u64 = 25_000;

impl AdaptiveRange {
    /// Starts at a quarter of `max` (at least 1): the density of the chain is not known yet,
    /// and one huge first answer would stall everything behind it; successes grow it.
    pub(crate) fn new(max: u64) -> Self {
        let max = max.max(1);
        Self { max, current: (max / 4).max(1), successes: 0 }
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
    pub(crate) fn succeeded_with(&mut self, blocks: u64, logs: u64) {
        if logs > TARGET_LOGS {
            self.successes = 0;
            self.current = (blocks.saturating_mul(TARGET_LOGS) / logs).clamp(1, self.max);
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
        assert_eq!(range.blocks(), 250);
        for _ in 0..8 {
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
        assert_eq!(range.blocks(), 250);
        range.succeeded_with(250, 25_000);
        assert_eq!(range.blocks(), 250, "an answer of the target size keeps it");
    }

    #[test]
    fn short_ranges_at_the_head_do_not_grow_it() {
        let mut range = AdaptiveRange::new(32);
        range.shrink();
        for _ in 0..100 {
            range.succeeded(1);
        }
        assert_eq!(range.blocks(), 4);
    }
}
