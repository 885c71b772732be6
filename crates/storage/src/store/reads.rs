//! What the pipeline, consumers and operators read. Every read is one read-only transaction,
//! which sees the last committed state and never waits for the writer.

use super::{Store, lifecycle};
use crate::{
    AuditEntry, Error, Result,
    codec::{CHECKPOINT, MessageRecord, NoticeKind, NoticeRecord, WINDOW, logged_at},
    models::{KnownHeads, ReorgRecord, WindowBounds},
    tables::{self, TableDef},
    txn::ReadTxn,
};
use ferry_primitives::{
    B256, BlockHeader, Checkpoint, EntryKind, Inclusion, L1Message, LogEntry, Position, Seq,
    StoredMessage, U256,
};
use std::ops::ControlFlow;

/// A log entry, and what decides when a consumer that waits for finality may be told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The entry as consumers read it.
    pub entry: LogEntry,
    /// How final its block must be, and whether a later notice retracted it.
    pub settlement: Settlement,
}

/// What a consumer waiting for `safe` or `finalized` needs to know about an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The message was on the chain at `block` (first seen, or included again). It is final
    /// for a consumer once `block` is at or below that consumer's head, unless a later notice
    /// removed it: `retracted` gives the heads when it was removed, so the consumer can tell
    /// whether it had been told of it by then.
    Inclusion {
        /// The block it was in.
        block: u64,
        /// The heads when a later notice removed it from there.
        retracted: Option<KnownHeads>,
    },
    /// The message was removed from `block`; the heads when that was written.
    Removal {
        /// The block it was removed from.
        block: u64,
        /// The heads when it was removed.
        recorded: KnownHeads,
    },
}

/// The header window: its lowest and newest block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The lowest header kept.
    pub bottom: BlockHeader,
    /// The newest header kept: the block before the checkpoint.
    pub tip: BlockHeader,
    /// What the node knew when it last extended the window.
    pub bounds: WindowBounds,
}

