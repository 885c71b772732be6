//! Finding a reorg's common ancestor by walking the header window down, one block at a time
//! (most reorgs are a block or two deep: each costs the provider depth + 1 header requests).

use super::batch::{DeepReorg, DeepReorgKind, Reorg, ReplacedBlock, StreamItem};
use crate::{Collector, CollectorError, StreamError};
use ferry_storage::Store;
use tracing::warn;

const LOG_TARGET: &str = "ferry::messaging::reorg";

/// Headers read from the store at a time while walking down.
const WALK_CHUNK: usize = 64;

/// Compares the window's headers from block `start` down with the chain's. `None` when the
/// kept block at `start` is still canonical (or the window holds none there); otherwise the
/// reorg, with the newest kept block still on the chain as its common ancestor, or a deep
/// reorg when there is none or it is below the `finalized` block.
///
/// One answer is not trusted alone: a block the provider says does not exist, below the
/// `latest` block it reported, is asked again later (a lagging backend), and the ancestor is
/// confirmed by the chain's next block naming it as parent.
pub(super) async fn search<C: Collector>(
    collector: &C,
    store: &Store,
    start: u64,
    finalized: Option<u64>,
    latest: Option<u64>,
) -> Result<Option<StreamItem>, StreamError> {
    let mut replaced: Option<ReplacedBlock> = None;
    let mut lowest: Option<ReplacedBlock> = None;
    let mut next = Some(start);
    while let Some(from) = next {
        // Reads never wait for the writer (MDBX): no need to leave the runtime for them.
        let kept = store.headers_down_from(from, WALK_CHUNK)?;
        for header in &kept {
            let canonical = collector.header(header.number).await?;
            if canonical.is_none() && latest.is_some_and(|latest| latest >= header.number) {
                return Err(CollectorError::Inconsistent(format!(
                    "block {} is below the latest block {} but the provider has none",
                    header.number,
                    latest.unwrap_or_default()
                ))
                .into());
            }
            if canonical.is_some_and(|canonical| canonical.hash == header.hash) {
                let Some(replaced) = replaced else { return Ok(None) };
                let child = collector.header(header.number + 1).await?;
                if child.is_some_and(|child| child.parent_hash != header.hash) {
                    return Err(CollectorError::Inconsistent(format!(
                        "block {} is canonical but the next block names another parent",
                        header.number
                    ))
                    .into());
                }
                if let Some(finalized) = finalized.filter(|finalized| header.number < *finalized) {
                    let kind =
                        DeepReorgKind::BelowFinalized { common_ancestor: *header, finalized };
                    return Ok(Some(StreamItem::DeepReorg(DeepReorg { kind, replaced })));
                }
                return Ok(Some(StreamItem::Reorg(Reorg { common_ancestor: *header, replaced })));
            }
            let block = ReplacedBlock {
                number: header.number,
                kept: header.hash,
                canonical: canonical.map(|canonical| canonical.hash),
            };
            replaced.get_or_insert(block);
            lowest = Some(block);
        }
        next = match kept.last() {
            Some(last) if kept.len() == WALK_CHUNK => last.number.checked_sub(1),
            _ => None,
        };
    }
    let (Some(replaced), Some(lowest)) = (replaced, lowest) else { return Ok(None) };
    warn!(target: LOG_TARGET, lowest = lowest.number, "No block of the header window is canonical");
    Ok(Some(StreamItem::DeepReorg(DeepReorg {
        kind: DeepReorgKind::BeyondWindow { lowest },
        replaced,
    })))
}
