use crate::{Collector, CollectorError, Gathered, MalformedLog, Phase, Status};
use alloy::primitives::B256;
use ferry_primitives::{BlockRef, L1Message, Position};
use ferry_storage::{RETAINED_BLOCKS, Store};
use std::{collections::VecDeque, future::Future, pin::Pin, sync::Arc, time::Duration};
use tokio::{task::JoinHandle, time::Instant};
use tracing::{debug, error};

const LOG_TARGET: &str = "ferry::messaging::stream";

/// How old known heads may get while catching up before they are fetched again (for status,
/// lag and the controller's head check; catching up itself does not need them).
const HEAD_REFRESH: Duration = Duration::from_secs(2);

/// Ranges in flight while far behind the head: the cursor's own and those after it, so that
/// fetching overlaps committing and the provider serves several requests at once.
const IN_FLIGHT: usize = 4;

/// The first range gathered after a rewind is the usual one divided by this. Not at start:
/// each commit costs more than its messages (the hash index, fsync), so small first batches
/// would slow a long catch-up for no one's benefit.
const SLOW_START: u64 = 8;

/// At most this many messages are merged into one batch from ranges gathered ahead. One
/// transaction for several ranges shares their fsync and the pages of the hash index, which
/// random hashes spread over the whole table; the cap bounds how long a commit holds the
/// writer (a checkpoint change waits for it).
const MERGE_MESSAGES: usize = 25_000;

/// A range being gathered ahead of the cursor. Its result is used only if the cursor reaches
/// exactly its start; a rewind or a failed commit drops it.
#[derive(Debug)]
struct Prefetch {
    from: Position,
    to_block: u64,
    task: JoinHandle<Result<Hashed, CollectorError>>,
}

/// A gathered range and the hashes of its messages, computed by the gathering task so that
/// the single writer does not have to.
#[derive(Debug)]
struct Hashed {
    gathered: Gathered,
    hashes: Vec<B256>,
}

