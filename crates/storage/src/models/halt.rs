//! Why ingestion is halted, as the store keeps it.

/// Why a reorg halts ingestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HaltKind {
    /// No block of the header window is on the chain any more.
    BeyondWindow,
    /// The common ancestor is below the finalized block: a finalized block was replaced.
    BelowFinalized,
}

/// A halt, as the Halt table keeps it: it survives restarts, and the operator's next
/// checkpoint change resolves it in the same transaction that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HaltRecord {
    /// When, in Unix milliseconds.
    pub at_millis: u64,
    /// Why.
    pub kind: HaltKind,
    /// The newest block of the window that was replaced, with the hash kept.
    pub replaced: ferry_primitives::BlockRef,
    /// The lowest block of the window checked (all replaced, beyond the window).
    pub lowest_checked: u64,
    /// The common ancestor, below a finalized block.
    pub common_ancestor: Option<u64>,
    /// The finalized block the window was read under.
    pub finalized: Option<u64>,
}
