use ferry_messaging::{ChangeEffect, CheckpointChange, CheckpointPreview, StatusSnapshot};
use ferry_primitives::{Address, Checkpoint, StoredMessage};
use serde::{Deserialize, Serialize};

/// The options object of `messaging_setCheckpoint` and `messaging_resetCheckpoint`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeOptions {
    /// Change nothing; answer what the call would do.
    #[serde(default)]
    pub dry_run: bool,
}

/// The answer of `messaging_setCheckpoint` and `messaging_resetCheckpoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointChangeResult {
    /// Whether this was only a preview.
    pub dry_run: bool,
    /// The checkpoint before the call.
    pub previous: Checkpoint,
    /// The checkpoint after the call (or that the call would store): `null` after a reset,
    /// meaning the node reads from its configured start block.
    pub current: Checkpoint,
    /// Applied changes: whether the running node moved its cursor before answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewind_applied: Option<bool>,
    /// Previews: the blocks that would be re-scanned or skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<ChangeEffect>,
}

impl From<CheckpointChange> for CheckpointChangeResult {
    fn from(change: CheckpointChange) -> Self {
        Self {
            dry_run: false,
            previous: change.previous,
            current: change.current,
            rewind_applied: Some(change.rewind_applied),
            effect: None,
        }
    }
}

impl From<CheckpointPreview> for CheckpointChangeResult {
    fn from(preview: CheckpointPreview) -> Self {
        Self {
            dry_run: true,
            previous: preview.previous,
            current: preview.current,
            rewind_applied: None,
            effect: Some(preview.effect),
        }
    }
}

/// One entry of `messaging_getCheckpointHistory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// Position in the trail, from 0.
    pub id: u64,
    /// When, in Unix milliseconds.
    pub time: u64,
    /// `messaging_setCheckpoint`, `messaging_resetCheckpoint` or `reorgRewind`.
    pub method: String,
    /// The caller's address (`node` for the node's own reorg rewinds).
    pub caller: String,
    /// The checkpoint before.
    pub previous: Checkpoint,
    /// The checkpoint after.
    pub current: Checkpoint,
}

impl From<ferry_storage::AuditEntry> for HistoryEntry {
    fn from(entry: ferry_storage::AuditEntry) -> Self {
        Self {
            id: entry.id,
            time: entry.at_millis,
            method: entry.method.name().to_owned(),
            caller: entry.caller,
            previous: entry.previous,
            current: entry.current,
        }
    }
}

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
    /// Messages in the store (the last seq + 1).
    pub messages_stored: u64,
    /// The pipeline's live state and counters.
    #[serde(flatten)]
    pub pipeline: StatusSnapshot,
}

/// A page of stored messages: the answer of `messaging_getMessages`, and every notification of
/// `messaging_subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesPage {
    /// Messages in seq order, without gaps.
    pub messages: Vec<StoredMessage>,
    /// The seq to ask for next: the last message's seq + 1 (or the requested one when empty).
    pub next_seq: u64,
}
