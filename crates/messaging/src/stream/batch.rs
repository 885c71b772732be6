//! What the stream yields: ranges to commit, and reorgs to handle.

use crate::MalformedLog;
use alloy::primitives::B256;
use ferry_primitives::{BlockHeader, L1Message, LifecycleEvent, Position};

/// A range of L1 read from `from` up to (not including) `next`, ready to commit; everything
/// in it read from one chain.
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
    /// The lifecycle events found, in L1 order.
    pub events: Vec<LifecycleEvent>,
    /// Undecodable message logs found, to report and skip.
    pub malformed: Vec<MalformedLog>,
    /// The headers of the range's blocks inside the reorg window (at least the last one),
    /// ascending and linked: the store appends them to its window.
    pub headers: Vec<BlockHeader>,
    /// The lowest block the window keeps when this batch commits.
    pub window_floor: u64,
}

impl Batch {
    /// The last block scanned.
    pub fn last_block(&self) -> BlockHeader {
        *self.headers.last().expect("a batch has at least its last header")
    }

    /// What the store commits for it, under the provider's safe and finalized blocks `tags`.
    pub fn write(&self, tags: ferry_storage::FinalityTags) -> ferry_storage::BatchWrite<'_> {
        ferry_storage::BatchWrite {
            from: self.from,
            next: self.next,
            messages: &self.messages,
            hashes: &self.hashes,
            events: &self.events,
            headers: &self.headers,
            window_floor: self.window_floor,
            tags,
        }
    }
}

/// A block of the header window that the chain replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplacedBlock {
    /// Its number.
    pub number: u64,
    /// The hash the window kept.
    pub kept: B256,
    /// The chain's hash now (`None`: the chain is shorter).
    pub canonical: Option<B256>,
}

/// A reorg inside the header window: the node rewinds to the block after its common ancestor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reorg {
    /// The newest block of the window still on the chain.
    pub common_ancestor: BlockHeader,
    /// The first block checked that was replaced (the newest kept, usually).
    pub replaced: ReplacedBlock,
}

/// Why a reorg cannot be handled by rewinding to its common ancestor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeepReorgKind {
    /// No block of the window is on the chain any more.
    BeyondWindow {
        /// The lowest block of the window, which was replaced too.
        lowest: ReplacedBlock,
    },
    /// The common ancestor is below the provider's finalized block: a finalized block was
    /// replaced.
    BelowFinalized {
        /// The newest block still on the chain.
        common_ancestor: BlockHeader,
        /// The provider's finalized block.
        finalized: u64,
    },
}

/// A reorg the node must not heal by itself: ingestion stops until an operator moves the
/// checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeepReorg {
    /// Why.
    pub kind: DeepReorgKind,
    /// The newest block of the window that was replaced.
    pub replaced: ReplacedBlock,
}

/// What the stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A range to commit.
    Batch(Batch),
    /// A reorg inside the window: the drain task records it and rewinds.
    Reorg(Reorg),
    /// A reorg beyond the window or below a finalized block: the drain task halts.
    DeepReorg(DeepReorg),
}
