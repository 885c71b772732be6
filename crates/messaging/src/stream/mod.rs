//! The ordered message stream: holds the in-memory cursor and turns L1 into batches, each
//! anchored to the header window the store keeps, and notices reorgs.
//!
//! - `pipeline.rs`: the ranges in flight while far behind the head, and their merging.
//! - `reorg.rs`: the walk down the header window to a reorg's common ancestor.
//! - `batch.rs`: what the stream yields.

mod batch;
mod pipeline;
mod reorg;

pub use batch::{Batch, DeepReorg, DeepReorgKind, Reorg, ReplacedBlock, StreamItem};

use crate::{Collector, CollectorError, Gathered, Heads, Status, StreamError};
use ferry_primitives::{Phase, Position};
use ferry_storage::Store;
use pipeline::{Hashed, Pipeline};
use std::{sync::Arc, time::Duration};
use tokio::time::Instant;
use tracing::debug;

const LOG_TARGET: &str = "ferry::messaging::stream";

/// How old known heads may get while catching up before they are fetched again (for status,
/// lag, the window's floor and the controller's head check; catching up itself does not need
/// them).
const HEAD_REFRESH: Duration = Duration::from_secs(2);

/// The default depth of the header window below the head, when the finalized block is
/// nearer the head than this (or unknown).
pub const DEFAULT_REORG_WINDOW: u64 = 128;

/// The ordered message stream.
///
/// [`MessageStream::next_item`] is cancel-safe: dropping its future (a rewind or a shutdown
/// won the race) leaves the cursor untouched, so an abandoned range can never be committed.
/// The cursor moves only through [`MessageStream::advance`] (after a commit) and
/// [`MessageStream::rewind`].
#[derive(Debug)]
pub struct MessageStream<C> {
    collector: Arc<C>,
    store: Store,
    status: Arc<Status>,
    cursor: Position,
    /// The heads last fetched, and when.
    heads: Option<(Heads, Instant)>,
    pipeline: Pipeline<C>,
    /// How far below the head the header window reaches at least.
    reorg_window: u64,
    /// Set at start and by every rewind: the window's newest header is checked against the
    /// chain before reading on (a reorg while the node was stopped, or before the rewind).
    check_anchor: bool,
    /// Up to this block, ranges are read with every header whatever the floor: the blocks a
    /// reorg replaced, read again after it.
    anchor_through: Option<u64>,
}

/// What woke the stream up.
enum Wake {
    /// The safe head is at or past the cursor's block.
    Ready(Heads),
    /// The newest block, already scanned, is not the one the window keeps.
    TipReplaced(u64),
}

impl<C: Collector> MessageStream<C> {
    /// A stream reading from `cursor`, with a header window of at least
    /// [`DEFAULT_REORG_WINDOW`] blocks.
    pub fn new(collector: Arc<C>, store: Store, status: Arc<Status>, cursor: Position) -> Self {
        status.set_cursor(Some(cursor));
        // Stopped after a reorg was recorded and before its blocks were read again: they are
        // still read with every header.
        let anchor_through = match store.reorgs(1) {
            Ok((reorgs, _)) => reorgs
                .first()
                .and_then(|(_, reorg)| reorg.old_tip)
                .map(|tip| tip.number)
                .filter(|tip| *tip >= cursor.block),
            Err(error) => {
                // The first gather checks the anchor all the same; this only widens headers.
                tracing::warn!(target: LOG_TARGET, %error, "Cannot read the last reorg");
                None
            }
        };
        Self {
            pipeline: Pipeline::new(Arc::clone(&collector)),
            collector,
            store,
            status,
            cursor,
            heads: None,
            reorg_window: DEFAULT_REORG_WINDOW,
            check_anchor: true,
            anchor_through,
        }
    }

    /// Keeps the headers of at least `blocks` blocks below the head (or from the finalized
    /// block, if that is deeper): reorgs that deep are healed; deeper ones halt ingestion.
    pub fn with_reorg_window(mut self, blocks: u64) -> Self {
        self.reorg_window = blocks.max(1);
        self
    }

    /// The next position the stream reads.
    pub const fn cursor(&self) -> Position {
        self.cursor
    }

    /// Moves the cursor past a committed batch.
    pub fn advance(&mut self, next: Position) {
        self.set_cursor(next);
    }

    /// Moves the cursor anywhere; the next [`MessageStream::next_item`] checks the kept header
    /// below it against the chain and gathers from there at once, without waiting for a new
    /// head. Ranges gathered ahead are dropped.
    pub fn rewind(&mut self, to: Position) {
        self.pipeline.clear(true);
        self.check_anchor = true;
        self.set_cursor(to);
    }

    /// Reads every header up to `block`, whatever the floor: the drain task says so after a
    /// reorg, for the blocks it replaced (the head may have moved on past the window since).
    pub fn anchor_through(&mut self, block: u64) {
        self.anchor_through = Some(self.anchor_through.map_or(block, |through| through.max(block)));
    }

