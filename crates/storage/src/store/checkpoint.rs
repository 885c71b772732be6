//! Operator changes of the checkpoint: set, reset, and the audit trail that records them.

use super::{
    Store,
    reads::count_logged_between,
    reorg::{ReorgSummary, orphan_and_record},
    window::bounds,
};
use crate::{
    ChangeOrigin, Error, Result,
    clock::unix_millis,
    codec::{CHECKPOINT, HALT, WINDOW},
    models::{ReorgCause, ReorgRecord},
    tables,
    txn::WriteTxn,
};
use ferry_primitives::{Checkpoint, Position, Skipped};
use std::ops::ControlFlow;

/// What [`Store::change_checkpoint`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointChanged {
    /// The checkpoint it replaced.
    pub previous: Checkpoint,
    /// When it resolved a reorg deeper than the window: what it orphaned.
    pub resolved: Option<ReorgSummary>,
    /// When it moved reading forward: what it jumped over (also in the audit trail).
    pub skipped: Option<Skipped>,
}

/// An operator's change of the checkpoint: [`Store::change_checkpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointWrite<'a> {
    /// The new checkpoint: `None` deletes it (reading starts at the start block).
    pub new: Checkpoint,
    /// A compare-and-set: `Some(checkpoint)` writes only if the stored checkpoint is that one
    /// (the caller read it and computed the change from it); `None` writes whatever it is.
    pub expected: Option<Checkpoint>,
    /// Who asks: with one, the change is appended to the audit trail.
    pub origin: Option<&'a ChangeOrigin>,
}

impl<'a> CheckpointWrite<'a> {
    /// An unconditional change, not audited.
    pub const fn to(new: Checkpoint) -> Self {
        Self { new, expected: None, origin: None }
    }
}

impl Store {
    /// Sets the checkpoint to `position` and returns the one it replaced.
    pub fn set_checkpoint(&self, position: Position) -> Result<Checkpoint> {
        self.change_checkpoint(CheckpointWrite::to(Some(position))).map(|changed| changed.previous)
    }

    /// Deletes the checkpoint, so reading restarts at the configured start block, and returns
    /// the one it deleted.
    pub fn delete_checkpoint(&self) -> Result<Checkpoint> {
        self.change_checkpoint(CheckpointWrite::to(None)).map(|changed| changed.previous)
    }

    /// Sets (`Some`) or deletes (`None`) the checkpoint, in one write transaction; with an
    /// origin, the change is appended to the audit trail, with what it skipped when it moves
    /// reading forward.
    ///
    /// With `expected`, nothing is written unless the stored checkpoint is the expected one
    /// ([`Error::CheckpointMoved`], carrying both): an operator who computed the change from a
    /// read that a reorg or another change has overtaken since must read again, not skip.
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
    pub fn change_checkpoint(&self, write: CheckpointWrite<'_>) -> Result<CheckpointChanged> {
        let CheckpointWrite { new, expected, origin } = write;
        let txn = self.write()?;
        let previous = txn.get::<tables::Checkpoint>(&CHECKPOINT)?;
        if let Some(expected) = expected.filter(|expected| *expected != previous) {
            return Err(Error::CheckpointMoved { expected, found: previous });
        }
        let (from, to) = (self.resume_position(previous), self.resume_position(new));
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
        let skipped = if to > from { Some(skipped(&txn, from, to)?) } else { None };
        if let Some(origin) = origin {
            super::audit::append(&txn, origin, (previous, new), skipped)?;
        }
        let resolved = if halted { Some(resolve(&txn, to)?) } else { None };
        #[cfg(any(test, feature = "test-utils"))]
        self.maybe_fail_change()?;
        self.seal(&txn, || super::StoreWrite::Checkpoint {
            new,
            expected,
            origin: origin.cloned(),
        })?;
        txn.commit("commit a checkpoint change")?;
        Ok(CheckpointChanged { previous, resolved, skipped })
    }
}

/// What moving reading from `from` forward to `to` jumps over: the blocks (the last one partly
/// when `to` is inside it) and the messages stored from there (canonical or orphaned). Walks
/// every stored message's origin inside the change's transaction (a forward move is an
/// operator's rare, deliberate act, and its record must be exact): about 50 ns a message.
fn skipped(txn: &WriteTxn<'_>, from: Position, to: Position) -> Result<Skipped> {
    let last_block = if to.index == 0 { to.block - 1 } else { to.block };
    let (stored_messages, _) = count_logged_between(txn, from, to)?;
    Ok(Skipped { blocks: (last_block - from.block).saturating_add(1), stored_messages })
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
