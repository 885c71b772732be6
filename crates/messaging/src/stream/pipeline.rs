//! The ranges in flight: while far behind the head, several consecutive ranges are gathered
//! at once, and those that have arrived are merged into one batch where they continue each
//! other on one chain.

use crate::{Collector, CollectorError, Gathered};
use alloy::primitives::B256;
use ferry_primitives::{L1Message, Position};
use std::{collections::VecDeque, future::Future, pin::Pin, sync::Arc, task::Poll};
use tokio::task::JoinHandle;

/// Ranges in flight while far behind the head: the cursor's own and those after it, so that
/// fetching overlaps committing and the provider serves several requests at once.
const IN_FLIGHT: usize = 4;

/// The first range gathered after a rewind is the usual one divided by this. Not at start:
/// each commit costs more than its messages (the hash index, fsync), so small first batches
/// would slow a long catch-up for no one's benefit.
const SLOW_START: u64 = 8;

/// At most this many messages are merged into one batch from ranges gathered ahead. One
/// transaction for several ranges shares their fsync and the pages of the hash index's
/// newest partition, which random hashes spread over; the cap bounds how long a commit holds the
/// writer (a checkpoint change waits for it).
const MERGE_MESSAGES: usize = 25_000;

/// A gathered range and the hashes of its messages, computed by the gathering task so that
/// the single writer does not have to.
#[derive(Debug)]
pub(super) struct Hashed {
    pub(super) gathered: Gathered,
    pub(super) hashes: Vec<B256>,
}

impl Hashed {
    /// Hashes the messages. (The same message twice in one answer, which the contract's nonce
    /// rules out, is stored once: the store indexes hashes.)
    fn new(gathered: Gathered) -> Self {
        let hashes = gathered.messages.iter().map(L1Message::hash).collect();
        Self { gathered, hashes }
    }
}

/// A range being gathered ahead of the cursor. Its result is used only if the cursor reaches
/// exactly its start; a rewind or a failed commit drops it.
#[derive(Debug)]
struct InFlight {
    from: Position,
    to_block: u64,
    /// The first block it carries the header of.
    headers_from: u64,
    task: JoinHandle<Result<Hashed, CollectorError>>,
}

/// The ranges in flight, in block order.
#[derive(Debug)]
pub(super) struct Pipeline<C> {
    collector: Arc<C>,
    ranges: VecDeque<InFlight>,
    /// Set by a rewind: the next ranges gathered ahead start with a small one.
    slow_start: bool,
}

impl<C> Drop for Pipeline<C> {
    fn drop(&mut self) {
        for range in &self.ranges {
            range.task.abort();
        }
    }
}

impl<C: Collector> Pipeline<C> {
    pub(super) fn new(collector: Arc<C>) -> Self {
        Self { collector, ranges: VecDeque::new(), slow_start: false }
    }

    /// Drops every range in flight; with `slow_start`, the next ones start small.
    pub(super) fn clear(&mut self, slow_start: bool) {
        for range in self.ranges.drain(..) {
            range.task.abort();
        }
        self.slow_start |= slow_start;
    }

