//! The admin listener's wire types: where a set moves the checkpoint, what a change did or
//! would do, and the audit trail.

use crate::Timestamp;
use ferry_messaging::{
    ChangeAction as Action, CheckpointChange, CheckpointPreview, TimeResolution,
};
use ferry_primitives::Checkpoint;
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
    /// A compare-and-set: the checkpoint the caller read (`messaging_getCheckpoint`; `null`
    /// when none was stored). When the stored one differs, nothing changes and the call fails
    /// with both (-32054). Absent: the change is made whatever the checkpoint is.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub expected: Option<Checkpoint>,
}

/// `Some` for a field that is present, `null` included: `"expected": null` expects no stored
/// checkpoint, a missing `expected` expects nothing.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Checkpoint>, D::Error> {
    Checkpoint::deserialize(deserializer).map(Some)
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
            effect: Some(preview.effect.into()),
            orphaned: None,
            resolved: None,
        }
    }
}

/// What a set or reset would do to reading (a dry run's answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEffect {
    /// Whether blocks are read again, jumped over, or nothing changes.
    pub action: ChangeAction,
    /// The first block read again or skipped.
    pub from_block: Option<u64>,
    /// The last block read again or skipped (partly, when the position is inside it).
    pub to_block: Option<u64>,
    /// Stored messages logged in that range.
    pub stored_messages: u64,
    /// Canonical messages the change would orphan (while halted by a deep reorg).
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

impl From<ferry_messaging::ChangeEffect> for ChangeEffect {
    fn from(effect: ferry_messaging::ChangeEffect) -> Self {
        Self {
            action: match effect.action {
                Action::Rescan => ChangeAction::Rescan,
                Action::Skip => ChangeAction::Skip,
                Action::None => ChangeAction::None,
            },
            from_block: effect.from_block,
            to_block: effect.to_block,
            stored_messages: effect.stored_messages,
            would_orphan: effect.would_orphan,
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
    /// Set when the change moved reading forward: what it jumped over.
    pub skipped: Option<SkippedRange>,
}

/// What a forward move of the checkpoint jumped over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedRange {
    /// Blocks whose logs are not read (at either end partly, when a position is inside a
    /// block).
    pub blocks: u64,
    /// Messages stored already that were logged there.
    pub stored_messages: u64,
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
            skipped: entry.skipped.map(|skipped| SkippedRange {
                blocks: skipped.blocks,
                stored_messages: skipped.stored_messages,
            }),
        }
    }
}
