//! The audit trail of checkpoint changes: who moved the checkpoint, when, from where to where,
//! and what a forward move skipped.

use ferry_primitives::{Checkpoint, Skipped};
use std::fmt;

/// What changed the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeMethod {
    /// `messaging_setCheckpoint`.
    SetCheckpoint,
    /// `messaging_resetCheckpoint`.
    ResetCheckpoint,
    /// The node itself, rewinding below a reorg.
    ReorgRewind,
    /// `messaging_refetchTransaction`: a transaction's missed messages stored; the
    /// checkpoint does not move.
    RefetchTransaction,
}

impl ChangeMethod {
    /// The name operators see: the JSON-RPC method, or `reorgRewind`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SetCheckpoint => "messaging_setCheckpoint",
            Self::ResetCheckpoint => "messaging_resetCheckpoint",
            Self::ReorgRewind => "reorgRewind",
            Self::RefetchTransaction => "messaging_refetchTransaction",
        }
    }
}

impl fmt::Display for ChangeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who asks for a checkpoint change; recorded with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangeOrigin {
    /// What asked.
    pub method: ChangeMethod,
    /// Who asked: the caller's socket address, or `node` for the node itself.
    pub caller: String,
}

/// One recorded checkpoint change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the trail, from 0.
    pub id: u64,
    /// When, in Unix milliseconds.
    pub at_millis: u64,
    /// What changed it.
    pub method: ChangeMethod,
    /// Who asked.
    pub caller: String,
    /// The checkpoint before.
    pub previous: Checkpoint,
    /// The checkpoint after.
    pub current: Checkpoint,
    /// Set when the change moved reading forward: what it jumped over.
    pub skipped: Option<Skipped>,
}
