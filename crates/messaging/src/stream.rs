use crate::{Collector, CollectorError, Gathered, MalformedLog, Phase, Status};
use alloy::primitives::B256;
use ferry_primitives::{BlockRef, L1Message, Position};
use ferry_storage::{RETAINED_BLOCKS, Store};
use std::{collections::VecDeque, sync::Arc, time::Duration};
use tokio::{task::JoinHandle, time::Instant};
use tracing::{debug, error};

const LOG_TARGET: &str = "ferry::messaging::stream";

/// How old known heads may get while catching up before they are fetched again (for status,
/// lag and the controller's head check; catching up itself does not need them).
const HEAD_REFRESH: Duration = Duration::from_secs(2);

/// Ranges gathered ahead while far behind the head, besides the one being committed.
const PREFETCH_DEPTH: usize = 3;

/// A range being gathered ahead of the cursor. Its result is used only if the cursor reaches
/// exactly its start; a rewind or a failed commit drops it.
#[derive(Debug)]
struct Prefetch {
    from: Position,
    to_block: u64,
    task: JoinHandle<Result<Gathered, CollectorError>>,
}

/// A range of L1 read from `from` up to (not including) `next`, ready to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The position the range was gathered from; the commit checks the store still says so.
    pub from: Position,
    /// Where reading goes on after this batch: the start of the block after the last one
    /// scanned. Empty ranges yield a batch too, so the checkpoint moves past them.
    pub next: Position,
    /// The messages found, in L1 order.
    pub messages: Vec<L1Message>,
    /// Undecodable message logs found, to report and skip.
    pub malformed: Vec<MalformedLog>,
    /// The last block scanned, with its hash, kept to detect a reorg below the checkpoint.
    pub last_block: BlockRef,
}

impl Batch {
    /// The blocks whose hashes the batch learnt, ascending: those holding messages (their
    /// logs carry the block hash) and the last one of the range. Kept by the store to detect
    /// a reorg below the checkpoint.
    pub fn scanned_blocks(&self) -> Vec<BlockRef> {
        let mut blocks: Vec<BlockRef> = self
            .messages
            .iter()
            .map(|l1| BlockRef { number: l1.origin.block_number, hash: l1.origin.block_hash })
            .filter(|block| block.number < self.last_block.number)
            .collect();
        blocks.dedup_by_key(|block| block.number);
        blocks.push(self.last_block);
        blocks
    }
}

/// A block the node scanned is no longer canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reorg {
    /// The scanned block that was replaced.
    pub block: u64,
    /// Its hash when it was scanned.
    pub scanned_hash: B256,
    /// Its canonical hash now (`None`: the chain is now shorter).
    pub canonical_hash: Option<B256>,
    /// The position after the newest scanned block that is still canonical: re-scan from here
    /// (the start block when no kept block is canonical any more).
    pub rewind_to: Position,
    /// The newest scanned block that is still canonical, if one is kept.
    pub common_ancestor: Option<u64>,
}

/// What the stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A range to commit.
    Batch(Batch),
    /// A reorg below the cursor: the drain task rewinds to `rewind_to`.
    Reorg(Reorg),
}

/// The ordered message stream: holds the in-memory cursor and turns L1 into batches.
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
    heads: Option<(crate::Heads, Instant)>,
    /// Consecutive ranges after the cursor's, being gathered while far behind the head.
    prefetch: VecDeque<Prefetch>,
}

impl<C> Drop for MessageStream<C> {
    fn drop(&mut self) {
        for prefetch in &self.prefetch {
            prefetch.task.abort();
        }
    }
}

impl<C: Collector> MessageStream<C> {
    /// A stream reading from `cursor`.
    pub fn new(collector: Arc<C>, store: Store, status: Arc<Status>, cursor: Position) -> Self {
        status.set_cursor(Some(cursor));
        Self { collector, store, status, cursor, heads: None, prefetch: VecDeque::new() }
    }

    /// The next position the stream reads.
    pub const fn cursor(&self) -> Position {
        self.cursor
    }

    /// Moves the cursor past a committed batch.
    pub fn advance(&mut self, next: Position) {
        self.set_cursor(next);
    }

    /// Moves the cursor anywhere; the next [`MessageStream::next_item`] gathers from there at
    /// once, without waiting for a new head. Ranges gathered ahead are dropped.
    pub fn rewind(&mut self, to: Position) {
        self.drop_prefetched();
        self.set_cursor(to);
    }

    fn drop_prefetched(&mut self) {
        for prefetch in self.prefetch.drain(..) {
            prefetch.task.abort();
        }
    }

    fn set_cursor(&mut self, cursor: Position) {
        self.cursor = cursor;
        self.status.set_cursor(Some(cursor));
    }

