//! Committing a gathered batch: its new messages, the notices for messages it found again
//! elsewhere, its lifecycle events, its headers and the checkpoint after it, in one write
//! transaction.

use super::{Store, index, lifecycle, nonces, unix_millis};
use crate::{
    Error, Result,
    codec::{
        CHECKPOINT, FinalityTags, HeaderValue, KnownHeads, MessageRecord, MessageRef, NoticeKind,
        NoticeRecord, ReorgCause, ReorgRecord, WINDOW, WindowBounds,
    },
    tables,
    txn::WriteTxn,
};
use ferry_primitives::{
    B256, BlockHeader, BlockRef, L1Message, LifecycleEvent, Position, Seq, first_unlinked,
};
use signet_libmdbx::WriteFlags;
use std::ops::ControlFlow;

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
    /// are raised to those the batch or the window holds (see [`WindowBounds`]).
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

/// The header window started again: the batch's first header had no kept parent, and what
/// the window kept ended below the floor (see [`Store::commit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRestart {
    /// The newest block the window kept before.
    pub previous_tip: u64,
    /// The block it starts again at.
    pub first: u64,
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
        let known = bounds(&txn)?.heads();
        let window_restarted = match extend_window(&txn, batch)? {
            Extended::Fits { restarted } => restarted,
            Extended::Unlinked(unlinked) => return Ok(unlinked),
        };
        let first_seq = next_seq(&txn)?;
        let mut writer = EntryWriter { txn: &txn, next: first_seq, moved_reorg: None, known };
        let mut summary = CommitSummary {
            first_seq,
            stored: 0,
            skipped: 0,
            reincluded: 0,
            state_changes: 0,
            unmatched_events: 0,
            entries: 0,
            window_restarted,
        };
        let mut counts = lifecycle::counts(&txn)?;
        let before = counts;
        self.write_messages(&mut writer, batch, &mut counts, &mut summary)?;
        if !batch.events.is_empty() {
            let applied = lifecycle::apply_events(&txn, &mut writer, batch.events, &mut counts)?;
            summary.state_changes = applied.changes;
            summary.unmatched_events = applied.unmatched;
        } else if counts != before {
            // Messages stored now matched lifecycles kept unmatched.
            lifecycle::write_counts(&txn, &counts)?;
        }
        summary.entries = writer.next.0 - first_seq.0;
        txn.put::<tables::Checkpoint>(&CHECKPOINT, &batch.next)?;
        txn.commit("commit a batch")?;
        Ok(CommitOutcome::Committed(summary))
    }
}

impl Store {
    /// The batch's messages, in order: one whose hash is not stored under its nonce (which
    /// finds it exactly, see `index.rs`) gets the next seq; one found again is skipped, or
    /// included again (see [`EntryWriter::found_again`]).
    fn write_messages(
        &self,
        writer: &mut EntryWriter<'_, '_>,
        batch: &BatchWrite<'_>,
        counts: &mut ferry_primitives::StateCounts,
        summary: &mut CommitSummary,
    ) -> Result<()> {
        let txn = writer.txn;
        let window_start = batch.headers.first().map_or(u64::MAX, |header| header.number);
        let mut value = Vec::new();
        let mut held_nonces = Vec::new();
        let mut frontier = index::NonceFrontier::read(txn)?;
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
                    frontier.index_above(txn, seq, hash, nonce)?;
                } else {
                    index::index_message(txn, seq, hash, nonce)?;
                }
                txn.put::<tables::Nonces>(&nonce, &seq)?;
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
            } else if writer.found_again(stored, l1, batch, window_start)? {
                held_nonces.push(l1.message.nonce);
                summary.reincluded += 1;
            } else {
                summary.skipped += 1;
            }
        }
        nonces::add(txn, held_nonces)
    }
}

/// The seq the next entry of the log gets: after the newest message or notice.
pub(super) fn next_seq(txn: &WriteTxn<'_>) -> Result<Seq> {
    let last_message = txn.last::<tables::Messages>()?.map(|(seq, _)| seq);
    let last_notice = txn.last::<tables::Notices>()?.map(|(seq, _)| seq);
    Ok(last_message.max(last_notice).map_or(Seq::ZERO, Seq::next))
}

