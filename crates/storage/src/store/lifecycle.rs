//! Message lifecycles: the cancellation and consumption events of a batch, applied in the
//! batch's transaction after its messages; what a reorg removes of them; the states and
//! counts consumers and operators read.
//!
//! Each message's events live under its hash (Lifecycles), indexed by position
//! (LifecycleEvents) so that a re-scan finds them again and a reorg finds what it removes.
//! Every change of a stored message's lifecycle is a `stateChanged` notice in the log; an
//! event about a message the node has not stored is kept with the message's fields
//! ("unmatched"), counted, and matched when the message is stored later (a re-scan from an
//! earlier block).

use super::{Store, entries::EntryWriter};
use crate::{
    Result,
    codec::{ChangeRecord, EventRecord, LifecycleRecord, Name, NoticeKind, NoticeRecord},
    models::KnownHeads,
    tables,
    txn::{ReadTxn, Txn, WriteTxn},
};
use ferry_primitives::{
    B256, EventMessage, Lifecycle, LifecycleEvent, MessageLifecycle, MessageState, Position, Seq,
    StateChange, StateCounts,
};
use signet_libmdbx::TransactionKind;
use std::ops::ControlFlow;

/// The LifecycleCounts singleton.
pub(super) const COUNTS: Name = Name("lifecycle_counts");

/// What applying a batch's events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Applied {
    /// `stateChanged` notices written.
    pub(super) changes: u64,
    /// Events about messages the node has not stored.
    pub(super) unmatched: u64,
}

fn lifecycle_of(record: &LifecycleRecord) -> Lifecycle {
    Lifecycle::of(record.events.iter().map(|event| (event.kind, &event.at)))
}

fn position_of(event: &EventRecord) -> Position {
    Position::new(event.at.block, event.at.log_index)
}

/// Moves a stored message from one state to another in the counts.
fn recount(counts: &mut StateCounts, before: MessageState, after: MessageState) {
    if before != MessageState::Pending {
        let count = counts.of_mut(before);
        *count = count.saturating_sub(1);
    }
    if after != MessageState::Pending {
        *counts.of_mut(after) += 1;
    }
}

pub(super) fn write_counts(txn: &WriteTxn<'_>, counts: &StateCounts) -> Result<()> {
    txn.put::<tables::LifecycleCounts>(&COUNTS, counts)
}

pub(super) fn counts<K: TransactionKind>(txn: &Txn<'_, K>) -> Result<StateCounts> {
    Ok(txn.get::<tables::LifecycleCounts>(&COUNTS)?.unwrap_or_default())
}

/// A message just stored under `hash`: if events about it were kept unmatched, they are its
/// lifecycle now (the message entry shows it; no notice is needed).
pub(super) fn match_message(
    txn: &WriteTxn<'_>,
    hash: B256,
    counts: &mut StateCounts,
) -> Result<()> {
    let Some(mut record) = txn.get::<tables::Lifecycles>(&hash)? else { return Ok(()) };
    if record.unmatched.take().is_none() {
        return Ok(());
    }
    counts.unmatched = counts.unmatched.saturating_sub(1);
    recount(counts, MessageState::Pending, lifecycle_of(&record).state);
    txn.put::<tables::Lifecycles>(&hash, &record)
}