    fn set_cursor(&mut self, cursor: Position) {
        self.cursor = cursor;
        self.status.set_cursor(Some(cursor));
    }

    /// Waits for L1 to have something at or after the cursor, checks that what was scanned
    /// below the cursor is still canonical, and gathers the next range; or says what reorg
    /// it found.
    pub async fn next_item(&mut self) -> Result<StreamItem, StreamError> {
        let heads = loop {
            match self.heads_at_cursor().await? {
                Wake::Ready(heads) => break heads,
                // Not a reorg after all (the provider's newest block flickered): wait for the
                // next one.
                Wake::TipReplaced(number) => {
                    if let Some(item) = self.search(number).await? {
                        return Ok(item);
                    }
                }
            }
        };
        let safe = heads.safe.unwrap_or(0);
        if self.anchor_through.is_some_and(|through| through < self.cursor.block) {
            self.anchor_through = None;
        }
        let floor = self.window_floor(&heads);
        if self.check_anchor || self.window_would_restart(floor)? {
            if let Some(item) = self.verify_anchor().await? {
                return Ok(item);
            }
            self.check_anchor = false;
        }
        self.status.set_phase(Phase::Gathering);
        let from = self.cursor;
        let headers_from = self.headers_from(floor)?;
        let mut hashed = self.pipeline.next(from, safe, floor, headers_from).await?;
        if let Some(item) = self.check_seam(&hashed.gathered, floor).await? {
            self.pipeline.clear(false);
            return Ok(item);
        }
        self.pipeline.merge_ready(&mut hashed);
        let Hashed { gathered, hashes } = hashed;
        let next = Position::block_start(gathered.last_block().number + 1);
        self.pipeline.fill(next, safe, floor, next.block.max(floor));
        debug!(target: LOG_TARGET, %from, to = next.block - 1, messages = gathered.messages.len(),
            headers = gathered.headers.len(), "Gathered");
        Ok(StreamItem::Batch(Batch {
            from,
            next,
            messages: gathered.messages,
            hashes,
            events: gathered.events,
            malformed: gathered.malformed,
            headers: gathered.headers,
            window_floor: floor,
        }))
    }

    /// The lowest block the header window keeps: the finalized block, or the configured depth
    /// below the head, whichever is lower; and never above blocks a reorg replaced that are
    /// still to be read again.
    fn window_floor(&self, heads: &Heads) -> u64 {
        let by_depth = heads.latest.saturating_sub(self.reorg_window);
        let floor = heads.finalized.map_or(by_depth, |finalized| finalized.number.min(by_depth));
        match self.anchor_through {
            Some(_) => floor.min(self.cursor.block),
            None => floor,
        }
    }

    /// Whether the range from the cursor would start the window again above its tip, leaving
    /// blocks unanchored between them (the head moved on more than the window since the tip
    /// was read, while the node slept or lagged), with a tip that was inside the window when
    /// it was stored: then it must be checked first, or a reorg of it would go unseen.
    fn window_would_restart(&self, floor: u64) -> Result<bool, StreamError> {
        if floor <= self.cursor.block {
            return Ok(false);
        }
        let Some(window) = self.store.window()? else { return Ok(false) };
        Ok(window.tip.number + 1 == self.cursor.block && window.tip.number > window.bounds.floor)
    }

    /// The first block whose header the range from the cursor carries: the floor, or the
    /// cursor's block when that is higher; but when the window's newest header is below the
    /// cursor (an operator moved the checkpoint forward) and not below the floor, the block
    /// after it. The headers of the blocks skipped are fetched and linked then, so that the
    /// window stays contiguous and a reorg among them is seen (invariant: header window).
    fn headers_from(&self, floor: u64) -> Result<u64, StreamError> {
        let after_kept = self.kept_below(self.cursor.block)?.map(|kept| kept + 1);
        let bridged = after_kept.map_or(self.cursor.block, |after| after.min(self.cursor.block));
        Ok(bridged.max(floor))
    }

    /// The newest block the window keeps below `block` (it may keep blocks above too, after
    /// an operator moved the checkpoint back).
    fn kept_below(&self, block: u64) -> Result<Option<u64>, StreamError> {
        let Some(below) = block.checked_sub(1) else { return Ok(None) };
        Ok(self.store.headers_down_from(below, 1)?.first().map(|header| header.number))
    }

