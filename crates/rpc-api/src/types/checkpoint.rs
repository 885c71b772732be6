//! The admin listener's wire types: where a set moves the checkpoint, what a change did or
//! would do, and the audit trail.

use crate::Timestamp;
use ferry_primitives::{ChangeEffect, Checkpoint, ResolvedTime, Skipped};
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
    pub skipped: Option<Skipped>,
}

/// The options object of `messaging_refetchTransaction`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefetchOptions {
    /// Store nothing; answer what the call would store.
    #[serde(default)]
    pub dry_run: bool,
}
