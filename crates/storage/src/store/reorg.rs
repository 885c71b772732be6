//! What a reorg removes: the checkpoint goes back to the common ancestor, the header window
//! ends there, and every message stored from the blocks above it is orphaned, with a
//! `removed` notice each, all in one write transaction (invariant: truthful log).

use super::{
    Store,
    entries::{EntryWriter, append_reorg, next_seq},
    lifecycle,
    window::bounds,
};
use crate::{
    ChangeMethod, ChangeOrigin, Error, Result,
    clock::unix_millis,
    codec::{CHECKPOINT, HALT, NoticeKind, NoticeRecord, OrphanRecord},
    models::{HaltRecord, ReorgCause, ReorgRecord},
    tables,
    txn::WriteTxn,
};
use ferry_primitives::{BlockHeader, Checkpoint, Position, Seq, U256};
use std::ops::ControlFlow;

/// A reorg the node found inside its header window: [`Store::record_reorg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReorgWrite {
    /// Where the node was reading from when it found the reorg; the record is written only if
    /// the store still says so.
    pub expected: Position,
    /// The newest block of the window that is still canonical.
    pub common_ancestor: BlockHeader,
}

/// What a recorded reorg did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReorgSummary {
    /// Its id (`messaging_getReorgs`).
    pub id: u64,
    /// What was recorded.
    pub record: ReorgRecord,
    /// The messages it orphaned, by seq, ascending.
    pub orphaned: Vec<Seq>,
    /// The nonces no canonical message holds any more (a gap, until they come back).
    pub released_nonces: Vec<U256>,
    /// `stateChanged` notices that undo lifecycle events logged in the removed blocks.
    pub reverted_changes: u64,
    /// The newest seq of the log after it.
    pub last_seq: Option<Seq>,
}

/// The outcome of [`Store::record_reorg`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "the reorg may not have been recorded"]
pub enum ReorgOutcome {
    /// Recorded, and the checkpoint is right after the common ancestor.
    Recorded(ReorgSummary),
    /// An operator moved the checkpoint meanwhile: theirs wins, nothing was written.
    CheckpointMoved {
        /// Where the node was reading from.
        expected: Position,
        /// The checkpoint the store holds.
        found: Checkpoint,
    },
}

impl Store {
    /// Records a reorg whose common ancestor is `reorg.common_ancestor`, in one write
    /// transaction: the checkpoint moves to the block after it, unless it is below already
    /// (audited as `reorgRewind`),
    /// the header window is cut above it, and every message stored from a block above it is
    /// orphaned with a `removed` notice. A later batch that finds such a message again
    /// includes it again (see [`Store::commit`]).
    ///
    /// Refused with [`Error::AncestorNotInWindow`] when the window does not hold that block
    /// with that hash.
    pub fn record_reorg(&self, reorg: &ReorgWrite) -> Result<ReorgOutcome> {
        let txn = self.write()?;
        let found = txn.get::<tables::Checkpoint>(&CHECKPOINT)?;
        if self.resume_position(found) != reorg.expected {
            return Ok(ReorgOutcome::CheckpointMoved { expected: reorg.expected, found });
        }
        let ancestor = reorg.common_ancestor;
        let kept = txn.get::<tables::Headers>(&ancestor.number)?;
        if kept.map(|kept| kept.hash) != Some(ancestor.hash) {
            return Err(Error::AncestorNotInWindow {
                number: ancestor.number,
                hash: ancestor.hash,
                kept: kept.map(|kept| kept.hash),
            });
        }
        let old_tip = txn.last::<tables::Headers>()?.map(|(number, value)| value.at(number));
        let mut removed = Vec::new();
        txn.walk::<tables::WindowMessages>(Some(&(ancestor.number + 1, Seq::ZERO)), |key, ()| {
            removed.push(key.1);
            Ok(ControlFlow::Continue(()))
        })?;
        txn.delete_from::<tables::Headers>(&(ancestor.number + 1))?;
        // Reading goes on after the ancestor, or where an operator had moved it back to.
        let rewind_to = Position::block_start(ancestor.number + 1).min(reorg.expected);
        let record = ReorgRecord {
            at_millis: unix_millis(),
            cause: ReorgCause::Detected,
            rewind_to,
            common_ancestor: Some(ancestor.block_ref()),
            old_tip: old_tip.map(|tip| tip.block_ref()),
            orphaned: 0,
            first_notice: None,
        };
        let cut = Position::block_start(ancestor.number + 1);
        let summary = orphan_and_record(&txn, record, removed, cut)?;
        txn.put::<tables::Checkpoint>(&CHECKPOINT, &rewind_to)?;
        let origin = ChangeOrigin { method: ChangeMethod::ReorgRewind, caller: "node".to_owned() };
        super::audit::append(&txn, &origin, (found, Some(rewind_to)), None)?;
        self.seal(&txn, || super::StoreWrite::Reorg {
            expected: reorg.expected,
            common_ancestor: reorg.common_ancestor,
        })?;
        txn.commit("commit a reorg")?;
        Ok(ReorgOutcome::Recorded(summary))
    }
}

