//! The adaptive `eth_getLogs` block range: small at first, halved when a provider refuses,
//! shrunk on dense stretches to a budget of logs and bytes per answer, grown back after
//! successes; never skipping a block.

/// The `eth_getLogs` block range: starts small, grows after each answer while answers stay
/// well under the budget (the chain's density is unknown at first), halves when the provider
/// says a range or its result is too large, shrinks to fit the budget on dense stretches, and
/// doubles back after a run of successes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdaptiveRange {
    max: u64,
    current: u64,
    successes: u32,
    /// Until the range fills the budget or a provider refuses one, each full-size answer
    /// grows the range [`RAMP_GROWTH`]-fold (or to the blocks that fill the budget, if fewer).
    ramping: bool,
}

/// Successes in a row after which the range doubles again.
const GROW_AFTER: u32 = 4;
/// Logs per answer above which the range shrinks to fit. Answers of a few thousand logs keep
/// several requests in flight and let committing overlap fetching; on Anvil, 5,000-log answers
/// four at a time are also the fastest way to read a dense chain (docs/benchmarks.md).
const TARGET_LOGS: u64 = 5_000;
/// Bytes of JSON per answer above which the range shrinks to fit, whatever the log count:
/// messages with large payloads make large logs, and four answers in flight plus the batch
/// being merged are what the node's memory holds while catching up.
const TARGET_BYTES: u64 = 8 << 20;
/// While ramping, a full-size answer under half the budget multiplies the range by up to
/// this: far from the budget (an empty stretch) it reaches the maximum in three answers,
/// and a dense chain's first answer sets the range that fills the budget at once.
const RAMP_GROWTH: u64 = 8;
/// The first range is the maximum divided by this: the density of the chain is not known
/// yet and several ranges go out at once while far behind, so one huge answer (62,000 logs
/// of a dense chain at a sixteenth of 1,000 blocks) would stall everything behind it and
/// hold tens of MiB. Ramping doubles it back to the maximum within a few requests.
const FIRST_RANGE_DIVISOR: u64 = 128;

/// The size of an `eth_getLogs` answer as the range budgets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AnswerSize {
    pub(crate) logs: u64,
    pub(crate) bytes: u64,
}

impl AnswerSize {
    /// A log's JSON without its payload: topics, data head, hashes, numbers and field names
    /// (about 750 bytes for `LogMessageToL2`, rounded up).
    const LOG_BYTES: u64 = 800;

    /// An estimate from the decoded logs: each log's fixed part and 64 hex digits per
    /// payload word. The raw body is not kept past decoding; the estimate is within a few
    /// percent of it for `LogMessageToL2`.
    pub(crate) fn of_logs(payload_words: impl IntoIterator<Item = usize>) -> Self {
        let mut size = Self::default();
        for words in payload_words {
            size.logs += 1;
            size.bytes += Self::LOG_BYTES + 64 * words as u64;
        }
        size
    }

    /// How many of `blocks` blocks fit the budget, at this answer's density; `None` when the
    /// whole answer fits it.
    fn blocks_within_budget(self, blocks: u64) -> Option<u64> {
        if self.logs <= TARGET_LOGS && self.bytes <= TARGET_BYTES {
            return None;
        }
        self.blocks_to_fill(blocks)
    }

    /// How many blocks at this answer's density (of `blocks` blocks) fill the budget; `None`
    /// for an empty answer, which says nothing about the density.
    fn blocks_to_fill(self, blocks: u64) -> Option<u64> {
        if self.logs == 0 {
            return None;
        }
        let by_logs = blocks.saturating_mul(TARGET_LOGS) / self.logs;
        let by_bytes = blocks.saturating_mul(TARGET_BYTES) / self.bytes.max(1);
        Some(by_logs.min(by_bytes))
    }

    /// Whether twice this answer would still fit the budget.
    fn under_half_the_budget(self) -> bool {
        self.logs.saturating_mul(2) <= TARGET_LOGS && self.bytes.saturating_mul(2) <= TARGET_BYTES
    }
}

impl AdaptiveRange {
    /// Starts at `max / FIRST_RANGE_DIVISOR` (at least 1 block), ramping.
    pub(crate) fn new(max: u64) -> Self {
        let max = max.max(1);
        Self { max, current: (max / FIRST_RANGE_DIVISOR).max(1), successes: 0, ramping: true }
    }

    /// How many blocks to ask for next.
    pub(crate) const fn blocks(&self) -> u64 {
        self.current
    }

    /// The provider refused `blocks()` blocks; `false` when it was already one block.
    pub(crate) fn shrink(&mut self) -> bool {
        self.successes = 0;
        self.ramping = false;
        if self.current == 1 {
            return false;
        }
        self.current = (self.current / 2).max(1);
        true
    }