    /// The first range read must continue the window: its first header's parent is the kept
    /// header below it. If not, the chain replaced that block: find the reorg (from the
    /// window's newest block, which may be above the range after an operator's rewind).
    ///
    /// A range that leaves a gap between the window's newest header and its own first one
    /// starts the window again; that is only right when the gap is below the `floor` (the
    /// node fell further behind than the window, or an operator moved the checkpoint beyond
    /// it), and it is said so. A gap at or above the floor is a range gathered for another
    /// window: it is gathered again.
    async fn check_seam(
        &self,
        gathered: &Gathered,
        floor: u64,
    ) -> Result<Option<StreamItem>, StreamError> {
        let first = gathered.headers[0];
        let Some(below) = first.number.checked_sub(1) else { return Ok(None) };
        let Some(kept) = self.store.header(below)? else {
            return self.check_gap(first.number, floor);
        };
        if kept.is_parent_of(&first) {
            return Ok(None);
        }
        let start = self.store.window()?.map_or(below, |window| window.tip.number.max(below));
        match self.search(start).await? {
            Some(item) => Ok(Some(item)),
            // The kept block is canonical after all: the range came from a chain the provider
            // has left since. Gathered again.
            None => Err(CollectorError::Inconsistent(format!(
                "block {} names parent {}, but block {below} is {}",
                first.number, first.parent_hash, kept.hash
            ))
            .into()),
        }
    }

    /// A range whose first header `first` has no kept parent: fine when the window keeps
    /// nothing below it (a re-scan below the window), or when what it keeps below ends under
    /// the floor (it starts again, on purpose); refused when a kept header below `first` is at
    /// or above the floor, which would leave unchecked blocks inside the window.
    fn check_gap(&self, first: u64, floor: u64) -> Result<Option<StreamItem>, StreamError> {
        let Some(tip) = self.kept_below(first)? else { return Ok(None) };
        if tip + 1 >= floor {
            return Err(CollectorError::Inconsistent(format!(
                "the range's headers start at block {first}, leaving a gap above the window's \
                 newest block {tip} (floor {floor})"
            ))
            .into());
        }
        debug!(target: LOG_TARGET, first, tip, floor,
            "The header window starts again: its newest block is below the floor");
        Ok(None)
    }

    /// Checks the window's newest header against the chain: below the cursor as a rule, above
    /// it after an operator moved the checkpoint back (the window keeps what was read).
    async fn verify_anchor(&self) -> Result<Option<StreamItem>, StreamError> {
        let Some(window) = self.store.window()? else { return Ok(None) };
        let tip = window.tip;
        let canonical = self.collector.header(tip.number).await?;
        if canonical.is_some_and(|canonical| canonical.hash == tip.hash) {
            return Ok(None);
        }
        self.search(tip.number).await
    }

    /// Walks the window down from block `start` to the common ancestor. A reorg reaching
    /// below the block the provider called finalized when the window was last extended is
    /// one the node must not heal by itself.
    ///
    /// A reorg found is confirmed with the other endpoints first: one that says a kept block
    /// was replaced while another still holds it is set aside, and nothing is rewound.
    async fn search(&self, start: u64) -> Result<Option<StreamItem>, StreamError> {
        let finalized = self.store.window()?.and_then(|window| window.bounds.finalized);
        let latest = self.heads.map(|(heads, _)| heads.latest);
        let found = reorg::search(&*self.collector, &self.store, start, finalized, latest).await?;
        let replaced = match &found {
            Some(StreamItem::Reorg(reorg)) => reorg.replaced,
            Some(StreamItem::DeepReorg(reorg)) => reorg.replaced,
            _ => return Ok(found),
        };
        if self.collector.confirm_replaced(replaced.number, replaced.kept).await? {
            return Ok(found);
        }
        Err(CollectorError::Inconsistent(format!(
            "an endpoint said block {} is no longer {}, another still holds it: that endpoint is \
             set aside",
            replaced.number, replaced.kept
        ))
        .into())
    }

    /// Fetches the heads now.
    async fn heads_now(&mut self) -> Result<Heads, StreamError> {
        self.status.set_phase(Phase::CheckingHead);
        let heads = self.collector.heads().await?;
        self.heads = Some((heads, Instant::now()));
        self.status.set_heads(heads);
        Ok(heads)
    }

    /// The heads, once the safe head is at or past the cursor's block. Heads are fetched
    /// again only when the cursor has caught up with the ones known: catching up costs no
    /// head requests. Caught up, a newest block that is not the one scanned is a reorg.
    async fn heads_at_cursor(&mut self) -> Result<Wake, StreamError> {
        loop {
            if let Some((heads, fetched)) = self.heads {
                match heads.safe.filter(|safe| *safe >= self.cursor.block) {
                    Some(_) if fetched.elapsed() < HEAD_REFRESH => return Ok(Wake::Ready(heads)),
                    Some(_) => {}
                    None => {
                        self.status.set_phase(Phase::Idle);
                        self.collector.wait_for_head(heads.latest).await;
                    }
                }
            }
            let heads = self.heads_now().await?;
            if heads.latest < self.cursor.block
                && let Some(kept) = self.store.header(heads.latest)?
                && kept.hash != heads.latest_hash
            {
                return Ok(Wake::TipReplaced(heads.latest));
            }
        }
    }
}

#[cfg(test)]
mod tests;