/// Writes notices at the end of the log.
pub(super) struct EntryWriter<'t, 's> {
    pub(super) txn: &'t WriteTxn<'s>,
    /// The seq the next entry gets.
    pub(super) next: Seq,
    /// The reorg record of messages found moved while canonical, once one is written.
    moved_reorg: Option<u64>,
    /// The heads notices record.
    known: KnownHeads,
}

/// What the window's state says, or nothing known.
pub(super) fn bounds(txn: &WriteTxn<'_>) -> Result<WindowBounds> {
    Ok(txn.get::<tables::WindowState>(&WINDOW)?.unwrap_or_default())
}

impl<'t, 's> EntryWriter<'t, 's> {
    pub(super) const fn new(txn: &'t WriteTxn<'s>, next: Seq, known: KnownHeads) -> Self {
        Self { txn, next, moved_reorg: None, known }
    }

    /// The heads notices record.
    pub(super) const fn heads(&self) -> KnownHeads {
        self.known
    }

    /// Appends a `stateChanged` notice; its seq. It is not indexed among the message's
    /// removals and re-inclusions, which decide whether an inclusion was retracted.
    pub(super) fn state_notice(&mut self, record: NoticeRecord) -> Result<Seq> {
        let seq = self.next;
        self.txn.append::<tables::Notices>(&seq, &record)?;
        self.next = seq.next();
        Ok(seq)
    }

    /// Appends a notice about `message`; its seq.
    pub(super) fn notice(&mut self, message: Seq, record: NoticeRecord) -> Result<Seq> {
        let seq = self.next;
        debug_assert_eq!(record.message, message);
        self.txn.append::<tables::Notices>(&seq, &record)?;
        self.txn.put::<tables::MessageNotices>(&(message, seq), &())?;
        self.next = seq.next();
        Ok(seq)
    }

    /// A stored message found again at `l1`'s origin. Orphaned: it is included again (a
    /// notice, the origin updated). Canonical elsewhere: the chain moved it without the node
    /// seeing a reorg (an operator skipped the blocks it left): removed and included again,
    /// under a reorg record of its own. At the same origin: nothing to do. Whether it wrote.
    fn found_again(
        &mut self,
        seq: Seq,
        l1: &L1Message,
        batch: &BatchWrite<'_>,
        window_start: u64,
    ) -> Result<bool> {
        let txn = self.txn;
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
                let reorg = self.moved_reorg(batch)?;
                txn.delete::<tables::WindowMessages>(&(record.l1.origin.block_number, seq))?;
                let removed = NoticeRecord {
                    kind: NoticeKind::Removed,
                    message: seq,
                    reorg: Some(reorg),
                    origin: record.l1.origin,
                    heads: self.known,
                };
                self.notice(seq, removed)?;
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
            heads: self.known,
        };
        self.notice(seq, reincluded)?;
        Ok(true)
    }

    fn moved_reorg(&mut self, batch: &BatchWrite<'_>) -> Result<u64> {
        if let Some(id) = self.moved_reorg {
            return Ok(id);
        }
        let record = ReorgRecord {
            at_millis: unix_millis(),
            cause: ReorgCause::Moved,
            rewind_to: batch.from,
            common_ancestor: None,
            old_tip: None,
            orphaned: 0,
            first_notice: Some(self.next),
        };
        let id = append_reorg(self.txn, &record)?;
        self.moved_reorg = Some(id);
        Ok(id)
    }
}

/// Appends a reorg record; its id.
pub(super) fn append_reorg(txn: &WriteTxn<'_>, record: &ReorgRecord) -> Result<u64> {
    let id = txn.last::<tables::Reorgs>()?.map_or(0, |(id, _)| id + 1);
    txn.append::<tables::Reorgs>(&id, record)?;
    Ok(id)
}

fn record_key(seq: Seq) -> String {
    format!("seq {seq}")
}

/// What [`extend_window`] did.
enum Extended {
    /// The batch's headers are in the window.
    Fits {
        /// Set when the window started again with them.
        restarted: Option<WindowRestart>,
    },
    /// The batch does not fit the window (its first header does not link to the kept one
    /// below, or a kept header at one of its numbers is another block): nothing may be
    /// written.
    Unlinked(CommitOutcome),
}