    /// A request of `blocks` blocks succeeded with an answer of `size`. Answers over the
    /// budget shrink the range to fit it: providers (and Anvil) serve a few mid-sized answers
    /// faster than one huge one, and memory holds the answers in flight. It grows only while
    /// twice the range would still fit.
    pub(crate) fn succeeded_with(&mut self, blocks: u64, size: AnswerSize) {
        if let Some(fitting) = size.blocks_within_budget(blocks) {
            self.successes = 0;
            self.ramping = false;
            self.current = fitting.clamp(1, self.max);
            return;
        }
        if self.ramping && blocks >= self.current {
            // Grow by up to RAMP_GROWTH, stopping at the range that fills the budget if that
            // comes first.
            let grown = self.current.saturating_mul(RAMP_GROWTH);
            match size.blocks_to_fill(blocks) {
                Some(filling) if filling < grown => {
                    self.current = filling.clamp(1, self.max);
                    self.ramping = false;
                }
                _ => {
                    self.current = grown.min(self.max);
                    self.ramping = self.current < self.max;
                }
            }
            return;
        }
        if size.under_half_the_budget() {
            self.succeeded(blocks);
        }
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

    fn logs(logs: u64) -> AnswerSize {
        AnswerSize { logs, bytes: logs * 1_000 }
    }

    #[test]
    fn halves_down_to_one_block_and_grows_back_to_the_maximum() {
        let mut range = AdaptiveRange::new(1_000);
        assert_eq!(range.blocks(), 7);
        let mut ramp = vec![];
        while range.blocks() < 1_000 {
            let blocks = range.blocks();
            range.succeeded_with(blocks, AnswerSize::default());
            ramp.push(range.blocks());
        }
        assert_eq!(ramp, [56, 448, 1_000], "each empty answer grows it eightfold");
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
        assert_eq!(range.blocks(), 1_000, "after a refusal, runs of successes grow it back");
    }

    #[test]
    fn dense_answers_shrink_the_range_to_fit() {
        let mut range = AdaptiveRange::new(4_000);
        range.succeeded_with(1_000, logs(100_000));
        assert_eq!(range.blocks(), 50);
        for _ in 0..10 {
            range.succeeded_with(50, logs(5_000));
        }
        assert_eq!(range.blocks(), 50, "answers of the target size keep it");
        for _ in 0..4 {
            range.succeeded_with(50, logs(2_000));
        }
        assert_eq!(range.blocks(), 100, "answers of under half the target grow it");
    }

    #[test]
    fn large_logs_shrink_the_range_to_the_byte_budget_whatever_their_count() {
        let mut range = AdaptiveRange::new(1_000);
        // 100 logs of 1,000 payload words each: about 6.5 MB per block.
        let per_block = AnswerSize::of_logs([1_000; 100]);
        assert_eq!(per_block.bytes, 100 * (800 + 64_000));
        range.succeeded_with(7, AnswerSize { logs: 700, bytes: 7 * per_block.bytes });
        assert_eq!(range.blocks(), 1, "8 MiB hold one such block");
        for _ in 0..20 {
            range.succeeded_with(1, per_block);
        }
        assert_eq!(range.blocks(), 1, "an answer over half the budget never grows it");
    }

    #[test]
    fn ramping_stops_at_the_range_that_fills_the_budget() {
        let mut range = AdaptiveRange::new(1_000);
        range.succeeded_with(7, logs(70));
        assert_eq!(range.blocks(), 56, "sparse: eightfold");
        // An answer of the old size, arriving late, does not grow it again.
        range.succeeded_with(7, logs(70));
        assert_eq!(range.blocks(), 56);
        range.succeeded_with(56, logs(12_000));
        assert_eq!(range.blocks(), 23, "over the budget: shrunk to fit, ramping ends");
        let mut range = AdaptiveRange::new(1_000);
        range.succeeded_with(7, logs(700));
        assert_eq!(range.blocks(), 50, "ramping ends at the range that fills the budget");
        range.succeeded_with(50, logs(2_000));
        assert_eq!(range.blocks(), 50, "no longer ramping: growing needs a run of successes");
        let mut range = AdaptiveRange::new(1_000);
        range.succeeded_with(7, logs(700));
        range.succeeded_with(50, logs(1_000));
        assert_eq!(range.blocks(), 50, "a run of successes, not one, grows it");
        range.succeeded_with(50, logs(4_900));
        assert_eq!(range.blocks(), 50, "answers over half the budget keep it");
    }

    #[test]
    fn short_ranges_at_the_head_do_not_grow_it() {
        let mut range = AdaptiveRange::new(64);
        range.shrink();
        assert_eq!(range.blocks(), 1);
        for _ in 0..100 {
            range.succeeded(1);
        }
        assert_eq!(range.blocks(), 2, "one block is the whole range: runs of it grow");
        let mut range = AdaptiveRange::new(1_024);
        range.shrink();
        assert_eq!(range.blocks(), 4);
        for _ in 0..100 {
            range.succeeded(1);
        }
        assert_eq!(range.blocks(), 4);
    }
}
