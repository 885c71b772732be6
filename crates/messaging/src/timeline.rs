//! L1 time to block: a rewind by time (Kafka's `--to-datetime`) reads from the first block at
//! or after a moment, found by binary search over block timestamps, which L1 keeps
//! non-decreasing.

use crate::CollectorError;
use ferry_primitives::ResolvedTime;
use std::{future::Future, pin::Pin};

/// Block timestamps, from the running task's collector.
pub(crate) trait BlockClock: Send + Sync + std::fmt::Debug {
    /// The newest block number.
    fn latest(&self) -> Pin<Box<dyn Future<Output = Result<u64, CollectorError>> + Send + '_>>;

    /// The timestamp of block `number`; `None` if there is no such block.
    fn timestamp(
        &self,
        number: u64,
    ) -> Pin<Box<dyn Future<Output = Result<Option<u64>, CollectorError>> + Send + '_>>;
}

impl<C: crate::Collector + std::fmt::Debug> BlockClock for C {
    fn latest(&self) -> Pin<Box<dyn Future<Output = Result<u64, CollectorError>> + Send + '_>> {
        Box::pin(async move { self.heads().await.map(|heads| heads.latest) })
    }

    fn timestamp(
        &self,
        number: u64,
    ) -> Pin<Box<dyn Future<Output = Result<Option<u64>, CollectorError>> + Send + '_>> {
        Box::pin(self.block_timestamp(number))
    }
}

/// Why a moment could not be placed.
#[derive(Debug)]
pub(crate) enum Unplaced {
    /// After the newest block.
    Future { head: u64, head_time: u64 },
    /// L1 failed or contradicted itself.
    Failed(String),
}

/// The first block in `start..=latest` whose timestamp is at or after `time`: about 2 log2(n)
/// header requests. A moment before the start block resolves to it (re-scanning from where
/// the node was configured to start is the most such a rewind can mean).
pub(crate) async fn first_block_at(
    clock: &dyn BlockClock,
    time: u64,
    start: u64,
) -> Result<ResolvedTime, Unplaced> {
    let failed = |error: CollectorError| Unplaced::Failed(error.to_string());
    let head = clock.latest().await.map_err(failed)?;
    let timestamp = |number: u64| async move {
        clock.timestamp(number).await.map_err(failed)?.ok_or_else(|| {
            Unplaced::Failed(format!("block {number} does not exist (the chain is at {head})"))
        })
    };
    let head_time = timestamp(head).await?;
    if head_time < time {
        return Err(Unplaced::Future { head, head_time });
    }
    let start = start.min(head);
    let start_time = timestamp(start).await?;
    let resolved = |block, block_timestamp, clamped| ResolvedTime {
        timestamp: time,
        block,
        block_timestamp,
        clamped_to_start_block: clamped,
    };
    if start_time >= time {
        return Ok(resolved(start, start_time, start_time > time));
    }
    // Invariant: time(low) < time <= time(high).
    let (mut low, mut high, mut high_time) = (start, head, head_time);
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        let middle_time = timestamp(middle).await?;
        if middle_time >= time {
            (high, high_time) = (middle, middle_time);
        } else {
            low = middle;
        }
    }
    Ok(resolved(high, high_time, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{ScriptedCollector, block_time};

    #[tokio::test]
    async fn a_moment_resolves_to_the_first_block_at_or_after_it() {
        let chain = ScriptedCollector::new(0, 10);
        chain.mine_empty(100);
        let clock: &dyn BlockClock = &*chain;
        let at = |time| first_block_at(clock, time, 10);
        let exact = at(block_time(40)).await.unwrap();
        assert_eq!(
            (exact.block, exact.block_timestamp, exact.clamped_to_start_block),
            (40, block_time(40), false)
        );
        assert_eq!(at(block_time(40) + 1).await.unwrap().block, 41, "between blocks");
        assert_eq!(at(block_time(40) - 11).await.unwrap().block, 40);
        assert_eq!(at(block_time(100)).await.unwrap().block, 100, "the head itself");
        assert_eq!(at(block_time(11)).await.unwrap().block, 11);
        let early = at(block_time(3)).await.unwrap();
        assert_eq!(
            (early.block, early.clamped_to_start_block),
            (10, true),
            "before the start block"
        );
        let start = at(block_time(10)).await.unwrap();
        assert_eq!((start.block, start.clamped_to_start_block), (10, false));
        match at(block_time(100) + 1).await {
            Err(Unplaced::Future { head, head_time }) => {
                assert_eq!((head, head_time), (100, block_time(100)));
            }
            other => panic!("{other:?}"),
        }
    }
}