    /// The range from `from` up to `safe` at most, with headers from `headers_from` on (and
    /// the ranges after it from `floor` on): the one in flight if it starts there and carries
    /// those headers, or gathered now. A range gathered ahead under other heads may carry
    /// fewer (a floor that has moved down since, an operator's forward move): it is dropped,
    /// so that no batch commits without the headers its window needs. Cancel-safe: a
    /// dropped call leaves the range in flight for the next one.
    pub(super) async fn next(
        &mut self,
        from: Position,
        safe: u64,
        floor: u64,
        headers_from: u64,
    ) -> Result<Hashed, CollectorError> {
        // Compared as gathered: a range's headers start at its last block at the latest.
        let stale = |range: &InFlight| {
            range.headers_from.min(range.to_block) > headers_from.min(range.to_block)
        };
        if self.ranges.front().is_some_and(|range| range.from != from || stale(range)) {
            self.clear(false);
        }
        self.fill(from, safe, floor, headers_from);
        let Some(range) = self.ranges.front_mut() else {
            let gathered = self.collector.gather(from, safe, headers_from).await?;
            return Ok(Hashed::new(gathered));
        };
        // Popped only once awaited: a dropped future leaves it for the next call.
        let gathered = match (&mut range.task).await {
            Ok(gathered) => gathered,
            // A panic in a gathering task is a bug: it stops ingestion as it does when the
            // gather runs in this task, instead of being retried as an inconsistency.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => {
                Err(CollectorError::Inconsistent(format!("a gathering task failed: {error}")))
            }
        };
        let to_block = range.to_block;
        self.ranges.pop_front();
        let hashed = gathered?;
        if hashed.gathered.last_block().number != to_block {
            // The collector stopped short (a provider range limit): later ranges no longer
            // line up.
            self.clear(false);
        }
        Ok(hashed)
    }

    /// While far behind the safe head, keeps [`IN_FLIGHT`] consecutive ranges being gathered,
    /// the first from `from` (or after the last one already in flight), with headers from
    /// `headers_from` for the one at `from` and from `floor` for those after it. Near the
    /// head it starts none: one gather up to the safe head does.
    pub(super) fn fill(&mut self, from: Position, safe: u64, floor: u64, headers_from: u64) {
        let Some(range) = self.collector.range_hint().filter(|range| *range > 0) else { return };
        let mut start =
            self.ranges.back().map_or(from, |last| Position::block_start(last.to_block + 1));
        // Slow start after a rewind: a small range goes out alone, so that the provider serves
        // it first and the re-scan's first batch commits at once; the full-sized ranges
        // follow with the next batch.
        let (mut blocks, in_flight) = if std::mem::take(&mut self.slow_start) {
            ((range / SLOW_START).max(1), 1)
        } else {
            (range, IN_FLIGHT)
        };
        while self.ranges.len() < in_flight && start.block.saturating_add(range) <= safe {
            let to_block = start.block + blocks - 1;
            blocks = range;
            let collector = Arc::clone(&self.collector);
            let headers_from = if start == from { headers_from } else { start.block.max(floor) };
            let task = tokio::spawn(async move {
                collector.gather(start, to_block, headers_from).await.map(Hashed::new)
            });
            self.ranges.push_back(InFlight { from: start, to_block, headers_from, task });
            start = Position::block_start(to_block + 1);
        }
    }

    /// Appends to `hashed` the ranges gathered ahead that are already complete and continue
    /// it on the same chain, up to [`MERGE_MESSAGES`] messages. A range whose headers start
    /// with its first block must link to `hashed`'s last header; one anchored by a later
    /// header only (below the reorg window) replaces the headers, so that the window starts
    /// again there. A range that failed or was read from another chain ends the merge, and it
    /// and those after it are gathered again.
    pub(super) fn merge_ready(&mut self, hashed: &mut Hashed) {
        let mut waker = std::task::Context::from_waker(std::task::Waker::noop());
        while let Some(next) = self.ranges.front_mut() {
            let gathered = &mut hashed.gathered;
            if gathered.messages.len() >= MERGE_MESSAGES
                || next.from != Position::block_start(gathered.last_block().number + 1)
            {
                return;
            }
            let Poll::Ready(result) = Pin::new(&mut next.task).poll(&mut waker) else { return };
            let (from, to_block) = (next.from, next.to_block);
            self.ranges.pop_front();
            let Ok(Ok(Hashed { gathered: more, hashes })) = result else {
                self.clear(false);
                return;
            };
            let first = more.headers[0];
            if first.number == from.block {
                if !gathered.last_block().is_parent_of(&first) {
                    self.clear(false);
                    return;
                }
                gathered.headers.extend(more.headers);
            } else {
                gathered.headers = more.headers;
            }
            hashed.hashes.extend(hashes);
            gathered.messages.extend(more.messages);
            gathered.events.extend(more.events);
            gathered.malformed.extend(more.malformed);
            if gathered.last_block().number != to_block {
                self.clear(false);
            }
        }
    }

    #[cfg(test)]
    pub(super) fn push_finished(&mut self, from: Position, to_block: u64, gathered: Gathered) {
        let headers_from = gathered.headers[0].number;
        let task = tokio::spawn(async move { Ok(Hashed::new(gathered)) });
        self.ranges.push_back(InFlight { from, to_block, headers_from, task });
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    #[cfg(test)]
    pub(super) fn hashed(gathered: Gathered) -> Hashed {
        Hashed::new(gathered)
    }
}