/// Applies `events` (ascending, inside the batch's range) after the batch's messages: each
/// is added to its message's lifecycle unless the same event is stored at its position (a
/// re-scan), and a change of a stored message's lifecycle gets a `stateChanged` notice.
/// Another event stored at the position (the chain changed there unseen) is removed first.
pub(super) fn apply_events(
    txn: &WriteTxn<'_>,
    writer: &mut EntryWriter<'_, '_>,
    events: &[LifecycleEvent],
    counts: &mut StateCounts,
) -> Result<Applied> {
    let mut applied = Applied::default();
    for event in events {
        let hash = event.hash();
        let position = event.origin.position();
        let key = (position.block, position.index);
        match txn.get::<tables::LifecycleEvents>(&key)? {
            Some(stored) if stored == hash => continue,
            Some(stored) => {
                let only = Some(position);
                applied.changes +=
                    remove_events(txn, writer, stored, position, only, None, counts)?;
            }
            None => {}
        }
        let mut record = txn.get::<tables::Lifecycles>(&hash)?.unwrap_or_default();
        let before = lifecycle_of(&record);
        let at = event.at();
        let index = record.events.partition_point(|stored| position_of(stored) < position);
        record.events.insert(index, EventRecord { kind: event.kind, at, notice: None });
        let after = lifecycle_of(&record);
        match super::index::seq_by_nonce(txn, event.nonce, hash)? {
            Some(seq) => {
                recount(counts, before.state, after.state);
                if after != before {
                    let change = StateChange {
                        event: event.kind,
                        at,
                        previous: before.state,
                        current: after.state,
                        reverted: false,
                    };
                    let told = tell(txn, writer, seq, change, None, None)?;
                    record.events[index].notice = Some(told);
                    applied.changes += 1;
                }
            }
            None => {
                if record.unmatched.is_none() {
                    counts.unmatched += 1;
                    record.unmatched = Some(fields_of(event));
                }
                applied.unmatched += 1;
            }
        }
        txn.put::<tables::Lifecycles>(&hash, &record)?;
        txn.put::<tables::LifecycleEvents>(&key, &hash)?;
    }
    write_counts(txn, counts)?;
    Ok(applied)
}

/// Removes every lifecycle event logged from `from` on (a reorg, or an operator resolving a
/// halt), newest first, with a reverting `stateChanged` notice for each event of a stored
/// message under `reorg`; records when each change told before was reverted. How many
/// notices it wrote.
pub(super) fn revert_events_from(
    txn: &WriteTxn<'_>,
    writer: &mut EntryWriter<'_, '_>,
    from: Position,
    reorg: Option<u64>,
) -> Result<u64> {
    let mut removed: Vec<(Position, B256)> = Vec::new();
    txn.walk::<tables::LifecycleEvents>(Some(&(from.block, from.index)), |key, hash| {
        removed.push((Position::new(key.0, key.1), hash));
        Ok(ControlFlow::Continue(()))
    })?;
    if removed.is_empty() {
        return Ok(0);
    }
    txn.delete_from::<tables::LifecycleEvents>(&(from.block, from.index))?;
    // Newest first: a consumer undoes the latest change first.
    let mut hashes: Vec<B256> = Vec::new();
    for (_, hash) in removed.iter().rev() {
        if !hashes.contains(hash) {
            hashes.push(*hash);
        }
    }
    let mut counts = counts(txn)?;
    let mut notices = 0;
    for hash in hashes {
        notices += remove_events(txn, writer, hash, from, None, reorg, &mut counts)?;
    }
    write_counts(txn, &counts)?;
    Ok(notices)
}

/// Removes the events of `hash`'s lifecycle at or after `from` (only the one at `only`, when
/// given), newest first, each with a reverting notice if the message is stored; keeps the
/// counts and the position index in step. How many notices it wrote.
fn remove_events(
    txn: &WriteTxn<'_>,
    writer: &mut EntryWriter<'_, '_>,
    hash: B256,
    from: Position,
    only: Option<Position>,
    reorg: Option<u64>,
    counts: &mut StateCounts,
) -> Result<u64> {
    let Some(mut record) = txn.get::<tables::Lifecycles>(&hash)? else { return Ok(0) };
    let seq = super::index::seq_by_hash(txn, hash)?;
    let heads = writer.heads();
    let mut notices = 0;
    let first_state = lifecycle_of(&record).state;
    while let Some(index) = record.events.iter().rposition(|event| {
        let position = position_of(event);
        position >= from && only.is_none_or(|only| only == position)
    }) {
        let before = lifecycle_of(&record);
        let event = record.events.remove(index);
        let after = lifecycle_of(&record);
        if only.is_some() {
            let position = position_of(&event);
            txn.delete::<tables::LifecycleEvents>(&(position.block, position.index))?;
        }
        let Some(seq) = seq else { continue };
        if let Some(told) = event.notice {
            txn.put::<tables::RevertedChanges>(&told, &heads)?;
        }
        if after == before && event.notice.is_none() {
            continue;
        }
        let change = StateChange {
            event: event.kind,
            at: event.at,
            previous: before.state,
            current: after.state,
            reverted: true,
        };
        tell(txn, writer, seq, change, event.notice, reorg)?;
        notices += 1;
    }
    if seq.is_some() {
        recount(counts, first_state, lifecycle_of(&record).state);
    }
    if record.events.is_empty() {
        if record.unmatched.is_some() {
            counts.unmatched = counts.unmatched.saturating_sub(1);
        }
        txn.delete::<tables::Lifecycles>(&hash)?;
    } else {
        txn.put::<tables::Lifecycles>(&hash, &record)?;
    }
    Ok(notices)
}