impl Hashed {
    fn new(gathered: Gathered) -> Self {
        let hashes = gathered.messages.iter().map(L1Message::hash).collect();
        Self { gathered, hashes }
    }
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
    /// Their hashes, `hashes[i]` being `messages[i].hash()`.
    pub hashes: Vec<B256>,
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
    /// Set by a rewind: the next ranges gathered ahead start with a small one.
    slow_start: bool,
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
        Self {
            collector,
            store,
            status,
            cursor,
            heads: None,
            prefetch: VecDeque::new(),
            slow_start: false,
        }
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
        self.slow_start = true;
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
        if self.prefetch.front().is_some_and(|prefetch| prefetch.from != from) {
            self.drop_prefetched();
        }
        self.prefetch_from(from, safe);
        let mut hashed = match self.prefetch.front_mut() {
            Some(prefetch) => {
                // Popped only once awaited: a dropped future leaves it for the next call.
                let gathered = (&mut prefetch.task).await.map_err(|error| {
                    CollectorError::Inconsistent(format!("a gathering task failed: {error}"))
                });
                let to_block = prefetch.to_block;
                self.prefetch.pop_front();
                let hashed = gathered??;
                if hashed.gathered.last_block.number != to_block {
                    // The collector stopped short (a provider range limit): later ranges no
                    // longer line up.
                    self.drop_prefetched();
                }
                hashed
            }
            None => Hashed::new(self.collector.gather(from, safe, false).await?),
        };
        self.merge_ready(&mut hashed);
        let Hashed { gathered, hashes } = hashed;
        self.prefetch_from(Position::block_start(gathered.last_block.number + 1), safe);
        debug!(target: LOG_TARGET, %from, to = gathered.last_block.number,
            messages = gathered.messages.len(), "Gathered");
        Ok(StreamItem::Batch(Batch {
            from,
            next: Position::block_start(gathered.last_block.number + 1),
            messages: gathered.messages,
            hashes,
            malformed: gathered.malformed,
            last_block: gathered.last_block,
        }))
    }

    /// Appends to `gathered` the ranges gathered ahead that are already complete and continue
    /// it on the same chain (each one's parent block is `gathered`'s last block, hash and
    /// all), up to [`MERGE_MESSAGES`] messages. A range that failed or was read from another
    /// chain ends the merge, and it and those after it are gathered again.
    fn merge_ready(&mut self, hashed: &mut Hashed) {
        let mut waker = std::task::Context::from_waker(std::task::Waker::noop());
        while let Some(next) = self.prefetch.front_mut() {
            let gathered = &mut hashed.gathered;
            if gathered.messages.len() >= MERGE_MESSAGES
                || next.from != Position::block_start(gathered.last_block.number + 1)
            {
                return;
            }
            let std::task::Poll::Ready(result) = Pin::new(&mut next.task).poll(&mut waker) else {
                return;
            };
            let to_block = next.to_block;
            self.prefetch.pop_front();
            match result {
                Ok(Ok(Hashed { gathered: more, hashes }))
                    if more.parent == Some(gathered.last_block) =>
                {
                    hashed.hashes.extend(hashes);
                    gathered.messages.extend(more.messages);
                    gathered.malformed.extend(more.malformed);
                    gathered.last_block = more.last_block;
                    if gathered.last_block.number != to_block {
                        self.drop_prefetched();
                    }
                }
                _ => {
                    self.drop_prefetched();
                    return;
                }
            }
        }
    }

    /// While far behind the safe head, keeps [`IN_FLIGHT`] consecutive ranges being gathered,
    /// the first from `from` (or after the last one already in flight). Near the head it
    /// starts none: one gather up to the safe head does.
    fn prefetch_from(&mut self, from: Position, safe: u64) {
        let Some(range) = self.collector.range_hint().filter(|range| *range > 0) else { return };
        let mut start =
            self.prefetch.back().map_or(from, |last| Position::block_start(last.to_block + 1));
        // Slow start after a rewind: a small range goes out alone, so that the provider serves
        // it first and the re-scan's first batch commits at once; the full-sized ranges
        // follow with the next batch.
        let (mut blocks, in_flight) = if std::mem::take(&mut self.slow_start) {
            ((range / SLOW_START).max(1), 1)
        } else {
            (range, IN_FLIGHT)
        };
        while self.prefetch.len() < in_flight && start.block.saturating_add(range) <= safe {
            let to_block = start.block + blocks - 1;
            blocks = range;
            let collector = Arc::clone(&self.collector);
            let task = tokio::spawn(async move {
                collector.gather(start, to_block, true).await.map(Hashed::new)
            });
            self.prefetch.push_back(Prefetch { from: start, to_block, task });
            start = Position::block_start(to_block + 1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::ScriptedCollector;
    use ferry_primitives::Address;
    use ferry_storage::StoreConfig;
    use tempfile::TempDir;

    fn stream(chain: &Arc<ScriptedCollector>) -> (TempDir, MessageStream<ScriptedCollector>) {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig { chain_id: 1, contract: Address::ZERO, from_block: 0 };
        let store = Store::open(dir.path(), config).unwrap();
        let status = Arc::new(Status::load(&store).unwrap());
        let stream = MessageStream::new(Arc::clone(chain), store, status, Position::block_start(0));
        (dir, stream)
    }

    fn batch(item: StreamItem) -> Batch {
        match item {
            StreamItem::Batch(batch) => batch,
            StreamItem::Reorg(reorg) => panic!("expected a batch, got {reorg:?}"),
        }
    }

    /// A finished gathering task with `gathered`'s result.
    async fn finished(gathered: Gathered, to_block: u64) -> Prefetch {
        let from = Position::block_start(gathered.parent.map_or(0, |parent| parent.number + 1));
        let task = tokio::spawn(async move { Ok(Hashed::new(gathered)) });
        while !task.is_finished() {
            tokio::task::yield_now().await;
        }
        Prefetch { from, to_block, task }
    }

    #[tokio::test]
    async fn ranges_gathered_ahead_commit_as_one_batch_with_their_hashes() {
        let chain = ScriptedCollector::new(0, 10);
        for _ in 0..100 {
            chain.mine(1);
        }
        let (_dir, mut stream) = stream(&chain);
        let batch = batch(stream.next_item().await.unwrap());
        assert_eq!(batch.from, Position::block_start(0));
        // Four ranges of 10 blocks went out at once and came back together: one batch.
        assert_eq!(batch.next, Position::block_start(40));
        assert_eq!(batch.last_block, BlockRef { number: 39, hash: chain.hash_of(39) });
        let blocks: Vec<_> = batch.messages.iter().map(|m| m.origin.block_number).collect();
        assert_eq!(blocks, (1..40).collect::<Vec<_>>());
        let hashes: Vec<_> = batch.messages.iter().map(L1Message::hash).collect();
        assert_eq!(batch.hashes, hashes);
    }

    #[tokio::test]
    async fn a_range_read_from_another_chain_is_not_merged_and_is_gathered_again() {
        let chain = ScriptedCollector::new(0, 10);
        chain.mine_empty(40);
        let (_dir, mut stream) = stream(&chain);
        let block = |number| BlockRef { number, hash: chain.hash_of(number) };
        let range = |parent: BlockRef, last: u64| Gathered {
            messages: Vec::new(),
            malformed: Vec::new(),
            last_block: block(last),
            parent: Some(parent),
        };
        // 10..=19 continues 0..=9; 20..=29 was read after block 19 changed.
        let forked = BlockRef { number: 19, hash: B256::repeat_byte(0xf0) };
        stream.prefetch.push_back(finished(range(block(9), 19), 19).await);
        stream.prefetch.push_back(finished(range(forked, 29), 29).await);
        stream.prefetch.push_back(finished(range(block(29), 39), 39).await);

        let first = Gathered {
            messages: Vec::new(),
            malformed: Vec::new(),
            last_block: block(9),
            parent: None,
        };
        let mut hashed = Hashed::new(first);
        stream.merge_ready(&mut hashed);
        assert_eq!(hashed.gathered.last_block, block(19), "merged up to the seam that differs");
        assert!(stream.prefetch.is_empty(), "the ranges from the seam on are dropped");
    }

    #[tokio::test]
    async fn a_rewind_starts_with_one_small_range_then_fills_the_pipeline() {
        let chain = ScriptedCollector::new(0, 80);
        chain.mine_empty(1_000);
        let (_dir, mut stream) = stream(&chain);
        stream.rewind(Position::block_start(100));
        let first = batch(stream.next_item().await.unwrap());
        assert_eq!(first.next, Position::block_start(110), "80 / 8 blocks");
        assert_eq!(chain.gathers(), [(Position::block_start(100), 109)], "sent alone");
        stream.advance(first.next);
        let second = batch(stream.next_item().await.unwrap());
        assert_eq!(second.from, Position::block_start(110));
        let gathered: Vec<_> =
            chain.gathers().iter().skip(1).map(|(from, to)| (from.block, *to)).collect();
        assert!(gathered.len() >= 4, "the pipeline is full again: {gathered:?}");
        assert_eq!(gathered[..4], [(110, 189), (190, 269), (270, 349), (350, 429)]);
    }
}
