//! Committing a gathered batch: its new messages, the notices for messages it found again
//! elsewhere, its lifecycle events, its headers and the checkpoint after it, in one write
//! transaction.

use super::{
    Store,
    entries::{EntryWriter, append_reorg, next_seq},
    index, lifecycle, nonces,
    window::{self, Extended, Extension, WindowRestart},
};
use crate::{
    Error, Result,
    clock::unix_millis,
    codec::{CHECKPOINT, MessageRecord, MessageRef, NoticeKind, NoticeRecord},
    models::{FinalityTags, KnownHeads, ReorgCause, ReorgRecord},
    tables,
    txn::WriteTxn,
};
use ferry_primitives::{
    B256, BlockHeader, L1Message, LifecycleEvent, Position, Seq, first_unlinked,
};
use signet_libmdbx::WriteFlags;

/// A gathered range to commit: [`Store::commit`].
#[derive(Debug, Clone, Copy)]
pub struct BatchWrite<'a> {
    /// Where the range was gathered from; the commit checks the store still reads from here.
    pub from: Position,
    /// Where reading goes on after it.
    pub next: Position,
    /// The messages found, in L1 order.
    pub messages: &'a [L1Message],
    /// Their hashes, `hashes[i]` being `messages[i].hash()`, computed off the writer's path.
    pub hashes: &'a [B256],
    /// The lifecycle events found (cancellations started and completed, consumptions), in L1
    /// order.
    pub events: &'a [LifecycleEvent],
    /// The headers of the range's blocks, ascending and linked, the last one being the block
    /// before `next`: every block of the range inside the reorg window, at least the last.
    /// Empty: the range is not anchored, and the window starts again with the next batch.
    pub headers: &'a [BlockHeader],
    /// The lowest block the window must keep (the finalized block, or the configured depth
    /// below the head, whichever is lower); older headers are pruned.
    pub window_floor: u64,
    /// The provider's safe and finalized blocks as the node fetched them: the window's heads
    /// are raised to those the batch or the window holds (see [`crate::WindowBounds`]).
    pub tags: FinalityTags,
}

/// What a committed batch wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitSummary {
    /// The seq of the first entry written; when none was, the seq the next one gets.
    pub first_seq: Seq,
    /// New messages stored, one entry each.
    pub stored: u64,
    /// Messages found at the origin already stored for them (a re-scan), which wrote nothing.
    pub skipped: u64,
    /// Orphaned (or moved) messages found again at a new origin: a notice each.
    pub reincluded: u64,
    /// `stateChanged` notices written for lifecycle events.
    pub state_changes: u64,
    /// Lifecycle events about messages the node has not stored, kept to be matched later.
    pub unmatched_events: u64,
    /// Entries written in all (messages and notices), with seqs `first_seq..first_seq + n`.
    pub entries: u64,
    /// Set when the header window started again with this batch.
    pub window_restarted: Option<WindowRestart>,
}

impl CommitSummary {
    /// The seq of the last entry written, if the batch wrote any.
    pub const fn last_seq(&self) -> Option<Seq> {
        match self.entries {
            0 => None,
            n => Some(Seq(self.first_seq.0 + n - 1)),
        }
    }
}

/// The outcome of [`Store::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a batch may not have been committed"]
pub enum CommitOutcome {
    /// Everything was written together.
    Committed(CommitSummary),
    /// The stored checkpoint was no longer the one the batch was gathered from (an operator
    /// moved it, or another writer did); nothing was written.
    CheckpointMoved {
        /// The position the batch was gathered from.
        expected: Position,
        /// The checkpoint the store holds.
        found: ferry_primitives::Checkpoint,
    },
    /// The batch's first header does not link to the header the window keeps for the block
    /// before it: that block was replaced by a reorg. Nothing was written.
    Unlinked {
        /// The block the window keeps below the batch.
        kept: BlockHeader,
        /// The parent hash the batch's first block names.
        parent_hash: B256,
    },
}

impl Store {
    /// Stores `messages` gathered from position `from` up to (not including) `next`, and moves
    /// the checkpoint to `next`, with `headers` (none: the window is left to start again) and
    /// the window's floor at the first of them: the form used by tests and benchmarks of the
    /// store alone. See [`Store::commit`].
    pub fn commit_batch(
        &self,
        from: Position,
        messages: &[L1Message],
        next: Position,
        headers: &[BlockHeader],
    ) -> Result<CommitOutcome> {
        let hashes: Vec<B256> = messages.iter().map(L1Message::hash).collect();
        self.commit(&BatchWrite {
            from,
            next,
            messages,
            hashes: &hashes,
            events: &[],
            headers,
            window_floor: headers.first().map_or(0, |header| header.number),
            tags: FinalityTags::default(),
        })
    }