/// Appends the batch's headers to the window, or starts the window again with them when the
/// window holds no header for the block below them (refused when that would leave a gap at or
/// above the floor); prunes below the floor; raises the window's heads to the tags it can
/// check.
///
/// Headers kept above the batch stay: after an operator moved the checkpoint back, the re-scan
/// must find those blocks again unchanged, or the mismatch is a reorg.
fn extend_window(txn: &WriteTxn<'_>, batch: &BatchWrite<'_>) -> Result<Extended> {
    let Some(first) = batch.headers.first() else {
        txn.delete_from::<tables::Headers>(&0)?;
        txn.delete_from::<tables::WindowMessages>(&(0, Seq::ZERO))?;
        return Ok(Extended::Fits { restarted: None });
    };
    for header in batch.headers {
        if let Some(kept) = txn.get::<tables::Headers>(&header.number)?
            && kept.hash != header.hash
        {
            let kept = kept.at(header.number);
            return Ok(Extended::Unlinked(CommitOutcome::Unlinked {
                kept,
                parent_hash: header.parent_hash,
            }));
        }
    }
    let below = match first.number.checked_sub(1) {
        Some(number) => txn.get::<tables::Headers>(&number)?.map(|value| value.at(number)),
        None => None,
    };
    let mut restarted = None;
    match below {
        Some(kept) if !kept.is_parent_of(first) => {
            let unlinked = CommitOutcome::Unlinked { kept, parent_hash: first.parent_hash };
            return Ok(Extended::Unlinked(unlinked));
        }
        Some(_) => {}
        None => {
            // No kept parent: the window starts again with this batch. Right when what it
            // keeps below ends under the floor (the node fell behind further than the window,
            // or an operator moved the checkpoint beyond it); a kept header at or above the
            // floor would leave unchecked blocks inside the window, where a reorg would go
            // unseen and an ordinary one could halt the node.
            let tip = newest_below(txn, first.number)?;
            if let Some(tip) = tip.filter(|tip| tip + 1 >= batch.window_floor) {
                return Err(Error::BadHeaders {
                    from: batch.from,
                    next: batch.next,
                    reason: format!(
                        "block {} would leave a gap above the window's newest block {tip} \
                         (floor {})",
                        first.number, batch.window_floor
                    ),
                });
            }
            restarted = tip.map(|previous_tip| WindowRestart { previous_tip, first: first.number });
            txn.delete_below::<tables::Headers>(&first.number)?;
            txn.delete_below::<tables::WindowMessages>(&(first.number, Seq::ZERO))?;
        }
    }
    for header in batch.headers {
        txn.put::<tables::Headers>(&header.number, &HeaderValue::of(header))?;
    }
    let newest = batch.headers.last().map_or(first.number, |header| header.number);
    let keep_from = batch.window_floor.min(newest);
    let previous = bounds(txn)?;
    let next = WindowBounds {
        floor: batch.window_floor,
        safe: previous.safe.max(checked_tag(txn, batch.tags.safe)?),
        finalized: previous.finalized.max(checked_tag(txn, batch.tags.finalized)?),
    };
    txn.put::<tables::WindowState>(&WINDOW, &next)?;
    txn.delete_below::<tables::Headers>(&keep_from)?;
    txn.delete_below::<tables::WindowMessages>(&(keep_from, Seq::ZERO))?;
    Ok(Extended::Fits { restarted })
}

/// The newest header the window keeps below block `number`.
fn newest_below(txn: &WriteTxn<'_>, number: u64) -> Result<Option<u64>> {
    let Some(below) = number.checked_sub(1) else { return Ok(None) };
    let mut newest = None;
    txn.walk_back::<tables::Headers>(Some(&below), |number, _| {
        newest = Some(number);
        Ok(ControlFlow::Break(()))
    })?;
    Ok(newest)
}

/// The tag's block number if the window (with the batch's headers already written) holds that
/// very block; otherwise the tag says nothing about the stored chain.
fn checked_tag(txn: &WriteTxn<'_>, tag: Option<BlockRef>) -> Result<Option<u64>> {
    let Some(tag) = tag else { return Ok(None) };
    let kept = txn.get::<tables::Headers>(&tag.number)?;
    Ok(kept.filter(|kept| kept.hash == tag.hash).map(|_| tag.number))
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
