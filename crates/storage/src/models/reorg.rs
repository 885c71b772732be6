//! A reorg, as the store records it.

use ferry_primitives::{Position, Seq};

/// What found a reorg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReorgCause {
    /// The node: a block it had scanned, inside its header window, was replaced.
    Detected,
    /// An operator moved the checkpoint while the node was halted by a reorg deeper than its
    /// window: what was stored from the new checkpoint on was orphaned, to be found again.
    Resolved,
    /// A re-scan found stored messages at another origin, in blocks the node had not kept
    /// headers of (an operator had skipped them): each was moved, a removal and a re-inclusion.
    Moved,
}

impl ReorgCause {
    /// The name operators see.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Detected => "detected",
            Self::Resolved => "resolvedByOperator",
            Self::Moved => "movedOnRescan",
        }
    }
}

/// One reorg, as the Reorgs table keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReorgRecord {
    /// When it was handled, in Unix milliseconds.
    pub at_millis: u64,
    /// What found it.
    pub cause: ReorgCause,
    /// Reading went on from here: the position after the common ancestor, or the operator's.
    pub rewind_to: Position,
    /// The newest block still canonical, with its hash, when the node found one.
    pub common_ancestor: Option<ferry_primitives::BlockRef>,
    /// The newest block scanned before the reorg, with its hash.
    pub old_tip: Option<ferry_primitives::BlockRef>,
    /// Messages it orphaned.
    pub orphaned: u64,
    /// The seq of its first removal notice, if it orphaned any.
    pub first_notice: Option<Seq>,
}