    /// Commits a gathered batch in one write transaction: all of it or none of it
    /// (invariant: atomic batch).
    ///
    /// - It commits only if reading would still start at `from` (the stored checkpoint, or the
    ///   start block's first log when none is stored), and only if its first header links to
    ///   the window's header below it; otherwise nothing is written and the outcome says why.
    /// - A message whose hash is not stored gets the next seq. One stored at the same origin is
    ///   skipped (a re-scan). One that a reorg orphaned, or that is stored at another origin,
    ///   is updated to the new origin and a `reincluded` notice takes the next seq.
    /// - Lifecycle events are applied after the messages, in L1 order: one stored at its
    ///   position already is skipped; a change of a stored message's lifecycle takes the next
    ///   seq as a `stateChanged` notice; one about a message not stored is kept unmatched, and
    ///   matched when that message is stored.
    /// - The headers are appended to the window, and the window is pruned below
    ///   `window_floor` (never below its newest block).
    ///
    /// Messages must lie in `[from, next)` in ascending position order, with their hashes,
    /// and the headers must be linked and end with the block before `next`, or the batch is
    /// refused with an error and nothing is written.
    pub fn commit(&self, batch: &BatchWrite<'_>) -> Result<CommitOutcome> {
        check_batch(batch)?;
        let txn = self.write()?;
        let found = txn.get::<tables::Checkpoint>(&CHECKPOINT)?;
        if self.resume_position(found) != batch.from {
            return Ok(CommitOutcome::CheckpointMoved { expected: batch.from, found });
        }
        // Notices record the heads under which the stored chain was read so far.
        let known = window::bounds(&txn)?.heads();
        let extension =
            Extension { headers: batch.headers, floor: batch.window_floor, tags: batch.tags };
        let window_restarted = match window::extend(&txn, extension)? {
            Extended::Fits { restarted } => restarted,
            Extended::Unlinked { kept, parent_hash } => {
                return Ok(CommitOutcome::Unlinked { kept, parent_hash });
            }
            Extended::Gap { tip, first } => {
                let reason = format!(
                    "block {first} would leave a gap above the window's newest block {tip} \
                     (floor {})",
                    batch.window_floor
                );
                return Err(Error::BadHeaders { from: batch.from, next: batch.next, reason });
            }
        };
        let messages = MessagesWrite {
            messages: batch.messages,
            hashes: batch.hashes,
            window_start: batch.headers.first().map_or(u64::MAX, |header| header.number),
            rewind_to: batch.from,
        };
        let mut summary = self.write_entries(&txn, known, messages, batch.events)?;
        summary.window_restarted = window_restarted;
        txn.put::<tables::Checkpoint>(&CHECKPOINT, &batch.next)?;
        self.seal(&txn, || (*batch).into())?;
        txn.commit("commit a batch")?;
        Ok(CommitOutcome::Committed(summary))
    }
}

/// Messages to write at the end of the log: a batch's, or those a refetched transaction
/// logged.
#[derive(Debug, Clone, Copy)]
pub(super) struct MessagesWrite<'a> {
    pub(super) messages: &'a [L1Message],
    /// Their hashes, `hashes[i]` being `messages[i].hash()`.
    pub(super) hashes: &'a [B256],
    /// The first block whose messages the header window indexes (a reorg inside it finds
    /// them); `u64::MAX` for none.
    pub(super) window_start: u64,
    /// Where reading went on from, for the reorg record of messages found moved.
    pub(super) rewind_to: Position,
}