    /// Waits for L1 to have something at or after the cursor, checks that what was scanned
    /// below the cursor is still canonical, and gathers the next range.
    pub async fn next_item(&mut self) -> Result<StreamItem, CollectorError> {
        let safe = self.safe_head_at_cursor().await?;
        if let Some(reorg) = self.find_reorg().await? {
            return Ok(StreamItem::Reorg(reorg));
        }
        self.status.set_phase(Phase::Gathering);
        let from = self.cursor;
        let gathered = match self.prefetch.front_mut() {
            Some(prefetch) if prefetch.from == from => {
                // Popped only once awaited: a dropped future leaves it for the next call.
                let gathered = (&mut prefetch.task).await.map_err(|error| {
                    CollectorError::Inconsistent(format!("a gathering task failed: {error}"))
                });
                let to_block = prefetch.to_block;
                self.prefetch.pop_front();
                let gathered = gathered??;
                if gathered.last_block.number != to_block {
                    // The collector stopped short (a provider range limit): later ranges no
                    // longer line up.
                    self.drop_prefetched();
                }
                gathered
            }
            _ => {
                self.drop_prefetched();
                self.collector.gather(from, safe).await?
            }
        };
        self.prefetch_after(gathered.last_block.number + 1, safe);
        debug!(target: LOG_TARGET, %from, to = gathered.last_block.number,
            messages = gathered.messages.len(), "Gathered");
        Ok(StreamItem::Batch(Batch {
            from,
            next: Position::block_start(gathered.last_block.number + 1),
            messages: gathered.messages,
            malformed: gathered.malformed,
            last_block: gathered.last_block,
        }))
    }

    /// While far behind the safe head, keeps the next [`PREFETCH_DEPTH`] ranges after
    /// `next_block` in flight, so that fetching overlaps committing.
    fn prefetch_after(&mut self, next_block: u64, safe: u64) {
        let Some(range) = self.collector.range_hint().filter(|range| *range > 0) else { return };
        let mut start = self.prefetch.back().map_or(next_block, |last| last.to_block + 1);
        while self.prefetch.len() < PREFETCH_DEPTH && start.saturating_add(range) <= safe {
            let to_block = start + range - 1;
            let from = Position::block_start(start);
            let collector = Arc::clone(&self.collector);
            let task = tokio::spawn(async move { collector.gather(from, to_block).await });
            self.prefetch.push_back(Prefetch { from, to_block, task });
            start = to_block + 1;
        }
    }

    /// The safe head, once it is at or past the cursor's block. Heads are fetched again only
    /// when the cursor has caught up with the ones known: catching up costs no head requests.
    async fn safe_head_at_cursor(&mut self) -> Result<u64, CollectorError> {
        loop {
            if let Some((heads, fetched)) = self.heads {
                let safe = heads.safe.filter(|safe| *safe >= self.cursor.block);
                match safe {
                    Some(safe) if fetched.elapsed() < HEAD_REFRESH => return Ok(safe),
                    Some(_) => {}
                    None => {
                        self.status.set_phase(Phase::Idle);
                        self.collector.wait_for_head(heads.latest).await;
                    }
                }
            }
            self.status.set_phase(Phase::CheckingHead);
            let heads = self.collector.heads().await?;
            self.heads = Some((heads, Instant::now()));
            self.status.set_heads(heads);
        }
    }

    /// Compares the hash kept for the block below the cursor with the canonical one; on a
    /// mismatch, walks the kept hashes down to the newest block still canonical.
    async fn find_reorg(&self) -> Result<Option<Reorg>, CollectorError> {
        if self.cursor.index != 0 || self.cursor.block == 0 {
            return Ok(None);
        }
        let block = self.cursor.block - 1;
        let Some(scanned_hash) = self.kept_hash(block) else { return Ok(None) };
        let canonical_hash = self.collector.block_hash(block).await?;
        if canonical_hash == Some(scanned_hash) {
            return Ok(None);
        }
        let kept = self
            .store
            .scanned_blocks_down_from(block, RETAINED_BLOCKS as usize + 1)
            .unwrap_or_else(|error| {
                error!(target: LOG_TARGET, %error, "Cannot read kept block hashes");
                Vec::new()
            });
        let mut common_ancestor = None;
        for candidate in kept.iter().skip(1) {
            if self.collector.block_hash(candidate.number).await? == Some(candidate.hash) {
                common_ancestor = Some(candidate.number);
                break;
            }
        }
        let rewind_to = match common_ancestor {
            Some(ancestor) => Position::block_start(ancestor + 1),
            // Deeper than every kept hash: only a re-scan from the start is sure to miss nothing
            // (what is stored already is recognised by hash).
            None => self.store.resume_position(None),
        };
        Ok(Some(Reorg { block, scanned_hash, canonical_hash, rewind_to, common_ancestor }))
    }

    fn kept_hash(&self, block: u64) -> Option<B256> {
        self.store.block_hash(block).unwrap_or_else(|error| {
            error!(target: LOG_TARGET, block, %error, "Cannot read a kept block hash");
            None
        })
    }
}