/// Orphans the canonical messages among `seqs` under a new reorg record (`record`, whose
/// counts are filled in here): a `removed` notice each (recording the heads the window was
/// read under: whether a consumer waiting for finality had been told), the message marked
/// orphaned, its nonce released and its window row dropped. Before them, the lifecycle
/// events logged from `events_from` on are removed, each change they made undone by a
/// notice.
pub(super) fn orphan_and_record(
    txn: &WriteTxn<'_>,
    mut record: ReorgRecord,
    mut seqs: Vec<Seq>,
    events_from: Position,
) -> Result<ReorgSummary> {
    seqs.sort_unstable();
    seqs.dedup();
    let id = txn.last::<tables::Reorgs>()?.map_or(0, |(id, _)| id + 1);
    let heads = bounds(txn)?.heads();
    let first = next_seq(txn)?;
    let mut writer = EntryWriter::new(txn, first, heads);
    let reverted_changes = lifecycle::revert_events_from(txn, &mut writer, events_from, Some(id))?;
    if reverted_changes > 0 {
        record.first_notice = Some(first);
    }
    let (mut orphaned, mut released_nonces) = (Vec::new(), Vec::new());
    for seq in seqs {
        if txn.get::<tables::Orphans>(&seq)?.is_some() {
            continue;
        }
        let Some(message) = txn.get::<tables::Messages>(&seq)? else {
            return Err(Error::Corrupt {
                table: tables::Table::WindowMessages.name(),
                key: format!("seq {seq}"),
                reason: "names a seq that has no message".to_owned(),
            });
        };
        let origin = message.l1.origin;
        let notice = NoticeRecord {
            kind: NoticeKind::Removed,
            message: seq,
            reorg: Some(id),
            origin,
            heads,
        };
        let notice = writer.notice(seq, notice)?;
        txn.put::<tables::Orphans>(&seq, &OrphanRecord { reorg: id, notice })?;
        txn.delete::<tables::WindowMessages>(&(origin.block_number, seq))?;
        let nonce = message.l1.message.nonce;
        if txn.get::<tables::Nonces>(&nonce)? == Some(seq) {
            txn.delete::<tables::Nonces>(&nonce)?;
            super::nonces::remove(txn, nonce)?;
            released_nonces.push(nonce);
        }
        record.first_notice.get_or_insert(notice);
        orphaned.push(seq);
    }
    record.orphaned = orphaned.len() as u64;
    let appended = append_reorg(txn, &record)?;
    debug_assert_eq!(appended, id);
    let last_seq = writer.next.0.checked_sub(1).map(Seq);
    Ok(ReorgSummary { id, record, orphaned, released_nonces, reverted_changes, last_seq })
}

impl Store {
    /// Records that ingestion halts, if the store still reads from `expected` (an operator's
    /// change that raced the finding wins: the halt is about a position no longer read).
    /// Whether it was recorded.
    pub fn record_halt(&self, expected: Position, halt: &HaltRecord) -> Result<bool> {
        let txn = self.write()?;
        let found = txn.get::<tables::Checkpoint>(&CHECKPOINT)?;
        if self.resume_position(found) != expected {
            return Ok(false);
        }
        txn.put::<tables::Halt>(&HALT, halt)?;
        self.seal(&txn, || super::StoreWrite::Halt { expected, record: *halt })?;
        txn.commit("record a halt")?;
        Ok(true)
    }

    /// Why ingestion is halted, if it is.
    pub fn halt(&self) -> Result<Option<HaltRecord>> {
        self.read()?.get::<tables::Halt>(&HALT)
    }
}
