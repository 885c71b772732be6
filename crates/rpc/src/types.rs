use crate::Timestamp;
use ferry_messaging::{
    ChangeEffect, CheckpointChange, CheckpointPreview, StatusSnapshot, TimeResolution,
};
use ferry_primitives::{
    Address, B256, BlockRef, Checkpoint, Finality, Lifecycle, LogEntry, Position, Seq, StateCounts,
    U256,
};
use ferry_storage::{MessageLifecycle, ReorgRecord};
use serde::{Deserialize, Serialize};

/// Where `messaging_setCheckpoint` moves the checkpoint: to a block (and log index), or to
/// the start of the first block at or after a moment (`{"timestamp": ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum CheckpointTarget {
    /// A block number.
    Block(u64),
    /// The first block whose timestamp is at or after this moment.
    Time {
        /// Unix seconds, or an RFC 3339 date-time.
        timestamp: Timestamp,
    },
}

impl From<u64> for CheckpointTarget {
    fn from(block: u64) -> Self {
        Self::Block(block)
    }
}

impl<'de> Deserialize<'de> for CheckpointTarget {
    /// A block as every quantity is read (a JSON number or a `0x` string), or an object with
    /// `timestamp` and nothing else.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Time {
            timestamp: Timestamp,
        }
        let value = serde_json::Value::deserialize(deserializer)?;
        if value.is_object() {
            let Time { timestamp } = serde_json::from_value(value).map_err(D::Error::custom)?;
            return Ok(Self::Time { timestamp });
        }
        ferry_primitives::quantity::deserialize(value).map(Self::Block).map_err(D::Error::custom)
    }
}

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
    /// Applied changes that resolved a halt (a reorg deeper than the header window): the
    /// messages orphaned, to be found again by the re-scan if they are still on the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphaned: Option<u64>,
    /// A set by time (`{"timestamp": ...}`): the block the moment resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<ResolvedTime>,
}

/// Where a `messaging_setCheckpoint` by time landed.
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

impl From<TimeResolution> for ResolvedTime {
    fn from(resolution: TimeResolution) -> Self {
        Self {
            timestamp: resolution.requested,
            block: resolution.block,
            block_timestamp: resolution.block_time,
            clamped_to_start_block: resolution.clamped_to_start,
        }
    }
}

impl From<CheckpointChange> for CheckpointChangeResult {
    fn from(change: CheckpointChange) -> Self {
        Self {
            dry_run: false,
            previous: change.previous,
            current: change.current,
            rewind_applied: Some(change.rewind_applied),
            effect: None,
            orphaned: (change.orphaned > 0).then_some(change.orphaned),
            resolved: None,
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
            orphaned: None,
            resolved: None,
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

impl ReorgEntry {
    /// The wire form of reorg `id`.
    pub fn new(id: u64, record: ReorgRecord) -> Self {
        Self {
            id,
            time: record.at_millis,
            cause: record.cause.name().to_owned(),
            rewind_to: record.rewind_to,
            common_ancestor: record.common_ancestor,
            old_tip: record.old_tip,
            orphaned: record.orphaned,
            first_notice_seq: record.first_notice,
        }
    }
}

/// The options object of `messaging_getMessages` and `messaging_subscribe`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadOptions {
    /// How final a block must be before the consumer hears of it: `latest` (default; reorgs
    /// show as `removed` and `reincluded` entries), `safe`, or `finalized` (never retracted).
    #[serde(default)]
    pub finality: Finality,
    /// Only messages an L2 may still execute: `message` and `reincluded` entries of a message
    /// that is not `pending` now (its cancellation started, it was cancelled or consumed) are
    /// left out; notices all come, so a sequencer holding a message learns when it leaves
    /// that set.
    #[serde(default)]
    pub executable: bool,
}

/// The answer of `messaging_getMessageState`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageStateResult {
    /// The message hash.
    pub hash: B256,
    /// The seq of the message's entry; `null` when the node read lifecycle events of the
    /// message but never the message itself.
    pub seq: Option<Seq>,
    /// Its state, and the events behind it.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,
    /// The message's fields as its lifecycle events carry them, when `seq` is `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched: Option<UnmatchedMessage>,
}

/// A message known from its lifecycle events only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnmatchedMessage {
    /// The L1 sender.
    pub from: Address,
    /// The L2 contract.
    pub to: U256,
    /// The L2 entry point.
    pub selector: U256,
    /// The payload.
    pub payload: Vec<U256>,
    /// The nonce.
    pub nonce: U256,
}

impl From<MessageLifecycle> for MessageStateResult {
    fn from(found: MessageLifecycle) -> Self {
        Self {
            hash: found.hash,
            seq: found.seq,
            lifecycle: found.lifecycle,
            unmatched: found.unmatched.map(|message| UnmatchedMessage {
                from: message.from,
                to: message.to,
                selector: message.selector,
                payload: message.payload,
                nonce: message.nonce,
            }),
        }
    }
}

/// A page of the log: the answer of `messaging_getMessages`, and every notification of
/// `messaging_subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogPage {
    /// Entries in seq order: messages, and notices about messages delivered before. Under
    /// `latest` without gaps; under `safe` and `finalized`, entries the consumer must never
    /// see are left out.
    pub entries: Vec<LogEntry>,
    /// The seq to ask for next: past the last entry delivered or left out (or the requested
    /// one when nothing is).
    pub next_seq: u64,
}
