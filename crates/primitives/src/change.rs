//! What moving the checkpoint does to reading: a dry run's effect, what a forward move
//! skipped (kept in the audit trail), and the block a set by time resolved to.

use serde::{Deserialize, Serialize};

/// How a checkpoint change moves reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEffect {
    /// Whether blocks are read again, jumped over, or nothing changes.
    pub action: ChangeAction,
    /// The first block read again or skipped.
    pub from_block: Option<u64>,
    /// The last block read again or skipped (partly, when the position is inside it).
    pub to_block: Option<u64>,
    /// Stored messages logged in that range: found again and skipped on a re-scan; already
    /// delivered, though skipped now, on a skip.
    pub stored_messages: u64,
    /// Canonical messages the change would orphan: those logged from the new position on,
    /// while the node is halted by a deep reorg; 0 otherwise.
    pub would_orphan: u64,
}

/// See [`ChangeEffect::action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeAction {
    /// The new position is earlier: the blocks in between are read again.
    Rescan,
    /// The new position is later: the blocks in between are not read.
    Skip,
    /// Reading goes on where it is.
    None,
}

/// What a forward move of the checkpoint jumped over: those blocks' logs are not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// Blocks jumped over, wholly or (at either end, when a position is inside a block)
    /// partly.
    pub blocks: u64,
    /// Messages stored already that were logged there (delivered before, skipped now).
    pub stored_messages: u64,
}

/// Where a moment falls on L1: the block a set of the checkpoint by time starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedTime {
    /// The moment asked for, in Unix seconds.
    pub timestamp: u64,
    /// The first block at or after it: the checkpoint is the start of this block.
    pub block: u64,
    /// That block's timestamp.
    pub block_timestamp: u64,
    /// `true` when the moment is before the configured start block, whose start was taken.
    pub clamped_to_start_block: bool,
}