impl Store {
    /// Writes `messages`, then `events`, at the end of the log (notices recording the heads
    /// `known`), and the state counts they changed: a batch's entries, or a refetched
    /// transaction's.
    pub(super) fn write_entries(
        &self,
        txn: &WriteTxn<'_>,
        known: KnownHeads,
        messages: MessagesWrite<'_>,
        events: &[LifecycleEvent],
    ) -> Result<CommitSummary> {
        let first_seq = next_seq(txn)?;
        let mut writer = EntryWriter::new(txn, first_seq, known);
        let mut summary = CommitSummary {
            first_seq,
            stored: 0,
            skipped: 0,
            reincluded: 0,
            state_changes: 0,
            unmatched_events: 0,
            entries: 0,
            window_restarted: None,
        };
        let mut counts = lifecycle::counts(txn)?;
        let before = counts;
        self.write_messages(&mut writer, messages, &mut counts, &mut summary)?;
        if !events.is_empty() {
            let applied = lifecycle::apply_events(txn, &mut writer, events, &mut counts)?;
            summary.state_changes = applied.changes;
            summary.unmatched_events = applied.unmatched;
        } else if counts != before {
            // Messages stored now matched lifecycles kept unmatched.
            lifecycle::write_counts(txn, &counts)?;
        }
        summary.entries = writer.next.0 - first_seq.0;
        Ok(summary)
    }

    /// The messages, in order: one whose hash is not stored under its nonce (which finds it
    /// exactly, see `index.rs`) gets the next seq; one found again is skipped, or included
    /// again (see [`Rescan::found_again`]).
    pub(super) fn write_messages(
        &self,
        writer: &mut EntryWriter<'_, '_>,
        batch: MessagesWrite<'_>,
        counts: &mut ferry_primitives::StateCounts,
        summary: &mut CommitSummary,
    ) -> Result<()> {
        let txn = writer.txn;
        let window_start = batch.window_start;
        let mut value = Vec::new();
        let mut held_nonces = Vec::new();
        let mut frontier = index::NonceFrontier::read(txn)?;
        let mut rescan = Rescan::default();
        for (l1, &hash) in batch.messages.iter().zip(batch.hashes) {
            #[cfg(any(test, feature = "test-utils"))]
            self.maybe_fail_commit((summary.stored + summary.reincluded) as usize)?;

            let seq = writer.next;
            let nonce = l1.message.nonce;
            let above = frontier.is_new_high(nonce);
            let stored = if above { None } else { index::seq_by_nonce(txn, nonce, hash)? };
            let Some(stored) = stored else {
                value.clear();
                crate::codec::EncodeAs::<MessageRecord>::encode_as(
                    &MessageRef { hash, l1 },
                    &mut value,
                );
                txn.write_encoded::<tables::Messages>(&seq, &value, WriteFlags::APPEND)?;
                if above {
                    // Above every stored nonce, so above every canonical one too: both rows
                    // go at the end of their tables.
                    frontier.index_above(txn, seq, hash, nonce)?;
                    txn.append::<tables::Nonces>(&nonce, &seq)?;
                } else {
                    index::index_message(txn, seq, hash, nonce)?;
                    txn.put::<tables::Nonces>(&nonce, &seq)?;
                }
                held_nonces.push(nonce);
                if l1.origin.block_number >= window_start {
                    txn.put::<tables::WindowMessages>(&(l1.origin.block_number, seq), &())?;
                }
                if counts.unmatched > 0 {
                    lifecycle::match_message(txn, hash, counts)?;
                }
                writer.next = seq.next();
                summary.stored += 1;
                continue;
            };
            if stored >= summary.first_seq {
                // The same message twice in one answer: the first is the one stored.
                summary.skipped += 1;
            } else if rescan.found_again(writer, stored, l1, batch.rewind_to, window_start)? {
                held_nonces.push(l1.message.nonce);
                summary.reincluded += 1;
            } else {
                summary.skipped += 1;
            }
        }
        nonces::add(txn, held_nonces)
    }
}

/// What a batch does with the stored messages it finds again.
#[derive(Debug, Default)]
struct Rescan {
    /// The reorg record of messages found moved while canonical, once one is written.
    moved_reorg: Option<u64>,
}

