//! Operator changes of the checkpoint: set, reset, and the audit trail that records them.

use super::{
    Store,
    reorg::{ReorgSummary, append_audit, orphan_and_record},
    unix_millis,
};
use crate::{
    ChangeOrigin, Result,
    codec::{ReorgCause, ReorgRecord, Singleton},
    tables,
    txn::WriteTxn,
};
use ferry_primitives::{Checkpoint, Position, Seq};
use std::ops::ControlFlow;

/// What [`Store::change_checkpoint`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointChanged {
    /// The checkpoint it replaced.
    pub previous: Checkpoint,
    /// When it resolved a reorg deeper than the window: what it orphaned.
    pub resolved: Option<ReorgSummary>,
}

impl Store {
    /// Sets the checkpoint to `position` and returns the one it replaced.
    pub fn set_checkpoint(&self, position: Position) -> Result<Checkpoint> {
        self.change_checkpoint(Some(position), None, false).map(|changed| changed.previous)
    }

    /// Deletes the checkpoint, so reading restarts at the configured start block, and returns
    /// the one it deleted.
    pub fn delete_checkpoint(&self) -> Result<Checkpoint> {
        self.change_checkpoint(None, None, false).map(|changed| changed.previous)
    }

    /// Sets (`Some`) or deletes (`None`) the checkpoint, in one write transaction; with an
    /// `origin`, the change is appended to the audit trail.
    ///
    /// The header window is cut where reading will start: the blocks from there are read
    /// again, and their headers with them.
    ///
    /// With `resolve` (the node is halted by a reorg deeper than its window, and the operator
    /// says where to read again), every canonical message logged at or after the new position
    /// is orphaned, with a `removed` notice each under a reorg record: the re-scan includes
    /// again those still on the chain, and what is gone stays orphaned.
    pub fn change_checkpoint(
        &self,
        new: Checkpoint,
        origin: Option<&ChangeOrigin>,
        resolve: bool,
    ) -> Result<CheckpointChanged> {
        let txn = self.write()?;
        let previous = txn.get::<tables::Checkpoint>(&Singleton)?;
        let to = self.resume_position(new);
        match new {
            Some(position) => txn.put::<tables::Checkpoint>(&Singleton, &position)?,
            None => {
                txn.delete::<tables::Checkpoint>(&Singleton)?;
            }
        }
        txn.delete_from::<tables::Headers>(&to.block)?;
        if let Some(origin) = origin {
            append_audit(&txn, origin, previous, new)?;
        }
        let resolved = match resolve {
            true => Some(orphan_from(&txn, to, canonical_from(&txn, to)?)?),
            false => None,
        };
        #[cfg(any(test, feature = "test-utils"))]
        self.maybe_fail_change()?;
        txn.commit("commit a checkpoint change")?;
        Ok(CheckpointChanged { previous, resolved })
    }
}

impl Store {
    /// Orphans every canonical message logged at or after `from` under a reorg record
    /// resolved by the operator, as [`Store::change_checkpoint`] does with `resolve`, without
    /// touching the checkpoint; nothing (and `None`) when there is none. The drain task calls
    /// it when an operator's rewind ends a halt, in case the change itself did not resolve it.
    pub fn resolve_deep_reorg(&self, from: Position) -> Result<Option<ReorgSummary>> {
        let txn = self.write()?;
        let seqs = canonical_from(&txn, from)?;
        if seqs.is_empty() {
            return Ok(None);
        }
        let summary = orphan_from(&txn, from, seqs)?;
        txn.commit("commit a resolved reorg")?;
        Ok(Some(summary))
    }
}

/// The canonical messages logged at or after `from`. Reads every stored message: an
/// operator's rare action, not a hot path.
fn canonical_from(txn: &WriteTxn<'_>, from: Position) -> Result<Vec<Seq>> {
    let mut seqs = Vec::new();
    txn.walk::<tables::Messages>(None, |seq, message| {
        if message.l1.origin.position() >= from && txn.get::<tables::Orphans>(&seq)?.is_none() {
            seqs.push(seq);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(seqs)
}

/// Orphans `seqs` under a reorg record resolved by the operator at `from`.
fn orphan_from(txn: &WriteTxn<'_>, from: Position, seqs: Vec<Seq>) -> Result<ReorgSummary> {
    let record = ReorgRecord {
        at_millis: unix_millis(),
        cause: ReorgCause::Resolved,
        rewind_to: from,
        common_ancestor: None,
        old_tip: None,
        orphaned: 0,
        first_notice: None,
    };
    orphan_and_record(txn, record, seqs)
}