impl Store {
    /// The stored source checkpoint; `None` means "start at the configured start block".
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        self.read()?.get::<tables::Checkpoint>(&CHECKPOINT)
    }

    /// The checkpoint and the newest seq, read together: a consistent picture of how far the
    /// store has got, even while batches are being committed.
    pub fn progress(&self) -> Result<(Checkpoint, Option<Seq>)> {
        let txn = self.read()?;
        Ok((txn.get::<tables::Checkpoint>(&CHECKPOINT)?, last_seq(&txn)?))
    }

    /// The seq of the newest entry of the log; `None` while it is empty.
    pub fn last_seq(&self) -> Result<Option<Seq>> {
        last_seq(&self.read()?)
    }

    /// How many messages are stored (canonical and orphaned), and how many are orphaned.
    pub fn message_counts(&self) -> Result<(u64, u64)> {
        let txn = self.read()?;
        Ok((txn.count::<tables::Messages>()?, txn.count::<tables::Orphans>()?))
    }

    /// Up to `limit` entries of the log from seq `from` on, in seq order, with what decides
    /// their finality.
    pub fn entries_from(&self, from: Seq, limit: usize) -> Result<Vec<StoredEntry>> {
        self.entries_within(from, limit, usize::MAX)
    }

    /// Like [`Store::entries_from`], but stops once the entries read hold `max_bytes` of stored
    /// message data (one entry at least): anyone can send the contract messages of megabytes,
    /// and a page that can send a few of them must not read a thousand.
    pub fn entries_within(
        &self,
        from: Seq,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredEntry>> {
        let txn = self.read()?;
        let messages =
            collect_within::<tables::Messages>(&txn, from, limit, max_bytes, |record| {
                stored_size(&record.l1)
            })?;
        let notices = collect::<tables::Notices>(&txn, from, limit)?;
        let (mut messages, mut notices) =
            (messages.into_iter().peekable(), notices.into_iter().peekable());
        let mut entries = Vec::with_capacity(limit.min(1024));
        let mut next = from;
        let mut bytes = 0;
        while entries.len() < limit && (entries.is_empty() || bytes < max_bytes) {
            let entry = if messages.peek().is_some_and(|(seq, _)| *seq == next) {
                let (seq, record) = messages.next().expect("peeked");
                message_entry(&txn, seq, record)?
            } else if notices.peek().is_some_and(|(seq, _)| *seq == next) {
                let (seq, notice) = notices.next().expect("peeked");
                notice_entry(&txn, seq, notice)?
            } else {
                break;
            };
            bytes += stored_size(&entry.entry.l1);
            entries.push(entry);
            next = next.next();
        }
        Ok(entries)
    }

    /// Up to `limit` stored messages whose message entries have seqs from `from` up, in seq
    /// order, as they are now (notices skipped).
    pub fn messages_from(&self, from: Seq, limit: usize) -> Result<Vec<StoredMessage>> {
        let txn = self.read()?;
        collect::<tables::Messages>(&txn, from, limit)?
            .into_iter()
            .map(|(seq, record)| stored_message(&txn, seq, record))
            .collect()
    }

    /// The stored message with this hash, if any, as it is now.
    pub fn message_by_hash(&self, hash: B256) -> Result<Option<StoredMessage>> {
        let txn = self.read()?;
        let Some(seq) = super::index::seq_by_hash(&txn, hash)? else { return Ok(None) };
        let record = message(&txn, seq)?;
        stored_message(&txn, seq, record).map(Some)
    }

    /// The seqs of the newest `limit` orphaned messages, ascending.
    pub fn orphaned_seqs(&self, limit: usize) -> Result<Vec<Seq>> {
        let txn = self.read()?;
        let mut seqs = Vec::new();
        if limit == 0 {
            return Ok(seqs);
        }
        txn.walk_back::<tables::Orphans>(None, |seq, _| {
            seqs.push(seq);
            Ok(if seqs.len() < limit { ControlFlow::Continue(()) } else { ControlFlow::Break(()) })
        })?;
        seqs.reverse();
        Ok(seqs)
    }

    /// The header the window keeps for block `number`.
    pub fn header(&self, number: u64) -> Result<Option<BlockHeader>> {
        Ok(self.read()?.get::<tables::Headers>(&number)?.map(|value| value.at(number)))
    }

    /// The headers the window keeps at or below `number`, newest first, at most `limit`.
    pub fn headers_down_from(&self, number: u64, limit: usize) -> Result<Vec<BlockHeader>> {
        let txn = self.read()?;
        let mut headers = Vec::new();
        if limit == 0 {
            return Ok(headers);
        }
        txn.walk_back::<tables::Headers>(Some(&number), |number, value| {
            headers.push(value.at(number));
            Ok(if headers.len() < limit {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            })
        })?;
        Ok(headers)
    }

    /// The header window's lowest and newest block; `None` while it is empty.
    pub fn window(&self) -> Result<Option<Window>> {
        let txn = self.read()?;
        let bottom = txn.first::<tables::Headers>()?;
        let tip = txn.last::<tables::Headers>()?;
        let bounds = txn.get::<tables::WindowState>(&WINDOW)?.unwrap_or_default();
        Ok(bottom.zip(tip).map(|((low, bottom), (high, tip))| Window {
            bottom: bottom.at(low),
            tip: tip.at(high),
            bounds,
        }))
    }

    /// The provider's safe and finalized blocks under which the stored chain was last read
    /// (see [`WindowBounds`]): what consumers waiting for finality are told by.
    pub fn final_heads(&self) -> Result<KnownHeads> {
        let bounds = self.read()?.get::<tables::WindowState>(&WINDOW)?;
        Ok(bounds.unwrap_or_default().heads())
    }

    /// The newest `limit` reorgs, newest first, with their ids; and how many there were.
    pub fn reorgs(&self, limit: usize) -> Result<(Vec<(u64, ReorgRecord)>, u64)> {
        let txn = self.read()?;
        let mut reorgs = Vec::new();
        txn.walk_back::<tables::Reorgs>(None, |id, record| {
            if reorgs.len() == limit {
                return Ok(ControlFlow::Break(()));
            }
            reorgs.push((id, record));
            Ok(ControlFlow::Continue(()))
        })?;
        Ok((reorgs, txn.count::<tables::Reorgs>()?))
    }

    /// The nonces held by canonical stored messages, as ascending runs `(first, last)` of
    /// consecutive nonces: what a node restores its gap tracker from, in a row per run however
    /// large the store.
    pub fn stored_nonce_runs(&self) -> Result<Vec<(U256, U256)>> {
        let txn = self.read()?;
        let mut runs = Vec::new();
        txn.walk::<tables::NonceRuns>(None, |first, last| {
            runs.push((first, last));
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(runs)
    }

    /// How many stored messages were logged at a position in `from..to`, and how many of
    /// those are canonical.
    ///
    /// Reads every stored message's origin: meant for operator previews, not for hot paths.
    pub fn count_messages_between(&self, from: Position, to: Position) -> Result<(u64, u64)> {
        count_logged_between(&self.read()?, from, to)
    }

    /// The newest `limit` checkpoint changes of the audit trail, newest first.
    pub fn checkpoint_history(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let txn = self.read()?;
        let mut entries = Vec::new();
        txn.walk_back::<tables::Audit>(None, |id, record| {
            if entries.len() == limit {
                return Ok(ControlFlow::Break(()));
            }
            entries.push(record.entry(id));
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(entries)
    }
}

pub(super) fn last_seq(txn: &ReadTxn<'_>) -> Result<Option<Seq>> {
    let message = txn.last::<tables::Messages>()?.map(|(seq, _)| seq);
    let notice = txn.last::<tables::Notices>()?.map(|(seq, _)| seq);
    Ok(message.max(notice))
}

fn collect<T: TableDef<Key = Seq>>(
    txn: &ReadTxn<'_>,
    from: Seq,
    limit: usize,
) -> Result<Vec<(Seq, T::Value)>> {
    let mut rows = Vec::new();
    if limit == 0 {
        return Ok(rows);
    }
    txn.walk::<T>(Some(&from), |seq, value| {
        rows.push((seq, value));
        Ok(if rows.len() < limit { ControlFlow::Continue(()) } else { ControlFlow::Break(()) })
    })?;
    Ok(rows)
}

/// Up to `limit` rows from `from` on, stopping after the row that brings their `size` to
/// `max_bytes`.
fn collect_within<T: TableDef<Key = Seq>>(
    txn: &ReadTxn<'_>,
    from: Seq,
    limit: usize,
    max_bytes: usize,
    size: impl Fn(&T::Value) -> usize,
) -> Result<Vec<(Seq, T::Value)>> {
    let mut rows = Vec::new();
    if limit == 0 {
        return Ok(rows);
    }
    let mut bytes = 0_usize;
    txn.walk::<T>(Some(&from), |seq, value| {
        bytes = bytes.saturating_add(size(&value));
        rows.push((seq, value));
        Ok(if rows.len() < limit && bytes < max_bytes {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        })
    })?;
    Ok(rows)
}

/// About what a message takes in the store: its payload, and the fixed fields.
fn stored_size(l1: &L1Message) -> usize {
    32 * l1.message.payload.len() + 300
}

fn message(txn: &ReadTxn<'_>, seq: Seq) -> Result<MessageRecord> {
    txn.get::<tables::Messages>(&seq)?.ok_or_else(|| Error::Corrupt {
        table: tables::Table::Messages.name(),
        key: format!("seq {seq}"),
        reason: "an index names a message that is not stored".to_owned(),
    })
}

fn stored_message(txn: &ReadTxn<'_>, seq: Seq, record: MessageRecord) -> Result<StoredMessage> {
    let orphan = txn.get::<tables::Orphans>(&seq)?;
    Ok(StoredMessage {
        seq,
        hash: record.hash,
        l1: record.l1,
        inclusion: if orphan.is_some() { Inclusion::Orphaned } else { Inclusion::Canonical },
        reorg: orphan.map(|orphan| orphan.reorg),
        lifecycle: lifecycle::lifecycle(txn, record.hash)?,
    })
}

/// The first notice about `message` after seq `after`.
fn next_notice(txn: &ReadTxn<'_>, message: Seq, after: Seq) -> Result<Option<NoticeRecord>> {
    let mut found = None;
    txn.walk::<tables::MessageNotices>(Some(&(message, after.next())), |(about, notice), ()| {
        if about == message {
            found = Some(notice);
        }
        Ok(ControlFlow::Break(()))
    })?;
    found
        .map(|seq| {
            txn.get::<tables::Notices>(&seq)?.ok_or_else(|| Error::Corrupt {
                table: tables::Table::MessageNotices.name(),
                key: format!("seq {seq}"),
                reason: "names a notice that is not stored".to_owned(),
            })
        })
        .transpose()
}

/// The heads a later removal recorded, if the next notice about `message` after `after` is one;
/// and the origin it removed the message from.
fn retraction(
    txn: &ReadTxn<'_>,
    message: Seq,
    after: Seq,
) -> Result<Option<(KnownHeads, ferry_primitives::Origin)>> {
    Ok(next_notice(txn, message, after)?
        .filter(|notice| notice.kind == NoticeKind::Removed)
        .map(|notice| (notice.heads, notice.origin)))
}

fn inclusion_now(txn: &ReadTxn<'_>, message: Seq) -> Result<Inclusion> {
    Ok(match txn.get::<tables::Orphans>(&message)? {
        Some(_) => Inclusion::Orphaned,
        None => Inclusion::Canonical,
    })
}

/// A message entry as it was written: with the origin it had then (a later removal says where
/// that was, since re-inclusion updates the stored one).
fn message_entry(txn: &ReadTxn<'_>, seq: Seq, record: MessageRecord) -> Result<StoredEntry> {
    let retracted = retraction(txn, seq, seq)?;
    let mut l1 = record.l1;
    if let Some((_, origin)) = retracted {
        l1.origin = origin;
    }
    let settlement = Settlement::Inclusion {
        block: l1.origin.block_number,
        retracted: retracted.map(|(heads, _)| heads),
    };
    let entry = LogEntry {
        seq,
        kind: EntryKind::Message,
        message_seq: seq,
        hash: record.hash,
        l1,
        removed: false,
        reorg: None,
        inclusion: inclusion_now(txn, seq)?,
        lifecycle: lifecycle::lifecycle(txn, record.hash)?,
        change: None,
    };
    Ok(StoredEntry { entry, settlement })
}

fn notice_entry(txn: &ReadTxn<'_>, seq: Seq, notice: NoticeRecord) -> Result<StoredEntry> {
    let record = message(txn, notice.message)?;
    let l1 = L1Message { message: record.l1.message, origin: notice.origin };
    let block = notice.origin.block_number;
    let (kind, settlement, change) = match notice.kind {
        NoticeKind::Removed => {
            (EntryKind::Removed, Settlement::Removal { block, recorded: notice.heads }, None)
        }
        NoticeKind::Reincluded => (
            EntryKind::Reincluded,
            Settlement::Inclusion {
                block,
                retracted: retraction(txn, notice.message, seq)?.map(|(heads, _)| heads),
            },
            None,
        ),
        // A change is final once the block of its event is; a reverting one is told to a
        // consumer only if that consumer had been told of the change it undoes.
        NoticeKind::StateChanged(record) => {
            let block = record.change.at.block;
            let settlement = if record.change.reverted {
                Settlement::Removal { block, recorded: notice.heads }
            } else {
                Settlement::Inclusion { block, retracted: lifecycle::reverted_at(txn, seq)? }
            };
            (EntryKind::StateChanged, settlement, Some(record.change))
        }
    };
    let entry = LogEntry {
        seq,
        kind,
        message_seq: notice.message,
        hash: record.hash,
        l1,
        removed: kind.is_removal(),
        reorg: notice.reorg,
        inclusion: inclusion_now(txn, notice.message)?,
        lifecycle: lifecycle::lifecycle(txn, record.hash)?,
        change,
    };
    Ok(StoredEntry { entry, settlement })
}

/// How many stored messages were logged at a position in `from..to`, and how many of those are
/// canonical: a walk over every message's origin (its fixed-width bytes, not the whole value),
/// about 50 ns a message.
pub(super) fn count_logged_between<K: signet_libmdbx::TransactionKind>(
    txn: &crate::txn::Txn<'_, K>,
    from: Position,
    to: Position,
) -> Result<(u64, u64)> {
    let (mut all, mut canonical) = (0, 0);
    txn.walk_raw::<tables::Messages>(|key, value| {
        let corrupt = |reason: crate::codec::DecodeError| Error::Corrupt {
            table: tables::Table::Messages.name(),
            key: key.iter().map(|byte| format!("{byte:02x}")).collect(),
            reason: reason.to_string(),
        };
        let position = logged_at(value).map_err(corrupt)?;
        if from <= position && position < to {
            all += 1;
            let seq = <Seq as crate::codec::Key>::decode(key).map_err(corrupt)?;
            if txn.get::<tables::Orphans>(&seq)?.is_none() {
                canonical += 1;
            }
        }
        Ok(())
    })?;
    Ok((all, canonical))
}