impl Rescan {
    /// A stored message found again at `l1`'s origin. Orphaned: it is included again (a
    /// notice, the origin updated). Canonical elsewhere: the chain moved it without the node
    /// seeing a reorg (an operator skipped the blocks it left): removed and included again,
    /// under a reorg record of its own. At the same origin: nothing to do. Whether it wrote.
    fn found_again(
        &mut self,
        writer: &mut EntryWriter<'_, '_>,
        seq: Seq,
        l1: &L1Message,
        rewind_to: Position,
        window_start: u64,
    ) -> Result<bool> {
        let txn = writer.txn;
        let mut record = txn.get::<tables::Messages>(&seq)?.ok_or_else(|| Error::Corrupt {
            table: tables::Table::NonceIndex.name(),
            key: record_key(seq),
            reason: "points at a seq that has no message".to_owned(),
        })?;
        let orphan = txn.get::<tables::Orphans>(&seq)?;
        let reorg = match orphan {
            Some(orphan) => orphan.reorg,
            None if record.l1.origin == l1.origin => {
                // A re-scan: keep it indexed if its block is in the window again.
                if l1.origin.block_number >= window_start {
                    txn.put::<tables::WindowMessages>(&(l1.origin.block_number, seq), &())?;
                }
                return Ok(false);
            }
            None => {
                let reorg = self.moved_reorg(writer, rewind_to)?;
                txn.delete::<tables::WindowMessages>(&(record.l1.origin.block_number, seq))?;
                let removed = NoticeRecord {
                    kind: NoticeKind::Removed,
                    message: seq,
                    reorg: Some(reorg),
                    origin: record.l1.origin,
                    heads: writer.heads(),
                };
                writer.notice(seq, removed)?;
                reorg
            }
        };
        record.l1.origin = l1.origin;
        txn.put::<tables::Messages>(&seq, &record)?;
        txn.delete::<tables::Orphans>(&seq)?;
        txn.put::<tables::Nonces>(&l1.message.nonce, &seq)?;
        if l1.origin.block_number >= window_start {
            txn.put::<tables::WindowMessages>(&(l1.origin.block_number, seq), &())?;
        }
        let reincluded = NoticeRecord {
            kind: NoticeKind::Reincluded,
            message: seq,
            reorg: Some(reorg),
            origin: l1.origin,
            heads: writer.heads(),
        };
        writer.notice(seq, reincluded)?;
        Ok(true)
    }

    fn moved_reorg(&mut self, writer: &EntryWriter<'_, '_>, rewind_to: Position) -> Result<u64> {
        if let Some(id) = self.moved_reorg {
            return Ok(id);
        }
        let record = ReorgRecord {
            at_millis: unix_millis(),
            cause: ReorgCause::Moved,
            rewind_to,
            common_ancestor: None,
            old_tip: None,
            orphaned: 0,
            first_notice: Some(writer.next),
        };
        let id = append_reorg(writer.txn, &record)?;
        self.moved_reorg = Some(id);
        Ok(id)
    }
}

fn record_key(seq: Seq) -> String {
    format!("seq {seq}")
}

/// Refuses batches that would move the checkpoint backwards, hold messages outside the range
/// they were gathered from, or come with headers that are not the range's last blocks on one
/// chain: each is a bug upstream, and storing it would break what consumers rely on.
fn check_batch(batch: &BatchWrite<'_>) -> Result<()> {
    let BatchWrite { from, next, messages, hashes, headers, .. } = *batch;
    let out_of_range = |position, reason| Error::BatchOutOfRange { from, next, position, reason };
    if next < from {
        return Err(out_of_range(next, "is before the position the batch was gathered from"));
    }
    let mut previous: Option<Position> = None;
    for position in messages.iter().map(|l1| l1.origin.position()) {
        if position < from || position >= next {
            return Err(out_of_range(position, "is outside the gathered range"));
        }
        if previous.is_some_and(|previous| previous >= position) {
            return Err(out_of_range(position, "does not follow the previous message"));
        }
        previous = Some(position);
    }
    let mut previous: Option<Position> = None;
    for position in batch.events.iter().map(|event| event.origin.position()) {
        if position < from || position >= next {
            return Err(out_of_range(position, "is outside the gathered range"));
        }
        if previous.is_some_and(|previous| previous >= position) {
            return Err(out_of_range(position, "does not follow the previous lifecycle event"));
        }
        previous = Some(position);
    }
    if hashes.len() != messages.len() {
        return Err(Error::HashCountMismatch { messages: messages.len(), hashes: hashes.len() });
    }
    debug_assert!(messages.iter().zip(hashes).all(|(l1, hash)| l1.hash() == *hash));
    let bad_headers = |reason: String| Error::BadHeaders { from, next, reason };
    // Headers may start below the range: after an operator's forward move, those of the
    // blocks skipped link the window to it.
    if let Some(last) = headers.last() {
        if next.index != 0 || last.number + 1 != next.block {
            return Err(bad_headers(format!("the last one is block {}", last.number)));
        }
        if let Some(number) = first_unlinked(headers) {
            return Err(bad_headers(format!("block {number} does not link to the one before")));
        }
    }
    Ok(())
}