/// Writes the `stateChanged` notice of `change` to the message of entry `seq` (undoing the
/// one at `reverts`, under `reorg`); its seq.
fn tell(
    txn: &WriteTxn<'_>,
    writer: &mut EntryWriter<'_, '_>,
    seq: Seq,
    change: StateChange,
    reverts: Option<Seq>,
    reorg: Option<u64>,
) -> Result<Seq> {
    writer.state_notice(NoticeRecord {
        kind: NoticeKind::StateChanged(ChangeRecord { change, reverts }),
        message: seq,
        reorg,
        origin: message_origin(txn, seq)?,
        heads: writer.heads(),
    })
}

/// The message's fields as an event carries them.
fn fields_of(event: &LifecycleEvent) -> EventMessage {
    EventMessage {
        from: event.from,
        to: event.to,
        selector: event.selector,
        nonce: event.nonce,
        payload: event.payload.clone(),
    }
}

fn message_origin(txn: &WriteTxn<'_>, seq: Seq) -> Result<ferry_primitives::Origin> {
    txn.get::<tables::Messages>(&seq)?.map(|record| record.l1.origin).ok_or_else(|| {
        crate::Error::Corrupt {
            table: tables::Table::HashIndex.name(),
            key: format!("seq {seq}"),
            reason: "names a seq that has no message".to_owned(),
        }
    })
}

/// The lifecycle of the message under `hash`, pending when it has no event.
pub(super) fn lifecycle<K: TransactionKind>(txn: &Txn<'_, K>, hash: B256) -> Result<Lifecycle> {
    Ok(txn
        .get::<tables::Lifecycles>(&hash)?
        .map(|record| lifecycle_of(&record))
        .unwrap_or_default())
}

/// The heads recorded when the change a notice told of was reverted, if it was.
pub(super) fn reverted_at(txn: &ReadTxn<'_>, notice: Seq) -> Result<Option<KnownHeads>> {
    txn.get::<tables::RevertedChanges>(&notice)
}

impl Store {
    /// How many stored messages are in each state, and how many unmatched lifecycles the
    /// store keeps. Pending counts the canonical messages no event moved.
    pub fn state_counts(&self) -> Result<StateCounts> {
        let txn = self.read()?;
        let mut counts = counts(&txn)?;
        let canonical =
            txn.count::<tables::Messages>()?.saturating_sub(txn.count::<tables::Orphans>()?);
        counts.pending = canonical
            .saturating_sub(counts.cancellation_started + counts.cancelled + counts.consumed);
        Ok(counts)
    }

    /// The lifecycle of the message under `hash`: known if the node stored the message or an
    /// event about it.
    pub fn message_lifecycle(&self, hash: B256) -> Result<Option<MessageLifecycle>> {
        let txn = self.read()?;
        let seq = super::index::seq_by_hash(&txn, hash)?;
        let record = txn.get::<tables::Lifecycles>(&hash)?;
        if seq.is_none() && record.is_none() {
            return Ok(None);
        }
        let (lifecycle, unmatched) = match record {
            Some(record) => (lifecycle_of(&record), record.unmatched),
            None => (Lifecycle::default(), None),
        };
        Ok(Some(MessageLifecycle { hash, seq, lifecycle, unmatched }))
    }
}
