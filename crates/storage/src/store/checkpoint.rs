//! Operator changes of the checkpoint: set, reset, and the audit trail that records them.

use super::{
    Store,
    commit::bounds,
    reorg::{ReorgSummary, append_audit, orphan_and_record},
    unix_millis,
};
use crate::{
    ChangeOrigin, Error, Result,
    codec::{CHECKPOINT, HALT, ReorgCause, ReorgRecord, WINDOW},
    tables,
    txn::WriteTxn,
};
use ferry_primitives::{Checkpoint, Position};
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
        self.change_checkpoint(Some(position), None).map(|changed| changed.previous)
    }

    /// Deletes the checkpoint, so reading restarts at the configured start block, and returns
    /// the one it deleted.
    pub fn delete_checkpoint(&self) -> Result<Checkpoint> {
        self.change_checkpoint(None, None).map(|changed| changed.previous)
    }

    /// Sets (`Some`) or deletes (`None`) the checkpoint, in one write transaction; with an
    /// `origin`, the change is appended to the audit trail.
    ///
    /// The header window is kept: the re-scan must find its blocks again unchanged, and a
    /// block found changed is a reorg, handled as one.
    ///
    /// While ingestion is halted by a reorg deeper than the window (read in this transaction),
    /// the change resolves it: the operator says where the chain is to be read again. Every
    /// canonical message logged from the new position on is orphaned, with a `removed` notice
    /// each under a reorg record (the re-scan includes again those still on the chain), the
    /// window is cut there, its heads are lowered below it, and the halt is cleared. The
    /// position must then be the start of a block ([`Error::MidBlockResolve`]): the logs
    /// before it in the block would never be read again.
    pub fn change_checkpoint(
        &self,
        new: Checkpoint,
        origin: Option<&ChangeOrigin>,
    ) -> Result<CheckpointChanged> {
        let txn = self.write()?;
        let previous = txn.get::<tables::Checkpoint>(&CHECKPOINT)?;
        let to = self.resume_position(new);
        let halted = txn.get::<tables::Halt>(&HALT)?.is_some();
        if halted && to.index != 0 {
            return Err(Error::MidBlockResolve { position: to });
        }
        match new {
            Some(position) => txn.put::<tables::Checkpoint>(&CHECKPOINT, &position)?,
            None => {
                txn.delete::<tables::Checkpoint>(&CHECKPOINT)?;
            }
        }
        if let Some(origin) = origin {
            append_audit(&txn, origin, previous, new)?;
        }
        let resolved = if halted { Some(resolve(&txn, to)?) } else { None };
        #[cfg(any(test, feature = "test-utils"))]
        self.maybe_fail_change()?;
        txn.commit("commit a checkpoint change")?;
        Ok(CheckpointChanged { previous, resolved })
    }
}

/// Ends a halt at `from`: orphans every canonical message logged from there on under a reorg
/// record resolved by the operator, cuts the window there and lowers its heads below it.
/// Reads every stored message: an operator's rare action, not a hot path.
fn resolve(txn: &WriteTxn<'_>, from: Position) -> Result<ReorgSummary> {
    let mut seqs = Vec::new();
    txn.walk::<tables::Messages>(None, |seq, message| {
        if message.l1.origin.position() >= from && txn.get::<tables::Orphans>(&seq)?.is_none() {
            seqs.push(seq);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    let record = ReorgRecord {
        at_millis: unix_millis(),
        cause: ReorgCause::Resolved,
        rewind_to: from,
        common_ancestor: None,
        old_tip: txn.last::<tables::Headers>()?.map(|(number, value)| value.at(number).block_ref()),
        orphaned: 0,
        first_notice: None,
    };
    // The removal notices record the heads the window was read under (as they were).
    let summary = orphan_and_record(txn, record, seqs, from)?;
    txn.delete_from::<tables::Headers>(&from.block)?;
    let mut bounds = bounds(txn)?;
    let below = from.block.checked_sub(1);
    bounds.safe = bounds.safe.min(below);
    bounds.finalized = bounds.finalized.min(below);
    txn.put::<tables::WindowState>(&WINDOW, &bounds)?;
    txn.delete::<tables::Halt>(&HALT)?;
    Ok(summary)
}
