//! `messaging_status` on the wire: the node's state from the store, and the pipeline's live
//! state and counters (`StatusSnapshot`, the same type the node keeps them in).

use ferry_primitives::{Address, BlockRef, Checkpoint, Position, Seq, StateCounts, StatusSnapshot};
use serde::{Deserialize, Serialize};

/// The answer of `messaging_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// The ferry version.
    pub version: String,
    /// The L1 chain id the database is for.
    pub chain_id: u64,
    /// The messaging contract the database is for.
    pub contract: Address,
    /// The block reading starts at when no checkpoint is stored.
    pub from_block: u64,
    /// The stored checkpoint: the next L1 position the node reads (`null`: the start block).
    pub checkpoint: Checkpoint,
    /// Blocks between the cursor and the safe head still to read.
    pub lag_blocks: Option<u64>,
    /// Messages in the store, canonical and orphaned.
    pub messages_stored: u64,
    /// Stored messages a reorg orphaned and the chain has not included again.
    pub orphaned_messages: u64,
    /// Canonical stored messages by state (`pending`, `cancellationStarted`, `cancelled`,
    /// `consumed`), and `unmatched`: messages the node read lifecycle events of but never
    /// the message itself (sent before the start block).
    pub message_states: StateCounts,
    /// The seqs of the newest of them (at most 100).
    pub orphaned_seqs: Vec<Seq>,
    /// Reorgs recorded since the database was created.
    pub reorgs: u64,
    /// The newest of them.
    pub last_reorg: Option<ReorgEntry>,
    /// The window of canonical headers kept below the checkpoint: a reorg inside it is
    /// healed, a deeper one halts ingestion.
    pub header_window: Option<HeaderWindow>,
    /// The pipeline's live state and counters.
    #[serde(flatten)]
    pub pipeline: StatusSnapshot,
}

/// The blocks the header window holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderWindow {
    /// Its lowest block.
    pub from: u64,
    /// Its newest block: the one before the checkpoint.
    pub to: u64,
}

/// One reorg, as `messaging_getReorgs` and `messaging_status` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReorgEntry {
    /// Its id: notices name it in their `reorg` field.
    pub id: u64,
    /// When it was handled, in Unix milliseconds.
    pub time: u64,
    /// `detected` (the node found it), `resolvedByOperator` (a checkpoint move ended a halt) or
    /// `movedOnRescan` (a re-scan found messages elsewhere).
    pub cause: String,
    /// Where reading went on from.
    pub rewind_to: Position,
    /// The newest block still canonical, when the node found one.
    pub common_ancestor: Option<BlockRef>,
    /// The newest block scanned before it.
    pub old_tip: Option<BlockRef>,
    /// Messages it orphaned.
    pub orphaned: u64,
    /// The seq of its first removal notice.
    pub first_notice_seq: Option<Seq>,
}
